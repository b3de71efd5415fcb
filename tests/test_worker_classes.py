"""Choosing a worker class (-k, Gunicorn's names, --threads) and what gthread adds over sync:
several app calls at once, --worker-connections, and --timeout when every thread hangs.

The shared HTTP, WSGI and signal suites run under every class (see the worker_class fixture in
conftest.py); this module holds what differs between them."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from conftest import ROOT, connect
from master_util import wait_children, wait_gone
from pronghorn.workers import GEVENT_MISSING, WorkerClassError, resolve_worker_class
from wire import check_worker_connections, get

APP = "threads_app:app"


# -- names ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, threads, expected", [
    ("sync", 1, "sync"),
    ("sync", 4, "gthread"),  # Gunicorn's rule: the default class with threads is the threaded one
    ("SYNC", 1, "sync"),
    ("gthread", 1, "gthread"),
    ("gunicorn.workers.sync.SyncWorker", 1, "sync"),
    ("gunicorn.workers.gthread.ThreadWorker", 8, "gthread"),
    ("egg:gunicorn#gthread", 1, "gthread"),
    ("pronghorn.workers.gthread.ThreadWorker", 1, "gthread"),
    ("asgi", 1, "asgi"),
    ("gunicorn.workers.gasgi.ASGIWorker", 1, "asgi"),
    ("uvicorn.workers.UvicornWorker", 1, "asgi"),
    ("uvicorn.workers.UvicornH11Worker", 1, "asgi"),
    ("uvicorn_worker.UvicornWorker", 1, "asgi"),
])
def test_names_resolve_to_our_classes(name: str, threads: int, expected: str) -> None:
    assert resolve_worker_class(name, threads) == expected


@pytest.mark.parametrize("name, says", [
    ("eventlet", "'gevent' serves the same apps"),
    ("gunicorn.workers.geventlet.EventletWorker", "'gevent' serves the same apps"),
    ("tornado", "Tornado"),
    ("myproject.workers.Custom", "not a pronghorn worker class"),
])
def test_other_classes_are_refused_naming_ours(name: str, says: str) -> None:
    with pytest.raises(WorkerClassError) as caught:
        resolve_worker_class(name)
    message = str(caught.value)
    assert name in message and says in message
    assert "'sync', 'gthread', 'gevent', 'asgi'" in message


def test_a_missing_gevent_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gevent" else real(name, *a))
    with pytest.raises(WorkerClassError) as caught:
        resolve_worker_class("gunicorn.workers.ggevent.GeventWorker")
    assert str(caught.value) == GEVENT_MISSING
    assert "pip install 'pronghorn[gevent]'" in GEVENT_MISSING and "\n" not in GEVENT_MISSING


def test_an_unknown_class_on_the_command_line_is_a_usage_error() -> None:
    result = subprocess.run([sys.executable, "-m", "pronghorn", "-k", "eventlet", APP],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "--worker-class: 'eventlet'" in result.stderr and "'gevent'" in result.stderr


def test_threads_turn_the_default_class_into_gthread(start_server) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP, "--threads", "2")
    server.wait_for_line(r"Using worker: gthread")
    assert get(address, "/multithread").body == b"True"


# -- gthread ---------------------------------------------------------------------------------------------

def _meet(address: str, name: str, parties: int) -> list[bytes]:
    """``parties`` requests, each on its own connection, that can only all succeed together."""
    bodies: list[bytes] = []
    errors: list[BaseException] = []

    def client() -> None:
        try:
            response = get(address, f"/meet?name={name}&parties={parties}")
            assert response.status == 200, response.body
            bodies.append(response.body)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(parties)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(40)
    assert not errors, errors
    return bodies


def test_gthread_runs_as_many_app_calls_at_once_as_it_has_threads(start_server) -> None:  # type: ignore[no-untyped-def]
    _, (address,) = start_server(APP, "-k", "gthread", "--threads", "4")
    names = _meet(address, "four", 4)
    assert len(set(names)) == 4  # four threads, each holding one call until all four were in


def test_gthread_serves_others_while_one_request_hangs(start_server) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP, "-k", "gthread", "--threads", "2", "--graceful-timeout", "1")
    with connect(address, timeout=60) as hung:
        hung.sendall(b"GET /hang?marker=one HTTP/1.1\r\nHost: t\r\n\r\n")
        server.wait_for_line("hanging one")
        for _ in range(5):
            assert get(address, "/pid").status == 200


def test_gthread_worker_whose_every_thread_hangs_is_replaced(start_server) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP, "-k", "gthread", "--threads", "2", "--timeout", "2")
    master = server.proc.pid
    (stuck,) = wait_children(server, master, 1)
    socks = []
    try:
        for marker in ("a", "b"):
            sock = connect(address, timeout=60)
            socks.append(sock)
            sock.sendall(f"GET /hang?marker={marker} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            server.wait_for_line(f"hanging {marker}")
        line = server.wait_for_line(rf"WORKER TIMEOUT \(pid:{stuck}\) while handling .*", timeout=30)
        assert "GET /hang?marker=a" in line.group(0) and "GET /hang?marker=b" in line.group(0)
    finally:
        for sock in socks:
            sock.close()
    wait_gone(stuck, server)
    (replacement,) = wait_children(server, master, 1)
    assert int(get(address, "/pid").body) == replacement


def test_gthread_holds_at_most_worker_connections_and_the_rest_wait(start_server) -> None:  # type: ignore[no-untyped-def]
    _, (address,) = start_server(APP, "-k", "gthread", "--worker-connections", "2")
    check_worker_connections(address, 2)

"""The gevent worker: patched before the app, a greenlet per connection up to
--worker-connections, and --timeout when the hub stops.

The shared HTTP, WSGI, conformance and signal suites run under gevent too (the worker_class fixture);
this module holds what only gevent does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, connect
from master_util import master_modules_config, wait_children, wait_gone
from wire import check_worker_connections, get

pytest.importorskip("gevent", reason="the gevent worker needs gevent (pip install -e '.[test]')")

APP = "threads_app:app"


def test_the_worker_is_patched_before_the_app_and_the_master_imports_nothing_to_patch(  # type: ignore[no-untyped-def]
        start_server, tmp_path: Path) -> None:
    conf, master_modules = master_modules_config(tmp_path, ("gevent", "ssl", "asyncio", "threads_app"))
    _, (address,) = start_server(APP, "-k", "gevent", "-c", str(conf))
    patched = json.loads(get(address, "/patched").body)
    assert patched == {"gevent": True, "socket": True, "threading": True, "ssl": True,
                       "sleep_is_gevents": True}
    assert master_modules() == {
        "gevent": False, "ssl": False, "asyncio": False, "threads_app": False}


def test_requests_wait_on_io_together(start_server) -> None:  # type: ignore[no-untyped-def]
    """Ten requests that can only finish once all ten are inside the app at the same time."""
    import threading

    _, (address,) = start_server(APP, "-k", "gevent")
    answers: list[int] = []
    errors: list[BaseException] = []

    def client() -> None:
        try:
            answers.append(get(address, "/meet?name=ten&parties=10").status)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(40)
    assert not errors and answers == [200] * 10, (errors, answers)


def test_worker_connections_bounds_the_connections_held(start_server) -> None:  # type: ignore[no-untyped-def]
    _, (address,) = start_server(APP, "-k", "gevent", "--worker-connections", "2")
    check_worker_connections(address, 2)


def test_an_app_that_blocks_the_hub_is_killed_and_replaced(start_server) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP, "-k", "gevent", "--timeout", "2")
    master = server.proc.pid
    (stuck,) = wait_children(server, master, 1)
    with connect(address, timeout=60) as sock:
        sock.sendall(b"GET /spin HTTP/1.1\r\nHost: t\r\n\r\n")
        server.wait_for_line("spinning")
        server.wait_for_line(
            rf"WORKER TIMEOUT \(pid:{stuck}\) while handling GET /spin from", timeout=30)
    wait_gone(stuck, server)
    (replacement,) = wait_children(server, master, 1)
    assert int(get(address, "/pid").body) == replacement


def test_without_gevent_the_error_is_one_line_naming_the_extra() -> None:
    # find_spec() reports a module set to None in sys.modules as absent: gevent "not installed".
    code = ("import sys; sys.modules['gevent'] = None; from pronghorn.cli import main; "
            "sys.exit(main())")
    result = subprocess.run([sys.executable, "-c", code, "-k", "gevent", APP], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'pronghorn[gevent]'" in lines[0], result.stderr


def test_int_during_a_graceful_stop_stops_at_once(start_server) -> None:  # type: ignore[no-untyped-def]
    """TERM waits for the request in flight (here, up to a minute); INT then means: now."""
    import signal

    server, (address,) = start_server(APP, "-k", "gevent", "--graceful-timeout", "60")
    with connect(address, timeout=60) as sock:
        sock.sendall(b"GET /hang?marker=held HTTP/1.1\r\nHost: t\r\n\r\n")
        server.wait_for_line("hanging held")
        server.proc.send_signal(signal.SIGTERM)
        server.wait_for_line("Handling signal: term")
        server.proc.send_signal(signal.SIGINT)
        # Well before the 60 s graceful timeout (and the master's SIGKILL after it).
        assert server.proc.wait(timeout=20) == 0, server.output
    server.wait_for_line(r"Worker exiting")


def test_hup_from_gthread_to_gevent_patches_the_new_workers_and_says_ssl_came_first(  # type: ignore[no-untyped-def]
        start_server, tmp_path: Path) -> None:
    """A gthread master has ssl imported (for its workers' sake, with uvloop); a HUP to gevent
    still brings patched workers, and the log says a fresh master would patch ssl cleanly."""
    conf = tmp_path / "conf.py"
    conf.write_text("worker_class = 'gthread'\n")
    server, (address,) = start_server(APP, "-c", str(conf))
    master = server.proc.pid
    (old,) = wait_children(server, master, 1)
    conf.write_text("worker_class = 'gevent'\n")
    os.kill(master, signal.SIGHUP)
    server.wait_for_line("The master has ssl imported from the previous worker class")
    wait_gone(old, server)
    patched = json.loads(get(address, "/patched").body)
    assert patched["socket"] and patched["threading"] and patched["sleep_is_gevents"]

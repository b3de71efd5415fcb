"""Gunicorn's server hooks from a config file, driven through a real server's life: start, requests,
HUP, TTIN, a timeout abort, USR2, TERM and QUIT. Each hook appends a JSON line to a file: its name, the
process it ran in and the shape of its arguments."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import APPS, connect
from master_util import Subreaper, poll, read_pid, wait_children, wait_gone
from wire import get

APP = "master_app:app"

HOOKS = '''
import json
import os

_RECORD = {record!r}
timeout = 2
graceful_timeout = 5


def _write(name, **fields):
    fields.update(hook=name, pid=os.getpid())
    with open(_RECORD, "a") as handle:
        handle.write(json.dumps(fields) + "\\n")


def _server(server):
    server.log.info("hook with server %d", server.pid)  # hooks use server.log, as in Gunicorn
    return {{"server_pid": server.pid, "server_workers": server.num_workers,
             "timeout": server.cfg.timeout, "known": sorted(server.WORKERS)}}


def _worker(worker):
    worker.log.info("hook with worker %s", worker.pid)
    return {{"worker_pid": worker.pid, "age": worker.age, "worker_timeout": worker.cfg.timeout}}


def on_starting(server):
    _write("on_starting", **_server(server))


def on_reload(server):
    _write("on_reload", **_server(server))


def when_ready(server):
    _write("when_ready", **_server(server))


def pre_fork(server, worker):
    _write("pre_fork", **_server(server), **_worker(worker))


def post_fork(server, worker):
    _write("post_fork", **_server(server), **_worker(worker))


def post_worker_init(worker):
    _write("post_worker_init", **_worker(worker))


def worker_int(worker):
    _write("worker_int", **_worker(worker))


def worker_abort(worker):
    _write("worker_abort", **_worker(worker))


def pre_exec(server):
    _write("pre_exec", **_server(server))


def pre_request(worker, req):
    _write("pre_request", method=req.method, path=req.path, query=req.query, **_worker(worker))


def post_request(worker, req, environ, resp):
    _write("post_request", path=req.path, path_info=environ["PATH_INFO"], status=resp.status,
           status_code=resp.status_code, **_worker(worker))


def child_exit(server, worker):
    _write("child_exit", **_server(server), **_worker(worker))


def worker_exit(server, worker):
    _write("worker_exit", **_server(server), **_worker(worker))


def nworkers_changed(server, new_value, old_value):
    _write("nworkers_changed", new=new_value, old=old_value, **_server(server))


def on_exit(server):
    _write("on_exit", **_server(server))
'''


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _of(path: Path, hook: str, /, **match: Any) -> list[dict[str, Any]]:
    return [r for r in _records(path) if r["hook"] == hook and
            all(r.get(k) == v for k, v in match.items())]


def _wait_record(path: Path, hook: str, server: Any, /, **match: Any) -> dict[str, Any]:
    return poll(lambda: (_of(path, hook, **match) or [None])[-1], f"the {hook} hook {match}",
                server=server)


def test_every_hook_fires_with_gunicorns_arguments(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    record = tmp_path / "hooks.jsonl"
    config = tmp_path / "hooks.conf.py"
    config.write_text(HOOKS.format(record=str(record)))
    pidfile = tmp_path / "app.pid"
    with Subreaper() as reaper:
        server, (address,) = start_server(APP, "-c", str(config), "--pid", str(pidfile))
        master = server.proc.pid
        (first,) = wait_children(server, master, 1)
        # Start: the master's hooks run in the master, the worker's in the worker.
        assert _of(record, "nworkers_changed", pid=master, new=1, old=None)
        assert _of(record, "on_starting", pid=master, server_pid=master)
        assert _of(record, "when_ready", pid=master, server_pid=master, timeout=2)
        assert _of(record, "pre_fork", pid=master, server_pid=master)
        assert _of(record, "post_fork", pid=first, worker_pid=first, server_pid=master)
        _wait_record(record, "post_worker_init", server, pid=first, worker_pid=first, age=1)

        # Requests.
        assert get(address, "/pid?x=1").status == 200
        _wait_record(record, "pre_request", server, pid=first, method="GET", path="/pid",
                     query="x=1")
        _wait_record(record, "post_request", server, pid=first, path="/pid", path_info="/pid",
                     status="200 OK", status_code=200)

        # HUP: a new worker; the old one leaves through worker_exit (in it) and child_exit.
        os.kill(master, signal.SIGHUP)
        _wait_record(record, "on_reload", server, pid=master, server_pid=master)
        assert _of(record, "nworkers_changed", pid=master, new=1, old=1)
        wait_gone(first, server)
        (second,) = wait_children(server, master, 1)
        _wait_record(record, "worker_exit", server, pid=first, worker_pid=first)
        exit_record = _wait_record(record, "child_exit", server, pid=master, worker_pid=first)
        assert first not in exit_record["known"]  # reaped: no longer among server.WORKERS
        _wait_record(record, "post_worker_init", server, pid=second, age=2)

        # TTIN.
        os.kill(master, signal.SIGTTIN)
        _wait_record(record, "nworkers_changed", server, pid=master, new=2, old=1)
        both = wait_children(server, master, 2)

        # A request that blocks past --timeout: worker_abort in the worker, then child_exit.
        with connect(address, timeout=60) as sock:
            sock.sendall(b"GET /block HTTP/1.1\r\nHost: t\r\n\r\n")
            aborted = _wait_record(record, "worker_abort", server)
            assert aborted["pid"] == aborted["worker_pid"] and aborted["pid"] in both
            _wait_record(record, "child_exit", server, pid=master, worker_pid=aborted["pid"])
        survivors = wait_children(server, master, 2)
        assert aborted["pid"] not in survivors

        # USR2: pre_exec in the forked process, then the new master's own start-up hooks.
        os.kill(master, signal.SIGUSR2)
        new = poll(lambda: (lambda p: p if p and p != master else None)(read_pid(pidfile)),
                   "the new master", server=server)
        reaper.adopt(new)
        _wait_record(record, "pre_exec", server, pid=new, server_pid=master)
        _wait_record(record, "on_starting", server, pid=new, server_pid=new)
        new_workers = wait_children(server, new, 1)

        # TERM the old master: its workers exit (worker_exit, child_exit), then on_exit.
        os.kill(master, signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0, server.output
        for pid in survivors:
            _wait_record(record, "worker_exit", server, pid=pid, worker_pid=pid)
            _wait_record(record, "child_exit", server, pid=master, worker_pid=pid)
        _wait_record(record, "on_exit", server, pid=master, server_pid=master)

        # QUIT the new master (once its worker serves): its worker runs worker_int.
        poll(lambda: int(get(address, "/ppid").body.split()[1]) == new,
             "the new master's worker serving", server=server)
        os.kill(new, signal.SIGQUIT)
        assert reaper.wait(new) == 0, server.output
        for pid in new_workers:
            _wait_record(record, "worker_int", server, pid=pid, worker_pid=pid)
        _wait_record(record, "on_exit", server, pid=new)

    # Every hook fired, and the worker hooks that run in the master got its worker records.
    names = {r["hook"] for r in _records(record)}
    assert names == {"on_starting", "on_reload", "when_ready", "pre_fork", "post_fork",
                     "post_worker_init", "worker_int", "worker_abort", "pre_exec", "pre_request",
                     "post_request", "child_exit", "worker_exit", "nworkers_changed", "on_exit"}
    assert "hook with server" in server.output and "hook with worker" in server.output


RAISING = '''
def _boom(*args):
    raise RuntimeError("hook failure")

on_reload = pre_fork = post_request = child_exit = worker_exit = nworkers_changed = _boom
'''


def test_a_hook_that_raises_is_logged_and_the_server_goes_on(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The hooks whose failure a server can outlive: logged with the traceback, and serving goes on
    (Gunicorn's master dies of some of these; docs/settings.md lists that difference)."""
    config = tmp_path / "raising.conf.py"
    config.write_text(RAISING)
    server, (address,) = start_server(APP, "-c", str(config))
    master = server.proc.pid
    (first,) = wait_children(server, master, 1)
    assert get(address, "/pid").status == 200
    os.kill(master, signal.SIGHUP)
    wait_gone(first, server)
    os.kill(master, signal.SIGTTIN)
    wait_children(server, master, 2)
    assert get(address, "/pid").status == 200
    for hook in ("on_reload", "pre_fork", "post_request", "child_exit", "worker_exit",
                 "nworkers_changed"):
        server.wait_for_line(f"Exception in {hook} hook")
    assert "RuntimeError: hook failure" in server.output
    assert server.stop() == 0, server.output


def test_a_pre_request_hook_that_raises_makes_the_request_a_500(start_server,  # type: ignore[no-untyped-def]
                                                                  tmp_path: Path) -> None:
    """As under Gunicorn: the app is not called, the client gets a 500, the worker serves on."""
    config = tmp_path / "pre_request.conf.py"
    config.write_text("def pre_request(worker, req):\n"
                      "    if req.path == '/pid':\n"
                      "        raise RuntimeError('no such request')\n")
    server, (address,) = start_server(APP, "-c", str(config))
    assert get(address, "/pid").status == 500
    # (The worker logs the traceback before it answers, but its stderr reaches the test's reader
    # thread on its own schedule: wait for the line rather than read what has arrived.)
    server.wait_for_line("RuntimeError: no such request")
    assert get(address, "/").status == 200
    assert server.stop() == 0, server.output


@pytest.mark.parametrize("hook, status", [("on_starting", 1), ("when_ready", 1),
                                          ("post_fork", 3), ("post_worker_init", 3)])
def test_a_start_up_hook_that_raises_stops_the_server_with_its_traceback(
        tmp_path: Path, hook: str, status: int) -> None:
    """Gunicorn does not start when these fail, and neither do we: the app's set-up that the hook
    does would silently be missing. A worker hook's failure is a boot failure (exit 3, as an app
    that fails to import: no fork loop); a master hook's stops the master (exit 1)."""
    config = tmp_path / "failing.conf.py"
    args = "worker" if hook == "post_worker_init" else "server, *rest"
    config.write_text(f"def {hook}({args}):\n    raise RuntimeError('set-up failed in {hook}')\n")
    env = dict(os.environ, PYTHONPATH=str(APPS))
    result = subprocess.run([sys.executable, "-m", "pronghorn", "-b", "127.0.0.1:0", "-c",
                             str(config), APP], capture_output=True, text=True, env=env,
                            timeout=60)
    assert result.returncode == status, result.stderr
    assert f"Exception in {hook} hook" in result.stderr
    assert f"RuntimeError: set-up failed in {hook}" in result.stderr

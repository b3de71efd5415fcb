"""Workers under the master: the heartbeat kill, replacement after a crash, the stop after a crash loop,
and max-requests recycling, HUP, TTIN and TTOU under keep-alive load without one failed request."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import APPS, connect
from master_util import (LoadClient, children, count_lines, master_modules_config, poll,
                         wait_children, wait_gone)
from wire import Reader, get

APP = "master_app:app"


# -- heartbeat -------------------------------------------------------------------------------------------

def test_a_silent_worker_is_killed_and_replaced_and_the_log_names_its_request(start_server) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP, "--timeout", "2")
    master = server.proc.pid
    (stuck,) = wait_children(server, master, 1)
    with connect(address, timeout=60) as sock:
        sock.sendall(b"GET /block?why=test HTTP/1.1\r\nHost: t\r\n\r\n")
        match = server.wait_for_line(
            rf"WORKER TIMEOUT \(pid:{stuck}\) while handling GET /block\?why=test from "
            r"\('127\.0\.0\.1', \d+\)", timeout=30)
        assert match
        # The stuck request gets no answer: its worker is gone.
        reader = Reader(sock)
        try:
            assert reader.closed(), reader.received
        except ConnectionResetError:
            pass
    wait_gone(stuck, server)
    (replacement,) = wait_children(server, master, 1)
    assert replacement != stuck
    server.wait_for_line(rf"Booting worker with pid: {replacement}")
    assert int(get(address, "/pid").body) == replacement
    assert server.stop() == 0, server.output


def test_a_request_waiting_when_a_worker_boots_runs_under_its_signal_handlers(start_server) -> None:  # type: ignore[no-untyped-def]
    """A new worker takes a request that waited in the backlog only once its handlers are in
    place: it was taken while the loop was still being set up, and the timeout's SIGABRT then
    killed the worker outright (nothing logged, no worker_abort; a TERM would have cut the
    request)."""
    server, (address,) = start_server(APP, "--timeout", "2")
    master = server.proc.pid
    os.kill(master, signal.SIGWINCH)
    wait_children(server, master, 0)
    with connect(address, timeout=60) as sock:
        sock.sendall(b"GET /block HTTP/1.1\r\nHost: t\r\n\r\n")  # waits in the backlog
        os.kill(master, signal.SIGTTIN)
        (worker,) = wait_children(server, master, 1)
        server.wait_for_line(rf"Worker \(pid:{worker}\) (was sent|exited with)", timeout=30)
    assert f"WORKER TIMEOUT (pid:{worker}) while handling GET /block" in server.output, \
        server.output
    assert f"Worker (pid:{worker}) exited with code 1" in server.output, server.output
    assert server.stop() == 0, server.output


def test_a_worker_that_ignores_sigabrt_gets_sigkill(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # SIGABRT blocked, as in a worker stuck inside C code: only SIGKILL ends it.
    module = tmp_path / "abort_proof.py"
    module.write_text(
        "import signal, time\n"
        "def application(environ, start_response):\n"
        "    if environ['PATH_INFO'] == '/hang':\n"
        "        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGABRT})\n"
        "        time.sleep(120)\n"
        "    start_response('200 OK', [('Content-Length', '0')])\n"
        "    return [b'']\n")
    server, (address,) = start_server("abort_proof", "--timeout", "1", cwd=tmp_path)
    master = server.proc.pid
    (stuck,) = wait_children(server, master, 1)
    with connect(address, timeout=60) as sock:
        sock.sendall(b"GET /hang HTTP/1.1\r\nHost: t\r\n\r\n")
        server.wait_for_line(rf"WORKER TIMEOUT \(pid:{stuck}\)", timeout=30)
        wait_gone(stuck, server)
    server.wait_for_line(rf"Worker \(pid:{stuck}\) was killed after WORKER TIMEOUT")
    (replacement,) = wait_children(server, master, 1)
    assert replacement != stuck
    assert server.stop() == 0, server.output


def test_a_killed_worker_is_replaced_at_once(start_server) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP, "-w", "2")
    master = server.proc.pid
    workers = wait_children(server, master, 2)
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    server.wait_for_line(rf"Worker \(pid:{victim}\) was sent SIGKILL!")
    now = wait_children(server, master, 2)
    assert victim not in now and workers - {victim} <= now
    for _ in range(4):
        assert int(get(address, "/pid").body) in now
    assert server.stop() == 0, server.output


def test_workers_that_keep_dying_stop_the_master(start_server) -> None:  # type: ignore[no-untyped-def]
    server, _ = start_server(APP, "-w", "2", env={"MASTER_APP_CRASH": "1"}, ready=False)
    code = server.proc.wait(timeout=60)
    server._reader.join(10)
    assert code != 0, server.output
    assert "Workers keep dying" in server.output, server.output
    assert "the last one exited with code 7" in server.output, server.output
    boots = count_lines(server, "Booting worker")
    assert 2 <= boots <= 10, server.output


# -- max-requests and signals under load ---------------------------------------------------------------

def _churn(server, master: int) -> None:  # type: ignore[no-untyped-def]
    """HUP, TTIN, TTOU one after the other, each once its effect is seen."""
    before = children(master)
    os.kill(master, signal.SIGHUP)
    server.wait_for_line("Handling signal: hup")
    for pid in before:  # the old generation leaves once the new one is accepting
        wait_gone(pid, server)
    wait_children(server, master, 2)
    os.kill(master, signal.SIGTTIN)
    wait_children(server, master, 3)
    os.kill(master, signal.SIGTTOU)
    wait_children(server, master, 2)


def _loop_env(loop: str, tmp_path: Path) -> dict[str, str]:
    """The worker's event loop: uvloop (installed, so used), or plain asyncio (uvloop made
    unimportable by a module that shadows it)."""
    if loop == "uvloop":
        return {}
    shadow = tmp_path / "no_uvloop"
    shadow.mkdir()
    (shadow / "uvloop.py").write_text("raise ImportError('plain asyncio for this test')\n")
    return {"PYTHONPATH": os.pathsep.join([str(shadow), str(APPS)])}


# The sync worker (on its own epoll loop) and gthread on plain asyncio (uvloop made unimportable):
# a worker that stops or retires must lose no connection on either loop.
@pytest.mark.parametrize(("worker_class", "loop"), [("sync", "uvloop"), ("gthread", "asyncio")])
def test_recycling_and_signals_under_load_drop_no_request(start_server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                          worker_class: str, loop: str) -> None:
    server, (address,) = start_server(APP, "-k", worker_class, "-w", "2", "--max-requests", "60",
                                      "--max-requests-jitter", "30", env=_loop_env(loop, tmp_path))
    master = server.proc.pid
    first = wait_children(server, master, 2)
    # Keep-alive clients, and clients that open a connection per request: those keep arriving
    # while workers stop accepting, where a connection accepted at that moment could be lost.
    with LoadClient(address, 20, keepalive=True) as load, \
            LoadClient(address, 6, keepalive=False) as fresh:
        poll(lambda: count_lines(server, "Autorestarting worker") >= 2,
             "workers recycled by --max-requests", server=server)
        _churn(server, master)
        recycled = count_lines(server, "Autorestarting worker")
        poll(lambda: count_lines(server, "Autorestarting worker") >= recycled + 30,
             "more recycling after the signals", server=server, timeout=60)
    assert load.failed == 0, load.report()
    assert fresh.failed == 0, fresh.report()
    assert load.ok > 0 and fresh.ok > 0
    assert load.closes > 0  # recycled workers told their clients, and the clients reconnected
    # Recycling really happened: many workers served, and each retired between --max-requests and
    # --max-requests plus the jitter. (A retiring worker serves on until its replacement is
    # accepting, so the requests each pid answered may be more.)
    assert len(load.pids) >= 6, load.report()
    assert not set(load.pids) <= first
    counts = [int(n) for n in re.findall(r"Autorestarting worker after (\d+) requests",
                                         server.output)]
    assert counts and all(60 <= n <= 90 for n in counts), counts
    wait_children(server, master, 2)
    assert server.stop() == 0, server.output


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_wrk_sees_no_socket_error_and_no_non_2xx(start_server) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP, "-w", "2", "--max-requests", "200",
                                      "--max-requests-jitter", "100")
    master = server.proc.pid
    wait_children(server, master, 2)
    # Run until stopped: wrk prints its summary on SIGINT.
    wrk = subprocess.Popen(["wrk", "-t", "2", "-c", "20", "-d", "120s", f"{address}/pid"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        poll(lambda: count_lines(server, "Autorestarting worker") >= 2,
             "workers recycled by --max-requests", server=server)
        _churn(server, master)
        recycled = count_lines(server, "Autorestarting worker")
        poll(lambda: count_lines(server, "Autorestarting worker") >= recycled + 2,
             "more recycling after the signals", server=server)
        assert wrk.poll() is None, "wrk ended before the test was done"
        wrk.send_signal(signal.SIGINT)
        output, _ = wrk.communicate(timeout=30)
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    assert re.search(r"\d+ requests in", output), output
    assert "Socket errors" not in output, output
    assert "Non-2xx" not in output, output
    assert server.stop() == 0, server.output


# -- what the master loads before forking --------------------------------------------------------------

@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_the_master_loads_the_event_loop_before_forking_but_not_the_app(  # type: ignore[no-untyped-def]
        start_server, tmp_path: Path, loop: str, worker_class: str) -> None:
    """The sync and gthread workers run on uvloop (asyncio without it): the workers then share the
    loop's modules and OpenSSL's setup with the master instead of each doing it again (about 5 MiB
    of every worker's resident set)."""
    conf, master_modules = master_modules_config(tmp_path, ("asyncio", "ssl", "uvloop", "master_app"))
    server, (address,) = start_server(APP, "-k", worker_class, "-c", str(conf),
                                      env=_loop_env(loop, tmp_path))
    assert get(address, "/").status == 200
    assert master_modules() == {
        "asyncio": True, "ssl": True, "uvloop": loop == "uvloop", "master_app": False}

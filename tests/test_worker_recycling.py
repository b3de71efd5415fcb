"""Issue 19's worker lifecycle evidence: --max-worker-memory recycles a worker the way --max-requests
does (no failed request), a worker aborted on --timeout leaves the stack it was stuck in, and
--preload freezes the master's objects out of the workers' garbage collections."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import connect
from master_util import LoadClient, count_lines, poll, wait_children, wait_gone
from wire import get

APP = "recycle_app:app"
LIMIT_MIB = 100  # a fresh worker is well under it; the app grows 1 MiB a request, to 200 at most


def _rss_mib(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20


@pytest.mark.parametrize("worker_class", ["sync", "gthread", "gevent"])
def test_a_worker_over_max_worker_memory_is_replaced_without_a_failed_request(  # type: ignore[no-untyped-def]
        start_server, worker_class: str) -> None:
    server, (address,) = start_server(APP, "-k", worker_class, "-w", "2",
                                      "--max-worker-memory", str(LIMIT_MIB))
    master = server.proc.pid
    first = wait_children(server, master, 2)
    assert all(_rss_mib(pid) < LIMIT_MIB for pid in first)  # else the test proves nothing
    with LoadClient(address, 4, keepalive=True, path="/grow") as load, \
            LoadClient(address, 2, keepalive=False, path="/grow") as fresh:
        poll(lambda: count_lines(server, "over --max-worker-memory") >= 3,
             "workers recycled by --max-worker-memory", server=server, timeout=60)
    assert load.failed == 0, load.report()
    assert fresh.failed == 0, fresh.report()
    assert len(set(load.pids) | set(fresh.pids)) >= 4, load.report()
    for pid in first:
        wait_gone(pid, server)
    # Each line names a worker the master saw over the limit, with what it measured.
    lines = re.findall(r"Autorestarting worker using (\d+) MiB of memory, over "
                       r"--max-worker-memory (\d+) MiB \(pid: (\d+)\)", server.output)
    assert lines and all(int(used) > LIMIT_MIB and int(limit) == LIMIT_MIB
                         for used, limit, _ in lines), lines
    # A recycled worker is not named twice (it is marked retiring once).
    assert len({pid for _, _, pid in lines}) == len(lines), lines
    wait_children(server, master, 2)
    assert server.stop() == 0, server.output


def test_without_the_setting_nothing_is_recycled(start_server) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP, "-w", "1")
    master = server.proc.pid
    (worker,) = wait_children(server, master, 1)
    for _ in range(150):
        assert int(get(address, "/grow").body) == worker
    assert _rss_mib(worker) > LIMIT_MIB
    assert count_lines(server, "Autorestarting") == 0
    assert server.stop() == 0, server.output


# -- a stuck worker's stack -----------------------------------------------------------------------------

def _sleep_line(comment: str = "the abort's stack") -> int:
    source = (Path(__file__).parent / "apps" / "recycle_app.py").read_text().splitlines()
    return next(n for n, line in enumerate(source, 1) if "time.sleep(600)" in line and comment in line)


@pytest.mark.parametrize("worker_class", ["sync", "gthread"])
def test_a_worker_aborted_on_timeout_logs_the_stack_it_was_stuck_in(  # type: ignore[no-untyped-def]
        start_server, worker_class: str) -> None:
    server, (address,) = start_server(APP, "-k", worker_class, "--timeout", "2")
    master = server.proc.pid
    (stuck,) = wait_children(server, master, 1)
    with connect(address, timeout=60) as sock:
        sock.sendall(b"GET /sleep?who=test HTTP/1.1\r\nHost: t\r\n\r\n")
        server.wait_for_line(rf"WORKER TIMEOUT \(pid:{stuck}\) while handling GET /sleep\?who=test",
                             timeout=30)
        server.wait_for_line(rf"WORKER TIMEOUT \(pid:{stuck}\) stacks at the abort:", timeout=30)
        # The sleeping frame: the app's function, at the line of the sleep (the last frame shown).
        frame = server.wait_for_line(
            rf'File ".*recycle_app\.py", line {_sleep_line()}, in stuck_in_sleep', timeout=30)
        assert frame
    wait_gone(stuck, server)
    text = server.output
    stacks = text[text.index("stacks at the abort:"):]
    if worker_class == "gthread":
        # The app ran on a pool thread; the main thread (the loop) is shown as well.
        assert "Stack of the main thread" in stacks and "Stack of the thread " in stacks, stacks
    else:
        assert stacks.index("Stack of the main thread") < stacks.index("in stuck_in_sleep"), stacks
    wait_children(server, master, 1)
    assert server.stop() == 0, server.output


def test_a_worker_deaf_to_sigabrt_dumps_its_stacks_before_sigkill(start_server) -> None:  # type: ignore[no-untyped-def]
    """Stuck where the SIGABRT handler cannot run (in C code; here, with SIGABRT blocked): the
    master asks faulthandler for the stacks before it kills the worker."""
    server, (address,) = start_server(APP, "--timeout", "2")
    master = server.proc.pid
    (stuck,) = wait_children(server, master, 1)
    with connect(address, timeout=60) as sock:
        sock.sendall(b"GET /deaf HTTP/1.1\r\nHost: t\r\n\r\n")
        server.wait_for_line(rf"Worker \(pid:{stuck}\) did not exit on SIGABRT", timeout=30)
        server.wait_for_line(
            rf'File ".*recycle_app\.py", line {_sleep_line("stack dump")} in stuck_deaf', timeout=30)
        server.wait_for_line(rf"Worker \(pid:{stuck}\) was killed after WORKER TIMEOUT", timeout=30)
    wait_gone(stuck, server)
    wait_children(server, master, 1)
    assert server.stop() == 0, server.output


# -- --preload and gc.freeze ----------------------------------------------------------------------------

@pytest.mark.parametrize("worker_class", ["sync", "gthread", "gevent"])
def test_preload_serves_and_the_workers_gc_is_frozen(start_server, worker_class: str) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP, "-k", worker_class, "-w", "2", "--preload")
    master = server.proc.pid
    workers = wait_children(server, master, 2)
    seen: dict[int, int] = {}
    poll(lambda: seen.update([map(int, get(address, "/gc").body.split())]) or set(seen) == workers,
         "both workers answering", server=server)
    assert all(count > 0 for count in seen.values()), seen
    assert server.stop() == 0, server.output


def test_without_preload_the_workers_gc_is_not_frozen(start_server) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP)
    pid, count = map(int, get(address, "/gc").body.split())
    assert count == 0
    assert server.stop() == 0, server.output

"""-k asgi: an async view that blocks the event loop with a sync call is caught by the heartbeat.

The worker's loop stops, so it stops beating; the master aborts it past --timeout, and the log says
which request it was on and shows the coroutine's frame at the blocking line; a new worker serves.
"""

from __future__ import annotations

from pathlib import Path

from conftest import connect, exchange
from master_util import wait_children, wait_gone

APP = "asgi_blocking_app:app"


def _blocking_line() -> int:
    source = (Path(__file__).parent / "apps" / "asgi_blocking_app.py").read_text().splitlines()
    return next(n for n, line in enumerate(source, 1) if "time.sleep(600)" in line)


def test_a_loop_blocked_by_a_sync_call_is_aborted_with_the_coroutine_stack(  # type: ignore[no-untyped-def]
        start_server) -> None:
    server, (address,) = start_server(APP, "-k", "asgi", "--timeout", "2")
    master = server.proc.pid
    (stuck,) = wait_children(server, master, 1)
    with connect(address, timeout=60) as sock:
        sock.sendall(b"GET /block?who=test HTTP/1.1\r\nHost: t\r\n\r\n")
        server.wait_for_line(rf"WORKER TIMEOUT \(pid:{stuck}\) while handling GET /block\?who=test",
                             timeout=30)
        server.wait_for_line(rf"WORKER TIMEOUT \(pid:{stuck}\) stacks at the abort:", timeout=30)
        # The coroutine's frame, at the blocking call (the view the loop was running).
        server.wait_for_line(
            rf'File ".*asgi_blocking_app\.py", line {_blocking_line()}, in blocking_view', timeout=30)
    wait_gone(stuck, server)
    (replacement,) = wait_children(server, master, 1)
    assert replacement != stuck
    answer = exchange(address,
                      b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert server.stop() == 0, server.output

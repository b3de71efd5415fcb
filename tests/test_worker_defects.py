"""The worker-layer defects of issue 15, seen from outside: a real pronghorn, real sockets, real
processes, under every worker class.

- defect 1: a client that stops reading a streamed response must not stall the worker's other
  clients; its write makes no progress, so after --write-timeout it is dropped, and the error log
  says so with the words "no write progress".
- defect 2: a connection that a forked child still holds open after the worker closed it must cost
  the worker no CPU (the epoll loop left it registered and spun on its events).
- defect 7: clients that request big bodies and never read them must not grow the worker without
  bound (--max-unsent-bytes), and a client that reads is still answered.
- defect 8: a request that waits for 100 Continue and never sends its body must not delay the
  worker's other clients.

Defect 3 (the epoll loop's Task turns an exception into a None result; its cancel() never completes
the task) has no test here: no client can observe it. The worker runs three coroutines as Tasks:
the ticker, which nobody awaits and which is cancelled only as the worker exits; the rest of a
response after the transport pushed back (or a sendfile), which catches and reports every
exception itself and is never cancelled or awaited; and the boot steps (create_server,
start_serving), which cannot raise on a plain listener. So no exception reaches a Task and nothing
waits on a cancelled one.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from conftest import Server, connect
from master_util import poll
from wire import Reader, get, serve

APP = "defects_app:app"
STREAM_TOTAL = 64 * 1024 * 1024  # defects_app.stream's body
UNSENT_CLIENTS = 20
RSS_LIMIT = 300 * 1024 * 1024
#: What the error log line of a connection dropped for a stalled write must contain.
NO_WRITE_PROGRESS = re.compile(r"no write progress", re.IGNORECASE)

pytestmark = pytest.mark.usefixtures("worker_class")


@pytest.fixture(scope="module")
def server(worker_class: str) -> Iterator[tuple[Server, str]]:
    """One worker; a short write deadline (defect 1), a body deadline longer than any guard here
    (defect 8)."""
    with serve("-b", "127.0.0.1:0", "-w", "1", "--write-timeout", "1", "--header-timeout", "20",
               APP) as (srv, addresses):
        yield srv, addresses[0]


@pytest.fixture(scope="module")
def bounded(worker_class: str) -> Iterator[tuple[Server, str]]:
    """One worker with the default --max-unsent-bytes, and a write deadline far longer than the
    test: only the bound on unsent bytes can keep the worker's memory down (defect 7)."""
    with serve("-b", "127.0.0.1:0", "-w", "1", "--write-timeout", "30", APP) as (srv, addresses):
        yield srv, addresses[0]


# -- helpers ---------------------------------------------------------------------------------------

def recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        piece = sock.recv(count - len(data))
        assert piece, f"closed after {len(data)} bytes"
        data += piece
    return data


def read_to_end(sock: socket.socket) -> bytes:
    """Everything until the server closes or resets the connection; socket.timeout if it does
    neither."""
    chunks = []
    while True:
        try:
            data = sock.recv(1 << 20)
        except ConnectionResetError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def new_lines(srv: Server, start: int, pattern: re.Pattern[str]) -> list[str]:
    return [line for line in srv.lines[start:] if pattern.search(line)]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss(pid: int) -> int:
    """VmRSS of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def small_request(path: str, close: bool = True) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: test.example\r\n"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode()


# -- defect 1: a client that stops reading ---------------------------------------------------------

def test_a_client_that_stops_reading_is_dropped_and_the_others_are_served(
        server: tuple[Server, str]) -> None:
    srv, address = server
    start = len(srv.lines)
    # A small receive buffer, set before connecting: the window offered to the server stays small.
    with connect(address, timeout=10, rcvbuf=4096) as stalled:
        stalled.sendall(small_request("/stream"))
        first = recv_exactly(stalled, 10)
        assert first.startswith(b"HTTP/1.1 2"), first
        # The stalled client keeps its connection open and reads nothing more. Another client of
        # the same worker must be answered meanwhile.
        with connect(address, timeout=10) as other:
            other.sendall(small_request("/other"))
            try:
                answer = Reader(other).read_response()
            except socket.timeout:
                pytest.fail("a client was not answered while another one did not read its "
                            f"streamed response:\n{srv.output}")
            assert answer.status == 200 and answer.json()["path"] == "/other"
        # The stalled write has a deadline (--write-timeout 1): the connection is dropped, and the
        # error log says why.
        poll(lambda: new_lines(srv, start, NO_WRITE_PROGRESS),
             "the error log to report the stalled connection as dropped "
             f"(a line matching {NO_WRITE_PROGRESS.pattern!r})", timeout=10, server=srv)
        # Reading now finds the body cut short: the rest of what the kernel buffered, then EOF or
        # a reset, never the whole 64 MiB and the chunked body's end.
        try:
            rest = read_to_end(stalled)
        except socket.timeout:
            pytest.fail("the stalled client's connection was neither dropped nor finished")
        received = first + rest
        assert len(received) < STREAM_TOTAL and not received.endswith(b"\r\n0\r\n\r\n"), \
            f"the client that stopped reading got the whole body ({len(received)} bytes)"


# -- defect 2: a forked child holding a connection -------------------------------------------------

def test_a_connection_held_open_by_a_forked_child_costs_the_worker_no_cpu(
        server: tuple[Server, str]) -> None:
    srv, address = server
    # The app forks a child that keeps the connection's descriptor; the worker answers with
    # Connection: close and closes its own. The client reads by Content-Length and closes (its FIN
    # makes the socket, still open in the child, readable for good).
    answer = get(address, "/fork-hold")
    assert answer.status == 200, answer.body
    worker, child = answer.json()["worker"], answer.json()["child"]
    try:
        before = cpu_seconds(worker)
        time.sleep(1.0)  # the measurement window, not a wait for an outcome
        used = cpu_seconds(worker) - before
        assert used < 0.2, (f"the worker used {used:.2f} s of CPU in 1 s with nothing to do but "
                            "a closed connection a forked child still holds")
        # And it still serves.
        assert get(address, "/after-fork").json()["pid"] == worker
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


# -- defect 7: unsent responses are bounded --------------------------------------------------------

def test_clients_that_do_not_read_big_bodies_leave_the_worker_bounded(
        bounded: tuple[Server, str]) -> None:
    srv, address = bounded
    worker = get(address, "/pid").json()["pid"]
    run = uuid.uuid4().hex
    made = re.compile(re.escape(f"unsent body made {run}-"))
    peak = rss(worker)

    def all_made() -> bool:
        nonlocal peak
        peak = max(peak, rss(worker))
        return len(new_lines(srv, 0, made)) >= UNSENT_CLIENTS

    with contextlib.ExitStack() as stack:
        for number in range(UNSENT_CLIENTS):
            sock = stack.enter_context(connect(address, timeout=10, rcvbuf=4096))
            sock.sendall(small_request(f"/unsent?marker={run}-{number}", close=False))
        # Every request reaches the app (each makes a fresh 50 MB body); none is read.
        poll(all_made, f"the app to make all {UNSENT_CLIENTS} bodies", timeout=60, server=srv)
        # A client that reads is still served, by the same worker.
        with connect(address, timeout=10) as reading:
            reading.sendall(small_request("/reading"))
            try:
                answer = Reader(reading).read_response()
            except socket.timeout:
                pytest.fail(f"a reading client was not answered:\n{srv.output}")
        assert answer.status == 200 and answer.json()["pid"] == worker
        peak = max(peak, rss(worker))
        assert peak < RSS_LIMIT, (f"the worker reached {peak / 2**20:.0f} MiB holding bodies for "
                                  f"{UNSENT_CLIENTS} clients that do not read")


# -- defect 8: a 100-continue body that never comes ------------------------------------------------

def test_a_100_continue_body_that_never_comes_does_not_delay_other_clients(
        server: tuple[Server, str]) -> None:
    srv, address = server
    with contextlib.ExitStack() as stack:
        waiting = stack.enter_context(connect(address, timeout=10))
        waiting.sendall(b"POST /read-body HTTP/1.1\r\nHost: test.example\r\n"
                        b"Expect: 100-continue\r\nContent-Length: 10\r\n\r\n")
        bystanders = [stack.enter_context(connect(address, timeout=10)) for _ in range(5)]
        readers = [Reader(sock) for sock in bystanders]
        for round_ in (1, 2):  # keep-alive: two requests on each connection
            for number, (sock, reader) in enumerate(zip(bystanders, readers)):
                sock.sendall(small_request(f"/bystander/{number}/{round_}", close=False))
                try:
                    response = reader.read_response()
                except socket.timeout:
                    pytest.fail(f"bystander {number} (request {round_}) was not answered while a "
                                f"100-continue request waited for its body:\n{srv.output}")
                assert response.status == 200 and not response.closes
                assert response.json()["path"] == f"/bystander/{number}/{round_}"
        # The request that waits for its body is still unanswered (whether it was told 100
        # Continue already is the server's choice), and its connection open.
        if select.select([waiting], [], [], 0)[0]:
            pending = waiting.recv(65536, socket.MSG_PEEK)
            assert pending, "the 100-continue request's connection was closed"
            interim, sep, after = pending.partition(b"\r\n\r\n")
            assert interim.startswith(b"HTTP/1.1 100 ") and sep and not after, \
                f"the 100-continue request was answered before its body came: {pending[:200]!r}"
        # Its body comes at last, and it is answered.
        waiting.sendall(b"0123456789")
        final = Reader(waiting).read_response()
        assert final.status == 200 and final.json()["length"] == 10

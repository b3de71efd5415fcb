"""Zero-drop stop and recycling (issue 19): TERM serves every connection already waiting in the
listen queue, --shutdown-delay keeps serving while the load balancers catch up, and recycling
(--max-requests, HUP) never resets a keep-alive client: its current request is answered, with
"Connection: close", and the next goes to a new connection."""

from __future__ import annotations

import http.client
import re
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import APPS, connect, parse_address

pytestmark = pytest.mark.usefixtures("worker_class")

APP = "stop_app:app"
QUEUED = 500


def _read_response(sock: socket.socket) -> bytes:
    """Everything until the server closes (every response here says Connection: close)."""
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def test_term_serves_every_queued_connection(start_server: Any, tmp_path: Path) -> None:
    """A busy single worker, 500 clients waiting in the listen queue with their requests sent, then
    TERM: every one of them gets its response (Gunicorn resets them)."""
    gate = tmp_path / "gate"
    server, (address,) = start_server(APP, "-w", "1", "--backlog", "2048", "--graceful-timeout",
                                      "60", "-c", str(APPS / "stop_hooks.py"))
    holder = connect(address, timeout=60)
    holder.sendall(f"GET /hold?gate={gate} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    server.wait_for_line(r"holding in \d+")
    waiting = []
    for n in range(QUEUED):
        sock = connect(address, timeout=60)
        sock.sendall(f"GET /{n} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        waiting.append(sock)
    server.proc.send_signal(signal.SIGTERM)
    server.wait_for_line(r"Handling signal: term")
    gate.touch()  # the worker finishes its request once it has seen TERM, then finds the queue
    try:
        held = holder.recv(65536)
        assert held.startswith(b"HTTP/1.1 200 "), held
        assert b"connection: close" in held.lower()  # (TERM came during it: its connection's last)
        failed = []
        for n, sock in enumerate(waiting):
            try:
                answer = _read_response(sock)
            except OSError as exc:
                failed.append(f"{n}: {exc!r}")
                continue
            if not answer.startswith(b"HTTP/1.1 200 "):
                failed.append(f"{n}: {answer!r}")
        assert not failed, f"{len(failed)} of {QUEUED} failed, e.g. {failed[:3]}"
    finally:
        for sock in [holder, *waiting]:
            sock.close()
    assert server.stop() == 0


def test_shutdown_delay_serves_then_refuses(start_server: Any) -> None:
    """--shutdown-delay: after TERM the master says it is going, new connections are still served
    for the delay, and refused once the server has stopped."""
    server, (address,) = start_server(APP, "-w", "2", "--shutdown-delay", "3")
    server.proc.send_signal(signal.SIGTERM)
    server.wait_for_line(r"Shutdown delay: Shutting down in 3 s")
    for _ in range(20):  # new connections, each its own
        with connect(address, timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            assert _read_response(sock).startswith(b"HTTP/1.1 200 ")
    assert "Shutting down: Master" not in server.output
    assert server.proc.wait(30) == 0
    family, target = parse_address(address)
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        with pytest.raises(ConnectionRefusedError):
            sock.connect(target)


class _KeepAliveClient(threading.Thread):
    """Requests one after another on a keep-alive connection; a new connection only after a
    response that said Connection: close. Any other end of a connection is a failure."""

    def __init__(self, address: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        family, target = parse_address(address)
        assert family == socket.AF_INET
        self.host, self.port = target  # type: ignore[misc]
        self.stop = stop
        self.failures: list[str] = []
        self.closes = 0
        self.served = 0
        self.pids: set[str] = set()

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        while not self.stop.is_set():
            try:
                conn.request("GET", "/")
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.failures.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                continue
            if response.status != 200:
                self.failures.append(f"status {response.status}")
            self.pids.add(body.decode())
            self.served += 1
            if response.will_close:
                self.closes += 1
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        conn.close()


@pytest.mark.parametrize("recycle", ["max-requests", "hup"])
def test_recycling_under_keep_alive_load_drops_nothing(start_server: Any, recycle: str) -> None:
    """Workers replaced under continuous keep-alive load (--max-requests, or HUP midway): no
    reset, no failed request; the replaced workers' clients were told Connection: close."""
    flags = ["-w", "2", "--keep-alive", "30"]
    if recycle == "max-requests":
        flags += ["--max-requests", "60", "--max-requests-jitter", "20"]
    server, (address,) = start_server(APP, *flags)
    stop = threading.Event()
    clients = [_KeepAliveClient(address, stop) for _ in range(6)]
    for client in clients:
        client.start()
    try:
        if recycle == "hup":
            server.proc.send_signal(signal.SIGHUP)
        # Two workers gone under load (replaced, their clients told to reconnect), then the
        # replacements serve a while before the load ends.
        # (HUP: one old worker gone is enough here; see the report of issue 19 on a second one
        # sometimes outliving an early HUP)
        exits = 2 if recycle == "max-requests" else 1
        deadline = time.monotonic() + 20
        while sum("Worker exiting" in line for line in list(server.lines)) < exits:
            assert time.monotonic() < deadline, server.output
            threading.Event().wait(0.01)  # polling the log
        served = sum(c.served for c in clients)
        while sum(c.served for c in clients) < served + 50 and all(c.is_alive() for c in clients):
            threading.Event().wait(0.01)  # polling the clients' progress
    finally:
        stop.set()
    for client in clients:
        client.join(120)
        assert not client.is_alive()
    failures = [f for client in clients for f in client.failures]
    assert not failures, failures
    assert sum(client.closes for client in clients) > 0, server.output  # some worker did stop
    booted = [m.group(1) for m in map(re.compile(r"Booting worker with pid: (\d+)").search,
                                      list(server.lines)) if m]
    pids = set().union(*(client.pids for client in clients))
    assert {f"served by {pid}" for pid in booted[2:]} & pids, (pids, booted)  # replacements served
    assert server.stop() == 0

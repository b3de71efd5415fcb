"""The master's small HTTP server on --metrics-bind: /metrics, /livez, /readyz.

Theory of operation
-------------------
Like the control socket (control.py), it is a ``SteppedServer`` (stepped_server.py): no thread, a
step at a time from the master's loop, so the master never blocks on a client.

It speaks just enough HTTP/1.x for scrapers and probes (Prometheus, Kubernetes, HAProxy): one
request per connection, GET or HEAD, the head read whole (at most ``MAX_HEAD`` bytes; a body is
not expected and not read), a response with Content-Length and ``Connection: close``, then the
connection is closed. A client that is slow to send its head or to read the answer is dropped after
``CLIENT_SECONDS`` (looked at whenever a new one comes) and at most ``MAX_CLIENTS`` are held, so
the health endpoints cannot be held hostage by idle connections.
"""

from __future__ import annotations

import logging
import selectors
import socket
from typing import Callable

from .metrics import CONTENT_TYPE
from .stepped_server import Client, SteppedServer

MAX_HEAD = 8192
MAX_CLIENTS = 64
CLIENT_SECONDS = 10.0

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            503: "Service Unavailable"}


def response(status: int, body: bytes, content_type: str = "text/plain; charset=utf-8",
             head_only: bool = False, extra: str = "") -> bytes:
    head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n").encode()
    return head if head_only else head + body


class MetricsServer(SteppedServer):
    """The listening socket and its clients, served a step at a time from the master's loop.
    ``render`` makes /metrics' text; ``ready`` says whether /readyz answers 200."""

    what = "Metrics"

    def __init__(self, sock: socket.socket, render: Callable[[], str], ready: Callable[[], bool],
                 log: logging.Logger) -> None:
        super().__init__(sock, log)
        self._render = render
        self._ready = ready

    def _prune(self, now: float) -> None:
        for client in list(self._clients.values()):
            if now - client.since > CLIENT_SECONDS:
                self._drop(client)

    def _make_room(self) -> None:
        if len(self._clients) >= MAX_CLIENTS:
            self._drop(min(self._clients.values(), key=lambda c: c.since))

    def _read(self, client: Client) -> None:
        data = self._receive(client, MAX_HEAD)
        if data is None:
            return
        if client.outbox:
            return  # answered already: what follows is ignored
        client.inbox += data
        end = client.inbox.find(b"\r\n\r\n")
        if end < 0:
            end = client.inbox.find(b"\n\n")  # (lenient: a hand-typed request)
        if end < 0:
            if len(client.inbox) > MAX_HEAD:
                client.outbox += response(400, b"request head too large\n")
                self._write(client)
            return
        client.outbox += self.answer(bytes(client.inbox[:end]))
        self._write(client)

    def answer(self, head: bytes) -> bytes:
        """The whole response to a request head."""
        parts = head.split(b"\r\n" if b"\r\n" in head else b"\n", 1)[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            return response(400, b"bad request\n")
        method, target = parts[0], parts[1]
        path = target.split(b"?", 1)[0]
        if path not in (b"/metrics", b"/livez", b"/readyz"):
            return response(404, b"not found\n")
        if method not in (b"GET", b"HEAD"):
            return response(405, b"method not allowed\n", extra="Allow: GET, HEAD\r\n")
        head_only = method == b"HEAD"
        if path == b"/livez":
            return response(200, b"ok\n", head_only=head_only)
        if path == b"/readyz":
            if self._ready():
                return response(200, b"ready\n", head_only=head_only)
            return response(503, b"not ready\n", head_only=head_only)
        return response(200, self._render().encode(), CONTENT_TYPE, head_only=head_only)

    def _write(self, client: Client) -> None:
        if not self._send(client):
            return
        if not client.outbox:
            self._drop(client)  # one request per connection: all said
            return
        self._selector.modify(client.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)

    def close(self) -> None:
        for client in list(self._clients.values()):
            self._drop(client)
        self._selector.close()

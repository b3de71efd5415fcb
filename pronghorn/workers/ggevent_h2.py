"""HTTP/2 in the gevent worker: the connection's greenlet reads and feeds the shared HTTP/2
connection (workers/h2.py's ``H2Connection`` over http/h2.py's session), and each request stream
runs in a greenlet of its own, as a connection does for HTTP/1.1.

The stream's Channel is workers/h2.py's ``StreamProto``, unchanged: it queues the response in the
session, which frames what the peer's windows admit. What gevent adds is here: the bytes to send
go to the socket under one lock (a greenlet at a time, in order; whichever greenlet sends waits for
a slow client, and the sweep's --write-timeout ends that wait), and a stream whose output is
backlogged waits on an Event that its window's opening sets.
"""

from __future__ import annotations

import socket
import time
from typing import Any, BinaryIO

import gevent
from gevent import getcurrent
from gevent.event import Event
from gevent.lock import Semaphore

from ..cycle.request import Job
from ..http import Request
from .h2 import H2Connection, StreamProto


class _Clock:
    """What H2Connection reads of its loop: the time."""

    @staticmethod
    def time() -> float:
        return time.monotonic()

    @staticmethod
    def call_soon(function: Any, *args: Any) -> None:
        gevent.spawn(function, *args)

    @staticmethod
    def call_later(delay: float, function: Any, *args: Any) -> None:
        gevent.spawn_later(delay, function, *args)


class _Transport:
    """What H2Connection writes through: the connection's blocking send, one greenlet at a time."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.lock = Semaphore()

    def write(self, data: bytes) -> None:
        conn = self.conn
        with self.lock:
            # The sweep ends a write that makes no progress by throwing into the greenlet that
            # waits in it: this one, for as long as it sends.
            owner, conn.greenlet = conn.greenlet, getcurrent()
            try:
                conn.write(data)
            finally:
                conn.greenlet = owner

    def is_closing(self) -> bool:
        return bool(self.conn.closed)

    def can_write_eof(self) -> bool:
        return False


class GeventLink:
    """The side of a gevent ``_Connection`` that H2Connection and its streams ask for (an
    HTTPProtocol's names)."""

    write_paused = False

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.worker = conn.worker
        self.loop = _Clock()
        self.builder = conn.builder
        self.client_socket = conn.client_socket
        self.policy = conn.policy
        self.transport = _Transport(conn)

    @property
    def closed(self) -> bool:
        return bool(self.conn.closed)

    def close(self) -> None:
        self.conn.closed = True


def serve_h2(conn: Any, first: bytes,
             upgrade: tuple[Request, BinaryIO, bytes] | None = None) -> None:
    """The connection speaks HTTP/2 (first: what was read of it already): read and feed until the
    client or the session ends it, or it has been idle for --keep-alive with no stream open.
    ``upgrade``: an HTTP/1.1 request's Upgrade: h2c (the request, its body, its HTTP2-Settings):
    101 first, and the request is stream 1's."""
    link = GeventLink(conn)

    def submit(stream: StreamProto) -> None:
        gevent.spawn(_run_stream, conn, stream)

    if upgrade is None:
        h2 = H2Connection(link, submit=submit)
    else:
        request, body, settings = upgrade
        try:
            h2 = H2Connection(link, upgrade_settings=settings, defer=True, submit=submit)
        except ValueError as exc:
            conn.refuse(400, str(exc))
            return
        conn.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                   b"Upgrade: h2c\r\n\r\n")
        h2.flush()  # our SETTINGS, the first frame after the 101
        h2.upgraded(request, body)
    if first:
        h2.feed(first)
    cfg = conn.worker.cfg
    policy = conn.policy
    while not conn.closed:
        try:
            data = conn.recv()
        except socket.timeout:  # the policy's idle deadline (the sweep throws it)
            now = time.monotonic()
            busy = h2.streams or h2.session.outbound or h2.bodies
            if busy and now - h2.last_active < max(cfg.keepalive, cfg.header_timeout):
                policy.since = now  # (streams are at work: the idle wait starts again)
                continue
            h2.session.close()
            h2.flush()
            break
        if not data:
            break
        h2.feed(data)
        policy.since = time.monotonic()
    h2.lost()


def _run_stream(conn: Any, stream: StreamProto) -> None:
    worker = conn.worker
    policy = stream.policy
    assert policy.request is not None
    job = stream.job = Job(policy.request, policy.body, stream, stream.builder, policy.peer,
                           policy.trailers, policy)
    try:
        result = worker.cycle.run(job)
        if result is not None:
            for _ in result:  # DRAIN: the stream's window, or the connection's end
                if stream.backlogged() and not stream.gone():
                    ready = Event()
                    stream.park_event(ready)
                    ready.wait()
    finally:
        stream.job = None
        worker.ctx.request_finished()

"""HTTP/2 on the asyncio driver (workers/aio.py): one ``H2Connection`` per connection that chose h2
(ALPN on TLS, or the prior-knowledge preface in cleartext from a trusted peer), and one
``StreamProto`` per request stream.

Theory of operation
-------------------
The connection's ``HTTPProtocol`` hands its bytes here (``feed``); the sans-IO session
(http/h2.py) turns them into stream events. A stream whose request is complete (head and body,
buffered as HTTP/1.1 bodies are, spooled past 1 MiB) is handed to the worker's ``Calls`` exactly
as an HTTP/1.1 connection is: a ``StreamProto`` has the attributes and methods the calls and the
cycle use of an ``HTTPProtocol`` (its ``policy`` with the request, the request cycle's
``Channel``, ``park`` for a stream that waits, and the ASGI waits). So the sync worker runs the
streams one at a time in arrival order, gthread hands them to its threads, and the asgi worker
starts a task per stream, and nothing of the cycle knows it serves HTTP/2.

The cycle frames every response as HTTP/1.1 (validated head, Date, Server, Content-Length or
chunked decided by ``ResponseFramer``, which never chunks for version 2): the stream takes the
head apart (``split_head``) into a HEADERS frame and sends the body as DATA, through the session's
per-stream flow control. A stream waits (``backlogged``) while its own queued output is above
STREAM_HIGH_WATER or the socket pushes back, and is woken when its window opens: a slow reader
holds up only its own stream.
"""

from __future__ import annotations

import asyncio
from typing import Any, BinaryIO, Callable, Generator

from ..cycle.request import DRAIN, Job, Wait
from ..http import HTTPError, Request
from ..http.events import Fields
from ..http.h2 import (Drained, H2Session, H2Settings, StreamData, StreamEnd, StreamGone,
                       StreamRefused, StreamRequest, split_head)
from ..wsgi.body import BodyBuffer, empty_input

# How long an ended connection reads and drops what its client still sends (see H2Connection.end).
LINGER = 1.0
# A stream's response output queued beyond the peer's window past which its writer waits.
STREAM_HIGH_WATER = 64 * 1024


def settings_from(cfg: Any) -> H2Settings:
    return H2Settings(cfg.http2_max_concurrent_streams, cfg.http2_initial_window_size,
                      cfg.http2_max_frame_size, cfg.http2_max_header_list_size)


class StreamPolicy:
    """What the calls and the hook objects read of a connection's policy, for one stream."""

    __slots__ = ("request", "body", "peer", "trailers", "served", "socket_peer", "proxy_header",
                 "builder")

    def __init__(self, request: Request, body: BinaryIO, peer: Any, trailers: Fields,
                 builder: Any) -> None:
        self.request: Request | None = request
        self.builder = builder  # the connection's (the calls build each stream's environ by it)
        self.body = body
        self.peer = peer
        self.trailers = trailers
        self.served = 0
        self.socket_peer = peer
        self.proxy_header = None

    def take_unparsed(self) -> bytes:
        return b""


class StreamProto:
    """One request stream: the HTTPProtocol-shaped object the calls take, and its Channel."""

    body_error: HTTPError | None = None

    def __init__(self, conn: "H2Connection", stream_id: int, request: Request,
                 body: BinaryIO, trailers: Fields) -> None:
        proto = conn.proto
        self.conn = conn
        self.session = conn.session
        self.stream_id = stream_id
        self.worker = proto.worker
        self.loop = proto.loop
        self.builder = proto.builder
        self.client_socket = proto.client_socket
        self.policy = StreamPolicy(request, body, proto.policy.peer, trailers,
                                   proto.policy.builder)
        self.job: Job | None = None
        self.closed = False  # the stream is over (answered, reset, or the connection is gone)
        self.head: bytes | None = b""  # the response head's bytes so far; None once sent
        self._resume: Callable[[], None] | None = None
        # The asgi worker's: its task, and the futures its cycle waits on.
        self.task: asyncio.Task[None] | None = None
        self.websocket = None
        self.gone_future: asyncio.Future[None] | None = None

    # -- the Channel --------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.closed or not data:
            return
        self._out(data, False)
        self.conn.flush()

    def _out(self, data: bytes, end: bool) -> None:
        head = self.head
        session = self.session
        sid = self.stream_id
        while head is not None:
            head += data
            at = head.find(b"\r\n\r\n")
            if at < 0:
                self.head = head
                if end:  # (a response is never only part of a head: the cycle writes it whole)
                    session.reset(sid)
                return
            status, fields = split_head(head[:at + 2])
            data = head[at + 4:]
            if status < 200:  # an interim response (103 Early Hints): the final head follows
                session.send_head(sid, status, fields, False)
                head = b""
                continue
            self.head = head = None
            session.send_head(sid, status, fields, end and not data)
            if end and not data:
                return
        session.send_body(sid, data, end)

    def complete(self, data: bytes, keep_alive: bool) -> None:
        self.job = None
        if self.closed:
            return
        self._out(data, True)
        self._finish()

    def backlogged(self) -> bool:
        return (self.session.pending(self.stream_id) > STREAM_HIGH_WATER
                or self.conn.proto.write_paused)

    def gone(self) -> bool:
        return self.closed or self.conn.proto.closed

    def refuse(self, status: int, reason: str, log: bool = True) -> None:
        self.job = None
        if log:
            self.worker.log.debug("Refused HTTP/2 request from %s: %d %s", self.policy.peer,
                                  status, reason)
        if not self.closed:
            self.head = b""
            self._out(self.worker.cycle.error_page(status, reason), True)
            self._finish()

    def abort(self) -> None:
        self.job = None
        if not self.closed:
            self.session.reset(self.stream_id)
            self._finish()

    def gather(self) -> None:
        return None  # (each piece goes to the session at once)

    def can_sendfile(self) -> bool:
        return False  # the bytes go through the session's framing

    def sendfile(self, fd: int, offset: int, count: int) -> Generator[Wait, None, int]:
        raise OSError("no sendfile on HTTP/2")

    def detach(self) -> Any:
        raise OSError("gunicorn.socket cannot take over an HTTP/2 stream")

    def _finish(self) -> None:
        self.closed = True
        self.conn.stream_over(self)
        self.conn.flush()

    # -- waiting ------------------------------------------------------------------------------------

    def park(self, wait: Wait, resume: Callable[[], None]) -> None:
        if self.gone() or not self.backlogged():
            self.loop.call_soon(resume)
        else:
            self._resume = resume

    def park_event(self, event: Any) -> None:
        """gevent's wait: event.set() once the stream may go on (see ggevent_h2)."""
        self._resume = event.set
        if self.gone() or not self.backlogged():
            self.wake()

    def wake(self) -> None:
        resume, self._resume = self._resume, None
        if resume is not None:
            resume()

    # -- the asgi worker's waits (cycle.asgi_request.AsyncChannel) ------------------------------------

    async def drained(self) -> None:
        waiter = self.loop.create_future()

        def resume() -> None:
            if not waiter.done():
                waiter.set_result(None)

        self.park(DRAIN, resume)
        await waiter

    async def request_body(self) -> BinaryIO:
        return self.policy.body  # (complete before the app was called)

    async def disconnected(self) -> None:
        if self.gone():
            return
        if self.gone_future is None:
            self.gone_future = self.loop.create_future()
        await asyncio.shield(self.gone_future)

    def lost(self) -> None:
        """The client reset the stream, or the connection ended."""
        closed = self.closed
        self.closed = True
        self.job = None if closed else self.job
        self.wake()
        future = self.gone_future
        if future is not None and not future.done():
            future.set_result(None)
        task = self.task
        if task is not None and not task.done() and not closed:
            self.loop.call_later(self.worker.cfg.asgi_disconnect_grace_period, task.cancel)


class H2Connection:
    """One HTTP/2 connection on an HTTPProtocol: see the module's docstring."""

    def __init__(self, proto: Any, preface_seen: bool = False,
                 upgrade_settings: bytes | None = None, defer: bool = False,
                 submit: Callable[[Any], None] | None = None) -> None:
        """proto: the connection's workers.aio.HTTPProtocol (not imported: aio imports this).
        Raises ValueError for an upgrade's invalid HTTP2-Settings."""
        self.proto = proto
        worker = proto.worker
        self.session = H2Session(worker.cycle.limits, settings_from(worker.cfg), preface_seen,
                                 upgrade_settings)
        # Who runs a stream: the worker's Calls (gevent: a greenlet each, see ggevent_h2).
        self.submit = submit if submit is not None else worker.calls.submit
        self.spool_dir = worker.cycle.spool_dir
        self.bodies: dict[int, BodyBuffer] = {}
        self.streams: dict[int, StreamProto] = {}  # streams handed to the calls, not yet over
        self.last_active = proto.loop.time()
        self.draining = False  # our side has ended (see end)
        self.upgrade_pending: StreamProto | None = None  # stream 1 of an h2c upgrade, until the preface
        if not defer:
            self.flush()  # our SETTINGS

    def feed(self, data: bytes) -> None:
        proto = self.proto
        if proto.closed or self.draining:
            return
        now = self.last_active = proto.loop.time()
        session = self.session
        for event in session.receive_data(data, now):
            stream: StreamProto | None
            if isinstance(event, StreamData):
                body = self.bodies.get(event.stream_id)
                if body is not None:
                    body.write(event.data)
            elif isinstance(event, StreamRequest):
                if event.request.content_length != 0:
                    self.bodies[event.stream_id] = BodyBuffer(self.spool_dir)
            elif isinstance(event, StreamEnd):
                buffered = self.bodies.pop(event.stream_id, None)
                made = StreamProto(self, event.stream_id, event.request,
                                   buffered.as_input() if buffered is not None else empty_input(),
                                   event.trailers)
                self.streams[event.stream_id] = made
                self.submit(made)  # (an HTTPProtocol of its own shape)
            elif isinstance(event, StreamRefused):
                self.bodies.pop(event.stream_id, None)
                stream = self.streams.get(event.stream_id)
                if stream is None:
                    refused = StreamProto(self, event.stream_id, _REFUSED, empty_input(), ())
                    refused.refuse(event.status, event.reason)
                    session.refuse_body(event.stream_id)
            elif isinstance(event, StreamGone):
                self.bodies.pop(event.stream_id, None)
                stream = self.streams.pop(event.stream_id, None)
                if stream is not None:
                    stream.lost()
            elif isinstance(event, Drained):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream.wake()
        if self.upgrade_pending is not None and session.preface_received:
            self._run_upgraded()
        self.flush()
        if session.closed is None:
            self._close_if_stopping()  # (a window that opened may have let the last bytes go)
        if session.closed is not None:
            proto.worker.log.debug("HTTP/2 connection from %s ended: %s", proto.policy.peer,
                                   session.closed)
            self.end()

    def upgraded(self, request: Request, body: BinaryIO) -> None:
        """The HTTP/1.1 request that asked for h2c is stream 1's (after the 101). It runs once
        the client's preface is in: a client may not read past the 101 before it has sent that
        (curl keeps only 32 KiB after the 101 it has not answered yet)."""
        self.upgrade_pending = StreamProto(self, 1, request, body, ())
        self.streams[1] = self.upgrade_pending

    def _run_upgraded(self) -> None:
        stream, self.upgrade_pending = self.upgrade_pending, None
        if stream is not None and not stream.closed:
            self.submit(stream)

    def flush(self) -> None:
        data = self.session.data_to_send()
        proto = self.proto
        if data and not proto.closed:
            proto.transport.write(data)

    def stream_over(self, stream: StreamProto) -> None:
        self.streams.pop(stream.stream_id, None)
        self.last_active = self.proto.loop.time()
        self._close_if_stopping()

    def _close_if_stopping(self) -> None:
        """While the worker stops: a connection whose streams are all answered, every byte of
        them framed (none waits for a window), says GOAWAY and closes."""
        session = self.session
        if (self.proto.worker.closing and not self.streams and not session.outbound
                and not session.inbound and not self.bodies):
            session.close()
            self.flush()
            self.proto.close()

    def end(self) -> None:
        """The connection is over (GOAWAY sent, or the client's end). Closing at once, with the
        client's next frames unread, would make the kernel reset the connection, and a client
        may lose the GOAWAY that says why: end our side, read and drop for a moment, then close."""
        self.lost()
        proto = self.proto
        transport = proto.transport
        if proto.closed or transport.is_closing() or not transport.can_write_eof():
            proto.close()
            return
        self.draining = True
        transport.write_eof()
        proto.loop.call_later(LINGER, proto.close)

    def lost(self) -> None:
        streams, self.streams = self.streams, {}
        for stream in streams.values():
            stream.lost()

    def resumed(self) -> None:
        """The socket takes bytes again: every waiting stream may go on."""
        for stream in list(self.streams.values()):
            stream.wake()

    def jobs(self) -> list[Job]:
        return [stream.job for stream in self.streams.values() if stream.job is not None]

    def sweep(self, now: float) -> bool:
        """Whether the connection is over: idle (no stream) for --keep-alive (or a second, while
        stopping), or a request stalled for --header-timeout."""
        cfg = self.proto.worker.cfg
        idle = now - self.last_active
        if self.session.outbound:
            # Responses wait for windows the client does not open: --write-timeout, as for a
            # client that does not read.
            return bool(cfg.write_timeout and idle >= cfg.write_timeout)
        if self.streams:
            return False
        if self.bodies or self.session.inbound:
            return bool(idle >= cfg.header_timeout)
        keepalive = min(cfg.keepalive, 1.0) if self.proto.worker.closing else cfg.keepalive
        if idle >= keepalive:
            self.session.close()
            self.flush()
            return True
        return False


_REFUSED = Request("GET", b"/", b"/", b"", (2, 0), (), True, False, 0, False, None)


class H2Choice:
    """The worker's one decision about HTTP/2, made once: which connections may speak it."""

    def __init__(self, cfg: Any, tls: bool) -> None:
        from ..trust import matcher

        wanted = "h2" in cfg.http_protocols.split(",")
        self.alpn = wanted and tls
        mode = cfg.http2_cleartext
        self.prior_knowledge = wanted and not tls and mode in ("prior-knowledge", "both")
        # With prior-knowledge alone a trusted peer must open with the preface (else 400); with
        # both, an HTTP/1.1 request is served as such.
        self.preface_required = mode == "prior-knowledge"
        self.upgrade = wanted and not tls and mode in ("upgrade", "both")
        self.trusted = matcher(cfg.forwarded_allow_ips)

    @property
    def enabled(self) -> bool:
        return self.alpn or self.prior_knowledge or self.upgrade


def with_h2(protocol_class: type) -> type:
    """protocol_class (HTTPProtocol or the asgi worker's) able to switch a connection to HTTP/2.
    Only a worker configured for h2 uses it: an HTTP/1.1-only worker's connections pay nothing."""
    return type("H2" + protocol_class.__name__, (_H2Switch, protocol_class), {})


class _H2Switch:
    """Mixed in before an HTTPProtocol class (see with_h2): its callbacks, HTTP/2 aware."""

    h2: H2Connection | None = None
    _sniffed: bytes | None = None  # the first bytes, while they may be the preface

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        proto: Any = self
        if proto.closed:
            return
        choice: H2Choice = proto.worker.h2_choice
        if choice.alpn:
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
                self.h2 = H2Connection(proto)
        elif choice.trusted(proto.policy.peer):
            if choice.prior_knowledge:
                self._sniffed = b""
            if choice.upgrade:
                self.submit = self._upgrade_or_submit
                # An upgrade's request body must be whole before the 101 (every byte after it is
                # HTTP/2), so this connection's HTTP/1.1 bodies are buffered, not streamed to an
                # ASGI app as they arrive.
                proto.policy.stream_body = False

    def _upgrade_or_submit(self, proto: Any) -> None:
        """A trusted peer's HTTP/1.1 request: switched to h2c if it asks (101, then the request
        is stream 1's), else run as it is."""
        from ..http.h2 import upgrade_request

        policy = proto.policy
        asked = upgrade_request(policy.request) if self.h2 is None else None
        if asked is None:
            proto.worker.calls.submit(proto)
            return
        request, settings = asked
        try:
            h2 = H2Connection(proto, upgrade_settings=settings, defer=True)
        except ValueError as exc:
            proto.refuse(400, str(exc))
            return
        proto.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                              b"Upgrade: h2c\r\n\r\n")
        self.h2 = h2
        h2.flush()  # our SETTINGS, the first frame after the 101
        h2.upgraded(request, policy.body)
        unread = policy.take_unparsed()  # (the client may send its preface without waiting)
        if proto.reading_paused:
            proto.reading_paused = False
            proto.transport.resume_reading()
        if unread:
            h2.feed(unread)

    def data_received(self, data: bytes) -> None:
        h2 = self.h2
        if h2 is not None:
            h2.feed(data)
            return
        sniffed = self._sniffed
        if sniffed is None:
            super().data_received(data)  # type: ignore[misc]
            return
        from ..http.h2 import PREFACE

        proto: Any = self
        sniffed += data
        size = min(len(sniffed), len(PREFACE))
        if sniffed[:size] == PREFACE[:size]:
            if size < len(PREFACE):
                self._sniffed = sniffed
                return
            self._sniffed = None
            h2 = self.h2 = H2Connection(proto)
            h2.feed(sniffed)
            return
        self._sniffed = None
        if proto.worker.h2_choice.preface_required:
            proto.refuse(400, "expected the HTTP/2 connection preface (--http2-cleartext "
                              "prior-knowledge)")
            return
        super().data_received(sniffed)  # type: ignore[misc]

    def eof_received(self) -> bool:
        if self.h2 is not None:
            return False  # (the client is done: close)
        if self._sniffed is not None:
            self._sniffed = None
        return bool(super().eof_received())  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)  # type: ignore[misc]
        if self.h2 is not None:
            self.h2.lost()

    def resume_writing(self) -> None:
        super().resume_writing()  # type: ignore[misc]
        if self.h2 is not None:
            self.h2.resumed()

    def sweep(self, now: float) -> None:
        h2 = self.h2
        if h2 is None:
            super().sweep(now)  # type: ignore[misc]
            return
        proto: Any = self
        proto._note_output(now)
        if proto.policy.write_stalled(now):
            proto.drop_stalled()
        elif h2.sweep(now):
            proto.close()

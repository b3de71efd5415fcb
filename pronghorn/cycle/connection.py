"""One client connection's rules, without I/O: what to do with the bytes that arrived, and when.

The driver (a worker class) reads the socket and calls ``feed(data)``; the answer says what to
do next: read more, run the request that is ready, refuse it, close, or stop reading. ``expired(now)``
is asked every sweep (about once a second) and names the deadline that passed, if one did. Nothing
here blocks, sleeps or knows a socket, so the sync, gthread and gevent workers (and the ASGI worker
to come) share every rule: the PROXY header, the repeated-head shortcut, a body buffered before the
app is called, ``Expect: 100-continue``, pipelining, keep-alive, and the deadlines for a head, a body,
an idle connection and a write that makes no progress.

Expect: 100-continue
--------------------
With ``defer_continue`` (gthread, gevent: the app's call may wait), the app is called as soon as the
head is in and ``100 Continue`` is sent only if it reads ``wsgi.input`` (RFC 9110 §10.1.1): the
driver's deferred input calls ``want_body`` and waits until ``feed`` or ``expired`` says the body is
complete or has failed. Without it (the sync worker, whose app call runs on the event loop and must
never wait for a client), ``100 Continue`` is sent at once and the body is buffered like any other
before the app is called, as Gunicorn does for every worker class; a client that never sends it
meets the body deadline and delays no one.

Streamed bodies (``stream_body``, the asgi worker)
--------------------------------------------------
Every request with a body is READY at its head; what the core decodes goes into a bounded
``StreamedBody`` (``BODY_MORE`` wakes the app; the driver pauses reading while the app is behind,
and the body's deadline then does not run). A body that breaks its framing or a limit is the
driver's one error response (``body_error``). A body the app left unread: kept if it had all
arrived, read and dropped (``discarding``) if at most DISCARD_LIMIT of a Content-Length body is
still to come, else the connection closes.
"""

from __future__ import annotations

from typing import Any, BinaryIO, Callable, Final

from ..http import (CONTINUE, NEED_DATA, PAUSED, Data, EndOfMessage, HTTPConnection, HTTPError,
                    Request)
from ..http.events import Fields
from ..http.proxy_protocol import ProxyHeader, ProxyProtocolError, parse as parse_proxy_header
from ..http.uwsgi import UWSGIConnection
from ..wsgi.body import BodyBuffer, empty_input
from ..wsgi.environ import EnvironBuilder
from .request import RequestCycle
from .streamed_body import HIGH_WATER as STREAM_HIGH_WATER, StreamedBody

# What feed() and expired() ask of the driver. (Final, as every constant read per request in a
# compiled module: mypyc puts the value in place of a lookup in the module's dict.)
READ: Final = 0       # read more bytes
READY: Final = 1      # a request is ready for the app: .request, and .body (None: the body is deferred)
REFUSE: Final = 2     # write .refusal's error page, then close
CLOSE: Final = 3      # close quietly
PAUSE: Final = 4      # stop reading until the response in progress is complete (input piles up)
BODY_DONE: Final = 5  # the deferred body is complete or has failed: wake the app's call waiting for it
IDLE_OVER: Final = 6  # the keep-alive wait is over: close, unless the client's next bytes are unread
STALLED: Final = 7    # a write has made no progress for --write-timeout: drop the connection
PULL: Final = 8       # (after a response) pipelined input is buffered: pull() it
BODY_MORE: Final = 9  # more of a streamed body arrived (stream_body): wake the app's receive

# Phases of a connection.
IDLE: Final = 0
HEAD: Final = 1
BODY: Final = 2
APP: Final = 3

# The most of a streamed body left unread by its app that is read and dropped to keep the
# connection (see response_done); past it, the connection closes.
DISCARD_LIMIT: Final = 64 * 1024
# Read-side backpressure: stop reading a connection whose unparsed input passes this while it waits.
READ_BUFFER_LIMIT: Final = 256 * 1024
# While stopping gracefully, an idle keep-alive connection is closed after this many idle seconds
# (or --keep-alive, if shorter).
GRACEFUL_IDLE = 1.0


class ConnectionPolicy:
    """See the module's docstring. Every attribute is set in __init__, in one order: instances then
    share one key layout and each read on the request path stays a fast one."""

    __slots__ = ("cycle", "clock", "conn", "builder", "peer", "send", "defer_continue", "phase", "since",
                 "request", "body", "trailers", "refusal", "proxy_pending", "deferred_body", "body_state",
                 "body_error", "body_wanted", "continue_sent", "unsent", "stalled_since", "served",
                 "socket_peer", "proxy_header", "stream_body", "discarding")

    def __init__(self, cycle: RequestCycle, builder: EnvironBuilder, peer: Any,
                 clock: Callable[[], float], send: Callable[[bytes], None],
                 defer_continue: bool) -> None:
        self.cycle = cycle
        self.clock = clock  # the driver's monotonic clock, read only when a deadline starts
        # (--protocol uwsgi: the same events from nginx's uwsgi packets; see http/uwsgi.py)
        self.conn: HTTPConnection | UWSGIConnection = (
            HTTPConnection(cycle.limits, cycle.head_cache) if cycle.uwsgi is None
            else UWSGIConnection(cycle.limits, cycle.uwsgi.packets))
        self.builder = builder
        self.peer = peer
        self.send = send  # for 100 Continue, the one thing this policy writes itself
        self.defer_continue = defer_continue
        self.phase = IDLE
        self.since = clock()  # when the current phase began, or input last arrived
        self.request: Request | None = None
        self.body: BinaryIO | None = None
        self.trailers: Fields = ()  # the fields a chunked body that came before the app ended with
        self.refusal: tuple[int, str] = (400, "")
        # The PROXY header received so far, while one is still owed (--proxy-protocol).
        self.proxy_pending: bytes | None = b"" if cycle.proxy_mode is not None else None
        # A body the app gets late (Expect: 100-continue, defer_continue): what arrived, and None
        # while it is arriving, then "complete" or why it failed.
        self.deferred_body: BodyBuffer | StreamedBody | None = None
        self.body_state: str | None = None
        self.body_error: HTTPError | None = None
        self.body_wanted = False
        self.continue_sent = False
        # Output the driver could not hand to the kernel yet, and since when none of it has left.
        self.unsent = 0
        self.stalled_since = 0.0
        # For the ``req`` of hooks and custom loggers (Gunicorn's req_number, peer_addr and
        # proxy_protocol_info): requests finished on this connection (counted by the cycle, and
        # only while such hooks are set), the socket's own peer (the PROXY header's client
        # replaces ``peer``), and that header.
        self.served = 0
        self.socket_peer = peer
        self.proxy_header: ProxyHeader | None = None
        # The asgi worker's: every body goes to the app as it arrives (a StreamedBody in
        # deferred_body), the app called at the head; set by the driver after construction.
        self.stream_body = False
        # After a response, the rest of a streamed body its app left unread is read and dropped.
        self.discarding = False

    def start(self) -> int:
        """Before the first byte: only the configured proxies may say who the client is."""
        if self.proxy_pending is not None and not self.cycle.proxy_allowed(
                self.peer if self.peer is not None else ""):
            self.cycle.log.debug("Closed a connection from %s: not in --proxy-allow-from", self.peer)
            return CLOSE
        uwsgi = self.cycle.uwsgi
        if uwsgi is not None and not uwsgi.allowed(self.peer):
            self.cycle.log.warning("Closed a uwsgi connection from %s: not in --uwsgi-allow-from",
                                   self.peer)
            return CLOSE
        return READ

    # -- input ------------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> int:
        """Bytes from the client (b"": it has finished sending)."""
        phase = self.phase
        # (proxy_pending is read into a local: _take_proxy_header changes it, and a test of the
        # attribute would let mypy, and so mypyc, take it as still not None afterwards)
        pending = self.proxy_pending
        if phase == IDLE and pending is None and data:
            # A keep-alive client repeating a request it made before: nothing to parse.
            whole = self.conn.receive_repeated_request(data)
            if whole is not None:
                self.request, received = whole
                self.body = BodyBuffer.holding(received).as_input() if received else empty_input()
                self.phase = APP
                return READY
        if pending is not None:
            rest = self._take_proxy_header(data)
            if rest is None:
                return REFUSE if self.proxy_pending is None else READ
            if not rest and data:
                return READ
            data = rest
        self.conn.receive_data(data)
        if phase == APP:
            if self.deferred_body is not None and self.body_state is None:
                if data:
                    self.since = self.clock()
                step = self._collect()
                if self.discarding:
                    return self._discarded(step)
                return step
            # A pipelined request waits for the response in progress; past the limit, stop reading.
            return PAUSE if self.conn.buffered > READ_BUFFER_LIMIT else READ
        if phase != HEAD:  # (IDLE or BODY: input arrived, the deadline starts again)
            self.since = self.clock()
            if phase == IDLE:
                self.phase = HEAD
        return self.pull()

    def pull(self) -> int:
        """Events from what is buffered, until more bytes are needed or a request is ready."""
        conn = self.conn
        while True:
            try:
                event = conn.next_event()
            except HTTPError as exc:
                if conn.__class__ is UWSGIConnection:
                    # A packet nginx would not send: drop the peer, no HTTP page (http/uwsgi.py).
                    self.cycle.log.warning("Closed a uwsgi connection from %s: %s", self.peer,
                                           exc.reason)
                    return CLOSE
                self.refusal = (exc.status, exc.reason)
                return REFUSE
            if event is NEED_DATA:
                if conn.at_eof:
                    return CLOSE  # (between requests, or in the middle of one: nothing to answer)
                if self.phase == IDLE and not conn.idle:
                    self.phase = HEAD
                return READ
            if event.__class__ is Request:
                request: Request = event
                self.request = request
                if conn.__class__ is UWSGIConnection:  # (the scheme its HTTPS var says)
                    self.builder = self.builder.for_scheme(conn.scheme)
                if not request.has_body:
                    continue  # its END_OF_MESSAGE follows
                if self.stream_body:
                    return self._stream(request)
                if request.expect_continue and self.defer_continue:
                    # The app is called now; 100 Continue goes out if it reads wsgi.input.
                    self.deferred_body = BodyBuffer(self.cycle.spool_dir)
                    self.body_state = None
                    self.body_wanted = self.continue_sent = False
                    self.body = None
                    self.phase = APP
                    return READY
                if request.expect_continue:
                    self.send(CONTINUE)
                # (the body, buffered before the app runs)
                self.deferred_body = BodyBuffer(self.cycle.spool_dir)
                self.phase = BODY
                self.since = self.clock()
            elif event.__class__ is EndOfMessage:
                # (a BodyBuffer: a streamed body ends in _collect, never here)
                buffered = self.deferred_body
                self.deferred_body = None
                self.body = (buffered.as_input()  # type: ignore[union-attr]
                             if buffered is not None else empty_input())
                self.trailers = event.trailers
                self.phase = APP
                return READY
            elif event.__class__ is Data:
                assert self.deferred_body is not None
                self.deferred_body.write(event.data)
            elif event is PAUSED:  # (cannot happen: a request is answered before the next is read)
                return PAUSE

    def _stream(self, request: Request) -> int:
        """The app is called at the head and takes the body as it arrives (see streamed_body);
        with Expect: 100-continue, 100 Continue goes out when it first asks (want_body)."""
        self.deferred_body = StreamedBody()
        self.body_state = None
        expecting = request.expect_continue
        # Without Expect the client sends at once: the body's deadline runs from the head.
        self.body_wanted = self.continue_sent = not expecting
        self.body = None
        self.phase = APP
        self.since = self.clock()
        if not expecting and self._collect() == BODY_DONE and self.body_error is not None:
            # What came with the head already breaks the body's framing or limits: refused as a
            # buffered body would be, before the app is called.
            self.refusal = (self.body_error.status, self.body_error.reason)
            return REFUSE
        return READY

    def _take_proxy_header(self, data: bytes) -> bytes | None:
        """Collect the PROXY header; the bytes after it, or None while it is incomplete (or bad:
        then proxy_pending is None and refusal is set)."""
        assert self.proxy_pending is not None
        received = self.proxy_pending + data
        try:
            header = parse_proxy_header(received, self.cycle.proxy_mode or "auto")
        except ProxyProtocolError as exc:
            self.proxy_pending = None
            self.refusal = (400, str(exc))
            return None
        if header is None:
            if not data:  # the client finished sending before its header did
                self.proxy_pending = None
                self.refusal = (400, "incomplete PROXY header")
                return None
            self.proxy_pending = received
            if self.phase == IDLE:  # the head's deadline applies to the PROXY header too
                self.phase = HEAD
                self.since = self.clock()
            return None
        self.proxy_pending = None
        self.proxy_header = header
        if header.source is not None:
            self.peer = header.source
        return received[header.consumed:]

    def take_unparsed(self) -> bytes:
        """The app takes the connection over: what was read past its request, which is the app's."""
        return self.conn.take_unparsed()

    # -- a body the app asks for late (Expect: 100-continue) ---------------------------------------------

    def want_body(self) -> bool:
        """The app reads wsgi.input: say Continue (once), and start the body's deadline. True when
        the body is already complete or failed (no need to wait)."""
        if not self.body_wanted:
            self.body_wanted = True
            self.since = self.clock()
        if not self.continue_sent:
            # Sent even when the body is already here: the client asked, and may wait for it.
            self.continue_sent = True
            self.send(CONTINUE)
        if self.body_state is None:
            self._collect()  # what came with the head, or meanwhile, is buffered already
        return self.body_state is not None

    def deferred_result(self) -> BodyBuffer:
        """The deferred body once BODY_DONE: the whole of it, or OSError (the app sees the client's
        failure as a broken connection; its 4xx goes out once the app returns, see body_error)."""
        body = self.deferred_body
        if self.body_state != "complete" or not isinstance(body, BodyBuffer):
            raise OSError(self.body_state or "the request body could not be read")
        return body

    def _collect(self) -> int:
        """The body of a request the app already has: into deferred_body, never parsed as more
        requests. A client may send it before our 100 Continue; that is fine."""
        conn = self.conn
        body = self.deferred_body
        assert body is not None
        while True:
            try:
                event = conn.next_event()
            except HTTPError as exc:
                self.body_error = exc
                return self._body_over(f"invalid request body: {exc.reason}")
            if event.__class__ is Data:
                body.write(event.data)
            elif event.__class__ is EndOfMessage:
                body.trailers = event.trailers
                return self._body_over("complete")
            else:
                if conn.at_eof:
                    return self._body_over("the client closed the connection before the whole body")
                # (a streamed body's app may be waiting for what came)
                return BODY_MORE if self.stream_body else READ

    def _discarded(self, step: int) -> int:
        """The unread rest of a streamed body is being dropped: once it is all in, on to the next
        request (CLOSE if it broke its framing: nothing after it can be trusted)."""
        body = self.deferred_body
        if body is not None and body.__class__ is StreamedBody:
            body.take(body.size)  # (dropped as it comes)
        if step != BODY_DONE:
            return READ
        self.discarding = False
        if self.body_state != "complete":
            return CLOSE
        step = self.response_done(True)
        return self.pull() if step == PULL else step

    def _body_over(self, state: str) -> int:
        self.body_state = state
        return BODY_DONE

    # -- after the response -----------------------------------------------------------------------------

    def response_done(self, keep_alive: bool) -> int:
        """The response is complete: CLOSE, or READ for the next request (PULL: pipelined input is
        buffered already; pull() it, from the driver's loop rather than from inside the response)."""
        self.request = None
        self.body = None
        self.trailers = ()
        deferred = self.deferred_body
        if (deferred is not None and self.body_state is None and isinstance(deferred, StreamedBody)
                and self.body_wanted and keep_alive and self.phase == APP):
            left = self.conn.body_left
            if left is not None and left <= DISCARD_LIMIT:
                # A streamed body the app left unread, with little of it still to come: read and
                # drop it, then serve the next request (closing would cost the client a new
                # connection for a few bytes). More than that, or chunked: close.
                self.discarding = True
                deferred.take(deferred.size)
                self.since = self.clock()
                return READ
        self.deferred_body = None
        if deferred is not None and self.body_state is None and self.phase == APP:
            # The app answered without the body it was offered; the client may still send it, and
            # those bytes must never be parsed as a request: close.
            return CLOSE
        if deferred is not None and not self.body_wanted:
            return CLOSE  # (the same, with the body already here: nobody read it)
        if not keep_alive:
            return CLOSE
        self.phase = IDLE
        self.since = self.clock()
        self.body_error = None
        conn = self.conn
        conn.start_next_cycle()
        return PULL if conn.input_left else READ

    # -- output -----------------------------------------------------------------------------------------

    def output(self, unsent: int, now: float) -> None:
        """The driver's output still waiting for the client: a write makes progress while this
        shrinks; the stall's clock starts when it stops shrinking."""
        if not unsent:
            self.stalled_since = 0.0
        elif unsent < self.unsent or not self.stalled_since:
            self.stalled_since = now
        self.unsent = unsent

    # -- deadlines --------------------------------------------------------------------------------------

    def expired(self, now: float) -> int:
        """The deadline that has passed, if one has (READ: none)."""
        if self.write_stalled(now):
            return STALLED
        cfg = self.cycle.cfg
        phase = self.phase
        if phase == IDLE:
            keepalive = cfg.keepalive
            if self.cycle.closing:
                keepalive = min(keepalive, GRACEFUL_IDLE)
            if self.conn.idle and now - self.since >= keepalive:
                return IDLE_OVER
        elif phase == HEAD:
            if now - self.since >= cfg.header_timeout:
                self.refusal = (408, "request head not received in time")
                return REFUSE
        elif phase == BODY:
            if now - self.since >= cfg.header_timeout:
                self.refusal = (408, "request body stalled")
                return REFUSE
        elif self.discarding:
            if now - self.since >= cfg.header_timeout:
                return CLOSE  # (the rest of an unread body did not come: nobody is owed a reply)
        elif (self.body_wanted and self.body_state is None and self.deferred_body is not None
              and now - self.since >= cfg.header_timeout
              # (a streamed body the app is slow to take holds the client back: not its fault)
              and not (self.stream_body and self.deferred_body.size > STREAM_HIGH_WATER)):
            self.body_error = HTTPError(408, "request body not received in time")
            return self._body_over("timed out waiting for the request body")
        return READ

    def log_dropped(self, why: str, unsent: int) -> None:
        """The one log line for a connection dropped for output its client does not take (why:
        the --write-timeout that passed, unless another reason is given)."""
        why = why or f"no write progress for {self.cycle.cfg.write_timeout:g} s"
        self.cycle.log.warning("Dropped the connection from %s: no write progress, %s "
                               "(%d bytes unsent)", self.peer, why, unsent)

    def write_stalled(self, now: float) -> bool:
        """Whether output has waited for the client, with none of it taken, for --write-timeout."""
        timeout = self.cycle.cfg.write_timeout
        return bool(self.stalled_since and timeout and now - self.stalled_since >= timeout)

    def read_deadline(self) -> float:
        """When the read the driver is about to wait on must end (0: none): for a driver that
        waits for each read itself (gevent)."""
        cfg = self.cycle.cfg
        phase = self.phase
        if phase == IDLE:
            keepalive = min(cfg.keepalive, GRACEFUL_IDLE) if self.cycle.closing else cfg.keepalive
            return self.since + keepalive
        if phase == APP:
            return self.since + cfg.header_timeout if self.body_wanted else 0.0
        return self.since + cfg.header_timeout


class UnsentOutput:
    """--max-unsent-bytes for one worker: the connections holding output that their clients have
    not taken, and which to drop when together they hold too much: those with no write progress
    for the longest first, until the rest fits. The connection that has just written (keep) is
    never among them: a single response larger than the bound is the app's to make, and its client
    may be reading it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.holders: dict[ConnectionPolicy, Any] = {}  # policy -> its driver's connection
        self.total = 0

    def note(self, policy: ConnectionPolicy, owner: Any, unsent: int, now: float) -> None:
        """owner's output still waiting for its client is now unsent bytes."""
        self.total += unsent - policy.unsent
        policy.output(unsent, now)
        if unsent:
            self.holders[policy] = owner
        else:
            self.holders.pop(policy, None)

    def to_drop(self, keep: ConnectionPolicy | None = None) -> list[Any]:
        total = self.total
        if total <= self.limit:
            return []
        others = sorted((p for p in self.holders if p is not keep),
                        key=lambda p: p.stalled_since or float("inf"))
        drop = []
        for policy in others:
            if total <= self.limit:
                break
            drop.append(self.holders[policy])
            total -= policy.unsent
        return drop

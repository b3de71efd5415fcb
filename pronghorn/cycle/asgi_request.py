"""One ASGI HTTP request's life: the same cycle as a WSGI request's, with an async app call.

Theory of operation
-------------------
The driver (workers/asgi.py) runs ``ASGICycle.run(job)`` as a task per request. The environ is
built as for WSGI (``RequestCycle``'s builder: the trusted-proxy policy and the PROXY header's
client applied once, the same for both interfaces), the scope is made from it (asgi/scope.py), and
the app's messages become the same ``Exchange`` calls a WSGI app's ``start_response`` and body
make, over the same ``ResponseFramer``: the app's status and headers are validated as for WSGI,
and the access log, statsd and the hooks (``RequestCycle.finish``) see a WSGI-shaped request.

``receive()`` hands the body out in pieces of at most BODY_PIECE bytes, as the app asks for them.
The app is called at the head and the body streams in as it arrives (``Channel.body_piece``, over
the policy's ``cycle/streamed_body.py``: bounded, the client paused while the app is behind); with
``Expect: 100-continue``, ``100 Continue`` goes out when the app first receives. (A request the
head cache answered whole carries its body in ``job.body``.) Once the body is out, ``receive()``
waits until the client is gone (or the response is complete) and says ``http.disconnect``.

``send()`` writes through the job's Channel as each message comes; a response with more to come
waits for the client to drain whenever the connection pushes back, so an app streaming to a slow
reader is held at the client's pace and never makes the worker buffer an unbounded response.
"""

from __future__ import annotations

from http import HTTPStatus
import builtins
import os
from time import perf_counter
from typing import Any, Awaitable, BinaryIO, Callable, ClassVar, Generator, Protocol

from ..asgi.app import ASGIApp, Message
from ..asgi.scope import HTTPScopes
from ..http import HTTPError, ResponseFramer
from ..wsgi.exchange import Exchange
from ..wsgi.body import empty_input
from .client_gone import ClientDisconnected
from .counters import STARTED
from .request import SERVER, UWSGI_FRAMING, Channel, Job, RequestCycle, Wait

# BaseExceptionGroup where Python has it (3.11 on): () matches nothing.
_GROUPS: Any = getattr(builtins, "BaseExceptionGroup", ())

# The most bytes of the body one http.request message carries.
BODY_PIECE = 64 * 1024

# ASGI gives a status code; the status line's text for each (the framer takes WSGI's status text).
_STATUS_TEXT = {int(s): f"{int(s)} {s.phrase}" for s in HTTPStatus}


def status_text(code: int) -> str:
    text = _STATUS_TEXT.get(code)
    return text if text is not None else f"{code} Unknown"


def from_disconnect(exc: BaseException) -> bool:
    """Whether an app's exception is our ClientDisconnected, maybe wrapped on its way out (a
    task group's ExceptionGroup, or raised from it): not the app's error, nothing to log."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, ClientDisconnected):
            return True
        if isinstance(exc, _GROUPS):  # (Python 3.11's BaseExceptionGroup)
            return all(from_disconnect(inner) for inner in getattr(exc, "exceptions", ()))
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
        seen += 1
    return False


class AsyncChannel(Channel, Protocol):
    """What an ASGI request asks of its connection beyond a Channel: the waits."""

    def drained(self) -> Awaitable[None]:
        """Done when the client has taken enough of the output for more to be written."""

    def body_piece(self, most: int) -> Awaitable[tuple[bytes, bool]]:
        """The next piece of a streamed body (at most ``most`` bytes, waiting for one to arrive)
        and whether more follows; 100 Continue is sent on the first call if the client expects
        it. Raises OSError if the client fails to send the body."""

    def waiting(self, wait: Wait) -> Awaitable[None]:
        """Done when ``wait`` (a sendfile generator's) is satisfied, or the client is gone."""

    def disconnected(self) -> Awaitable[None]:
        """Done when the client has gone (closed, or sent its end of the connection)."""


class _Request:
    """One request's receive and send: the state of the app's conversation."""

    __slots__ = ("job", "channel", "exchange", "body", "body_done", "complete", "started",
                 "trailers", "body_ended", "pending_trailers")

    #: --sendfile (False: --no-sendfile), set once per worker by ASGICycle (a class attribute: one
    #: store fewer per request).
    use_sendfile: ClassVar[bool] = False
    #: The last http.response.start headers made of bytes alone, and their str pairs for the
    #: Exchange: an app answering with the same headers again (most do) skips the conversion. One
    #: entry per worker (a class attribute: the loop's thread alone reads and writes it).
    last_headers: ClassVar[tuple[tuple[Any, ...], list[tuple[str, str]]]] = ((), [])

    def __init__(self, job: Job, channel: AsyncChannel, exchange: Exchange) -> None:
        self.job = job
        self.channel = channel
        self.exchange = exchange
        self.body: BinaryIO | None = job.body  # None: streamed (channel.body_piece)
        self.body_done = False
        self.complete = False  # the response's last bytes are written
        self.started = False  # http.response.start was sent
        self.trailers = False  # the app announced trailers (http.response.start's trailers)
        self.body_ended = False  # (with trailers) the body is out, the trailers not yet
        # (pending_trailers: set when trailers are announced)

    async def receive(self) -> Message:
        if not self.body_done:
            body = self.body
            if body is None:  # streamed as it arrives
                if self.complete:
                    # The response is out: the connection has gone on (its next request, or a
                    # close), and the rest of this body is not the app's to read (as uvicorn).
                    self.body_done = True
                    return {"type": "http.disconnect"}
                try:
                    piece, more = await self.channel.body_piece(BODY_PIECE)
                except OSError:
                    self.body_done = True
                    return {"type": "http.disconnect"}
                if not more:
                    self.body_done = True
                return {"type": "http.request", "body": piece, "more_body": more}
            piece = body.read(BODY_PIECE)
            more = len(piece) == BODY_PIECE
            if not more:
                self.body_done = True
            return {"type": "http.request", "body": piece, "more_body": more}
        if not self.complete:
            await self.channel.disconnected()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        channel = self.channel
        exchange = self.exchange
        if kind == "http.response.body":
            if not self.started:
                raise RuntimeError("http.response.body sent before http.response.start")
            if self.complete or self.body_ended:
                return
            if channel.gone():
                raise ClientDisconnected("the client has gone")
            body = message.get("body", b"")
            if type(body) is not bytes:
                if not isinstance(body, (bytes, bytearray, memoryview)):
                    raise TypeError(f"http.response.body's body is {type(body).__name__}, "
                                    "not bytes")
                body = bytes(body)
            framer = exchange.framer
            if message.get("more_body", False):
                if body:
                    exchange.write(body)
                elif not exchange.head_sent:
                    channel.write(exchange.head_bytes())
                if channel.backlogged():
                    await channel.drained()
                return
            if self.trailers:
                # The body ends here, the response with the trailers: no Content-Length of ours
                # (chunked on HTTP/1.1, so that trailers can follow).
                exchange.write(body)
                self.body_ended = True
                return
            self.complete = True
            if not exchange.head_sent:
                channel.complete(exchange.whole([body]), framer.keep_alive)
            else:
                if body:
                    channel.write(framer.body(body))
                channel.complete(framer.end(), framer.keep_alive)
        elif kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            status = message["status"]
            if type(status) is not int or not 100 <= status <= 999:
                raise HTTPError(500, f"invalid ASGI status {status!r}")
            raw = tuple(message.get("headers", ()))
            last = _Request.last_headers
            if raw == last[0]:
                headers = last[1].copy()
            else:
                headers = [(bytes(name).decode("latin-1"), bytes(value).decode("latin-1"))
                           for name, value in raw]
                if all(type(item) is tuple and type(item[0]) is bytes and type(item[1]) is bytes
                       for item in raw):
                    # (only immutable fields: a hit must be the same headers, whatever the app
                    # does with its objects afterwards)
                    _Request.last_headers = (raw, headers.copy())
            exchange.start_response(status_text(status), headers)
            if message.get("trailers", False):
                self.trailers = True
                self.pending_trailers: list[Any] = []
            self.started = True
        elif kind == "http.response.trailers":
            await self._trailers(message)
        elif kind == "http.response.pathsend":
            await self._pathsend(message)
        elif kind == "http.response.zerocopysend":
            await self._zerocopysend(message)
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} in an HTTP request")

    # -- the extensions: http.response.trailers, pathsend and zerocopysend -------------------------

    async def _trailers(self, message: Message) -> None:
        if not self.trailers:
            raise RuntimeError("http.response.trailers without trailers=True in "
                               "http.response.start")
        if not self.body_ended:
            raise RuntimeError("http.response.trailers sent before the body's end")
        if self.complete:
            return
        pending = self.pending_trailers
        pending.extend(message.get("headers", ()))
        if message.get("more_trailers", False):
            return
        fields = [(bytes(name).decode("latin-1"), bytes(value).decode("latin-1"))
                  for name, value in pending]
        self.complete = True
        framer = self.exchange.framer
        self.channel.complete(framer.end_with_trailers(fields), framer.keep_alive)

    def end_without_trailers(self) -> None:
        """The app returned after its body without the trailers it announced: none are sent."""
        self.complete = True
        framer = self.exchange.framer
        self.channel.complete(framer.end(), framer.keep_alive)

    async def _pathsend(self, message: Message) -> None:
        """The extension http.response.pathsend: the file at ``path`` is the whole body."""
        if not self.started:
            raise RuntimeError("http.response.pathsend sent before http.response.start")
        if self.complete or self.body_ended:
            return
        if self.channel.gone():
            raise ClientDisconnected("the client has gone")
        fd = os.open(message["path"], os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            size = os.fstat(fd).st_size
            await self._send_file(fd, 0, size, last=True)
        finally:
            os.close(fd)
        self._ended()

    async def _zerocopysend(self, message: Message) -> None:
        """The extension http.response.zerocopysend: ``count`` bytes (all to the end without it)
        of the file descriptor ``file`` (an int or an object with fileno()), from ``offset`` (the
        descriptor's position without it, which then moves past what was sent)."""
        if not self.started:
            raise RuntimeError("http.response.zerocopysend sent before http.response.start")
        if self.complete or self.body_ended:
            return
        if self.channel.gone():
            raise ClientDisconnected("the client has gone")
        file = message["file"]
        fd = file if isinstance(file, int) else file.fileno()
        offset = message.get("offset")
        moves = offset is None
        if offset is None:
            offset = os.lseek(fd, 0, os.SEEK_CUR)
        count = message.get("count")
        if count is None:
            count = max(os.fstat(fd).st_size - offset, 0)
        more = bool(message.get("more_body", False))
        sent = await self._send_file(fd, offset, count, last=not more)
        if moves:
            os.lseek(fd, offset + sent, os.SEEK_SET)
        if not more:
            self._ended()

    def _ended(self) -> None:
        """The body's last bytes are out: end the response (or wait for its trailers)."""
        if self.trailers:
            self.body_ended = True
            return
        self.complete = True
        framer = self.exchange.framer
        self.channel.complete(framer.end(), framer.keep_alive)

    async def _send_file(self, fd: int, offset: int, count: int, last: bool) -> int:
        """count bytes of fd from offset, head first: with sendfile where the connection allows
        it (not TLS, not --no-sendfile, not chunked framing), else read and written in pieces."""
        channel = self.channel
        exchange = self.exchange
        framer = exchange.framer
        if not exchange.head_sent:
            # A last piece of known size: its length frames the response (unless the app gave one).
            channel.write(exchange.head_bytes(count if last and not self.trailers else None))
        if self.use_sendfile and not framer.chunked and channel.can_sendfile():
            allowed = framer.reserve(count)
            if not allowed:
                return 0
            return await self._drive(channel.sendfile(fd, offset, allowed))
        sent = 0
        while sent < count and not channel.gone():
            piece = os.pread(fd, min(BODY_PIECE, count - sent), offset + sent)
            if not piece:
                break
            exchange.write(piece)
            sent += len(piece)
            if channel.backlogged():
                await channel.drained()
        return sent

    async def _drive(self, steps: Generator[Wait, None, int]) -> int:
        """Run a driver's sendfile generator, awaiting each wait it yields."""
        try:
            wait = next(steps)
            while True:
                await self.channel.waiting(wait)
                wait = steps.send(None)
        except StopIteration as done:
            return int(done.value)
        finally:
            steps.close()


class ASGICycle:
    """Everything one worker's ASGI requests share: the app, the WSGI cycle whose after-request
    half they reuse, the root path and the lifespan's state."""

    def __init__(self, cycle: RequestCycle, app: ASGIApp, root_path: str,
                 state: Callable[[], dict[str, Any] | None]) -> None:
        self.cycle = cycle
        self.app = app
        self.root_path = root_path
        self.state = state
        self.scopes = HTTPScopes(root_path)
        _Request.use_sendfile = cycle.cfg.sendfile

    async def run(self, job: Job, channel: AsyncChannel, server: tuple[str, int] | None) -> None:
        """Call the app for job's request and write its response; the access log and the hooks
        after it. Never raises (but CancelledError: the driver gave up on the request)."""
        cycle = self.cycle
        request = job.request
        if cycle.timed:
            job.started = perf_counter()
            count_slots = cycle.count_slots  # (--metrics-bind: one more request in flight)
            if count_slots is not None:
                count_slots[STARTED] += 1
        # Without an access log, statsd, metrics or hooks nothing after the app reads an environ:
        # the scope then needs only the scheme and the client, which the builder can often tell
        # without making one (the trusted-proxy policy stays its own).
        scheme = (None if cycle.after_request
                  else job.builder.scheme_without_environ(request, job.peer))
        environ: dict[str, Any] | None = None
        if scheme is None:
            try:
                environ = job.builder.build(request, job.body if job.body is not None
                                            else empty_input(), job.peer, job.trailers)
            except HTTPError as exc:  # a trusted proxy's claims do not add up, a refused header
                channel.refuse(exc.status, exc.reason)
                cycle.count_refused(job, exc.status)
                return
            if request.version == (2, 0):
                # What the access log shows: Gunicorn 27's ASGI worker says "HTTP/2" (its WSGI
                # workers "HTTP/2.0", as the environ does); the scope's http_version is "2".
                environ["SERVER_PROTOCOL"] = "HTTP/2"
        framer = ResponseFramer(request.version if cycle.uwsgi is None else UWSGI_FRAMING,
                                request.keep_alive and not cycle.closing,
                                request.method == "HEAD", cycle.response_heads)
        exchange = Exchange(framer, channel.write, cycle.dates.get(), SERVER)
        job.exchange = exchange
        job.environ = environ
        state = _Request(job, channel, exchange)
        try:
            if cycle.pre_request_hook:
                cycle.hooks.call_or_raise("pre_request", cycle.ctx, cycle.hook_request(job))
            scopes = self.scopes
            scope = (scopes.make(request, environ, server, self.state()) if environ is not None
                     else scopes.make_direct(request, scheme or "", scopes.client_of(job.peer),
                                             server, self.state()))
            await self.app(scope, state.receive, state.send)
        except Exception as exc:
            if from_disconnect(exc):
                cycle.log.debug("Client gone during ASGI response %s",
                                request.target.decode("latin-1"))
                cycle.finish(job)
                return
            cycle.log.exception("Exception in ASGI application %s",
                                request.target.decode("latin-1"))
            if not channel.gone():
                cycle.fail(job)
        else:
            if state.body_ended and not state.complete and not channel.gone():
                state.end_without_trailers()
            elif not state.complete and not channel.gone():
                if exchange.head_sent or state.started:
                    # The app returned in the middle of its response: the framing cannot be
                    # finished honestly.
                    if not exchange.head_sent:
                        cycle.log.error("ASGI application returned without completing its "
                                        "response %s", request.target.decode("latin-1"))
                        channel.refuse(500, "incomplete response", log=False)
                    else:
                        channel.abort()
                else:
                    cycle.log.error("ASGI application returned without starting a response %s",
                                    request.target.decode("latin-1"))
                    channel.refuse(500, "the application returned no response", log=False)
        cycle.finish(job)

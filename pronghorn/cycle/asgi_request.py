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
The body is the connection policy's (buffered in memory, spooled to a file past 1 MiB, before the
app is called); with ``Expect: 100-continue`` it is not read at all, and ``100 Continue`` not sent,
until the app first receives. Once the body is out, ``receive()`` waits until the client is gone
(or the response is complete) and says ``http.disconnect``.

``send()`` writes through the job's Channel as each message comes; a response with more to come
waits for the client to drain whenever the connection pushes back, so an app streaming to a slow
reader is held at the client's pace and never makes the worker buffer an unbounded response.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Awaitable, BinaryIO, Callable, Protocol

from ..asgi.app import ASGIApp, Message
from ..asgi.scope import http_scope
from ..http import HTTPError, ResponseFramer
from ..wsgi.exchange import Exchange
from ..wsgi.body import empty_input
from .request import SERVER, Channel, Job, RequestCycle

# The most bytes of the body one http.request message carries.
BODY_PIECE = 64 * 1024

# ASGI gives a status code; the status line's text for each (the framer takes WSGI's status text).
_STATUS_TEXT = {int(s): f"{int(s)} {s.phrase}" for s in HTTPStatus}


def status_text(code: int) -> str:
    text = _STATUS_TEXT.get(code)
    return text if text is not None else f"{code} Unknown"


class AsyncChannel(Channel, Protocol):
    """What an ASGI request asks of its connection beyond a Channel: the waits."""

    def drained(self) -> Awaitable[None]:
        """Done when the client has taken enough of the output for more to be written."""

    def request_body(self) -> Awaitable[BinaryIO]:
        """The body of a request sent with Expect: 100-continue: 100 Continue is sent, and the
        body read. Raises OSError if the client fails to send it."""

    def disconnected(self) -> Awaitable[None]:
        """Done when the client has gone (closed, or sent its end of the connection)."""


class _Request:
    """One request's receive and send: the state of the app's conversation."""

    __slots__ = ("job", "channel", "exchange", "body", "body_done", "complete", "started",
                 "trailers")

    def __init__(self, job: Job, channel: AsyncChannel, exchange: Exchange) -> None:
        self.job = job
        self.channel = channel
        self.exchange = exchange
        self.body: BinaryIO | None = job.body  # None: deferred (Expect: 100-continue)
        self.body_done = False
        self.complete = False  # the response's last bytes are written
        self.started = False  # http.response.start was sent
        self.trailers = False

    async def receive(self) -> Message:
        if not self.body_done:
            body = self.body
            if body is None:
                try:
                    body = self.body = await self.channel.request_body()
                except OSError:
                    self.body_done = True
                    return {"type": "http.disconnect"}
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
            if self.complete or channel.gone():
                return  # (the client has gone: the app learns it from receive())
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
            self.complete = True
            if self.trailers:
                # (the trailers would end the body; they are not sent: the body ends here)
                self.trailers = False
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
            headers = [(bytes(name).decode("latin-1"), bytes(value).decode("latin-1"))
                       for name, value in message.get("headers", ())]
            exchange.start_response(status_text(status), headers)
            self.trailers = bool(message.get("trailers", False))
            self.started = True
        elif kind == "http.response.trailers":
            pass  # (trailers are not sent yet: the body ended without them)
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} in an HTTP request")


class ASGICycle:
    """Everything one worker's ASGI requests share: the app, the WSGI cycle whose after-request
    half they reuse, the root path and the lifespan's state."""

    def __init__(self, cycle: RequestCycle, app: ASGIApp, root_path: str,
                 state: Callable[[], dict[str, Any] | None]) -> None:
        self.cycle = cycle
        self.app = app
        self.root_path = root_path
        self.state = state

    async def run(self, job: Job, channel: AsyncChannel, server: tuple[str, int] | None) -> None:
        """Call the app for job's request and write its response; the access log and the hooks
        after it. Never raises (but CancelledError: the driver gave up on the request)."""
        cycle = self.cycle
        request = job.request
        if cycle.timed:
            from time import perf_counter
            job.started = perf_counter()
            cycle.count_started()
        try:
            environ = job.builder.build(request, job.body if job.body is not None
                                        else empty_input(), job.peer, job.trailers)
        except HTTPError as exc:  # what a trusted proxy said does not add up, or a refused header
            channel.refuse(exc.status, exc.reason)
            cycle.count_refused(job, exc.status)
            return
        framer = ResponseFramer(request.version, request.keep_alive and not cycle.closing,
                                request.method == "HEAD", cycle.response_heads)
        exchange = Exchange(framer, channel.write, cycle.dates.get(), SERVER)
        job.exchange = exchange
        job.environ = environ
        state = _Request(job, channel, exchange)
        try:
            if cycle.pre_request_hook:
                cycle.hooks.call_or_raise("pre_request", cycle.ctx, cycle.hook_request(job))
            scope = http_scope(request, environ, server, self.root_path, self.state())
            await self.app(scope, state.receive, state.send)
        except Exception:
            cycle.log.exception("Exception in ASGI application %s",
                                request.target.decode("latin-1"))
            if not channel.gone():
                cycle.fail(job)
        else:
            if not state.complete and not channel.gone():
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

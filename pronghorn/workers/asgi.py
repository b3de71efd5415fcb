"""The asgi worker: ASGI 3 applications on the shared asyncio driver, a task per request.

Everything about connections is workers/aio.py's (the same ``HTTPProtocol`` and connection policy:
parsing, limits, deadlines, PROXY, TLS, keep-alive, the heartbeat, max-requests); what differs is
who calls the app: ``TaskCalls`` starts a task per ready request, which runs the ASGI request cycle
(cycle/asgi_request.py). The app's coroutines run on the worker's loop, which for them is asyncio's
running loop (unlike the sync worker's, see aio.LoopWorker.run). ``Expect: 100-continue`` is
deferred until the app first receives. The lifespan's startup runs before the listeners serve; its
shutdown once the worker has stopped serving, within --graceful-timeout.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from typing import Any, BinaryIO, Callable

from ..asgi.app import as_asgi3
from ..asgi.lifespan import Lifespan, LifespanFailed
from ..config import Config
from ..cycle.asgi_request import ASGICycle
from ..cycle.asgi_websocket import WebSocketSession, is_websocket
from ..cycle.connection import BODY_DONE, BODY_MORE
from ..cycle.streamed_body import HIGH_WATER, LOW_WATER, StreamedBody
from ..cycle.request import DRAIN, EMPTY, Job, Wait
from ..compiled import mypyc_attr
from .aio import HTTPProtocol, LoopWorker
from .base import WorkerContext

# The exit status the master reads as "the worker cannot boot" (master/arbiter.py's
# WORKER_BOOT_ERROR): it stops, as for an app that cannot be imported, rather than fork again.
BOOT_ERROR_EXIT = 3


@mypyc_attr(allow_interpreted_subclasses=True)  # (as HTTPProtocol: with_h2 mixes into it)
class ASGIProtocol(HTTPProtocol):
    """A connection of the asgi worker: the shared protocol, and the waits an ASGI request has."""

    defer_continue = True

    def __init__(self, worker: LoopWorker, builder: Any) -> None:
        super().__init__(worker, builder)
        self.task: asyncio.Task[None] | None = None
        self.gone_future: asyncio.Future[None] | None = None
        self.body_future: asyncio.Future[None] | None = None
        self.client_done = False  # closed, or sent its end of the connection
        # The WebSocket session this connection switched to: every byte in goes to it.
        self.websocket: WebSocketSession | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.policy.stream_body = True

    def data_received(self, data: bytes) -> None:
        websocket = self.websocket
        if websocket is not None:
            websocket.feed(data)
        else:
            super().data_received(data)

    def pause_input(self, paused: bool) -> None:
        """A WebSocket session's backpressure: stop or resume reading the client."""
        if self.closed or paused == self.reading_paused:
            return
        self.reading_paused = paused
        if paused:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    # -- the waits of cycle.asgi_request.AsyncChannel ----------------------------------------------

    async def waiting(self, wait: Wait) -> None:
        waiter = self.loop.create_future()
        self.park(wait, lambda: self._wake_future(waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if wait is not DRAIN and wait is not EMPTY:  # (sendfile's descriptor: no more watch)
                self.loop.remove_writer(wait.fd)
            self._resume = None
            raise

    async def drained(self) -> None:
        waiter = self.loop.create_future()
        self.park(DRAIN, lambda: self._wake_future(waiter))
        await waiter

    async def body_piece(self, most: int) -> tuple[bytes, bool]:
        policy = self.policy
        stream = policy.deferred_body
        assert isinstance(stream, StreamedBody)
        if not policy.continue_sent:
            policy.want_body()  # (100 Continue goes out here, at the app's first receive)
        while True:
            if stream.size:
                piece = stream.take(most)
                if self.reading_paused and stream.size <= LOW_WATER:
                    policy.since = self.loop.time()  # (the body's deadline runs again)
                    self.pause_input(False)
                return piece, bool(stream.size) or policy.body_state != "complete"
            state = policy.body_state
            if state == "complete":
                return b"", False
            if state is not None or self.closed:
                raise OSError(state or "the client closed the connection")
            waiter = self.body_future = self.loop.create_future()
            try:
                await waiter
            finally:
                self.body_future = None

    def body_arrived(self) -> None:
        """More of a streamed body is in: wake the app's receive; past the high-water mark, stop
        reading the client until the app has taken it (the client's sends block)."""
        self._wake_future(self.body_future)
        stream = self.policy.deferred_body
        if stream is not None and stream.size > HIGH_WATER and not self.reading_paused:
            self.pause_input(True)

    async def disconnected(self) -> None:
        if self.client_done:
            return
        if self.gone_future is None:
            self.gone_future = self.loop.create_future()
        await asyncio.shield(self.gone_future)

    # -- the connection's events -------------------------------------------------------------------

    def _act(self, step: int) -> None:
        if step == BODY_MORE:
            self.body_arrived()
        elif step == BODY_DONE:
            self._wake_future(self.body_future)
            error = self.policy.body_error
            if error is not None and not self.closed:
                # The body broke its framing or a limit: that is the HTTP core's answer, one error
                # response and the close (nothing after it is parsed); the app's receive says
                # http.disconnect and its sends find the client gone.
                job = self.job
                if job is not None and job.exchange is not None and job.exchange.head_sent:
                    self.abort()
                else:
                    self.refuse(error.status, error.reason)
        else:
            super()._act(step)

    def eof_received(self) -> bool:
        if self.websocket is not None:
            self.websocket.lost()  # (a WebSocket client ends with a close frame, not a half-close)
            return False
        keep_open = super().eof_received()
        if self.job is not None:
            # The client sent its end while its request is in hand: for an ASGI app it has gone
            # (as under uvicorn); an SSE stream learns it from http.disconnect and ends.
            self._client_gone()
        return keep_open

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.websocket is not None:
            self.websocket.lost()
        self._wake_future(self.body_future)
        self._client_gone()

    def _client_gone(self) -> None:
        if self.client_done:
            return
        self.client_done = True
        self._wake_future(self.gone_future)
        task = self.task
        if task is not None and not task.done():
            # The app has http.disconnect; past --asgi-disconnect-grace-period its task is
            # cancelled (0: at once), as Gunicorn 27 does. (A half-close counts: see eof_received.)
            grace = self.worker.cfg.asgi_disconnect_grace_period
            if grace:
                self.loop.call_later(grace, task.cancel)
            else:
                task.cancel()

    @staticmethod
    def _wake_future(future: asyncio.Future[None] | None) -> None:
        if future is not None and not future.done():
            future.set_result(None)


class TaskCalls:
    """A task per request on the worker's loop (see the module's docstring)."""

    multithread = False

    def __init__(self, app: Any, cfg: Config, log: logging.Logger) -> None:
        self.app = as_asgi3(app)
        self.cfg = cfg
        self.log = log
        self.tasks: set[asyncio.Task[None]] = set()
        self.lifespan: Lifespan | None = None
        # scope["server"] per listener, by its environ builder: (host, port), None on a unix socket.
        self.servers: dict[Any, Any] = {}
        # The last shared Request (a repeated head, see pronghorn/http/cache.py) found not to be a
        # WebSocket handshake: the same object again is not one either (one reference, bounded).
        self._plain: Any = None

    def start(self, worker: LoopWorker) -> None:
        self.worker = worker
        self.loop = worker.loop
        self.ctx = worker.ctx
        self.asgi = ASGICycle(worker.cycle, self.app, self.cfg.root_path, self._state)
        if self.cfg.asgi_lifespan != "off":
            lifespan = Lifespan(self.app, self.cfg.asgi_lifespan, self.log)
            try:
                self.loop.run_until_complete(lifespan.startup())
            except LifespanFailed as exc:
                self.log.error("ASGI lifespan startup failed: %s", exc)
                raise SystemExit(BOOT_ERROR_EXIT) from None
            if lifespan.supported:
                self.lifespan = lifespan

    def _state(self) -> dict[str, Any] | None:
        return self.lifespan.state if self.lifespan is not None else None

    def submit(self, proto: Any) -> None:
        # An ASGIProtocol, or an HTTP/2 stream of one (workers/h2.py's StreamProto, of the same
        # shape but no subclass: compiled, an annotation naming either class would be checked).
        policy = proto.policy
        assert policy.request is not None
        job = proto.job = Job(policy.request, policy.body, proto, policy.builder, policy.peer,
                              policy.trailers, policy)
        builder = proto.builder
        server = self.servers.get(builder, ())
        if server == ():
            server = self.servers[builder] = _server_of(builder)
        request = policy.request
        if request is not self._plain and is_websocket(request):
            session = proto.websocket = WebSocketSession(
                self.worker.cycle, self.app, job, proto, policy.take_unparsed(),
                self.cfg.websocket_max_message_size, self.cfg.websocket_ping_interval,
                self.cfg.websocket_ping_timeout)
            coroutine = session.run(server, self.cfg.root_path, self._state())
        else:
            if request.shared:
                self._plain = request
            coroutine = self.asgi.run(job, proto, server)
        task = self.loop.create_task(coroutine)
        proto.task = task
        if job.body is None:
            proto.body_arrived()  # (the head may have come with more than the high-water mark)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            self.worker.cycle.count_unanswered()  # (its cycle never reached finish())
        elif task.exception() is not None:
            self.log.error("ASGI request task failed", exc_info=task.exception())
        self.ctx.request_finished()
        if self.worker.closing:
            self.worker.maybe_stopped()

    def idle(self) -> bool:
        return not self.tasks

    def stuck(self) -> bool:
        return False  # a coroutine that blocks the loop stops the heartbeat with it

    def shutdown(self) -> None:
        pass

    def on_loop(self, function: Callable[[], Any]) -> Any:
        return function()

    def stop_lifespan(self) -> None:
        lifespan = self.lifespan
        if lifespan is not None:
            self.lifespan = None
            self.loop.run_until_complete(lifespan.shutdown(self.cfg.graceful_timeout))


class ASGIWorker(LoopWorker):
    app_sees_loop = True

    def __init__(self, app: Any, cfg: Config, listeners: list[socket.socket],
                 log: logging.Logger, ctx: WorkerContext, calls: TaskCalls) -> None:
        self.task_calls = calls
        super().__init__(app, cfg, listeners, log, ctx, calls)
        self.protocol_class = ASGIProtocol

    def new_loop(self) -> asyncio.AbstractEventLoop:
        from .aio import new_loop

        return new_loop(self.cfg.asgi_loop)

    def before_close(self) -> None:
        self.task_calls.stop_lifespan()

    def stop_gracefully(self) -> None:
        """As for HTTP; and every open WebSocket gets a close 1001 (going away), its app the
        --graceful-timeout to finish."""
        super().stop_gracefully()
        for proto in list(self.connections):
            websocket = getattr(proto, "websocket", None)
            if websocket is not None:
                websocket.going_away()


def _server_of(builder: Any) -> tuple[str, int] | None:
    if not builder.on_tcp:
        return None
    return (builder.server_name, int(builder.server_port))


def run_worker(app: Callable[..., Any], cfg: Config, listeners: list[socket.socket],
               log: logging.Logger, ctx: WorkerContext) -> None:
    calls = TaskCalls(app, cfg, log)
    worker = ASGIWorker(app, cfg, listeners, log, ctx, calls)
    worker.run()
    sys.stdout.flush()

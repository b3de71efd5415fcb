"""The gthread worker: the sync worker's event loop holds the connections; threads run the app.

Theory of operation
-------------------
Everything about connections is the sync worker's (workers/sync.py): parsing, keep-alive,
pipelining, deadlines, the graceful stop. What changes is who calls the app. A complete request goes
to one of ``--threads`` threads; while it runs, the loop goes on accepting, reading and answering
the other connections. At most ``--threads`` requests run at once; the rest wait their turn in
arrival order.

Transports belong to the loop: a thread never touches one. It computes the response bytes (framing
is plain computation) and hands them over with ``call_soon_threadsafe``, which keeps their order. A
streamed body meets the loop every WRITE_HIGH_WATER bytes and waits there while the client is slow,
so a fast generator cannot pile a response up in memory. A request that waits for ``100 Continue``
gets its body through the loop as well: the thread asks, the loop sends the interim response and
collects the body.

``--worker-connections`` bounds the connections one worker holds: at the bound it stops accepting
(its listening servers close; the shared listening sockets stay open) and starts again below it, so
further clients wait in the kernel's listen queue, where another worker can take them.

``--timeout`` watches the loop, which ticks the heartbeat whatever the threads do. A request that
hangs ties up one thread and the worker serves on with the others; once every thread has been on
its request longer than ``--timeout``, the worker stops ticking and the master replaces it, naming
the requests in the log.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import signal
import socket
import threading
import time
from functools import partial
from typing import Any, Callable, Iterator

from ..http import CONTINUE, Data, EndOfMessage, HTTPError, Request, ResponseFramer
from ..wsgi.body import BodyBuffer, DeferredInput, empty_input
from ..wsgi.environ import EnvironBuilder
from ..wsgi.exchange import Exchange
from ..wsgi.file_wrapper import FileWrapper
from .base import HookRequest, HookResponse, WorkerContext, body_pieces, close_iterable
from .sync import SERVER, WRITE_HIGH_WATER, HTTPProtocol, SyncWorker, new_asyncio_loop


class _Call:
    """One request handed to a thread."""

    __slots__ = ("proto", "request", "exchange", "started")

    def __init__(self, proto: "ThreadedProtocol", request: Request, exchange: Exchange) -> None:
        self.proto = proto
        self.request = request
        self.exchange = exchange
        self.started = time.monotonic()

    def describe(self) -> str:
        request = self.request
        return f"{request.method} {request.target[:200].decode('latin-1')} from {self.proto.peer}"


class _ThreadPool:
    """``--threads`` threads taking calls from one queue. Leaner than concurrent.futures'
    executor, whose Future, work item, locks and semaphore cost more per request than the
    hand-over itself: nothing here waits on a result (the thread posts its outcome to the loop)."""

    def __init__(self, threads: int) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[..., None], tuple[Any, ...]] | None] = \
            queue.SimpleQueue()
        for number in range(threads):
            # Daemon threads: one still inside the app past the graceful timeout ends with the
            # process instead of holding it open.
            threading.Thread(target=self._run, name=f"pronghorn-thread-{number}",
                             daemon=True).start()

    def submit(self, function: Callable[..., None], *args: Any) -> None:
        self._calls.put((function, args))

    def shutdown(self, threads: int) -> None:
        for _ in range(threads):
            self._calls.put(None)

    def _run(self) -> None:
        calls = self._calls
        while True:
            item = calls.get()
            if item is None:
                return
            function, args = item
            function(*args)  # _serve: it catches and reports what the app raises


class ThreadWorker(SyncWorker):
    __slots__ = ("threads", "max_connections", "pool", "active", "_accept_paused")
    multithread = True
    gathers_access_lines = False  # lines are written by the app's threads, as they finish

    def __init__(self, app: Callable[..., Any], cfg: Any, listeners: list[socket.socket],
                 log: logging.Logger, ctx: WorkerContext) -> None:
        super().__init__(app, cfg, listeners, log, ctx)
        self.threads: int = cfg.threads
        self.pool = _ThreadPool(self.threads)
        self.active: set[_Call] = set()
        self.max_connections: int = cfg.worker_connections
        self._accept_paused = False

    def new_loop(self) -> asyncio.AbstractEventLoop:
        # Threads hand their results back with call_soon_threadsafe and asyncio's futures
        # (run_coroutine_threadsafe): this worker runs on uvloop (or asyncio's own loop).
        return new_asyncio_loop()

    def run(self) -> None:
        try:
            super().run()
        finally:
            # Idle threads stop; any still inside the app (past the graceful timeout) end with
            # the process.
            self.pool.shutdown(self.threads)

    async def create_server(self, sock: socket.socket, builder: EnvironBuilder,
                            start_serving: bool = True) -> asyncio.AbstractServer:
        # A server closes the socket it serves when it closes; this worker closes its servers to
        # stop accepting at --worker-connections, so each gets its own descriptor of the listener.
        return await super().create_server(sock.dup(), builder, start_serving)

    # -- the request queue -------------------------------------------------------------------------

    def submit(self, proto: HTTPProtocol) -> None:
        if len(self.active) < self.threads and not self.queue:
            self._dispatch(proto)  # type: ignore[arg-type]
        else:
            self.queue.append(proto)

    def run_next(self) -> None:
        while len(self.active) < self.threads and self.queue:
            proto = self.queue.popleft()
            if not proto.closed:
                self._dispatch(proto)  # type: ignore[arg-type]

    def _dispatch(self, proto: "ThreadedProtocol") -> None:
        request = proto.request
        assert request is not None
        if proto.deferred is not None:
            body: Any = proto.deferred
        else:
            body = proto.body.as_input() if proto.body is not None else empty_input()
        trailers = proto.body.trailers if proto.body is not None else ()
        proto.body = None
        # The framer is made here, in the loop, so that a TERM arriving while the thread starts
        # finds it and can still make this response the connection's last.
        framer = ResponseFramer(request.version, request.keep_alive and not self.closing,
                                request.method == "HEAD", self.response_heads)
        send = partial(self.loop.call_soon_threadsafe, proto.write)
        call = _Call(proto, request, Exchange(framer, send, self.dates.get(), SERVER))
        self.active.add(call)
        self.pool.submit(self._serve, call, body, trailers)

    # -- in a thread ----------------------------------------------------------------------------------

    def _serve(self, call: _Call, body: Any, trailers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        post = self.loop.call_soon_threadsafe
        proto, request, exchange = call.proto, call.request, call.exchange
        framer = exchange.framer
        environ: dict[str, Any] = {}
        result: Any = None
        finished = False
        out = b""  # a whole response, written by the loop with _finished (one hand-over, not two)
        started = time.perf_counter()
        try:
            environ = proto.builder.build(request, body, proto.peer, trailers)
            if self._pre_request_hook:
                self.hooks.call("pre_request", self.ctx, HookRequest(request, proto.peer))
            result = self.app(environ, exchange.start_response)
            pieces = result if type(result) is list else body_pieces(result)
            if type(pieces) is list or type(pieces) is tuple:
                out = exchange.whole(pieces)
            else:
                self._stream(proto, exchange, result, pieces)
            finished = True
        except HTTPError as exc:
            if environ:  # raised making the response (an invalid header from the app): a 500
                self.log.exception("Error handling request %s", request.target.decode("latin-1"))
                post(proto.fail, exchange)
            else:  # the environ could not be made: what a trusted proxy said does not add up
                post(proto.refuse, exc.status, exc.reason)
        except Exception:
            self.log.exception("Error handling request %s", request.target.decode("latin-1"))
            post(proto.fail, exchange)
        finally:
            if result is not None:
                close_iterable(result, self.log)
            # Logged and hooked here, in the request's thread, as Gunicorn's gthread worker does;
            # not for a request refused before the app saw it (its environ is empty).
            if environ and self._request_log is not None:
                self._request_log(request, environ, exchange, time.perf_counter() - started)
            if environ and self._post_request_hook:
                self.hooks.call("post_request", self.ctx, HookRequest(request, proto.peer), environ,
                                HookResponse(exchange.status, exchange.headers, framer.status_code,
                                             framer.sent))
            try:
                post(self._finished, call, finished, out)
            except RuntimeError:
                pass  # the loop is closed: the worker is exiting past its graceful timeout

    def _stream(self, proto: "ThreadedProtocol", exchange: Exchange, result: Any,
                pieces: Iterator[bytes]) -> None:
        loop = self.loop
        framer = exchange.framer
        if isinstance(result, FileWrapper) and not exchange.head_sent:
            where = result.sendfile_range()
            if where is not None:
                sent = asyncio.run_coroutine_threadsafe(
                    self._send_file_if_possible(proto, exchange, *where), loop).result()
                if sent:
                    if not proto.gone():
                        loop.call_soon_threadsafe(proto.write, framer.end())
                    return
        unsynced = 0
        for piece in pieces:
            if not exchange.write_piece(piece):
                continue
            if proto.gone():
                return
            unsynced += len(piece)
            if unsynced >= WRITE_HIGH_WATER:
                # Meet the loop: it has written what came before, and waits here while the
                # client's socket is full.
                unsynced = 0
                asyncio.run_coroutine_threadsafe(proto.drain(), loop).result()
        if not proto.gone():
            tail = b"" if exchange.head_sent else exchange.head_bytes()
            loop.call_soon_threadsafe(proto.write, tail + framer.end())

    async def _send_file_if_possible(self, proto: "ThreadedProtocol", exchange: Exchange, fd: int,
                                     offset: int, count: int) -> bool:
        if not proto.can_sendfile():
            return False
        await self._send_file(proto, exchange, fd, offset, count)
        return True

    # -- back in the loop -----------------------------------------------------------------------------

    def _finished(self, call: _Call, finished: bool, out: bytes) -> None:
        if out:
            call.proto.write(out)
        self.active.discard(call)
        if finished:
            call.proto.response_done(call.exchange.framer.keep_alive)
        self.ctx.request_finished()
        if self.queue:
            self.run_next()
        if self.closing:
            self._maybe_stopped()

    def _maybe_stopped(self) -> None:
        # Connections can all be gone (their clients left) while threads still run the app.
        if not self.active:
            super()._maybe_stopped()

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGTERM:
            for call in list(self.active):
                framer = call.exchange.framer
                if not framer.status_code:
                    framer.keep_alive = False  # the head is not out yet: it can say close
        super()._on_stop_signal(signum, frame)

    def _describe_current(self) -> str:
        return "; ".join(call.describe() for call in list(self.active))

    def _stuck(self) -> bool:
        timeout = self.cfg.timeout
        if not timeout or len(self.active) < self.threads:
            return False
        now = time.monotonic()
        return all(now - call.started > timeout for call in list(self.active))

    # -- --worker-connections ---------------------------------------------------------------------------

    def connections_changed(self) -> None:
        count = len(self.connections)
        if self.closing:
            return
        if not self._accept_paused and count >= self.max_connections:
            self._accept_paused = True
            for server in self.servers:
                server.close()
            self.servers = []
        elif self._accept_paused and count < self.max_connections:
            self._accept_paused = False
            self.loop.create_task(self._resume_accepting())

    async def _resume_accepting(self) -> None:
        for sock in self.listeners:
            server = await self.create_server(sock, self._builders[sock.fileno()])
            if self.closing or self._accept_paused:  # things changed while it was being made
                server.close()
            else:
                self.servers.append(server)


class ThreadedProtocol(HTTPProtocol):
    """A connection of the gthread worker: a deferred body (Expect: 100-continue) is read by the
    loop, on the thread's request; connection counts drive --worker-connections."""

    worker: ThreadWorker
    reads_deferred_body_in_loop = True

    def __init__(self, worker: SyncWorker, builder: EnvironBuilder) -> None:
        super().__init__(worker, builder)
        self.deferred_body: BodyBuffer | None = None
        self._body_state: str | None = None  # None while arriving, then "complete" or why it failed
        self._body_waiter: asyncio.Future[None] | None = None
        self._continue_sent = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.worker.connections_changed()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.deferred is not None and self._body_state is None:
            self._body_finished("the client went away before sending the body")
        super().connection_lost(exc)
        self.worker.connections_changed()

    def deferred_input(self) -> DeferredInput:
        self.deferred_body = BodyBuffer()
        self._body_state = None
        self._continue_sent = False
        loop = self.worker.loop

        def fetch() -> BodyBuffer:  # in the app's thread
            return asyncio.run_coroutine_threadsafe(self._receive_body(), loop).result()

        return DeferredInput(fetch)

    def process(self) -> None:
        if self.deferred is None or self._body_state is not None:
            super().process()
            if self.deferred is None or self._body_state is not None:
                return
        self._collect_body()

    def _collect_body(self) -> None:
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
                self._body_finished(f"invalid request body: {exc.reason}")
                return
            if event.__class__ is Data:
                body.write(event.data)  # type: ignore[union-attr]
            elif event.__class__ is EndOfMessage:
                body.trailers = event.trailers  # type: ignore[union-attr]
                self._body_finished("complete")
                return
            else:
                if conn.at_eof:
                    self._body_finished("the client closed the connection before the whole body")
                return

    def _body_finished(self, state: str) -> None:
        self._body_state = state
        waiter = self._body_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _receive_body(self) -> BodyBuffer:
        if not self._continue_sent and not self.gone():
            # Sent even when the body is already here, as the sync worker does: the client asked.
            self._continue_sent = True
            self.transport.write(CONTINUE)  # type: ignore[union-attr]
        if self._body_state is None:
            if self.closed:
                raise OSError("the client went away before sending the body")
            self._body_waiter = self.worker.loop.create_future()
            try:
                await asyncio.wait_for(self._body_waiter, self.worker.cfg.header_timeout)
            except asyncio.TimeoutError:
                self.body_error = HTTPError(408, "request body not received in time")
                self._body_state = "timed out waiting for the request body"
        if self._body_state != "complete":
            raise OSError(self._body_state)
        assert self.deferred_body is not None
        return self.deferred_body


ThreadWorker.protocol_class = ThreadedProtocol


def run_worker(app: Callable[..., Any], cfg: Any, listeners: list[socket.socket],
               log: logging.Logger, ctx: WorkerContext) -> None:
    ThreadWorker(app, cfg, listeners, log, ctx).run()

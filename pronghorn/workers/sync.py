"""The default worker: an event loop holds the connections, the app runs inline, one call at a time.

Theory of operation
-------------------
Each connection is a protocol (asyncio's interface; the loop is epoll_loop's, or uvloop's with TLS)
around a sans-IO HTTPConnection. Bytes arrive, events come out; a request is buffered completely
(body spooled past 1 MiB) before the app sees it. Complete requests from all connections go through
one queue, so the app is called once at a time per process, exactly as under Gunicorn's sync worker,
while idle keep-alive connections, slow clients and pipelined requests wait in the loop at no cost
to the app.

A response whose body is a list is written at once (the app already holds it in memory). Any other
iterable is pulled piece by piece, waiting for the socket to drain between pieces, so a slow reader
never makes the worker buffer an unbounded response; the queue waits meanwhile, because iterating the
body is still the app's code running.

Timeouts are checked by one ticker a second rather than a timer per connection: the keep-alive idle
timeout, the deadline for a whole request head (slowloris), and a body that stops arriving.
"""

from __future__ import annotations

import collections
import logging
import os
import select
import signal
import socket
import sys
from time import perf_counter
from typing import TYPE_CHECKING, Any, Callable, Iterator

from .. import SERVER_SOFTWARE
from ..http import (
    CONTINUE, NEED_DATA, PAUSED, Data, EndOfMessage, HeadCache, HTTPConnection, HTTPError, Request,
    ResponseFramer, ResponseHeadCache, error_response,
)
from ..logs import request_logger
from ..http.proxy_protocol import ProxyProtocolError, parse as parse_proxy_header
from ..tls import HANDSHAKE_TIMEOUT
from ..trust import matcher
from ..wsgi.body import BodyBuffer, DeferredInput, empty_input
from ..wsgi.environ import EnvironBuilder
from ..wsgi.errors_stream import ErrorStream
from ..wsgi.exchange import Exchange
from ..wsgi.forwarded import ForwardedPolicy
from ..wsgi.file_wrapper import FileWrapper
from .base import (HookRequest, HookResponse, WorkerContext, body_pieces, close_iterable,
                   limits_from, server_address)
from . import runs_on_uvloop
from .clock import DateCache
from .epoll_loop import EpollLoop

if TYPE_CHECKING:  # asyncio is imported only where it runs the loop (TLS, gthread)
    import asyncio

SERVER = SERVER_SOFTWARE.encode()
# Read-side backpressure: stop reading a connection whose unparsed input passes this while it waits.
READ_BUFFER_LIMIT = 256 * 1024
WRITE_HIGH_WATER = 256 * 1024
# How long one turn of the loop runs requests before it lets the loop accept and read again (see
# SyncWorker._start_turn).
TURN_BUDGET = 0.002
# While stopping gracefully, an idle keep-alive connection is closed after this many idle seconds
# (or --keep-alive, if shorter).
GRACEFUL_IDLE = 1.0


def new_asyncio_loop() -> "asyncio.AbstractEventLoop":
    """uvloop's loop, or asyncio's own without uvloop, set as the thread's current loop."""
    import asyncio
    try:
        import uvloop
    except ImportError:
        loop = asyncio.new_event_loop()
    else:
        loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop


def sleep(loop: Any, delay: float) -> Any:
    """An awaitable done after delay seconds, on either kind of loop the worker runs (asyncio's
    sleep works only on asyncio's loops)."""
    waiter = loop.create_future()
    loop.call_later(delay, _wake, waiter)
    return waiter


def _wake(waiter: Any) -> None:
    if not waiter.done():  # (a cancelled waiter is done too, on asyncio's loops)
        waiter.set_result(None)


def _pump(proto: "HTTPProtocol", exchange: Exchange, pieces: Iterator[bytes]) -> bool:
    """Write a streamed body's pieces as they come, until it ends or the client is gone (False)
    or the transport pushes back (True: wait for it to drain, then pump again)."""
    for piece in pieces:
        if not exchange.write_piece(piece):
            continue
        if proto.gone():
            return False
        if proto.write_paused:
            return True
    return False


class SyncWorker:
    multithread = False  # wsgi.multithread
    # Every request finishes on the loop's thread, so the access log can gather a turn's lines and
    # write them together (RequestLogger.write_once_per_turn).
    gathers_access_lines = True
    protocol_class: type["HTTPProtocol"]  # set below, once the class exists
    # Slots, not a __dict__: CPython (3.11) keeps an instance's attribute reads on its fastest path
    # only while the class's shared dict keys number at most 30, and this class is about there; one
    # attribute more cost every request ~5 % of its Python (callgrind).
    __slots__ = (
        "app", "ctx", "hooks", "cfg", "listeners", "log", "limits", "dates", "errors", "connections",
        "queue", "busy", "closing", "current_framer", "loop", "servers", "forwarded", "proxy_mode",
        "proxy_allowed", "_pre_request_hook", "_post_request_hook", "_settled", "_current",
        "_stopped", "_builders", "_request_log", "_request_started", "_turn_ends",
        "_next_pending", "head_cache", "response_heads",
    )

    def __init__(self, app: Callable[..., Any], cfg: Any, listeners: list[socket.socket],
                 log: logging.Logger, ctx: WorkerContext) -> None:
        self.app = app
        self.ctx = ctx
        self.hooks = ctx.hooks
        ctx.describe_current = self._describe_current
        # Per-request hooks cost a call and two objects per request: skip them when unset.
        self._pre_request_hook = self.hooks.has("pre_request")
        self._post_request_hook = self.hooks.has("post_request")
        self.cfg = cfg
        self.listeners = listeners
        self.log = log
        self.limits = limits_from(cfg)
        # What the HTTP core remembers of heads and response heads, for all of this worker's
        # connections (bounded in bytes; see pronghorn/http/cache.py).
        self.head_cache = HeadCache(self.limits)
        self.response_heads = ResponseHeadCache()
        self.dates = DateCache()
        self.errors = ErrorStream(log)
        self.connections: set[HTTPProtocol] = set()
        self.queue: collections.deque[HTTPProtocol] = collections.deque()
        self.busy = False
        self.closing = False
        self._settled = False  # closing, and every connection accepted before is known
        # The framer of the response the app is making, for a TERM that arrives meanwhile.
        self.current_framer: ResponseFramer | None = None
        self._current: tuple[Request, dict[str, Any], Exchange, Any] | None = None
        self.loop: Any = self.new_loop()
        self.servers: list[asyncio.AbstractServer] = []
        self._stopped: asyncio.Future[None] | None = None
        self._builders: dict[int, EnvironBuilder] = {}
        self.forwarded = ForwardedPolicy(cfg.forwarded_allow_ips, cfg.secure_scheme_headers)
        # --proxy-protocol: the mode, and which peers may send the header (None: off).
        self.proxy_mode: str | None = None if cfg.proxy_protocol == "off" else cfg.proxy_protocol
        self.proxy_allowed = matcher(cfg.proxy_allow_ips)
        # The access log and statsd (None when both are off: then a request pays one None check).
        self._request_log = request_logger()
        self._request_started = 0.0
        self._turn_ends = 0.0  # when this turn of the loop stops running requests (0: not begun)
        self._next_pending = False  # run_next is scheduled

    # -- lifecycle -----------------------------------------------------------------------------------

    def new_loop(self) -> Any:
        """The loop this worker runs on: pronghorn's epoll loop for plain HTTP (see epoll_loop: no
        asyncio or ssl in the worker's memory), uvloop for TLS (ssl is loaded then anyway); the
        master preloads by the same rule (workers.runs_on_uvloop)."""
        if runs_on_uvloop("sync", self.ctx.ssl_context is not None):
            return new_asyncio_loop()
        return EpollLoop(self.log)

    def run(self) -> None:
        loop = self.loop
        self._stopped = loop.create_future()
        multiprocess = self.cfg.workers > 1
        for sock in self.listeners:
            scheme = "https" if self.ctx.ssl_context is not None else "http"
            builder = EnvironBuilder(server_address(sock), scheme, self.errors, multiprocess,
                                     self.multithread, self.forwarded)
            self._builders[sock.fileno()] = builder
            # Not serving yet: a request already waiting in the backlog would be accepted and run
            # while the loop creates the next server, before the signal handlers below exist (a
            # SIGABRT or TERM then killed the worker with that request unanswered and unlogged).
            server = loop.run_until_complete(self.create_server(sock, builder, start_serving=False))
            self.servers.append(server)
        # Plain Python handlers, not loop.add_signal_handler(): Python runs them between bytecodes,
        # so a TERM that arrives in the middle of the app's call is seen at once and the response
        # being made can announce the close (see _on_stop_signal). They also cannot be lost: uvloop
        # drops a signal that lands after add_signal_handler() but before the loop runs, which left
        # a worker TERMed while booting running until the master killed it.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, self._on_stop_signal)
        self.ctx.call_soon = loop.call_soon_threadsafe
        self.ctx.install_signals()
        if self._request_log is not None and self.gathers_access_lines:
            self._request_log.write_once_per_turn(loop.call_soon)
        for server in self.servers:
            if not self.closing:  # a TERM that came meanwhile has closed them
                loop.run_until_complete(server.start_serving())
        ticker = loop.create_task(self._tick())
        self.ctx.notify_ready()
        try:
            loop.run_until_complete(self._stopped)
        finally:
            ticker.cancel()
            for proto in list(self.connections):
                proto.abort()
            loop.run_until_complete(sleep(loop, 0))
            loop.close()
            if self._request_log is not None:
                self._request_log.flush()

    async def create_server(self, sock: socket.socket, builder: EnvironBuilder,
                            start_serving: bool = True) -> asyncio.AbstractServer:
        protocol = self.protocol_class
        tls = self.ctx.ssl_context
        return await self.loop.create_server(
            lambda: protocol(self, builder), sock=sock, backlog=self.cfg.backlog,
            start_serving=start_serving, ssl=tls,
            # The handshake counts against the head's deadline too, and never takes longer than
            # HANDSHAKE_TIMEOUT: a TLS port is otherwise an open door for idle connections.
            ssl_handshake_timeout=(min(HANDSHAKE_TIMEOUT, self.cfg.header_timeout or HANDSHAKE_TIMEOUT)
                                   if tls is not None else None))

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        """Runs in the main thread between bytecodes, possibly inside the app's call: only mark the
        response in progress as the connection's last and hand the real work to the loop."""
        framer = self.current_framer
        if framer is not None and signum == signal.SIGTERM and not framer.status_code:
            # The head is not written yet: it can still say "Connection: close". Once written, a
            # promised keep-alive is kept (see response_done).
            framer.keep_alive = False
        if signum != signal.SIGTERM:
            self.ctx.on_interrupt()
        if self.loop.is_closed():
            return  # already on the way out; call_soon_threadsafe would raise into the exit path
        stop = self.stop_gracefully if signum == signal.SIGTERM else self.stop_now
        self.loop.call_soon_threadsafe(stop)

    def stop_gracefully(self) -> None:
        """Stop accepting, close idle connections, let in-flight requests finish (TERM)."""
        if self.closing:
            return
        self.closing = True
        aio = sys.modules.get("asyncio")  # (not imported at all: the loop is not asyncio's)
        if aio is not None and isinstance(self.loop, aio.selector_events.BaseSelectorEventLoop):
            # Plain asyncio drops a connection it has accepted but not yet given a transport when
            # the server closes meanwhile (Server._attach asserts, the socket is let go): stop
            # accepting now, close the servers once those connections are known.
            for server in self.servers:
                for sock in server.sockets:
                    self.loop.remove_reader(sock.fileno())
        else:
            for server in self.servers:
                server.close()
        # Idle keep-alive connections are not cut at once: a client may be sending its next request
        # right now, and would see a reset. Each gets its next request answered with
        # "Connection: close", or is closed after a short idle spell (see check_deadlines).
        deadline = self.cfg.graceful_timeout
        self.loop.call_later(deadline, self.stop_now)
        # A connection the loop accepted just before the close may not have reached
        # connection_made yet (uvloop takes one callback to get there, asyncio two): stopping now,
        # with no connection known, would cut it unanswered. Look once those callbacks have run.
        self.loop.call_soon(self.loop.call_soon, self._accepts_settled)

    def _accepts_settled(self) -> None:
        self._settled = True
        for server in self.servers:
            server.close()  # (again: closing twice is nothing)
        self._maybe_stopped()

    def stop_now(self) -> None:
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)

    def _maybe_stopped(self) -> None:
        if self.closing and self._settled and not self.connections:
            self.stop_now()

    async def _tick(self) -> None:
        """The heartbeat, and the per-connection deadlines. The heartbeat beats several times per
        --timeout so that only a loop blocked for the whole timeout looks dead to the master."""
        cfg = self.cfg
        interval = min(1.0, max(cfg.timeout / 4, 0.05)) if cfg.timeout else 1.0
        next_sweep = 0.0
        while True:
            if self._stuck():
                pass  # let the heartbeat lapse: the master replaces a worker whose app calls all hang
            elif not self.ctx.tick():
                self.log.info("Parent changed, shutting down: %s", self.ctx.pid)
                self.stop_gracefully()
            now = self.loop.time()
            if now >= next_sweep:
                next_sweep = now + 1.0
                for proto in list(self.connections):
                    proto.check_deadlines(now, cfg.keepalive, cfg.header_timeout)
            await sleep(self.loop, interval)

    def _stuck(self) -> bool:
        """Whether to stop the heartbeat although the loop runs. Here, never: a hung app call
        blocks this loop itself, and the heartbeat stops with it."""
        return False

    # -- the app queue -------------------------------------------------------------------------------

    def submit(self, proto: "HTTPProtocol") -> None:
        if self.busy or self.queue:
            self.queue.append(proto)
        elif perf_counter() < self._turn_ends or self._start_turn():
            self.run_request(proto)
        else:
            self.queue.append(proto)
            self._run_next_soon()

    def run_next(self) -> None:
        self._next_pending = False
        while not self.busy and self.queue:
            if not (perf_counter() < self._turn_ends or self._start_turn()):
                self._run_next_soon()
                return
            proto = self.queue.popleft()
            if not proto.closed:
                self.run_request(proto)

    def _start_turn(self) -> bool:
        """The first request of a turn of the loop starts its time (True); False once that time is
        spent. A turn runs requests for TURN_BUDGET at most; the requests left wait, in order, for
        the next turn. The app is called inline, so a turn with many slow requests ready is long,
        and the loop accepts and reads only between turns (libuv, under TLS, one connection per
        turn): without a bound, a client that connects while keep-alive ones keep the worker busy
        waits whole turns ahead of it (on uvloop, a p99 of 1.3 s at the start of a load of 50
        connections on a 1.4 ms Django page; 0.25 s with it)."""
        if self._turn_ends:
            return False
        self._turn_ends = perf_counter() + TURN_BUDGET
        self.loop.call_soon(self._next_turn)
        return True

    def _next_turn(self) -> None:
        self._turn_ends = 0.0

    def _run_next_soon(self) -> None:
        """run_next from the loop, once however many ask before it runs."""
        if not self._next_pending:
            self._next_pending = True
            self.loop.call_soon(self.run_next)

    def run_request(self, proto: "HTTPProtocol") -> None:
        """Call the app for proto's complete request and start writing its response."""
        request = proto.request
        assert request is not None
        self.busy = True
        if self._request_log is not None:
            self._request_started = perf_counter()
        trailers = ()
        if proto.deferred is not None:
            body: Any = proto.deferred
        elif proto.body is not None:
            body, trailers = proto.body.as_input(), proto.body.trailers
        else:
            body = empty_input()
        proto.body = None
        try:
            environ = proto.builder.build(request, body, proto.peer, trailers)
        except HTTPError as exc:  # what a trusted proxy said does not add up
            proto.refuse(exc.status, exc.reason)
            self._done()
            return
        framer = ResponseFramer(request.version, request.keep_alive and not self.closing,
                                request.method == "HEAD", self.response_heads)
        exchange = Exchange(framer, proto.write, self.dates.get(), SERVER)
        self.current_framer = framer
        self._current = (request, environ, exchange, proto.peer)
        if self._pre_request_hook:
            self.hooks.call("pre_request", self.ctx, HookRequest(request, proto.peer))
        result: Any = None
        try:
            result = self.app(environ, exchange.start_response)
            pieces = result if type(result) is list else body_pieces(result)
        except Exception:
            self.log.exception("Error handling request %s", request.target.decode("latin-1"))
            proto.fail(exchange)
            if result is not None:
                close_iterable(result, self.log)
            self._done()
            return
        if type(pieces) is list or type(pieces) is tuple:
            self._write_sequence(proto, exchange, pieces, result)
        elif isinstance(result, FileWrapper):
            self.loop.create_task(self._stream(proto, exchange, result, pieces))  # sendfile, maybe
        else:
            self._stream_inline(proto, exchange, result, pieces)

    def _write_sequence(self, proto: "HTTPProtocol", exchange: Exchange, pieces: Any,
                        result: Any) -> None:
        """The common case: the whole body is already in memory; one write for head and body."""
        try:
            framer = exchange.framer
            proto.write(exchange.whole(pieces))
        except Exception:
            self.log.exception("Error handling request %s", proto.target_for_log())
            proto.fail(exchange)
        else:
            proto.response_done(framer.keep_alive)
        finally:
            if type(result) is not list:  # (a plain list has no close())
                close_iterable(result, self.log)
        self._done()

    def _stream_inline(self, proto: "HTTPProtocol", exchange: Exchange, result: Any,
                       pieces: Iterator[bytes]) -> None:
        """A body the app yields piece by piece (a generator; Flask's and Django's streaming
        responses), pulled here, inline, as the app itself was called: each piece is written as it
        comes. Only when the transport pushes back does a task take over the same iterator and wait
        for it to drain; most responses end before that, without a task or a turn of the loop."""
        handed_over = False
        try:
            if _pump(proto, exchange, pieces):
                self.loop.create_task(self._stream(proto, exchange, result, pieces))
                handed_over = True
                return
            self._end_stream(proto, exchange)
        except Exception:
            self.log.exception("Error handling request %s", proto.target_for_log())
            proto.fail(exchange)
        finally:
            if not handed_over:
                close_iterable(result, self.log)
                self._done()

    async def _stream(self, proto: "HTTPProtocol", exchange: Exchange, result: Any,
                      pieces: Iterator[bytes]) -> None:
        """A file to send with sendfile, or a streamed body that the transport paused (see
        _stream_inline): the rest of the response, waiting for the client as it must."""
        try:
            sendfile = result.sendfile_range() if isinstance(result, FileWrapper) else None
            if sendfile is not None and not exchange.head_sent and proto.can_sendfile():
                await self._send_file(proto, exchange, *sendfile)
            else:
                await proto.drain()  # (handed over from _stream_inline while paused)
                while _pump(proto, exchange, pieces):
                    await proto.drain()
            self._end_stream(proto, exchange)
        except Exception:
            self.log.exception("Error handling request %s", proto.target_for_log())
            proto.fail(exchange)
        finally:
            close_iterable(result, self.log)
            self._done()

    def _end_stream(self, proto: "HTTPProtocol", exchange: Exchange) -> None:
        """After the last piece: the head if nothing was written, the framing's end, and on to the
        next request (or the close)."""
        framer = exchange.framer
        if not proto.gone():
            tail = b"" if exchange.head_sent else exchange.head_bytes()
            proto.write(tail + framer.end())
        proto.response_done(framer.keep_alive)

    async def _send_file(self, proto: "HTTPProtocol", exchange: Exchange, fd: int, offset: int,
                         count: int) -> None:
        """Put a regular file on the wire with os.sendfile: no copy through Python."""
        framer = exchange.framer
        if not exchange.head_sent:
            proto.write(exchange.head_bytes(count))
        allowed = framer.reserve(count)
        if not allowed:
            return
        await proto.drain(empty=True)  # the head (and anything before) must leave first
        out = proto.sendfile_socket()
        sent_total = 0
        try:
            while sent_total < allowed and not proto.closed:
                try:
                    sent = os.sendfile(out, fd, offset + sent_total, allowed - sent_total)
                except BlockingIOError:
                    await proto.writable(out)
                    continue
                if sent == 0:
                    break
                sent_total += sent
        finally:
            os.close(out)
        if sent_total < allowed:
            proto.abort()  # the file shrank under us: the framing promised bytes we do not have

    def _after_request(self, current: tuple[Request, dict[str, Any], Exchange, Any]) -> None:
        """The access log line and the post_request hook, for a request just answered."""
        request, environ, exchange, peer = current
        if self._request_log is not None:
            # Before post_request, as Gunicorn logs it.
            self._request_log(request, environ, exchange, perf_counter() - self._request_started)
        if self._post_request_hook:
            framer = exchange.framer
            self.hooks.call("post_request", self.ctx, HookRequest(request, peer), environ,
                            HookResponse(exchange.status, exchange.headers, framer.status_code,
                                         framer.sent))

    def _describe_current(self) -> str:
        """The request in hand, for the log when the master aborts us for silence."""
        current = self._current
        if current is None:
            return ""
        request, _, _, peer = current
        return f"{request.method} {request.target[:200].decode('latin-1')} from {peer}"

    def _done(self) -> None:
        current, self._current = self._current, None
        if current is not None and (self._request_log is not None or self._post_request_hook):
            self._after_request(current)
        self.ctx.request_finished()
        self.busy = False
        self.current_framer = None
        if self.queue:
            self._run_next_soon()
        if self.closing:
            self._maybe_stopped()


_IDLE, _HEAD, _BODY, _WAITING, _RESPONDING = range(5)


class HTTPProtocol:
    """One client connection in the sync worker."""

    # Whether a body the app asks for late (Expect: 100-continue) is read through the loop (and so
    # through TLS). The sync worker reads it from the raw socket while the app runs inline.
    reads_deferred_body_in_loop = False

    def __init__(self, worker: SyncWorker, builder: EnvironBuilder) -> None:
        # Every attribute is set here, in one order, though most start as None or False: the
        # instances then share one key layout and each read on the request path stays a fast one.
        self.worker = worker
        self.builder = builder
        self.conn = HTTPConnection(worker.limits, worker.head_cache)
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None
        self.request: Request | None = None
        self.body: BodyBuffer | None = None
        self.deferred: DeferredInput | None = None
        self.body_error: HTTPError | None = None
        self.phase = _IDLE
        self.since = 0.0            # when the current phase began (or input last arrived)
        self.closed = False
        self.tls = False
        # The PROXY header received so far, while one is still owed (--proxy-protocol).
        self.proxy_pending: bytes | None = None
        self.write_paused = False
        self.reading_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None

    # -- asyncio callbacks ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peer = transport.get_extra_info("peername")
        if self.worker.ctx.ssl_context is not None:  # (every listener is TLS then, or none)
            self.tls = True
        # TCP_NODELAY: every loop sets it on accepted TCP sockets (uvloop and asyncio on each, the
        # epoll loop on the listener, which passes it on). Setting it again here would go through
        # get_extra_info("socket"), whose socket object costs getsockname calls: ~8 % of a
        # Connection: close request.
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self.since = self.worker.loop.time()
        self.worker.connections.add(self)
        if self.worker.proxy_mode is not None:
            if not self.worker.proxy_allowed(self.peer):
                # Only the configured proxies may say who the client is; anyone else could
                # claim any address. Nothing from this peer is read.
                self.worker.log.debug("Closed a connection from %s: not in --proxy-allow-from",
                                      self.peer)
                self.close()
                return
            self.proxy_pending = b""

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.worker.connections.discard(self)
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self.worker._maybe_stopped()

    def data_received(self, data: bytes) -> None:
        if self.phase == _IDLE and self.proxy_pending is None:
            # A keep-alive client repeating a request it made before: nothing to parse.
            whole = self.conn.receive_repeated_request(data)
            if whole is not None:
                self.request, body = whole
                if body:
                    self.body = BodyBuffer.holding(body)
                self.phase = _WAITING
                self.worker.submit(self)
                return
        if self.proxy_pending is not None:
            rest = self._take_proxy_header(data)
            if not rest:
                return
            data = rest
        self.conn.receive_data(data)
        if self.phase == _IDLE or self.phase == _BODY:
            self.since = self.worker.loop.time()
            if self.phase == _IDLE:
                self.phase = _HEAD
        self.process()

    def eof_received(self) -> bool:
        self.conn.receive_data(b"")
        if self.phase in (_IDLE, _HEAD, _BODY):
            self.process()
        # Keep the write side open: a request may still be owed its answer. (TLS cannot half-close;
        # there the transport closes after this whatever we return, so say False.)
        return not self.tls

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _take_proxy_header(self, data: bytes) -> bytes | None:
        """Collect the PROXY header; the bytes after it (HTTP), or None while it is incomplete."""
        assert self.proxy_pending is not None
        received = self.proxy_pending + data
        try:
            header = parse_proxy_header(received, self.worker.proxy_mode or "auto")
        except ProxyProtocolError as exc:
            self.proxy_pending = None
            self.refuse(400, str(exc))
            return None
        if header is None:
            self.proxy_pending = received
            if self.phase == _IDLE:  # the head's deadline applies to the PROXY header too
                self.phase = _HEAD
                self.since = self.worker.loop.time()
            return None
        self.proxy_pending = None
        if header.source is not None:
            self.peer = header.source
        return received[header.consumed:]

    # -- parsing ----------------------------------------------------------------------------------------

    def process(self) -> None:
        """Pull events until the connection needs more bytes or a request is complete."""
        conn = self.conn
        while not self.closed:
            try:
                event = conn.next_event()
            except HTTPError as exc:
                self.refuse(exc.status, exc.reason)
                return
            if event is NEED_DATA:
                if conn.at_eof:
                    self.close()
                elif self.phase == _IDLE and not conn.idle:
                    self.phase = _HEAD
                return
            if event is PAUSED:
                if conn.buffered > READ_BUFFER_LIMIT and not self.reading_paused:
                    self.reading_paused = True
                    self.transport.pause_reading()  # type: ignore[union-attr]
                return
            if event.__class__ is Request:
                self.request = event  # type: ignore[assignment]
                if event.has_body:  # type: ignore[union-attr]
                    self.body = BodyBuffer()
                    self.phase = _BODY
                    self.since = self.worker.loop.time()
                    if (event.expect_continue and self.tls  # type: ignore[union-attr]
                            and not self.reads_deferred_body_in_loop):
                        # The blocking read below works on the raw socket, not through TLS:
                        # say Continue now and buffer the body like any other.
                        self.transport.write(CONTINUE)  # type: ignore[union-attr]
                    elif event.expect_continue:  # type: ignore[union-attr]
                        # The client waits for our word before sending the body: call the app now,
                        # and send 100 Continue only if it reads wsgi.input (RFC 9110 10.1.1).
                        self.deferred = self.deferred_input()
                        self.phase = _WAITING
                        self.worker.submit(self)
                        return
            elif event.__class__ is EndOfMessage:
                if event.trailers:  # type: ignore[union-attr]
                    self.body.trailers = event.trailers  # type: ignore[union-attr]
                self.phase = _WAITING
                self.worker.submit(self)
                return
            elif event.__class__ is Data:
                self.body.write(event.data)  # type: ignore[union-attr]

    # -- writing ------------------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.closed and data:
            self.phase = _RESPONDING
            self.transport.write(data)  # type: ignore[union-attr]

    async def drain(self, empty: bool = False) -> None:
        while not self.closed and (self.write_paused or (
                empty and self.transport.get_write_buffer_size())):  # type: ignore[union-attr]
            self._drain_waiter = self.worker.loop.create_future()
            if empty and not self.write_paused:
                # asyncio has no "buffer empty" callback; poll the writable state cheaply.
                await sleep(self.worker.loop, 0.001)
                continue
            await self._drain_waiter

    def response_done(self, keep_alive: bool) -> None:
        """The response is fully handed to the transport: close, or go on to the next request."""
        self.request = None
        deferred, self.deferred = self.deferred, None
        if self.closed:
            return
        if deferred is not None and not deferred.consumed:
            # The app answered without the body it was offered; the client may still send it, and
            # those bytes must never be parsed as a request: close.
            keep_alive = False
        if not keep_alive:
            self.close()
            return
        # Stopping or not, a connection whose response promised keep-alive stays open: closing it
        # now could reset a request the client is already sending. Its next request is answered
        # with "Connection: close"; if none comes, the idle timer closes it.
        self.phase = _IDLE
        self.since = self.worker.loop.time()
        self.conn.start_next_cycle()
        if self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()  # type: ignore[union-attr]
        if self.conn.input_left:
            # Pipelined input waits; parse it from the loop, not from inside this call chain.
            self.worker.loop.call_soon(self.process)

    def fail(self, exchange: Exchange) -> None:
        """The app raised: a 500 if nothing was sent yet, else cut the connection. If it raised
        because the deferred body was malformed, the client gets that body's 4xx instead."""
        self.deferred = None
        if exchange.head_sent or self.closed:
            self.abort()
            return
        error = self.body_error
        if error is not None:
            self.refuse(error.status, error.reason)
        else:
            self.refuse(500, "the application raised an error", log=False)

    def deferred_input(self) -> DeferredInput:
        """wsgi.input for a request that waits for 100 Continue (the worker class decides how)."""
        return DeferredInput(self.read_body_blocking)

    def read_body_blocking(self) -> BodyBuffer:
        """Send 100 Continue and read the whole body, blocking, from inside the app's call.

        The sync worker runs the app inline, so the loop cannot deliver the body meanwhile; this
        worker serves one app call at a time anyway, so reading the socket directly costs no one
        else anything. Reading is paused on the transport so only this code touches the socket.
        """
        transport = self.transport
        assert transport is not None
        if self.closed:
            raise OSError("the client went away before sending the body")
        transport.pause_reading()
        transport.write(CONTINUE)
        fd = transport.get_extra_info("socket").fileno()
        body = BodyBuffer()
        conn = self.conn
        timeout = self.worker.cfg.header_timeout
        try:
            while True:
                try:
                    event = conn.next_event()
                except HTTPError as exc:
                    self.body_error = exc
                    raise OSError(f"invalid request body: {exc.reason}") from None
                if event.__class__ is Data:
                    body.write(event.data)  # type: ignore[union-attr]
                elif event.__class__ is EndOfMessage:
                    body.trailers = event.trailers  # type: ignore[union-attr]
                    return body
                else:
                    ready, _, _ = select.select([fd], [], [], timeout)
                    if not ready:
                        self.body_error = HTTPError(408, "request body not received in time")
                        raise OSError("timed out waiting for the request body")
                    try:
                        data = os.read(fd, 262144)
                    except BlockingIOError:
                        continue
                    conn.receive_data(data)
        finally:
            if not self.closed:
                transport.resume_reading()

    def refuse(self, status: int, reason: str, log: bool = True) -> None:
        if log:
            self.worker.log.debug("Refused request from %s: %d %s", self.peer, status, reason)
        if not self.closed:
            self.transport.write(  # type: ignore[union-attr]
                error_response(status, reason, self.worker.dates.get(), SERVER))
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()  # type: ignore[union-attr]

    def abort(self) -> None:
        if self.transport is not None:
            self.closed = True
            self.transport.abort()

    def gone(self) -> bool:
        """No more bytes can reach the client: we closed, or the transport hit an error and is
        closing. The second case matters to a body being streamed: the transport then drops writes
        without ever pausing us, and connection_lost only arrives once we yield to the loop, so a
        generator that never ends would be pulled forever without this check."""
        return self.closed or (self.transport is not None and self.transport.is_closing())

    def check_deadlines(self, now: float, keepalive: float, header_timeout: float) -> None:
        phase = self.phase
        if phase == _IDLE:
            if self.worker.closing:
                keepalive = min(keepalive, GRACEFUL_IDLE)
            if self.conn.idle and now - self.since >= keepalive and not self._input_waiting():
                self.close()
        elif phase == _HEAD:
            if now - self.since >= header_timeout:
                self.refuse(408, "request head not received in time")
        elif phase == _BODY:
            if now - self.since >= header_timeout:
                self.refuse(408, "request body stalled")

    def _input_waiting(self) -> bool:
        """Whether the client's next bytes are already in the socket, unread: a loop that was held
        up (a busy machine, a slow request on another connection) runs its timers before reading,
        and must not take a client that has just sent its next request for an idle one. (Rare,
        so its cost does not matter.)"""
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return bool(readable)

    def target_for_log(self) -> str:
        return self.request.target.decode("latin-1") if self.request is not None else "-"

    # -- sendfile support -------------------------------------------------------------------------------

    def can_sendfile(self) -> bool:
        if self.tls:
            return False  # the bytes must go through the TLS layer, not straight to the socket
        sock = self.transport.get_extra_info("socket") if self.transport else None
        return sock is not None and not self.closed

    def sendfile_socket(self) -> int:
        sock = self.transport.get_extra_info("socket")  # type: ignore[union-attr]
        return os.dup(sock.fileno())

    async def writable(self, fd: int) -> None:
        loop = self.worker.loop
        waiter: asyncio.Future[None] = loop.create_future()
        loop.add_writer(fd, lambda: waiter.done() or waiter.set_result(None))
        try:
            await waiter
        finally:
            loop.remove_writer(fd)


SyncWorker.protocol_class = HTTPProtocol


def run_worker(app: Callable[..., Any], cfg: Any, listeners: list[socket.socket],
               log: logging.Logger, ctx: WorkerContext) -> None:
    SyncWorker(app, cfg, listeners, log, ctx).run()
    sys.stdout.flush()

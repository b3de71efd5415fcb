"""The gevent worker: one greenlet per connection, the app called in it, blocking calls yield.

Theory of operation
-------------------
``prepare_process()`` monkey-patches the worker process right after the fork, before the app or
anything that opens sockets is imported (the master imports neither gevent nor ssl, so nothing was
imported unpatched). From then on the app's sockets, ``time.sleep``, locks and database drivers
that use sockets switch greenlets instead of blocking the process.

Each listening socket gets an accepting greenlet that spawns connections into a pool of at most
``--worker-connections`` greenlets; when it is full the greenlet stops accepting, so further clients
wait in the kernel's listen queue. A connection's greenlet reads and writes its non-blocking socket
itself and, when the socket is not ready, waits on one libev watcher per direction in the hub
(gevent's own socket methods would arm a Timeout and raise EWOULDBLOCK on each wait: a third of the
worker's time). It feeds the same sans-IO HTTPConnection as every other worker class: the HTTP rules
are identical. Writes wait for the client as long as it takes: backpressure for free.

Read deadlines (``--keep-alive`` between requests, ``--header-timeout`` for a head, 408, or a stalled
body) are not a timer per wait but a field of the connection: a sweep in the hub, every
``SWEEP_INTERVAL``, throws ``socket.timeout`` into each greenlet still reading past its deadline.
The sweep runs in the hub, so it sees the greenlet's state as it is (the greenlet is not running),
and a deadline is kept to within the interval. TLS connections read through gevent's SSL socket
and take the same sweep.

``--timeout`` watches the hub: a greenlet ticks the heartbeat, so an app that computes without
yielding (or blocks in C code) for longer stops the ticks and the master replaces the worker. A
request that merely waits on I/O forever holds only its own connection.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from typing import Any, Callable

import _socket  # the unpatched socket type: the worker waits on its descriptors itself

from gevent import getcurrent  # gevent itself may load before patching; patch_all comes from it

from .. import SERVER_SOFTWARE
from ..http import (
    CONTINUE, NEED_DATA, PAUSED, Data, EndOfMessage, HeadCache, HTTPConnection, HTTPError, Request,
    ResponseFramer, ResponseHeadCache, error_response,
)
from ..http.proxy_protocol import ProxyProtocolError, parse as parse_proxy_header
from ..logs import request_logger
from ..tls import HANDSHAKE_TIMEOUT
from ..trust import matcher
from ..wsgi.body import BodyBuffer, DeferredInput, empty_input
from ..wsgi.environ import EnvironBuilder
from ..wsgi.errors_stream import ErrorStream
from ..wsgi.exchange import Exchange
from ..wsgi.file_wrapper import FileWrapper
from ..wsgi.forwarded import ForwardedPolicy
from .base import (HookRequest, HookResponse, WorkerContext, body_pieces, close_iterable,
                   limits_from, server_address)
from .clock import DateCache

SERVER = SERVER_SOFTWARE.encode()
READ_SIZE = 256 * 1024
GRACEFUL_IDLE = 1.0  # as the sync worker: idle keep-alive connections close this soon after TERM
SWEEP_INTERVAL = 0.25  # how often read deadlines are checked: how late a 408 or an idle close may be
ACCEPT_BURST = 100  # connections accepted per wake-up with one worker (as gevent's StreamServer)
ACCEPT_ERROR_DELAY = 0.1  # out of descriptors, say: wait before accepting again, do not spin


def _select_poll() -> Any:
    """select.poll as it was before gevent patched it: a look at a descriptor that never waits."""
    from gevent.monkey import get_original

    return get_original("select", "poll")()


def prepare_process() -> None:
    """Patch first: before the app, and before our own modules that use sockets, are imported."""
    from gevent import monkey

    monkey.patch_all()


class _Closed(Exception):
    """The connection is over (the client left, or we refused it)."""


class GeventWorker:
    def __init__(self, app: Callable[..., Any], cfg: Any, listeners: list[socket.socket],
                 log: logging.Logger, ctx: WorkerContext) -> None:
        self.app = app
        self.cfg = cfg
        self.listeners = listeners
        self.log = log
        self.ctx = ctx
        self.hooks = ctx.hooks
        self._pre_request_hook = self.hooks.has("pre_request")
        self._post_request_hook = self.hooks.has("post_request")
        self._request_log = request_logger()
        self.limits = limits_from(cfg)
        # What the HTTP core remembers of heads and response heads, for all of this worker's
        # connections (bounded in bytes; see pronghorn/http/cache.py).
        self.head_cache = HeadCache(self.limits)
        self.response_heads = ResponseHeadCache()
        self.dates = DateCache()
        self.errors = ErrorStream(log)
        self.forwarded = ForwardedPolicy(cfg.forwarded_allow_ips, cfg.secure_scheme_headers)
        self.proxy_mode: str | None = None if cfg.proxy_protocol == "off" else cfg.proxy_protocol
        self.proxy_allowed = matcher(cfg.proxy_allow_ips)
        self.ssl_context = ctx.ssl_context
        self.closing = False
        self.closing_at = 0.0
        self.accepting: list[Any] = []
        self.connections: set[_Connection] = set()  # the ones alive, for the deadline sweep
        # greenlet → (its request, the peer, its response's framer): for the abort log (made only
        # then), and for a TERM that arrives before the response head is out (it can say "close").
        self.in_flight: dict[Any, tuple[Request, Any, ResponseFramer]] = {}
        ctx.describe_current = lambda: "; ".join(
            f"{r.method} {r.target[:200].decode('latin-1')} from {p}"
            for r, p, _ in list(self.in_flight.values()))

    # -- lifecycle -----------------------------------------------------------------------------------

    def run(self) -> None:
        import gevent
        from gevent.event import Event
        from gevent.pool import Pool

        hub = self.hub = gevent.get_hub()
        self._pool = Pool(self.cfg.worker_connections)
        multiprocess = self.cfg.workers > 1
        scheme = "https" if self.ssl_context is not None else "http"
        # One connection per wake-up with several workers, so the workers woken together share
        # new clients rather than the first taking a burst of them.
        burst = 1 if multiprocess else ACCEPT_BURST
        for listener in self.listeners:
            builder = EnvironBuilder(server_address(listener), scheme, self.errors, multiprocess,
                                     True, self.forwarded)
            # Our own copy of the master's descriptor, so that closing it leaves the master's.
            sock = _socket.socket(listener.family, listener.type, listener.proto,
                                  fileno=os.dup(listener.fileno()))
            sock.setblocking(False)
            self.accepting.append(gevent.spawn(self._accept, sock, builder, burst))
        stopped = Event()
        self._stopped = stopped
        # Plain Python handlers, as in the sync worker: they run between bytecodes, so a TERM that
        # arrives while the app makes a response reaches that response before its head is written
        # (a gevent.signal_handler callback waits its turn in the hub, and could come too late to
        # say "Connection: close"). The rest of the stop runs from the hub.
        self._run_in_hub = hub.loop.run_callback_threadsafe
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, self._on_signal)
        self.ctx.call_soon = lambda fn: hub.loop.run_callback_threadsafe(fn)
        self.ctx.install_signals()
        sweeper = hub.loop.timer(SWEEP_INTERVAL, SWEEP_INTERVAL)
        sweeper.start(self._sweep)
        ticker = gevent.spawn(self._tick)
        self.ctx.notify_ready()
        stopped.wait()
        ticker.kill(block=False)
        if self._graceful:
            # In-flight requests finish (up to --graceful-timeout); idle connections close soon.
            self._pool.join(timeout=self.cfg.graceful_timeout)
        self._pool.kill(block=True, timeout=1)
        sweeper.stop()

    def _accept(self, sock: Any, builder: EnvironBuilder, burst: int) -> None:
        """Accept connections off one listener while the pool has room; each gets a greenlet."""
        import gevent

        hub = self.hub
        ready = hub.loop.io(sock.fileno(), 1)
        pool = self._pool
        family, kind = sock.family, sock.type
        try:
            while True:
                pool.wait_available()  # full: leave further clients in the listen queue
                hub.wait(ready)
                for _ in range(burst):
                    try:
                        fd, peer = sock._accept()
                    except (BlockingIOError, ConnectionAbortedError):
                        break  # another worker took it, the burst emptied the queue, or it left
                    except OSError as exc:
                        # Out of descriptors or memory: say so, and try again a little later.
                        self.log.error("Could not accept a connection: %s", exc)
                        gevent.sleep(ACCEPT_ERROR_DELAY)
                        break
                    conn = _socket.socket(family, kind, 0, fileno=fd)
                    conn.setblocking(False)
                    pool.spawn(self.serve, conn, peer, builder)
                    if pool.full():
                        break
        finally:
            ready.close()
            sock.close()

    _graceful = True
    _pool: Any = None
    _stopped: Any = None
    hub: Any = None

    def _on_signal(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGTERM:
            for _, _, framer in list(self.in_flight.values()):
                if not framer.status_code:
                    framer.keep_alive = False  # its head is not out yet: it can say close
        self._run_in_hub(lambda: self._on_stop_signal(signum))

    def _on_stop_signal(self, signum: int) -> None:
        if signum != signal.SIGTERM:
            self.ctx.on_interrupt()
            if self.closing:
                # INT/QUIT during a graceful stop: stop waiting for the requests in flight.
                self._pool.kill(block=False)
            self._graceful = False
        if not self.closing:
            self.closing = True
            self.closing_at = time.monotonic()
            for accepting in self.accepting:
                accepting.kill(block=False)  # stop accepting; the listening descriptor copy closes
            # Idle connections have GRACEFUL_IDLE to live from now: the next sweeps see to it.
        self._stopped.set()

    def _sweep(self) -> None:
        """Runs in the hub: throw socket.timeout into each connection reading past its deadline."""
        now = time.monotonic()
        grace = self.closing_at + GRACEFUL_IDLE if self.closing else now + 3600.0
        late = [c for c in self.connections
                if c.read_deadline and (now >= c.read_deadline or (c.idle and now >= grace))]
        for connection in late:
            # Throwing runs that greenlet until it waits again, which may change another's state:
            # look again, as at first.
            deadline = connection.read_deadline
            if (deadline and (now >= deadline or (connection.idle and now >= grace))
                    and not connection.input_waiting()):
                connection.greenlet.throw(socket.timeout("timed out"))

    def _tick(self) -> None:
        import gevent

        cfg = self.cfg
        interval = min(1.0, max(cfg.timeout / 4, 0.05)) if cfg.timeout else 1.0
        while True:
            if not self.ctx.tick():
                self.log.info("Parent changed, shutting down: %s", self.ctx.pid)
                self._on_stop_signal(signal.SIGTERM)
                return
            gevent.sleep(interval)

    # -- one connection ---------------------------------------------------------------------------------

    def serve(self, sock: Any, peer: Any, builder: EnvironBuilder) -> None:
        if sock.family != socket.AF_UNIX:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        else:
            peer = None
        connection = _Connection(self, sock, peer, builder)
        self.connections.add(connection)
        try:
            connection.run()
        except _Closed:
            pass
        except OSError:
            pass  # the client went away: nothing to answer
        finally:
            self.connections.discard(connection)
            self.in_flight.pop(connection.greenlet, None)
            connection.close()

    def done(self, request: Request, environ: dict[str, Any], exchange: Exchange, peer: Any,
             started: float) -> None:
        if self._request_log is not None:
            self._request_log(request, environ, exchange, time.perf_counter() - started)
        if self._post_request_hook:
            framer = exchange.framer
            self.hooks.call("post_request", self.ctx, HookRequest(request, peer), environ,
                            HookResponse(exchange.status, exchange.headers, framer.status_code,
                                         framer.sent))
        self.ctx.request_finished()


class _Connection:
    """Reads requests off one socket and answers them, in its own greenlet."""

    def __init__(self, worker: GeventWorker, sock: Any, peer: Any,
                 builder: EnvironBuilder) -> None:
        self.worker = worker
        self.hub = worker.hub
        self.sock = sock  # a non-blocking _socket.socket; gevent's SSL socket once TLS is up
        self.fd = sock.fileno()
        self.peer = peer
        self.builder = builder
        self.conn = HTTPConnection(worker.limits, worker.head_cache)
        self.tls = False
        self.greenlet = getcurrent()
        self.readable = self.hub.loop.io(self.fd, 1)
        self.writable: Any = None  # made on the first write that has to wait
        # While this greenlet waits to read: when the sweep is to throw socket.timeout into it.
        self.read_deadline = 0.0
        self.idle = False  # the wait is between requests (a TERM shortens it)

    def close(self) -> None:
        self.readable.close()
        if self.writable is not None:
            self.writable.close()
        try:
            self.sock.close()
        except OSError:
            pass

    # -- reading --------------------------------------------------------------------------------------

    def _recv(self, deadline: float, wait_first: bool = False) -> bytes:
        """The client's next bytes (b"" when it has finished sending); socket.timeout once
        ``deadline`` passes. ``wait_first`` skips the read that would only find nothing yet (the
        next request right after a response)."""
        if self.tls:
            return self._recv_tls(deadline)
        sock = self.sock
        if not wait_first:
            try:
                return sock.recv(READ_SIZE)
            except BlockingIOError:
                pass
            except ConnectionResetError:
                return b""
        while True:
            if time.monotonic() >= deadline:
                raise socket.timeout("timed out")
            self.read_deadline = deadline
            try:
                self.hub.wait(self.readable)
            finally:
                self.read_deadline = 0.0
            try:
                return sock.recv(READ_SIZE)
            except BlockingIOError:
                continue  # woken, and another reader was faster (cannot happen; harmless)
            except ConnectionResetError:
                return b""

    def _recv_tls(self, deadline: float) -> bytes:
        if time.monotonic() >= deadline:
            raise socket.timeout("timed out")
        self.read_deadline = deadline  # gevent's SSL socket waits inside recv; the sweep ends it
        try:
            return self.sock.recv(READ_SIZE)
        except ConnectionResetError:
            return b""
        finally:
            self.read_deadline = 0.0

    def input_waiting(self) -> bool:
        """Whether the client's next bytes are already here, unread: the sweep may run before the
        wake-up that would read them, and must not take such a client for an idle or slow one."""
        if self.tls and self.sock.pending():
            return True
        poller = _select_poll()
        poller.register(self.fd, 1)  # POLLIN
        return bool(poller.poll(0))

    def _read_more(self, deadline: float, what: str) -> None:
        """More bytes of a request under way, or 408 at the head's/body's deadline."""
        try:
            data = self._recv(deadline)
        except socket.timeout:
            self.refuse(408, f"{what} not received in time")
        self.conn.receive_data(data)

    def _wait_for_request(self, first: bool) -> bytes | None:
        """Idle on keep-alive until the next request begins: its first bytes (b"" if the client
        closed), or None when the wait is over (--keep-alive, or soon after TERM)."""
        limit = self.worker.cfg.keepalive
        if self.worker.closing:
            limit = min(limit, GRACEFUL_IDLE)
        self.idle = True
        try:
            return self._recv(time.monotonic() + limit, wait_first=not first)
        except socket.timeout:
            return None
        finally:
            self.idle = False

    # -- the loop ---------------------------------------------------------------------------------------

    def run(self) -> None:
        worker = self.worker
        if worker.ssl_context is not None:
            self._handshake()
        if worker.proxy_mode is not None:
            self._read_proxy_header()
        conn = self.conn
        header_timeout = worker.cfg.header_timeout
        first = True
        while True:
            whole = None
            if conn.idle:
                data = self._wait_for_request(first)
                if data is None:
                    return
                # A keep-alive client repeating a request it made before: nothing to parse.
                whole = conn.receive_repeated_request(data)
                if whole is None:
                    conn.receive_data(data)
            first = False
            deadline = time.monotonic() + header_timeout
            body: Any
            trailers: tuple[tuple[bytes, bytes], ...] = ()
            if whole is not None:
                request, received = whole
                body = BodyBuffer.holding(received).as_input() if received else empty_input()
            else:
                request = self._next(deadline, "request head")
                if request is None:
                    return
                assert isinstance(request, Request)
                if request.has_body and request.expect_continue:
                    body = DeferredInput(self._fetch_deferred_body)
                elif request.has_body:
                    try:
                        buffered = self._read_body(time.monotonic() + header_timeout)
                        body, trailers = buffered.as_input(), buffered.trailers
                    except HTTPError as exc:
                        self.refuse(exc.status, exc.reason)
                else:
                    if self._next(deadline, "request head").__class__ is not EndOfMessage:
                        raise _Closed()
                    body = empty_input()
            keep_alive = self._respond(request, body, trailers)
            if isinstance(body, DeferredInput) and not body.consumed:
                keep_alive = False  # the unread body must never be parsed as a request
            if not keep_alive:
                return
            conn.start_next_cycle()

    def _next(self, deadline: float, what: str) -> Any:
        conn = self.conn
        while True:
            try:
                event = conn.next_event()
            except HTTPError as exc:
                self.refuse(exc.status, exc.reason)
            if event is NEED_DATA:
                if conn.at_eof:
                    return None
                self._read_more(deadline, what)
                continue
            if event is PAUSED:
                raise _Closed()  # cannot happen: we answer before asking for more
            return event

    def _fetch_deferred_body(self) -> BodyBuffer:
        """The app asked for a body that waits for our word (Expect: 100-continue): give it, then
        read it. A bad body is an OSError to the app (as a broken connection would be) and its
        4xx goes to the client once the app returns."""
        try:
            return self._read_body(time.monotonic() + self.worker.cfg.header_timeout,
                                   send_continue=True)
        except HTTPError as exc:
            self.body_error = exc
            raise OSError(f"invalid request body: {exc.reason}") from None

    def _read_body(self, deadline: float, send_continue: bool = False) -> BodyBuffer:
        if send_continue:
            self.sock.sendall(CONTINUE)
        body = BodyBuffer()
        while True:
            event = self._next_body_event(deadline)
            if event.__class__ is EndOfMessage:
                body.trailers = event.trailers
                return body
            body.write(event.data)
            deadline = time.monotonic() + self.worker.cfg.header_timeout  # it is still arriving

    def _next_body_event(self, deadline: float) -> Any:
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                if conn.at_eof:
                    raise HTTPError(400, "incomplete request body")
                try:
                    data = self._recv(deadline)
                except socket.timeout:
                    raise HTTPError(408, "request body stalled") from None
                conn.receive_data(data)
                continue
            if event.__class__ is EndOfMessage or event.__class__ is Data:
                return event
            raise HTTPError(400, "unexpected event in a request body")

    body_error: HTTPError | None = None

    # -- answering ---------------------------------------------------------------------------------------

    def _respond(self, request: Request, body: Any,
                 trailers: tuple[tuple[bytes, bytes], ...] = ()) -> bool:
        """Call the app and send its response; whether the connection may carry another request."""
        worker = self.worker
        peer = self.peer
        started = time.perf_counter()
        try:
            environ = self.builder.build(request, body, peer, trailers)
        except HTTPError as exc:  # what a trusted proxy said does not add up
            self.refuse(exc.status, exc.reason)
        framer = ResponseFramer(request.version, request.keep_alive and not worker.closing,
                                request.method == "HEAD", worker.response_heads)
        exchange = Exchange(framer, self._send, worker.dates.get(), SERVER)
        me = getcurrent()
        worker.in_flight[me] = (request, peer, framer)
        if worker._pre_request_hook:
            worker.hooks.call("pre_request", worker.ctx, HookRequest(request, peer))
        result: Any = None
        try:
            try:
                result = worker.app(environ, exchange.start_response)
                self._send_body(exchange, result,
                                result if type(result) is list else body_pieces(result))
            finally:
                if result is not None:
                    close_iterable(result, worker.log)
        except _Closed:  # the client went away while we wrote: nothing more to say to it
            raise
        except Exception:  # the app's own errors, OSErrors included (a missing file is a 500)
            worker.log.exception("Error handling request %s", request.target.decode("latin-1"))
            if self.body_error is not None:
                self.refuse(self.body_error.status, self.body_error.reason)
            if exchange.head_sent:
                raise _Closed() from None
            self.refuse(500, "the application raised an error", log=False)
        finally:
            worker.in_flight.pop(me, None)
            worker.done(request, environ, exchange, peer, started)
        return framer.keep_alive

    def _send_body(self, exchange: Exchange, result: Any, pieces: Any) -> None:
        framer = exchange.framer
        send = self._send
        if type(pieces) is list or type(pieces) is tuple:
            send(exchange.whole(pieces))
            return
        if isinstance(result, FileWrapper) and not exchange.head_sent and not self.tls:
            where = result.sendfile_range()
            if where is not None:
                fd, offset, count = where
                send(exchange.head_bytes(count))
                self._send_file(fd, offset, framer.reserve(count))
                send(framer.end())
                return
        for piece in pieces:
            exchange.write_piece(piece)
        send((b"" if exchange.head_sent else exchange.head_bytes()) + framer.end())

    def _send_file(self, fd: int, offset: int, count: int) -> None:
        out = self.fd
        sent_total = 0
        while sent_total < count:
            try:
                sent = os.sendfile(out, fd, offset + sent_total, count - sent_total)
            except BlockingIOError:
                self._wait_writable()  # no deadline on writes, as for _send
                continue
            except OSError:
                raise _Closed() from None  # the client went away
            if sent == 0:
                raise _Closed()  # the file shrank under us: the framing promised bytes we lack
            sent_total += sent

    def _send(self, data: bytes) -> None:
        """Bytes to the client, waiting (yielding) while it reads slowly. Writes have no deadline,
        as in the sync worker. A client that went away ends the connection (_Closed), never as an
        error of the app's."""
        if self.tls:
            try:
                self.sock.sendall(data)
            except OSError:
                raise _Closed() from None
            return
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            raise _Closed() from None
        if sent < len(data):
            self._send_rest(memoryview(data)[sent:])

    def _send_rest(self, rest: memoryview) -> None:
        while rest:
            self._wait_writable()
            try:
                rest = rest[self.sock.send(rest):]
            except BlockingIOError:
                continue
            except OSError:
                raise _Closed() from None

    def _wait_writable(self) -> None:
        if self.writable is None:
            self.writable = self.hub.loop.io(self.fd, 2)
        self.hub.wait(self.writable)

    def refuse(self, status: int, reason: str, log: bool = True) -> None:
        if log:
            self.worker.log.debug("Refused request from %s: %d %s", self.peer, status, reason)
        try:
            self._send(error_response(status, reason, self.worker.dates.get(), SERVER))
        except _Closed:
            pass
        raise _Closed()

    # -- before HTTP ---------------------------------------------------------------------------------

    def _handshake(self) -> None:
        context = self.worker.ssl_context
        cfg = self.worker.cfg
        # gevent's SSL socket does the handshake and the TLS records; it needs gevent's socket.
        raw = self.sock
        plain = socket.socket(raw.family, raw.type, raw.proto, fileno=raw.detach())
        self.sock = plain
        plain.settimeout(min(HANDSHAKE_TIMEOUT, cfg.header_timeout or HANDSHAKE_TIMEOUT))
        try:
            self.sock = context.wrap_socket(plain, server_side=True)
        except (OSError, ValueError):
            raise _Closed() from None  # plain HTTP, a scanner, a slow or failed handshake: close
        self.sock.settimeout(None)  # from here the sweep keeps the read deadlines
        self.tls = True

    def _read_proxy_header(self) -> None:
        worker = self.worker
        if not worker.proxy_allowed(self.peer if self.peer is not None else ""):
            worker.log.debug("Closed a connection from %s: not in --proxy-allow-from", self.peer)
            raise _Closed()
        received = b""
        deadline = time.monotonic() + worker.cfg.header_timeout
        while True:
            try:
                header = parse_proxy_header(received, worker.proxy_mode or "auto")
            except ProxyProtocolError as exc:
                self.refuse(400, str(exc))
            if header is not None:
                break
            try:
                data = self._recv(deadline)
            except socket.timeout:
                data = b""
            if not data:
                raise _Closed()
            received += data
        if header.source is not None:
            self.peer = header.source
        rest = received[header.consumed:]
        if rest:
            self.conn.receive_data(rest)


def run_worker(app: Callable[..., Any], cfg: Any, listeners: list[socket.socket],
               log: logging.Logger, ctx: WorkerContext) -> None:
    GeventWorker(app, cfg, listeners, log, ctx).run()
    sys.stdout.flush()

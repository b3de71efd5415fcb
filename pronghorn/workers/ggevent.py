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
worker's time). It feeds the shared connection policy and runs the shared request cycle
(pronghorn/cycle), as every worker class does: the HTTP rules are identical. Its writes block (the
greenlet yields), so a streamed body never has to wait any other way.

Deadlines are not a timer per wait but the policy's: a sweep in the hub, every ``SWEEP_INTERVAL``,
throws into each greenlet still waiting past its deadline — ``socket.timeout`` into a read
(``--keep-alive``, ``--header-timeout``), ``_Dropped`` into a write that has made no progress for
``--write-timeout``. The sweep runs in the hub, so it sees each greenlet's state as it is.

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
from typing import Any, Callable, Generator

import _socket  # the unpatched socket type: the worker waits on its descriptors itself

from gevent import getcurrent  # gevent itself may load before patching; patch_all comes from it

from ..config import Config
from ..cycle.connection import (
    BODY_DONE, CLOSE, PULL, READ, READY, REFUSE, ConnectionPolicy, UnsentOutput,
)
from ..cycle.request import Job, RequestCycle, Wait
from ..cycle.takeover import client_socket
from ..http import HTTPError
from ..tls import HANDSHAKE_TIMEOUT
from ..wsgi.body import DeferredInput
from ..wsgi.environ import EnvironBuilder
from .base import WorkerContext, server_address

READ_SIZE = 256 * 1024
TLS_PIECE = 64 * 1024  # a TLS write's piece: how often its progress is seen
SWEEP_INTERVAL = 0.25  # how often deadlines are checked: how late a 408 or an idle close may be
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


class _Dropped(Exception):
    """Thrown into a greenlet whose write has made no progress for too long."""


class GeventWorker:
    def __init__(self, app: Callable[..., Any], cfg: Config, listeners: list[socket.socket],
                 log: logging.Logger, ctx: WorkerContext) -> None:
        self.cfg = cfg
        self.listeners = listeners
        self.log = log
        self.ctx = ctx
        self.cycle = RequestCycle(app, cfg, ctx, log, multithread=True)
        self.cycle.in_flight = lambda: [c.job for c in list(self.connections) if c.job is not None]
        self.ssl_context = ctx.ssl_context
        self.closing = False
        self.accepting: list[Any] = []
        self.listening: list[tuple[Any, EnvironBuilder]] = []  # our copies, with their builders
        self.connections: set[_Connection] = set()  # the ones alive, for the sweep
        ctx.count_connections = self.connections.__len__  # (--metrics-bind's gauge)
        self.unsent = UnsentOutput(cfg.max_unsent_bytes)
        # --http-protocols with h2: which connections may speak HTTP/2 (workers/h2.py and the h2
        # library imported only then).
        self.h2_choice: Any = None
        if "h2" in cfg.http_protocols.split(","):
            from .h2 import H2Choice
            choice = H2Choice(cfg, self.ssl_context is not None)
            self.h2_choice = choice if choice.enabled else None

    # -- lifecycle -----------------------------------------------------------------------------------

    def run(self) -> None:
        import gevent
        from gevent.event import Event
        from gevent.pool import Pool

        hub = self.hub = gevent.get_hub()
        self._pool = Pool(self.cfg.worker_connections)
        # One connection per wake-up with several workers, so the workers woken together share
        # new clients rather than the first taking a burst of them.
        burst = 1 if self.cfg.workers > 1 else ACCEPT_BURST
        for listener in self.listeners:
            builder = self.cycle.builder(server_address(listener), self.ssl_context is not None)
            # Our own copy of the master's descriptor, so that closing it leaves the master's.
            sock = _socket.socket(listener.family, listener.type, listener.proto,
                                  fileno=os.dup(listener.fileno()))
            sock.setblocking(False)
            self.listening.append((sock, builder))
            self.accepting.append(gevent.spawn(self._accept, sock, builder, burst))
        stopped = Event()
        self._stopped = stopped
        # Plain Python handlers, as in the other workers: they run between bytecodes, so a TERM
        # that arrives while the app makes a response reaches that response before its head is
        # written. The rest of the stop runs from the hub.
        self._run_in_hub = hub.loop.run_callback_threadsafe
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, self._on_signal)
        self.ctx.call_soon = lambda fn: hub.loop.run_callback_threadsafe(fn)
        if self.cycle.request_log is not None:
            # Every request finishes in a greenlet of this hub's thread: the access lines of one
            # turn of the hub go out together, once the greenlets that ran have yielded.
            self.cycle.request_log.write_once_per_turn(hub.loop.run_callback)
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
        if self.cycle.request_log is not None:
            self.cycle.request_log.flush()

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
            ready.close()  # (the descriptor is closed by the stop, after draining its queue)

    _graceful = True
    _pool: Any = None
    _stopped: Any = None
    hub: Any = None

    def _on_signal(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGTERM:
            # The responses first, then worker.alive: whoever sees alive turn False (a hook, the
            # app in another thread) finds the responses in progress already marked.
            self.cycle.close_after_current()
            self.ctx.on_terminate()
        self._run_in_hub(lambda: self._on_stop_signal(signum))

    def _on_stop_signal(self, signum: int) -> None:
        if signum != signal.SIGTERM:
            self.ctx.on_interrupt()
            if self.closing:
                # INT/QUIT during a graceful stop: stop waiting for the requests in flight.
                self._pool.kill(block=False)
            self._graceful = False
        elif self.closing:
            return  # a second TERM: the stop under way goes on (its drain may still run)
        if not self.closing:
            self.closing = True
            self.cycle.closing = True
            for accepting in self.accepting:
                accepting.kill(block=False)  # stop accepting
            # Idle connections have GRACEFUL_IDLE to live from now: the next sweeps see to it.
            if self._graceful:
                import gevent
                gevent.spawn(self._drain_backlog)
                return
        self._close_listening()
        self._stopped.set()

    def _drain_backlog(self) -> None:
        """Serve every connection already waiting in the listen queues before letting go of them:
        a queued client has done its handshake and may have sent its request, and when the last
        descriptor of a listener closes the kernel resets it (Gunicorn drops these)."""
        for sock, builder in self.listening:
            while self._graceful:
                try:
                    fd, peer = sock._accept()
                except (BlockingIOError, InterruptedError):
                    break  # the queue is empty (or another worker took the rest)
                except ConnectionAbortedError:
                    continue
                except OSError as exc:
                    self.log.error("Could not accept a waiting connection: %s", exc)
                    break
                conn = _socket.socket(sock.family, sock.type, 0, fileno=fd)
                conn.setblocking(False)
                self._pool.spawn(self.serve, conn, peer, builder)  # (waits while the pool is full)
        self._close_listening()
        self._stopped.set()

    def _close_listening(self) -> None:
        for sock, _ in self.listening:
            sock.close()
        self.listening = []

    def _sweep(self) -> None:
        """Runs in the hub: throw into each greenlet waiting past its deadline."""
        now = time.monotonic()
        late = [c for c in self.connections if c.late(now)]
        for connection in late:
            # Throwing runs that greenlet until it waits again, which may change another's state:
            # look again, as at first.
            if connection.late(now) and not (connection.reading and connection.input_waiting()):
                connection.greenlet.throw(
                    socket.timeout("timed out") if connection.reading else _Dropped())

    def _tick(self) -> None:
        import gevent

        interval = self.ctx.heartbeat_interval
        while True:
            if not self.ctx.tick():
                self.log.info("Parent changed, shutting down: %s", self.ctx.pid)
                self._on_stop_signal(signal.SIGTERM)
                return
            gevent.sleep(interval)

    def output_held(self, keep: "_Connection | None") -> bool:
        """--max-unsent-bytes: drop the stalest holders when the worker holds too much (never
        keep, which has just written). Whether any is to be dropped."""
        dropped = self.unsent.to_drop(keep.policy if keep is not None else None)
        for other in dropped:
            if not other.dropping:
                other.dropping = "--max-unsent-bytes is reached"
                # From the hub, and only if it still waits to write then: thrown anywhere else,
                # the exception would land in the app's code.
                self.hub.loop.run_callback(other.throw_if_writing)
        return bool(dropped)

    def room_for_a_response(self) -> None:
        """Before a greenlet calls the app: while the worker holds more than --max-unsent-bytes
        for clients that do not read, let the drops run first. Every connection's greenlet calls
        the app at once, so without this the responses of a burst would all be made (and held)
        before the first drop could free one."""
        import gevent

        while self.unsent.total > self.unsent.limit and self.output_held(None):
            gevent.sleep(0)

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
        except OSError:
            pass  # the client went away: nothing to answer
        finally:
            self.connections.discard(connection)
            connection.close()


class _Connection:
    """Reads requests off one socket and answers them, in its own greenlet; the request cycle's
    Channel for them."""

    def __init__(self, worker: GeventWorker, sock: Any, peer: Any,
                 builder: EnvironBuilder) -> None:
        self.worker = worker
        self.hub = worker.hub
        self.sock = sock  # a non-blocking _socket.socket; gevent's SSL socket once TLS is up
        self.fd = sock.fileno()
        self.builder = builder
        self.tls = False
        self.greenlet = getcurrent()
        self.readable = self.hub.loop.io(self.fd, 1)
        self.writable: Any = None  # made on the first write that has to wait
        self.policy = ConnectionPolicy(worker.cycle, builder, peer, time.monotonic, self._send,
                                       defer_continue=True)
        self.body_error: HTTPError | None = None
        self.closed = False
        self.reading = False  # waiting in a read (the sweep checks its deadline)
        self.writing = False  # waiting to write (the sweep checks its progress)
        self.dropping = ""  # why the connection is dropped while a write waits
        self.keep_alive = False  # what the response just completed said
        self.job: Job | None = None  # the request the app is on
        self.client_socket = client_socket(self)  # environ["gunicorn.socket"], for every request

    def detach(self) -> tuple[socket.socket, bytes]:
        """The app takes the connection over (see cycle.takeover), in this greenlet or one of its
        own: it gets a gevent socket, blocking for it, cooperative for the worker. Through TLS,
        gevent's SSL socket itself (the session is in it); else a duplicate of the descriptor, so
        that this connection's close at the end lets the app's live on."""
        if self.closed:
            raise OSError("the connection is closed")
        unread = self.policy.take_unparsed()
        if self.tls:
            taken = self.sock
            self.sock = _Gone()
        else:
            raw = self.sock
            taken = socket.socket(raw.family, raw.type, raw.proto, fileno=os.dup(self.fd))
        taken.settimeout(None)
        self.closed = True
        return taken, unread

    def close(self) -> None:
        self.readable.close()
        if self.writable is not None:
            self.writable.close()
        try:
            self.sock.close()
        except OSError:
            pass

    def throw_if_writing(self) -> None:
        if self.writing:
            self.greenlet.throw(_Dropped())

    def late(self, now: float) -> bool:
        if self.reading:
            deadline = self.policy.read_deadline()
            return bool(deadline) and now >= deadline
        return self.writing and self.policy.write_stalled(now)

    # -- reading --------------------------------------------------------------------------------------

    def _recv(self, wait_first: bool = False) -> bytes:
        """The client's next bytes (b"" when it has finished sending); socket.timeout once the
        policy's read deadline passes (the sweep throws it). ``wait_first`` skips the read that
        would only find nothing yet (the next request right after a response)."""
        sock = self.sock
        self.reading = True
        data: bytes
        try:
            if self.tls:
                data = sock.recv(READ_SIZE)  # gevent's SSL socket waits inside; the sweep ends it
                return data
            if not wait_first:
                try:
                    data = sock.recv(READ_SIZE)
                    return data
                except BlockingIOError:
                    pass
            while True:
                self.hub.wait(self.readable)
                try:
                    data = sock.recv(READ_SIZE)
                    return data
                except BlockingIOError:
                    continue  # woken, and another reader was faster (cannot happen; harmless)
        except ConnectionResetError:
            return b""
        finally:
            self.reading = False

    def input_waiting(self) -> bool:
        """Whether the client's next bytes are already here, unread: the sweep may run before the
        wake-up that would read them, and must not take such a client for an idle or slow one."""
        if self.tls and self.sock.pending():
            return True
        poller = _select_poll()
        poller.register(self.fd, 1)  # POLLIN
        return bool(poller.poll(0))

    def _next_step(self, wait_first: bool) -> int:
        """Read and feed the policy until it has something to say."""
        policy = self.policy
        while True:
            try:
                data = self._recv(wait_first)
            except socket.timeout:
                step = policy.expired(time.monotonic())
            else:
                step = policy.feed(data)
            wait_first = False
            if step != READ:
                return step

    # -- the loop ---------------------------------------------------------------------------------------

    def run(self) -> None:
        worker = self.worker
        policy = self.policy
        if worker.ssl_context is not None and not self._handshake():
            return
        if policy.start() == CLOSE:
            return
        first = None
        upgrade = False  # whether this peer's Upgrade: h2c is honoured (--http2-cleartext)
        if worker.h2_choice is not None:
            served, first = self._maybe_h2()
            if served:
                return
            upgrade = (not self.tls and worker.h2_choice.upgrade
                       and worker.h2_choice.trusted(policy.peer))
        step = policy.feed(first) if first else self._next_step(wait_first=False)
        if step == READ:
            step = self._next_step(wait_first=False)
        while not self.closed:
            if step == READY:
                if upgrade and self._upgraded():
                    return
                after = self._respond()
                if after == CLOSE:
                    return
                step = policy.pull() if after == PULL else READ
                if step == READ:
                    step = self._next_step(wait_first=True)
            elif step == REFUSE:
                status, reason = policy.refusal
                self.refuse(status, reason)
            else:  # CLOSE, IDLE_OVER (a keep-alive wait that ended), and what cannot happen here
                return

    def _maybe_h2(self) -> tuple[bool, bytes | None]:
        """HTTP/2, if this connection speaks it (ALPN, or the preface from a trusted peer with
        --http2-cleartext prior-knowledge): served here to its end (True). Else False and the
        bytes read while looking, which are HTTP/1.1's."""
        from ..http.h2 import PREFACE
        from .ggevent_h2 import serve_h2

        choice = self.worker.h2_choice
        if self.tls:
            if choice.alpn and self.sock.selected_alpn_protocol() == "h2":
                serve_h2(self, b"")
                return True, None
            return False, None
        if not (choice.prior_knowledge and choice.trusted(self.policy.peer)):
            return False, None
        data = b""
        while True:
            try:
                more = self._recv()
            except socket.timeout:
                return True, None  # nothing (or not all of the preface) came in time: close
            if not more:
                return True, None
            data += more
            size = min(len(data), len(PREFACE))
            if data[:size] != PREFACE[:size]:
                if choice.preface_required:
                    self.refuse(400, "expected the HTTP/2 connection preface (--http2-cleartext "
                                     "prior-knowledge)")
                    return True, None
                return False, data
            if size == len(PREFACE):
                serve_h2(self, data)
                return True, None

    def _upgraded(self) -> bool:
        """The request asks for h2c (Upgrade: h2c): 101, then HTTP/2 to the connection's end,
        the request answered as stream 1 (True). False for any other request."""
        from ..http.h2 import upgrade_request
        from .ggevent_h2 import serve_h2

        policy = self.policy
        body = policy.body
        if policy.request is None or body is None:  # (a deferred body: no upgrade)
            return False
        asked = upgrade_request(policy.request)
        if asked is None:
            return False
        request, settings = asked
        serve_h2(self, policy.take_unparsed(), upgrade=(request, body, settings))
        return True

    def recv(self) -> bytes:
        """The client's next bytes, for the HTTP/2 driver (ggevent_h2)."""
        return self._recv()

    def _respond(self) -> int:
        """Call the app and send its response; what then: CLOSE, READ the next request, or PULL
        the pipelined one already buffered."""
        policy = self.policy
        assert policy.request is not None
        body: Any = policy.body if policy.body is not None else DeferredInput(self._fetch_body)
        self.keep_alive = False
        self.worker.room_for_a_response()
        self.job = Job(policy.request, body, self, policy.builder, policy.peer, policy.trailers,
                       policy)
        try:
            stream = self.worker.cycle.run(self.job)
            if stream is not None:
                for _ in stream:  # (never waits: this channel's writes block, never backlogs)
                    pass
        finally:
            self.job = None
        self.worker.ctx.request_finished()
        return CLOSE if self.closed else policy.response_done(self.keep_alive)

    def _fetch_body(self) -> Any:
        """The app asked for a body that waits for our word (Expect: 100-continue): say it, then
        read the body. A bad body is an OSError to the app (as a broken connection would be) and
        its 4xx goes to the client once the app returns."""
        policy = self.policy
        if not policy.want_body():
            while self._next_step(wait_first=False) != BODY_DONE:
                pass
        try:
            return policy.deferred_result()
        except OSError:
            self.body_error = policy.body_error
            raise

    # -- the request cycle's Channel ------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if data:
            self._send(data)

    def complete(self, data: bytes, keep_alive: bool) -> None:
        if data:
            self._send(data)
        self.keep_alive = keep_alive

    def backlogged(self) -> bool:
        return False  # writes wait for the client themselves

    def gone(self) -> bool:
        return self.closed

    def refuse(self, status: int, reason: str, log: bool = True) -> None:
        if log:
            self.worker.log.debug("Refused request from %s: %d %s", self.policy.peer, status,
                                  reason)
        self._send(self.worker.cycle.error_page(status, reason))
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def gather(self) -> None:
        return None  # (each piece is written at once)

    def can_sendfile(self) -> bool:
        return not self.tls and not self.closed  # (with TLS the bytes go through the TLS layer)

    def sendfile(self, fd: int, offset: int, count: int) -> Generator[Wait, None, int]:
        sent_total = 0
        while sent_total < count and not self.closed:
            try:
                sent = os.sendfile(self.fd, fd, offset + sent_total, count - sent_total)
            except BlockingIOError:
                self._wait_writable(count - sent_total)
                continue
            except OSError:
                self.closed = True  # the client went away
                break
            if sent == 0:
                break
            sent_total += sent
        self._progress(0)
        return sent_total
        yield  # (a generator, as the Channel's sendfile is; it never has to yield here)

    # -- writing ------------------------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        """Bytes to the client, waiting (yielding) while it reads slowly, up to --write-timeout
        without progress. A client that went away closes the connection, never as an error of the
        app's: the cycle sees gone() and stops."""
        if self.closed:
            return
        if self.tls:
            self._send_tls(memoryview(data))
            return
        try:
            sent = self.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.closed = True
            return
        if sent < len(data):
            self._send_rest(memoryview(data)[sent:])

    def _send_tls(self, data: memoryview) -> None:
        """Through gevent's SSL socket, which waits for the client inside sendall: in pieces, so
        that the sweep sees the progress (and can end a write that makes none)."""
        try:
            for start in range(0, len(data), TLS_PIECE):
                if self.dropping:
                    raise _Dropped()
                self._progress(len(data) - start)
                if start:
                    self.worker.output_held(self)
                self.writing = True
                try:
                    self.sock.sendall(data[start:start + TLS_PIECE])
                finally:
                    self.writing = False
        except OSError:
            self.closed = True
        except _Dropped:
            self._log_dropped(len(data))
            self.closed = True
        finally:
            self._progress(0)

    def _log_dropped(self, unsent: int) -> None:
        self.policy.log_dropped(self.dropping, unsent)

    def _send_rest(self, rest: memoryview) -> None:
        try:
            while rest and not self.closed:
                self._wait_writable(len(rest))
                try:
                    rest = rest[self.sock.send(rest):]
                except BlockingIOError:
                    continue
                except OSError:
                    self.closed = True
        except _Dropped:
            self._log_dropped(len(rest))
            self.closed = True
        finally:
            self._progress(0)

    def _wait_writable(self, unsent: int) -> None:
        if self.dropping:
            raise _Dropped()
        self._progress(unsent)
        self.worker.output_held(self)
        if self.writable is None:
            self.writable = self.hub.loop.io(self.fd, 2)
        self.writing = True
        try:
            self.hub.wait(self.writable)
        finally:
            self.writing = False

    def _progress(self, unsent: int) -> None:
        self.worker.unsent.note(self.policy, self, unsent, time.monotonic())

    # -- before HTTP ---------------------------------------------------------------------------------

    def _handshake(self) -> bool:
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
            return False  # plain HTTP, a scanner, a slow or failed handshake: close
        self.sock.settimeout(None)  # from here the sweep keeps the read deadlines
        self.tls = True
        return True


class _Gone:
    """What a connection holds once the app took its TLS socket: closing it is nothing."""

    def close(self) -> None:
        pass


def run_worker(app: Callable[..., Any], cfg: Config, listeners: list[socket.socket],
               log: logging.Logger, ctx: WorkerContext) -> None:
    GeventWorker(app, cfg, listeners, log, ctx).run()
    sys.stdout.flush()

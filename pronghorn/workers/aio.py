"""The asyncio driver the sync and gthread workers share: uvloop (asyncio's own loop without it) holds
the connections; a ``Calls`` object, the worker class's one decision, says who calls the app.

Theory of operation
-------------------
Each connection is an asyncio protocol (``HTTPProtocol``) around the shared connection policy
(``cycle.connection``): bytes arrive, the policy answers with what to do, and a complete request goes
to the worker's ``Calls`` — inline on the loop, one at a time (sync), or to a pool of threads
(gthread). The protocol is also the request cycle's ``Channel`` for calls made on the loop's thread;
gthread wraps it in a channel that hands everything to the loop.

One ticker beats the heartbeat several times per ``--timeout`` and, once a second, sweeps the
connections' deadlines: idle keep-alive, a head or body that does not arrive (408), and a write that
makes no progress (``--write-timeout``). The sweep looks at a slice of the connections per loop
turn (``LoopWorker._sweep``), so thousands of idle keep-alive connections never hold the active
ones back for long. Output the clients do
not read is bounded per worker (``--max-unsent-bytes``): past it, the connection with no write
progress for the longest is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import signal
import socket
from typing import Any, Callable, Generator, Protocol, cast

from ..compiled import mypyc_attr
from ..config import Config
from ..cycle.connection import (
    CLOSE, IDLE, IDLE_OVER, PAUSE, PULL, READ, READY, REFUSE, STALLED, ConnectionPolicy,
    UnsentOutput,
)
from ..cycle.request import DRAIN, EMPTY, Job, RequestCycle, Wait, writable
from ..cycle.takeover import client_socket
from ..http import HTTPError
from ..tls import HANDSHAKE_TIMEOUT
from ..wsgi.environ import EnvironBuilder
from .base import WorkerContext, server_address
from .held_output import HOLD_LIMIT, HeldOutput, write_some

# Above this many bytes buffered for a client, a streamed body waits for it (DRAIN).
WRITE_HIGH_WATER = 256 * 1024
# Connections the deadline sweep looks at per loop turn (a few hundred microseconds' work).
SWEEP_SLICE = 256


def new_loop(kind: str = "auto") -> asyncio.AbstractEventLoop:
    """uvloop's loop, or asyncio's own without uvloop (``kind``: --asgi-loop's auto, asyncio or
    uvloop; "uvloop" raises ImportError without it). It is not made the thread's current loop
    (asyncio.set_event_loop): the app's code runs as under Gunicorn, where asyncio.get_event_loop()
    and asyncio.run() make a loop of their own (see LoopWorker.run)."""
    if kind == "asyncio":
        return asyncio.new_event_loop()
    try:
        import uvloop
    except ImportError:
        if kind == "uvloop":
            raise
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class Calls(Protocol):
    """Who calls the app: the one thing the sync and gthread workers do differently."""

    #: Whether the app's calls run on other threads (wsgi.multithread).
    multithread: bool

    def start(self, worker: "LoopWorker") -> None:
        """The loop exists; the servers are not serving yet."""

    def submit(self, proto: "HTTPProtocol") -> None:
        """proto's request is ready (proto.policy.request and .body)."""

    def idle(self) -> bool:
        """No app call is under way (the graceful stop waits for this)."""

    def stuck(self) -> bool:
        """Whether to let the heartbeat lapse although the loop runs (every call hangs)."""

    def shutdown(self) -> None:
        """The worker is exiting."""

    def on_loop(self, function: Callable[[], Any]) -> Any:
        """function() run on the loop's thread (called from where the app runs), and its result."""


class LoopWorker:
    """The loop, the listeners, the signals and the sweep; see the module's docstring."""

    #: Whether the app's code runs as asyncio's running loop's (the ASGI worker's coroutines): else
    #: the loop is hidden from it, as under Gunicorn's sync workers (see run).
    app_sees_loop = False

    def __init__(self, app: Callable[..., Any], cfg: Config, listeners: list[socket.socket],
                 log: logging.Logger, ctx: WorkerContext, calls: Calls,
                 max_connections: int = 0) -> None:
        self.cfg = cfg
        self.listeners = listeners
        self.log = log
        self.ctx = ctx
        self.calls = calls
        self.cycle = RequestCycle(app, cfg, ctx, log, calls.multithread)
        self.cycle.in_flight = self._jobs
        self.tls = ctx.ssl_context is not None
        self.loop = self.new_loop()
        self.protocol_class: type[HTTPProtocol] = HTTPProtocol  # (a subclass's own, for ASGI)
        self.connections: set[HTTPProtocol] = set()
        ctx.count_connections = self.connections.__len__  # (--metrics-bind's gauge)
        self.servers: list[asyncio.Server] = []
        self.builders: dict[int, EnvironBuilder] = {}
        self.closing = False
        self._settled = False  # closing, and every connection accepted before is known
        self._stopped: asyncio.Future[None] | None = None
        # --worker-connections (gthread): at the bound, stop accepting; further clients wait in the
        # kernel's listen queue, where another worker can take them.
        self.max_connections = max_connections
        self._accept_paused = False
        self.unsent = UnsentOutput(cfg.max_unsent_bytes)
        self._next_sweep = 0.0
        # The connections the sweep under way has still to look at (see _sweep_some).
        self._to_sweep: list[HTTPProtocol] = []
        # The sync worker's gathering of streamed pieces (workers/held_output.py); None: every
        # piece is written at once (gthread hands its writes to the loop, and TLS is written by
        # the loop only).
        self.held_output: HeldOutput | None = None
        # --http-protocols with h2: which connections may switch to HTTP/2 (workers/h2.py, and
        # the h2 library, imported only then).
        self.h2_choice: Any = None
        if "h2" in cfg.http_protocols.split(","):
            from .h2 import H2Choice
            self.h2_choice = H2Choice(cfg, self.tls)

    # -- lifecycle -----------------------------------------------------------------------------------

    def new_loop(self) -> asyncio.AbstractEventLoop:
        return new_loop()

    def before_close(self) -> None:
        """The worker has stopped serving; its loop is still open (the ASGI lifespan's shutdown)."""

    def run(self) -> None:
        loop = self.loop
        self._stopped = loop.create_future()
        self.calls.start(self)
        if self.h2_choice is not None and self.h2_choice.enabled:
            from .h2 import with_h2
            self.protocol_class = with_h2(self.protocol_class)
        for sock in self.listeners:
            builder = self.cycle.builder(server_address(sock), self.tls)
            self.builders[sock.fileno()] = builder
            # Not serving yet: a request already waiting in the backlog would be accepted and run
            # while the loop creates the next server, before the signal handlers below exist.
            self.servers.append(loop.run_until_complete(
                self._create_server(sock, builder, start_serving=False)))
        # Plain Python handlers, not loop.add_signal_handler(): Python runs them between bytecodes,
        # so a TERM that arrives in the middle of the app's call is seen at once and the response
        # being made can announce the close. They also cannot be lost: uvloop drops a signal that
        # lands after add_signal_handler() but before the loop runs.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, self._on_stop_signal)
        self.ctx.call_soon = loop.call_soon_threadsafe
        self.ctx.install_signals()
        for server in self.servers:
            if not self.closing:  # a TERM that came meanwhile has closed them
                loop.run_until_complete(server.start_serving())
        self._tick()
        # From its first callback on, the loop is not asyncio's "running loop": code the app runs
        # in this thread (the sync worker calls it here) sees none, as under Gunicorn's workers,
        # and may asyncio.run() a coroutine. Nothing of ours asks asyncio for the running loop:
        # callbacks and transports hold theirs. (Done once, not around each app call: setting
        # the running loop costs a getpid() system call.)
        if not self.app_sees_loop:
            loop.call_soon(asyncio._set_running_loop, None)
        self.ctx.notify_ready()
        try:
            loop.run_until_complete(self._stopped)
        finally:
            for proto in list(self.connections):
                proto.abort()
            loop.run_until_complete(asyncio.sleep(0))
            self.before_close()
            loop.close()
            self.calls.shutdown()
            if self.cycle.request_log is not None:
                self.cycle.request_log.flush()

    async def _create_server(self, sock: socket.socket, builder: EnvironBuilder,
                             start_serving: bool = True) -> asyncio.Server:
        if self.max_connections:
            # A server closes the socket it serves when it closes; at --worker-connections the
            # servers close to stop accepting, so each gets its own descriptor of the listener.
            sock = sock.dup()
        tls = self.ctx.ssl_context
        return await self.loop.create_server(
            lambda: self.protocol_class(self, builder), sock=sock, backlog=self.cfg.backlog,
            start_serving=start_serving, ssl=tls,
            # The handshake counts against the head's deadline too, and never takes longer than
            # HANDSHAKE_TIMEOUT: a TLS port is otherwise an open door for idle connections.
            ssl_handshake_timeout=(min(HANDSHAKE_TIMEOUT, self.cfg.header_timeout or HANDSHAKE_TIMEOUT)
                                   if tls is not None else None))

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        """Runs in the main thread between bytecodes, possibly inside the app's call: only mark the
        responses in progress as their connections' last and hand the real work to the loop."""
        if signum == signal.SIGTERM:
            # The responses first, then worker.alive: whoever sees alive turn False (a hook, the
            # app in another thread) finds the responses in progress already marked.
            self.cycle.close_after_current()
            self.ctx.on_terminate()
        else:
            self.ctx.on_interrupt()
        if self.loop.is_closed():
            return  # already on the way out
        self.loop.call_soon_threadsafe(
            self.stop_gracefully if signum == signal.SIGTERM else self.stop_now)

    def stop_gracefully(self) -> None:
        """Stop accepting; let in-flight requests finish; idle connections close soon (TERM)."""
        if self.closing:
            return
        self.closing = True
        self.cycle.closing = True
        # The servers close their listening descriptors: keep copies to drain the queue with.
        backlog = [(sock.dup(), self.builders[sock.fileno()]) for sock in self.listeners
                   if sock.fileno() >= 0]
        if isinstance(self.loop, asyncio.selector_events.BaseSelectorEventLoop):
            # Plain asyncio drops a connection it has accepted but not yet given a transport when
            # the server closes meanwhile: stop accepting now, close once those are known.
            for server in self.servers:
                for sock in server.sockets:
                    self.loop.remove_reader(sock.fileno())
        else:
            for server in self.servers:
                server.close()
        # Idle keep-alive connections are not cut at once: a client may be sending its next request
        # right now, and would see a reset. Each gets its next request answered with
        # "Connection: close", or is closed after a short idle spell (see the sweep).
        self.loop.call_later(self.cfg.graceful_timeout, self.stop_now)
        # A connection accepted just before the close may not have reached connection_made yet
        # (uvloop takes one callback to get there, asyncio two): drain once those have run.
        self.loop.call_soon(self.loop.call_soon, self._drain_backlog, backlog)

    def _drain_backlog(self, backlog: list[tuple[socket.socket, EnvironBuilder]]) -> None:
        """Accept every connection already waiting in the listen queues before letting go of
        them: a queued client has done its handshake and may have sent its request, and when the
        last descriptor of a listener closes the kernel resets it (Gunicorn drops these)."""
        for server in self.servers:
            server.close()  # (again: closing twice is nothing)
        made: list[Any] = []
        for sock, builder in backlog:
            with sock:
                sock.setblocking(False)
                while True:
                    try:
                        conn, _ = sock.accept()
                    except (BlockingIOError, InterruptedError):
                        break  # the queue is empty (or another worker took the rest)
                    except ConnectionAbortedError:
                        continue
                    except OSError as exc:
                        self.log.error("Could not accept a waiting connection: %s", exc)
                        break
                    made.append(self._adopt(conn, builder))
        if not made:
            self._accepts_settled()
            return
        done = asyncio.gather(*made, return_exceptions=True)
        done.add_done_callback(lambda _: self._accepts_settled())

    def _adopt(self, conn: socket.socket, builder: EnvironBuilder) -> Any:
        """A connection drained from the queue, made a connection like any accepted one."""
        if conn.family != socket.AF_UNIX:
            try:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        tls = self.ctx.ssl_context
        return self.loop.create_task(self.loop.connect_accepted_socket(
            lambda: self.protocol_class(self, builder), conn, ssl=tls,
            ssl_handshake_timeout=(min(HANDSHAKE_TIMEOUT, self.cfg.header_timeout or HANDSHAKE_TIMEOUT)
                                   if tls is not None else None)))

    def _accepts_settled(self) -> None:
        self._settled = True
        self.maybe_stopped()

    def stop_now(self) -> None:
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)

    def maybe_stopped(self) -> None:
        if self.closing and self._settled and not self.connections and self.calls.idle():
            self.stop_now()

    def _tick(self) -> None:
        """The heartbeat, several times per --timeout, so that only a loop blocked for the whole
        timeout looks dead to the master; and the connections' deadlines, once a second."""
        if self.loop.is_closed():
            return
        if self.calls.stuck():
            pass  # let the heartbeat lapse: the master replaces a worker whose calls all hang
        elif not self.ctx.tick():
            self.log.info("Parent changed, shutting down: %s", self.ctx.pid)
            self.stop_gracefully()
        now = self.loop.time()
        if now >= self._next_sweep:
            self._next_sweep = now + 1.0
            self._sweep(now)
        self.loop.call_later(self.ctx.heartbeat_interval, self._tick)

    def _sweep(self, now: float) -> None:
        """Look at every connection's deadlines, a slice per loop turn: 10,000 idle keep-alive
        connections looked at all at once held the active clients back ~8 ms each second. Nothing
        is kept per connection for it, so a connection costs no more to open and close."""
        if self._to_sweep:
            return  # the last sweep is still under way (a very busy loop): it goes on
        self._to_sweep = list(self.connections)
        self._sweep_some()

    def _sweep_some(self) -> None:
        queue = self._to_sweep
        batch = queue[-SWEEP_SLICE:]
        del queue[-SWEEP_SLICE:]
        now = self.loop.time()
        connections = self.connections
        for proto in batch:
            if proto in connections:  # (not lost since the sweep began)
                proto.sweep(now)
        if queue:
            self.loop.call_soon(self._sweep_some)

    # -- connections -----------------------------------------------------------------------------------

    def _jobs(self) -> list[Job]:
        jobs = [proto.job for proto in list(self.connections) if proto.job is not None]
        if self.h2_choice is not None:  # (an HTTP/2 connection's requests are its streams')
            for proto in list(self.connections):
                h2 = getattr(proto, "h2", None)
                if h2 is not None:
                    jobs += h2.jobs()
        return jobs

    def connection_opened(self, proto: "HTTPProtocol") -> None:
        self.connections.add(proto)
        if self.max_connections and not self._accept_paused and not self.closing \
                and len(self.connections) >= self.max_connections:
            self._accept_paused = True
            for server in self.servers:
                server.close()
            self.servers = []

    def connection_closed(self, proto: "HTTPProtocol") -> None:
        self.connections.discard(proto)
        if self._accept_paused and not self.closing and len(self.connections) < self.max_connections:
            self._accept_paused = False
            self.loop.create_task(self._resume_accepting())
        self.maybe_stopped()

    async def _resume_accepting(self) -> None:
        for sock in self.listeners:
            server = await self._create_server(sock, self.builders[sock.fileno()])
            if self.closing or self._accept_paused:  # things changed while it was being made
                server.close()
            else:
                self.servers.append(server)

    def output_held(self, proto: "HTTPProtocol") -> None:
        """proto holds output its client has not taken: within --max-unsent-bytes for the
        worker, or the stalest holders are dropped."""
        for other in self.unsent.to_drop(keep=proto.policy):
            other.drop_stalled("--max-unsent-bytes is reached")


# (compiled, a native class: HTTP/2's switch, workers/h2.py's with_h2, is mixed into it at run time)
@mypyc_attr(allow_interpreted_subclasses=True)
class HTTPProtocol(asyncio.Protocol):
    """One client connection: the transport's side of the connection policy, and the request
    cycle's Channel for calls made on the loop's thread."""

    # Set by connection_made, which the loop calls before anything else.
    transport: asyncio.Transport
    policy: ConnectionPolicy
    #: Whether 100 Continue waits until the app asks for the body (the ASGI worker's apps wait
    #: without blocking the loop); else it is sent at once and the body buffered first.
    defer_continue = False

    def __init__(self, worker: LoopWorker, builder: EnvironBuilder) -> None:
        self.worker = worker
        self.builder = builder
        self.loop = worker.loop
        self.job: Job | None = None  # the request the app is on, from its call to complete()
        self.body_error: HTTPError | None = None  # (bodies are read before the app runs: none)
        self.closed = False
        self.write_paused = False
        self.reading_paused = False
        self._resume: Callable[[], None] | None = None  # a parked stream's waiter
        # A streamed body's pieces not yet written (workers/held_output.py), while ``gathering``.
        self.gathering: HeldOutput | None = None
        self.held: list[bytes] = []
        self.held_size = 0
        self.fd = -1  # the socket's descriptor, for the held output's watcher

    # -- asyncio callbacks ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # (a stream server's)
        worker = self.worker
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        # Expect: 100-continue is answered at once and the body buffered before the app is called
        # (see cycle.connection): here the app's call never waits for a client. (The ASGI
        # protocol defers it: its app awaits the body without holding up the loop.)
        self.policy = ConnectionPolicy(worker.cycle, self.builder,
                                       transport.get_extra_info("peername"), self.loop.time,
                                       self.write, defer_continue=self.defer_continue)
        self.submit = worker.calls.submit
        self.client_socket = client_socket(self)  # environ["gunicorn.socket"], for every request
        worker.connection_opened(self)
        if self.policy.start() == CLOSE:
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.worker.connection_closed(self)
        if self.policy.unsent:
            self.worker.unsent.note(self.policy, self, 0, self.loop.time())
        if self._resume is not None:
            self._wake()
        # The policy's send is this protocol's method: let go of it, or the pair is a cycle that
        # only the garbage collector frees, a cost on every connection.
        self.policy.send = _dropped

    def data_received(self, data: bytes) -> None:
        step = self.policy.feed(data)
        if step == READY:
            self.submit(self)
        elif step:
            self._act(step)

    def eof_received(self) -> bool:
        self._act(self.policy.feed(b""))
        # Keep the write side open: a request may still be owed its answer. (TLS cannot half-close;
        # there the transport closes after this whatever we return, so say False.)
        return not self.worker.tls

    def pause_writing(self) -> None:
        self.write_paused = True
        self._note_output(self.loop.time())
        self.worker.output_held(self)

    def resume_writing(self) -> None:
        self.write_paused = False
        self._note_output(self.loop.time())
        if self._resume is not None:
            self._wake()

    # -- what the policy says ----------------------------------------------------------------------------

    def _act(self, step: int) -> None:
        if step == READ:
            return
        if step == READY:
            self.submit(self)
        elif step == REFUSE:
            status, reason = self.policy.refusal
            self.refuse(status, reason)
        elif step == CLOSE:
            self.close()
        elif step == PAUSE:
            if not self.reading_paused and not self.closed:
                self.reading_paused = True
                self.transport.pause_reading()

    def pull(self) -> None:
        """Parse pipelined input (scheduled after a response, never from inside it)."""
        if not self.closed and self.policy.phase == IDLE:
            self._act(self.policy.pull())

    def sweep(self, now: float) -> None:
        """The deadlines, from the worker's once-a-second sweep."""
        policy = self.policy
        if policy.unsent or self.write_paused:
            self._note_output(now)
        step = policy.expired(now)
        if step == READ:
            return
        if step == IDLE_OVER:
            if not self._input_waiting():
                self.close()
        elif step == STALLED:
            self.drop_stalled()
        else:
            self._act(step)

    def _note_output(self, now: float) -> None:
        unsent = 0 if self.closed else self.transport.get_write_buffer_size()
        self.worker.unsent.note(self.policy, self, unsent, now)

    def drop_stalled(self, why: str = "") -> None:
        self.policy.log_dropped(why, self.policy.unsent)
        self.abort()

    def _input_waiting(self) -> bool:
        """Whether the client's next bytes are already in the socket, unread: a loop that was held
        up runs its timers before reading, and must not take a client that has just sent its next
        request for an idle one. (Rare, so its cost does not matter.)"""
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return bool(readable)

    # -- the request cycle's Channel (on the loop's thread) ------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.closed or not data:
            return
        gathering = self.gathering
        if gathering is None:
            self.transport.write(data)
        elif gathering.app_running:  # the app's write() callable, called from its iterable
            with gathering.lock:
                self._hand_held(data)
        else:
            self.held.append(data)
            self.held_size += len(data)
            if self.held_size >= HOLD_LIMIT:
                self._hand_held(b"")

    def _hand_held(self, data: bytes) -> None:
        """The held pieces, then data, to the transport (the lock held)."""
        held = self.held
        if held:
            held.append(data)
            data = b"".join(held)
            held.clear()
            self.held_size = 0
        if data:
            self.transport.write(data)

    def gather(self) -> HeldOutput | None:
        output = self.worker.held_output
        if output is None or self.closed or self.transport.get_write_buffer_size():
            return None
        if self.fd < 0:
            self.fd = self.transport.get_extra_info("socket").fileno()
        output.begin(self)
        self.gathering = output
        return output

    def stop_gathering(self) -> None:
        """The stream is over. Bytes still held mean it ended early (the app raised, or the
        client left): they go to the transport as they would have piece by piece, so that what
        the app made before its error reaches the client ahead of the cut."""
        self.gathering = None
        if self.held and not self.closed:
            self._hand_held(b"")
        self.held.clear()
        self.held_size = 0

    def send_held(self) -> None:
        """From the held output's watcher, while the app makes its next piece (see held_output)."""
        if self.closed or self.transport.is_closing() or self.transport.get_write_buffer_size():
            return  # (behind bytes the transport holds: they go first, from the loop)
        write_some(self.fd, self.held)
        self.held_size = len(self.held[0]) if self.held else 0

    def complete(self, data: bytes, keep_alive: bool) -> None:
        """The response's last bytes: close, or go on to the next request."""
        self.job = None
        if self.closed:
            return
        if self.held:
            self._hand_held(data)
        elif data:
            self.transport.write(data)
        step = self.policy.response_done(keep_alive)
        if step == CLOSE:
            self.close()
            return
        # Stopping or not, a connection whose response promised keep-alive stays open: closing it
        # now could reset a request the client is already sending. Its next request is answered
        # with "Connection: close"; if none comes, the sweep closes it.
        if self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()
        if step == PULL:
            self.loop.call_soon(self.pull)  # (from the loop, not from inside this response)

    def backlogged(self) -> bool:
        if self.write_paused:
            if self.held:  # (before the stream waits, the loop gets everything written)
                self._hand_held(b"")
            return True
        return False

    def gone(self) -> bool:
        """No more bytes can reach the client: we closed, or the transport hit an error and is
        closing (it then drops writes without pausing us, and connection_lost comes only once we
        yield to the loop: a generator that never ends would be pulled forever without this)."""
        return self.closed or self.transport.is_closing()

    def refuse(self, status: int, reason: str, log: bool = True) -> None:
        self.job = None
        if log:
            self.worker.log.debug("Refused request from %s: %d %s", self.policy.peer, status,
                                  reason)
        if not self.closed:
            self.transport.write(self.worker.cycle.error_page(status, reason))
        self.close()

    def abort(self) -> None:
        self.job = None
        self.closed = True
        self.transport.abort()

    def can_sendfile(self) -> bool:
        # With TLS the bytes must go through the TLS layer, not straight to the socket.
        return not self.worker.tls and not self.closed

    def sendfile(self, fd: int, offset: int, count: int) -> Generator[Wait, None, int]:
        return _send_file(self, fd, offset, count)

    # -- the app takes the connection over (environ["gunicorn.socket"], see cycle.takeover) -------------

    def detach(self) -> tuple[socket.socket, bytes]:
        return cast("tuple[socket.socket, bytes]", self.worker.calls.on_loop(self._detach))

    def _detach(self) -> tuple[socket.socket, bytes]:
        """On the loop's thread: stop reading, duplicate the descriptor for the app, and close the
        transport. Closing the transport closes only its descriptor: the connection lives on in the
        app's duplicate, so the client sees nothing of it."""
        if self.closed or self.transport.is_closing():
            raise OSError("the connection is closed")
        if self.worker.tls:
            # The TLS session lives in the loop's memory, not in the socket: there is no socket
            # the app could speak TLS on.
            raise OSError("gunicorn.socket cannot take over a TLS connection in the sync and gthread "
                          "workers (TLS ends in their event loop): use the gevent worker, or end "
                          "TLS in a proxy")
        gathering = self.gathering
        if gathering is not None and gathering.app_running:  # (mid-stream: what it wrote first)
            with gathering.lock:
                self._hand_held(b"")
        raw = self.transport.get_extra_info("socket")
        self.transport.pause_reading()
        sock = socket.socket(raw.family, raw.type, raw.proto, fileno=os.dup(raw.fileno()))
        sock.setblocking(True)
        unread = self.policy.take_unparsed()
        self.closed = True
        self.transport.close()
        return sock, unread

    # -- between responses ----------------------------------------------------------------------------------

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()

    # -- waiting, for the cycle's streams ---------------------------------------------

    def park(self, wait: Wait, resume: Callable[[], None]) -> None:
        """Call resume (from the loop) once wait is satisfied, or the connection is gone."""
        if self.closed or self.gone():
            self.loop.call_soon(resume)
        elif wait is DRAIN:
            if self.write_paused:
                self._resume = resume
            else:
                self.loop.call_soon(resume)
        elif wait is EMPTY:
            if self.transport.get_write_buffer_size():
                # asyncio has no "buffer empty" callback; look again shortly.
                self.loop.call_later(0.001, self.park, wait, resume)
            else:
                self.loop.call_soon(resume)
        else:  # writable(fd): sendfile's own descriptor
            fd = wait.fd

            def ready() -> None:
                self.loop.remove_writer(fd)
                if self._resume is ready:
                    self._resume = None
                resume()

            self._resume = ready
            self.loop.add_writer(fd, ready)

    def _wake(self) -> None:
        resume, self._resume = self._resume, None
        if resume is not None:
            resume()


def _dropped(data: bytes) -> None:
    """What a closed connection's policy sends with."""


def _send_file(proto: HTTPProtocol, fd: int, offset: int, count: int) -> Generator[Wait, None, int]:
    """Put a regular file on the wire with os.sendfile (no copy through Python), on a duplicate of
    the socket's descriptor, once the head and anything before it have left."""
    yield EMPTY
    if proto.gone():
        return 0
    out = os.dup(proto.transport.get_extra_info("socket").fileno())
    sent_total = 0
    try:
        while sent_total < count and not proto.closed:
            try:
                sent = os.sendfile(out, fd, offset + sent_total, count - sent_total)
            except BlockingIOError:
                yield writable(out)
                continue
            except OSError:
                break  # the client went away
            if sent == 0:
                break
            sent_total += sent
    finally:
        os.close(out)
    return sent_total

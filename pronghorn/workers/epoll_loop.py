"""The sync worker's own event loop: epoll, plain non-blocking sockets, callbacks.

Why not uvloop here
-------------------
The sync worker needs very little of an event loop: accept, read, write with backpressure, a few
timers, and a way for a signal or a thread to wake it. uvloop brings asyncio with it, and asyncio
imports ``ssl``: together about 9.5 MiB of every worker's resident set (Python alone is about 11),
which made a pronghorn worker bigger than a Gunicorn one. This loop's dispatch is Python where
uvloop's is C (about 5 % more instructions per hello request), but it makes fewer system calls per
connection: the peer's address comes from accept(), TCP_NODELAY is inherited from the listener,
closing leaves epoll without an epoll_ctl, and a wakeup accepts a batch of connections where libuv
takes one per turn (docs/performance.md has the measurements). TLS still runs on uvloop (``ssl`` is
loaded then anyway).

What it offers is the subset of asyncio's loop, transport and future interfaces the sync worker
uses, with the same meaning, so the worker's code runs unchanged on either: ``call_soon``,
``call_later``, ``call_soon_threadsafe``, ``create_future``, ``create_task`` (coroutines that await
this module's futures), ``run_until_complete``, ``add_writer``, ``create_server`` and transports
with ``write``, ``pause_reading``, ``close``, ``abort`` and the write-buffer limits.

One difference in order: a protocol's ``connection_made`` runs inside the accept, so a connection
is known to the worker from the moment it is accepted.
"""

from __future__ import annotations

import collections
import errno
import fcntl
import heapq
import logging
import os
import select
import socket
import sys
import termios
from time import monotonic
from typing import Any, Callable, Coroutine, Generator

_read = os.read
_readv = os.readv
_write = os.write
_ioctl = fcntl.ioctl
_FIONBIO = termios.FIONBIO
_ON = (1).to_bytes(4, sys.byteorder)  # FIONBIO's argument: a pointer to a C int
_EPOLLIN = select.EPOLLIN
# A hang-up or an error wakes both sides: the read sees the EOF or the error, a pending write its
# error, and each side's handler then cleans up.
_READABLE = select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR | select.EPOLLRDHUP
_WRITABLE = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR
# A connection's first reads ask for FIRST_READ_SIZE bytes (most requests' heads are smaller);
# once one fills it, up to READ_SIZE, through one buffer (see _read_large and _on_events).
FIRST_READ_SIZE = 448
READ_SIZE = 256 * 1024
_large: list[Any] = []  # the buffer and a view of it, made at the first large read
# Connections taken from a listener per wakeup: enough that a burst does not wait a turn per
# connection, few enough that one worker among several does not take them all.
ACCEPT_BATCH = 64
# Errors that mean the peer is gone, not that the server is broken: closed quietly.
_PEER_GONE = (ConnectionError, TimeoutError)
_ACCEPT_RETRY = 1.0  # out of file descriptors: stop accepting for this long (as asyncio does)


def _read_large(fd: int) -> bytes:
    """Read up to READ_SIZE into the process's one buffer and copy out what came, as libuv does:
    os.read(fd, READ_SIZE) would make a bytes of 256 KiB and shrink it, and glibc serves each
    such allocation with mmap (15 µs a read, measured; a 64 KiB upload needs its ~65.6 KiB in one
    read to cost one turn)."""
    if not _large:
        buffer = bytearray(READ_SIZE)  # (now, not at import: a worker that never needs it
        _large.extend(([buffer], memoryview(buffer)))  # keeps 256 KiB less resident)
    buffers, view = _large
    return view[:_readv(fd, buffers)].tobytes()


class InvalidStateError(Exception):
    """A future's result was asked for before it was set, or set twice."""


class Handle:
    """A callback for the loop to run (call_soon), or to run later (call_later: a TimerHandle)."""

    __slots__ = ("callback", "args", "cancelled", "when")

    def __init__(self, callback: Callable[..., Any], args: tuple[Any, ...], when: float = 0.0) -> None:
        self.callback = callback
        self.args = args
        self.cancelled = False
        self.when = when

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: "Handle") -> bool:  # the timer heap's order
        return self.when < other.when


class Future:
    """A result to wait for: set once, awaited by a coroutine run as a Task, or given callbacks."""

    __slots__ = ("_loop", "_done", "_result", "_callbacks")

    def __init__(self, loop: "EpollLoop") -> None:
        self._loop = loop
        self._done = False
        self._result: Any = None
        self._callbacks: list[Callable[["Future"], Any]] = []

    def done(self) -> bool:
        return self._done

    def result(self) -> Any:
        if not self._done:
            raise InvalidStateError("the result is not set yet")
        return self._result

    def set_result(self, result: Any) -> None:
        if self._done:
            raise InvalidStateError("the result is already set")
        self._result = result
        self._done = True
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:  # as asyncio: from the loop, never from inside set_result
            self._loop.call_soon(callback, self)

    def add_done_callback(self, callback: Callable[["Future"], Any]) -> None:
        if self._done:
            self._loop.call_soon(callback, self)
        else:
            self._callbacks.append(callback)

    def cancel(self) -> bool:
        """Forget the callbacks; whoever awaits this is never resumed (its Task was cancelled)."""
        self._callbacks = []
        return not self._done

    def __await__(self) -> Generator["Future", None, Any]:
        if not self._done:
            yield self
        return self._result


class Task(Future):
    """Runs a coroutine that awaits Futures (or yields bare, to let the loop turn), resuming it when
    each is done."""

    __slots__ = ("_coro", "_waiting", "_cancelled")

    def __init__(self, loop: "EpollLoop", coro: Coroutine[Any, Any, Any]) -> None:
        super().__init__(loop)
        self._coro = coro
        self._waiting: Future | None = None
        self._cancelled = False
        loop.call_soon(self._step)

    def _step(self, _: Any = None) -> None:
        if self._cancelled:
            return
        self._waiting = None
        try:
            awaited = self._coro.send(None)
        except StopIteration as stop:
            self.set_result(stop.value)
            return
        except Exception:
            self._loop.log.exception("Unhandled error in a task of the event loop")
            self.set_result(None)
            return
        if awaited is None:
            # A bare yield (asyncio.sleep(0) is one): give the loop a turn, as asyncio's tasks do.
            self._loop.call_soon(self._step)
            return
        self._waiting = awaited
        awaited.add_done_callback(self._step)

    def cancel(self) -> bool:
        """Stop the coroutine where it waits (its finally blocks run, as with GeneratorExit)."""
        if self._done or self._cancelled:
            return False
        self._cancelled = True
        if self._waiting is not None:
            self._waiting.cancel()
        self._coro.close()
        return True


class EpollLoop:
    """A single-threaded loop; see the module's docstring."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        # The clock, called straight (not through a method): the worker reads it per request.
        self.time: Callable[[], float] = monotonic
        self._epoll = select.epoll()
        self._ready: collections.deque[Handle] = collections.deque()
        self._timers: list[Handle] = []
        # fd -> the handler of its events, called with the event mask.
        self._handlers: dict[int, Callable[[int], None]] = {}
        self._watches: dict[int, "_Watch"] = {}  # add_reader / add_writer, by fd
        self._closed = False
        # call_soon_threadsafe (from another thread, or a signal handler) wakes the poll through
        # this pipe.
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._register(self._wake_r, _EPOLLIN, self._drain_wakeups)

    # -- time and callbacks ------------------------------------------------------------------------

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> Handle:
        handle = Handle(callback, args)
        self._ready.append(handle)
        return handle

    def call_soon_threadsafe(self, callback: Callable[..., Any], *args: Any) -> Handle:
        handle = self.call_soon(callback, *args)  # (a deque's append is atomic)
        if self._closed:
            return handle  # the pipe's numbers may belong to other files by now
        try:
            os.write(self._wake_w, b"\0")
        except OSError:
            pass  # full (BlockingIOError): the loop is woken already
        return handle

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Handle:
        handle = Handle(callback, args, monotonic() + delay)
        heapq.heappush(self._timers, handle)
        return handle

    def create_future(self) -> Future:
        return Future(self)

    def create_task(self, coro: Coroutine[Any, Any, Any]) -> Task:
        return Task(self, coro)

    # -- running -------------------------------------------------------------------------------------

    def run_until_complete(self, awaitable: Any) -> Any:
        future = awaitable if isinstance(awaitable, Future) else Task(self, awaitable)
        while not future.done():
            self._run_once()
        return future.result()

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._epoll.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self._ready.clear()
        self._timers.clear()

    def _run_once(self) -> None:
        """One turn: wait for I/O (not at all if callbacks are ready), handle it, then run the
        timers that are due and the callbacks that were ready before this turn's I/O ran."""
        ready = self._ready
        timers = self._timers
        if ready:
            timeout = 0.0
        elif timers:
            timeout = max(0.0, timers[0].when - monotonic())
        else:
            timeout = -1.0
        handlers = self._handlers
        for fd, events in self._epoll.poll(timeout):
            try:
                handlers[fd](events)
            except Exception:
                # (No handler: an earlier event of this turn closed the fd. Nothing to say.)
                if fd in handlers:
                    self.log.exception("Unhandled error in the event loop's I/O handler")
        if timers:
            now = monotonic()
            while timers and timers[0].when <= now:
                ready.append(heapq.heappop(timers))
        # Callbacks added while these run wait for the next turn, after the next poll.
        for _ in range(len(ready)):
            handle = ready.popleft()
            if not handle.cancelled:
                try:
                    handle.callback(*handle.args)
                except Exception:
                    self.log.exception("Unhandled error in a callback of the event loop")

    def _drain_wakeups(self, events: int) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    # -- file descriptors ----------------------------------------------------------------------------

    def _register(self, fd: int, mask: int, handler: Callable[[int], None]) -> None:
        self._handlers[fd] = handler
        self._epoll.register(fd, mask)

    def _rewatch(self, fd: int, old: int, new: int, handler: Callable[[int], None]) -> None:
        """Change the events fd is watched for from old to new (0: not in epoll at all, as libuv
        does with an fd that waits for nothing: a hang-up is reported whatever the mask, and
        level-triggered it would be reported at every turn)."""
        if new == old:
            return
        if not new:
            self._unregister(fd)
        elif old:
            self._epoll.modify(fd, new)
        else:
            self._register(fd, new, handler)

    def _unregister(self, fd: int) -> None:
        if self._handlers.pop(fd, None) is not None and not self._closed:
            try:
                self._epoll.unregister(fd)
            except (OSError, ValueError):
                pass  # closed already: the kernel forgot it

    def add_reader(self, fd: int, callback: Callable[..., Any], *args: Any) -> None:
        self._watch(fd).set(0, Handle(callback, args))

    def remove_reader(self, fd: int) -> bool:
        return self._unwatch(fd, 0)

    def add_writer(self, fd: int, callback: Callable[..., Any], *args: Any) -> None:
        self._watch(fd).set(1, Handle(callback, args))

    def remove_writer(self, fd: int) -> bool:
        return self._unwatch(fd, 1)

    def _watch(self, fd: int) -> "_Watch":
        watch = self._watches.get(fd)
        if watch is None:
            watch = self._watches[fd] = _Watch(self, fd)
        return watch

    def _unwatch(self, fd: int, side: int) -> bool:
        watch = self._watches.get(fd)
        if watch is None or watch.handles[side] is None:
            return False
        watch.set(side, None)
        if not watch.mask:
            del self._watches[fd]
        return True

    # -- servers -------------------------------------------------------------------------------------

    async def create_server(self, protocol_factory: Callable[[], Any], sock: socket.socket,
                            backlog: int = 100, start_serving: bool = True,
                            **tls: Any) -> "Server":
        if tls.get("ssl") is not None:
            raise ValueError("the epoll loop serves plain sockets only; TLS runs on uvloop")
        server = Server(self, protocol_factory, sock, backlog)
        if start_serving:
            await server.start_serving()
        return server


class _Watch:
    """add_reader / add_writer on one fd: asyncio's generic interface, off the hot path."""

    __slots__ = ("loop", "fd", "handles", "mask")

    def __init__(self, loop: EpollLoop, fd: int) -> None:
        self.loop = loop
        self.fd = fd
        self.handles: list[Handle | None] = [None, None]
        self.mask = 0

    def set(self, side: int, handle: Handle | None) -> None:
        self.handles[side] = handle
        mask = (_READABLE if self.handles[0] else 0) | (_WRITABLE if self.handles[1] else 0)
        self.loop._rewatch(self.fd, self.mask, mask, self.on_events)
        self.mask = mask

    def on_events(self, events: int) -> None:
        reader, writer = self.handles
        if reader is not None and events & _READABLE:
            self.loop._ready.append(reader)
        if writer is not None and events & _WRITABLE:
            self.loop._ready.append(writer)


class Server:
    """A listening socket the loop accepts from (asyncio.Server's part that the worker uses)."""

    def __init__(self, loop: EpollLoop, protocol_factory: Callable[[], Any], sock: socket.socket,
                 backlog: int) -> None:
        self.loop = loop
        self.protocol_factory = protocol_factory
        self.sockets = [sock]
        self._sock = sock
        self._backlog = backlog
        self._serving = False
        self._closed = False
        self._tcp = sock.family in (socket.AF_INET, socket.AF_INET6)

    async def start_serving(self) -> None:
        if self._serving or self._closed:
            return
        self._serving = True
        sock = self._sock
        sock.setblocking(False)
        sock.listen(self._backlog)
        if self._tcp:
            # Responses go out in one write each; Nagle would hold the next pipelined one. Set on
            # the listener, Linux gives it to every connection accepted from it, which saves each
            # connection a system call. (The master's and the other workers' copies of the
            # listener are the same socket; a listener sends nothing, so it changes nothing else.)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.loop._register(sock.fileno(), _EPOLLIN, self._accept)

    def close(self) -> None:
        """Stop accepting and close the listening socket (this process's copy of it)."""
        if self._closed:
            return
        self._closed = True
        if self._serving:
            self.loop._unregister(self._sock.fileno())
        self._sock.close()

    def _resume(self) -> None:
        if not self._closed:
            self.loop._register(self._sock.fileno(), _EPOLLIN, self._accept)

    def _accept(self, events: int) -> None:
        sock = self._sock
        for _ in range(ACCEPT_BATCH):
            if self._closed:
                return
            try:
                # The descriptor and the address, without socket.accept()'s socket object: making
                # one costs a getsockname(2), and the transport needs only the descriptor.
                fd, address = sock._accept()  # type: ignore[attr-defined]
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors or memory: waiting readiness would spin; pause instead.
                    self.loop.log.error("Could not accept a connection (%s); retrying in %.0f s",
                                        exc, _ACCEPT_RETRY)
                    self.loop._unregister(sock.fileno())
                    self.loop.call_later(_ACCEPT_RETRY, self._resume)
                else:
                    self.loop.log.error("Could not accept a connection: %s", exc)
                return
            _ioctl(fd, _FIONBIO, _ON)  # non-blocking: one ioctl, where os.set_blocking takes two
            SocketTransport(self.loop, sock, fd, address, self.protocol_factory())


class SocketTransport:
    """One connection: asyncio's Transport interface over a non-blocking socket."""

    __slots__ = ("loop", "listener", "fd", "protocol", "peer", "_sock", "_buffer", "_closing", "_lost",
                 "_reading", "_writing", "_paused", "_high", "_low", "_mask", "_read_size")

    def __init__(self, loop: EpollLoop, listener: socket.socket, fd: int, peer: Any,
                 protocol: Any) -> None:
        self.loop = loop
        self.listener = listener
        self.fd = fd
        self.protocol = protocol
        self.peer = peer
        self._sock: socket.socket | None = None  # made when asked for (get_extra_info)
        self._buffer = bytearray()  # what the socket did not take yet
        self._closing = False
        self._lost = False
        self._reading = True
        self._writing = False  # waiting for writability (the buffer holds bytes)
        self._paused = False   # protocol.pause_writing() was called
        self._high = 64 * 1024
        self._low = 16 * 1024
        self._mask = _READABLE  # what epoll watches for (0: not registered)
        self._read_size = FIRST_READ_SIZE
        loop._register(self.fd, _READABLE, self._on_events)
        try:
            protocol.connection_made(self)
        except Exception:
            loop.log.exception("Unhandled error in connection_made")
            self.abort()

    # -- asyncio.Transport ---------------------------------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self.peer
        if name == "socket":
            return self.socket()
        if name == "sockname":
            try:
                return self.socket().getsockname()
            except OSError:
                return default
        return default

    def socket(self) -> socket.socket:
        """The connection as a socket object, made on first use (the hot path needs only the
        descriptor); it owns the descriptor from then on."""
        if self._sock is None:
            listener = self.listener
            self._sock = socket.socket(listener.family, listener.type, listener.proto, self.fd)
        return self._sock

    def is_closing(self) -> bool:
        return self._closing

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = 64 * 1024 if high is None else high
        self._low = self._high // 4 if low is None else low

    def get_write_buffer_size(self) -> int:
        return len(self._buffer)

    def write(self, data: bytes) -> None:
        if self._closing:
            return  # (asyncio drops it too: the connection is going)
        if not self._buffer:
            try:
                sent = _write(self.fd, data)  # (see _on_events: os.write is send(2)'s cheaper twin)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._fatal(exc)
                return
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
            self._writing = True
            self._update_mask()
        self._buffer += data
        if not self._paused and len(self._buffer) > self._high:
            self._paused = True
            self.protocol.pause_writing()

    def pause_reading(self) -> None:
        if self._reading and not self._closing:
            self._reading = False
            self._update_mask()

    def resume_reading(self) -> None:
        if not self._reading and not self._closing:
            self._reading = True
            self._update_mask()

    def close(self) -> None:
        """Stop reading; close once what is buffered has been sent."""
        if self._closing:
            return
        self._closing = True
        self._reading = False
        if self._buffer:
            self._update_mask()  # (writing only)
        else:
            self.loop.call_soon(self._connection_lost, None)

    def abort(self) -> None:
        """Close now, dropping whatever is buffered."""
        self._lose(None)

    # -- the loop's side -----------------------------------------------------------------------------

    def _update_mask(self) -> None:
        """Tell epoll what this connection waits for now (see EpollLoop._rewatch)."""
        if self._lost:
            return
        mask = (_READABLE if self._reading else 0) | (_WRITABLE if self._writing else 0)
        self.loop._rewatch(self.fd, self._mask, mask, self._on_events)
        self._mask = mask

    def _on_events(self, events: int) -> None:
        """Every event of this connection. Reading is inline here, not a method: this runs once per
        request, and a Python call more was ~4 % of a hello request's instructions."""
        if self._writing and events & _WRITABLE:
            self._flush()
        if not (self._reading and events & _READABLE):
            return
        size = self._read_size
        try:
            # os.read, not socket.recv: the same read(2), with cheaper argument parsing.
            data = _read(self.fd, size) if size else _read_large(self.fd)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal(exc)
            return
        if len(data) == size:
            # A big request, or a body: read in large pieces from now on. (Small reads first:
            # os.read makes a bytes of the size asked, then shrinks it; up to 512 bytes with
            # the object header, both are Python's own small-object allocator, where a 64 KiB
            # read went to malloc twice: ~800 instructions, 2 % of a hello request. A bigger
            # request's rest is read at the next turn.)
            self._read_size = 0
        try:
            if data:
                self.protocol.data_received(data)
                return
            # The peer is done sending (EOF). The protocol may still owe it an answer.
            self._reading = False
            keep_open = self.protocol.eof_received()
        except Exception:
            # As uvloop does: a protocol that failed on its input cannot go on with this connection.
            self.loop.log.exception("Unhandled error in a connection's protocol; closing it")
            self._lose(None)
            return
        if self._closing:
            return
        if keep_open:
            self._update_mask()
        else:
            self.close()

    def _flush(self) -> None:
        buffer = self._buffer
        try:
            sent = _write(self.fd, buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fatal(exc)
            return
        del buffer[:sent]
        if self._paused and len(buffer) <= self._low:
            self._paused = False
            self.protocol.resume_writing()
        if buffer:
            return
        self._writing = False
        if self._closing:
            self.loop.call_soon(self._connection_lost, None)
        else:
            self._update_mask()

    def _fatal(self, exc: OSError) -> None:
        """The socket failed (a reset, a broken pipe): drop everything, tell the protocol."""
        if not isinstance(exc, _PEER_GONE):
            self.loop.log.debug("Connection error: %r", exc)
        self._lose(exc)

    def _lose(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._closing = True
        self._buffer.clear()
        self._reading = self._writing = False
        self.loop.call_soon(self._connection_lost, exc)

    def _connection_lost(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        if self._mask:
            # No epoll_ctl: closing the descriptor below takes it out of epoll (nothing else holds
            # the socket open; sendfile's duplicate is closed before the response ends). Until
            # then, its events find the transport closing and do nothing.
            self.loop._handlers.pop(self.fd, None)
            self._mask = 0
        try:
            self.protocol.connection_lost(exc)
        finally:
            # The protocol holds this transport: let go of it, or the pair is a cycle that only
            # the garbage collector frees (~4 % of a Connection: close request, in callgrind).
            self.protocol = None
            if self._sock is not None:
                self._sock.close()
            else:
                os.close(self.fd)

"""``environ["gunicorn.socket"]``: the client's connection, for an app that takes it over.

WSGI websocket libraries (simple-websocket, flask-sock, and others written for Gunicorn) read the
client socket from this key, write the handshake's answer on it themselves and then talk their own
protocol on it, blocking, from the app's thread or greenlet. Our workers do not hold a plain blocking
socket (the sync and gthread workers' connections live in an event loop's transport, gevent's in a
non-blocking socket its greenlet waits on), so the app gets this stand-in: one per connection, made
when the connection is, costing nothing until the app touches it.

The first call of any socket method takes the connection over: the worker's ``take`` stops reading
it, gives a blocking socket on the same connection and the bytes it had read past the request (a
client's first frame, sent right behind its handshake), and from then on leaves the connection to
the app. Those bytes are delivered by ``recv``/``recv_into`` before anything is read from the
socket. Every other attribute is the real socket's.
"""

from __future__ import annotations

import socket
from typing import Any, Callable


class ClientSocket:
    """A socket-like view of one client connection; see the module's docstring."""

    __slots__ = ("_take", "_sock", "_unread")

    def __init__(self, take: Callable[[], tuple[socket.socket, bytes]]) -> None:
        self._take = take
        self._sock: socket.socket | None = None
        self._unread = b""  # read by the server past the request, not yet given to the app

    @property
    def taken(self) -> bool:
        """Whether the app has taken the connection over."""
        return self._sock is not None

    @property
    def sock(self) -> socket.socket:
        """The real socket, taking the connection over if it is not yet."""
        sock = self._sock
        if sock is None:
            sock, self._unread = self._take()
            self._sock = sock
        return sock

    # -- reading: what the server read ahead comes first -------------------------------------------

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        sock = self.sock
        unread = self._unread
        if unread and not flags:
            self._unread = unread[bufsize:]
            return unread[:bufsize]
        return sock.recv(bufsize, flags)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        sock = self.sock
        unread = self._unread
        if unread and not flags:
            view = memoryview(buffer).cast("B")
            count = min(len(unread), nbytes or len(view), len(view))
            view[:count] = unread[:count]
            self._unread = unread[count:]
            return count
        return sock.recv_into(buffer, nbytes, flags)

    def makefile(self, *args: Any, **kwargs: Any) -> Any:
        sock = self.sock
        if self._unread:
            # A file object reads the descriptor itself and would skip what the server read ahead.
            raise OSError("makefile() while input read ahead is waiting: recv() it first")
        return sock.makefile(*args, **kwargs)

    def pending_input(self) -> bytes:
        """What the server read past the request and the app has not received yet (a selector on
        fileno() does not see it)."""
        _ = self.sock  # (takes the connection over, which collects these bytes)
        return self._unread

    # -- the rest is the socket's -----------------------------------------------------------------

    def send(self, data: Any, flags: int = 0) -> int:
        return self.sock.send(data, flags)

    def sendall(self, data: Any, flags: int = 0) -> None:
        self.sock.sendall(data, flags)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def shutdown(self, how: int) -> None:
        self.sock.shutdown(how)

    def settimeout(self, value: float | None) -> None:
        self.sock.settimeout(value)

    def gettimeout(self) -> float | None:
        return self.sock.gettimeout()

    def setblocking(self, flag: bool) -> None:
        self.sock.setblocking(flag)

    def getpeername(self) -> Any:
        return self.sock.getpeername()

    def getsockname(self) -> Any:
        return self.sock.getsockname()

    def setsockopt(self, *args: Any) -> None:
        self.sock.setsockopt(*args)

    def getsockopt(self, *args: Any) -> Any:
        return self.sock.getsockopt(*args)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)  # (copy, pickle and friends probe for dunders)
        return getattr(self.sock, name)

    def __repr__(self) -> str:
        return f"<pronghorn ClientSocket {'taken: ' + repr(self._sock) if self._sock else 'not taken'}>"

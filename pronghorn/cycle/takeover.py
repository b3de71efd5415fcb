"""An app taking its client's connection over through ``environ["gunicorn.socket"]`` (websockets).

Each worker class gives every connection one ``ClientSocket`` (pronghorn/wsgi/client_socket.py),
made by ``client_socket(owner)``. When the app first uses it, the driver's ``detach()`` stops
serving the connection — no more reads, no writes, its own descriptor let go without ending the
connection — and returns a blocking socket on it (a duplicate of the descriptor, or gevent's TLS
socket itself) with the bytes read past the request. The request being served then continues on
a ``TakenChannel``: whatever response the app still has the server make (its start_response and
iterable, as Gunicorn would write them) goes out on that socket, blocking, in the app's own thread
or greenlet; nothing else does (no error page: the wire is the app's). When the request is over,
the socket is closed, as Gunicorn closes it; the connection ends once the app lets go of it too.

Nothing here runs unless an app takes a connection: a request pays one dict store for the key.
"""

from __future__ import annotations

import socket
from typing import Any, Generator, Protocol

from ..http import HTTPError
from ..wsgi.client_socket import ClientSocket


class Detachable(Protocol):
    """A driver's connection, as the takeover sees it."""

    #: The request being served (a cycle.request.Job), or None.
    job: Any

    def detach(self) -> tuple[socket.socket, bytes]:
        """Stop serving the connection; a blocking socket on it and the bytes read past the
        request. OSError when it cannot be taken (closed, or TLS that lives in the event loop)."""


def client_socket(owner: Detachable) -> ClientSocket:
    """The ``gunicorn.socket`` of one connection."""

    def take() -> tuple[socket.socket, bytes]:
        sock, unread = owner.detach()
        job = owner.job
        if job is not None:
            taken = TakenChannel(sock, job.channel.body_error)
            job.channel = taken
            if job.exchange is not None:
                job.exchange.redirect(taken.write)
        return sock, unread

    return ClientSocket(take)


class TakenChannel:
    """The request cycle's Channel for a request whose app took the connection over (see the
    module's docstring): blocking writes on the app's socket, and no error pages."""

    __slots__ = ("sock", "body_error", "closed")

    def __init__(self, sock: socket.socket, body_error: HTTPError | None) -> None:
        self.sock = sock
        self.body_error = body_error
        self.closed = False

    @property
    def client_socket(self) -> Any:
        return None  # (asked only before the app runs, never of this channel)

    def write(self, data: bytes) -> None:
        if data and not self.closed:
            try:
                self.sock.sendall(data)
            except OSError:
                self.abort()  # the client is gone (or the app closed the socket)

    def complete(self, data: bytes, keep_alive: bool) -> None:
        self.write(data)
        self.abort()  # the connection was the app's: it carries no next request

    def backlogged(self) -> bool:
        return False  # writes block until the client takes them

    def gone(self) -> bool:
        return self.closed

    def refuse(self, status: int, reason: str, log: bool = True) -> None:
        self.abort()  # the app may have written anything on the wire: an error page cannot follow

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def gather(self) -> None:
        return None  # (each piece is written at once)

    def can_sendfile(self) -> bool:
        return False

    def sendfile(self, fd: int, offset: int, count: int) -> Generator[Any, None, int]:
        return 0
        yield  # (a generator, as Channel.sendfile is; never used: can_sendfile() is False)

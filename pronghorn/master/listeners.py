"""Listening sockets, created once in the master and inherited by every worker."""

from __future__ import annotations

import os
import socket
import stat
import struct
import sys
from typing import Any

from ..config import parse_bind


def create_listener(address: str, backlog: int, reuse_port: bool = False,
                    umask: int = 0) -> socket.socket:
    """A listening socket for one --bind address; a unix socket file is created under ``umask``
    (--umask), which sets who may connect to it."""
    kind, where = parse_bind(address)
    if kind == "fd":
        sock = socket.socket(fileno=where)
    elif kind == "unix":
        _remove_stale_socket(where)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # The kernel creates the socket file with mode 0o777 & ~umask. Setting the mode through
        # the umask, not a chmod after bind, leaves no moment in which anyone may connect. As in
        # Gunicorn, --umask is in force for this one call: everything else (the pidfile, the
        # logs, the app's files) keeps the umask the server was started with.
        inherited = os.umask(umask)
        try:
            sock.bind(where)
        except OSError:
            sock.close()
            raise
        finally:
            os.umask(inherited)
    else:
        host, port = where
        family = socket.AF_INET6 if kind == "inet6" else socket.AF_INET
        if kind == "inet":
            # A name such as "localhost" resolves; take the first address the resolver gives.
            infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0,
                                       socket.AI_PASSIVE)
            family, _, _, _, sockaddr = infos[0]
        else:
            sockaddr = (host, port, 0, 0)
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port and hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            # [::]:8000 beside 0.0.0.0:8000 must be two sockets, not one that clashes with the other.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind(sockaddr)
        except OSError:
            sock.close()
            raise
    sock.listen(backlog)
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


def _remove_stale_socket(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(f"{path} exists and is not a socket; refusing to replace it")
    os.unlink(path)


def describe(sock: socket.socket, scheme: str = "http") -> str:
    """The address as the log's "Listening at:" line shows it (https:// when serving TLS)."""
    name: Any = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        if isinstance(name, bytes):  # abstract (from a .socket unit's ListenStream=@name)
            return "unix:@" + name[1:].decode(errors="backslashreplace")
        return f"unix:{name}"
    if sock.family == socket.AF_INET6:
        return f"{scheme}://[{name[0]}]:{name[1]}"
    return f"{scheme}://{name[0]}:{name[1]}"


def close_listener(sock: socket.socket, unlink: bool = True) -> None:
    path = sock.getsockname() if sock.family == socket.AF_UNIX and unlink else None
    sock.close()
    if path:
        try:
            os.unlink(path)
        except OSError:
            pass


def inherited_listeners(fds: str, binds: list[str]) -> list[socket.socket | None]:
    """The sockets a USR2 re-exec handed over ("3,4,5"), one per --bind address, or None where a
    bind needs a new socket. The new master runs the same command line, so the sockets come in bind
    order; a bind whose address no longer matches (the configuration changed) gets none, and sockets
    nobody claims are closed."""
    sockets = []
    for text in filter(None, fds.split(",")):
        sock = socket.socket(fileno=int(text))
        sock.setblocking(False)
        sockets.append(sock)
    result: list[socket.socket | None] = []
    for index, address in enumerate(binds):
        handed = sockets[index] if index < len(sockets) else None
        if handed is not None and not _same_address(handed, address):
            handed = None
        result.append(handed)
    for sock in sockets:
        if sock not in result:
            sock.close()
    return result


def _same_address(sock: socket.socket, address: str) -> bool:
    kind, where = parse_bind(address)
    name: Any = sock.getsockname()
    if kind == "unix":
        return sock.family == socket.AF_UNIX and name == where
    if kind == "fd":
        return True
    if sock.family != (socket.AF_INET6 if kind == "inet6" else sock.family) or \
            sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    # Host names resolve to addresses, so compare ports; port 0 asked the kernel for any port,
    # and the one it gave is the same bind.
    return where[1] in (0, name[1])


# struct tcp_info (linux/tcp.h) begins with 8 one-byte fields, then 32-bit ones: tcpi_rto, tcpi_ato,
# tcpi_snd_mss, tcpi_rcv_mss, tcpi_unacked. For a listening socket the kernel reports in tcpi_unacked
# the connections waiting in its accept queue (Gunicorn's backlog metric reads the same field).
_TCPI_UNACKED = struct.Struct("=24xI")


def pending_connections(sock: socket.socket) -> int | None:
    """How many connections wait in ``sock``'s accept queue, or None where that cannot be known:
    only a TCP listener on Linux says (TCP_INFO); a unix socket, or another system, does not."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not sys.platform.startswith("linux"):
        return None
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCPI_UNACKED.size)
    except (AttributeError, OSError):  # (no TCP_INFO in this Python, or a closed socket)
        return None
    if len(info) < _TCPI_UNACKED.size:
        return None
    return int(_TCPI_UNACKED.unpack_from(info)[0])

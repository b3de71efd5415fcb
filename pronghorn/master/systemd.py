"""systemd integration for the master: socket activation and the sd_notify protocol, without libsystemd.

Both protocols are small enough to speak directly (see sd_listen_fds(3) and sd_notify(3)):

- Socket activation: systemd passes listening sockets as fds 3, 4, ... and says so in LISTEN_PID (the
  process they are meant for), LISTEN_FDS (how many) and LISTEN_FDNAMES (their FileDescriptorName=,
  colon-separated).
- Notifications: one datagram of ``KEY=VALUE`` lines to the AF_UNIX socket named by NOTIFY_SOCKET (a
  path, or an abstract name when it starts with ``@``). WATCHDOG_USEC (for WATCHDOG_PID, if set) asks
  for ``WATCHDOG=1`` more often than that.

Only the master talks to systemd, so it takes all of these variables out of ``os.environ`` as it
reads them: workers, the application and anything it spawns inherit none of them. Gunicorn leaves
NOTIFY_SOCKET in its workers' environment; we do not, because a child that finds it (a library that
calls sd_notify when it sees the variable, a subprocess written for systemd) would speak for the
whole service: with ``NotifyAccess=all`` its READY=1 or STOPPING=1 would be believed, and with the
default ``NotifyAccess=main`` every such message fills the journal with warnings. A WATCHDOG_USEC
left in a worker would likewise tell code there that it must ping. A USR2 re-exec gets them back
(:meth:`Notifier.environment`), since the new master may become the service's main process.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import MutableMapping

LISTEN_FDS_START = 3
_ACTIVATION_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")
_NOTIFY_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class ActivationError(Exception):
    """The sockets systemd passed cannot be served (not a socket, not a listening stream socket)."""


def activation_sockets(environ: MutableMapping[str, str],
                       pid: int) -> list[tuple[socket.socket, str]] | None:
    """The sockets systemd passed to ``pid``, with their names (the FileDescriptorName=, or "" when
    LISTEN_FDNAMES does not name them), or None when we were not socket-activated.

    The LISTEN_* variables are removed from ``environ`` in either case: meant for us or stale, no
    process we start should see them.
    """
    listen_pid, count_text, names_text = (environ.pop(name, None) for name in _ACTIVATION_VARIABLES)
    if listen_pid is None or count_text is None:
        return None
    # Inherited from a socket-activated parent, not given to us: the fds are not ours to take.
    if not listen_pid.isdigit() or int(listen_pid) != pid:
        return None
    if not count_text.isdigit() or int(count_text) < 1:
        raise ActivationError(f"LISTEN_FDS={count_text!r} is not a positive number of sockets")
    count = int(count_text)
    names = names_text.split(":") if names_text else []
    found: list[tuple[socket.socket, str]] = []
    try:
        for index in range(count):
            fd = LISTEN_FDS_START + index
            name = names[index] if index < len(names) else ""
            found.append((_listening_socket(fd, name), name))
    except ActivationError:
        for sock, _ in found:
            sock.close()
        raise
    return found


def _listening_socket(fd: int, name: str) -> socket.socket:
    label = f"fd {fd}" + (f" ({name})" if name else "")
    try:
        sock = socket.socket(fileno=fd)  # family and type are read from the fd
    except OSError as exc:
        raise ActivationError(f"systemd passed {label}, which is not a socket: {exc}") from None
    if sock.type != socket.SOCK_STREAM or \
            not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()  # not ours to close: leave the fd as systemd gave it
        raise ActivationError(f"systemd passed {label}, which is not a listening stream socket "
                              "(use ListenStream= in the .socket unit)")
    sock.setblocking(False)
    # sd_listen_fds(3) sets close-on-exec too: the app's subprocesses must not hold our listeners.
    # A USR2 re-exec marks them inheritable again for the new master.
    sock.set_inheritable(False)
    return sock


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, as RELOADING=1's MONOTONIC_USEC wants it."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Notifier:
    """sd_notify for the master. Sending never raises: a service manager that went away must not
    take the server down with it; the first failure is logged, the rest are not."""

    def __init__(self, address: str, watchdog_usec: int, log: logging.Logger) -> None:
        self._text = address
        # "@name" is an abstract socket: a leading NUL byte instead of the @, and no file.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._log = log
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._failed = False
        self._watchdog_usec = watchdog_usec
        # Ping at half the deadline, as sd_watchdog_enabled(3) advises: a late wake-up still counts.
        self.watchdog_interval = watchdog_usec / 2_000_000 if watchdog_usec else None
        self._watchdog_next = time.monotonic()

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str], pid: int,
                     log: logging.Logger) -> Notifier | None:
        """A Notifier when NOTIFY_SOCKET is set, else None; the variables leave ``environ``."""
        address, usec_text, watchdog_pid = (environ.pop(name, None) for name in _NOTIFY_VARIABLES)
        if not address or not (address.startswith("/") or address.startswith("@")):
            # systemd only ever sets a path or an abstract name; anything else (vsock addresses of
            # newer systemd versions included) we cannot speak to.
            if address:
                log.warning("NOTIFY_SOCKET=%r is neither a path nor an @abstract name; not "
                            "notifying systemd", address)
            return None
        usec = 0
        if usec_text and usec_text.isdigit() and \
                (watchdog_pid is None or watchdog_pid == str(pid)):
            usec = int(usec_text)
        return cls(address, usec, log)

    def environment(self, pid: int) -> dict[str, str]:
        """The variables for a USR2 re-exec: ``pid`` is the process that is about to exec."""
        environ = {"NOTIFY_SOCKET": self._text}
        if self._watchdog_usec:
            environ["WATCHDOG_USEC"] = str(self._watchdog_usec)
            environ["WATCHDOG_PID"] = str(pid)
        return environ

    def send(self, *fields: str) -> None:
        message = "\n".join(fields).encode()
        try:
            self._sock.sendto(message, self._address)
        except OSError as exc:
            if not self._failed:
                self._failed = True
                self._log.warning("Cannot notify systemd at %s: %s", self._text, exc)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def reloading(self, status: str = "Reloading") -> None:
        # MONOTONIC_USEC lets systemd (Type=notify-reload) tell this reload from an older one.
        self.send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}", f"STATUS={status}")

    def stopping(self, status: str = "Stopping") -> None:
        self.send("STOPPING=1", f"STATUS={status}")

    def main_pid(self, pid: int, status: str) -> None:
        """Hand the service over to another process (the new master of a USR2 upgrade)."""
        self.send(f"MAINPID={pid}", f"STATUS={status}")

    def watchdog_wait(self) -> float | None:
        """Seconds until the next WATCHDOG=1 is due (0 if it is), or None without a watchdog."""
        if self.watchdog_interval is None:
            return None
        return max(0.0, self._watchdog_next - time.monotonic())

    def watchdog(self) -> None:
        """WATCHDOG=1 if one is due. Called from the master's loop: the pings stop when it does."""
        if self.watchdog_interval is None:
            return
        now = time.monotonic()
        if now >= self._watchdog_next:
            self.send("WATCHDOG=1")
            self._watchdog_next = now + self.watchdog_interval

    def close(self) -> None:
        self._sock.close()


# A USR2 re-exec passes the listening sockets in PRONGHORN_FD, matched to --bind by address. Sockets
# that came from systemd match no --bind (it is ignored under socket activation), so the old master
# also sets this variable (to their names, colon-separated): the new master then takes them all.
HANDED_OVER_ENV = "PRONGHORN_SYSTEMD_SOCKETS"


def handed_over_sockets(environ: MutableMapping[str, str],
                        fds: str) -> list[tuple[socket.socket, str]] | None:
    """The systemd sockets a socket-activated master handed over on USR2 (``fds`` is its
    PRONGHORN_FD), or None if it did not hand over systemd sockets."""
    names_text = environ.pop(HANDED_OVER_ENV, None)
    if names_text is None or not fds:
        return None
    names = names_text.split(":")
    found = []
    for index, text in enumerate(filter(None, fds.split(","))):
        sock = socket.socket(fileno=int(text))
        sock.setblocking(False)
        sock.set_inheritable(False)
        found.append((sock, names[index] if index < len(names) else ""))
    return found

"""The control socket: Gunicorn 27's, so that its ``gunicornc`` (and ``pronghorn ctl``) can drive us.

Theory of operation
-------------------
The wire protocol is Gunicorn's (control_wire.py: a 4-byte big-endian length, then that much
UTF-8 JSON). A request is ``{"id": N, "command": "worker add", "args": ["2"]}``; the reply is
``{"id": N, "status": "ok", "data": {...}}`` or ``{"id": N, "status": "error", "error": "..."}``.
The reply shapes (the keys of ``data``) are Gunicorn's too, since gunicornc prints them by name.

Gunicorn runs its control server on an asyncio loop in a thread of the master, and has to stop and
restart that thread around every fork. Ours has no thread: the socket and its clients are
non-blocking and registered in a selector whose descriptor the master's loop waits on beside its
wake-up pipe (``fileno()``); when it is readable the loop calls ``serve()``, which does what is ready
and returns without waiting. A slow or stuck client can hold nothing but its own buffers.

Commands only ask the master to do what a signal would: they change the worker count as TTIN/TTOU
do, stop one worker as ``server.kill_worker`` does, and queue HUP, USR1, TERM or INT to be handled
at the loop's next turn, exactly as if they had been received. So a reply is sent before the action
it announces happens, as under Gunicorn (which signals itself).
"""

from __future__ import annotations

import logging
import os
import selectors
import shlex
import signal
import socket
import stat
import time
from typing import Any, Mapping, Protocol, Sequence

from ..workers.heartbeat import BOOTING
from .control_wire import encode, take_messages
from .listeners import describe
from .stepped_server import Client, SteppedServer

#: What a client may hold unsent in the master before it is dropped (replies are small; a client that
#: asks and never reads must not grow the master).
MAX_UNSENT = 1024 * 1024

#: Gunicorn's keys for ``show config`` (the ones it reports; dirty_* are not ours).
CONFIG_KEYS = ("bind", "workers", "worker_class", "threads", "timeout", "graceful_timeout",
               "keepalive", "max_requests", "max_requests_jitter", "worker_connections",
               "preload_app", "daemon", "pidfile", "proc_name", "reload", "control_socket",
               "control_socket_disable")

HELP = {
    "show all": "Show all processes (the master and its workers)",
    "show workers": "List the workers with their status",
    "show config": "Show the current effective configuration",
    "show stats": "Show server statistics",
    "show listeners": "Show the listening sockets",
    "worker add [N]": "Add N workers (default 1), as TTIN does",
    "worker remove [N]": "Remove N workers (default 1, never below 1), as TTOU does",
    "worker kill <PID>": "Gracefully stop one worker (it is replaced)",
    "reload": "Graceful reload (HUP)",
    "reopen": "Reopen the log files (USR1)",
    "shutdown [graceful|quick]": "Stop the server (TERM, or INT for quick)",
    "help": "Show this help message",
}


class CommandError(Exception):
    """A request the master cannot act on: the error reply's text."""


# -- what the commands ask of the master --------------------------------------------------------------

class Master(Protocol):
    """The arbiter as the control socket sees it (master/arbiter.py)."""
    pid: int
    cfg: Any
    num_workers: int
    worker_age: int
    listeners: list[socket.socket]
    started_at: float
    reloads: int
    workers_killed: int

    @property
    def workers(self) -> Mapping[int, Any]: ...  # arbiter.WorkerHandle

    def set_worker_count(self, count: int) -> None: ...

    def kill_worker(self, pid: int, sig: int) -> None: ...

    def queue_signal(self, sig: int) -> None: ...


class Commands:
    """Gunicorn's control commands over the master. Each returns the reply's ``data``."""

    def __init__(self, master: Master) -> None:
        self.master = master

    def run(self, words: Sequence[str]) -> dict[str, Any]:
        if not words:
            raise CommandError("Empty command")
        verb, rest = words[0].lower(), [w.lower() for w in words[1:]]
        if verb == "show":
            return self._show(rest)
        if verb == "worker":
            return self._worker(rest)
        if verb == "reload":
            self.master.queue_signal(signal.SIGHUP)
            return {"status": "reloading"}
        if verb == "reopen":
            self.master.queue_signal(signal.SIGUSR1)
            return {"status": "reopening"}
        if verb == "shutdown":
            mode = rest[0] if rest else "graceful"
            if mode not in ("graceful", "quick"):
                raise CommandError(f"Invalid argument: unknown shutdown mode: {mode}")
            self.master.queue_signal(signal.SIGINT if mode == "quick" else signal.SIGTERM)
            return {"status": "shutting_down", "mode": mode}
        if verb == "help":
            return {"commands": dict(HELP)}
        raise CommandError(f"Invalid argument: Unknown command: {verb}")

    def _show(self, rest: list[str]) -> dict[str, Any]:
        target = rest[0] if rest else ""
        if target == "workers":
            workers = self._workers()
            return {"workers": workers, "count": len(workers)}
        if target == "all":
            workers = [{"type": "web", **w} for w in self._workers()]
            for w in workers:
                del w["aborted"]
            return {"arbiter": {"pid": self.master.pid, "type": "arbiter", "role": "master"},
                    "web_workers": workers, "web_worker_count": len(workers),
                    "dirty_arbiter": None, "dirty_workers": [], "dirty_worker_count": 0}
        if target == "stats":
            return self._stats()
        if target == "config":
            return self._config()
        if target == "listeners":
            listeners = [self._listener(sock) for sock in self.master.listeners]
            return {"listeners": listeners, "count": len(listeners)}
        if target == "dirty":  # gunicornc asks; there are no dirty arbiters here
            return {"enabled": False, "pid": None, "workers": [], "apps": []}
        raise CommandError("Invalid argument: Missing or unknown show target "
                           "(all|workers|config|stats|listeners)")

    def _workers(self) -> list[dict[str, Any]]:
        rows = []
        for handle in sorted(self.master.workers.values(), key=lambda w: w.age):
            silent, state = handle.heartbeat.read()
            rows.append({"pid": handle.pid, "age": handle.age, "booted": state != BOOTING,
                         "aborted": bool(handle.worker.aborted),
                         "last_heartbeat": round(silent, 2)})
        return rows

    def _stats(self) -> dict[str, Any]:
        master = self.master
        return {"uptime": round(time.time() - master.started_at, 2), "pid": master.pid,
                "workers_current": len(master.workers), "workers_target": master.num_workers,
                "workers_spawned": master.worker_age, "workers_killed": master.workers_killed,
                "reloads": master.reloads, "dirty_arbiter_pid": None}

    def _config(self) -> dict[str, Any]:
        config = {}
        for key in CONFIG_KEYS:
            value = getattr(self.master.cfg, key, None)
            if not isinstance(value, (str, int, float, bool, list, dict, type(None))):
                value = str(value)
            config[key] = value
        return config

    @staticmethod
    def _listener(sock: socket.socket) -> dict[str, Any]:
        kind = {socket.AF_UNIX: "unix", socket.AF_INET: "tcp",
                socket.AF_INET6: "tcp6"}.get(sock.family, "unknown")
        try:
            address = describe(sock)
        except OSError:
            address = "?"
        return {"address": address, "fd": sock.fileno(), "type": kind}

    def _worker(self, rest: list[str]) -> dict[str, Any]:
        action = rest[0] if rest else ""
        master = self.master
        if action in ("add", "remove"):
            count = max(1, _number(rest[1])) if len(rest) > 1 else 1
            old = master.num_workers
            if action == "add":
                master.set_worker_count(old + count)
                return {"added": count, "previous": old, "total": master.num_workers}
            new = max(min(old, 1), old - count)  # never below 1 (nor up from 0 after WINCH)
            master.set_worker_count(new)
            return {"removed": old - new, "previous": old, "total": new}
        if action == "kill":
            if len(rest) < 2:
                raise CommandError("Invalid argument: Missing PID for worker kill")
            pid = _number(rest[1])
            if pid not in master.workers:
                return {"success": False, "error": f"Worker {pid} not found"}
            master.kill_worker(pid, signal.SIGTERM)
            return {"success": True, "killed": pid}
        raise CommandError("Invalid argument: Missing or unknown worker action (add|remove|kill)")


def _number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise CommandError(f"Invalid argument: {text!r} is not a number") from None


def reply_to(request: Any, commands: Commands, log: logging.Logger) -> dict[str, Any]:
    """One request → its reply (never raises: a bad request is an error reply)."""
    request_id = request.get("id", 0) if isinstance(request, dict) else 0
    try:
        if not isinstance(request, dict):
            raise CommandError("Invalid request")
        command, args = request.get("command", ""), request.get("args") or []
        if not isinstance(command, str) or not isinstance(args, list):
            raise CommandError("Invalid request")
        try:
            words = shlex.split(command) + [str(arg) for arg in args]
        except ValueError as exc:
            raise CommandError(f"Invalid argument: {exc}") from None
        data = commands.run(words)
    except CommandError as exc:
        return {"id": request_id, "status": "error", "error": str(exc)}
    except Exception as exc:  # a bug of ours must not take the master down
        log.exception("Control command failed")
        return {"id": request_id, "status": "error", "error": f"Command failed: {exc}"}
    # What changes the server is logged for the operator's record; what only looks, for debugging.
    looks = words[0].lower() in ("show", "help")
    (log.debug if looks else log.info)("Control socket: %s", " ".join(words))
    return {"id": request_id, "status": "ok", "data": data}


# -- the socket ---------------------------------------------------------------------------------------

class ControlServer(SteppedServer):
    """The control socket's listener and its clients (framing in control_wire.py)."""

    what = "Control socket"

    def __init__(self, path: str, mode: int, commands: Commands, log: logging.Logger) -> None:
        super().__init__(_bind(path, mode), log)
        self.path = path
        self._commands = commands
        # The file we made: at the end we unlink the path only if it is still ours (after USR2 the
        # new master has bound its own socket there).
        self._identity = _identity(path)

    def _read(self, client: Client) -> None:
        data = self._receive(client, 65536)
        if data is None:
            return
        client.inbox += data
        try:
            requests = take_messages(client.inbox)
        except ValueError as exc:
            self._log.debug("Control socket: dropping a client: %s", exc)
            self._drop(client)
            return
        for request in requests:
            client.outbox += encode(reply_to(request, self._commands, self._log))
        if client.outbox:
            self._write(client)

    def _write(self, client: Client) -> None:
        if not self._send(client):
            return
        if len(client.outbox) > MAX_UNSENT:
            self._drop(client)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.outbox else 0)
        self._selector.modify(client.sock, events, client)

    def close(self) -> None:
        """Stop: replies still held get one last non-blocking try (a ``shutdown`` reply), then every
        descriptor is closed and the socket file removed if it is still ours."""
        for client in list(self._clients.values()):
            if client.outbox:
                try:
                    client.sock.send(client.outbox)
                except OSError:
                    pass
            self._drop(client)
        self._selector.close()
        self._listener.close()
        if self._identity is not None and _identity(self.path) == self._identity:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    def close_in_child(self) -> None:
        """In a forked worker: let go of the descriptors, touch nothing of the master's file."""
        super().close_in_child()
        self._listener.close()


def _identity(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _bind(path: str, mode: int) -> socket.socket:
    """A listening unix socket at ``path`` with ``mode``: bound under a umask that lets nobody else
    in, so that there is no moment when it is open wider than asked. A socket file already there is
    replaced (a stale one, or the old master's after USR2, as Gunicorn does); any other file is an
    error, never removed."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(info.st_mode):
            raise OSError(f"{path} exists and is not a socket")
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old_umask = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(old_umask)
        os.chmod(path, mode)
        sock.listen(16)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock

"""``server``: what hooks receive as the master, shaped as Gunicorn's Arbiter.

Hooks written for Gunicorn read ``server.address``, ``server.cfg.settings``, ``server.WORKERS``,
``server.num_workers``, and call ``server.kill_worker(pid, sig)``, ``server.reload()``,
``server.stop()``, ``server.halt()``. This object gives them that API over our arbiter, whose own
attributes stay its business (``server.cfg`` is the Gunicorn-shaped view of the configuration, not
the Config the arbiter reads).

A hook runs inside the master's loop, or in a worker after the fork (``post_fork``,
``worker_exit``, ...). What must happen in the master's loop is handed to it, as a signal handler
would: ``reload()`` is HUP, ``reexec()`` USR2, ``stop()`` TERM (QUIT when not graceful), ``halt()``
a stop with its reason and exit status, all acted on at the next turn of the loop. Called in a
worker, they signal the master instead (a halt's exit status cannot travel with the signal).
"""

from __future__ import annotations

import os
import signal
import socket
from typing import Any, Mapping, Protocol

from ..config import Config
from ..config.gunicorn_config import GunicornConfig
from ..workers.base import WorkerContext


class _Handle(Protocol):
    worker: WorkerContext


class Arbiter(Protocol):
    """What this module needs of the arbiter (arbiter.py imports this module, not the reverse)."""

    cfg: Config
    log: Any
    pid: int
    old_master_pid: int
    reexec_pid: int
    num_workers: int
    worker_age: int
    listeners: list[socket.socket]
    pidfile: Any
    application: Any
    systemd_sockets: list[str] | None

    @property
    def workers(self) -> Mapping[int, _Handle]: ...

    @property
    def proc_name(self) -> str: ...

    def set_worker_count(self, count: int) -> None: ...

    def queue_signal(self, sig: int) -> None: ...

    def wakeup(self) -> None: ...

    def request_halt(self, reason: str | None, exit_status: int) -> None: ...

    def kill_worker(self, pid: int, sig: int) -> None: ...


class Server:
    master_name = "Master"

    def __init__(self, arbiter: Arbiter) -> None:
        self._arbiter = arbiter
        self._view: GunicornConfig | None = None

    # -- what Gunicorn's Arbiter holds ---------------------------------------------------------------

    @property
    def cfg(self) -> GunicornConfig:
        config = self._arbiter.cfg
        # A HUP reload replaces the arbiter's Config: the view follows it.
        if self._view is None or self._view.pronghorn_config is not config:
            self._view = GunicornConfig(config)
        return self._view

    @property
    def app(self) -> Any:
        return self._arbiter.application

    @property
    def log(self) -> Any:
        return self._arbiter.log

    @property
    def pid(self) -> int:
        return self._arbiter.pid

    @property
    def master_pid(self) -> int:
        """After a USR2 re-exec, the old master's pid while it runs (Gunicorn's), else 0."""
        old = self._arbiter.old_master_pid
        return old if old and os.getppid() == old else 0

    @property
    def reexec_pid(self) -> int:
        return self._arbiter.reexec_pid

    @property
    def address(self) -> list[Any]:
        return self.cfg.address

    @property
    def LISTENERS(self) -> list[socket.socket]:
        return self._arbiter.listeners

    @property
    def WORKERS(self) -> dict[int, WorkerContext]:
        """pid → worker (a new dict each time: the arbiter's own record is not for hooks to edit)."""
        return {pid: handle.worker for pid, handle in self._arbiter.workers.items()}

    @property
    def num_workers(self) -> int:
        return self._arbiter.num_workers

    @num_workers.setter
    def num_workers(self, value: int) -> None:
        # As TTIN/TTOU: the nworkers_changed hook runs, and the loop brings the workers to it.
        self._arbiter.set_worker_count(int(value))

    @property
    def timeout(self) -> Any:
        return self.cfg.timeout  # whole seconds are an int, as Gunicorn's

    @property
    def proc_name(self) -> str:
        return self._arbiter.proc_name

    @property
    def pidfile(self) -> Any:
        return self._arbiter.pidfile

    @property
    def worker_class(self) -> type:
        return self.cfg.worker_class

    @property
    def worker_age(self) -> int:
        return self._arbiter.worker_age

    @property
    def systemd(self) -> bool:
        """Whether the listeners came from systemd (socket activation), as Gunicorn's flag."""
        return self._arbiter.systemd_sockets is not None

    # -- what Gunicorn's Arbiter does ----------------------------------------------------------------

    def kill_worker(self, pid: int, sig: int) -> None:
        self._arbiter.kill_worker(pid, sig)

    def kill_workers(self, sig: int) -> None:
        for pid in list(self._arbiter.workers):
            self._arbiter.kill_worker(pid, sig)

    def reload(self) -> None:
        self._ask(signal.SIGHUP)

    def reexec(self) -> None:
        self._ask(signal.SIGUSR2)

    def stop(self, graceful: bool = True) -> None:
        self._ask(signal.SIGTERM if graceful else signal.SIGQUIT)

    def halt(self, reason: str | None = None, exit_status: int = 0) -> None:
        if self._in_master():
            self._arbiter.request_halt(reason, exit_status)
        else:
            self._ask(signal.SIGTERM)

    def wakeup(self) -> None:
        self._arbiter.wakeup()

    def _in_master(self) -> bool:
        return os.getpid() == self._arbiter.pid

    def _ask(self, sig: int) -> None:
        if self._in_master():
            self._arbiter.queue_signal(sig)
        else:
            os.kill(self._arbiter.pid, sig)

    def __repr__(self) -> str:
        return f"<Server (pronghorn master {self.pid})>"

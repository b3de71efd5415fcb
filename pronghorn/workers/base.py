"""What every worker class shares with the master: identity, heartbeat, readiness, recycling, hooks.

This object is also the ``worker`` that Gunicorn-style hooks receive, with the attributes of
Gunicorn's Worker and their meaning. The master makes it before the fork, so ``pre_fork`` sees it
with ``pid`` "[booting]", as in Gunicorn; after the fork each process has its copy: the master's is
in ``server.WORKERS`` (``child_exit`` gets it), the worker's goes to ``post_fork``,
``post_worker_init``, ``worker_int``, ``worker_abort``, ``pre_request``/``post_request`` and
``worker_exit``. ``worker.cfg`` is the Gunicorn-shaped view of the configuration
(config/gunicorn_config.py); our own code reads ``worker.config``.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import sys
from typing import Any, Callable

from ..config import Config
from ..config.gunicorn_config import GunicornConfig
from ..config.values import resolve_group, resolve_user
from ..cycle.counters import RequestCounters
from .heartbeat import READY, RETIRING, Heartbeat
from .stacks import answer_stack_signal, format_stacks
from .worker_tmp import WorkerTmp


class WorkerContext:
    def __init__(self, age: int, ppid: int, heartbeat: Heartbeat, wake_fd: int,
                 cfg: Config | GunicornConfig, log: logging.Logger,
                 sockets: list[socket.socket] | None = None, app: Any = None) -> None:
        if isinstance(cfg, GunicornConfig):
            config, view = cfg.pronghorn_config, cfg
        else:
            config, view = cfg, GunicornConfig(cfg)
        # Gunicorn's "not forked yet"; the pid once there is a process.
        self.pid: int | str = "[booting]"
        self.ppid = ppid
        self.age = age
        self.heartbeat = heartbeat
        self.config = config
        self.cfg = view
        self.log = log
        self.hooks = config.hooks
        self.sockets: list[socket.socket] = list(sockets or ())
        self.app = app        # the Application (wsgi/loader.py): .cfg, .wsgi(), .callable
        self.wsgi: Any = None  # the WSGI callable, once the worker has loaded it
        # Gunicorn passes its workers half the timeout: how often they must notify().
        self.timeout = config.timeout / 2.0
        self.booted = False
        self.aborted = False
        self.alive = True
        self.reloader: Any = None
        self.nr = 0
        self.retiring = False
        user, gid = resolve_user(config.user), resolve_group(config.group)
        self.tmp = WorkerTmp(heartbeat, config.worker_tmp_dir,
                             (user[0] if user else -1, gid if gid is not None else -1))
        # Set by the worker class: what request the app is on. Read only when the master aborts us,
        # so the hot path pays nothing for it (a shared-memory write per request was a large part
        # of a small request's cost).
        self.describe_current: Callable[[], str] = lambda: ""
        # Set by the worker class: runs a callable from its event loop, soon (thread- and signal-
        # safe). Signal handlers hand their real work to it rather than doing it mid-bytecode.
        self.call_soon: Callable[[Callable[[], Any]], Any] | None = None
        # The listeners' ssl.SSLContext when --certfile is set (made by the master's fork code).
        self.ssl_context: Any = None
        self._wake_fd = wake_fd
        # --metrics-bind: this worker's counters, shared with the master (set by the master before
        # the fork; None without metrics), and how the worker class counts its open connections
        # (written into them at each heartbeat, not per connection). The counts a request adds
        # are copied into the shared page at each heartbeat and at exit (flush_counters).
        self.counters: RequestCounters | None = None
        self.count_connections: Callable[[], int] = lambda: 0
        # The heartbeat beats several times per --timeout, so that only a worker blocked for the
        # whole timeout looks dead to the master.
        self.heartbeat_interval = (min(1.0, max(config.timeout / 4, 0.05)) if config.timeout
                                   else 1.0)
        # Jitter spreads recycling so that workers started together do not all restart together.
        # As in Gunicorn, no --max-requests is sys.maxsize (a count never reached).
        self.max_requests = (config.max_requests + random.randint(0, config.max_requests_jitter)
                             if config.max_requests else sys.maxsize)

    def __str__(self) -> str:
        return f"<Worker {self.pid}>"

    def notify(self) -> None:
        """Gunicorn's heartbeat call: the worker is alive (our loops call tick(), which does it)."""
        self.tmp.notify()

    # -- talking to the master ---------------------------------------------------------------------

    def _poke_master(self) -> None:
        try:
            os.write(self._wake_fd, b"w")
        except OSError:
            pass  # the pipe is full (the master will look anyway) or the master is gone

    def notify_ready(self) -> None:
        """The app is loaded and the listeners are served: the master may retire older workers."""
        self.heartbeat.tick()
        self.heartbeat.set_state(READY)
        self._poke_master()

    def tick(self) -> bool:
        """Heartbeat; False when the master that forked us is gone (we are orphaned: exit)."""
        self.tmp.notify()
        counters = self.counters
        if counters is not None:
            counters.set_connections(self.count_connections())
            counters.flush()
        return os.getppid() == self.ppid

    def flush_counters(self) -> None:
        """The worker is exiting: what it counted since its last heartbeat reaches the master
        (cycle/counters.py), which reads the page once it has reaped us."""
        if self.counters is not None:
            self.counters.flush()

    def request_finished(self) -> None:
        self.nr += 1
        if self.nr >= self.max_requests and not self.retiring:
            # Keep serving until the master has a replacement accepting, then it sends TERM.
            self.retiring = True
            self.log.info("Autorestarting worker after %d requests (pid: %d)", self.nr, self.pid)
            self.heartbeat.set_state(RETIRING)
            self._poke_master()

    # -- signals -------------------------------------------------------------------------------------

    def install_signals(self) -> None:
        """The signals every worker class handles the same way. TERM/INT/QUIT are the worker class's
        (it knows how to stop gracefully); these are not."""
        signal.signal(signal.SIGABRT, self._on_abort)
        answer_stack_signal()
        signal.signal(signal.SIGUSR1, self._on_usr1)
        for sig in (signal.SIGHUP, signal.SIGWINCH, signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR2,
                    signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL if sig == signal.SIGCHLD else signal.SIG_IGN)

    def _on_abort(self, signum: int, frame: Any) -> None:
        # The master found us silent past --timeout. Say what we were doing (this handler runs
        # between bytecodes, so a request stuck in Python code or an interruptible wait is named;
        # one stuck inside C code never gets here and is SIGKILLed), run the hook, and go.
        self.alive = False
        self.aborted = True
        doing = self.describe_current()
        self.log.critical("WORKER TIMEOUT (pid:%d)%s", self.pid,
                          f" while handling {doing}" if doing else "")
        try:
            stacks = format_stacks(frame, self.config.worker_class == "gthread")
        except Exception as exc:  # evidence is a courtesy: never let it stop the abort
            stacks = f"(the stacks could not be formatted: {exc!r})"
        if stacks:
            self.log.critical("WORKER TIMEOUT (pid:%d) stacks at the abort:\n%s", self.pid, stacks)
        self.hooks.call("worker_abort", self)
        self.flush_counters()  # (its answered requests still count; the stuck one is lost)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)

    def _on_usr1(self, signum: int, frame: Any) -> None:
        from ..logs import reopen_logs

        # From the loop, not here: this handler may run between a log write's bytecodes, and
        # swapping the stream under it would lose that line.
        if self.call_soon is not None:
            try:
                self.call_soon(reopen_logs)
                return
            except RuntimeError:  # the loop is closed: we are on the way out
                pass
        reopen_logs()

    def on_terminate(self) -> None:
        """TERM: the worker is stopping gracefully (``worker.alive`` turns False, as in Gunicorn)."""
        self.alive = False

    def on_interrupt(self) -> None:
        """INT/QUIT: Gunicorn's worker_int hook."""
        self.alive = False
        self.hooks.call("worker_int", self)


# -- small things every worker class needs ---------------------------------------------------------

def server_address(sock: socket.socket) -> Any:
    """A listener's address (SERVER_NAME/SERVER_PORT when a request has no Host)."""
    try:
        return sock.getsockname()
    except OSError:
        return None

"""The arbiter: Gunicorn's master process semantics, kept exactly and made safer.

Theory of operation
-------------------
Signal handlers only queue the signal and write a byte to a wake-up pipe; the main loop does the
work: it handles queued signals, reaps children, kills workers whose heartbeat went silent ("murder"),
and brings the set of workers to what it should be ("manage").

Workers come in generations. HUP, USR2-less upgrades and --reload (when a watched file changes; see
reloader.py) start a new generation; a worker that reached
--max-requests marks itself RETIRING, and the master marks one whose RSS passed --max-worker-memory
the same way. In every case the old worker keeps serving until its
replacement has booted and says READY (through its shared-memory heartbeat slot, with a poke on the
wake-up pipe); only then does the master send it TERM. So there is always a worker accepting, and the
old one finishes what it holds with ``Connection: close``. If a new generation cannot boot, the old
workers keep serving and the log says why.

The master never imports the application (unless --preload) or gevent: workers do that after the
fork. For the classes that run on uvloop (gthread, and sync with TLS) it imports the event loop
(uvloop, asyncio, and through them ssl) before the first fork, so that the workers share OpenSSL's
pages and setup instead of each redoing them (see workers.preload_in_master).
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import select
import signal
import socket
import sys
import time
import traceback
from typing import Any, Callable, Sequence

from .. import __version__
from ..config import Config
from ..config.file import unknown_names_text
from ..config.settings import DEFAULT_SOURCE
from ..logs import reopen_logs, statsd_client
from ..tls import enabled as tls_enabled
from ..workers import preload_in_master
from ..workers.base import WorkerContext
from ..workers.heartbeat import BOOTING, READY, RETIRING, Heartbeat
from ..workers.stacks import STACK_SIGNAL
from ..wsgi.loader import Application
from .control import Commands, ControlServer
from .listeners import (close_listener, create_listener, describe, inherited_listeners,
                        pending_connections)
from .memory import MIB, resident_bytes
from .metrics import Metrics
from .metrics_server import MetricsServer
from .process import (PidFile, drop_privileges, has_controlling_terminal, resolve_group,
                      resolve_user, set_proctitle)
from .reloader import FileWatcher, configure as configure_reloader, serve_failure
from .server import Server
from .systemd import (HANDED_OVER_ENV, ActivationError, Notifier, activation_sockets,
                      handed_over_sockets)

WORKER_BOOT_ERROR = 3
# A worker that dies before it is ready or this soon after, this many times in a row, means something
# is wrong with every worker we could start: stop instead of forking forever. (Counted from readiness,
# not from the fork, so that a slow boot on a loaded machine does not hide a crash loop.)
EARLY_DEATH_SECONDS = 1.0
EARLY_DEATH_LIMIT = 5
# --max-worker-memory: how often the master reads the workers' RSS (a read of /proc per worker).
MEMORY_CHECK_INTERVAL = 1.0
# After SIGABRT, how long a timed-out worker has (to run worker_abort and exit) before SIGKILL.
ABORT_GRACE = 2.0
# A worker that did not exit on SIGABRT is stuck in C code: STACK_SIGNAL makes it write its stacks
# (workers/stacks.py), and SIGKILL follows this much later, so that the dump is written first.
STACK_DUMP_GRACE = 0.25
REEXEC_ENV = "PRONGHORN_FD"
# The old master's pid, for the new one's ``server.master_pid`` (Gunicorn's GUNICORN_PID).
OLD_MASTER_ENV = "PRONGHORN_PID"


class HaltServer(Exception):
    def __init__(self, reason: str, exit_status: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.exit_status = exit_status


class WorkerHandle:
    """The master's record of one worker. ``worker`` is what hooks receive (workers/base.py): made
    here before the fork, so that pre_fork, post_fork and the worker's own hooks see one object."""

    def __init__(self, age: int, generation: int, worker: WorkerContext) -> None:
        self.pid = 0
        self.age = age
        self.generation = generation
        self.worker = worker
        self.heartbeat = worker.heartbeat
        self.started = time.monotonic()
        self.ready_at: float | None = None  # when the master first saw it READY
        self.term_sent: float | None = None
        self.abort_sent: float | None = None
        self.stack_signal_sent: float | None = None
        self.kill_sent = False
        self.alive = True
        # Why it is RETIRING, for the metrics (it marks itself at --max-requests; the master marks
        # it for --max-worker-memory).
        self.retire_reason = "max-requests"

    @property
    def state(self) -> int:
        return self.heartbeat.state


class Arbiter:
    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGCHLD, signal.SIGHUP,
               signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)

    def __init__(self, cfg: Config, log: logging.Logger,
                 reload_config: Callable[[], Config] | None = None,
                 app_loader: Callable[[], Any] | None = None,
                 reexec_argv: Sequence[str] | None = None) -> None:
        self.cfg = cfg
        self.log = log
        self._reload_config = reload_config
        # Where the app comes from: by default what the configuration names (read at each call, so
        # a HUP that changes it counts); an embedding application (pronghorn.app) gives its own.
        self._app_loader = app_loader
        # What USR2 executes: ``python -m pronghorn ARGS`` by default; an embedding script is
        # started again as it was (``python script.py ARGS``), as Gunicorn re-executes sys.argv.
        self._reexec_argv = list(reexec_argv) if reexec_argv is not None else None
        self.pid = os.getpid()
        self.workers: dict[int, WorkerHandle] = {}
        self.listeners: list[socket.socket] = []
        self.signal_queue: list[int] = []
        self.num_workers = cfg.workers
        self.generation = 0
        self.worker_age = 0
        self.stopping = False
        # --shutdown-delay: when the delay after TERM ends (monotonic), while it runs; else None.
        self.shutdown_deadline: float | None = None
        self.early_deaths = 0
        self.reexec_pid = 0
        self.pidfile: PidFile | None = None
        self.app: Any = None
        self.reloader: FileWatcher | None = None  # --reload
        self.start_cwd = os.getcwd()
        self.old_master_pid = int(os.environ.pop(OLD_MASTER_ENV, "0") or 0)
        self._halt_request: tuple[str | None, int] | None = None  # server.halt() from a hook
        self._wake_r = self._wake_w = -1
        self._spawn_mask: set[int | signal.Signals] = set()  # the signal mask from before a fork
        self._last_worker_count = -1
        self._memory_checked = 0.0  # when --max-worker-memory last read the workers' RSS
        # --control-socket (control.py), and the counts its "show stats" reports, as Gunicorn's.
        self.control: ControlServer | None = None
        self.started_at = time.time()
        self.reloads = 0
        self.workers_killed = 0
        # --metrics-bind (metrics.py, metrics_server.py): the totals, made at start so that the
        # first workers count, and the server, once bound.
        self.metrics: Metrics | None = Metrics() if cfg.metrics_bind else None
        self._metrics_bind = cfg.metrics_bind
        self.metrics_server: MetricsServer | None = None
        self._metrics_socket: socket.socket | None = None
        # systemd: the notify socket (NOTIFY_SOCKET), whether our listeners came from it (socket
        # activation; their FileDescriptorName=s), whether READY=1 is owed (at start, after a
        # reload) and the STATUS= last sent.
        self.systemd: Notifier | None = None
        self.systemd_sockets: list[str] | None = None
        self._systemd_ready_due = True
        self._systemd_status = ""
        # What hooks receive: Gunicorn's Arbiter API (server.py) and Application (server.app).
        self.server = Server(self)
        self.application = Application(cfg.app_uri, self.server.cfg, loader=self.load_app)

    @property
    def hooks(self) -> Any:
        return self.cfg.hooks

    @property
    def proc_name(self) -> str:
        """The name in the process titles: proc_name, else default_proc_name, else (Gunicorn's
        default_proc_name) the application."""
        cfg = self.cfg
        return cfg.proc_name or cfg.default_proc_name or cfg.app_uri

    # -- start ---------------------------------------------------------------------------------------

    def run(self) -> int:
        log = self.log
        try:
            self._start()
        except HaltServer as halt:
            log.error("%s", halt.reason)
            self._close_control()
            self._close_metrics()
            self._close_listeners()
            return halt.exit_status
        try:
            if self._halt_request is not None:  # on_starting or when_ready asked for it
                return self._halt()
            self._spawn_missing()
            while True:
                self._wait_for_wakeup(self._next_timeout())
                while self.signal_queue:
                    sig = self.signal_queue.pop(0)
                    result = self._handle_signal(sig)
                    if result is not None:
                        return result
                    if self._halt_request is not None:
                        return self._halt()
                if self.shutdown_deadline is not None and time.monotonic() >= self.shutdown_deadline:
                    return self._stop(graceful=True)
                self._reap()
                self._murder()
                self._check_memory()
                self._check_reload()
                self._manage()
                self._count_workers()
                self._report_backlog()
                self._tell_systemd()
        except HaltServer as halt:
            log.error("Shutting down: %s", halt.reason)
            self._stop(graceful=False)
            return halt.exit_status

    def _start(self) -> None:
        log, cfg = self.log, self.cfg
        log.info("Starting pronghorn %s", __version__)
        self.systemd = Notifier.from_environ(os.environ, self.pid, log)
        # Gunicorn calls it as the number is first set, with None for the old value.
        self.hooks.call("nworkers_changed", self.server, self.num_workers, None)
        self._fatal_hook("on_starting")
        set_proctitle(f"pronghorn: master [{self.proc_name}]")
        if cfg.pidfile:
            self.pidfile = PidFile(cfg.pidfile)
            try:
                self.pidfile.create(self.pid)
            except OSError as exc:
                raise HaltServer(f"Cannot write the pidfile: {exc}") from None
        self._open_listeners()
        if cfg.enable_backlog_metric and all(pending_connections(sock) is None
                                             for sock in self.listeners):
            log.warning("--enable-backlog-metric: no listener can count its pending connections "
                        "(only TCP listeners on Linux can); gunicorn.backlog will not be sent")
        log.info("Using worker: %s", cfg.worker_class)
        preload_in_master(cfg.worker_class)
        self._install_signals()
        self._open_control()
        self._open_metrics()
        if cfg.preload_app and cfg.reload:
            log.warning("--preload is ignored with --reload: each worker imports the app afresh")
        elif cfg.preload_app:
            self.app = self._load_app_or_halt()
            # Copy-on-write (Gunicorn #1640): the app's objects are shared with the workers only
            # while nothing writes to their pages, and each collection in a worker writes to the
            # gc header of every object it looks at. Collect the import's garbage once, then move
            # what is left out of the collector's generations: the workers never touch it again.
            # docs/performance.md has the shared memory this saves.
            gc.collect()
            gc.freeze()
        self.reloader = configure_reloader(None, cfg, log, self._wake_w)
        self._fatal_hook("when_ready")

    def _open_control(self) -> None:
        """--control-socket: opened only when given (and not --no-control-socket). A socket that
        cannot be opened is logged and the server runs without it, as under Gunicorn."""
        cfg = self.cfg
        if not cfg.control_socket or cfg.control_socket_disable:
            return
        path = os.path.join(self.start_cwd, cfg.control_socket)
        try:
            self.control = ControlServer(path, cfg.control_socket_mode, Commands(self), self.log)
        except OSError as exc:
            self.log.error("Cannot open the control socket %s: %s", path, exc)
            return
        self.log.info("Control socket listening at %s", path)

    def _open_metrics(self) -> None:
        """--metrics-bind: the master serves /metrics, /livez and /readyz there. Like the control
        socket, an address that cannot be bound is logged and the server runs without it. TCP
        gets SO_REUSEPORT: after USR2 the new master binds it while the old one still serves."""
        address = self.cfg.metrics_bind
        if not address:
            return
        try:
            sock = create_listener(address, 64, reuse_port=True, umask=self.cfg.umask)
        except (OSError, ValueError) as exc:
            self.log.error("Cannot serve metrics at %s: %s", address, exc)
            self.metrics = None  # nobody to read them: the workers count nothing
            return
        # (create_listener makes --bind's sockets inheritable, for USR2: this one must not be, or
        # the new master would hold a copy that nobody serves, and SO_REUSEPORT would send it
        # every other connection.)
        sock.set_inheritable(False)
        self._metrics_socket = sock
        self.metrics_server = MetricsServer(sock, self.render_metrics, self.ready, self.log)
        self.log.info("Metrics and health at: %s (/metrics, /livez, /readyz)", describe(sock))

    def _close_metrics(self) -> None:
        if self.metrics_server is not None:
            self.metrics_server.close()
            self.metrics_server = None
        if self._metrics_socket is not None:
            # (After USR2 a unix socket file there is the new master's.)
            close_listener(self._metrics_socket, unlink=not self.reexec_pid)
            self._metrics_socket = None

    def render_metrics(self) -> str:
        """/metrics: the totals and the living workers' counters (metrics.py)."""
        assert self.metrics is not None
        living = [(w.pid, w.worker.counters) for w in self.workers.values()
                  if w.worker.counters is not None]
        return self.metrics.render(living, self.listeners)

    def ready(self) -> bool:
        """/readyz: a worker accepts, and no stop (nor its --shutdown-delay) is under way."""
        if self.stopping or self.in_shutdown_delay():
            return False
        # A RETIRING worker still accepts until its replacement is READY (then it is sent TERM):
        # with one worker, recycling must not make /readyz flap.
        return any(w.state != BOOTING and w.term_sent is None for w in self.workers.values())

    def _count_restart(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.restarted(reason)

    def _close_control(self) -> None:
        if self.control is not None:
            self.control.close()
            self.control = None

    def _fatal_hook(self, name: str) -> None:
        """A hook whose failure stops the master, as under Gunicorn: the traceback, then exit 1."""
        try:
            self.hooks.call_or_raise(name, self.server)
        except Exception:
            self.log.error("Exception in %s hook:\n%s", name, traceback.format_exc().rstrip())
            raise HaltServer(f"The {name} hook failed.", 1) from None

    def _open_listeners(self) -> None:
        # After a USR2 re-exec, the old master handed us its listening sockets: use them, bind nothing
        # that is already there (no rebinding, no refused connection during the upgrade).
        handed_over = os.environ.pop(REEXEC_ENV, "")
        try:
            from_systemd = (handed_over_sockets(os.environ, handed_over)
                            or activation_sockets(os.environ, self.pid))
        except ActivationError as exc:
            raise HaltServer(str(exc)) from None
        if from_systemd:
            self._use_systemd_sockets(from_systemd)
            return
        inherited = inherited_listeners(handed_over, list(self.cfg.bind))
        address = ""
        try:
            for address, sock in zip(self.cfg.bind, inherited):
                if sock is None:
                    sock = create_listener(address, self.cfg.backlog, self.cfg.reuse_port,
                                           self.cfg.umask)
                    self._chown_unix_socket(sock)
                self.listeners.append(sock)
                self.log.info("Listening at: %s (%d)",
                              describe(sock, "https" if self.cfg.certfile else "http"), self.pid)
        except (OSError, ValueError) as exc:
            raise HaltServer(f"Cannot listen at {address}: {exc}") from None

    def _use_systemd_sockets(self, found: list[tuple[socket.socket, str]]) -> None:
        """Socket activation: serve on what systemd passed and bind nothing else, as Gunicorn does.
        The sockets belong to the .socket unit (its address, owner, mode), so --bind is ignored."""
        sources = getattr(self.cfg, "sources", {})
        if sources.get("bind", DEFAULT_SOURCE) != DEFAULT_SOURCE:
            self.log.info("Sockets from systemd take precedence over --bind %s",
                          " ".join(self.cfg.bind))
        self.systemd_sockets = [name for _, name in found]
        for sock, name in found:
            self.listeners.append(sock)
            self.log.info("Listening at: %s (%d)",
                          describe(sock, "https" if self.cfg.certfile else "http"), self.pid)
            self.log.debug("fd %d from systemd%s", sock.fileno(), f" ({name})" if name else "")

    def _chown_unix_socket(self, sock: socket.socket) -> None:
        """Workers that run as --user/--group must own the unix socket they serve on."""
        if sock.family != socket.AF_UNIX or not (self.cfg.user or self.cfg.group):
            return
        user = resolve_user(self.cfg.user)
        gid = resolve_group(self.cfg.group)
        os.chown(sock.getsockname(), user[0] if user else -1, gid if gid is not None else -1)

    def load_app(self) -> Any:
        """The application, from the embedding's loader or as the configuration names it (what
        ``server.app.wsgi()`` loads)."""
        if self._app_loader is not None:
            return self._app_loader()
        from ..wsgi.loader import app_from_config

        return app_from_config(self.cfg)

    def _load_app_or_halt(self) -> Any:
        try:
            return self.application.wsgi()
        except Exception:
            self.log.error("Exception while loading the application:\n%s",
                           traceback.format_exc().rstrip())
            raise HaltServer("App failed to load.", WORKER_BOOT_ERROR) from None

    # -- signals -------------------------------------------------------------------------------------

    def _install_signals(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        for sig in self.SIGNALS:
            signal.signal(sig, self._queue_signal)

    def _queue_signal(self, sig: int, frame: Any) -> None:
        if len(self.signal_queue) < 20:
            self.signal_queue.append(sig)
        try:
            os.write(self._wake_w, b".")
        except OSError:
            pass

    def _next_timeout(self) -> float:
        # Look often while a hand-over is in progress, else once a second (heartbeats, deadlines).
        if any(w.term_sent or w.abort_sent or w.generation != self.generation
               for w in self.workers.values()):
            timeout = 0.25
        else:
            timeout = 1.0
        # systemd's watchdog may want WATCHDOG=1 sooner than the loop would wake by itself.
        due = self.systemd.watchdog_wait() if self.systemd is not None else None
        if self.shutdown_deadline is not None:
            left = max(0.0, self.shutdown_deadline - time.monotonic())
            due = left if due is None else min(due, left)
        return timeout if due is None else min(timeout, due)

    def _wait_for_wakeup(self, timeout: float) -> None:
        if self.signal_queue:
            return
        control = self.control
        waiting = [self._wake_r] if control is None else [self._wake_r, control.fileno()]
        metrics = self.metrics_server
        if metrics is not None:
            waiting.append(metrics.fileno())
        try:
            ready, _, _ = select.select(waiting, [], [], timeout)
        except InterruptedError:
            return
        if control is not None and control.fileno() in ready:
            control.serve()  # a command's action (a queued signal, a new count) is taken up below
        if metrics is not None and metrics.fileno() in ready:
            metrics.serve()
        if self._wake_r in ready:
            try:
                while os.read(self._wake_r, 4096):
                    pass
            except BlockingIOError:
                pass

    def _handle_signal(self, sig: int) -> int | None:
        log = self.log
        if sig == signal.SIGCHLD:
            return None  # the loop reaps after every wake-up
        name = signal.Signals(sig).name[3:].lower()
        log.info("Handling signal: %s", name)
        if sig == signal.SIGTERM:
            if self.cfg.shutdown_delay > 0 and self.shutdown_deadline is None:
                self._begin_shutdown_delay()
                return None
            return self._stop(graceful=True)  # (a second TERM ends the delay at once)
        if sig in (signal.SIGINT, signal.SIGQUIT):
            return self._stop(graceful=False)
        if sig == signal.SIGHUP:
            self._reload()
        elif sig == signal.SIGTTIN:
            self._set_worker_count(self.num_workers + 1)
        elif sig == signal.SIGTTOU:
            if self.num_workers > 1:
                self._set_worker_count(self.num_workers - 1)
        elif sig == signal.SIGUSR1:
            reopen_logs()
            self._signal_workers(signal.SIGUSR1)
        elif sig == signal.SIGUSR2:
            self._reexec()
        elif sig == signal.SIGWINCH:
            if has_controlling_terminal():
                # A terminal sends WINCH whenever its window is resized (Gunicorn ignores WINCH
                # unless daemonized for the same reason).
                log.info("WINCH ignored: the master runs in a terminal, which sends WINCH on "
                         "every window resize")
                return None
            log.info("Gracefully stopping the workers; the master stays (HUP or TTIN restarts them)")
            self._set_worker_count(0)
        return None

    def _begin_shutdown_delay(self) -> None:
        """TERM with --shutdown-delay: say we are going (not ready) but keep accepting and serving
        while load balancers and Kubernetes endpoints catch up; the loop stops when it ends."""
        delay = self.cfg.shutdown_delay
        self.shutdown_deadline = time.monotonic() + delay
        status = f"Shutting down in {delay:g} s: not ready, still serving"
        self.log.info("Shutdown delay: %s", status)
        if self.systemd is not None:
            self._systemd_status = status
            self.systemd.status(status)

    def in_shutdown_delay(self) -> bool:
        """Whether TERM came and the --shutdown-delay runs: the workers still serve, but health
        checks answer not-ready (a stable name: /readyz reads it, with ``stopping``, which is True
        once the delay is over and the listeners close)."""
        return self.shutdown_deadline is not None and not self.stopping

    def _set_worker_count(self, count: int) -> None:
        old, self.num_workers = self.num_workers, count
        self.hooks.call("nworkers_changed", self.server, count, old)

    # -- what hooks ask of the master (server.py) ----------------------------------------------------

    def set_worker_count(self, count: int) -> None:
        """``server.num_workers = N``: as TTIN/TTOU; the loop brings the workers to it."""
        if count < 0:
            raise ValueError(f"{count} is not a number of workers")
        self._set_worker_count(count)
        self.wakeup()

    def queue_signal(self, sig: int) -> None:
        """Act on ``sig`` at the next turn of the loop, as if it had been received."""
        self._queue_signal(sig, None)

    def wakeup(self) -> None:
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b".")
            except OSError:
                pass

    def request_halt(self, reason: str | None, exit_status: int) -> None:
        self._halt_request = (reason, exit_status)
        self.wakeup()

    def kill_worker(self, pid: int, sig: int) -> None:
        """``server.kill_worker``: signal one worker now. A worker told to stop is replaced as one
        the master stopped (not counted as a crash)."""
        handle = self.workers.get(pid)
        if handle is not None and sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT,
                                          signal.SIGKILL) and handle.term_sent is None:
            handle.term_sent = time.monotonic()
        try:
            os.kill(pid, sig)
            if sig in (signal.SIGTERM, signal.SIGKILL):
                self.workers_killed += 1
        except ProcessLookupError:
            pass  # gone already: the loop reaps it
        self.wakeup()

    def _halt(self) -> int:
        """server.halt(reason, exit_status): stop gracefully, then exit with that status."""
        reason, status = self._halt_request or (None, 0)
        self._halt_request = None
        log = self.log.info if status == 0 else self.log.error
        log("Halting: %s", reason or "asked by a hook")
        self._stop(graceful=True)
        return status

    # -- HUP: reload ---------------------------------------------------------------------------------

    def _reload(self) -> None:
        self.reloads += 1
        self._systemd_reloading()
        if self._reload_config is not None:
            try:
                new_cfg = self._reload_config()
            except Exception as exc:
                # READY=1 still follows (the old workers are ready): a reload systemd waits for
                # must end, even a failed one.
                self.log.error("Reload failed, the old configuration and workers stay: %s", exc)
                return
            if new_cfg.config_warnings:
                self.log.warning(unknown_names_text(new_cfg.config_warnings))
            old_binds = list(self.cfg.bind)
            if new_cfg.worker_class != self.cfg.worker_class:
                self._switch_worker_class(new_cfg.worker_class)
            self.cfg = new_cfg
            # server.app follows the new configuration (a preloaded app stays loaded, as before).
            self.application.cfg = self.server.cfg
            self.application.app_uri = new_cfg.app_uri
            if list(new_cfg.bind) != old_binds:
                self.log.warning("HUP does not change --bind (listening sockets are kept); "
                                 "use USR2 to rebind")
                new_cfg.bind = old_binds
            if new_cfg.metrics_bind != self._metrics_bind:
                self.log.warning("HUP does not change --metrics-bind (read at start); "
                                 "use USR2 or restart")
                new_cfg.metrics_bind = self._metrics_bind
            from ..logs import setup_logging

            try:
                self.log = setup_logging(new_cfg)
            except (OSError, ValueError) as exc:
                self.log.error("Cannot set up the logs: %s", exc)
            self.reloader = configure_reloader(self.reloader, self.cfg, self.log, self._wake_w)
        self._set_worker_count(self.cfg.workers)
        self._replace_workers()
        self.hooks.call("on_reload", self.server)

    def _switch_worker_class(self, canonical: str) -> None:
        self.log.info("Using worker: %s", canonical)
        preload_in_master(canonical)
        if canonical == "gevent" and "ssl" in sys.modules:
            # This master imported ssl for the previous class; gevent patches it late, with a
            # warning, in each new worker. A fresh master (USR2, or a restart) has no such history.
            self.log.warning("The master has ssl imported from the previous worker class; for gevent "
                             "to patch it cleanly, upgrade the master with USR2 or restart")

    def _replace_workers(self) -> None:
        """HUP, and --reload on a file change: a new generation. New workers start now; the old ones
        are stopped by _manage once the new ones are READY."""
        self.generation += 1

    def _check_reload(self) -> None:
        """--reload: a watched file changed. Replace the workers; the configuration stays (HUP
        re-reads it)."""
        if self.reloader is None or self.stopping:
            return
        changed = self.reloader.changed()
        if changed:
            more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
            self.log.info("Reloading: %s changed%s", changed[0], more)
            self._systemd_reloading()
            self._replace_workers()

    # -- USR2: re-exec -------------------------------------------------------------------------------

    def _reexec(self) -> None:
        if self.reexec_pid:
            self.log.warning("USR2 ignored: a new master (pid %d) is already running", self.reexec_pid)
            return
        if self.pidfile is not None:
            self.pidfile.rename(self.pidfile.path + ".oldbin")
        pid = os.fork()
        if pid:
            self.reexec_pid = pid
            self.log.info("Started a new master (pid %d) on our listening sockets", pid)
            return
        try:
            self.hooks.call("pre_exec", self.server)
            environ = dict(os.environ)
            environ[REEXEC_ENV] = ",".join(str(sock.fileno()) for sock in self.listeners)
            environ[OLD_MASTER_ENV] = str(self.pid)
            if self.systemd_sockets is not None:
                environ[HANDED_OVER_ENV] = ":".join(self.systemd_sockets)
            if self.systemd is not None:  # it may become the service's main process
                environ.update(self.systemd.environment(os.getpid()))
            for sock in self.listeners:
                sock.set_inheritable(True)
            os.chdir(self.start_cwd)
            argv = self._reexec_argv or [sys.executable, "-m", "pronghorn", *self.cfg.argv]
            os.execve(sys.executable, argv, environ)
        finally:
            os._exit(1)

    # -- workers -------------------------------------------------------------------------------------

    def _spawn_missing(self) -> None:
        fresh = [w for w in self.workers.values()
                 if w.generation == self.generation and w.term_sent is None and w.state != RETIRING]
        while not self.stopping and len(fresh) < self.num_workers:
            fresh.append(self._spawn())

    def _spawn(self) -> WorkerHandle:
        self.worker_age += 1
        try:
            worker = WorkerContext(self.worker_age, self.pid, Heartbeat(), self._wake_w,
                                   self.server.cfg, self.log, self.listeners, self.application)
        except (OSError, RuntimeError) as exc:  # --worker-tmp-dir: missing, or not writable
            raise HaltServer(f"Cannot make the worker's heartbeat file: {exc}") from None
        if self.metrics is not None:
            worker.counters = self.metrics.new_counters()
        handle = WorkerHandle(self.worker_age, self.generation, worker)
        self.hooks.call("pre_fork", self.server, worker)
        if self.app is not None:
            gc.freeze()  # what the master made since (a reload, hooks) stays shared too; cheap
        # Signals wait while we fork: a TERM that reached the child before it dropped the master's
        # handlers would be queued there and lost, leaving a worker that ignores the stop.
        self._spawn_mask = signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGNALS)
        try:
            pid = os.fork()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._spawn_mask)
            raise
        if pid:
            signal.pthread_sigmask(signal.SIG_SETMASK, self._spawn_mask)
            handle.pid = handle.worker.pid = pid
            self.workers[pid] = handle
            return handle
        # In the child: never return into the master's loop.
        status = 0
        try:
            handle.pid = handle.worker.pid = os.getpid()
            status = self._worker_main(handle)
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            status = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)

    def _worker_main(self, handle: WorkerHandle) -> int:
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, self._spawn_mask)  # what came meanwhile, now
        os.close(self._wake_r)
        if self.control is not None:  # the master's; a worker must not hold it open
            self.control.close_in_child()
            self.control = None
        if self.metrics_server is not None:  # the same
            self.metrics_server.close_in_child()
            self.metrics_server = None
        if self._metrics_socket is not None:
            self._metrics_socket.close()
            self._metrics_socket = None
        for other in self.workers.values():
            other.heartbeat.close()  # the siblings' slots are none of this worker's business
            other.worker.tmp.close()
            if other.worker.counters is not None:
                other.worker.counters.close()
        ctx = handle.worker
        cfg, log = self.cfg, self.log
        if cfg.spew:  # first, so that the trace shows the worker's whole life (as Gunicorn's)
            from ..workers.spew import install as install_spew

            install_spew()
        set_proctitle(f"pronghorn: worker [{self.proc_name}]")
        log.info("Booting worker with pid: %d", handle.pid)
        try:  # before the switch to --user, as in Gunicorn; its failure is a boot failure there too
            self.hooks.call_or_raise("post_fork", self.server, ctx)
        except Exception:
            log.error("Exception in post_fork hook:\n%s", traceback.format_exc().rstrip())
            return WORKER_BOOT_ERROR
        # The server's own modules load with the master's rights (the Python installation may not
        # be readable by --user); the application loads as --user.
        from ..workers import load_worker_class

        try:
            worker_class = load_worker_class(cfg.worker_class)
            prepare = getattr(worker_class, "prepare_process", None)
            if prepare is not None:
                prepare()  # gevent patches here: before the app or anything of ours that uses sockets
        except Exception:
            # Like an app that fails to import: logged, and a boot failure (no retry loop).
            log.error("Exception in worker process (worker class %s):\n%s", cfg.worker_class,
                      traceback.format_exc().rstrip())
            return WORKER_BOOT_ERROR
        from ..tls import server_context

        ssl_context = None
        if tls_enabled(cfg):
            try:
                ssl_context = server_context(cfg)  # read before the switch to --user, as the key
            except (OSError, ValueError) as exc:   # is usually readable by root only
                log.error("Cannot use the TLS certificate or key: %s", exc)
                return WORKER_BOOT_ERROR

        try:
            drop_privileges(resolve_user(cfg.user), resolve_group(cfg.group), cfg.initgroups)
        except (OSError, ValueError) as exc:
            log.error("Cannot run the worker as user %s, group %s: %s", cfg.user, cfg.group, exc)
            return WORKER_BOOT_ERROR
        app = self.app
        if app is None:
            try:
                app = ctx.app.wsgi()
            except Exception as exc:
                log.error("Exception in worker process:\n%s", traceback.format_exc().rstrip())
                if self.reloader is None:
                    return WORKER_BOOT_ERROR
                # --reload: keep serving (the traceback, as a 500) until a fixed file reloads us.
                app = serve_failure(self.reloader.report_w, exc, log)
        ctx.wsgi = app
        ctx.ssl_context = ssl_context
        try:
            self.hooks.call_or_raise("post_worker_init", ctx)
        except Exception:
            log.error("Exception in post_worker_init hook:\n%s", traceback.format_exc().rstrip())
            return WORKER_BOOT_ERROR
        ctx.booted = True
        try:
            worker_class.run_worker(app, cfg, self.listeners, log, ctx)
        finally:
            ctx.flush_counters()  # (--metrics-bind: the counts since the last heartbeat)
            ctx.tmp.close()
            self.hooks.call("worker_exit", self.server, ctx)
        log.info("Worker exiting (pid: %d)", handle.pid)
        return 0

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if not pid:
                return
            if pid == self.reexec_pid:
                self._reexec_ended(status)
                continue
            handle = self.workers.pop(pid, None)
            if handle is None:
                continue  # not ours (we may be PID 1 in a container): reaped, nothing more
            handle.alive = False
            booted = handle.state != BOOTING
            handle.heartbeat.close()
            handle.worker.tmp.close()
            self._fold_counters(handle)
            self.hooks.call("child_exit", self.server, handle.worker)
            code = os.waitstatus_to_exitcode(status)
            if code == WORKER_BOOT_ERROR:
                self._boot_failed(handle)
                continue
            if self.stopping or handle.term_sent is not None:
                continue
            if handle.abort_sent is None:  # (an abort was counted as a timeout)
                self._count_restart("crash")
            if code < 0:
                name = signal.Signals(-code).name
                how = f"was sent {name}!"
                if -code == signal.SIGKILL and handle.kill_sent:
                    self.log.error("Worker (pid:%d) was killed after WORKER TIMEOUT (it did not "
                                   "exit on SIGABRT)", pid)
                else:
                    hint = " Perhaps out of memory?" if -code == signal.SIGKILL else ""
                    self.log.error("Worker (pid:%d) %s%s", pid, how, hint)
            else:
                how = f"exited with code {code}"
                if code:
                    self.log.error("Worker (pid:%d) %s", pid, how)
            ready_at = handle.ready_at
            if not booted or ready_at is None or \
                    time.monotonic() - ready_at < EARLY_DEATH_SECONDS:
                self.early_deaths += 1
                if self.early_deaths >= EARLY_DEATH_LIMIT:
                    raise HaltServer(f"Workers keep dying as soon as they start (the last one "
                                     f"{how.rstrip('!')}).", 1)
            else:
                self.early_deaths = 0

    def _fold_counters(self, handle: WorkerHandle) -> None:
        """A reaped worker's counts join the master's totals (so counters survive recycling)."""
        counters = handle.worker.counters
        if counters is not None and self.metrics is not None:
            handle.worker.counters = None
            self.metrics.worker_gone(counters)

    def _boot_failed(self, handle: WorkerHandle) -> None:
        older = [w for w in self.workers.values()
                 if w.generation != handle.generation and w.term_sent is None]
        if handle.generation == self.generation and older:
            # A reload whose workers cannot boot: keep the old ones serving, as they are.
            self.log.error("The new workers failed to boot; the old ones keep serving")
            for worker in list(self.workers.values()):
                if worker.generation == self.generation:
                    self._terminate(worker)
            self.generation = max(w.generation for w in older)
            return
        if handle.generation != self.generation:
            return  # an old worker that was replaced anyway
        raise HaltServer("Worker failed to boot.", WORKER_BOOT_ERROR)

    def _reexec_ended(self, status: int) -> None:
        self.log.error("The new master (pid %d) exited with code %d; this master carries on",
                       self.reexec_pid, os.waitstatus_to_exitcode(status))
        self.reexec_pid = 0
        if self.pidfile is not None and self.pidfile.path.endswith(".oldbin"):
            self.pidfile.rename(self.pidfile.path[:-len(".oldbin")])

    def _murder(self) -> None:
        """Kill workers whose heartbeat stopped: SIGABRT first (worker_abort hook), then SIGKILL."""
        timeout = self.cfg.timeout
        now = time.monotonic()
        for handle in list(self.workers.values()):
            if handle.term_sent is not None:
                # Graceful stop: the worker has --graceful-timeout itself; this is the backstop.
                if not handle.kill_sent and now - handle.term_sent > self.cfg.graceful_timeout + 5:
                    self._kill(handle, signal.SIGKILL)
                continue
            if not timeout:
                continue
            silent, _ = handle.heartbeat.read()
            if silent <= timeout:
                continue
            if handle.abort_sent is None:
                # The worker's SIGABRT handler logs the request it was on.
                self.log.critical("WORKER TIMEOUT (pid:%d)", handle.pid)
                handle.abort_sent = now
                self._count_restart("timeout")
                handle.worker.aborted = True
                self._kill(handle, signal.SIGABRT)
            elif handle.kill_sent or now - handle.abort_sent <= ABORT_GRACE:
                continue
            elif handle.stack_signal_sent is None and STACK_SIGNAL is not None:
                self.log.critical("Worker (pid:%d) did not exit on SIGABRT: asking it for its "
                                  "stacks (on stderr), then SIGKILL", handle.pid)
                handle.stack_signal_sent = now
                self._kill(handle, STACK_SIGNAL)
            elif handle.stack_signal_sent is None or \
                    now - handle.stack_signal_sent > STACK_DUMP_GRACE:
                self._kill(handle, signal.SIGKILL)

    def _check_memory(self) -> None:
        """--max-worker-memory: at most once a second, read each serving worker's RSS; one over the
        limit is marked RETIRING, exactly as a worker that reached --max-requests marks itself, so
        _manage starts its replacement and sends it TERM once that one is accepting (it finishes
        what it holds). The worker does nothing per request for this."""
        limit = self.cfg.max_worker_memory
        if not limit or self.stopping:
            return
        now = time.monotonic()
        if now - self._memory_checked < MEMORY_CHECK_INTERVAL:
            return
        self._memory_checked = now
        for handle in list(self.workers.values()):
            # Only a READY worker: a booting one would overwrite the state with READY, and one
            # already retiring or stopping is on its way out.
            if handle.term_sent is not None or handle.state != READY:
                continue
            rss = resident_bytes(handle.pid)
            if rss is None or rss <= limit * MIB:
                continue
            self.log.info("Autorestarting worker using %d MiB of memory, over --max-worker-memory "
                          "%d MiB (pid: %d)", rss // MIB, limit, handle.pid)
            handle.retire_reason = "memory"
            handle.heartbeat.set_state(RETIRING)

    def _manage(self) -> None:
        if self.stopping:
            return
        self._spawn_missing()
        current = [w for w in self.workers.values()
                   if w.generation == self.generation and w.term_sent is None]
        fresh = [w for w in current if w.state != RETIRING]
        ready = [w for w in fresh if w.state == READY]
        now = time.monotonic()
        for handle in ready:
            if handle.ready_at is None:
                handle.ready_at = now
        if len(ready) >= min(self.num_workers, len(fresh)):
            # Replacements are accepting: the outdated and the retiring may go now.
            for handle in list(self.workers.values()):
                if handle.term_sent is None and (handle.generation != self.generation
                                                 or handle.state == RETIRING):
                    if handle.state == RETIRING and handle.generation == self.generation:
                        self._count_restart(handle.retire_reason)
                    self._terminate(handle)
        extra = len(fresh) - self.num_workers
        if extra > 0:
            for handle in sorted(fresh, key=lambda w: w.age)[:extra]:
                self._terminate(handle)

    def _count_workers(self) -> None:
        """Gunicorn's "N workers" debug line and gunicorn.workers statsd gauge, when N changes."""
        count = sum(1 for handle in self.workers.values() if handle.term_sent is None)
        if count != self._last_worker_count:
            self._last_worker_count = count
            self.log.debug("%d workers", count)
            statsd = statsd_client()
            if statsd is not None:
                statsd.gauge("gunicorn.workers", count)

    def _report_backlog(self) -> None:
        """--enable-backlog-metric: Gunicorn's gunicorn.backlog histogram, the connections waiting
        in the listen queues summed, at each turn of the loop (about once a second), with its
        "socket backlog: N" debug line. Listeners that cannot say (see pending_connections) are
        left out; when none can, nothing is sent (the start-up log said why)."""
        if not self.cfg.enable_backlog_metric:
            return
        counts = [n for n in map(pending_connections, self.listeners) if n is not None]
        if not counts:
            return
        backlog = sum(counts)
        self.log.debug("socket backlog: %d", backlog)
        statsd = statsd_client()
        if statsd is not None:
            statsd.histogram("gunicorn.backlog", backlog)

    # -- systemd -------------------------------------------------------------------------------------

    def _systemd_reloading(self) -> None:
        """RELOADING=1 now; READY=1 once the new workers are ready (Type=notify-reload)."""
        if self.systemd is not None:
            self.systemd.reloading()
            self._systemd_ready_due = True

    def _tell_systemd(self) -> None:
        """After each turn of the loop: READY=1 once every worker of the current generation
        answers (at start and after a reload), STATUS= when the number of serving workers changes,
        and WATCHDOG=1 when due — so the watchdog is fed only while this loop turns."""
        notifier = self.systemd
        if notifier is None or self.stopping:
            return
        notifier.watchdog()
        if self.shutdown_deadline is not None:
            return  # (the status says the delay runs until the stop says STOPPING=1)
        # The workers' states live in shared memory and change under us: read each once, so that
        # the status and the readiness below agree (read twice, a worker that turned READY in
        # between made READY=1 say "Serving with 1 worker" of two).
        alive = [(w, w.state) for w in self.workers.values() if w.term_sent is None]
        serving = sum(1 for _, state in alive if state != BOOTING)
        status = f"Serving with {serving} worker{'' if serving == 1 else 's'}"
        if self._systemd_ready_due:
            current = [w for w, state in alive if w.generation == self.generation and state == READY]
            # A new worker may also have turned READY since _manage looked, while the ones it
            # replaces are still serving. READY=1 waits for the next turn, when _manage has told
            # those to stop and the status counts the new generation alone.
            outdated = any(w.generation != self.generation for w, _ in alive)
            if self.num_workers and len(current) >= self.num_workers and not outdated:
                self._systemd_ready_due = False
                self._systemd_status = status
                notifier.ready(status)
                return
        if status != self._systemd_status and not self._systemd_ready_due:
            self._systemd_status = status
            notifier.status(status)

    def _terminate(self, handle: WorkerHandle) -> None:
        handle.term_sent = time.monotonic()
        self._kill(handle, signal.SIGTERM)

    def _kill(self, handle: WorkerHandle, sig: int) -> None:
        if sig == signal.SIGKILL:
            handle.kill_sent = True
        try:
            os.kill(handle.pid, sig)
            if sig in (signal.SIGTERM, signal.SIGKILL):
                self.workers_killed += 1
        except ProcessLookupError:
            pass

    def _signal_workers(self, sig: int) -> None:
        for handle in list(self.workers.values()):
            self._kill(handle, sig)

    # -- stop ----------------------------------------------------------------------------------------

    def _stop(self, graceful: bool) -> int:
        self.stopping = True
        self._close_control()  # first, as Gunicorn: no commands while stopping
        if self.systemd is not None:
            if self.reexec_pid:
                # A USR2 upgrade ends with the old master stopping: systemd follows the new one.
                self.systemd.main_pid(self.reexec_pid, f"Handed over to pid {self.reexec_pid}")
            else:
                self.systemd.stopping()
        self._close_listeners()
        for handle in self.workers.values():
            handle.term_sent = handle.term_sent or time.monotonic()
        self._signal_workers(signal.SIGTERM if graceful else signal.SIGQUIT)
        if self.reloader is not None:
            self.reloader.stop()
            self.reloader = None
        deadline = time.monotonic() + (self.cfg.graceful_timeout if graceful else 2.0)
        while self.workers and time.monotonic() < deadline:
            self._wait_for_wakeup(0.1)
            # A second TERM while stopping changes nothing; INT or QUIT during a graceful stop
            # means the operator will not wait: the quick stop, as if it had come first.
            impatient = graceful and any(sig in (signal.SIGINT, signal.SIGQUIT)
                                         for sig in self.signal_queue)
            self.signal_queue.clear()
            if impatient:
                graceful = False
                self.log.info("Quick shutdown requested while stopping gracefully")
                self._signal_workers(signal.SIGQUIT)
                deadline = min(deadline, time.monotonic() + 2.0)
            if self.systemd is not None:
                self.systemd.watchdog()  # a graceful stop may outlast WatchdogSec=
            self._reap_quietly()
        self._signal_workers(signal.SIGKILL)
        while self.workers:
            self._reap_quietly(block=True)
        self._close_metrics()  # last: /readyz said 503 while the workers stopped
        self.hooks.call("on_exit", self.server)
        if self.pidfile is not None:
            self.pidfile.unlink(self.pid)
        self.log.info("Shutting down: Master")
        # The interpreter restores default handlers while it shuts down; a TERM that arrives then
        # would kill us with -15 instead of the 0 we are about to return.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        return 0

    def _reap_quietly(self, block: bool = False) -> None:
        while self.workers:
            try:
                pid, _ = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                self.workers.clear()
                return
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise
            if not pid:
                return
            handle = self.workers.pop(pid, None)
            if handle is not None:
                handle.alive = False
                handle.heartbeat.close()
                handle.worker.tmp.close()
                self._fold_counters(handle)
                self.hooks.call("child_exit", self.server, handle.worker)

    def _close_listeners(self) -> None:
        # A new master from USR2 serves on these sockets: leave unix socket files in place for it.
        # A systemd .socket unit owns its socket files, and serves them again after we stop.
        unlink = not self.reexec_pid and self.systemd_sockets is None
        for sock in self.listeners:
            close_listener(sock, unlink=unlink)
        self.listeners = []

"""A minimal arbiter: fork the workers, replace the ones that die, stop on TERM/INT/QUIT.

Signal handlers only queue the signal and wake the main loop through a pipe; the loop acts. The master
never imports the application, asyncio or uvloop: workers do that after the fork.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import signal
import sys
import time
import traceback
from typing import Any

from .. import __version__
from .listeners import close_listener, create_listener, describe

WORKER_BOOT_ERROR = 3
# A worker that dies this soon after it started, this many times in a row, means something is wrong
# with every worker we could start: stop instead of forking forever.
EARLY_DEATH_SECONDS = 1.0
EARLY_DEATH_LIMIT = 5


class HaltServer(Exception):
    def __init__(self, reason: str, exit_status: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.exit_status = exit_status


class Arbiter:
    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGCHLD, signal.SIGHUP)

    def __init__(self, cfg: Any, log: logging.Logger) -> None:
        self.cfg = cfg
        self.log = log
        self.pid = os.getpid()
        self.workers: dict[int, float] = {}   # pid → start time
        self.listeners: list[Any] = []
        self.signal_queue: list[int] = []
        self.stopping = False
        self.early_deaths = 0
        self._wake_r = self._wake_w = -1

    # -- main ----------------------------------------------------------------------------------------

    def run(self) -> int:
        log = self.log
        log.info("Starting pronghorn %s", __version__)
        try:
            for address in self.cfg.bind:
                sock = create_listener(address, self.cfg.backlog, self.cfg.reuse_port)
                self.listeners.append(sock)
                log.info("Listening at: %s (%d)", describe(sock), self.pid)
        except (OSError, ValueError) as exc:
            log.error("Cannot listen at %s: %s", address, exc)
            self._close_listeners()
            return 1
        log.info("Using worker: %s", self.cfg.worker_class)
        self._install_signals()
        try:
            self._spawn_missing()
            while True:
                self._wait_for_signal(1.0)
                while self.signal_queue:
                    sig = self.signal_queue.pop(0)
                    if sig == signal.SIGCHLD:
                        self._reap()
                    elif sig == signal.SIGTERM:
                        return self._stop(graceful=True)
                    elif sig in (signal.SIGINT, signal.SIGQUIT):
                        return self._stop(graceful=False)
                    elif sig == signal.SIGHUP:
                        log.info("Hang up: restarting workers")
                        self._signal_workers(signal.SIGTERM)
                self._reap()
                self._spawn_missing()
        except HaltServer as halt:
            log.error("Shutting down: %s", halt.reason)
            self._stop(graceful=False)
            return halt.exit_status

    # -- signals -------------------------------------------------------------------------------------

    def _install_signals(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        for sig in self.SIGNALS:
            signal.signal(sig, self._queue_signal)

    def _queue_signal(self, sig: int, frame: Any) -> None:
        if len(self.signal_queue) < 10:
            self.signal_queue.append(sig)
        try:
            os.write(self._wake_w, b".")
        except OSError:
            pass

    def _wait_for_signal(self, timeout: float) -> None:
        if self.signal_queue:
            return
        try:
            ready, _, _ = select.select([self._wake_r], [], [], timeout)
            if ready:
                while os.read(self._wake_r, 64):
                    pass
        except (BlockingIOError, InterruptedError):
            pass

    # -- workers -------------------------------------------------------------------------------------

    def _spawn_missing(self) -> None:
        while not self.stopping and len(self.workers) < self.cfg.workers:
            self._spawn()

    def _spawn(self) -> None:
        pid = os.fork()
        if pid:
            self.workers[pid] = time.monotonic()
            return
        # In the child: never return into the master's loop.
        status = 0
        try:
            status = self._worker_main()
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            status = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)

    def _worker_main(self) -> int:
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        os.close(self._wake_r)
        os.close(self._wake_w)
        log = self.log
        log.info("Booting worker with pid: %d", os.getpid())
        from ..wsgi.loader import load_app

        try:
            app = load_app(self.cfg.app_uri)
        except Exception:
            log.error("Exception in worker process:\n%s", traceback.format_exc().rstrip())
            return WORKER_BOOT_ERROR
        from ..workers.sync import run_worker

        run_worker(app, self.cfg, self.listeners, log)
        log.info("Worker exiting (pid: %d)", os.getpid())
        return 0

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if not pid:
                return
            started = self.workers.pop(pid, None)
            if started is None:
                continue  # not ours (we may be PID 1 in a container): reaped, nothing more
            code = os.waitstatus_to_exitcode(status)
            if code == WORKER_BOOT_ERROR:
                raise HaltServer("Worker failed to boot.", WORKER_BOOT_ERROR)
            if self.stopping:
                continue
            if code < 0:
                self.log.error("Worker (pid:%d) was sent %s!", pid, signal.Signals(-code).name)
            elif code:
                self.log.error("Worker (pid:%d) exited with code %d", pid, code)
            if time.monotonic() - started < EARLY_DEATH_SECONDS:
                self.early_deaths += 1
                if self.early_deaths >= EARLY_DEATH_LIMIT:
                    raise HaltServer("Workers keep dying as soon as they start.", 1)
            else:
                self.early_deaths = 0

    def _signal_workers(self, sig: int) -> None:
        for pid in list(self.workers):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                self.workers.pop(pid, None)

    def _stop(self, graceful: bool) -> int:
        self.stopping = True
        self.log.info("Handling signal: %s", "term" if graceful else "int")
        self._close_listeners()
        self._signal_workers(signal.SIGTERM if graceful else signal.SIGINT)
        deadline = time.monotonic() + (self.cfg.graceful_timeout if graceful else 2.0)
        while self.workers and time.monotonic() < deadline:
            self._wait_for_signal(0.1)
            self.signal_queue.clear()
            self._reap_quietly()
        self._signal_workers(signal.SIGKILL)
        while self.workers:
            self._reap_quietly(block=True)
        self.log.info("Shutting down: Master")
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
            self.workers.pop(pid, None)

    def _close_listeners(self) -> None:
        for sock in self.listeners:
            close_listener(sock)
        self.listeners = []

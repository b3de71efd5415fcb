"""The gthread worker: the event loop holds the connections (workers/aio.py); threads run the app.

Theory of operation
-------------------
A complete request goes to one of ``--threads`` threads; while it runs, the loop goes on accepting,
reading and answering the other connections. At most ``--threads`` requests run at once; the rest
wait their turn in arrival order.

Transports belong to the loop: a thread never touches one. The request cycle runs in the thread
against a ``ThreadChannel``, which hands every write to the loop with ``call_soon_threadsafe`` (that
keeps their order). A streamed body meets the loop every WRITE_HIGH_WATER bytes and waits there while
the client is slow, so a fast generator cannot pile a response up in memory. A request that waits for
``100 Continue`` is answered at once and its body read by the loop before a thread takes it, as
Gunicorn does: a client that never sends the body ties up no thread.

``--timeout`` watches the loop, which ticks the heartbeat whatever the threads do. A request that
hangs ties up one thread and the worker serves on with the others; once every thread has been on its
request longer than ``--timeout``, the worker stops ticking and the master replaces it, naming the
requests in the log.
"""

from __future__ import annotations

import collections
import logging
import queue
import socket
import threading
from time import perf_counter
from typing import Any, Callable, Generator

from ..config import Config
from ..cycle.request import Job, Wait
from ..http import HTTPError
from .aio import WRITE_HIGH_WATER, HTTPProtocol, LoopWorker
from .base import WorkerContext


class _ThreadPool:
    """``--threads`` threads taking calls from one queue. Leaner than concurrent.futures'
    executor, whose Future, work item, locks and semaphore cost more per request than the
    hand-over itself: nothing here waits on a result (the thread posts its outcome to the loop)."""

    def __init__(self, threads: int) -> None:
        self._calls: queue.SimpleQueue[tuple[Callable[..., None], tuple[Any, ...]] | None] = \
            queue.SimpleQueue()
        for number in range(threads):
            # Daemon threads: one still inside the app past the graceful timeout ends with the
            # process instead of holding it open.
            threading.Thread(target=self._run, name=f"pronghorn-thread-{number}",
                             daemon=True).start()

    def submit(self, function: Callable[..., None], *args: Any) -> None:
        self._calls.put((function, args))

    def shutdown(self, threads: int) -> None:
        for _ in range(threads):
            self._calls.put(None)

    def _run(self) -> None:
        calls = self._calls
        while True:
            item = calls.get()
            if item is None:
                return
            function, args = item
            function(*args)  # _serve: the cycle catches and reports what the app raises


class ThreadChannel:
    """The request cycle's Channel for a call running in a pool thread: everything that touches the
    connection is handed to the loop, in order."""

    __slots__ = ("proto", "post", "unsynced", "finished", "client_socket")

    def __init__(self, proto: HTTPProtocol) -> None:
        self.proto = proto
        self.client_socket = proto.client_socket
        self.post = proto.loop.call_soon_threadsafe
        self.unsynced = 0  # bytes written since the stream last met the loop
        self.finished = False  # complete() was posted (the loop ends the response with it)

    @property
    def body_error(self) -> HTTPError | None:
        return self.proto.body_error

    def write(self, data: bytes) -> None:
        if data:
            self.unsynced += len(data)
            self.post(self.proto.write, data)

    def complete(self, data: bytes, keep_alive: bool) -> None:
        self.finished = True
        self.post(self.proto.complete, data, keep_alive)

    def backlogged(self) -> bool:
        # Meet the loop every WRITE_HIGH_WATER bytes: it has written what came before, and the
        # stream waits there while the client's socket is full.
        if self.unsynced >= WRITE_HIGH_WATER:
            self.unsynced = 0
            return True
        return False

    def gone(self) -> bool:
        return self.proto.gone()

    def refuse(self, status: int, reason: str, log: bool = True) -> None:
        self.post(self.proto.refuse, status, reason, log)

    def abort(self) -> None:
        self.post(self.proto.abort)

    def gather(self) -> None:
        return None  # (each piece is written at once)

    def can_sendfile(self) -> bool:
        return self.proto.can_sendfile()

    def sendfile(self, fd: int, offset: int, count: int) -> Generator[Wait, None, int]:
        return self.proto.sendfile(fd, offset, count)

    def block(self, ask: Callable[[Callable[[], None]], None]) -> None:
        """Run ask(resume) on the loop and wait here until it calls resume."""
        resumed = threading.Event()
        self.post(ask, lambda: resumed.set())
        resumed.wait()


class ThreadCalls:
    """The app called on ``--threads`` threads; the rest wait in arrival order."""

    multithread = True

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.pool = _ThreadPool(threads)
        self.queue: collections.deque[HTTPProtocol] = collections.deque()
        self.running = 0

    def start(self, worker: LoopWorker) -> None:
        self.worker = worker
        self.cycle = worker.cycle
        self.ctx = worker.ctx
        self.timeout = worker.cfg.timeout

    def idle(self) -> bool:
        # Connections can all be gone (their clients left) while threads still run the app.
        return not self.running

    def stuck(self) -> bool:
        if not self.timeout or self.running < self.threads:
            return False
        now = perf_counter()
        # (A job whose thread has not begun it yet has no start time: it is not stuck.)
        return all(job.started and now - job.started > self.timeout
                   for job in self.cycle.in_flight())

    def on_loop(self, function: Callable[[], Any]) -> Any:
        """In a pool thread: function() run on the loop, waited for; its result, or its error."""
        done = threading.Event()
        outcome: list[Any] = []

        def run() -> None:
            try:
                outcome.append((True, function()))
            except BaseException as exc:  # (handed to the waiting thread, raised there)
                outcome.append((False, exc))
            done.set()

        self.worker.loop.call_soon_threadsafe(run)
        done.wait()
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    def shutdown(self) -> None:
        # Idle threads stop; any still inside the app (past the graceful timeout) end with the
        # process.
        self.pool.shutdown(self.threads)

    def submit(self, proto: HTTPProtocol) -> None:
        if self.running < self.threads and not self.queue:
            self._dispatch(proto)
        else:
            self.queue.append(proto)

    def _dispatch(self, proto: HTTPProtocol) -> None:
        policy = proto.policy
        assert policy.request is not None
        channel = ThreadChannel(proto)
        job = proto.job = Job(policy.request, policy.body, channel, policy.builder, policy.peer,
                              policy.trailers, policy)
        self.running += 1
        self.pool.submit(self._serve, proto, job, channel)

    def _serve(self, proto: HTTPProtocol, job: Job, channel: ThreadChannel) -> None:
        """In a thread: the whole cycle, then back to the loop. The access log and post_request
        run here, in the request's thread, as in Gunicorn's gthread worker."""
        stream = self.cycle.run(job)
        if stream is not None:
            for wait in stream:
                channel.block(lambda resume: proto.park(wait, resume))
        try:
            proto.loop.call_soon_threadsafe(self._finished)
        except RuntimeError:
            pass  # the loop is closed: the worker is exiting past its graceful timeout

    def _finished(self) -> None:
        self.running -= 1
        self.ctx.request_finished()
        while self.running < self.threads and self.queue:
            proto = self.queue.popleft()
            if not proto.closed:
                self._dispatch(proto)
        if self.worker.closing:
            self.worker.maybe_stopped()


def run_worker(app: Callable[..., Any], cfg: Config, listeners: list[socket.socket],
               log: logging.Logger, ctx: WorkerContext) -> None:
    LoopWorker(app, cfg, listeners, log, ctx, ThreadCalls(cfg.threads),
               max_connections=cfg.worker_connections).run()

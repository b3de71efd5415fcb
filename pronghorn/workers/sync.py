"""The default worker: the event loop holds the connections, the app runs inline, one call at a time.

Complete requests from all connections go through one queue, so the app is called once at a time per
process, exactly as under Gunicorn's sync worker, while idle keep-alive connections, slow clients and
pipelined requests wait in the loop at no cost to the app. A streamed body that the client reads
slowly waits in the loop too (the queue waits with it: iterating the body is still the app's code);
``--write-timeout`` bounds that wait. Everything else is the shared driver's (workers/aio.py) and the
shared cycle's (pronghorn/cycle).
"""

from __future__ import annotations

import collections
import logging
import socket
import sys
from time import perf_counter
from typing import Any, Callable

from ..config import Config
from ..cycle.request import Job, Stream, Wait
from .aio import LoopWorker
from .base import WorkerContext
from .held_output import HeldOutput

# How long one turn of the loop runs requests before it lets the loop accept and read again (see
# InlineCalls._start_turn).
TURN_BUDGET = 0.002


class InlineCalls:
    """The app called on the loop's thread, one request at a time, in arrival order."""

    multithread = False

    def __init__(self) -> None:
        # HTTPProtocols, or HTTP/2 streams of one (workers/h2.py's StreamProto, of the same shape but
        # no subclass): Any, since compiled, an annotation naming either class would be checked.
        self.queue: collections.deque[Any] = collections.deque()
        self.busy = False
        self._turn_ends = 0.0  # when this turn of the loop stops running requests (0: not begun)
        self._next_pending = False  # run_next is scheduled

    def start(self, worker: LoopWorker) -> None:
        self.worker = worker
        self.loop = worker.loop
        self.cycle = worker.cycle
        self.ctx = worker.ctx
        if not worker.tls:
            # A streamed body's pieces go out gathered (TLS: the loop writes every byte itself).
            worker.held_output = HeldOutput()
        request_log = worker.cycle.request_log
        if request_log is not None:
            # Every request finishes on the loop's thread: a turn's access lines go out together.
            request_log.write_once_per_turn(worker.loop.call_soon)

    def idle(self) -> bool:
        return not self.busy

    def stuck(self) -> bool:
        return False  # a hung app call blocks the loop itself, and the heartbeat stops with it

    def shutdown(self) -> None:
        pass

    def on_loop(self, function: Callable[[], Any]) -> Any:
        return function()  # (the app runs on the loop's thread)

    # -- the queue ----------------------------------------------------------------------------------------

    def submit(self, proto: Any) -> None:
        if self.busy or self.queue:
            self.queue.append(proto)
        elif perf_counter() < self._turn_ends or self._start_turn():
            self.run(proto)
        else:
            self.queue.append(proto)
            self._run_next_soon()

    def run_next(self) -> None:
        self._next_pending = False
        while not self.busy and self.queue:
            if not (perf_counter() < self._turn_ends or self._start_turn()):
                self._run_next_soon()
                return
            proto = self.queue.popleft()
            if not proto.closed:
                self.run(proto)

    def _start_turn(self) -> bool:
        """The first request of a turn of the loop starts its time (True); False once that time is
        spent. A turn runs requests for TURN_BUDGET at most; the requests left wait, in order, for
        the next turn. The app is called inline, so a turn with many slow requests ready is long,
        and the loop accepts and reads only between turns (libuv accepts one connection per turn):
        without a bound, a client that connects while keep-alive ones keep the worker busy waits
        whole turns ahead of it."""
        if self._turn_ends:
            return False
        self._turn_ends = perf_counter() + TURN_BUDGET
        self.loop.call_soon(self._next_turn)
        return True

    def _next_turn(self) -> None:
        self._turn_ends = 0.0

    def _run_next_soon(self) -> None:
        """run_next from the loop, once however many ask before it runs."""
        if not self._next_pending:
            self._next_pending = True
            self.loop.call_soon(self.run_next)

    def run(self, proto: Any) -> None:
        policy = proto.policy
        assert policy.request is not None
        self.busy = True
        job = proto.job = Job(policy.request, policy.body, proto, policy.builder, policy.peer,
                              policy.trailers, policy)
        stream = self.cycle.run(job)  # (as under Gunicorn, no asyncio loop is "running" here)
        if stream is None:
            self._done()
        else:
            self._pump(proto, stream)

    def _pump(self, proto: Any, stream: Stream) -> None:
        """Run a streamed response until it ends, or park it until the client is ready."""
        try:
            wait: Wait = next(stream)
        except StopIteration:
            self._done()
            return
        proto.park(wait, lambda: self._pump(proto, stream))

    def _done(self) -> None:
        self.ctx.request_finished()
        self.busy = False
        if self.queue:
            self._run_next_soon()
        if self.worker.closing:
            self.worker.maybe_stopped()


def run_worker(app: Callable[..., Any], cfg: Config, listeners: list[socket.socket],
               log: logging.Logger, ctx: WorkerContext) -> None:
    LoopWorker(app, cfg, listeners, log, ctx, InlineCalls()).run()
    sys.stdout.flush()

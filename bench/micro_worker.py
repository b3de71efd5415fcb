"""Per-request Python cost of the sync worker's whole request path, without sockets.

    python bench/micro_worker.py [--requests N] [--profile]

Drives the sync worker's connection protocol (HTTPProtocol) with wrk's keep-alive GET through a
stand-in transport, so one call of data_received runs everything the worker does for a request
in Python: parse, environ, the app, framing, the write call, the bookkeeping after it. It adds
to bench/micro_request.py (HTTP and WSGI layers alone) what the worker itself costs; the loop and
the system calls are not in it (bench/run measures those). --profile prints cProfile's top
functions.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import os
import pstats
import socket
import time
from typing import Any

from pronghorn.config.settings import Config
from pronghorn.workers.base import WorkerContext
from pronghorn.workers import sync
from pronghorn.workers.aio import HTTPProtocol, LoopWorker

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"  # what wrk sends
TURN = 50  # requests per turn of the loop
# A turn here is 50 hello requests, well inside the worker's time budget per turn, as in the real
# server; under a profiler or valgrind it would not be, and the budget would cut turns short.
sync.TURN_BUDGET = float("inf")


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]


class _Heartbeat:
    def tick(self) -> None:
        pass

    def set_state(self, state: int) -> None:
        pass


class _Transport:
    """What HTTPProtocol asks of a transport; writes are counted, not sent."""

    def __init__(self) -> None:
        self.written = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 50000) if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def write(self, data: bytes) -> None:
        self.written += 1

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


def make_protocol() -> tuple[LoopWorker, HTTPProtocol, _Transport]:
    cfg = Config()
    listener = socket.socket()
    ctx = WorkerContext(1, os.getppid(), _Heartbeat(), -1, cfg, logging.getLogger("micro"))  # type: ignore[arg-type]  # a stand-in heartbeat
    calls = sync.InlineCalls()
    worker = LoopWorker(hello, cfg, [listener], logging.getLogger("micro"), ctx, calls)
    calls.start(worker)
    proto = HTTPProtocol(worker, worker.cycle.builder(("127.0.0.1", 8000), False))
    transport = _Transport()
    proto.connection_made(transport)  # type: ignore[arg-type]  # a stand-in transport
    return worker, proto, transport


def run(count: int) -> float:
    worker, proto, transport = make_protocol()
    feed = proto.data_received

    def turns(requests: int) -> None:
        # The loop turns once per TURN requests, as it does with wrk's 50 connections: what the
        # worker leaves for the next turn (its per-turn bookkeeping) runs then.
        for done in range(0, requests, TURN):
            for _ in range(min(TURN, requests - done)):
                feed(REQUEST)
            worker.loop.run_until_complete(asyncio.sleep(0))

    turns(1000)
    start = time.perf_counter()
    turns(count)
    spent = time.perf_counter() - start
    assert transport.written == count + 1000, "a request was not answered"
    return spent / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(run, args.requests // 4)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    best = min(run(args.requests) for _ in range(3))
    print(f"sync worker, wrk's keep-alive GET: {best:.2f} µs per request (best of 3)")


if __name__ == "__main__":
    main()

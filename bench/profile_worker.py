"""A config file (``-c bench/profile_worker.py``) that runs cProfile over each worker's whole life.

For finding where a worker's time goes under a load this harness cannot profile from outside
(h2load's HTTP/2 streams, for one), without touching pronghorn's code: the profiler starts in
``post_worker_init`` (in the worker, just before its loop) and its stats are written by
``worker_exit`` to ``$BENCH_PROFILE.PID`` (default /tmp/pronghorn-worker.prof.PID) when the worker
stops (SIGTERM to the master). It counts CPU time (``time.process_time``), not wall time, so that
time the worker spent waiting for its core on a shared machine is not charged to whatever function
it was in. Gunicorn takes the same file.

``python bench/profile_worker.py FILE [REQUESTS]`` prints where the time went, summed by package
(the h2 library, hpack, hyperframe, each pronghorn module, ...), and per request when REQUESTS is
given; ``python -m pstats FILE`` reads it function by function. The profiler slows the worker
several times: the shares of the time are what it tells, not the rate.
"""

from __future__ import annotations

import collections
import cProfile
import os
import pstats
import sys
import time
from typing import Any

_profiler = cProfile.Profile(time.process_time)


def post_worker_init(worker: Any) -> None:
    _profiler.enable()


def worker_exit(server: Any, worker: Any) -> None:
    _profiler.disable()
    _profiler.dump_stats(f"{os.environ.get('BENCH_PROFILE', '/tmp/pronghorn-worker.prof')}.{os.getpid()}")


def _where(filename: str, function: str) -> str:
    """The package (or pronghorn's module) a profiled function belongs to."""
    if "pronghorn/" in filename and "site-packages" not in filename:
        return "pronghorn/" + filename.rsplit("pronghorn/", 1)[1]
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    if filename == "~":
        return f"builtin {function}"
    return filename.rsplit("/", 2)[-2] + "/" + filename.rsplit("/", 1)[-1] if "/" in filename else filename


def _summary(path: str, requests: int) -> None:
    stats: dict[Any, Any] = pstats.Stats(path).stats  # type: ignore[attr-defined]
    spent: collections.Counter[str] = collections.Counter()
    for (filename, _line, function), (_cc, _nc, own, _cum, _callers) in stats.items():
        spent[_where(filename, function)] += own
    total = sum(spent.values())
    print(f"{total:.3f} s of CPU" + (f", {total / requests * 1e6:.1f} µs per request" if requests else ""))
    for where, seconds in spent.most_common(25):
        per = f"{seconds / requests * 1e6:8.1f} µs" if requests else ""
        print(f"{seconds:8.3f} s {seconds / total * 100:5.1f} % {per}  {where}")


if __name__ == "__main__":
    _summary(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)

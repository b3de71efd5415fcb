"""One worker's request counters, in a page of memory it shares with the master (--metrics-bind).

Theory of operation
-------------------
The master makes a ``RequestCounters`` per worker just before the fork, as it makes the heartbeat
slot (workers/heartbeat.py); both processes map the same anonymous page. The master reads the page
when /metrics is asked for, and when it reaps the worker it folds the worker's counts into its own
totals (master/metrics.py), so counters survive recycling. Nothing is made, and nothing counted,
without --metrics-bind.

What a request costs: two shared stores, the rest in plain Python. The worker writes two values
into the page as they change, since the master must see them at once: requests begun (``STARTED``)
and requests ended (``ENDED``, answered or not), whose difference is the in-flight gauge (a sync
worker stuck in its app never beats, yet its request must show). Everything else a request adds
(by method and status, the histogram, bytes, the durations' sum) goes into ``counts``, a list of
the worker's own, and is copied into the page by ``flush``: at each heartbeat (WorkerContext.tick,
which also writes the open connections) and when the worker exits (gracefully, at --max-requests,
or aborted for --timeout), before the master reaps it. A store into the shared page costs several
times an add to a list item; a copy per heartbeat costs nothing per request. So a scrape sees the
counts as of the worker's last heartbeat (at most a second old), and a worker killed with SIGKILL
(or by the OOM killer) loses what it counted since then; every other exit loses nothing.

Every value is a signed 64-bit integer, read and written whole through a typed memoryview: one
aligned 8-byte load or store, so the master never sees a value half written (see heartbeat.py for
what byte-wise copies did). Durations are summed in seconds, in a double. ``flush`` copies the
running totals (not what changed since the last copy), so a copy that races a request adding to
``counts`` loses nothing: the next copy carries it.

Threads (gthread): each pool thread adds to the same list items and slots. ``counts[i] += n`` (or
``slots[i] += n``) is three bytecodes that call no Python code, and CPython with its GIL switches
threads only where the interpreter checks for it (calls, backward jumps), never between them: each
counter is exact. Between two counters a switch may happen, so a scrape can see a request counted
but its bytes not yet: the set is consistent again at the next copy. (A free-threaded build could
lose an increment; it would undercount, never corrupt.) gevent's greenlets never switch inside.

Labels clients choose are bounded: a method outside ``METHODS`` counts as "other".
"""

from __future__ import annotations

import mmap
from bisect import bisect_left
from typing import Final

#: The duration histogram's upper bounds, in seconds (Prometheus's client defaults); +Inf follows.
DURATION_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other")
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")

# The layout: scalars, then requests by (method, status // 100: a row of ten per method, so the
# status needs no range check; the framer allows 100 to 999, and /metrics reports 6xx to 9xx with
# 5xx), then the histogram's buckets (not cumulative here: the master adds them up), then the
# durations' sum, a double.
STARTED: Final = 0        # requests the cycle began (written per request)
ENDED: Final = 1          # requests that ended, answered or not (written per request; in flight:
                          # STARTED - ENDED)
BYTES_IN: Final = 2       # request body bytes
BYTES_OUT: Final = 3      # response body bytes
CONNECTIONS: Final = 4    # open connections (a gauge, written at each heartbeat)
REQUESTS: Final = 5
ROW: Final = 10
BUCKETS: Final = REQUESTS + len(METHODS) * ROW
SIZE: Final = BUCKETS + len(DURATION_BOUNDS) + 1
#: In the worker's ``counts`` only: the answered requests' durations summed (a float), after the
#: slots (the page keeps it in a double of its own).
SECONDS = SIZE
#: The slots ``flush`` copies from ``counts`` (the rest are written where they change).
FLUSHED = (BYTES_IN, BYTES_OUT, *range(REQUESTS, SIZE))

#: Each method's row (a method outside METHODS counts in OTHER_ROW).
ROWS = {method: REQUESTS + i * ROW for i, method in enumerate(METHODS)}
OTHER_ROW = ROWS["other"]
FIRST_BOUND = DURATION_BOUNDS[0]


def bucket(seconds: float) -> int:
    """The histogram slot of a request that took this long."""
    return (BUCKETS if seconds <= FIRST_BOUND
            else BUCKETS + bisect_left(DURATION_BOUNDS, seconds))


def request_slot(method: str, status: int) -> int:
    """Where a request of this method answered with this status (100 to 999) is counted."""
    return ROWS.get(method, OTHER_ROW) + status // 100


class RequestCounters:
    __slots__ = ("_map", "slots", "seconds", "counts")

    def __init__(self) -> None:
        # Anonymous, MAP_SHARED: the child shares the page.
        self._map = mmap.mmap(-1, SIZE * 8 + 8)
        self.slots = memoryview(self._map)[:SIZE * 8].cast("q")
        self.seconds = memoryview(self._map)[SIZE * 8:].cast("d")  # the answered requests' durations
        # The worker's own running totals, copied into the page by flush() (each process has
        # its copy after the fork; the master's stays zero and unused).
        self.counts: list[float] = [0] * SIZE + [0.0]

    # -- worker side -------------------------------------------------------------------------------
    # (Written for the per-request cost: two shared stores per request, the rest into counts; the
    # request cycle's finish() counts its common case inline, as answered() does.)

    def started(self) -> None:
        self.slots[STARTED] += 1

    def answered(self, method: str, status: int, seconds: float, received: int, sent: int) -> None:
        """A request ended with a response (status is what went out, or the 500 that replaced it)."""
        counts = self.counts
        counts[ROWS.get(method, OTHER_ROW) + status // 100] += 1
        counts[bucket(seconds)] += 1
        counts[SECONDS] += seconds
        if received:
            counts[BYTES_IN] += received
        if sent:
            counts[BYTES_OUT] += sent
        self.slots[ENDED] += 1

    def unanswered(self) -> None:
        """A request ended without a response (the app ended the connection, or was cancelled)."""
        self.slots[ENDED] += 1

    def set_connections(self, count: int) -> None:
        self.slots[CONNECTIONS] = count

    def flush(self) -> None:
        """Copy the worker's counts into the page (each heartbeat, and at the worker's exit). Safe
        from a signal handler and beside pool threads: it copies running totals, item by item."""
        slots = self.slots
        counts = self.counts
        for slot in FLUSHED:
            slots[slot] = int(counts[slot])
        self.seconds[0] = float(counts[SECONDS])

    # -- master side -------------------------------------------------------------------------------

    def values(self) -> list[int]:
        return self.slots.tolist()

    def duration(self) -> float:
        return float(self.seconds[0])

    def close(self) -> None:
        self.slots.release()
        self.seconds.release()
        self._map.close()

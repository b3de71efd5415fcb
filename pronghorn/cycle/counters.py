"""One worker's request counters, in a page of memory it shares with the master (--metrics-bind).

Theory of operation
-------------------
The master makes a ``RequestCounters`` per worker just before the fork, as it makes the heartbeat
slot (workers/heartbeat.py); both processes map the same anonymous page. The worker's request
cycle adds to it after each response (``RequestCycle.finish``), its heartbeat writes the number of
open connections; the master reads it when /metrics is asked for, and when it reaps the worker it
folds the worker's counts into its own totals (master/metrics.py), so counters survive recycling.
Nothing is made, and nothing counted, without --metrics-bind.

Every value is a signed 64-bit integer, read and written whole through a typed memoryview: one
aligned 8-byte load or store, so the master never sees a value half written (see heartbeat.py for
what byte-wise copies did). Durations are summed in seconds, in a double.

Threads (gthread): each pool thread adds to the same slots. ``slots[i] += n`` on a memoryview is
three bytecodes that call no Python code, and CPython with its GIL switches threads only where
the interpreter checks for it (calls, backward jumps), never between them: each counter is exact.
Between two counters a switch may happen, so a scrape can see a request counted but its bytes not
yet: the set is consistent again at the next response. (A free-threaded build could lose an
increment; it would undercount, never corrupt.) gevent's greenlets never switch inside.

Labels clients choose are bounded: a method outside ``METHODS`` counts as "other".
"""

from __future__ import annotations

import mmap
from bisect import bisect_left

#: The duration histogram's upper bounds, in seconds (Prometheus's client defaults); +Inf follows.
DURATION_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other")
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")

# The layout: scalars, then requests by (method, status // 100: a row of ten per method, so the
# status needs no range check; the framer allows 100 to 999, and /metrics reports 6xx to 9xx with
# 5xx), then the histogram's buckets (not cumulative here: the master adds them up), then the
# durations' sum, a double.
STARTED = 0          # requests the cycle began
UNANSWERED = 1       # requests that ended without a response (in flight: STARTED - the rest)
BYTES_IN = 2         # request body bytes
BYTES_OUT = 3        # response body bytes
CONNECTIONS = 4      # open connections (a gauge, written at each heartbeat)
REQUESTS = 5
ROW = 10
BUCKETS = REQUESTS + len(METHODS) * ROW
SIZE = BUCKETS + len(DURATION_BOUNDS) + 1

_ROWS = {method: REQUESTS + i * ROW for i, method in enumerate(METHODS)}
_OTHER_ROW = _ROWS["other"]
_FIRST_BOUND = DURATION_BOUNDS[0]


def request_slot(method: str, status: int) -> int:
    """Where a request of this method answered with this status (100 to 999) is counted."""
    return _ROWS.get(method, _OTHER_ROW) + status // 100


class RequestCounters:
    __slots__ = ("_map", "slots", "seconds")

    def __init__(self) -> None:
        # Anonymous, MAP_SHARED: the child shares the page.
        self._map = mmap.mmap(-1, SIZE * 8 + 8)
        self.slots = memoryview(self._map)[:SIZE * 8].cast("q")
        self.seconds = memoryview(self._map)[SIZE * 8:].cast("d")  # the answered requests' durations

    # -- worker side -------------------------------------------------------------------------------
    # (Written for the per-request cost: one shared store per value that changes, no call that a
    # common request does not need.)

    def started(self) -> None:
        self.slots[STARTED] += 1

    def answered(self, method: str, status: int, seconds: float, received: int, sent: int) -> None:
        """A request ended with a response (status is what went out, or the 500 that replaced it)."""
        slots = self.slots
        slots[_ROWS.get(method, _OTHER_ROW) + status // 100] += 1
        slots[BUCKETS if seconds <= _FIRST_BOUND
              else BUCKETS + bisect_left(DURATION_BOUNDS, seconds)] += 1
        self.seconds[0] += seconds
        if received:
            slots[BYTES_IN] += received
        if sent:
            slots[BYTES_OUT] += sent

    def unanswered(self) -> None:
        """A request ended without a response (the app ended the connection, or was cancelled)."""
        self.slots[UNANSWERED] += 1

    def set_connections(self, count: int) -> None:
        self.slots[CONNECTIONS] = count

    # -- master side -------------------------------------------------------------------------------

    def values(self) -> list[int]:
        return self.slots.tolist()

    def duration(self) -> float:
        return float(self.seconds[0])

    def close(self) -> None:
        self.slots.release()
        self.seconds.release()
        self._map.close()

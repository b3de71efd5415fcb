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
what byte-wise copies did). Durations are summed in microseconds.

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

# The layout: scalars, then requests by (method, status class), then the histogram's buckets
# (not cumulative here: the master adds them up).
STARTED = 0          # requests the cycle began
FINISHED = 1         # requests it ended, answered or not (in flight: STARTED - FINISHED)
BYTES_IN = 2         # request body bytes
BYTES_OUT = 3        # response body bytes
DURATION_US = 4      # the sum of the answered requests' durations, in microseconds
CONNECTIONS = 5      # open connections (a gauge, written at each heartbeat)
REQUESTS = 6
BUCKETS = REQUESTS + len(METHODS) * len(STATUS_CLASSES)
SIZE = BUCKETS + len(DURATION_BOUNDS) + 1

_METHOD_ROW = {method: i * len(STATUS_CLASSES) for i, method in enumerate(METHODS)}
_OTHER_ROW = _METHOD_ROW["other"]


def request_slot(method: str, status: int) -> int:
    """Where a request of this method answered with this status is counted."""
    cls = status // 100 - 1
    if not 0 <= cls < len(STATUS_CLASSES):
        cls = len(STATUS_CLASSES) - 1  # (cannot happen: the framer checks the status)
    return REQUESTS + _METHOD_ROW.get(method, _OTHER_ROW) + cls


class RequestCounters:
    __slots__ = ("_map", "slots")

    def __init__(self) -> None:
        self._map = mmap.mmap(-1, SIZE * 8)  # anonymous, MAP_SHARED: the child shares the page
        self.slots = memoryview(self._map).cast("q")

    # -- worker side -------------------------------------------------------------------------------

    def started(self) -> None:
        self.slots[STARTED] += 1

    def answered(self, method: str, status: int, seconds: float, received: int, sent: int) -> None:
        """A request ended with a response (status is what went out, or the 500 that replaced it)."""
        slots = self.slots
        slot = request_slot(method, status)
        bucket = BUCKETS + bisect_left(DURATION_BOUNDS, seconds)
        slots[slot] += 1
        slots[bucket] += 1
        slots[DURATION_US] += int(seconds * 1_000_000)
        slots[BYTES_IN] += received
        slots[BYTES_OUT] += sent
        slots[FINISHED] += 1

    def unanswered(self) -> None:
        """A request ended without a response (the app ended the connection, or was cancelled)."""
        self.slots[FINISHED] += 1

    def set_connections(self, count: int) -> None:
        self.slots[CONNECTIONS] = count

    # -- master side -------------------------------------------------------------------------------

    def values(self) -> list[int]:
        return self.slots.tolist()

    def close(self) -> None:
        self.slots.release()
        self._map.close()

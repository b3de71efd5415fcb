"""Worker liveness through a small shared-memory slot per worker, on the monotonic clock.

The master creates the slot just before fork; both processes map the same page. The worker writes the
time of its last tick and its state (booting, ready, retiring); the master reads them, and writes
RETIRING itself to a ready worker over --max-worker-memory (the worker never writes after READY but
to set RETIRING, so the two writers cannot disagree). No files, no
mtime granularity, and nothing on the request path: the worker ticks from its loop a few times per
--timeout.

It lives in workers/, the layer below the master: the worker depends on it, and the master, which
may import downward, reads it from here.

Layout: tick time (double, CLOCK_MONOTONIC seconds, comparable across processes), state (int32).

Each value is written and read whole, through a typed memoryview (one aligned 8- or 4-byte store or
load). struct.pack_into/unpack_from copy a double byte by byte, so the master could read a tick
half written: measured here, one read in 60 of a slot written in a tight loop came out wrong, by up
to the whole clock value. A read like that made a healthy worker look silent for hours and killed
it with WORKER TIMEOUT a second after it booted.
"""

from __future__ import annotations

import mmap
import time

BOOTING, READY, RETIRING = 0, 1, 2


class Heartbeat:
    __slots__ = ("_map", "_tick", "_state")

    def __init__(self) -> None:
        self._map = mmap.mmap(-1, 16)  # anonymous, MAP_SHARED: the child shares the page
        self._tick = memoryview(self._map)[0:8].cast("d")
        self._state = memoryview(self._map)[8:12].cast("i")
        self._tick[0] = time.monotonic()
        self._state[0] = BOOTING

    # -- worker side -------------------------------------------------------------------------------

    def tick(self) -> None:
        self._tick[0] = time.monotonic()

    def set_state(self, state: int) -> None:
        self._state[0] = state

    # -- master side -------------------------------------------------------------------------------

    def read(self) -> tuple[float, int]:
        """(seconds since the last tick, state)."""
        return time.monotonic() - self._tick[0], self._state[0]

    @property
    def last_tick(self) -> float:
        """The monotonic time of the last tick (Gunicorn's ``worker.tmp.last_update()``)."""
        return self._tick[0]

    @property
    def state(self) -> int:
        return self._state[0]

    def close(self) -> None:
        self._tick.release()
        self._state.release()
        self._map.close()

"""Worker liveness through a small shared-memory slot per worker, on the monotonic clock.

The master creates the slot just before fork; both processes map the same page. The worker writes the
time of its last tick and its state (booting, ready, retiring); the master reads them. No files, no
mtime granularity, and nothing on the request path: the worker ticks from its loop a few times per
--timeout.

Layout: tick time (double, CLOCK_MONOTONIC seconds, comparable across processes), state (int32).
"""

from __future__ import annotations

import mmap
import struct
import time

_SLOT = struct.Struct("<di")
_STATE = struct.Struct("<i")

BOOTING, READY, RETIRING = 0, 1, 2


class Heartbeat:
    __slots__ = ("_map",)

    def __init__(self) -> None:
        self._map = mmap.mmap(-1, _SLOT.size)  # anonymous, MAP_SHARED: the child shares the page
        _SLOT.pack_into(self._map, 0, time.monotonic(), BOOTING)

    # -- worker side -------------------------------------------------------------------------------

    def tick(self) -> None:
        struct.pack_into("<d", self._map, 0, time.monotonic())

    def set_state(self, state: int) -> None:
        _STATE.pack_into(self._map, 8, state)

    # -- master side -------------------------------------------------------------------------------

    def read(self) -> tuple[float, int]:
        """(seconds since the last tick, state)."""
        tick, state = _SLOT.unpack_from(self._map, 0)
        return time.monotonic() - tick, state

    @property
    def state(self) -> int:
        return _STATE.unpack_from(self._map, 8)[0]

    def close(self) -> None:
        self._map.close()

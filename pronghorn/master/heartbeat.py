"""Worker liveness through a small shared-memory slot per worker, on the monotonic clock.

The master creates the slot just before fork; both processes map the same page. The worker writes the
time of its last tick (and, while the app runs, what request it is on); the master reads them. No
files, no mtime granularity, no syscalls on the worker's hot path beyond the clock read.

Layout (little-endian): tick time (double, CLOCK_MONOTONIC seconds), state (int32), request length
(int32), then up to REQUEST_BYTES of the request line being handled, for the log when a worker is
killed for being silent.
"""

from __future__ import annotations

import mmap
import struct
import time

_HEADER = struct.Struct("<dii")
REQUEST_BYTES = 240
SLOT_SIZE = _HEADER.size + REQUEST_BYTES

BOOTING, READY, RETIRING = 0, 1, 2


class Heartbeat:
    __slots__ = ("_map",)

    def __init__(self) -> None:
        self._map = mmap.mmap(-1, SLOT_SIZE)  # anonymous and MAP_SHARED: survives fork, shared
        self._write(time.monotonic(), BOOTING, b"")

    def _write(self, tick: float, state: int, request: bytes) -> None:
        request = request[:REQUEST_BYTES]
        _HEADER.pack_into(self._map, 0, tick, state, len(request))
        self._map[_HEADER.size:_HEADER.size + len(request)] = request

    # -- worker side -------------------------------------------------------------------------------

    def tick(self) -> None:
        struct.pack_into("<d", self._map, 0, time.monotonic())

    def set_state(self, state: int) -> None:
        struct.pack_into("<i", self._map, 8, state)

    def begin_request(self, description: bytes) -> None:
        """Mark what the app is working on (cleared by end_request)."""
        description = description[:REQUEST_BYTES]
        self._map[_HEADER.size:_HEADER.size + len(description)] = description
        struct.pack_into("<i", self._map, 12, len(description))

    def end_request(self) -> None:
        struct.pack_into("<i", self._map, 12, 0)

    # -- master side -------------------------------------------------------------------------------

    def read(self) -> tuple[float, int, bytes]:
        """(seconds since the last tick, state, request in progress or b"")."""
        tick, state, length = _HEADER.unpack_from(self._map, 0)
        length = max(0, min(length, REQUEST_BYTES))
        return time.monotonic() - tick, state, bytes(self._map[_HEADER.size:_HEADER.size + length])

    def close(self) -> None:
        self._map.close()

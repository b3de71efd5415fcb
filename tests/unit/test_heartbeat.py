"""The heartbeat slot is read whole while the worker writes it: never a half-written tick."""

from __future__ import annotations

import os
import time

from pronghorn.workers.heartbeat import READY, Heartbeat


def test_a_tick_is_never_read_half_written() -> None:
    """A child ticks as fast as it can while we read. Every tick read must be a time since the
    start of the test (with struct's byte-by-byte copy about one read in 60 was not, off by up to
    the whole clock value)."""
    start = time.monotonic()
    beat = Heartbeat()
    child = os.fork()
    if child == 0:
        try:
            for _ in range(300_000):
                beat.tick()
        finally:
            os._exit(0)
    outside = []
    try:
        for _ in range(300_000):
            silent, _ = beat.read()
            # Any tick written since the start is at most this far from the time of the read.
            if abs(silent) > time.monotonic() - start + 1e-6:
                outside.append(silent)
    finally:
        os.waitpid(child, 0)
    assert not outside, f"{len(outside)} ticks read half written: silent for {outside[:3]} s"


def test_state_and_close() -> None:
    beat = Heartbeat()
    beat.set_state(READY)
    assert beat.state == READY and beat.read()[1] == READY
    beat.close()

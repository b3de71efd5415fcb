"""Gathering a streamed body's pieces into fewer writes in the sync worker, without delaying any of
them while the app produces the next (PEP 3333).

Why: a generator that yields 16 pieces of 1 KB (Flask's streamed responses) cost 17 send() system
calls per response, and the kernel's side of those dominated the response's cost. Pieces the app
yields one right after another can go out in one write.

How PEP 3333's rule is kept ("either fully transmit the block, or guarantee that transmission goes on
while the application produces its next block", its second way: another thread). The sync worker
calls the app on the loop's thread, so while the app computes the next piece nothing of ours runs
there. A ``HeldOutput`` keeps the pieces the cycle wrote since the app last returned one, and a
small thread (``HeldOutput._watch``, started on the first streamed body) looks every
``WATCH_INTERVAL`` while streams run: whenever it finds output held while the app is producing the
next piece, it writes that output to the socket itself. The pieces go out at once when the body
ends, when HOLD_LIMIT bytes are held, or when the app writes through ``write()``.

Who may touch the held pieces: the loop's thread holds ``lock`` all the time a stream is in our code
and lets go of it only around the call that asks the app for its next piece (``app_runs`` /
``app_returned``); the watcher takes it only without waiting, so a piece the app yields never waits
on the watcher, and the loop's thread never pays a system call for the lock (nobody waits on it).
The watcher writes to the socket only when the transport holds nothing unsent, so the order of the
bytes is the order they were written in; what the socket does not take stays held for the loop's
thread to hand to the transport, as a piece the client cannot take yet waits there today.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Protocol

# How often the watcher looks while streams run: the longest a piece waits for the kernel while the
# app produces the next one (plus the wait for the GIL while the app computes in Python, at most
# sys.getswitchinterval()).
WATCH_INTERVAL = 0.001
# Held bytes past this go to the transport at once: one write per this many bytes at most.
HOLD_LIMIT = 64 * 1024
# The watcher sleeps after this many intervals without a stream (a burst of streams wakes it once).
QUIET_INTERVALS = 200


class Holder(Protocol):
    """The connection whose stream holds output (workers/aio.py's HTTPProtocol)."""

    held: list[bytes]

    def send_held(self) -> None:
        """From the watcher, lock held, app running: write the held bytes to the socket."""

    def stop_gathering(self) -> None:
        """The stream is over: hand on what is still held (it ended early)."""


class HeldOutput:
    """One per sync worker: the lock and the watcher thread of the (one) stream under way."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.holder: Holder | None = None  # the connection whose stream is under way
        self.app_running = False  # the app is producing the next piece (the lock is free)
        self._streams = 0  # how many streams began (the watcher's sign of activity)
        self._awake = False
        self._wake = threading.Event()
        self._watcher: threading.Thread | None = None

    def begin(self, holder: Holder) -> None:
        """On the loop's thread: a streamed body starts gathering; the loop's thread takes the lock."""
        self.lock.acquire()
        self.holder = holder
        self._streams += 1
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name="pronghorn-held-output",
                                            daemon=True)
            self._awake = True
            self._watcher.start()
        elif not self._awake:
            self._awake = True
            self._wake.set()

    def app_runs(self) -> None:
        """The cycle is about to ask the app for its next piece: the watcher may send held output."""
        self.app_running = True
        self.lock.release()

    def app_returned(self) -> None:
        self.lock.acquire()
        self.app_running = False

    def done(self) -> None:
        """The stream is over (complete() handed its held output on, else stop_gathering does)."""
        holder = self.holder
        self.holder = None
        if holder is not None:
            holder.stop_gathering()
        self.lock.release()

    def _watch(self) -> None:
        quiet = 0
        seen = -1
        lock = self.lock
        while True:
            time.sleep(WATCH_INTERVAL)
            if lock.acquire(blocking=False):  # (never waits: the loop's thread may be in our code)
                try:
                    holder = self.holder
                    if holder is not None and self.app_running and holder.held:
                        holder.send_held()
                finally:
                    lock.release()
            if self._streams != seen or self.holder is not None:
                seen = self._streams
                quiet = 0
                continue
            quiet += 1
            if quiet < QUIET_INTERVALS:
                continue
            # Sleep until the next stream. (_awake is cleared before the holder is looked at, and
            # begin() sets the holder before it looks at _awake: one of the two sees the other.)
            self._wake.clear()
            self._awake = False
            if self.holder is None and self._streams == seen:
                self._wake.wait()
            self._awake = True
            quiet = 0


def write_some(fd: int, held: list[bytes]) -> None:
    """Write the held bytes to a non-blocking socket; what it does not take stays in ``held``. An
    error leaves everything held: the transport meets it on its own write."""
    data: Any = b"".join(held) if len(held) > 1 else held[0]
    try:
        sent = os.write(fd, data)
    except OSError:  # (BlockingIOError included: the client is not reading)
        return
    held.clear()
    if sent < len(data):
        held.append(data[sent:])

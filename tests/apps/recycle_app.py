"""An app for tests/test_worker_recycling.py: one that grows on request (--max-worker-memory), one
stuck in time.sleep (the stack a --timeout abort logs), and one that says whether gc is frozen
(--preload's gc.freeze)."""

from __future__ import annotations

import gc
import os
import signal
import time
from typing import Any, Callable, Iterable

GROWTH = 1 << 20       # kept per /grow request
HOARD_CEILING = 200    # requests' worth at most: the test never asks the machine for more than this
_hoard: list[bytes] = []


def stuck_in_sleep() -> None:
    time.sleep(600)  # the line the abort's stack must show


def stuck_deaf() -> None:
    # As if inside C code that never returns to the interpreter: the SIGABRT handler cannot run.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGABRT})
    time.sleep(600)  # the line the stack dump must show


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/grow":
        if len(_hoard) < HOARD_CEILING:
            _hoard.append(b"x" * GROWTH)  # written, so resident
        body = str(os.getpid()).encode()
    elif path == "/sleep":
        stuck_in_sleep()
        body = b"woke"
    elif path == "/deaf":
        stuck_deaf()
        body = b"woke"
    elif path == "/gc":
        body = f"{os.getpid()} {gc.get_freeze_count()}".encode()
    else:
        body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

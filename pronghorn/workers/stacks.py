"""The Python stacks a worker aborted on --timeout leaves in the log (Gunicorn #185, #521).

Formatted in the worker's SIGABRT handler: Python runs that handler in the main thread between two
bytecodes, so a request stuck in Python code, or in a wait the signal interrupts (``time.sleep``,
a socket read), is caught where it is. The main thread's stack is the frame the handler interrupted;
with ``all_threads`` (gthread, where the app runs on the pool's threads) every other thread's too.

A worker stuck in C code never returns to the interpreter, so that handler never runs. For it, the
master sends STACK_SIGNAL before its SIGKILL: faulthandler answers it from C, in the signal handler
itself, writing every thread's stack to stderr (fd 2: the error log under --capture-output, else the
terminal or the journal) in faulthandler's own format.
"""

from __future__ import annotations

import faulthandler
import signal
import sys
import threading
import traceback
from types import FrameType


def format_stacks(main_frame: FrameType | None, all_threads: bool) -> str:
    """The stacks, most recent call last, each under a line naming its thread."""
    parts: list[str] = []
    if main_frame is not None:
        parts.append(_one("main thread", main_frame))
    if all_threads:
        names = {thread.ident: thread.name for thread in threading.enumerate()}
        current = threading.get_ident()
        for ident, frame in sys._current_frames().items():
            if ident == current:
                continue  # the main thread, shown above from where the signal interrupted it
            parts.append(_one(f"thread {names.get(ident, '?')} ({ident})", frame))
    return "\n".join(parts)


def _one(title: str, frame: FrameType) -> str:
    lines = "".join(traceback.format_stack(frame)).rstrip()
    return f"Stack of the {title} (most recent call last):\n{lines}"


# A real-time signal: nothing else in a worker (uvloop, gevent, an app) expects it. None off Linux.
STACK_SIGNAL: int | None = getattr(signal, "SIGRTMIN", None)


def answer_stack_signal() -> None:
    """In the worker: STACK_SIGNAL dumps every thread's stack to fd 2, from C."""
    if STACK_SIGNAL is not None:
        faulthandler.register(STACK_SIGNAL, file=2, all_threads=True)

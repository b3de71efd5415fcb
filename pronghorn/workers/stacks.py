"""The Python stacks a worker aborted on --timeout leaves in the log (Gunicorn #185, #521).

Formatted in the worker's SIGABRT handler: Python runs that handler in the main thread between two
bytecodes, so a request stuck in Python code, or in a wait the signal interrupts (``time.sleep``,
a socket read), is caught where it is. The main thread's stack is the frame the handler interrupted;
with ``all_threads`` (gthread, where the app runs on the pool's threads) every other thread's too.
"""

from __future__ import annotations

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

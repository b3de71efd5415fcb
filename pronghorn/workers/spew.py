"""--spew: print every line a worker executes, Gunicorn's "nuclear option" for debugging.

Each executed line is printed to stdout as ``MODULE:LINENO: SOURCE``, the format of Gunicorn's
spew, so a trace from either server reads the same. It is installed in a worker right after the fork
(for the thread that serves and, through threading.settrace, for every thread started after it: the
gthread pool). Tracing costs every line a function call and a write: for debugging only.
"""

from __future__ import annotations

import linecache
import sys
import threading
from types import FrameType
from typing import Any, TextIO


class LineSpewer:
    """A trace function (sys.settrace) that writes each executed line to ``out``."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out

    def __call__(self, frame: FrameType, event: str, arg: Any) -> "LineSpewer":
        # Returning self keeps the local trace on for the frame: its 'line' events come here too.
        if event == "line":
            code = frame.f_code
            module = frame.f_globals.get("__name__", "[unknown]")
            line = linecache.getline(code.co_filename, frame.f_lineno).rstrip()
            if not line:
                line = f"Unknown code named [{code.co_name}].  VM instruction #{frame.f_lasti}"
            out = self.out if self.out is not None else sys.stdout
            out.write(f"{module}:{frame.f_lineno}: {line}\n")
        return self


def install() -> None:
    """Trace every line this process executes from now on, in this thread and in new ones."""
    spewer = LineSpewer()
    # The printing itself must not be traced, or each line would trace the write that prints it:
    # CPython turns tracing off inside a trace function, so this holds.
    sys.settrace(spewer)
    threading.settrace(spewer)

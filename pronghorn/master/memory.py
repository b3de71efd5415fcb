"""A worker's resident memory, as the master reads it for --max-worker-memory.

From ``/proc/PID/statm`` (its second field, resident pages): one small read that the kernel answers
from counters, where ``smaps_rollup`` walks every mapping of the process. RSS counts the pages a
preloaded app shares with the master too; that is what Granian's ``--workers-max-rss`` and the
operators' dashboards look at, and what the out-of-memory killer weighs.
"""

from __future__ import annotations

import os

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
MIB = 1024 * 1024
# (Where it is missing, every RSS is unknown and every worker the master holds counts as alive.)
HAVE_PROC = os.path.exists("/proc/self/statm")


def resident_bytes(pid: int) -> int | None:
    """The process's RSS in bytes; None where /proc cannot say (not Linux, or the process is gone).

    A process that has exited but is not yet reaped (a zombie: its memory is freed, its pid is
    kept until the master's waitpid) reads as all zeros: that is None too, not a worker using none.
    """
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            fields = statm.read().split()
        resident = int(fields[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident * PAGE_SIZE if resident else None

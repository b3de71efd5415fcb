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


def resident_bytes(pid: int) -> int | None:
    """The process's RSS in bytes; None where /proc cannot say (not Linux, or the process is gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            fields = statm.read().split()
        return int(fields[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None

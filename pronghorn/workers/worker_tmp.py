"""``worker.tmp``: Gunicorn's WorkerTmp (``notify()``, ``last_update()``, ``fileno()``, ``close()``)
over our shared-memory heartbeat.

Gunicorn's heartbeat is the change time of an unlinked temporary file in ``--worker-tmp-dir``; ours
is a shared-memory slot (heartbeat.py). ``notify()`` and ``last_update()`` read and write that slot,
with Gunicorn's meaning: ``time.monotonic() - worker.tmp.last_update()`` is how long the worker has
been silent, in the master and in the worker.

The file exists only when asked for, as nothing is written to disk unless configured:

- with ``--worker-tmp-dir DIR`` (Gunicorn users set /dev/shm), each worker gets Gunicorn's file
  there, made before the fork, unlinked, owned by ``--user``/``--group``, and every heartbeat sets its
  times too, so whatever watched Gunicorn's file sees the same;
- without it, ``fileno()`` makes one in the system's temporary directory the first time it is
  called (code written for Gunicorn may fstat it or close it on exec).
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import IO

from .heartbeat import Heartbeat


class WorkerTmp:
    __slots__ = ("_heartbeat", "_file", "_owner")

    def __init__(self, heartbeat: Heartbeat, directory: str | None = None,
                 owner: tuple[int, int] = (-1, -1)) -> None:
        self._heartbeat = heartbeat
        self._file: IO[bytes] | None = None
        self._owner = owner
        if directory:
            if not os.path.isdir(directory):
                raise RuntimeError(f"{directory} doesn't exist. Can't create workertmp.")
            self._make(directory)

    def _make(self, directory: str | None) -> IO[bytes]:
        fd, name = tempfile.mkstemp(prefix="wpronghorn-", dir=directory)
        try:
            # The worker, once it runs as --user/--group, must be able to touch it.
            uid, gid = self._owner
            if (uid != -1 and uid != os.geteuid()) or (gid != -1 and gid != os.getegid()):
                os.chown(name, uid, gid)
            os.unlink(name)  # nothing left behind, whatever happens to the worker
            self._file = os.fdopen(fd, "w+b", 0)
        except BaseException:
            os.close(fd)
            raise
        return self._file

    def notify(self) -> None:
        self._heartbeat.tick()
        if self._file is not None:
            now = time.monotonic()
            os.utime(self._file.fileno(), (now, now))

    def last_update(self) -> float:
        return self._heartbeat.last_tick

    def fileno(self) -> int:
        file = self._file if self._file is not None else self._make(None)
        return file.fileno()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

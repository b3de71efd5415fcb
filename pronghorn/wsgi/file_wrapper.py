"""wsgi.file_wrapper: lets the worker send a real file with os.sendfile instead of through Python."""

from __future__ import annotations

import os
from typing import Any, Iterator


class FileWrapper:
    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> Iterator[bytes]:
        read = self.filelike.read
        while True:
            data = read(self.blksize)
            if not data:
                return
            yield data

    def sendfile_range(self) -> tuple[int, int, int] | None:
        """(fd, offset, count) when the file can go out through os.sendfile, else None."""
        try:
            fd = self.filelike.fileno()
            offset = self.filelike.tell()
            size = os.fstat(fd).st_size
        except (AttributeError, OSError, ValueError):
            return None
        import stat

        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return fd, offset, max(size - offset, 0)

"""Where a request body waits for the application: memory for small bodies, a temporary file past
1 MiB, so a large upload costs disk, not worker memory."""

from __future__ import annotations

import io
import tempfile
from typing import BinaryIO

SPOOL_LIMIT = 1024 * 1024


class BodyBuffer:
    __slots__ = ("_file", "_size")

    def __init__(self) -> None:
        self._file: BinaryIO = io.BytesIO()
        self._size = 0

    def write(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > SPOOL_LIMIT and isinstance(self._file, io.BytesIO):
            spooled = tempfile.TemporaryFile()
            spooled.write(self._file.getbuffer())
            self._file = spooled
        self._file.write(data)

    @property
    def size(self) -> int:
        return self._size

    def as_input(self) -> BinaryIO:
        """The body as wsgi.input: read(), read(n), readline(n), readlines(), iteration, b"" at the end."""
        self._file.seek(0)
        return self._file


EMPTY_INPUT_BYTES = b""


def empty_input() -> BinaryIO:
    return io.BytesIO(EMPTY_INPUT_BYTES)

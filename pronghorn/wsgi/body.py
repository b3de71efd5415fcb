"""Where a request body waits for the application: memory for small bodies, a temporary file past
1 MiB (in tmp_upload_dir when it is set), so a large upload costs disk, not worker memory."""

from __future__ import annotations

import io
from typing import Any, BinaryIO, Callable, Final, Iterator

from ..http.events import Fields

SPOOL_LIMIT = 1024 * 1024


class BodyBuffer:
    """A request body as it arrives. In memory it is kept as the pieces the connection handed over
    (immutable bytes), joined once when the app gets it: a body that came in one piece reaches
    wsgi.input without a copy (BytesIO shares the bytes it starts from, and a read of all of it
    returns them), where writing into a BytesIO and reading back cost two copies of every byte."""

    __slots__ = ("_pieces", "_file", "_size", "_spool_dir", "trailers")

    def __init__(self, spool_dir: str | None = None) -> None:
        self._pieces: list[bytes] = []
        self._spool_dir = spool_dir  # tmp_upload_dir; None: tempfile's choice ($TMPDIR, /tmp)
        self._file: BinaryIO | None = None  # the temporary file, once past SPOOL_LIMIT
        self._size = 0
        # A chunked body's trailer fields: the driver sets them from the EndOfMessage that ends it.
        self.trailers: Fields = ()

    def write(self, data: bytes) -> None:
        self._size += len(data)
        if self._file is not None:
            self._file.write(data)
            return
        self._pieces.append(data)
        if self._size > SPOOL_LIMIT:
            import tempfile  # here: most workers never spool, and it costs a worker ~1 MiB

            spooled = tempfile.TemporaryFile(dir=self._spool_dir)
            spooled.writelines(self._pieces)
            self._pieces = []
            self._file = spooled

    @classmethod
    def holding(cls, data: bytes) -> "BodyBuffer":
        """A body that arrived whole, in one piece."""
        body = cls()
        body._pieces.append(data)
        body._size = len(data)
        return body

    @property
    def size(self) -> int:
        return self._size

    def as_input(self) -> BinaryIO:
        """The body as wsgi.input: read(), read(n), readline(n), readlines(), iteration, b"" at the end."""
        if self._file is not None:
            self._file.seek(0)
            return self._file
        pieces = self._pieces
        return io.BytesIO(pieces[0] if len(pieces) == 1 else b"".join(pieces))


def trailer_list(trailers: Fields) -> list[tuple[str, str]]:
    """``environ["pronghorn.trailers"]``: a chunked body's trailer fields, as str pairs."""
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in trailers]


EMPTY_INPUT_BYTES: Final = b""


def empty_input() -> BinaryIO:
    return io.BytesIO(EMPTY_INPUT_BYTES)


class DeferredInput:
    """wsgi.input for a request that sent ``Expect: 100-continue``: nothing is read (and no 100
    Continue is sent) until the application first asks for the body. ``fetch`` does that work and
    returns the complete body."""

    def __init__(self, fetch: Callable[[], BodyBuffer]) -> None:
        self._fetch: Callable[[], BodyBuffer] | None = fetch
        self._file: BinaryIO | None = None
        # The environ this is the wsgi.input of, when its body is chunked (EnvironBuilder sets it):
        # the trailers, known only once the body is read, go there.
        self.environ: dict[str, Any] | None = None

    @property
    def consumed(self) -> bool:
        """True once the body was read off the connection."""
        return self._file is not None

    def _body(self) -> BinaryIO:
        if self._file is None:
            fetch, self._fetch = self._fetch, None
            if fetch is None:
                raise OSError("the request body could not be read")
            body = fetch()
            self._file = body.as_input()
            if body.trailers and self.environ is not None:
                self.environ["pronghorn.trailers"] = trailer_list(body.trailers)
        return self._file

    def read(self, size: int | None = -1) -> bytes:
        return self._body().read(-1 if size is None else size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._body().readline(-1 if size is None else size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        return self._body().readlines(hint)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body())

"""A request body handed to the app as it arrives (the asgi worker's ``http.request`` messages).

The WSGI workers buffer a body whole before the app runs (``wsgi/body.py``). An ASGI app is called
at the head instead and receives the body piece by piece; between the connection and the app sits
this bounded queue. The connection policy writes what the HTTP core decodes (chunked framing,
limits and deadlines stay the core's and the policy's); the driver stops reading the client while
more than ``HIGH_WATER`` bytes wait for the app and reads again once the app has taken them below
``LOW_WATER``, so an upload read slowly costs at most about ``HIGH_WATER`` of memory and the
client's sends block in its own kernel buffers.
"""

from __future__ import annotations

from collections import deque

from ..http.events import Fields

# Above this many unread bytes the driver pauses reading the client; below LOW_WATER it resumes.
HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024


class StreamedBody:
    """The bytes of a body that arrived and that the app has not taken yet."""

    __slots__ = ("_pieces", "size", "trailers")

    def __init__(self) -> None:
        self._pieces: deque[bytes] = deque()
        self.size = 0  # bytes waiting for the app
        # A chunked body's trailer fields (the policy sets them from the EndOfMessage).
        self.trailers: Fields = ()

    def write(self, data: bytes) -> None:
        if data:
            self._pieces.append(data)
            self.size += len(data)

    def take(self, most: int) -> bytes:
        """Up to ``most`` of the waiting bytes, in arrival order (b"" when none wait)."""
        pieces = self._pieces
        if not pieces:
            return b""
        first = pieces[0]
        if len(first) >= most:
            if len(first) == most:
                pieces.popleft()
                self.size -= most
                return first
            pieces[0] = first[most:]
            self.size -= most
            return first[:most]
        out = [pieces.popleft()]
        got = len(first)
        while pieces and got < most:
            piece = pieces[0]
            room = most - got
            if len(piece) <= room:
                out.append(pieces.popleft())
                got += len(piece)
            else:
                out.append(piece[:room])
                pieces[0] = piece[room:]
                got = most
        self.size -= got
        return b"".join(out)

    @property
    def holding_back(self) -> bool:
        """Whether the app, not the client, is what the body waits for (reading is paused)."""
        return self.size > HIGH_WATER

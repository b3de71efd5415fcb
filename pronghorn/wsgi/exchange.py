"""start_response and the write() callable for one request (PEP 3333's rules, in one place).

The worker passes ``send`` (puts bytes on the wire) and a ResponseFramer; this class turns the app's
status, headers and body pieces into framed bytes.
"""

from __future__ import annotations

from typing import Any, Callable, Final

from ..http import HTTPError, ResponseFramer, early_hints


# A body the app gave whole but larger than this is written behind its head rather than copied into
# one buffer with it: one system call more, instead of a second copy of a large body in memory
# while the client takes it.
JOIN_LIMIT: Final = 256 * 1024


class Exchange:
    """One response's start_response, write() and framing. It is also the request's
    ``environ["wsgi.early_hints"]`` (calling it sends a 103): the exchange exists for every request
    anyway, so the key costs a dict store and no object of its own."""

    __slots__ = ("framer", "_send", "_date", "_server", "status", "headers", "head_sent")

    def __init__(self, framer: ResponseFramer, send: Callable[[bytes], None], date: bytes,
                 server: bytes) -> None:
        self.framer = framer
        self._send = send
        self._date = date
        self._server = server
        self.status: Any = None  # (the app's, unchecked: see start_response)
        self.headers: Any = None
        self.head_sent = False

    # (the app's status and headers are Any: PEP 3333 says str and a list of str pairs, and what
    # else an app gives is its error, a 500 from ResponseFramer.head; compiled by mypyc, a narrower
    # annotation would be checked here first, and raise the app a TypeError instead)
    def start_response(self, status: Any, headers: Any,
                       exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.head_sent:
                    # Too late to change the response: PEP 3333 says re-raise the app's error.
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response() called a second time without exc_info")
        if type(headers) is not list:
            raise HTTPError(500, "response headers must be a list")
        self.status = status
        self.headers = headers
        return self.write

    def __call__(self, headers: Any) -> None:
        """``wsgi.early_hints(headers)``, as Gunicorn 27 has it: a ``103 Early Hints`` with these
        fields, sent at once; nothing once the response's head is out (it would break the framing)
        or to an HTTP/1.0 client (which knows no 1xx). A name or value that could split the
        response raises HTTPError(500)."""
        if self.head_sent or not self.framer.interim_allowed:
            return
        self._send(early_hints(headers))

    def redirect(self, send: Callable[[bytes], None]) -> None:
        """Send through ``send`` from now on (the app took the connection over)."""
        self._send = send

    def head_bytes(self, body_length: int | None = None) -> bytes:
        """The response head, once. Raises HTTPError(500) for an invalid status or header."""
        if self.status is None or self.headers is None:
            raise HTTPError(500, "the application did not call start_response()")
        head = self.framer.head(self.status, self.headers, self._date, self._server, body_length)
        self.head_sent = True
        return head

    def write(self, data: bytes) -> None:
        """PEP 3333's write(): sends at once, head first."""
        if type(data) is not bytes:
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        out = b"" if self.head_sent else self.head_bytes()
        self._send(out + self.framer.body(data))

    def write_piece(self, piece: Any) -> bool:
        """One piece of a response iterable being streamed, written at once (head first); False for
        an empty piece, which writes nothing (it must not end a chunked body). Raises TypeError
        for a piece that is not bytes."""
        if type(piece) is not bytes:
            raise TypeError(f"the application returned {type(piece).__name__}, not bytes")
        if not piece:
            return False
        self.write(piece)
        return True

    def whole(self, pieces: list[bytes] | tuple[bytes, ...]) -> bytes:
        """A body the app returned as a list or tuple, framed behind the head: the body is all in
        memory, so its length is known (keep-alive without the app's Content-Length, no chunked
        framing). Returns the response's bytes, as one buffer so that one write sends it; a body
        past JOIN_LIMIT is not copied behind the head: the head (and all pieces but the last)
        are sent first, and the last piece returned as it is."""
        framer = self.framer
        if len(pieces) == 1 and not self.head_sent:  # the usual body: one piece
            piece = pieces[0]
            if type(piece) is not bytes:
                raise TypeError(f"the application returned {type(piece).__name__}, not bytes")
            if self.status is None or self.headers is None:
                raise HTTPError(500, "the application did not call start_response()")
            if len(piece) > JOIN_LIMIT:
                self._send(self.head_bytes(len(piece)))
                return framer.body(piece) + framer.end()  # (+ b"": the same object, no copy)
            out = framer.whole(self.status, self.headers, self._date, self._server, piece)
            self.head_sent = True  # (after: a status or header refused above is still a 500)
            return out
        for piece in pieces:
            if type(piece) is not bytes:
                raise TypeError(f"the application returned {type(piece).__name__}, not bytes")
        total = sum(map(len, pieces))
        parts = [b"" if self.head_sent else self.head_bytes(total)]
        parts.extend(map(framer.body, pieces))
        parts.append(framer.end())
        if total <= JOIN_LIMIT:
            return b"".join(parts)
        end = parts.pop()
        last = parts.pop() + end  # (a last piece behind an empty end is not copied)
        for part in parts:
            if part:
                self._send(part)
        return last

"""A strict decoder for the chunked transfer coding (RFC 9112 section 7.1).

Why not llhttp's: through httptools, llhttp cannot be stopped at the end of a message, so it would go on
to parse whatever follows a chunked body (the next pipelined request) with its own request-line rules.
Decoding chunks here keeps every message boundary in our hands. The grammar is small and unforgiving:
hex digits only (no sign, no whitespace before the size), extensions as RFC 9112 spells them, CRLF
everywhere, a size that fits in 64 bits.
"""

from __future__ import annotations

import re

from .errors import HTTPError

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_EXTENSION = rb"[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?"
_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]+)((?:" + _EXTENSION + rb")*)")
_FIELD_LINE = re.compile(rb"(" + _TOKEN + rb"):[ \t]*((?:[!-~\x80-\xff](?:[ \t]*[!-~\x80-\xff])*)?)[ \t]*")

# Fields a trailer may not carry (RFC 9110 6.5.1): framing, routing, request modifiers, authentication,
# and anything the server must act on before the body. A request with any of them is refused.
FORBIDDEN_TRAILERS = frozenset(
    name.encode()
    for name in (
        "content-length", "transfer-encoding", "host", "connection", "keep-alive", "upgrade", "te",
        "trailer", "expect", "range", "if-match", "if-none-match", "if-modified-since",
        "if-unmodified-since", "if-range", "authorization", "proxy-authorization", "cookie",
        "set-cookie", "content-type", "content-encoding", "content-range", "max-forwards",
        "cache-control", "proxy-connection",
    )
)

_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)
_MAX_SIZE_DIGITS = 16


class ChunkedDecoder:
    """Feed it the bytes that follow a chunked request's head; it returns body pieces and says when
    the message ended and how many bytes of the input were left over (the next request's)."""

    __slots__ = ("_state", "_remaining", "_limits", "trailers", "done", "_body_limit",
                 "_declared")

    def __init__(self, line_limit: int, field_limit: int, field_count: int, body_limit: int = 0) -> None:
        self._state = _SIZE
        self._remaining = 0
        self._limits = (line_limit, field_limit, field_count)
        self._body_limit = body_limit  # 0: no limit
        self._declared = 0
        self.trailers: list[tuple[bytes, bytes]] = []
        self.done = False

    def decode(self, buf: bytearray | bytes, start: int) -> tuple[list[bytes], int]:
        """Decode from ``buf[start:]``; return (body pieces, index of the first byte not consumed)."""
        pieces: list[bytes] = []
        pos = start
        end = len(buf)
        line_limit, field_limit, field_count = self._limits
        while pos < end:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, end - pos)
                pieces.append(bytes(buf[pos:pos + take]))
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = _DATA_END
            elif state == _DATA_END:
                if end - pos < 2:
                    if buf[pos] != 13:
                        raise HTTPError(400, "chunk data not followed by CRLF")
                    break
                if buf[pos] != 13 or buf[pos + 1] != 10:
                    raise HTTPError(400, "chunk data not followed by CRLF")
                pos += 2
                self._state = _SIZE
            elif state == _SIZE:
                line_end = buf.find(b"\r\n", pos, pos + line_limit + 2)
                if line_end < 0:
                    _reject_partial_line(buf, pos, end, line_limit, "chunk size line")
                    break
                line = bytes(buf[pos:line_end])
                match = _SIZE_LINE.fullmatch(line)
                if match is None:
                    raise HTTPError(400, "invalid chunk size line")
                digits = match.group(1).lstrip(b"0")
                if len(digits) > _MAX_SIZE_DIGITS:
                    raise HTTPError(400, "chunk size too large")
                size = int(digits, 16) if digits else 0
                # The body limit is judged on the sizes chunks declare, in order, as each size line is
                # read: a chunk that would cross it is refused before its data arrives, and the status
                # does not depend on how much data a read happened to carry.
                self._declared += size
                if self._body_limit and self._declared > self._body_limit:
                    raise HTTPError(413, "request body too large")
                pos = line_end + 2
                if size:
                    self._remaining = size
                    self._state = _DATA
                else:
                    self._state = _TRAILER
            elif state == _TRAILER:
                line_end = buf.find(b"\r\n", pos, pos + field_limit + 2)
                if line_end < 0:
                    _reject_partial_line(buf, pos, end, field_limit, "trailer field")
                    break
                if line_end == pos:
                    pos += 2
                    self._state = _DONE
                    self.done = True
                    break
                field = _FIELD_LINE.fullmatch(buf, pos, line_end)
                if field is None:
                    raise HTTPError(400, "invalid trailer field")
                name = field.group(1)
                if name.lower() in FORBIDDEN_TRAILERS:
                    raise HTTPError(400, f"{name.decode('ascii')} is not allowed in a trailer")
                if len(self.trailers) >= field_count:
                    raise HTTPError(431, "too many trailer fields")
                self.trailers.append((name, field.group(2)))
                pos = line_end + 2
            else:
                break
        return pieces, pos


def _reject_partial_line(buf: bytearray | bytes, pos: int, end: int, limit: int, what: str) -> None:
    """An incomplete line: refuse it now if it can never become valid, else wait for more bytes."""
    if end - pos > limit + 1:
        raise HTTPError(400, f"{what} too long")
    cr = buf.find(b"\r", pos, end - 1)
    lf = buf.find(b"\n", pos, end)
    if cr >= 0 or lf >= 0:
        raise HTTPError(400, f"bare CR or LF in a {what}")

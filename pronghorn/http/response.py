"""Response framing, sans-IO: the server, not the app, decides how the body is delimited.

In order of preference: no body at all (HEAD, 1xx, 204, 304); the app's Content-Length (a longer body is
cut, a shorter one forces the connection closed, since the client would wait for bytes that never come);
chunked on HTTP/1.1; else delimited by closing the connection.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any, Final, Iterable, cast

from .cache import OBJECT_OVERHEAD, BoundedCache
from .chunked import FORBIDDEN_TRAILERS
from .errors import HTTPError

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_STATUS = re.compile(r"([1-9][0-9][0-9]) [\t -~\x80-\xff]*")
# A field value may hold visible characters, obs-text, SP and HTAB: nothing that ends a line.
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]")

_NONE: Final = 0
_LENGTH: Final = 1
_CHUNKED: Final = 2
_CLOSE: Final = 3
_CONNECTION_CLOSE: Final = b"Connection: close\r\n"

# Headers the server owns: the app's are dropped (framing) or read for meaning (Connection: close).
_HOP_BY_HOP = frozenset({"connection", "transfer-encoding", "keep-alive", "proxy-connection"})


class _AppSection:
    """What the app's status and headers say, checked and serialized once: the status line and the
    app's own fields (without the hop-by-hop ones the server owns)."""

    __slots__ = ("text", "code", "content_length", "have_date", "have_server", "close", "plain",
                 "heads")

    def __init__(self, text: bytes, code: int, content_length: int | None, have_date: bool,
                 have_server: bool, close: bool) -> None:
        self.text = text
        self.code = code
        self.content_length = content_length
        self.have_date = have_date
        self.have_server = have_server
        self.close = close
        # A response with a body that lets the connection live: ResponseFramer.whole's fast path.
        self.plain = code >= 200 and code not in (204, 304) and not close
        # Indexed by keep-alive (False, True): (date, server, the whole head) for a response with
        # the app's own Content-Length that closes the connection or keeps an HTTP/1.1 one. The
        # Date changes once a second, so each head is made once a second. Each is one tuple,
        # replaced whole: gthread's threads read it while another may replace it.
        self.heads: list[tuple[bytes, bytes, bytes]] = [(b"", b"", b""), (b"", b"", b"")]

    def closing_lines(self, date: bytes, server: bytes) -> bytes:
        """Date and Server (unless the app gave its own) and the blank line that ends the head."""
        return b"".join((b"" if self.have_date else b"Date: " + date + b"\r\n",
                         b"" if self.have_server else b"Server: " + server + b"\r\n",
                         b"\r\n"))


_SectionKey = tuple[str, tuple[tuple[str, str], ...]]


class ResponseHeadCache(BoundedCache[_SectionKey, _AppSection]):
    """One worker's memory of the status-and-header combinations its app answered with, each
    validated and serialized once (``ResponseFramer(..., cache)``); the worker creates it.

    Apps answer with the same few combinations over and over (a view's Content-Type, Vary, ...).
    What it may hold: (status, the app's headers as a tuple) → the _AppSection made from exactly
    those strings, only for combinations that passed every check (an invalid one raises before it
    is put). Why a hit is correct: the section (status code, serialized fields, Content-Length,
    Connection: close, Date and Server present) is a function of those strings alone; the key
    holds them, and tuples and strs are immutable, so a later response with equal ones would make
    an equal section. Its ``heads`` remember whole heads with one Date and Server, and are used only
    when both are the very objects given again. Bounded in bytes (by ``section_size``), since a
    combination that changes per response (a cookie, a length) comes and goes, and an app may echo
    what a client sent into a header."""

    __slots__ = ()

    def __init__(self, max_bytes: int = 256 * 1024) -> None:
        super().__init__(max_bytes)

    def section(self, status: Any, headers: Any) -> _AppSection:
        # (Any: the app's own, checked by _make_section, never by the annotation; see head)
        try:
            key = (status, tuple(headers))
            section = self.young.get(key) or self.get(key)
        except TypeError:  # something unhashable: not cacheable, and _make_section says what is wrong
            return _make_section(status, headers)
        if section is None:
            section = _make_section(status, headers)
            self.put(key, section, section_size(section, len(headers)))
        return section


def section_size(section: _AppSection, fields: int) -> int:
    """The bytes a ResponseHeadCache entry pins: the key's strings (at most the serialized text's
    length), the text, and the two whole heads it may remember (the text and ~100 bytes of Date,
    Server and framing each), in four objects per field (name, value, pair, and the line's pieces)
    and a dozen more."""
    return 4 * len(section.text) + 256 + OBJECT_OVERHEAD * (4 * fields + 12)


def _make_section(status: object, headers: Iterable[object]) -> _AppSection:
    """Validate and serialize what the app gave (its types too: PEP 3333 says str, and anything else
    is the app's error, a 500)."""
    if type(status) is not str or (match := _STATUS.fullmatch(status)) is None:
        raise HTTPError(500, f"invalid status line from the application: {status!r}")
    code = int(match.group(1))
    lines = ["HTTP/1.1 ", status, "\r\n"]
    content_length: int | None = None
    have_date = have_server = close = False
    for field in headers:
        try:
            # PEP 3333 says tuples; a two-item list is taken too, as Gunicorn does
            name, value = cast(Any, field)  # (not a tuple type: compiled, it would be checked)
        except (TypeError, ValueError):
            raise HTTPError(500, f"invalid header from the application: {field!r}") from None
        if type(name) is not str or type(value) is not str or not _TOKEN.fullmatch(name):
            raise HTTPError(500, f"invalid header name from the application: {name!r}")
        if _BAD_VALUE.search(value):
            raise HTTPError(500, f"invalid value for header {name!r} from the application")
        # Sent without the whitespace around it, as Gunicorn sends it: Django's Set-Cookie values
        # begin with a space (its cookies' output(header="")), which would make two after the colon.
        value = value.strip()
        lname = name.lower()
        if lname == "content-length":
            if not value.isdigit() or not value.isascii():
                raise HTTPError(500, f"invalid Content-Length from the application: {value!r}")
            if content_length is not None and int(value) != content_length:
                raise HTTPError(500, "conflicting Content-Length from the application")
            if content_length is not None:
                continue
            content_length = int(value)
            if code < 200 or code == 204:
                continue  # RFC 9110 8.6: not in a 1xx or 204
        elif lname in _HOP_BY_HOP:
            if lname == "connection" and "close" in (t.strip() for t in value.lower().split(",")):
                close = True
            continue
        elif lname == "date":
            have_date = True
        elif lname == "server":
            have_server = True
        lines += (name, ": ", value, "\r\n")
    return _AppSection("".join(lines).encode("latin-1"), code, content_length, have_date,
                       have_server, close)


class ResponseFramer:
    """Serializes one response. Create it, call ``head()`` once, ``body()`` for every piece, ``end()``
    once; then read ``keep_alive`` to know whether the connection may carry another request."""

    __slots__ = ("keep_alive", "_mode", "_remaining", "_version", "_head_request", "status_code",
                 "sent", "_cache")

    def __init__(self, version: tuple[int, int], keep_alive: bool, head_request: bool,
                 cache: ResponseHeadCache | None = None) -> None:
        """``cache``: the worker's ResponseHeadCache; None validates every response head anew."""
        if cache is None:
            # A cache that keeps nothing, rather than None: the hot path then needs no test for it.
            cache = ResponseHeadCache(0)
        self._cache = cache
        self.keep_alive = keep_alive
        self._version = version
        self._head_request = head_request
        self._mode = _CLOSE
        self._remaining = 0
        self.status_code = 0
        self.sent = 0  # body bytes put on the wire, for the access log

    @property
    def interim_allowed(self) -> bool:
        """Whether the client may be sent 1xx interim responses (HTTP/1.1 and later)."""
        return self._version >= (1, 1)

    @property
    def chunked(self) -> bool:
        """Whether the body goes out in chunks (the ``resp.chunked`` of hooks and loggers)."""
        return self._mode == _CHUNKED

    def head(self, status: Any, headers: Any, date: bytes, server: bytes,
             body_length: int | None = None) -> bytes:
        """The status line and header section. ``body_length`` is a length the server knows for
        certain (a one-item body) and may use when the app gave none. Raises HTTPError(500) for a
        status or header the app should not have produced."""
        return self._head(self._cache.section(status, headers), date, server, body_length)

    def _head(self, section: _AppSection, date: bytes, server: bytes,
              body_length: int | None) -> bytes:
        code = self.status_code = section.code
        if section.close:
            self.keep_alive = False
        content_length = section.content_length
        framing = b""
        if self._head_request or code < 200 or code in (204, 304):
            self._mode = _NONE
            if (self._head_request and content_length is None and body_length is not None
                    and code >= 200 and code not in (204, 304)):
                # HEAD answers with the length GET would have (RFC 9110 9.3.2).
                framing = b"Content-Length: %d\r\n" % body_length
        elif content_length is not None:
            self._mode = _LENGTH
            self._remaining = content_length
        elif body_length is not None:
            self._mode = _LENGTH
            self._remaining = body_length
            framing = b"Content-Length: %d\r\n" % body_length
        elif self._version == (1, 1):
            self._mode = _CHUNKED
            framing = b"Transfer-Encoding: chunked\r\n"
        elif self._version >= (2, 0):
            # HTTP/2 frames the body itself (DATA frames, END_STREAM): bytes as they are, and the
            # connection lives on (http/h2.py).
            self._mode = _CLOSE
            return section.text + section.closing_lines(date, server)
        else:
            self._mode = _CLOSE
            self.keep_alive = False

        if not self.keep_alive:
            framing += _CONNECTION_CLOSE
        elif self._version == (1, 0):
            framing += b"Connection: keep-alive\r\n"
        return section.text + framing + section.closing_lines(date, server)

    def whole(self, status: str, headers: list[tuple[str, str]], date: bytes, server: bytes,
              body: bytes) -> bytes:
        """``head(..., len(body)) + body(body) + end()``: a response whose body the app gave in one
        piece, framed at once. The commonest responses (a body with the app's own Content-Length,
        matching it, on a keep-alive HTTP/1.1 connection or one that closes after it) take a short
        way: their head is made once a second. Every other goes the general way."""
        try:  # (the cache's young generation, looked up inline: every small response's path)
            section = self._cache.young.get((status, tuple(headers)))
        except TypeError:  # unhashable: section() says what is wrong
            section = None
        if section is None:
            section = self._cache.section(status, headers)
        keep_alive = self.keep_alive
        if (section.plain and section.content_length == len(body) and not self._head_request
                and (self._version == (1, 1) or not keep_alive)):
            self.status_code = section.code
            self._mode = _LENGTH  # with nothing remaining: the whole body is here
            self.sent = len(body)
            last = section.heads[keep_alive]
            if last[0] is not date or last[1] is not server:
                last = section.heads[keep_alive] = (
                    date, server, b"".join((section.text, b"" if keep_alive else _CONNECTION_CLOSE,
                                            section.closing_lines(date, server))))
            return last[2] + body
        return self._head(section, date, server, len(body)) + self.body(body) + self.end()

    def body(self, data: bytes) -> bytes:
        mode = self._mode
        if mode == _LENGTH:
            remaining = self._remaining
            if len(data) > remaining:
                data = data[:remaining]
            self._remaining = remaining - len(data)
            self.sent += len(data)
            return data
        if mode == _CHUNKED:
            if not data:
                return b""
            self.sent += len(data)
            return b"%x\r\n%b\r\n" % (len(data), data)
        if mode == _CLOSE:
            self.sent += len(data)
            return data
        return b""

    def end(self) -> bytes:
        mode = self._mode
        if mode == _CHUNKED:
            return b"0\r\n\r\n"
        if mode == _LENGTH and self._remaining:
            self.keep_alive = False  # the client is owed bytes it will never get: only a close ends it
        return b""

    def end_with_trailers(self, fields: Iterable[tuple[str, str]]) -> bytes:
        """``end()``, carrying trailer fields when the body is chunked (else they cannot be sent
        and are dropped: a Content-Length body, HTTP/1.0, HEAD). A field that may not be a
        trailer (RFC 9110 6.5.1: framing, routing, authentication, content metadata) is dropped;
        a name or value that could split the response raises HTTPError(500), as in a head."""
        if self._mode != _CHUNKED:
            return self.end()
        lines = [b"0\r\n"]
        for name, value in fields:
            if type(name) is not str or type(value) is not str or not _TOKEN.fullmatch(name):
                raise HTTPError(500, f"invalid trailer name from the application: {name!r}")
            if _BAD_VALUE.search(value):
                raise HTTPError(500, f"invalid value for trailer {name!r} from the application")
            encoded = name.encode("latin-1")
            if encoded.lower() in FORBIDDEN_TRAILERS:
                continue
            lines.append(b"%b: %b\r\n" % (encoded, value.strip().encode("latin-1")))
        lines.append(b"\r\n")
        return b"".join(lines)

    def reserve(self, count: int) -> int:
        """For bytes sent around body() (sendfile): how many of ``count`` may go out unframed.
        Only valid when the framing is not chunked (the caller sized the head for the file)."""
        mode = self._mode
        if mode == _CHUNKED:
            raise RuntimeError("reserve() on a chunked response")
        if mode == _NONE:
            return 0
        if mode == _LENGTH:
            count = min(count, self._remaining)
            self._remaining -= count
        self.sent += count
        return count


_REASONS = MappingProxyType({
    400: "Bad Request", 404: "Not Found", 408: "Request Timeout", 411: "Length Required",
    413: "Content Too Large", 414: "URI Too Long", 417: "Expectation Failed",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
    503: "Service Unavailable", 505: "HTTP Version Not Supported",
})


def early_hints(headers: Iterable[object]) -> bytes:
    """A ``103 Early Hints`` interim response (RFC 8297) with the app's fields (str or latin-1 bytes
    pairs, as Gunicorn takes them), checked as a final response's are: HTTPError(500) for a name
    that is not a token or a value that would end a line."""
    lines = [b"HTTP/1.1 103 Early Hints\r\n"]
    for field in headers:
        try:
            name, value = cast(Any, field)  # (not a tuple type: compiled, it would be checked)
        except (TypeError, ValueError):
            raise HTTPError(500, f"invalid early hint from the application: {field!r}") from None
        if type(name) is bytes:
            name = name.decode("latin-1")
        if type(value) is bytes:
            value = value.decode("latin-1")
        if type(name) is not str or type(value) is not str or not _TOKEN.fullmatch(name):
            raise HTTPError(500, f"invalid early hint name from the application: {name!r}")
        if _BAD_VALUE.search(value):
            raise HTTPError(500, f"invalid value for early hint {name!r} from the application")
        value = value.strip(" \t")
        lines.append(f"{name}: {value}\r\n".encode("latin-1"))
    lines.append(b"\r\n")
    return b"".join(lines)


def reason_phrase(status: int) -> str:
    return _REASONS.get(status, "Error")


def error_response(status: int, detail: str, date: bytes, server: bytes) -> bytes:
    """A complete response that refuses a request and announces the close."""
    body = f"{status} {reason_phrase(status)}: {detail}\n".encode("latin-1", "replace")
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
        b"Connection: close\r\nDate: %b\r\nServer: %b\r\n\r\n%b"
        % (status, reason_phrase(status).encode(), len(body), date, server, body)
    )


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

"""Response framing, sans-IO: the server, not the app, decides how the body is delimited.

In order of preference: no body at all (HEAD, 1xx, 204, 304); the app's Content-Length (a longer body is
cut, a shorter one forces the connection closed, since the client would wait for bytes that never come);
chunked on HTTP/1.1; else delimited by closing the connection.
"""

from __future__ import annotations

import re

from .errors import HTTPError

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_STATUS = re.compile(r"([1-9][0-9][0-9]) [\t -~\x80-\xff]*")
# A field value may hold visible characters, obs-text, SP and HTAB: nothing that ends a line.
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]")

_NONE, _LENGTH, _CHUNKED, _CLOSE = range(4)

# Headers the server owns: the app's are dropped (framing) or read for meaning (Connection: close).
_HOP_BY_HOP = frozenset({"connection", "transfer-encoding", "keep-alive", "proxy-connection"})


# Header fields already validated, (name, value) → lower-cased name. Apps send the same few fields
# (Content-Type, Vary, ...) with every response; checking each once saves two regex scans per field.
# Bounded: a value that changes per response (a cookie, a length) would otherwise grow it forever.
_CHECKED: dict[tuple[str, str], str] = {}
_CHECKED_MAX = 1024


def _check_header(name: object, value: object) -> str:
    if name.__class__ is not str or value.__class__ is not str or not _TOKEN.fullmatch(name):  # type: ignore[arg-type]
        raise HTTPError(500, f"invalid header name from the application: {name!r}")
    if _BAD_VALUE.search(value):  # type: ignore[arg-type]
        raise HTTPError(500, f"invalid value for header {name!r} from the application")
    lname = name.lower()  # type: ignore[attr-defined]
    if len(_CHECKED) >= _CHECKED_MAX:
        _CHECKED.clear()
    _CHECKED[(name, value)] = lname  # type: ignore[index]
    return lname


class ResponseFramer:
    """Serializes one response. Create it, call ``head()`` once, ``body()`` for every piece, ``end()``
    once; then read ``keep_alive`` to know whether the connection may carry another request."""

    __slots__ = ("keep_alive", "_mode", "_remaining", "_version", "_head_request", "status_code",
                 "sent")

    def __init__(self, version: tuple[int, int], keep_alive: bool, head_request: bool) -> None:
        self.keep_alive = keep_alive
        self._version = version
        self._head_request = head_request
        self._mode = _CLOSE
        self._remaining = 0
        self.status_code = 0
        self.sent = 0  # body bytes put on the wire, for the access log

    def head(self, status: str, headers: list[tuple[str, str]], date: bytes, server: bytes,
             body_length: int | None = None) -> bytes:
        """The status line and header section. ``body_length`` is a length the server knows for
        certain (a one-item body) and may use when the app gave none. Raises HTTPError(500) for a
        status or header the app should not have produced."""
        match = _STATUS.fullmatch(status) if status.__class__ is str else None
        if match is None:
            raise HTTPError(500, f"invalid status line from the application: {status!r}")
        code = self.status_code = int(match.group(1))
        lines = ["HTTP/1.1 ", status, "\r\n"]
        content_length: int | None = None
        have_date = have_server = False
        checked = _CHECKED
        for name, value in headers:
            lname = (checked.get((name, value))
                     if name.__class__ is str and value.__class__ is str else None)
            if lname is None:
                lname = _check_header(name, value)
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
                    self.keep_alive = False
                continue
            elif lname == "date":
                have_date = True
            elif lname == "server":
                have_server = True
            lines += (name, ": ", value, "\r\n")

        if self._head_request or code < 200 or code in (204, 304):
            self._mode = _NONE
            if (self._head_request and content_length is None and body_length is not None
                    and code >= 200 and code not in (204, 304)):
                # HEAD answers with the length GET would have (RFC 9110 9.3.2).
                lines += ("Content-Length: ", str(body_length), "\r\n")
        elif content_length is not None:
            self._mode = _LENGTH
            self._remaining = content_length
        elif body_length is not None:
            self._mode = _LENGTH
            self._remaining = body_length
            lines += ("Content-Length: ", str(body_length), "\r\n")
        elif self._version >= (1, 1):
            self._mode = _CHUNKED
            lines.append("Transfer-Encoding: chunked\r\n")
        else:
            self._mode = _CLOSE
            self.keep_alive = False

        if not self.keep_alive:
            lines.append("Connection: close\r\n")
        elif self._version == (1, 0):
            lines.append("Connection: keep-alive\r\n")
        prefix = "".join(lines).encode("latin-1")
        if not have_date:
            prefix += b"Date: " + date + b"\r\n"
        if not have_server:
            prefix += b"Server: " + server + b"\r\n"
        return prefix + b"\r\n"

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


_REASONS = {
    400: "Bad Request", 404: "Not Found", 408: "Request Timeout", 411: "Length Required",
    413: "Content Too Large", 414: "URI Too Long", 417: "Expectation Failed",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
    503: "Service Unavailable", 505: "HTTP Version Not Supported",
}


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

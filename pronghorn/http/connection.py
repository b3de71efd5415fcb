"""One HTTP/1.1 server connection, sans-IO: bytes in, events out.

Theory of operation
-------------------
The driver calls ``receive_data(bytes)`` with whatever the socket gave (``b""`` at end of input) and
then ``next_event()`` until it says NEED_DATA or PAUSED. A request arrives as ``Request``, then zero or
more ``Data``, then END_OF_MESSAGE. After that the connection is PAUSED: it parses nothing more until the
driver has written the response and calls ``start_next_cycle()``. That is what keeps pipelined answers
in order and keeps a client from making us parse (and buffer) requests faster than we answer them.

Any doubt about framing raises ``HTTPError``; the connection is then dead: the driver sends one error
response with ``Connection: close`` and closes. Nothing after the fault is ever parsed.

Who parses what: the request line is ours (see request_line.py for why); the header section goes
through llhttp via httptools, with a fixed request line in front, and our policy on top (Host,
Content-Length, Transfer-Encoding, Expect, limits); the body is counted (Content-Length) or decoded by
our chunked decoder (see chunked.py for why). llhttp is fed exactly the header section, never a byte
beyond it, so the message boundary is always known here.

Repeated heads. Clients repeat themselves: a keep-alive client asks for the same URL with the same
headers, a proxy's health check never changes, a load generator sends one head forever. A head that
arrived whole is parsed and checked as above once; its exact bytes then key the resulting Request in
the worker's HeadCache (see cache.py for what it may hold and why a hit is correct), and an identical
head later, on any connection of the worker, gets that same immutable object (``shared``) without
being parsed again. A head with a Content-Length body is kept too (the body is not part of it); a
chunked one is not (its head does not fix its body's length). A driver may offer a whole read to
``receive_repeated_request`` first: a read that is exactly a kept head, or a kept head and all of its
Content-Length body, is taken without copying it through the buffer (an upload's body reaches the app
as the very bytes read). Without a cache (``HTTPConnection(limits)``) every head is parsed.

The first byte. A request line begins with a method, a token; a byte that cannot begin one (a TLS
ClientHello's 0x16, a NUL, a space) is refused with a 400 as soon as it arrives, rather than after
the head's deadline: no bytes that follow could make it a request. Empty lines before a request line
are skipped first (RFC 9112 2.2), so a CR is judged once the byte after it is known.
"""

from __future__ import annotations

from typing import Final

import httptools

from .cache import HEAD_MAX, BoundedCache, HeadCache, ShapeMatcher, head_entry_size
from .chunked import ChunkedDecoder
from .errors import HTTPError
from .events import (END_OF_MESSAGE, NEED_DATA, PAUSED, Data, EndOfMessage, Event, Request,
                     make_request)
from .limits import Limits
from .request_line import RequestLine, host_is_valid, parse_request_line

# What llhttp sees in place of the real request line: any known method works, since for requests llhttp
# decides nothing by method except CONNECT (which it would turn into a tunnel).
_SYNTHETIC_LINE = b"PUT / HTTP/1.1\r\n"

_IDLE: Final = 0
_HEAD: Final = 1
_BODY_LENGTH: Final = 2
_BODY_CHUNKED: Final = 3
_DONE: Final = 4
_PAUSED: Final = 5
_ERROR: Final = 6
_CRLF: Final = b"\r\n"
_HEAD_END: Final = b"\r\n\r\n"

# Indexed by a byte: 1 for the token characters a method may begin with (RFC 9110 5.6.2), else 0.
_METHOD_START = bytes(
    int(chr(byte) in "!#$%&'*+-.^_`|~" or chr(byte).isascii() and chr(byte).isalnum())
    for byte in range(256))
_TLS_HANDSHAKE = 0x16  # the first byte of a TLS record carrying a ClientHello


class _HeaderCollector:
    """httptools' callback target for the header section.

    A field over the limits is noted, not raised: httptools reports a field only when the next one
    starts, which depends on where a read ended, while llhttp stops at a malformed byte without reporting
    the field in progress. Raising the 431 only once llhttp has seen the whole head (which
    HTTPConnection bounds by ``Limits.head_size``) makes the status independent of how the head was split.
    """

    __slots__ = ("headers", "complete", "max_count", "max_size", "error")

    def __init__(self, max_count: int, max_size: int) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.complete = False
        self.max_count = max_count
        self.max_size = max_size
        self.error: HTTPError | None = None

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.error is not None:
            return
        # Gunicorn counts the whole field line with its CRLF; llhttp has already dropped the whitespace
        # before the value, so this is "name: value\r\n" for the common single-space spelling.
        if len(name) + len(value) + 4 > self.max_size:
            self.error = HTTPError(431, "request header field too large")
            return
        headers = self.headers
        if len(headers) >= self.max_count:
            self.error = HTTPError(431, "too many request header fields")
            return
        # llhttp drops leading whitespace from a value but keeps trailing whitespace.
        headers.append((name, value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        self.complete = True

    def reset(self) -> None:
        self.headers = []
        self.complete = False
        self.error = None


def unfold(head: bytes) -> tuple[bytes, int]:
    """A header section with obsolete line folding (RFC 9112 5.2) undone as Gunicorn undoes it with
    permit_obsolete_folding: a line that starts with SP or HTAB continues the field before it, the
    pieces stripped of SP and HTAB and joined with one space. A first line that starts so is left
    for llhttp to refuse (it continues nothing).

    Also returns the size on the wire of the largest folded field: every line of it with its CRLF,
    which is what Gunicorn holds against limit_request_field_size. The joined field is shorter (each
    fold shrinks to one space), so the collector's own count of it would let a field through that
    Gunicorn refuses; 0 when nothing is folded."""
    if b"\r\n " not in head and b"\r\n\t" not in head:
        return head, 0
    lines = head.split(b"\r\n")
    joined = [lines[0]]
    wire = len(lines[0]) + 2  # the size on the wire of the field joined[-1] is
    largest = 0
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and joined[-1]:
            joined[-1] = joined[-1].rstrip(b" \t") + b" " + line.strip(b" \t")
            wire += len(line) + 2
            largest = max(largest, wire)
        else:
            joined.append(line)
            wire = len(line) + 2
    return b"\r\n".join(joined), largest


class HTTPConnection:
    """The server side of one HTTP/1.x connection."""

    __slots__ = (
        "limits", "_buf", "_state", "_eof", "_request", "_collector", "_parser", "_fed",
        "_line", "_remaining", "_decoder", "_spare", "_upgraded", "_cache", "_heads", "_known",
        "_head_key", "_shapes", "_line_bytes", "_head_size", "_varied",
    )

    def __init__(self, limits: Limits | None = None, cache: HeadCache | None = None) -> None:
        """``cache``: the worker's HeadCache, made for these same limits; None parses every head."""
        self._cache = cache
        if cache is None:
            self.limits = (limits or Limits()).normalized()
            # A table that keeps nothing, rather than None: the hot paths then need no test for it.
            self._heads: BoundedCache[bytes, tuple[Request, bytes]] = BoundedCache(0)
            self._shapes: BoundedCache[bytes, ShapeMatcher] = BoundedCache(0)
        else:
            if limits is not cache.given and not cache.serves(limits):
                raise ValueError("the HeadCache was made for other limits")
            self.limits = cache.limits
            self._heads = cache.heads
            self._shapes = cache.shapes
        self._known = self._heads.young  # (the same dict for the cache's life)
        self._head_size = self.limits.head_size if cache is None else cache.head_size
        self._head_key: bytes | None = None  # the bytes of the head being parsed, if it may be kept
        self._buf = bytearray()
        self._state = _IDLE
        self._eof = False
        self._request: Request | None = None
        self._collector: _HeaderCollector | None = None
        self._parser: httptools.HttpRequestParser | None = None
        self._fed = 0
        self._line: RequestLine | None = None
        self._remaining = 0
        self._decoder: ChunkedDecoder | None = None
        # The last head's parser and collector, when llhttp ended that message cleanly (keep-alive,
        # no body, no upgrade) and so is ready for the next: making them costs more than the
        # rest of a small request's head.
        self._spare: tuple[httptools.HttpRequestParser, _HeaderCollector] | None = None
        self._upgraded = False
        self._line_bytes = b""  # the request line being parsed, when its head may teach a shape
        # The last whole read taken was a head of a shape whose values vary: try the next as one
        # before looking it up as an identical head.
        self._varied = False

    # -- input -------------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if data:
            self._buf += data
        else:
            self._eof = True

    def receive_repeated_request(self, data: bytes) -> tuple[Request, bytes] | None:
        """A shortcut for the commonest reads: when the connection is between requests with nothing
        buffered and ``data`` is exactly one whole request whose head was seen before (see
        "Repeated heads" above), either that head alone or the head followed by all of its
        Content-Length body, take it and return the Request with its body (b"" for none). The
        connection is then where receive_data(data) and next_event() until END_OF_MESSAGE would have
        left it (PAUSED), and the body was not copied through the buffer. Otherwise None, and
        nothing was taken: go the usual way with receive_data(data)."""
        if self._state != _IDLE or self._buf:
            return None
        if len(data) <= HEAD_MAX:
            # (A client whose last head was of a varying shape sends another: hashing the whole
            # read to look it up first would cost more than the rest of matching it.)
            varied = self._varied
            whole = None if varied else self._known.get(data)
            if whole is None:
                shaped = self._repeated_shape(data, varied)
                if shaped is not None:
                    return shaped
                self._varied = False
                whole = self._heads.get(data)
                if whole is None:
                    return None  # unknown
            if whole[0].content_length:
                return None  # its body is still to come
            self._request = whole[0]
            self._state = _PAUSED
            return whole
        # An upload in one read. A key is hashed whole, so a large read is never looked up whole:
        # only what precedes the first blank line within a kept head's size is.
        end = data.find(_HEAD_END, 0, HEAD_MAX)
        if end < 0:
            return None
        start = end + 4
        kept = self._heads.get(data[:start])
        if kept is None:
            return None
        request = kept[0]
        if request.content_length != len(data) - start or request.expect_continue:
            return None  # a body not (or not only) its own, or one to ask for first
        self._request = request
        self._state = _PAUSED
        return request, data[start:]

    def _repeated_shape(self, data: bytes, varying_only: bool) -> tuple[Request, bytes] | None:
        """receive_repeated_request for a read that is exactly one head of a known shape (see
        HeadCache) without a body; None, nothing taken, for any other. ``varying_only``: not a
        shape without varying fields (whose one head is better looked up whole, shared)."""
        shapes = self._shapes
        if not shapes.generation_bytes:
            return None
        line_end = data.find(_CRLF, 0, self.limits.request_line + 2)
        if line_end < 0:
            return None
        matcher = shapes.young.get(data[:line_end])
        # (A match ends in the shape's blank line and holds no other: its constant bytes are one
        # head's, and no varying value taken holds a CR or LF; so the read is one head exactly.)
        if (matcher is None or matcher.has_body or (varying_only and not matcher.shape.varying)
                or not data.endswith(_HEAD_END)
                or len(data) - line_end - 2 > self._head_size):
            return None
        try:
            request = matcher.request_of(data, line_end + 2, self.limits.request_field_size)
        except HTTPError:
            return None  # (refused when parsed the usual way: the verdict comes from next_event)
        if request is None:
            return None
        self._varied = bool(matcher.shape.varying)
        self._request = request
        self._state = _PAUSED
        return request, b""

    def take_unparsed(self) -> bytes:
        """The bytes received and not parsed, taken away: the connection is someone else's now
        (an app took it over after its request); nothing more is parsed."""
        data = bytes(self._buf)
        self._buf.clear()
        self._state = _ERROR
        return data

    @property
    def buffered(self) -> int:
        """Bytes received and not yet parsed (read-side backpressure uses this)."""
        return len(self._buf)

    @property
    def body_left(self) -> int | None:
        """Bytes of the Content-Length body in progress still to parse (0: no body in progress);
        None for a chunked body, whose length is known only at its end."""
        state = self._state
        if state == _BODY_LENGTH:
            return self._remaining
        return None if state == _BODY_CHUNKED else 0

    @property
    def at_eof(self) -> bool:
        return self._eof

    @property
    def input_left(self) -> bool:
        """Bytes not yet parsed, or the end of input not yet acted on: between requests, the driver
        has more to parse before it reads again (``buffered or at_eof``, in one look)."""
        return bool(self._buf) or self._eof

    @property
    def idle(self) -> bool:
        """No request in progress and nothing buffered: the keep-alive timer may run."""
        return self._state == _IDLE and not self._buf

    @property
    def in_head(self) -> bool:
        """A request has started but its head is not complete: the header deadline applies."""
        return (self._state == _IDLE and bool(self._buf)) or self._state == _HEAD

    def next_event(self) -> Event:
        try:
            state = self._state
            if state == _IDLE:
                return self._read_request_line()
            if state == _HEAD:
                return self._read_head()
            if state == _BODY_LENGTH:
                return self._read_length_body()
            if state == _BODY_CHUNKED:
                return self._read_chunked_body()
            if state == _DONE:
                self._state = _PAUSED
                decoder = self._decoder
                if decoder is not None and decoder.trailers:
                    return EndOfMessage(tuple(decoder.trailers))
                return END_OF_MESSAGE
            return PAUSED if state == _PAUSED else NEED_DATA
        except HTTPError:
            self._state = _ERROR
            raise

    def start_next_cycle(self) -> None:
        """The response to the current request is complete; parse the next one."""
        if self._state != _PAUSED:
            raise RuntimeError("start_next_cycle() before the request was complete")
        self._state = _IDLE
        self._request = None
        self._decoder = None

    # -- request line ------------------------------------------------------------------------------

    def _read_request_line(self) -> Event:
        buf = self._buf
        # RFC 9112 2.2: a server SHOULD ignore at least one empty line received before the request line.
        while buf[:2] == _CRLF:
            del buf[:2]
        if not buf:
            return NEED_DATA
        first = buf[0]
        if not _METHOD_START[first] and (first != 13 or len(buf) > 1):  # (a CR alone: wait for LF)
            raise HTTPError(400, "a TLS handshake on a plain-HTTP port" if first == _TLS_HANDSHAKE
                            else "the request line does not begin with a method")
        heads = self._heads
        if heads.generation_bytes:  # (not a table that keeps nothing)
            end = buf.find(_HEAD_END, 0, HEAD_MAX)
            if end > 0:
                key = bytes(buf[:end + 4])
                kept = self._known.get(key) or heads.get(key)
                if kept is not None:  # these very bytes passed every check before
                    request = kept[0]
                    del buf[:end + 4]
                    self._request = request
                    return self._begin_body(request)
                self._head_key = key
        limit = self.limits.request_line
        end = buf.find(_CRLF, 0, limit + 2)
        if end < 0:
            # Judge the first limit + 2 bytes only, bare CR/LF before length: then a line refused for a
            # bare LF is refused for it however its bytes were split across reads (else a read that
            # ended past the limit would say 414 and one that ended just after the LF 400).
            window = buf[:limit + 2]
            if b"\n" in window or b"\r" in window[:-1]:
                raise HTTPError(400, "bare CR or LF in the request line")
            if len(buf) > limit + 1:
                raise HTTPError(414, "request line too long")
            if self._eof and buf:
                raise HTTPError(400, "incomplete request")
            return NEED_DATA
        line = bytes(buf[:end])
        cache = self._cache
        self._line = (parse_request_line(line, self.limits) if cache is None
                      else cache.request_line(line))
        shapes = self._shapes
        if shapes.generation_bytes:
            matcher = shapes.young.get(line) or shapes.get(line)
            if matcher is not None:
                shaped = self._read_shaped_head(matcher, end)
                if shaped is not None:
                    return shaped
            self._line_bytes = line
        del buf[:end + 2]
        spare = self._spare
        if spare is not None:
            self._spare = None
            parser, collector = spare
            collector.reset()
        else:
            collector = _HeaderCollector(self.limits.request_fields, self.limits.request_field_size)
            parser = httptools.HttpRequestParser(collector)
        self._collector, self._parser = collector, parser
        parser.feed_data(_SYNTHETIC_LINE)
        self._fed = 0
        self._state = _HEAD
        return self._read_head()

    # -- a head of a known shape -------------------------------------------------------------------

    def _read_shaped_head(self, matcher: ShapeMatcher, line_end: int) -> Request | None:
        """The head whose request line ends at ``line_end`` in the buffer, when it is whole there
        and of ``matcher``'s shape (see HeadCache): its Request, the head taken from the buffer.
        None, with nothing taken, when it is not (parse it as usual)."""
        buf = self._buf
        # (the blank line's CRLF follows the last field's, or the line's when there are none)
        stop = buf.find(_HEAD_END, line_end, line_end + 2 + self._head_size)
        if stop < 0:
            return None
        request = matcher.request_of(bytes(buf[:stop + 4]), line_end + 2,
                                     self.limits.request_field_size)
        if request is None:
            return None
        del buf[:stop + 4]
        self._line = None
        self._head_key = None
        self._request = request
        return self._begin_body(request)

    # -- header section ----------------------------------------------------------------------------

    def _read_head(self) -> Event:
        buf = self._buf
        if buf[:2] == _CRLF:
            end = 2
        else:
            found = buf.find(b"\r\n\r\n", max(self._fed - 3, 0))
            end = found + 4 if found >= 0 else -1
        # llhttp never sees a byte past the largest head allowed, so whether a head is refused as
        # malformed (400) or as too large (431) depends on its bytes, not on how reads split them. The
        # size is also checked when the end is found at once: the per-field limit cannot see whitespace
        # before a value (llhttp drops it), so only this bounds a head padded with it.
        head_size = self.limits.head_size
        stop = min(end if end >= 0 else len(buf), head_size)
        if stop > self._fed:
            if not self.limits.permit_obsolete_folding:
                self._feed_llhttp(memoryview(buf)[self._fed:stop])
                self._fed = stop
            elif 0 <= end <= head_size:
                # --permit-obsolete-folding: llhttp refuses folded lines, so it is given the whole
                # head at once, unfolded (only then can a line's continuation be told apart).
                unfolded, folded_size = unfold(bytes(buf[:end]))
                self._feed_llhttp(memoryview(unfolded))
                self._fed = end
                collector = self._collector
                if folded_size > self.limits.request_field_size and collector is not None:
                    # Noted like the collector's own size check, so a malformed head is still a 400.
                    collector.error = collector.error or HTTPError(
                        431, "request header field too large")
        if end > head_size or (end < 0 and len(buf) > head_size):
            raise HTTPError(431, "request header section too large")
        collector = self._collector
        assert collector is not None
        if end < 0:
            if self._eof:
                raise HTTPError(400, "incomplete request")
            return NEED_DATA
        if not collector.complete:  # cannot happen if llhttp agrees the head ended here
            raise HTTPError(400, "malformed header section")
        if collector.error is not None:
            raise collector.error
        parser = self._parser
        self._parser = None
        assert parser is not None
        key, self._head_key = self._head_key, None
        headers = tuple(collector.headers)
        # Kept for identical heads (see HeadCache): a head with every check passed, not a chunked one
        # nor one llhttp took for an Upgrade, and not larger than the cache may hold.
        heads = self._heads
        size = 0
        if key is not None and not self._upgraded:
            size = head_entry_size(key, len(headers))
        request = self._make_request(headers, size > 0 and heads.admits(size))
        if request.shared and key is not None:
            heads.put(key, (request, b""), size)
        line, self._line_bytes = self._line_bytes, b""
        if line and not request.chunked and not self._upgraded:
            self._cache.learn(line, bytes(buf[:end]), request)  # type: ignore[union-attr]
        del buf[:end]
        self._collector = None
        self._request = request
        if request.keep_alive and not request.has_body and not self._upgraded:
            self._spare = (parser, collector)
        self._upgraded = False
        return self._begin_body(request)

    def _begin_body(self, request: Request) -> Request:
        """After a head (parsed, or a repeated one): read its body as its framing says."""
        if request.chunked:
            limits = self.limits
            self._decoder = ChunkedDecoder(limits.chunk_line, limits.request_field_size,
                                           limits.request_fields, limits.request_body)
            self._state = _BODY_CHUNKED
        elif request.content_length:
            self._remaining = request.content_length
            self._state = _BODY_LENGTH
        else:
            self._state = _DONE
        return request

    def _feed_llhttp(self, data: memoryview) -> None:
        parser = self._parser
        assert parser is not None
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # "Connection: upgrade" with "Upgrade: ...": llhttp stops after the head and says so with
            # this exception (not an HttpParserError). We feed it exactly the head, so nothing is lost;
            # we never switch protocols (RFC 9110 7.8 lets a server ignore Upgrade), and the request is
            # served as an ordinary one, Upgrade header passed on, as Gunicorn does.
            self._upgraded = True  # that parser is done: the next head gets a new one
        except httptools.HttpParserError as exc:
            raise HTTPError(400, f"malformed header section: {exc}") from None
        finally:
            data.release()

    def _make_request(self, headers: tuple[tuple[bytes, bytes], ...], keep: bool) -> Request:
        """The Request for a parsed head, every check applied; ``keep``: it is to be shared (kept in
        the HeadCache) unless it turns out chunked."""
        assert self._line is not None
        method, target, path, query, version, authority = self._line
        self._line = None
        host: bytes | None = None
        host_count = 0
        content_length: int | None = None
        codings: list[bytes] | None = None
        connection: list[bytes] = []
        expect: bytes | None = None
        content_type_seen = False
        for name, value in headers:
            lname = name.lower()
            if lname == b"host":
                host_count += 1
                host = value
            elif lname == b"content-length":
                if not value.isdigit():
                    raise HTTPError(400, "invalid Content-Length")
                if content_length is not None and content_length != int(value):
                    raise HTTPError(400, "conflicting Content-Length")
                content_length = int(value)
            elif lname == b"transfer-encoding":
                codings = (codings or []) + [c.strip().lower() for c in value.split(b",")]
            elif lname == b"connection":
                connection.extend(c.strip().lower() for c in value.split(b","))
            elif lname == b"expect":
                # Several Expect fields are one list: every expectation must be one we meet.
                expect = value.lower() if expect is None else expect + b"," + value.lower()
            elif lname == b"content-type":
                if content_type_seen:
                    raise HTTPError(400, "more than one Content-Type")
                content_type_seen = True

        if host_count > 1:
            raise HTTPError(400, "more than one Host")
        if host is not None and not (host_is_valid(host) if self._cache is None
                                     else self._cache.host_is_valid(host)):
            raise HTTPError(400, "invalid Host")
        if version == (1, 1) and host_count == 0:
            raise HTTPError(400, "HTTP/1.1 request without Host")
        if authority is not None:
            host = authority  # RFC 9112 3.2.2: the target's authority replaces Host

        chunked = False
        if codings is not None:
            if content_length is not None:
                raise HTTPError(400, "both Content-Length and Transfer-Encoding")
            if version == (1, 0):
                raise HTTPError(400, "Transfer-Encoding in an HTTP/1.0 request")
            if not codings or codings[-1] != b"chunked" or codings.count(b"chunked") != 1:
                raise HTTPError(400, "Transfer-Encoding must end in chunked, once")
            if any(c not in (b"chunked", b"identity") for c in codings):
                raise HTTPError(501, "unsupported transfer coding")
            chunked = True

        body_limit = self.limits.request_body
        if body_limit and content_length is not None and content_length > body_limit:
            raise HTTPError(413, "request body too large")

        if version == (1, 1):
            keep_alive = b"close" not in connection
        else:
            keep_alive = b"keep-alive" in connection and b"close" not in connection

        expect_continue = False
        if expect is not None and version == (1, 1):
            if any(e.strip() != b"100-continue" for e in expect.split(b",")):
                raise HTTPError(417, "unsupported expectation")
            expect_continue = chunked or bool(content_length)

        return make_request(method, target, path, query, version, headers, keep_alive,
                            expect_continue, None if chunked else (content_length or 0), chunked,
                            host, keep and not chunked)

    # -- body ----------------------------------------------------------------------------------------

    def _read_length_body(self) -> Event:
        buf = self._buf
        if not buf:
            if self._eof:
                raise HTTPError(400, "incomplete request body")
            return NEED_DATA
        take = min(self._remaining, len(buf))
        if take == len(buf):
            data = bytes(buf)
            buf.clear()
        else:
            data = bytes(buf[:take])
            del buf[:take]
        self._remaining -= take
        if not self._remaining:
            self._state = _DONE
        return Data(data)

    def _read_chunked_body(self) -> Event:
        decoder = self._decoder
        assert decoder is not None and self._request is not None
        buf = self._buf
        pieces, pos = decoder.decode(buf, 0)
        if pos:
            del buf[:pos]
        if decoder.done:
            self._state = _DONE
        if pieces:
            return Data(pieces[0] if len(pieces) == 1 else b"".join(pieces))
        if decoder.done:
            return self.next_event()
        if self._eof:
            raise HTTPError(400, "incomplete chunked body")
        return NEED_DATA

"""The uwsgi protocol (nginx's ``uwsgi_pass``), sans-IO: bytes in, the same events as HTTP/1.1 out.

Theory of operation
-------------------
A uwsgi request is one packet and its body::

    modifier1 (1 byte) | datasize (2 bytes, little-endian) | modifier2 (1 byte)
    datasize bytes of vars: key size (2 bytes LE), key, value size (2 bytes LE), value; repeated
    the body: CONTENT_LENGTH bytes, unframed

The vars are CGI's (what nginx's ``uwsgi_params`` sends: REQUEST_METHOD, PATH_INFO, QUERY_STRING,
CONTENT_TYPE, CONTENT_LENGTH, HTTP_* for the client's header fields, ...). ``UWSGIConnection`` turns
them into the ``Request`` the HTTP/1.1 core makes, as Gunicorn 27 reads them: the method, PATH_INFO
as the path, QUERY_STRING, HTTP/1.1, the HTTP_* vars as header fields (``HTTP_X_FOO`` → ``X-FOO``)
with CONTENT_TYPE and CONTENT_LENGTH; then ``Data`` for the body and END_OF_MESSAGE, then PAUSED
until ``start_next_cycle()``, exactly like ``HTTPConnection``, so everything above (the connection
policy, body buffering, deadlines, the environ, the access log) is shared. The vars Gunicorn does
not carry into the environ (REQUEST_URI, SERVER_*, REMOTE_*, DOCUMENT_ROOT, ...) are read for the
scheme (HTTPS) and otherwise dropped, as there.

Two things differ from a parsed HTTP head, on purpose:

- nginx's PATH_INFO (``$document_uri``) is already percent-decoded. ``Request.path`` is "still
  percent-encoded", so every "%" in it is escaped as "%25": the environ's one decoding then gives
  PATH_INFO back as nginx sent it. (Gunicorn decodes it a second time, so ``/a%2520b`` from a client
  reaches the app as ``/a b``, and ``%252e%252e`` as ``..``, past nginx's location rules.)
- Every fault is an ``HTTPError`` like the HTTP core's, but the policy answers none of them with an
  HTTP error page: a packet that is not what nginx sends is a peer to drop, not a client to
  explain something to (the driver closes and logs one line).

Limits: the packet is at most 4 + 65535 bytes by construction (datasize is 16 bits), and the
``Limits`` of HTTP/1.1 map onto it: the vars block is held against the head's size, each var's
``key + value + 4`` against the field size, the header vars' count against the field count, the
path and query against the request line, and CONTENT_LENGTH against the body's limit. A value with
a CR, LF or NUL is refused (nginx never sends one).
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Final

from .cache import OBJECT_OVERHEAD, BoundedCache
from .errors import HTTPError
from .events import END_OF_MESSAGE, NEED_DATA, PAUSED, Data, Event, Request, make_request
from .limits import Limits

_HEADER: Final = 0
_BODY: Final = 1
_DONE: Final = 2
_PAUSED: Final = 3
_ERROR: Final = 4

_METHOD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\x00\r\n]")

# The methods requests mostly have, already known to be tokens, and their str: one lookup instead
# of the token match and the decoding.
_KNOWN_METHODS = MappingProxyType({name.encode("ascii"): name for name in (
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")})

# What each var nginx sends becomes among the request's header fields: its field name, or None for
# a var that is no field (uwsgi_params' CGI vars). A fixed table of names, never filled from
# packets: a var not in it is mapped by the rule itself (_field_name).
_NOT_A_FIELD: bytes | None = None
_VAR_FIELDS: MappingProxyType[bytes, bytes | None] = MappingProxyType({
    b"CONTENT_TYPE": b"CONTENT-TYPE", b"CONTENT_LENGTH": b"CONTENT-LENGTH",
    **{name: _NOT_A_FIELD for name in (
        b"QUERY_STRING", b"REQUEST_METHOD", b"REQUEST_URI", b"PATH_INFO", b"DOCUMENT_ROOT",
        b"SERVER_PROTOCOL", b"REQUEST_SCHEME", b"HTTPS", b"REMOTE_ADDR", b"REMOTE_PORT",
        b"SERVER_PORT", b"SERVER_NAME", b"SERVER_ADDR", b"SCRIPT_NAME", b"UWSGI_SCHEME",
        b"wsgi.url_scheme")},
    **{b"HTTP_" + name.replace(b"-", b"_"): name for name in (
        b"HOST", b"CONNECTION", b"USER-AGENT", b"ACCEPT", b"ACCEPT-LANGUAGE", b"ACCEPT-ENCODING",
        b"COOKIE", b"REFERER", b"CONTENT-TYPE", b"CONTENT-LENGTH", b"X-REAL-IP",
        b"X-FORWARDED-FOR", b"X-FORWARDED-PROTO", b"X-REQUEST-ID", b"CACHE-CONTROL",
        b"UPGRADE-INSECURE-REQUESTS", b"ORIGIN", b"AUTHORIZATION", b"IF-NONE-MATCH",
        b"IF-MODIFIED-SINCE", b"PRAGMA", b"DNT", b"SEC-FETCH-DEST", b"SEC-FETCH-MODE",
        b"SEC-FETCH-SITE", b"SEC-FETCH-USER", b"TE", b"RANGE", b"X-REQUESTED-WITH")},
})


def _field_name(key: bytes) -> bytes | None:
    """The header field a var outside _VAR_FIELDS stands for: HTTP_X_FOO is X-FOO."""
    return key[5:].replace(b"_", b"-") if key[:5] == b"HTTP_" else None


def _var_fault(block: bytes, pos: int, field_size: int) -> HTTPError:
    """What is wrong with the var at ``pos``, which the parse's one combined check found faulty
    (the checks in the order a var's bytes come)."""
    end = len(block)
    if pos + 2 > end:
        return HTTPError(400, "a uwsgi var's key size is cut short")
    size = block[pos] | block[pos + 1] << 8
    key_end = pos + 2 + size
    if key_end + 2 > end:
        return HTTPError(400, "a uwsgi var's key is cut short")
    vsize = block[key_end] | block[key_end + 1] << 8
    if key_end + 2 + vsize > end:
        return HTTPError(400, "a uwsgi var's value is cut short")
    if not size:
        return HTTPError(400, "a uwsgi var without a name")
    assert size + vsize + 4 > field_size
    return HTTPError(431, "a uwsgi var is too large")


def parse_vars(block: bytes, limits: Limits) -> dict[bytes, bytes]:
    """The vars of a packet, in order (a repeated key keeps its first place and its last value, as
    a dict fills). HTTPError for a malformed block or a var over the field size (the other
    limits, and the bytes a var may hold, are request_from_vars')."""
    found: dict[bytes, bytes] = {}
    end = len(block)
    pos = 0
    field_size = limits.request_field_size
    # One pass, one check per var on the way: a size that runs past the block is caught by the
    # final comparison (or an IndexError reading the value's size); _var_fault then says which.
    try:
        while pos < end:
            size = block[pos] | block[pos + 1] << 8
            key_end = pos + 2 + size
            vsize = block[key_end] | block[key_end + 1] << 8
            value_end = key_end + 2 + vsize
            if value_end > end or not size or size + vsize + 4 > field_size:
                raise _var_fault(block, pos, field_size)
            found[block[pos + 2:key_end]] = block[key_end + 2:value_end]
            pos = value_end
    except IndexError:
        raise _var_fault(block, pos, field_size) from None
    return found


def check_bytes(found: dict[bytes, bytes]) -> None:
    """HTTPError unless no var's name or value holds a CR, LF or NUL."""
    # (One search of the whole rather than one per var, the vars' sizes left out, which may hold
    # any byte; three memchr scans cost a fraction of a regular expression's charset test per byte.)
    text = b"".join(found) + b"".join(found.values())
    if b"\0" in text or b"\n" in text or b"\r" in text:
        raise HTTPError(400, "a uwsgi var with a CR, LF or NUL")


def request_from_vars(found: dict[bytes, bytes], limits: Limits,
                      shared: bool = False) -> tuple[Request, str | None]:
    """The Request the vars describe, and the scheme they claim (None: the listener's).
    ``shared``: the Request will be handed out again for packets of the same key (packet_key)."""
    check_bytes(found)
    method = found.get(b"REQUEST_METHOD", b"GET")
    method_name = _KNOWN_METHODS.get(method)
    if method_name is None:
        if not _METHOD.fullmatch(method):
            raise HTTPError(400, "the uwsgi REQUEST_METHOD is not a token")
        method_name = method.decode("latin-1")
    path_info = found.get(b"PATH_INFO", b"/")
    query = found.get(b"QUERY_STRING", b"")
    target = path_info + b"?" + query if query else path_info  # (Gunicorn's RAW_URI)
    if len(target) > limits.request_line:
        raise HTTPError(414, "the uwsgi PATH_INFO and QUERY_STRING are too long")
    length_text = found.get(b"CONTENT_LENGTH", b"")
    if length_text and not length_text.isdigit():
        raise HTTPError(400, "invalid uwsgi CONTENT_LENGTH")
    length = int(length_text) if length_text else 0
    if limits.request_body and length > limits.request_body:
        raise HTTPError(413, "request body too large")
    # nginx sends the body's type and length twice: as CONTENT_TYPE/CONTENT_LENGTH (uwsgi_params)
    # and among the client's fields (HTTP_CONTENT_TYPE, HTTP_CONTENT_LENGTH). One field each, the
    # last value, as Gunicorn's environ has it; a length that disagrees with the framing one is
    # refused.
    named: dict[bytes, bytes] = {}
    fields = _VAR_FIELDS
    for key, value in found.items():
        name = fields.get(key, b"")
        if name == b"":  # (not in the table)
            name = _field_name(key)
        if name is not None:
            named[name] = value
    if named.get(b"CONTENT-LENGTH", length_text) != length_text:
        raise HTTPError(400, "the uwsgi CONTENT_LENGTH and HTTP_CONTENT_LENGTH disagree")
    if len(named) > limits.request_fields:
        raise HTTPError(431, "too many header vars in the uwsgi packet")
    headers = tuple(named.items())
    connection = found.get(b"HTTP_CONNECTION")
    keep_alive = connection is None or b"close" not in (
        token.strip() for token in connection.lower().split(b","))
    scheme: str | None = None
    https = found.get(b"HTTPS")
    if https and https.lower() in (b"on", b"1", b"true"):
        scheme = "https"
    elif found.get(b"wsgi.url_scheme") in (b"http", b"https"):
        scheme = found[b"wsgi.url_scheme"].decode("ascii")
    request = make_request(method_name, target, path_info.replace(b"%", b"%25"), query, (1, 1),
                           headers, keep_alive, False, length, False, found.get(b"HTTP_HOST"),
                           shared)
    return request, scheme


#: Validated packets' Requests (see packet_key), a worker's: UWSGIConnection's ``cache``.
PacketCache = BoundedCache[tuple[tuple[bytes, bytes], ...], tuple[Request, "str | None"]]

# The vars nginx's uwsgi_params sends that change with every connection (the client's port, and its
# address) and that request_from_vars never reads: left out of a packet's key.
_VARYING_UNREAD = (b"REMOTE_PORT", b"REMOTE_ADDR")


def packet_key(found: dict[bytes, bytes]) -> tuple[tuple[bytes, bytes], ...]:
    """The key of a packet's vars in a PacketCache, once check_bytes has passed them (the vars
    in _VARYING_UNREAD are taken out of ``found``). Why a hit is correct: request_from_vars is a
    function of the vars it reads, in their order, and of the worker's limits (the cache's own);
    the key holds every var but those it never reads, in order, so equal keys give equal
    Requests and schemes, and the Request is immutable. The checks that read every var (each
    var's size in parse_vars, the bytes in check_bytes) run on every packet, before the lookup."""
    for name in _VARYING_UNREAD:
        found.pop(name, None)
    return tuple(found.items())


def packet_entry_size(key: tuple[tuple[bytes, bytes], ...]) -> int:
    """An estimate, high, of the bytes a PacketCache entry pins: the key's bytes, tuples and the
    Request, whose fields are as many again."""
    return 2 * sum(len(name) + len(value) for name, value in key) + OBJECT_OVERHEAD * (
        5 * len(key) + 20)


class UWSGIConnection:
    """The server side of one uwsgi connection: ``HTTPConnection``'s interface, one packet at a
    time. ``scheme``: what the last request's vars said (HTTPS), None for the listener's."""

    __slots__ = ("limits", "_buf", "_state", "_eof", "_remaining", "scheme", "_cache")

    def __init__(self, limits: Limits | None = None, cache: PacketCache | None = None) -> None:
        """``limits``: taken as given, normalized (a worker's are: one connection per request
        under nginx, so nothing is made per connection that need not be). ``cache``: the
        worker's PacketCache, for these limits (None: every packet makes its own Request)."""
        self.limits = limits if limits is not None else Limits().normalized()
        self._cache = cache
        self._buf = bytearray()
        self._state = _HEADER
        self._eof = False
        self._remaining = 0
        self.scheme: str | None = None

    def receive_data(self, data: bytes) -> None:
        if data:
            self._buf += data
        else:
            self._eof = True

    def receive_repeated_request(self, data: bytes) -> tuple[Request, bytes] | None:
        return None  # (no shortcut: every packet is parsed)

    def take_unparsed(self) -> bytes:
        data = bytes(self._buf)
        self._buf.clear()
        self._state = _ERROR
        return data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def body_left(self) -> int | None:
        """Bytes of the body in progress still to parse (0: none in progress); a uwsgi body is
        always framed by CONTENT_LENGTH, so never None (HTTPConnection's answer for chunked)."""
        return self._remaining if self._state == _BODY else 0

    @property
    def at_eof(self) -> bool:
        return self._eof

    @property
    def input_left(self) -> bool:
        return bool(self._buf) or self._eof

    @property
    def idle(self) -> bool:
        return self._state == _HEADER and not self._buf

    def next_event(self) -> Event:
        try:
            state = self._state
            if state == _HEADER:
                return self._read_packet()
            if state == _BODY:
                return self._read_body()
            if state == _DONE:
                self._state = _PAUSED
                return END_OF_MESSAGE
            return PAUSED if state == _PAUSED else NEED_DATA
        except HTTPError:
            self._state = _ERROR
            raise

    def start_next_cycle(self) -> None:
        if self._state != _PAUSED:
            raise RuntimeError("start_next_cycle() before the request was complete")
        self._state = _HEADER

    def _read_packet(self) -> Event:
        buf = self._buf
        if buf and buf[0] != 0:
            raise HTTPError(501, f"uwsgi modifier1 {buf[0]} is not supported (only 0, a WSGI "
                                 "request)")
        if len(buf) < 4:
            if self._eof and buf:
                raise HTTPError(400, "incomplete uwsgi packet header")
            return NEED_DATA
        size = buf[1] | buf[2] << 8
        if size > self.limits.head_size:
            raise HTTPError(431, "the uwsgi vars block is too large")
        if len(buf) < 4 + size:
            if self._eof:
                raise HTTPError(400, "incomplete uwsgi vars block")
            return NEED_DATA
        block = bytes(buf[4:4 + size])
        del buf[:4 + size]
        limits = self.limits
        found = parse_vars(block, limits)
        cache = self._cache
        if cache is None:
            request, self.scheme = request_from_vars(found, limits)
        else:
            # nginx sends the same vars for every request of a page but the client's port: the
            # Request (and the environ the builder keeps for a shared one) is made once.
            check_bytes(found)
            key = packet_key(found)
            kept = cache.young.get(key) or cache.get(key)
            if kept is None:
                size = packet_entry_size(key)
                shared = cache.admits(size)
                kept = request_from_vars(found, limits, shared)
                if shared:
                    cache.put(key, kept, size)
            request, self.scheme = kept
        length = request.content_length or 0
        if length:
            self._remaining = length
            self._state = _BODY
        else:
            self._state = _DONE
        return request

    def _read_body(self) -> Event:
        buf = self._buf
        if not buf:
            if self._eof:
                raise HTTPError(400, "incomplete request body")
            return NEED_DATA
        take = min(self._remaining, len(buf))
        data = bytes(buf[:take])
        del buf[:take]
        self._remaining -= take
        if not self._remaining:
            self._state = _DONE
        return Data(data)

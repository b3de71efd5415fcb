"""Sans-IO HTTP/2 server connection over python-hyper's ``h2``: bytes in, stream events out;
response heads and bodies in, bytes out. Imported only when HTTP/2 is configured (``h2`` is the
optional extra ``pronghorn[http2]``).

Theory of operation
-------------------
``H2Session`` wraps one ``h2.connection.H2Connection``. ``receive_data(data, now)`` returns events:
``StreamRequest`` (a stream's head, made into the same ``Request`` the HTTP/1.1 core makes, version
(2, 0)), ``StreamData``, ``StreamEnd`` (the body is complete; its Request's ``content_length`` is
what arrived), ``StreamRefused`` (a 4xx the stream is answered with: a limit, a malformed head),
``StreamGone`` (the client reset it) and ``Drained`` (a stream's queued output has all been framed).
When the connection itself is over, ``closed`` says why, after a GOAWAY in ``data_to_send()``.

RFC 9113 §8 on requests: h2 already refuses connection-specific fields, misplaced or repeated
pseudo-headers, upper-case names, ``TE`` other than trailers and a Content-Length the DATA frames
contradict (a connection error: GOAWAY). Here, on top: the HTTP/1.1 limits (fields, field size, the
request line's length as method + path, body size), a token method, a ``:path`` that is origin-form
(or ``*`` for OPTIONS), ``:authority`` becoming the Host field (and a Host that differs from it
refused), split cookies joined (§8.2.3), and CONNECT refused (no tunnels).

Responses: ``send_head`` and ``send_body`` queue per stream; what the peer's flow-control windows
allow is framed at once, the rest when its WINDOW_UPDATE comes (``Drained`` tells the driver), so
one stream's slow reader never holds the others back. The driver waits while ``pending(stream)``
is above its mark.

Defences (each with a test in tests/test_http2.py): rapid reset (CVE-2023-44487: more client
resets than twice --http2-max-concurrent-streams, at least 100, per RESET_INTERVAL seconds is a
GOAWAY ENHANCE_YOUR_CALM); CONTINUATION floods (a
header block is capped at HEADER_BLOCK_LIMIT bytes however many frames carry it, counted from the
frame headers before h2 buffers them); HPACK bombs (SETTINGS_MAX_HEADER_LIST_SIZE is advertised
and the decoder refuses a decoded list past it); SETTINGS and PING floods (more than
CONTROL_BUDGET such frames per CONTROL_INTERVAL seconds is a GOAWAY: each costs us an answer the
client may never read).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from .events import Fields, Request, make_request
from .limits import Limits
from .request_line import host_is_valid

#: The connection preface a client with prior knowledge opens with (RFC 9113 §3.4).
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

RESET_INTERVAL = 10.0
CONTROL_INTERVAL = 1.0
CONTROL_BUDGET = 200

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\x00\r\n]")
# Fields an HTTP/1.1 response head may carry that mean nothing (or something wrong) on HTTP/2.
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                         b"upgrade"})
_FRAME_HEADERS, _FRAME_CONTINUATION, _FRAME_SETTINGS, _FRAME_PING = 0x1, 0x9, 0x4, 0x6
_END_HEADERS, _ACK = 0x4, 0x1


@dataclass(frozen=True)
class H2Settings:
    """What the configuration says (--http2-*), as plain values: http/ never reads the config."""

    max_concurrent_streams: int = 100
    initial_window_size: int = 65535
    max_frame_size: int = 16384
    max_header_list_size: int = 65536  # 0: unlimited (Gunicorn's meaning)


@dataclass(frozen=True, slots=True)
class StreamRequest:
    stream_id: int
    request: Request


@dataclass(frozen=True, slots=True)
class StreamData:
    stream_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class StreamEnd:
    stream_id: int
    request: Request  # the head's Request, content_length the body's length
    trailers: Fields


@dataclass(frozen=True, slots=True)
class StreamRefused:
    stream_id: int
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class StreamGone:
    stream_id: int


@dataclass(frozen=True, slots=True)
class Drained:
    stream_id: int


H2Event = StreamRequest | StreamData | StreamEnd | StreamRefused | StreamGone | Drained


class _Inbound:
    """A request stream while its body arrives."""

    __slots__ = ("request", "received", "declared", "refused")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.received = 0
        self.declared = request.content_length
        self.refused = False


class _Outbound:
    """A response's bytes the peer's windows have not admitted yet."""

    __slots__ = ("pieces", "size", "end")

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.size = 0
        self.end = False


class _FrameWatch:
    """Frame headers read off the wire before h2 sees the bytes, for what h2 does not bound: a
    header block's size across CONTINUATION frames, and how many SETTINGS and PINGs arrive."""

    __slots__ = ("preface", "partial", "skip", "block", "control")

    def __init__(self, preface: int) -> None:
        self.preface = preface  # preface bytes still to pass over
        self.partial = b""  # the start of a frame header split across reads
        self.skip = 0  # payload bytes of the current frame still to pass over
        self.block = 0  # bytes of the header block in progress (0: none)
        self.control = 0  # SETTINGS and PING frames seen (the session resets the count)

    def feed(self, data: bytes, block_limit: int) -> bool:
        """False when a header block has grown past block_limit."""
        view = memoryview(data)
        if self.preface:
            taken = min(self.preface, len(view))
            self.preface -= taken
            view = view[taken:]
        while len(view):
            if self.skip:
                taken = min(self.skip, len(view))
                self.skip -= taken
                view = view[taken:]
                continue
            need = 9 - len(self.partial)
            head = self.partial + bytes(view[:need])
            view = view[need:]
            if len(head) < 9:
                self.partial = head
                return True
            self.partial = b""
            length = int.from_bytes(head[:3], "big")
            kind, flags = head[3], head[4]
            self.skip = length
            if kind == _FRAME_HEADERS or (kind == _FRAME_CONTINUATION and self.block):
                self.block = 0 if flags & _END_HEADERS else self.block + length + 1
                if self.block > block_limit:
                    return False
            elif kind in (_FRAME_SETTINGS, _FRAME_PING) and not flags & _ACK:
                self.control += 1
        return True


class H2Session:
    """One HTTP/2 connection, server side; see the module's docstring."""

    def __init__(self, limits: Limits, settings: H2Settings, preface_seen: bool = False,
                 upgrade_settings: bytes | None = None) -> None:
        """``upgrade_settings``: the HTTP2-Settings of an HTTP/1.1 request upgraded to h2c (its
        response goes out as stream 1, and the client's preface comes next)."""
        self.limits = limits
        self.settings = settings
        config = h2.config.H2Configuration(client_side=False, header_encoding=None,
                                           validate_inbound_headers=True,
                                           normalize_inbound_headers=True)
        conn = self.conn = h2.connection.H2Connection(config=config)
        header_list = settings.max_header_list_size
        local = {
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: settings.max_concurrent_streams,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: settings.initial_window_size,
            h2.settings.SettingCodes.MAX_FRAME_SIZE: settings.max_frame_size,
            h2.settings.SettingCodes.ENABLE_PUSH: 0,
        }
        if header_list:
            local[h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE] = header_list
        conn.local_settings = h2.settings.Settings(client=False, initial_values=local)
        if upgrade_settings is None:
            conn.initiate_connection()
        else:
            try:
                conn.initiate_upgrade_connection(upgrade_settings)
            except Exception as exc:  # (base64 or a SETTINGS payload h2 refuses)
                raise ValueError(f"invalid HTTP2-Settings: {exc}") from None
        # The decoder's cap applies from the first header block, not only once our SETTINGS are
        # acknowledged: an HPACK bomb may come before the client has read them.
        conn.decoder.max_header_list_size = header_list or 2 ** 31
        # A header block's encoded size: what the decoded list may hold, and room for encoding
        # overhead; h2 alone would buffer 64 frames of up to --http2-max-frame-size each.
        self.block_limit = max(header_list or limits.head_size, 16384) * 2
        self.watch = _FrameWatch(0 if preface_seen else len(PREFACE))
        self.inbound: dict[int, _Inbound] = {}
        self.outbound: dict[int, _Outbound] = {}
        # Resets the client sent: (when the interval began, how many since). The budget is one
        # full set of streams per interval, at least 100.
        self.reset_budget = max(100, 2 * settings.max_concurrent_streams)
        self._resets = (0.0, 0)
        self._control_since = 0.0
        self.closed: str | None = None  # why the connection is over (GOAWAY sent)

    @property
    def preface_received(self) -> bool:
        """Whether the client's connection preface is in (after it, its frames)."""
        return self.watch.preface == 0 and self.closed is None

    # -- input --------------------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[H2Event]:
        if self.closed is not None:
            return []
        watch = self.watch
        if not watch.feed(data, self.block_limit):
            self._goaway(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM,
                         "a header block larger than the limit (CONTINUATION flood)")
            return []
        if now - self._control_since >= CONTROL_INTERVAL:
            self._control_since = now
            watch.control = 0
        elif watch.control > CONTROL_BUDGET:
            self._goaway(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM,
                         "too many SETTINGS or PING frames (flood)")
            return []
        try:
            received = self.conn.receive_data(data)
        except h2.exceptions.DenialOfServiceError as exc:
            self._goaway(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, f"refused: {exc}")
            return []
        except h2.exceptions.ProtocolError as exc:
            # h2 has queued its GOAWAY (PROTOCOL_ERROR or the like) already.
            self.closed = f"protocol error: {exc}"
            return []
        events: list[H2Event] = []
        for event in received:
            if isinstance(event, h2.events.RequestReceived):
                self._head(event, events)
            elif isinstance(event, h2.events.DataReceived):
                self._data(event, events)
            elif isinstance(event, h2.events.StreamEnded):
                self._ended(event.stream_id, (), events)
            elif isinstance(event, h2.events.TrailersReceived):
                trailers = tuple((bytes(n), bytes(v)) for n, v in event.headers or ())
                if event.stream_ended:
                    self._ended(event.stream_id, trailers, events)
            elif isinstance(event, h2.events.StreamReset):
                self._reset(event.stream_id, now, events)
            elif isinstance(event, h2.events.WindowUpdated):
                self._window(event.stream_id, events)
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.closed = "the client ended the connection (GOAWAY)"
            if self.closed is not None:
                break
        return events

    def _head(self, event: Any, events: list[H2Event]) -> None:
        stream_id = event.stream_id
        try:
            request = self._request(event.headers or (), event.stream_ended is not None)
        except _Refusal as refusal:
            events.append(StreamRefused(stream_id, refusal.status, refusal.reason))
            if event.stream_ended is None:
                # (its body is not wanted: RST after the answer, see refuse)
                self.inbound[stream_id] = _Inbound(_NO_REQUEST)
                self.inbound[stream_id].refused = True
            return
        self.inbound[stream_id] = _Inbound(request)
        events.append(StreamRequest(stream_id, request))
        if event.stream_ended is not None:
            self._ended(stream_id, (), events)

    def _request(self, headers: Any, ended: bool) -> Request:
        limits = self.limits
        method = path = scheme = authority = None
        fields: list[tuple[bytes, bytes]] = []
        cookies: list[bytes] = []
        host: bytes | None = None
        content_length: int | None = None
        for name, value in headers:
            name, value = bytes(name), bytes(value)
            if name[:1] == b":":
                if name == b":method":
                    method = value
                elif name == b":path":
                    path = value
                elif name == b":scheme":
                    scheme = value
                elif name == b":authority":
                    authority = value
                continue
            if not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value):
                raise _Refusal(400, "invalid header field")
            if len(name) + len(value) + 2 > limits.request_field_size:
                raise _Refusal(431, "a header field is too large")
            if name == b"cookie":
                cookies.append(value)
                continue
            if name == b"host":
                host = value
            elif name == b"content-length":
                if not value.isdigit() or (content_length is not None
                                           and int(value) != content_length):
                    raise _Refusal(400, "invalid Content-Length")
                content_length = int(value)
            fields.append((name, value))
        if cookies:  # RFC 9113 §8.2.3: the cookie-pairs of several fields are one field again
            fields.append((b"cookie", b"; ".join(cookies)))
        if len(fields) > limits.request_fields:
            raise _Refusal(431, "too many header fields")
        if method is None or not _TOKEN.fullmatch(method):
            raise _Refusal(400, "invalid :method")
        if method == b"CONNECT":
            raise _Refusal(501, "CONNECT is not supported")
        if path is None or scheme is None or not (path[:1] == b"/" or
                                                  (path == b"*" and method == b"OPTIONS")):
            raise _Refusal(400, "invalid :path or :scheme")
        if _BAD_VALUE.search(path) or b" " in path:
            raise _Refusal(400, "invalid :path")
        if len(method) + len(path) + 10 > limits.request_line:
            raise _Refusal(414, "the request target is too long")
        if authority is not None:
            if not host_is_valid(authority):
                raise _Refusal(400, "invalid :authority")
            if host is None:
                fields.insert(0, (b"host", authority))
            elif host != authority:
                raise _Refusal(400, "Host differs from :authority")
            host = authority
        elif host is None or not host_is_valid(host):
            raise _Refusal(400, "no valid :authority or Host")
        if ended and content_length:
            raise _Refusal(400, "Content-Length with no body")
        if limits.request_body and content_length is not None and content_length > limits.request_body:
            raise _Refusal(413, "the request body is too large")
        target = path
        hash_at = target.find(b"#")
        if hash_at >= 0:
            target = target[:hash_at]
        bare, _, query = target.partition(b"?")
        if path == b"*":
            bare = b""
        return make_request(method.decode("ascii"), path, bare, query, (2, 0), tuple(fields),
                            True, False, 0 if ended else content_length, False, host)

    def _data(self, event: Any, events: list[H2Event]) -> None:
        stream_id = event.stream_id
        data = bytes(event.data or b"")
        # The window is given back at once: the body is buffered (or spooled) as it arrives, and a
        # request that is too large is refused by its length, not by stalling its sender.
        if event.flow_controlled_length:
            try:
                self.conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                pass
        inbound = self.inbound.get(stream_id)
        if inbound is None or inbound.refused:
            return
        inbound.received += len(data)
        limit = self.limits.request_body
        if limit and inbound.received > limit:
            inbound.refused = True
            events.append(StreamRefused(stream_id, 413, "the request body is too large"))
            return
        if inbound.declared is not None and inbound.received > inbound.declared:
            inbound.refused = True
            events.append(StreamRefused(stream_id, 400, "more DATA than Content-Length"))
            return
        if data:
            events.append(StreamData(stream_id, data))

    def _ended(self, stream_id: int, trailers: Fields, events: list[H2Event]) -> None:
        inbound = self.inbound.pop(stream_id, None)
        if inbound is None or inbound.refused:
            return
        if inbound.declared is not None and inbound.received != inbound.declared:
            events.append(StreamRefused(stream_id, 400, "less DATA than Content-Length"))
            return
        request = inbound.request
        if inbound.declared is None and inbound.received:
            # A body without content-length (HTTP/2 needs none): its length is what arrived, and
            # the app is told it, as for a chunked HTTP/1.1 body.
            request = replace(request, content_length=inbound.received, headers=(
                *request.headers, (b"content-length", b"%d" % inbound.received)))
        events.append(StreamEnd(stream_id, request, trailers))

    def _reset(self, stream_id: int, now: float, events: list[H2Event]) -> None:
        self.inbound.pop(stream_id, None)
        self.outbound.pop(stream_id, None)
        events.append(StreamGone(stream_id))
        since, count = self._resets
        if now - since >= RESET_INTERVAL:
            since, count = now, 0
        count += 1
        self._resets = (since, count)
        if count > self.reset_budget:
            self._goaway(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM,
                         "too many streams reset by the client (rapid reset)")

    def _goaway(self, code: int, why: str) -> None:
        self.closed = why
        try:
            self.conn.close_connection(error_code=code)
        except h2.exceptions.ProtocolError:
            pass

    # -- output -------------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        return self.conn.data_to_send()

    def send_head(self, stream_id: int, status: int, fields: list[tuple[bytes, bytes]],
                  end: bool) -> None:
        """A response head (or a 1xx interim one); fields as the HTTP/1.1 head had them."""
        headers = [(b":status", b"%d" % status)]
        headers += [(name.lower(), value) for name, value in fields
                    if name.lower() not in _HOP_BY_HOP]
        try:
            self.conn.send_headers(stream_id, headers, end_stream=end)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
            self.outbound.pop(stream_id, None)
            return
        if end:
            self.outbound.pop(stream_id, None)
        elif status >= 200:
            self.outbound.setdefault(stream_id, _Outbound())

    def send_body(self, stream_id: int, data: bytes, end: bool) -> None:
        out = self.outbound.get(stream_id)
        if out is None:
            return  # (reset, or never opened: nothing to send it on)
        if data:
            out.pieces.append(data)
            out.size += len(data)
        out.end = out.end or end
        self._flush(stream_id, out)

    def pending(self, stream_id: int) -> int:
        """Bytes of the stream's response waiting for the peer's window."""
        out = self.outbound.get(stream_id)
        return out.size if out is not None else 0

    def reset(self, stream_id: int, code: int = h2.errors.ErrorCodes.INTERNAL_ERROR) -> None:
        self.outbound.pop(stream_id, None)
        self.inbound.pop(stream_id, None)
        try:
            self.conn.reset_stream(stream_id, error_code=code)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
            pass

    def refuse_body(self, stream_id: int) -> None:
        """After a refusal's answer, the client's body is not wanted (RST_STREAM NO_ERROR, as
        RFC 9113 §8.1 has it for a response sent before the request is complete)."""
        if stream_id in self.inbound:
            self.reset(stream_id, h2.errors.ErrorCodes.NO_ERROR)

    def close(self) -> None:
        """A graceful end: GOAWAY NO_ERROR; the streams under way finish."""
        if self.closed is None:
            try:
                self.conn.close_connection(error_code=h2.errors.ErrorCodes.NO_ERROR,
                                           last_stream_id=self.conn.highest_inbound_stream_id)
            except h2.exceptions.ProtocolError:
                pass

    def _window(self, stream_id: int, events: list[H2Event]) -> None:
        targets = list(self.outbound) if stream_id == 0 else [stream_id]
        for target in targets:
            out = self.outbound.get(target)
            if out is not None and (out.size or out.end):
                self._flush(target, out)
                if not out.size:
                    events.append(Drained(target))

    def _flush(self, stream_id: int, out: _Outbound) -> None:
        conn = self.conn
        try:
            while out.size:
                room = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
                if room <= 0:
                    return
                data = out.pieces[0]
                if len(data) > room:
                    out.pieces[0] = data[room:]
                    data = data[:room]
                else:
                    out.pieces.pop(0)
                out.size -= len(data)
                last = out.end and not out.size
                conn.send_data(stream_id, data, end_stream=last)
                if last:
                    self.outbound.pop(stream_id, None)
                    return
            if out.end:
                conn.end_stream(stream_id)
                self.outbound.pop(stream_id, None)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
            self.outbound.pop(stream_id, None)


class _Refusal(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


_NO_REQUEST = make_request("GET", b"/", b"/", b"", (2, 0), (), True, False, 0, False, None)


def upgrade_request(request: Request) -> tuple[Request, bytes] | None:
    """An HTTP/1.1 request asking to upgrade to h2c (RFC 7540 §3.2: ``Upgrade: h2c``, one
    ``HTTP2-Settings``, both named in ``Connection``): the request as stream 1 carries it (version
    2, without those fields), and the settings; None for any other request."""
    upgrade = settings = connection = None
    count = 0
    for name, value in request.headers:
        lower = name.lower()
        if lower == b"upgrade":
            upgrade = value
        elif lower == b"http2-settings":
            settings = value
            count += 1
        elif lower == b"connection":
            connection = value
    if upgrade is None or settings is None or connection is None or count != 1:
        return None
    if b"h2c" not in (token.strip().lower() for token in upgrade.split(b",")):
        return None
    tokens = {token.strip().lower() for token in connection.split(b",")}
    if not {b"upgrade", b"http2-settings"} <= tokens:
        return None
    fields = tuple((n, v) for n, v in request.headers
                   if n.lower() not in (b"upgrade", b"http2-settings", b"connection"))
    return replace(request, version=(2, 0), headers=fields, keep_alive=True), settings


def split_head(head: bytes) -> tuple[int, list[tuple[bytes, bytes]]]:
    """An HTTP/1.1 response head the shared cycle made (status line, fields, blank line) as a
    status code and fields for an HTTP/2 HEADERS frame. The cycle frames every response the one
    way (validated, Date and Server added); HTTP/2 takes its fields and none of its framing."""
    lines = head.split(b"\r\n")
    status = int(lines[0][9:12])
    fields = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(b":")
        fields.append((name, value.strip()))
    return status, fields

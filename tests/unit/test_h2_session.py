"""The sans-IO HTTP/2 session (pronghorn/http/h2.py), fed a real client's bytes (python-hyper's h2
as the client) at every split point: the same requests come out, whatever the reads."""

from __future__ import annotations

import pytest

h2 = pytest.importorskip("h2", reason="HTTP/2 needs h2: pip install 'pronghorn[http2]'")
import h2.config  # noqa: E402
import h2.connection  # noqa: E402
from hypothesis import given, settings, strategies as st  # noqa: E402

from pronghorn.http import Limits  # noqa: E402
from pronghorn.http.events import make_request  # noqa: E402
from pronghorn.http.h2 import (H2Session, H2Settings, StreamData, StreamEnd,  # noqa: E402
                               StreamRefused, StreamRequest, split_head, upgrade_request)


def client_bytes(*requests: tuple[list[tuple[bytes, bytes]], bytes | None]) -> bytes:
    client = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding=None, validate_outbound_headers=False))
    client.initiate_connection()
    for headers, body in requests:
        sid = client.get_next_available_stream_id()
        client.send_headers(sid, headers, end_stream=body is None)
        if body is not None:
            client.send_data(sid, body, end_stream=True)
    return client.data_to_send()


GET = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/a/b?x=1"),
       (b":authority", b"example.com"), (b"cookie", b"a=1"), (b"accept", b"*/*"),
       (b"cookie", b"b=2")]
POST = [(b":method", b"POST"), (b":scheme", b"https"), (b":path", b"/up"),
        (b":authority", b"example.com"), (b"content-length", b"5")]
WIRE = client_bytes((GET, None), (POST, b"hello"))


def events_of(pieces: list[bytes]) -> list[object]:
    session = H2Session(Limits(), H2Settings())
    events: list[object] = []
    for piece in pieces:
        events += session.receive_data(piece, 0.0)
    assert session.closed is None
    return [e for e in events if isinstance(e, (StreamRequest, StreamData, StreamEnd,
                                                StreamRefused))]


def merged(events: list[object]) -> list[object]:
    """DATA pieces joined per stream (their split follows the reads')."""
    out: list[object] = []
    for event in events:
        if isinstance(event, StreamData) and out and isinstance(out[-1], StreamData) \
                and out[-1].stream_id == event.stream_id:
            out[-1] = StreamData(event.stream_id, out[-1].data + event.data)
        else:
            out.append(event)
    return out


WHOLE = events_of([WIRE])


def test_streams_become_requests_as_http11_gives_them() -> None:
    first = WHOLE[0]
    assert isinstance(first, StreamRequest)
    request = first.request
    assert (request.method, request.target, request.path, request.query, request.version) == (
        "GET", b"/a/b?x=1", b"/a/b", b"x=1", (2, 0))
    assert request.host == b"example.com"
    assert request.headers == ((b"host", b"example.com"), (b"accept", b"*/*"),
                               (b"cookie", b"a=1; b=2"))
    ends = [e for e in WHOLE if isinstance(e, StreamEnd)]
    assert [e.request.content_length for e in ends] == [0, 5]
    assert StreamData(3, b"hello") in WHOLE


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(WIRE)), max_size=6))
def test_any_split_gives_the_same_events(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    pieces = [WIRE[a:b] for a, b in zip([0, *points], [*points, len(WIRE)])]
    assert merged(events_of(pieces)) == merged(WHOLE)


@pytest.mark.parametrize("extra,status", [
    ([(b"x-%d" % i, b"v") for i in range(101)], 431),
    ([(b"x-long", b"v" * 9000)], 431),
])
def test_refusals(extra: list[tuple[bytes, bytes]], status: int) -> None:
    events = events_of([client_bytes((GET + extra, None))])
    assert [type(e) for e in events] == [StreamRefused]
    assert events[0].status == status  # type: ignore[attr-defined]


def test_a_host_that_is_not_the_authority_ends_the_connection() -> None:
    session = H2Session(Limits(), H2Settings())
    assert session.receive_data(client_bytes((GET + [(b"host", b"other.example")], None)),
                                0.0) == []
    assert session.closed is not None and b"\x00\x00\x00\x01" in session.data_to_send()


def test_split_head_takes_the_cycles_head_apart() -> None:
    head = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nX-A:  b \r\n\r\n"
    assert split_head(head) == (404, [(b"Content-Type", b"text/plain"), (b"X-A", b"b")])


def test_upgrade_request_needs_every_part() -> None:
    def request(*headers: tuple[bytes, bytes]) -> object:
        return make_request("GET", b"/", b"/", b"", (1, 1), headers, True, False, 0, False, b"t")

    asked = upgrade_request(request((b"Host", b"t"), (b"Connection", b"Upgrade, HTTP2-Settings"),
                                    (b"Upgrade", b"h2c"), (b"HTTP2-Settings", b"AAMAAABkAAQCAAAAAAIAAAAA")))
    assert asked is not None
    upgraded, settings_value = asked
    assert upgraded.version == (2, 0) and upgraded.headers == ((b"Host", b"t"),)
    assert settings_value == b"AAMAAABkAAQCAAAAAAIAAAAA"
    assert upgrade_request(request((b"Upgrade", b"h2c"), (b"HTTP2-Settings", b"x"))) is None
    assert upgrade_request(request((b"Connection", b"Upgrade"), (b"Upgrade", b"websocket"))) is None

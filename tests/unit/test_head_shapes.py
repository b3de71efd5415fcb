"""Head shapes: heads that differ from one another only in some fields' values (a proxy's
X-Request-Id, a session cookie) take the template's Request and environ with their own values put in
(see HeadCache in pronghorn/http/cache.py). No verdict and no event may differ from a connection
that parses every head, and no environ from one built field by field."""

from __future__ import annotations

import io
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pronghorn.http import (END_OF_MESSAGE, Data, EndOfMessage, HeadCache, HTTPConnection,
                            HTTPError, Limits, Request)
from pronghorn.wsgi.environ import EnvironBuilder
from pronghorn.wsgi.forwarded import DEFAULT_SECURE_SCHEME_HEADERS, ForwardedPolicy

PEER = ("127.0.0.1", 40000)


def proxied(request_id: bytes, cookie: bytes, line: bytes = b"GET /path?q=1 HTTP/1.1",
            proto: bytes = b"https", extra: bytes = b"") -> bytes:
    """What nginx forwards for a browser, with the request id and cookie given."""
    return (line + b"\r\nHost: app.example.com\r\nX-Real-IP: 203.0.113.7\r\n"
            b"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: " + proto + b"\r\n"
            b"X-Request-Id: " + request_id + b"\r\nUser-Agent: Mozilla/5.0 (X11) Firefox/133.0\r\n"
            b"Accept: text/html,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\n"
            b"Cookie: " + cookie + b"\r\n" + extra + b"\r\n")


def outcome(conn: HTTPConnection, data: bytes) -> tuple[Any, ...]:
    """The events a whole read gives (through the end of the message), or the error's status."""
    conn.receive_data(data)
    events: list[Any] = []
    try:
        while True:
            event = conn.next_event()
            events.append(event)
            if isinstance(event, EndOfMessage) or not isinstance(event, (Request, Data)):
                break
    except HTTPError as exc:
        return ("error", exc.status)
    if events[-1] is END_OF_MESSAGE or isinstance(events[-1], EndOfMessage):
        conn.start_next_cycle()
    return tuple(events)


def learnt(limits: Limits | None = None) -> tuple[HTTPConnection, HeadCache]:
    """A cached connection whose worker has seen two proxied heads differing in the request id
    and the cookie: the next such head is taken by its shape."""
    limits = limits or Limits()
    cache = HeadCache(limits)
    conn = HTTPConnection(limits, cache)
    outcome(conn, proxied(b"first", b"s=1"))
    outcome(conn, proxied(b"second", b"s=2"))
    return conn, cache


def builder() -> EnvironBuilder:
    return EnvironBuilder(("127.0.0.1", 8000), "http", io.StringIO(), False, False,
                          ForwardedPolicy("127.0.0.1", DEFAULT_SECURE_SCHEME_HEADERS))


def environ_of(request: Request) -> dict[str, Any]:
    environ = builder().build(request, io.BytesIO(), PEER)
    del environ["wsgi.input"], environ["wsgi.errors"]
    return environ


def test_a_head_of_a_known_shape_gets_its_own_values() -> None:
    conn, _ = learnt()
    events = outcome(conn, proxied(b"third", b"s=3; t=4"))
    request = events[0]
    assert request.shape is not None and request.shape.varying  # taken by its shape
    assert request == outcome(HTTPConnection(Limits()), proxied(b"third", b"s=3; t=4"))[0]
    assert dict(request.headers)[b"X-Request-Id"] == b"third"
    assert dict(request.headers)[b"Cookie"] == b"s=3; t=4"


def test_the_environ_of_a_shaped_request_is_the_one_built_field_by_field() -> None:
    conn, _ = learnt()
    shared_builder = builder()
    for number in range(3, 8):
        raw = proxied(b"id-%d" % number, b"sessionid=%d" % number)
        request = outcome(conn, raw)[0]
        assert request.shape is not None
        parsed = outcome(HTTPConnection(Limits()), raw)[0]
        environ = shared_builder.build(request, io.BytesIO(), PEER)
        expected = builder().build(parsed, io.BytesIO(), PEER)
        for made in (environ, expected):
            del made["wsgi.input"], made["wsgi.errors"]
        assert environ == expected
        assert environ["HTTP_X_REQUEST_ID"] == "id-%d" % number
        assert environ["wsgi.url_scheme"] == "https"  # (X-Forwarded-Proto, from a trusted peer)


def test_a_varying_field_the_forwarded_policy_reads_is_judged_for_each_request() -> None:
    limits = Limits()
    conn = HTTPConnection(limits, HeadCache(limits))
    outcome(conn, proxied(b"1", b"c", proto=b"https"))
    outcome(conn, proxied(b"2", b"c", proto=b"http"))  # the scheme header varies too
    shared_builder = builder()
    for proto, scheme in ((b"https", "https"), (b"http", "http"), (b"https", "https")):
        request = outcome(conn, proxied(b"3", b"c", proto=proto))[0]
        assert request.shape is not None
        assert shared_builder.build(request, io.BytesIO(), PEER)["wsgi.url_scheme"] == scheme


def test_the_scheme_a_shape_claims_is_believed_per_peer() -> None:
    conn, _ = learnt()
    shared_builder = builder()
    trusted, untrusted = ("127.0.0.1", 1), ("192.0.2.1", 2)
    for number, peer, scheme in ((1, trusted, "https"), (2, trusted, "https"), (3, untrusted, "http"),
                                 (4, untrusted, "http"), (5, trusted, "https")):
        request = outcome(conn, proxied(b"%d" % number, b"s"))[0]
        assert request.shape is not None
        assert shared_builder.build(request, io.BytesIO(), peer)["wsgi.url_scheme"] == scheme


def test_a_varying_field_named_twice_is_joined_as_a_list() -> None:
    limits = Limits()
    conn = HTTPConnection(limits, HeadCache(limits))
    twice = b"GET / HTTP/1.1\r\nHost: a\r\nX-Tag: %s\r\nX-Tag: fixed\r\n\r\n"
    outcome(conn, twice % b"1")
    outcome(conn, twice % b"2")
    request = outcome(conn, twice % b"3")[0]
    assert request.shape is not None
    assert builder().build(request, io.BytesIO(), PEER)["HTTP_X_TAG"] == "3,fixed"


def test_fields_that_decide_framing_or_routing_never_vary() -> None:
    limits = Limits()
    conn = HTTPConnection(limits, HeadCache(limits))
    post = b"POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nX-Id: %s\r\n\r\n"
    outcome(conn, post % (b"a", 1, b"1") + b"x")
    outcome(conn, post % (b"a", 1, b"2") + b"x")
    for host, length in ((b"b", 1), (b"a", 2), (b"a_b", 1)):
        raw = post % (host, length, b"3") + b"x" * length
        assert outcome(conn, raw) == outcome(HTTPConnection(limits), raw)


# Values as a client may send them: good ones, and every kind llhttp or our limits refuse.
_VALUE = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"", b" padded\t ", b"\tx", b"a\x00b", b"a\rb", b"a\nb", b"a\r\nX-Evil: 1",
                     b"\x7f", b"caf\xe9", b"a" * 300, b"x\r\n Folded", b"ok"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request_id=_VALUE, cookie=_VALUE, extra=st.sampled_from([b"", b"X-Late: 1\r\n"]))
def test_every_verdict_and_event_is_the_parsers(request_id: bytes, cookie: bytes,
                                                extra: bytes) -> None:
    """A head near a known shape, with any values: the same outcome as parsing it, and, when it
    is served, the same environ as building it field by field."""
    limits = Limits(request_field_size=200)  # (so that a long value is refused: 431)
    conn, _ = learnt(limits)
    raw = proxied(request_id, cookie, extra=extra)
    got = outcome(conn, raw)
    expected = outcome(HTTPConnection(limits), raw)
    assert got == expected
    if got[0] != "error" and not conn.buffered:
        assert environ_of(got[0]) == environ_of(expected[0])
        # Then the connection goes on: the next request of the shape (if this one did not
        # teach the line another) is still taken by it.
        follow = outcome(conn, proxied(b"next", b"s=9"))
        names = [name for name, _ in got[0].headers]
        assert (follow[0].shape is not None
                or names != [name for name, _ in follow[0].headers])


def test_a_whole_read_of_a_known_shape_is_taken_and_a_refused_one_left_for_parsing() -> None:
    conn, _ = learnt()
    taken = conn.receive_repeated_request(proxied(b"whole", b"s=1"))
    assert taken is not None and taken[0].shape is not None and taken[1] == b""
    assert dict(taken[0].headers)[b"X-Request-Id"] == b"whole"
    conn.next_event()  # (PAUSED)
    conn.start_next_cycle()
    two = proxied(b"one", b"s=1") + proxied(b"two", b"s=2")  # pipelined: not one head
    assert conn.receive_repeated_request(two) is None
    assert outcome(conn, two)[0] == outcome(HTTPConnection(Limits()), two)[0]
    assert outcome(conn, b"")[0] == outcome(HTTPConnection(Limits()), two[len(two) // 2:])[0]
    bad = proxied(b"plain\x07injected", b"s=1")
    assert conn.receive_repeated_request(bad) is None  # nothing taken, nothing raised
    assert outcome(conn, bad) == ("error", 400)


def test_a_split_head_of_a_known_shape_is_the_same_request() -> None:
    conn, _ = learnt()
    raw = proxied(b"split", b"s=5")
    for cut in (10, len(raw) // 2, len(raw) - 1):
        conn.receive_data(raw[:cut])
        conn.next_event()
        conn.receive_data(raw[cut:])
        request = conn.next_event()
        assert conn.next_event() is END_OF_MESSAGE
        conn.start_next_cycle()
        assert request == outcome(HTTPConnection(Limits()), raw)[0]


def test_the_bytes_refused_in_a_varying_value_are_the_ones_llhttp_refuses() -> None:
    """The shape's own check of a varying value stands in for llhttp's: every byte, anywhere in
    the value, gets the parser's verdict."""
    for byte in range(256):
        for value in (bytes([byte]), b"a" + bytes([byte]) + b"b", b"ab" + bytes([byte])):
            conn, _ = learnt()
            raw = proxied(value, b"s=1")
            assert outcome(conn, raw) == outcome(HTTPConnection(Limits()), raw), (byte, value)


def test_shapes_are_bounded_in_bytes() -> None:
    limits = Limits()
    cache = HeadCache(limits, max_bytes=256 * 1024)
    conn = HTTPConnection(limits, cache)
    for serial in range(1000):
        line = b"GET /%d HTTP/1.1" % serial
        outcome(conn, proxied(b"a", b"b", line=line))
        outcome(conn, proxied(b"c", b"d", line=line))
        assert cache.shapes.size <= 256 * 1024 * 3 // 16
    assert cache.shapes.entries > 2


def test_no_shapes_with_obsolete_folding_permitted() -> None:
    limits = Limits(permit_obsolete_folding=True)
    conn, cache = learnt(limits)
    assert cache.shapes.entries == 0
    assert outcome(conn, proxied(b"3", b"x"))[0].shape is None


def test_after_a_head_of_a_varying_shape_an_identical_head_is_still_taken_whole() -> None:
    """A connection tries a read as its last shape first (see receive_repeated_request): a read
    that is not of that shape is still looked up as a kept head, and then parsed if unknown."""
    conn, _ = learnt()
    plain = b"GET /other HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
    first = outcome(conn, plain)[0]
    assert first.shared
    for request_id in (b"a", b"b"):
        taken = conn.receive_repeated_request(proxied(request_id, b"s=1"))
        assert taken is not None and taken[0].shape is not None
        conn.next_event()
        conn.start_next_cycle()
        again = conn.receive_repeated_request(plain)
        assert again is not None and again[0] is first
        conn.next_event()
        conn.start_next_cycle()
    unknown = b"GET /new HTTP/1.1\r\nHost: app.example.com\r\n\r\n"
    assert conn.receive_repeated_request(proxied(b"c", b"s=1")) is not None
    conn.next_event()
    conn.start_next_cycle()
    assert conn.receive_repeated_request(unknown) is None
    assert outcome(conn, unknown) == outcome(HTTPConnection(Limits()), unknown)

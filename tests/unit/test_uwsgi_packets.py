"""The uwsgi packet parser (pronghorn/http/uwsgi.py): the same events whatever the split of the
bytes, the same refusal for every split of a bad packet, the limits, and the vars as Gunicorn 27
reads them."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pronghorn.http import END_OF_MESSAGE, NEED_DATA, PAUSED, Data, HTTPError, Limits, Request
from pronghorn.http.cache import BoundedCache
from pronghorn.http.uwsgi import _VAR_FIELDS, PacketCache, UWSGIConnection, _field_name, parse_vars


def packet(variables: dict[str, str], modifier1: int = 0) -> bytes:
    block = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
                     for k, v in ((k.encode("latin-1"), v.encode("latin-1"))
                                  for k, v in variables.items()))
    return struct.pack("<BHB", modifier1, len(block), 0) + block


POST = packet({"REQUEST_METHOD": "POST", "PATH_INFO": "/a%b c", "QUERY_STRING": "x=1",
               "CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": "11", "HTTP_HOST": "h:8",
               "HTTP_X_FORWARDED_FOR": "10.0.0.1", "HTTP_CONTENT_LENGTH": "11",
               "REMOTE_ADDR": "10.0.0.1", "HTTPS": "on"}) + b"hello world"


def events(pieces: list[bytes], limits: Limits | None = None) -> list[object]:
    """Every event for the pieces fed in turn (the body's Data joined into one), then the end."""
    conn = UWSGIConnection(limits)
    out: list[object] = []
    body = b""
    for piece in [*pieces, b""]:
        conn.receive_data(piece)
        while True:
            event = conn.next_event()
            if event is NEED_DATA or event is PAUSED:
                break
            if isinstance(event, Data):
                body += event.data
            else:
                out.append(event)
        if out and out[-1] is END_OF_MESSAGE:
            break
    return [*out[:1], body, *out[1:]]


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, *cuts, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:])]


def test_a_packet_becomes_the_http_cores_request() -> None:
    request, body, end = events([POST])
    assert isinstance(request, Request) and end is END_OF_MESSAGE and body == b"hello world"
    assert (request.method, request.target, request.query, request.version) == (
        "POST", b"/a%b c?x=1", b"x=1", (1, 1))
    assert request.path == b"/a%25b c"  # nginx decoded it already: decoded once more, it is itself
    assert request.content_length == 11 and request.host == b"h:8" and request.keep_alive
    assert dict(request.headers) == {b"CONTENT-TYPE": b"text/plain", b"CONTENT-LENGTH": b"11",
                                     b"HOST": b"h:8", b"X-FORWARDED-FOR": b"10.0.0.1"}


@given(st.lists(st.integers(0, len(POST)), max_size=6))
def test_every_split_gives_the_same_events(cuts: list[int]) -> None:
    assert events(split(POST, cuts)) == events([POST])


def test_the_scheme_comes_from_https() -> None:
    conn = UWSGIConnection()
    conn.receive_data(packet({"HTTPS": "on"}) + packet({"HTTPS": "off"}))
    conn.next_event()
    assert conn.scheme == "https"
    assert conn.next_event() is END_OF_MESSAGE and conn.next_event() is PAUSED
    conn.start_next_cycle()
    request = conn.next_event()
    assert isinstance(request, Request) and request.method == "GET" and request.path == b"/"
    assert conn.scheme is None


def test_connection_close_ends_keep_alive() -> None:
    (request, _, _) = events([packet({"HTTP_CONNECTION": "Keep-Alive, Close"})])
    assert isinstance(request, Request) and not request.keep_alive


BAD = {
    "modifier1": (packet({}, modifier1=5), 501),
    "header cut short": (b"\x00\x01", 400),
    "vars cut short": (packet({"A": "b"})[:-1], 400),
    "a key size past the block": (b"\x00\x04\x00\x00\x09\x00ab", 400),
    "a value past the block": (b"\x00\x05\x00\x00\x01\x00a\x05\x00", 400),
    "an empty key": (b"\x00\x04\x00\x00\x00\x00\x00\x00", 400),
    "CONTENT_LENGTH not digits": (packet({"CONTENT_LENGTH": "-1"}), 400),
    "lengths that disagree": (packet({"CONTENT_LENGTH": "1", "HTTP_CONTENT_LENGTH": "2"}) + b"x",
                              400),
    "body cut short": (packet({"CONTENT_LENGTH": "5"}) + b"abc", 400),
    "LF in a value": (packet({"HTTP_X": "a\nb"}), 400),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_every_split_of_a_bad_packet_is_refused_alike(name: str) -> None:
    data, status = BAD[name]
    for cut in range(len(data) + 1):
        with pytest.raises(HTTPError) as caught:
            events(split(data, [cut]))
        assert caught.value.status == status, (name, cut)


@pytest.mark.parametrize("limits,variables,status", [
    (Limits(request_fields=2), {"HTTP_A": "1", "HTTP_B": "2", "HTTP_C": "3"}, 431),
    (Limits(request_field_size=20), {"HTTP_LONG": "x" * 20}, 431),
    (Limits(request_line=10), {"PATH_INFO": "/0123456789"}, 414),
    (Limits(request_body=10), {"CONTENT_LENGTH": "11"}, 413),
])
def test_limits(limits: Limits, variables: dict[str, str], status: int) -> None:
    with pytest.raises(HTTPError) as caught:
        events([packet(variables)], limits)
    assert caught.value.status == status


def test_the_largest_packet_the_header_can_announce_is_read() -> None:
    big = packet({"HTTP_X_" + str(n): "v" * 600 for n in range(100)})
    assert len(big) - 4 <= 65535
    (request, _, _) = events([big], Limits(request_field_size=8190))
    assert isinstance(request, Request) and len(request.headers) == 100


@pytest.mark.parametrize("block,reason", [
    (b"\x01", "key size is cut short"),
    (b"\x01\x00a\x00\x00\x09", "key size is cut short"),
    (b"\x09\x00ab", "key is cut short"),
    (b"\x01\x00a\x05", "key is cut short"),
    (b"\x01\x00a\x05\x00abc", "value is cut short"),
    (b"\x00\x00\x00\x00", "without a name"),
    (b"\x01\x00a\x11\x00" + b"x" * 17, "too large"),
])
def test_each_fault_of_a_var_is_named(block: bytes, reason: str) -> None:
    # (the parse checks a var once, then names the fault on a slow path: the same names as before)
    with pytest.raises(HTTPError) as caught:
        parse_vars(block, Limits(request_field_size=21).normalized())
    assert reason in caught.value.reason


def test_the_table_of_known_vars_follows_the_rule() -> None:
    """The vars nginx sends most are looked up, the others mapped: both must give the same field."""
    for key, name in _VAR_FIELDS.items():
        if key in (b"CONTENT_TYPE", b"CONTENT_LENGTH"):
            assert name == key.replace(b"_", b"-")
        else:
            assert name == _field_name(key), key
    assert _field_name(b"HTTP_X_SOME_THING") == b"X-SOME-THING" and _field_name(b"REMOTE_USER") is None


NGINX = {"QUERY_STRING": "a=1", "REQUEST_METHOD": "GET", "CONTENT_TYPE": "", "CONTENT_LENGTH": "",
         "REQUEST_URI": "/p?a=1", "PATH_INFO": "/p", "HTTPS": "", "REMOTE_ADDR": "10.0.0.1",
         "REMOTE_PORT": "50001", "SERVER_NAME": "s", "HTTP_HOST": "h", "HTTP_ACCEPT": "*/*"}


def cached_request(cache: PacketCache, variables: dict[str, str]) -> tuple[Request, str | None]:
    conn = UWSGIConnection(Limits().normalized(), cache)
    conn.receive_data(packet(variables))
    request = conn.next_event()
    assert isinstance(request, Request)
    return request, conn.scheme


def test_a_packet_cache_hit_is_the_request_parsing_gives() -> None:
    cache: PacketCache = BoundedCache(1 << 20)
    first, _ = cached_request(cache, NGINX)
    # Another connection from the same client (another port; nginx's REMOTE_* are never read):
    again, _ = cached_request(cache, dict(NGINX, REMOTE_PORT="50002", REMOTE_ADDR="10.0.0.2"))
    assert again is first and first.shared
    uncached = events([packet(NGINX)])[0]
    assert isinstance(uncached, Request)
    names = [f.name for f in dataclasses.fields(first) if f.name != "shared"]
    assert [getattr(first, f) for f in names] == [getattr(uncached, f) for f in names]
    # Any var that is read makes another Request; the scheme comes with it.
    for changed in ({"HTTP_ACCEPT": "text/html"}, {"QUERY_STRING": "a=2"}, {"HTTP_X_NEW": "1"},
                    {"HTTPS": "on"}):
        other, scheme = cached_request(cache, dict(NGINX, **changed))
        assert other is not first
        assert scheme == ("https" if "HTTPS" in changed else None)
    assert cached_request(cache, dict(NGINX, HTTPS="on"))[1] == "https"


@pytest.mark.parametrize("var", ["REMOTE_ADDR", "REMOTE_PORT", "HTTP_ACCEPT"])
def test_a_packet_like_a_cached_one_is_still_checked(var: str) -> None:
    cache: PacketCache = BoundedCache(1 << 20)
    cached_request(cache, NGINX)
    with pytest.raises(HTTPError) as caught:
        cached_request(cache, dict(NGINX, **{var: "1\r\n2"}))
    assert caught.value.status == 400
    with pytest.raises(HTTPError) as caught:
        cached_request(cache, dict(NGINX, **{var: "x" * 9000}))
    assert caught.value.status == 431


def test_a_packet_too_large_for_the_cache_is_not_kept() -> None:
    cache: PacketCache = BoundedCache(4096)
    first, _ = cached_request(cache, dict(NGINX, HTTP_COOKIE="c" * 3000))
    assert not first.shared and not cache.young

"""Repeated heads: a head that passed every check is kept in the worker's HeadCache, by its exact bytes,
and an identical head later gets the same Request without being parsed again. No verdict may change
because of it, and the cache holds no more bytes than it was given."""

from __future__ import annotations

import io

import pytest

from pronghorn.http import (
    END_OF_MESSAGE, PAUSED, HeadCache, HTTPConnection, HTTPError, Limits, Request, ResponseFramer,
    ResponseHeadCache,
)
from pronghorn.wsgi.environ import EnvironBuilder

HEAD = b"GET /shared?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nX-Twice: a\r\nX-Twice: b\r\n\r\n"


def request_of(conn: HTTPConnection, data: bytes) -> Request:
    conn.receive_data(data)
    event = conn.next_event()
    assert isinstance(event, Request)
    assert conn.next_event() is END_OF_MESSAGE
    conn.start_next_cycle()
    return event


def cached(limits: Limits | None = None) -> HTTPConnection:
    """A connection with a HeadCache of its own, as if it were its worker's only one."""
    limits = limits or Limits()
    return HTTPConnection(limits, HeadCache(limits))


def test_an_identical_head_gets_the_same_request_on_any_connection_of_the_worker() -> None:
    limits = Limits()
    cache = HeadCache(limits)
    first_conn, second_conn = HTTPConnection(limits, cache), HTTPConnection(limits, cache)
    first = request_of(first_conn, HEAD)
    assert first.shared
    assert request_of(first_conn, HEAD) is first
    assert request_of(second_conn, HEAD) is first
    # One byte apart is another head, parsed on its own.
    other = request_of(second_conn, HEAD.replace(b"q=1", b"q=2"))
    assert other is not first and other.query == b"q=2"


def test_without_a_cache_every_head_is_parsed() -> None:
    conn = HTTPConnection(Limits())
    first = request_of(conn, HEAD)
    assert not first.shared
    second = request_of(conn, HEAD)
    assert second == first and second is not first
    assert conn.receive_repeated_request(HEAD) is None


def test_heads_that_fail_are_never_kept() -> None:
    limits = Limits()
    cache = HeadCache(limits)
    bad = b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"  # two Hosts: 400
    for _ in range(3):
        conn = HTTPConnection(limits, cache)
        conn.receive_data(bad)
        with pytest.raises(HTTPError) as caught:
            conn.next_event()
        assert caught.value.status == 400
    assert cache.heads.entries == 0


def test_a_cache_serves_only_connections_with_its_limits() -> None:
    limits = Limits()
    cache = HeadCache(limits)
    request_of(HTTPConnection(limits, cache), HEAD)  # kept under the defaults
    HTTPConnection(Limits(), cache)  # equal limits: the same verdicts
    with pytest.raises(ValueError):
        HTTPConnection(Limits(request_line=10), cache)
    strict = cached(Limits(request_line=10))
    strict.receive_data(HEAD)
    with pytest.raises(HTTPError) as caught:
        strict.next_event()
    assert caught.value.status == 414


@pytest.mark.parametrize("framing", [b"Content-Length: 2\r\n\r\nhi",
                                     b"Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"])
def test_bodies_are_read_after_a_kept_head_and_chunked_heads_are_not_kept(framing: bytes) -> None:
    conn = cached()
    post = b"POST /p HTTP/1.1\r\nHost: a\r\n" + framing
    seen = []
    for _ in range(3):
        conn.receive_data(post)
        request = conn.next_event()
        assert isinstance(request, Request)
        seen.append(request)
        body = b""
        while (event := conn.next_event()) is not END_OF_MESSAGE:
            body += event.data  # type: ignore[union-attr]
        assert body == b"hi"
        conn.start_next_cycle()
    if b"chunked" in framing:
        assert not any(request.shared for request in seen) and seen[0] is not seen[1]
    else:
        assert seen[0].shared and seen[0] is seen[1] is seen[2]


def test_a_head_cut_across_reads_is_parsed_as_usual() -> None:
    conn = cached()
    conn.receive_data(HEAD[:20])
    conn.next_event()
    conn.receive_data(HEAD[20:])
    request = conn.next_event()
    assert isinstance(request, Request) and request.target == b"/shared?q=1"


def test_every_environ_is_the_apps_own() -> None:
    """An app may change its environ; the next request with the same head must not see it."""
    conn = cached()
    builder = EnvironBuilder(("127.0.0.1", 8000), "http", io.StringIO(), False)
    peer = ("10.0.0.1", 4000)
    first = builder.build(request_of(conn, HEAD), io.BytesIO(), peer)
    expected = dict(first)
    # SERVER_PORT is the listener's on TCP, whatever the Host says (Gunicorn's).
    assert first["HTTP_X_TWICE"] == "a,b" and first["SERVER_PORT"] == "8000"
    first["PATH_INFO"] = "/changed"
    first["HTTP_X_NEW"] = "1"
    del first["HTTP_HOST"]
    body = io.BytesIO(b"")
    second = builder.build(request_of(conn, HEAD), body, ("10.0.0.2", 4001))
    assert second["wsgi.input"] is body
    assert (second["REMOTE_ADDR"], second["REMOTE_PORT"]) == ("10.0.0.2", "4001")
    expected.update({"wsgi.input": body, "REMOTE_ADDR": "10.0.0.2", "REMOTE_PORT": "4001"})
    assert second == expected


def test_forwarding_headers_are_judged_per_peer() -> None:
    """The same head from an untrusted peer and from the trusted proxy: trust is the peer's."""
    from pronghorn.wsgi.forwarded import DEFAULT_SECURE_SCHEME_HEADERS, ForwardedPolicy

    conn = cached()
    for client_address in (False, True):
        builder = EnvironBuilder(("127.0.0.1", 8000), "http", io.StringIO(), False, False,
                                 ForwardedPolicy("127.0.0.1", DEFAULT_SECURE_SCHEME_HEADERS,
                                                 client_address))
        head = (b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\n"
                b"X-Forwarded-Proto: https\r\n\r\n")
        for peer, scheme in [(("10.0.0.9", 1), "http"), (("127.0.0.1", 2), "https"),
                             (("10.0.0.9", 3), "http")]:
            environ = builder.build(request_of(conn, head), io.BytesIO(), peer)
            trusted = peer[0] == "127.0.0.1"
            client = "1.2.3.4" if client_address and trusted else peer[0]
            assert (environ["REMOTE_ADDR"], environ["wsgi.url_scheme"]) == (client, scheme), peer
            # Gunicorn passes the header on from anyone; --forwarded-client-address removes a
            # stranger's.
            assert ("HTTP_X_FORWARDED_FOR" in environ) is (trusted or not client_address), peer


def test_a_repeated_head_taken_whole_leaves_the_connection_as_parsing_would() -> None:
    conn = cached()
    assert conn.receive_repeated_request(HEAD) is None  # never seen: nothing taken
    assert conn.buffered == 0
    first = request_of(conn, HEAD)
    taken = conn.receive_repeated_request(HEAD)
    assert taken is not None and taken[0] is first and taken[1] == b""
    assert conn.next_event() is PAUSED  # as after END_OF_MESSAGE
    conn.start_next_cycle()
    # Not between requests (something buffered), or more than the head: the usual way.
    conn.receive_data(b"GET")
    assert conn.receive_repeated_request(HEAD) is None
    conn2 = cached()
    assert conn2.receive_repeated_request(HEAD + HEAD) is None


def _post(size: int) -> bytes:
    return b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % size


@pytest.mark.parametrize("size", [2, 64 * 1024])
def test_a_repeated_head_with_its_whole_body_in_the_read_is_taken_with_the_body(size: int) -> None:
    post, body = _post(size), b"u" * size
    conn = cached()
    conn.receive_data(post + body)
    first = conn.next_event()
    assert isinstance(first, Request) and first.shared
    assert conn.next_event().data == body  # type: ignore[union-attr]
    assert conn.next_event() is END_OF_MESSAGE
    conn.start_next_cycle()
    assert conn.receive_repeated_request(post) is None  # its body is still to come: parse it
    conn.receive_data(post + body)
    assert conn.next_event() is first and conn.next_event().data == body  # type: ignore[union-attr]
    assert conn.next_event() is END_OF_MESSAGE
    conn.start_next_cycle()
    taken = conn.receive_repeated_request(post + body)
    if len(post + body) <= 1024:
        # A small read is looked up whole, as a bodyless head: the body makes it unknown.
        assert taken is None
        return
    assert taken is not None and taken[0] is first and taken[1] == body
    assert conn.next_event() is PAUSED
    conn.start_next_cycle()
    # A byte short, a byte over (the start of the next request): the usual way, nothing taken.
    for read in (post + body[:-1], post + body + b"G"):
        assert conn.receive_repeated_request(read) is None
        assert conn.buffered == 0


def test_a_head_that_waits_for_100_continue_is_not_taken_with_a_body() -> None:
    post = b"POST /p HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2000\r\n\r\n"
    conn = cached()
    conn.receive_data(post)
    request = conn.next_event()
    assert isinstance(request, Request) and request.expect_continue and request.shared
    conn.receive_data(b"x" * 2000)
    assert conn.next_event().data == b"x" * 2000  # type: ignore[union-attr]
    assert conn.next_event() is END_OF_MESSAGE
    conn.start_next_cycle()
    assert conn.receive_repeated_request(post + b"x" * 2000) is None


# -- bounded in bytes ----------------------------------------------------------------------------------

def test_unique_heads_fill_the_cache_to_its_bound_and_no_further() -> None:
    limits = Limits()
    cache = HeadCache(limits, max_bytes=64 * 1024)
    conn = HTTPConnection(limits, cache)
    for serial in range(2000):
        request_of(conn, b"GET /%d HTTP/1.1\r\nHost: a\r\nX-Pad: %s\r\n\r\n" % (serial, b"p" * 500))
        assert (cache.heads.size + cache.lines.size + cache.hosts.size + cache.shapes.size
                <= 64 * 1024)
    assert cache.heads.entries > 5  # (and it did keep some)
    # What was used lately is still there, what was not is gone.
    recent = b"GET /1999 HTTP/1.1\r\nHost: a\r\nX-Pad: %s\r\n\r\n" % (b"p" * 500)
    assert conn.receive_repeated_request(recent) is not None
    conn.start_next_cycle()
    assert conn.receive_repeated_request(recent.replace(b"1999", b"0")) is None


def test_an_entry_used_again_survives_turnovers() -> None:
    limits = Limits()
    cache = HeadCache(limits, max_bytes=32 * 1024)
    conn = HTTPConnection(limits, cache)
    first = request_of(conn, HEAD)
    for serial in range(500):
        request_of(conn, b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % serial)
        assert request_of(conn, HEAD) is first  # in use: never dropped


def test_a_head_larger_than_the_cache_may_hold_is_parsed_every_time() -> None:
    limits = Limits()
    conn = HTTPConnection(limits, HeadCache(limits, max_bytes=2048))
    first = request_of(conn, HEAD)
    assert not first.shared and request_of(conn, HEAD) is not first


def test_response_heads_are_bounded_in_bytes() -> None:
    cache = ResponseHeadCache(max_bytes=32 * 1024)
    date, server = b"Sat, 28 Nov 2026 12:00:00 GMT", b"pronghorn"
    for serial in range(1000):
        headers = [("Content-Type", "text/plain"), ("Set-Cookie", "id=%d%s" % (serial, "c" * 300)),
                   ("Content-Length", "2")]
        framer = ResponseFramer((1, 1), True, False, cache)
        assert framer.whole("200 OK", headers, date, server, b"ok").startswith(b"HTTP/1.1 200 OK\r\n")
        assert cache.size <= 32 * 1024
    framer = ResponseFramer((1, 1), True, False)  # no cache: the same bytes
    assert framer.whole("200 OK", headers, date, server, b"ok").startswith(b"HTTP/1.1 200 OK\r\n")


def test_environ_builder_caches_are_bounded_in_bytes() -> None:
    builder = EnvironBuilder(("127.0.0.1", 8000), "http", io.StringIO(), False, cache_bytes=64 * 1024)
    limits = Limits()
    cache = HeadCache(limits)
    conn = HTTPConnection(limits, cache)
    for serial in range(300):
        name = b"X-Junk-%d-" % serial + b"j" * 4000
        environ = builder.build(request_of(conn, b"GET / HTTP/1.1\r\nHost: h%d\r\n%s: v\r\n\r\n"
                                           % (serial, name)), io.BytesIO(), ("10.0.0.1", 1))
        assert environ["HTTP_" + name.decode().upper().replace("-", "_")] == "v"
        assert environ["HTTP_HOST"] == "h%d" % serial
        held = builder._keys.size + builder._hosts.size + builder._from_shared.size
        assert held <= 64 * 1024, serial
    # Names seen often are still mapped (and right) after all that junk.
    environ = builder.build(request_of(conn, HEAD), io.BytesIO(), ("10.0.0.1", 1))
    assert environ["HTTP_X_TWICE"] == "a,b"

"""HTTPConnection's contract: one request at a time, PAUSED until answered, and what a Request says."""

from __future__ import annotations

import pytest

from _httpfeed import feed
import dataclasses

from pronghorn.http import END_OF_MESSAGE, NEED_DATA, PAUSED, Data, EndOfMessage, HTTPConnection, Request

R1 = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
R2 = b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
R3 = b"GET /3 HTTP/1.1\r\nHost: a\r\n\r\n"


def test_pipelined_one_at_a_time() -> None:
    conn = HTTPConnection()
    conn.receive_data(R1 + R2 + R3)
    targets = []
    for expected_body in (b"", b"abc", b""):
        event = conn.next_event()
        assert isinstance(event, Request)
        targets.append(event.target)
        body = b""
        while (event := conn.next_event()) is not END_OF_MESSAGE:
            assert isinstance(event, Data)
            body += event.data
        assert body == expected_body
        # PAUSED until the driver says the response went out, however often it asks; and the bytes of
        # the next requests stay buffered, unparsed
        buffered = conn.buffered
        for _ in range(3):
            assert conn.next_event() is PAUSED
        assert conn.buffered == buffered
        conn.start_next_cycle()
    assert targets == [b"/1", b"/2", b"/3"]
    assert conn.next_event() is NEED_DATA
    assert conn.idle


def test_end_of_input_does_not_unpause() -> None:
    conn = HTTPConnection()
    conn.receive_data(R1 + R3)
    conn.receive_data(b"")
    assert isinstance(conn.next_event(), Request)
    assert conn.next_event() is END_OF_MESSAGE
    assert conn.next_event() is PAUSED
    assert conn.next_event() is PAUSED
    conn.start_next_cycle()
    req = conn.next_event()  # the request already received is still served
    assert isinstance(req, Request) and req.target == b"/3"


def test_start_next_cycle_only_when_paused() -> None:
    conn = HTTPConnection()
    with pytest.raises(RuntimeError):
        conn.start_next_cycle()
    conn.receive_data(R2[:-1])
    assert isinstance(conn.next_event(), Request)
    with pytest.raises(RuntimeError):
        conn.start_next_cycle()
    assert conn.next_event() == Data(b"ab")
    assert conn.next_event() is NEED_DATA
    with pytest.raises(RuntimeError):
        conn.start_next_cycle()
    conn.receive_data(b"c")
    assert conn.next_event() == Data(b"c")
    assert conn.next_event() is END_OF_MESSAGE
    assert conn.next_event() is PAUSED
    conn.start_next_cycle()
    assert conn.next_event() is NEED_DATA


def test_body_is_never_parsed_as_a_request() -> None:
    inner = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
    smuggler = b"POST /outer HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%b" % (len(inner), inner)
    for pieces in ([smuggler + R3], [smuggler[i:i + 1] for i in range(len(smuggler))] + [R3]):
        outcome = feed(pieces)
        assert outcome.error is None
        assert [(req.target, body) for req, body, _ in outcome.messages] == [
            (b"/outer", inner), (b"/3", b"")]


def test_chunked_body_is_never_parsed_as_a_request() -> None:
    inner = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
    smuggler = (b"POST /outer HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%b\r\n0\r\n\r\n"
                % (len(inner), inner))
    outcome = feed([smuggler + R3])
    assert [(req.target, body) for req, body, _ in outcome.messages] == [(b"/outer", inner), (b"/3", b"")]


def test_classic_cl_te_smuggling_refused() -> None:
    # The front end might frame by Content-Length and we by chunked (or the reverse): refuse both.
    raw = (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")
    outcome = feed([raw])
    assert outcome.error == 400 and outcome.messages == []


def test_nothing_read_after_a_close_request() -> None:
    outcome = feed([b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" + R1])
    assert outcome.closed and [m[0].target for m in outcome.messages] == [b"/"]


def test_idle_and_in_head() -> None:
    conn = HTTPConnection()
    assert conn.idle and not conn.in_head
    conn.receive_data(b"GET / HT")
    assert not conn.idle and conn.in_head
    assert conn.next_event() is NEED_DATA
    assert conn.in_head
    conn.receive_data(b"TP/1.1\r\nHost: a\r\n")
    assert conn.next_event() is NEED_DATA
    assert conn.in_head
    conn.receive_data(b"\r\n")
    assert isinstance(conn.next_event(), Request)
    assert not conn.in_head and not conn.idle
    assert conn.next_event() is END_OF_MESSAGE
    assert conn.next_event() is PAUSED
    conn.start_next_cycle()
    assert conn.idle


# -- what a Request says ---------------------------------------------------------------------------

def one(raw: bytes) -> Request:
    outcome = feed([raw])
    assert outcome.error is None, outcome.error
    return outcome.messages[0][0]


def test_origin_form_fields() -> None:
    req = one(b"GET /a%20b/c?x=1&y=%2F#frag HTTP/1.1\r\nHost: example.com:8000\r\n\r\n")
    assert (req.method, req.target, req.path, req.query) == (
        "GET", b"/a%20b/c?x=1&y=%2F#frag", b"/a%20b/c", b"x=1&y=%2F")
    assert req.version == (1, 1) and req.host == b"example.com:8000"
    assert req.keep_alive and not req.chunked and not req.has_body and not req.expect_continue
    assert req.content_length == 0


def test_absolute_form_authority_replaces_host() -> None:
    req = one(b"GET https://user:pw@Example.COM:8443/p?q HTTP/1.1\r\nHost: other\r\n\r\n")
    assert (req.path, req.query, req.host) == (b"/p", b"q", b"Example.COM:8443")
    req = one(b"GET http://h?q=1 HTTP/1.1\r\nHost: other\r\n\r\n")
    assert (req.path, req.query, req.host) == (b"/", b"q=1", b"h")


def test_options_star() -> None:
    req = one(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
    assert (req.method, req.target, req.path, req.query) == ("OPTIONS", b"*", b"", b"")


def test_custom_token_methods_kept() -> None:
    assert one(b"-BLARGH / HTTP/1.1\r\nHost: a\r\n\r\n").method == "-BLARGH"
    assert one(b"A" * 20 + b" / HTTP/1.1\r\nHost: a\r\n\r\n").method == "A" * 20
    assert one(b"M-SEARCH /x HTTP/1.1\r\nHost: a\r\n\r\n").method == "M-SEARCH"


@pytest.mark.parametrize(("line", "version"), [
    (b"HTTP/1.0", (1, 0)), (b"HTTP/1.1", (1, 1)), (b"HTTP/1.2", (1, 1)), (b"HTTP/1.9", (1, 1))])
def test_versions(line: bytes, version: tuple[int, int]) -> None:
    assert one(b"GET / " + line + b"\r\nHost: a\r\n\r\n").version == version


@pytest.mark.parametrize(("version", "connection", "keep_alive"), [
    (b"1.1", None, True),
    (b"1.1", b"close", False),
    (b"1.1", b"Keep-Alive, CLOSE", False),
    (b"1.1", b"keep-alive", True),
    (b"1.0", None, False),
    (b"1.0", b"keep-alive", True),
    (b"1.0", b"Keep-Alive", True),
    (b"1.0", b"keep-alive, close", False),
    (b"1.2", b"close", False),
])
def test_keep_alive(version: bytes, connection: bytes | None, keep_alive: bool) -> None:
    raw = b"GET / HTTP/" + version + b"\r\nHost: a\r\n"
    if connection is not None:
        raw += b"Connection: " + connection + b"\r\n"
    assert one(raw + b"\r\n").keep_alive is keep_alive


def test_expect_continue() -> None:
    base = b"POST / HTTP/1.1\r\nHost: a\r\n"
    assert one(base + b"Expect: 100-continue\r\nContent-Length: 1\r\n\r\nx").expect_continue
    assert one(base + b"Expect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").expect_continue
    # no body: nothing to wait for
    assert not one(base + b"Expect: 100-continue\r\n\r\n").expect_continue
    # HTTP/1.0 does not know Expect: ignored, not refused
    req = one(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx")
    assert not req.expect_continue


def test_content_length_and_chunked_fields() -> None:
    req = one(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")
    assert (req.content_length, req.chunked, req.has_body) == (3, False, True)
    req = one(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert (req.content_length, req.chunked, req.has_body) == (None, True, True)
    req = one(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
    assert (req.content_length, req.chunked, req.has_body) == (0, False, False)


def test_content_length_body_comes_as_data() -> None:
    conn = HTTPConnection()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234")
    assert isinstance(conn.next_event(), Request)
    assert conn.next_event() == Data(b"01234")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"56789" + R1)
    assert conn.next_event() == Data(b"56789")
    assert conn.next_event() is END_OF_MESSAGE
    assert conn.buffered == len(R1)


def test_trailers_come_on_the_end_of_message() -> None:
    conn = HTTPConnection()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    req = conn.next_event()
    assert isinstance(req, Request)
    assert conn.next_event() == Data(b"abc")
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"0\r\nX-Sum:  42 \r\nX-B: c d\r\n\r\n")
    end = conn.next_event()
    assert type(end) is EndOfMessage and end is not END_OF_MESSAGE
    assert end.trailers == ((b"X-Sum", b"42"), (b"X-B", b"c d"))
    assert all(type(name) is bytes and type(value) is bytes for name, value in end.trailers)
    assert conn.next_event() is PAUSED


def test_a_chunked_body_without_trailers_ends_with_the_shared_end() -> None:
    conn = HTTPConnection()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n")
    assert isinstance(conn.next_event(), Request)
    assert conn.next_event() == Data(b"x")
    assert conn.next_event() is END_OF_MESSAGE
    assert END_OF_MESSAGE == EndOfMessage(()) and END_OF_MESSAGE.trailers == ()


@pytest.mark.parametrize("event", [
    Request(method="GET", target=b"/", path=b"/", query=b"", version=(1, 1), headers=((b"Host", b"a"),),
            keep_alive=True, expect_continue=False, content_length=0, chunked=False, host=b"a"),
    Data(b"x"), EndOfMessage(((b"X", b"y"),)), END_OF_MESSAGE])
def test_events_are_immutable(event: object) -> None:
    name = dataclasses.fields(event)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(event, name, None)
    with pytest.raises((AttributeError, TypeError)):
        event.extra = 1  # type: ignore[attr-defined]  # slots: no new attributes either

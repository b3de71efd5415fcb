"""ResponseFramer: the server, not the app, decides how a response body is delimited."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pronghorn.http import CONTINUE, HTTPError, ResponseFramer, error_response, reason_phrase

DATE = b"Sat, 28 Nov 2026 04:00:00 GMT"
SERVER = b"pronghorn"


def framer(version: tuple[int, int] = (1, 1), keep_alive: bool = True, head: bool = False) -> ResponseFramer:
    return ResponseFramer(version, keep_alive, head)


def parse_head(raw: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    assert raw.endswith(b"\r\n\r\n")
    lines = raw[:-4].split(b"\r\n")
    fields = []
    for line in lines[1:]:
        name, sep, value = line.partition(b": ")
        assert sep, line
        fields.append((name, value))
    return lines[0], fields


def values(fields: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [v for n, v in fields if n.lower() == name.lower()]


# -- the app's Content-Length ------------------------------------------------------------------------

def test_content_length_from_app() -> None:
    f = framer()
    line, fields = parse_head(f.head("200 OK", [("Content-Length", "5")], DATE, SERVER))
    assert line == b"HTTP/1.1 200 OK"
    assert values(fields, b"Content-Length") == [b"5"]
    assert values(fields, b"Transfer-Encoding") == []
    assert values(fields, b"Connection") == []
    assert f.body(b"hel") == b"hel"
    assert f.body(b"lo, and more") == b"lo"       # longer than announced: cut
    assert f.body(b"even more") == b""
    assert f.end() == b""
    assert f.keep_alive and f.sent == 5 and f.status_code == 200


def test_content_length_shorter_body_closes() -> None:
    f = framer()
    f.head("200 OK", [("Content-Length", "10")], DATE, SERVER)
    assert f.body(b"short") == b"short"
    assert f.keep_alive
    assert f.end() == b""
    assert not f.keep_alive   # the client is owed 5 bytes: only a close ends this response


def test_repeated_identical_content_length_sent_once() -> None:
    f = framer()
    _, fields = parse_head(f.head("200 OK", [("Content-Length", "3"), ("content-length", "3")], DATE, SERVER))
    assert values(fields, b"Content-Length") == [b"3"]


@pytest.mark.parametrize("value", ["-1", "+3", "0x3", "", "3,3", "\u0663"])
def test_bad_content_length_from_app_500(value: str) -> None:
    with pytest.raises(HTTPError) as info:
        framer().head("200 OK", [("Content-Length", value)], DATE, SERVER)
    assert info.value.status == 500


@pytest.mark.parametrize("value", ["3 ", " 3", "\t3"])
def test_whitespace_around_an_app_header_value_is_not_part_of_it(value: str) -> None:
    """RFC 9110 5.5: the whitespace around a field value is not part of it; Gunicorn strips it."""
    _, fields = parse_head(framer().head("200 OK", [("Content-Length", value)], DATE, SERVER))
    assert values(fields, b"Content-Length") == [b"3"]


def test_conflicting_content_length_from_app_500() -> None:
    with pytest.raises(HTTPError) as info:
        framer().head("200 OK", [("Content-Length", "3"), ("Content-Length", "4")], DATE, SERVER)
    assert info.value.status == 500


def test_body_length_argument_adds_content_length() -> None:
    f = framer()
    _, fields = parse_head(f.head("200 OK", [("Content-Type", "text/plain")], DATE, SERVER, body_length=7))
    assert values(fields, b"Content-Length") == [b"7"]
    assert values(fields, b"Transfer-Encoding") == []
    assert f.body(b"1234567") == b"1234567"
    assert f.end() == b"" and f.keep_alive


def test_app_content_length_wins_over_body_length() -> None:
    f = framer()
    _, fields = parse_head(f.head("200 OK", [("Content-Length", "2")], DATE, SERVER, body_length=7))
    assert values(fields, b"Content-Length") == [b"2"]
    assert f.body(b"1234567") == b"12"


# -- chunked on 1.1 ------------------------------------------------------------------------------------

def test_chunked_when_no_length_on_11() -> None:
    f = framer()
    raw = f.head("200 OK", [("Content-Type", "text/plain")], DATE, SERVER)
    _, fields = parse_head(raw)
    assert values(fields, b"Transfer-Encoding") == [b"chunked"]
    assert values(fields, b"Content-Length") == []
    assert f.body(b"hello") == b"5\r\nhello\r\n"
    assert f.body(b"") == b""                      # an empty piece would end the body: nothing sent
    assert f.body(b"x" * 26) == b"1a\r\n" + b"x" * 26 + b"\r\n"
    assert f.end() == b"0\r\n\r\n"
    assert f.keep_alive and f.sent == 31


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_chunked_round_trip(pieces: list[bytes]) -> None:
    """Whatever the pieces, the chunked stream decodes (by our own request decoder) to their join."""
    from pronghorn.http.chunked import ChunkedDecoder

    f = framer()
    f.head("200 OK", [], DATE, SERVER)
    wire = b"".join(f.body(p) for p in pieces) + f.end()
    decoder = ChunkedDecoder(4096, 8190, 100)
    out, pos = decoder.decode(wire, 0)
    assert decoder.done and pos == len(wire)
    assert b"".join(out) == b"".join(pieces)


def test_app_transfer_encoding_dropped() -> None:
    f = framer()
    _, fields = parse_head(f.head("200 OK", [("Transfer-Encoding", "chunked")], DATE, SERVER))
    assert values(fields, b"Transfer-Encoding") == [b"chunked"]   # ours, once
    f = framer()
    _, fields = parse_head(f.head("200 OK", [("Transfer-Encoding", "gzip"), ("Content-Length", "3")],
                                  DATE, SERVER))
    assert values(fields, b"Transfer-Encoding") == []
    assert f.body(b"abcdef") == b"abc"


# -- close-delimited on 1.0 -------------------------------------------------------------------------

def test_close_delimited_on_10() -> None:
    f = framer(version=(1, 0))
    _, fields = parse_head(f.head("200 OK", [], DATE, SERVER))
    assert not f.keep_alive
    assert values(fields, b"Connection") == [b"close"]
    assert values(fields, b"Transfer-Encoding") == [] and values(fields, b"Content-Length") == []
    assert f.body(b"raw bytes") == b"raw bytes"
    assert f.end() == b""


def test_http10_keep_alive_announced() -> None:
    f = framer(version=(1, 0), keep_alive=True)
    _, fields = parse_head(f.head("200 OK", [("Content-Length", "2")], DATE, SERVER))
    assert f.keep_alive
    assert values(fields, b"Connection") == [b"keep-alive"]


def test_http10_not_keep_alive_says_close() -> None:
    f = framer(version=(1, 0), keep_alive=False)
    _, fields = parse_head(f.head("200 OK", [("Content-Length", "2")], DATE, SERVER))
    assert values(fields, b"Connection") == [b"close"]


# -- no body: HEAD, 1xx, 204, 304 -----------------------------------------------------------------

@pytest.mark.parametrize(("status", "head_request"), [
    ("200 OK", True), ("204 No Content", False), ("304 Not Modified", False), ("103 Early Hints", False),
    ("404 Not Found", True)])
def test_no_body_bytes(status: str, head_request: bool) -> None:
    f = framer(head=head_request)
    raw = f.head(status, [("Content-Type", "text/plain")], DATE, SERVER)
    _, fields = parse_head(raw)
    assert values(fields, b"Transfer-Encoding") == []
    assert f.body(b"must not be sent") == b""
    assert f.end() == b""
    assert f.keep_alive and f.sent == 0


def test_head_keeps_app_content_length() -> None:
    f = framer(head=True)
    _, fields = parse_head(f.head("200 OK", [("Content-Length", "1234")], DATE, SERVER))
    assert values(fields, b"Content-Length") == [b"1234"]
    assert f.body(b"x" * 1234) == b""
    assert f.end() == b"" and f.keep_alive


def test_304_keeps_content_length_204_drops_it() -> None:
    _, fields = parse_head(framer().head("304 Not Modified", [("Content-Length", "10")], DATE, SERVER))
    assert values(fields, b"Content-Length") == [b"10"]
    _, fields = parse_head(framer().head("204 No Content", [("Content-Length", "10")], DATE, SERVER))
    assert values(fields, b"Content-Length") == []


def test_head_10_no_length_keeps_alive() -> None:
    # No body follows a HEAD response, so nothing needs a close to delimit it.
    f = framer(version=(1, 0), head=True)
    f.head("200 OK", [], DATE, SERVER)
    assert f.keep_alive


# -- the app's headers ---------------------------------------------------------------------------------

BAD_HEADERS = [
    ("X-A\r\nX-Injected", "v"), ("X-A\n", "v"), ("X\x00A", "v"),
    ("X-A", "v\r\nSet-Cookie: evil=1"), ("X-A", "v\rw"), ("X-A", "v\nw"), ("X-A", "v\x00w"),
    ("X-A", "v\x7f"), ("X-A", "v\x1b"), ("X-A", "\u2028"), ("X-A", "caf\u20ac"),
    ("X A", "v"), ("X:A", "v"), ("", "v"), ("X(A)", "v"), ("X-\u00e9", "v"),
    (b"X-A", "v"), ("X-A", b"v"), ("X-A", 5), (None, "v"),
]


@pytest.mark.parametrize(("name", "value"), BAD_HEADERS)
def test_bad_app_header_500(name: object, value: object) -> None:
    with pytest.raises(HTTPError) as info:
        framer().head("200 OK", [("Content-Type", "text/plain"), (name, value)], DATE, SERVER)  # type: ignore[list-item]
    assert info.value.status == 500


@pytest.mark.parametrize("status", [
    "200", "200OK", "20 OK", "2000 OK", "099 X", "abc OK", "200 OK\r\nX-Injected: 1", "200 OK\n",
    "200 OK\x00", "200 \u20ac", b"200 OK", 200, None, " 200 OK"])
def test_bad_status_500(status: object) -> None:
    with pytest.raises(HTTPError) as info:
        framer().head(status, [], DATE, SERVER)  # type: ignore[arg-type]
    assert info.value.status == 500


def test_good_values_pass_through() -> None:
    f = framer()
    raw = f.head("299 Whatever You Like", [("X-Tab", "a\tb"), ("X-Latin", "caf\u00e9"), ("x-lower", "")],
                 DATE, SERVER)
    assert raw.startswith(b"HTTP/1.1 299 Whatever You Like\r\n")
    assert b"\r\nX-Tab: a\tb\r\n" in raw
    assert b"\r\nX-Latin: caf\xe9\r\n" in raw
    assert b"\r\nx-lower: \r\n" in raw
    assert f.status_code == 299


@pytest.mark.parametrize("value", ["close", "Close", "keep-alive, close", "CLOSE"])
def test_app_connection_close(value: str) -> None:
    f = framer()
    _, fields = parse_head(f.head("200 OK", [("Connection", value), ("Content-Length", "0")], DATE, SERVER))
    assert not f.keep_alive
    assert values(fields, b"Connection") == [b"close"]


def test_app_connection_token_containing_close_keeps_alive() -> None:
    f = framer()
    f.head("200 OK", [("Connection", "x-closed"), ("Content-Length", "0")], DATE, SERVER)
    assert f.keep_alive


def test_app_hop_by_hop_dropped() -> None:
    f = framer()
    _, fields = parse_head(f.head("200 OK", [("Connection", "keep-alive"), ("Keep-Alive", "timeout=5"),
                                             ("Content-Length", "0")], DATE, SERVER))
    assert f.keep_alive
    assert values(fields, b"Connection") == [] and values(fields, b"Keep-Alive") == []


def test_not_keep_alive_request_says_close() -> None:
    f = framer(keep_alive=False)
    _, fields = parse_head(f.head("200 OK", [("Content-Length", "0")], DATE, SERVER))
    assert values(fields, b"Connection") == [b"close"]


def test_date_and_server_added() -> None:
    _, fields = parse_head(framer().head("200 OK", [("Content-Length", "0")], DATE, SERVER))
    assert values(fields, b"Date") == [DATE] and values(fields, b"Server") == [SERVER]


def test_date_and_server_from_app_kept() -> None:
    _, fields = parse_head(framer().head(
        "200 OK", [("date", "Thu, 01 Jan 1970 00:00:00 GMT"), ("SERVER", "app/1"), ("Content-Length", "0")],
        DATE, SERVER))
    assert values(fields, b"Date") == [b"Thu, 01 Jan 1970 00:00:00 GMT"]
    assert values(fields, b"Server") == [b"app/1"]


def test_app_header_order_and_repeats_kept() -> None:
    raw = framer().head("200 OK", [("Set-Cookie", "a=1"), ("X-B", "2"), ("Set-Cookie", "c=3"),
                                   ("Content-Length", "0")], DATE, SERVER)
    _, fields = parse_head(raw)
    assert [f for f in fields if f[0] in (b"Set-Cookie", b"X-B")] == [
        (b"Set-Cookie", b"a=1"), (b"X-B", b"2"), (b"Set-Cookie", b"c=3")]


# -- reserve() (bytes sent around body(), e.g. sendfile) -----------------------------------------------

def test_reserve() -> None:
    f = framer()
    f.head("200 OK", [("Content-Length", "10")], DATE, SERVER)
    assert f.reserve(4) == 4
    assert f.reserve(100) == 6
    assert f.reserve(1) == 0
    assert f.end() == b"" and f.keep_alive and f.sent == 10
    f = framer()
    f.head("200 OK", [], DATE, SERVER)
    with pytest.raises(RuntimeError):
        f.reserve(1)
    f = framer(head=True)
    f.head("200 OK", [("Content-Length", "10")], DATE, SERVER)
    assert f.reserve(10) == 0


# -- canned responses ---------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [400, 408, 413, 414, 417, 431, 500, 501, 505])
def test_error_response(status: int) -> None:
    raw = error_response(status, "detail \u00e9\u20ac", DATE, SERVER)
    head_raw, _, body = raw.partition(b"\r\n\r\n")
    line, fields = parse_head(head_raw + b"\r\n\r\n")
    assert line == b"HTTP/1.1 %d %s" % (status, reason_phrase(status).encode())
    assert reason_phrase(status) != "Error"
    assert values(fields, b"Connection") == [b"close"]
    assert values(fields, b"Content-Length") == [str(len(body)).encode()]
    assert body.startswith(b"%d " % status)


def test_continue() -> None:
    assert CONTINUE == b"HTTP/1.1 100 Continue\r\n\r\n"


def test_head_gets_the_length_get_would_have() -> None:
    f = framer(head=True)
    _, fields = parse_head(f.head("200 OK", [], DATE, SERVER, body_length=13))
    assert values(fields, b"Content-Length") == [b"13"]
    assert f.body(b"Hello, world!") == b"" and f.end() == b""
    assert f.keep_alive


def test_head_204_gets_no_length() -> None:
    f = framer(head=True)
    _, fields = parse_head(f.head("204 No Content", [], DATE, SERVER, body_length=0))
    assert values(fields, b"Content-Length") == []


# -- whole(): a body given in one piece ----------------------------------------------------------------

def _state(f: ResponseFramer) -> tuple[object, ...]:
    return (f.keep_alive, f.status_code, f.sent, f.end())


@given(status=st.sampled_from(["200 OK", "204 No Content", "304 Not Modified", "404 Not Found",
                               "101 Switching Protocols"]),
       length=st.sampled_from([None, 0, 3, 5, 9]),
       extra=st.sampled_from([[], [("Connection", "close")], [("Date", "x")], [("Server", "y")]]),
       body=st.sampled_from([b"", b"abc", b"hello", b"too long!"]),
       version=st.sampled_from([(1, 0), (1, 1)]), keep_alive=st.booleans(), head=st.booleans())
@settings(max_examples=400)
def test_whole_is_head_body_and_end(status: str, length: int | None, extra: list[tuple[str, str]],
                                    body: bytes, version: tuple[int, int], keep_alive: bool,
                                    head: bool) -> None:
    """Its short way (keep-alive HTTP/1.1, the app's matching Content-Length) and the general one
    frame exactly as head() + body() + end() would, and leave the framer in the same state."""
    headers = [("Content-Type", "text/plain"), *extra]
    if length is not None:
        headers.append(("Content-Length", str(length)))
    general = framer(version, keep_alive, head)
    expected = general.head(status, headers, DATE, SERVER, len(body)) + general.body(body)
    for _ in range(2):  # the second time from the head kept for this second
        got = framer(version, keep_alive, head)
        assert got.whole(status, headers, DATE, SERVER, body) == expected + general.end()
        assert _state(got) == _state(general)


def test_whole_makes_a_new_head_when_the_date_changes() -> None:
    headers = [("Content-Length", "2")]
    first = framer().whole("200 OK", headers, DATE, SERVER, b"hi")
    later = b"Sat, 28 Nov 2026 04:00:01 GMT"
    second = framer().whole("200 OK", headers, later, SERVER, b"hi")
    assert DATE in first and later in second and DATE not in second
    assert framer().whole("200 OK", headers, later, b"other", b"hi").count(b"Server: other\r\n") == 1

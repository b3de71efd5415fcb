"""HTTP/1.1 on the wire, against a real server: keep-alive, pipelining, Expect, HEAD/204/304, HTTP/1.0,
request targets, chunked requests, response framing, strict parsing, limits and timeouts.

Everything is raw bytes over real sockets, so the tests see exactly what the server sends.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import socket
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from conftest import connect, exchange
from wire import Incomplete, Reader, Response, get, post, request, serve

APP = "behaviours:app"

# The same tests under every worker class (sync, gthread, gevent).
pytestmark = pytest.mark.usefixtures("worker_class")


@pytest.fixture(scope="module")
def address(worker_class: str) -> Iterator[str]:
    with serve("-b", "127.0.0.1:0", APP) as (_, addresses):
        yield addresses[0]


@pytest.fixture(scope="module")
def short_timeouts(worker_class: str) -> Iterator[str]:
    with serve("-b", "127.0.0.1:0", "--keep-alive", "1", "--header-timeout", "1", APP) as (_, addresses):
        yield addresses[0]


LIMITS = {"line": 64, "fields": 6, "field_size": 64, "body": 16}


@pytest.fixture(scope="module")
def limited(worker_class: str) -> Iterator[str]:
    with serve("-b", "127.0.0.1:0",
               "--limit-request-line", str(LIMITS["line"]),
               "--limit-request-fields", str(LIMITS["fields"]),
               "--limit-request-field_size", str(LIMITS["field_size"]),
               "--limit-request-body", str(LIMITS["body"]), APP) as (_, addresses):
        yield addresses[0]


def req(target: str, *headers: str, method: str = "GET", body: bytes = b"",
        version: str = "1.1") -> bytes:
    lines = [f"{method} {target} HTTP/{version}", "Host: test.example", *headers]
    if body and not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# -- keep-alive --------------------------------------------------------------------------------------

def test_keep_alive_serves_several_requests_on_one_connection(address: str) -> None:
    with connect(address) as sock:
        reader = Reader(sock)
        for number in range(3):
            sock.sendall(req(f"/ka/{number}", body=b"n=%d" % number, method="POST"))
            response = reader.read_response()
            assert response.status == 200
            assert not response.closes
            assert response.json()["path"] == f"/ka/{number}"
            assert response.json()["body"] == f"n={number}"
        sock.sendall(req("/ka/last", "Connection: close"))
        last = reader.read_response()
        assert last.closes and last.json()["path"] == "/ka/last"
        assert reader.closed()


def test_keep_alive_timeout_closes_an_idle_connection(short_timeouts: str) -> None:
    # --keep-alive 1: the server must close the idle connection itself; the 10 s socket timeout is
    # only a guard (recv raising socket.timeout fails the test).
    with connect(short_timeouts, timeout=10) as sock:
        reader = Reader(sock)
        sock.sendall(req("/before-idle"))
        assert reader.read_response().status == 200
        assert reader.closed()


def test_keep_alive_timeout_closes_a_connection_that_never_sent_anything(short_timeouts: str) -> None:
    with connect(short_timeouts, timeout=10) as sock:
        assert Reader(sock).closed()


# -- pipelining ---------------------------------------------------------------------------------------

def test_the_same_upload_again_and_again_gets_each_body_to_the_app(address: str) -> None:
    """The same head with a new body each time, as a client repeating an upload does: each body
    reaches the app whole and as sent, whether it came in the head's read or after it (a repeated
    head is not parsed again; its body must never be taken from an earlier request)."""
    with connect(address) as sock:
        reader = Reader(sock)
        for i, split in enumerate([None, None, None, 0, 1500, None]):
            body = bytes([65 + i]) * 3000
            whole = req("/up", method="POST", body=body)
            if split is None:
                sock.sendall(whole)
            else:  # the head (and part of the body), then the rest
                cut = len(whole) - len(body) + split
                sock.sendall(whole[:cut])
                sock.sendall(whole[cut:])
            answer = reader.read_response()
            assert answer.status == 200 and answer.json()["body"] == body.decode(), (i, split)


def test_pipelined_requests_are_answered_in_order(address: str) -> None:
    batch = (req("/p/1") + req("/p/2", method="POST", body=b"second body")
             + req("/p/3", method="HEAD") + req("/stream", "X-Seq: 4")
             + req("/p/5", "Transfer-Encoding: chunked", method="POST", body=b"3\r\nabc\r\n0\r\n\r\n")
             + req("/p/6", "Connection: close"))
    with connect(address) as sock:
        sock.sendall(batch)
        reader = Reader(sock)
        first = reader.read_response()
        assert first.json()["path"] == "/p/1"
        second = reader.read_response()
        assert second.json()["path"] == "/p/2" and second.json()["body"] == "second body"
        third = reader.read_response("HEAD")
        assert third.status == 200 and third.body == b""
        fourth = reader.read_response()
        assert fourth.body == b"alphabetagamma"
        fifth = reader.read_response()
        assert fifth.json()["path"] == "/p/5" and fifth.json()["body"] == "abc"
        sixth = reader.read_response()
        assert sixth.json()["path"] == "/p/6" and sixth.closes
        assert reader.closed()


def test_many_pipelined_requests_in_one_packet(address: str) -> None:
    count = 50
    with connect(address) as sock:
        sock.sendall(b"".join(req(f"/many/{i}") for i in range(count)) + req("/many/end",
                                                                          "Connection: close"))
        reader = Reader(sock)
        paths = [reader.read_response().json()["path"] for _ in range(count + 1)]
        assert paths == [f"/many/{i}" for i in range(count)] + ["/many/end"]
        assert reader.closed()


# -- Expect: 100-continue ------------------------------------------------------------------------------

def test_expect_100_continue_interim_response_precedes_the_final_one(address: str) -> None:
    body = b"expected body"
    with connect(address) as sock:
        sock.sendall(req("/expect", "Expect: 100-continue", f"Content-Length: {len(body)}",
                         method="POST"))
        sock.sendall(body)
        reader = Reader(sock)
        interim = reader.read_response(interim=True)
        assert (interim.version, interim.status) == ("HTTP/1.1", 100)
        assert interim.head == b"HTTP/1.1 100 Continue\r\n\r\n"
        final = reader.read_response()
        assert final.status == 200
        assert final.json()["body"] == "expected body"
        # The connection goes on: the next request is answered normally, with no stray 100.
        sock.sendall(req("/after-expect", "Connection: close"))
        after = reader.read_response(interim=True)
        assert after.status == 200 and after.json()["path"] == "/after-expect"


def test_expect_100_continue_arrives_before_the_client_sends_the_body(address: str) -> None:
    # What curl and browsers do: send the head, wait for 100 Continue, only then send the body.
    # The socket timeout (10 s) is the guard; the server must not wait for a body it did not ask for.
    body = b"sent only after 100"
    with connect(address) as sock:
        sock.sendall(req("/expect-wait", "Expect: 100-continue", f"Content-Length: {len(body)}",
                         "Connection: close", method="POST"))
        reader = Reader(sock)
        interim = reader.read_response(interim=True)
        assert interim.status == 100
        sock.sendall(body)
        final = reader.read_response()
        assert final.status == 200 and final.json()["body"] == body.decode()
        assert reader.closed()


def test_expect_100_continue_not_sent_when_the_app_ignores_the_body(address: str,
                                                                    worker_class: str) -> None:
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
    with connect(address) as sock:
        sock.sendall(req("/ignore-body", "Expect: 100-continue",
                         f"Content-Length: {len(smuggled)}", method="POST"))
        reader = Reader(sock)
        final = reader.read_response(interim=True)
        if worker_class in ("sync", "gthread"):
            # Their app calls never wait for a client, so they say Continue at once and take the
            # body before calling the app, as Gunicorn does (docs/workers.md): the body the client
            # sends is read as a body.
            assert final.status == 100
            sock.sendall(smuggled)
            final = reader.read_response(interim=True)
        # (gevent calls the app first: it answers without the client sending any body.)
        assert final.status == 200 and final.body == b"ignored the body"
        # The client sends the body after all; it must never be taken for a request. The server
        # may close (then these sends can fail) or discard it; either way /smuggled is not served.
        late_body = b"" if worker_class in ("sync", "gthread") else smuggled  # (taken already)
        try:
            sock.sendall(late_body + req("/after-ignored", "Connection: close"))
        except OSError:
            pass
        while not reader.eof:
            reader._fill()
        assert b"smuggled" not in bytes(reader.received)


def test_expect_100_continue_with_a_chunked_body(address: str) -> None:
    with connect(address) as sock:
        sock.sendall(req("/expect-chunked", "Expect: 100-continue", "Transfer-Encoding: chunked",
                         "Connection: close", method="POST"))
        sock.sendall(b"4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n")
        reader = Reader(sock)
        assert reader.read_response(interim=True).status == 100
        final = reader.read_response()
        assert final.json()["body"] == "wikipedia"


def test_trailers_of_a_body_sent_after_100_continue_reach_the_app(address: str) -> None:
    """The environ exists before such a body arrives: its trailers are in it once the app has read
    wsgi.input (the echo app reads the body first)."""
    with connect(address) as sock:
        sock.sendall(req("/expect-trailers", "Expect: 100-continue", "Transfer-Encoding: chunked",
                         "Connection: close", method="POST"))
        sock.sendall(b"4\r\nwiki\r\n0\r\nX-Sum: 9\r\nX-Other: two\r\n\r\n")
        reader = Reader(sock)
        assert reader.read_response(interim=True).status == 100
        data = reader.read_response().json()
    assert data["body"] == "wiki"
    assert [tuple(t) for t in data["trailers"]] == [("X-Sum", "9"), ("X-Other", "two")]


def test_other_expectations_get_417(address: str) -> None:
    with connect(address) as sock:
        sock.sendall(req("/expect", "Expect: something-else", "Content-Length: 4", method="POST"))
        reader = Reader(sock)
        response = reader.read_response(interim=True)
        assert response.status == 417
        assert response.closes
        assert reader.closed()


# -- bodiless responses -------------------------------------------------------------------------------

def test_head_response_has_no_body_and_the_connection_stays_in_step(address: str) -> None:
    with connect(address) as sock:
        sock.sendall(req("/cl?declared=10&actual=10", method="HEAD") + req("/stream", method="HEAD")
                     + req("/after-head", "Connection: close"))
        reader = Reader(sock)
        with_length = reader.read_response("HEAD")
        assert with_length.status == 200 and with_length.header("content-length") == "10"
        streamed = reader.read_response("HEAD")
        assert streamed.status == 200
        # Nothing may follow the heads: the next bytes are the next response's status line.
        assert reader.buf.startswith(b"HTTP/1.1 200 ") or reader.buf == b""
        after = reader.read_response()
        assert after.json()["path"] == "/after-head"
        assert reader.closed()


@pytest.mark.parametrize("code", ["204", "304"])
def test_204_and_304_have_no_body(address: str, code: str) -> None:
    with connect(address) as sock:
        sock.sendall(req(f"/status?code={code}") + req("/after-status", "Connection: close"))
        reader = Reader(sock)
        response = reader.read_response()
        assert response.status == int(code)
        assert response.header("transfer-encoding") is None
        if code == "204":
            assert response.header("content-length") is None
        assert reader.buf.startswith(b"HTTP/1.1 200 ") or reader.buf == b""
        after = reader.read_response()
        assert after.json()["path"] == "/after-status"
        assert b"must not be sent" not in after.body
        assert reader.closed()


# -- HTTP/1.0 -----------------------------------------------------------------------------------------

def test_http10_closes_by_default(address: str) -> None:
    with connect(address) as sock:
        sock.sendall(b"GET /old HTTP/1.0\r\n\r\n")
        reader = Reader(sock)
        response = reader.read_response()
        assert response.status == 200
        assert response.json()["protocol"] == "HTTP/1.0"
        assert reader.closed()


def test_http10_keep_alive_when_asked(address: str) -> None:
    with connect(address) as sock:
        reader = Reader(sock)
        sock.sendall(b"GET /old/1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        first = reader.read_response()
        assert first.header("connection").lower() == "keep-alive"
        sock.sendall(b"GET /old/2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        second = reader.read_response()
        assert second.json()["path"] == "/old/2"
        sock.sendall(b"GET /old/3 HTTP/1.0\r\n\r\n")
        assert reader.read_response().json()["path"] == "/old/3"
        assert reader.closed()


def test_http10_unknown_length_body_is_close_delimited(address: str) -> None:
    with connect(address) as sock:
        sock.sendall(b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        reader = Reader(sock)
        response = reader.read_response()
        assert response.header("transfer-encoding") is None
        assert response.header("content-length") is None
        assert response.closes
        assert response.body == b"alphabetagamma"
        assert reader.eof


# -- request targets -----------------------------------------------------------------------------------

def test_absolute_form_target(address: str) -> None:
    response = request(address, b"GET http://example.org:8080/abs/path?x=1&y=2 HTTP/1.1\r\n"
                                b"Host: example.org:8080\r\nConnection: close\r\n\r\n")
    data = response.json()
    assert response.status == 200
    assert data["path"] == "/abs/path"
    assert data["query"] == "x=1&y=2"
    # SERVER_NAME/PORT are the listener's on TCP (Gunicorn's); the Host is the target's authority.
    assert data["server_name"] == "127.0.0.1"
    assert data["server_port"] == address.rsplit(":", 1)[1]


def test_options_asterisk(address: str) -> None:
    response = request(address, b"OPTIONS * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    data = response.json()
    assert response.status == 200
    assert data["method"] == "OPTIONS"
    assert data["path"] == ""
    assert data["raw_uri"] == "*"


# -- chunked requests ------------------------------------------------------------------------------------

def test_chunked_request_with_extensions_and_trailers(address: str) -> None:
    body = (b"5;name=value\r\nhello\r\n"
            b"6;quoted=\"a b\";flag\r\n world\r\n"
            b"0;last=1\r\nX-Checksum: abc123\r\nX-Other: two\r\n\r\n")
    response = request(address, req("/chunked", "Transfer-Encoding: chunked", "Connection: close",
                                    method="POST", body=body))
    data = response.json()
    assert response.status == 200
    assert data["body"] == "hello world"
    assert data["content_length"] == "11"
    assert [tuple(t) for t in data["trailers"]] == [("X-Checksum", "abc123"), ("X-Other", "two")]


def test_chunked_request_split_at_every_byte(address: str) -> None:
    raw = req("/split", "Transfer-Encoding: chunked", "Connection: close", method="POST",
              body=b"3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n")
    with connect(address) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(raw)):
            sock.send(raw[i:i + 1])
        response = Reader(sock).read_response()
    assert response.json()["body"] == "abcde"


def test_large_chunked_request(address: str) -> None:
    piece = bytes(range(256)) * 64  # 16 KiB
    body = b"".join(b"%x\r\n%b\r\n" % (len(piece), piece) for _ in range(80)) + b"0\r\n\r\n"
    with connect(address) as sock:
        sock.sendall(req("/digest", "Transfer-Encoding: chunked", "Connection: close",
                         method="POST", body=body))
        data = Reader(sock).read_response().json()
    assert data["size"] == len(piece) * 80
    assert data["content_length"] == str(len(piece) * 80)


# -- response framing ------------------------------------------------------------------------------------

@pytest.mark.parametrize("stream", ["", "1"])
def test_longer_body_than_content_length_is_cut(address: str, stream: str) -> None:
    with connect(address) as sock:
        sock.sendall(req(f"/cl?declared=5&actual=12&stream={stream}")
                     + req("/after-cut", "Connection: close"))
        reader = Reader(sock)
        cut = reader.read_response()
        assert cut.header("content-length") == "5"
        assert cut.body == b"01234"
        after = reader.read_response()
        assert after.json()["path"] == "/after-cut"
        assert reader.closed()


@pytest.mark.parametrize("stream", ["", "1"])
def test_shorter_body_than_content_length_closes_the_connection(address: str, stream: str) -> None:
    with connect(address) as sock:
        sock.sendall(req(f"/cl?declared=20&actual=6&stream={stream}") + req("/never-answered"))
        reader = Reader(sock)
        with pytest.raises(Incomplete) as short:
            reader.read_response()
        assert short.value.data == b"012345"
        assert reader.eof


def test_unknown_length_is_chunked_on_http11(address: str) -> None:
    with connect(address) as sock:
        sock.sendall(req("/stream?pieces=one,two,three") + req("/after-chunked", "Connection: close"))
        reader = Reader(sock)
        response = reader.read_response()
        assert response.chunked
        assert response.header("content-length") is None
        assert response.body == b"onetwothree"
        assert reader.read_response().json()["path"] == "/after-chunked"


def test_date_and_server_headers(address: str) -> None:
    for response in (get(address, "/dated"), get(address, "/stream"),
                     request(address, b"GET / HTTP/1.1\r\n\r\n")):  # the last one is a 400
        assert len(response.all("date")) == 1, response.head
        assert email.utils.parsedate_to_datetime(response.header("date")).tzinfo is not None
        assert response.header("date").endswith(" GMT")
        assert len(response.all("server")) == 1
        assert response.header("server").startswith("pronghorn")


def test_app_header_values_go_out_without_the_whitespace_around_them(address: str) -> None:
    """As Gunicorn sends them: Django's Set-Cookie values begin with a space."""
    response = request(address, req("/spaced-header", "Connection: close"))
    assert response.status == 200 and response.body == b"ok"
    assert b"\r\nSet-Cookie: sessionid=abc; Path=/\r\n" in response.head
    assert b"\r\nContent-Length: 2\r\n" in response.head


@pytest.mark.parametrize("kind", ["value-crlf", "value-lf", "value-cr", "value-nul",
                                  "name-crlf", "name-lf", "name-nul", "name-cr"])
def test_cr_lf_nul_in_app_headers_is_a_500_not_a_split_response(address: str, kind: str) -> None:
    with connect(address) as sock:
        sock.sendall(req(f"/bad-header?kind={kind}") + req("/after-500", "Connection: close"))
        reader = Reader(sock)
        response = reader.read_response()
        assert response.status == 500
        assert b"X-Injected" not in response.head
        assert b"must not be sent" not in response.body
        rest = reader.buf
        while not reader.eof:
            reader._fill()
        assert b"X-Injected" not in bytes(reader.buf)
        assert not rest.startswith(b"X-") and b"must not be sent" not in bytes(reader.buf)


# -- strict parsing: one error response, Connection: close, closed ------------------------------------

BAD_REQUESTS = {
    "content-length-and-chunked": (400, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                                        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "conflicting-content-lengths": (400, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
                                         b"Content-Length: 2\r\n\r\nxx"),
    "signed-content-length": (400, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +1\r\n\r\nx"),
    "unknown-transfer-coding": (501, b"POST / HTTP/1.1\r\nHost: t\r\n"
                                     b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
    "chunked-not-last": (400, b"POST / HTTP/1.1\r\nHost: t\r\n"
                              b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"),
    "chunked-in-http10": (400, b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "no-host-in-http11": (400, b"GET / HTTP/1.1\r\n\r\n"),
    "two-hosts": (400, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    "bad-chunk-size": (400, b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"zz\r\nabc\r\n0\r\n\r\n"),
    "chunk-without-crlf": (400, b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                                b"3\r\nabcX\r\n0\r\n\r\n"),
    "space-before-colon": (400, b"GET / HTTP/1.1\r\nHost: t\r\nX-Bad : 1\r\n\r\n"),
    "obs-fold": (400, b"GET / HTTP/1.1\r\nHost: t\r\nX-Fold: a\r\n  b\r\n\r\n"),
    "bare-lf": (400, b"GET / HTTP/1.1\nHost: t\n\n"),
    "nul-in-value": (400, b"GET / HTTP/1.1\r\nHost: t\r\nX-Nul: a\x00b\r\n\r\n"),
    "garbage": (400, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
    "http2-version": (505, b"GET / HTTP/2.0\r\nHost: t\r\n\r\n"),
    "lowercase-version": (400, b"GET / http/1.1\r\nHost: t\r\n\r\n"),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_bad_framing_gets_one_error_response_and_a_close(address: str, name: str) -> None:
    status, raw = BAD_REQUESTS[name]
    # A valid request follows in the same packet: it must never be answered.
    data = exchange(address, raw + b"GET /must-not-be-served HTTP/1.1\r\nHost: t\r\n\r\n")
    assert one_error_response(data).status == status, data
    assert b"must-not-be-served" not in data


class _Replay:
    """A finished exchange as a socket-like object for Reader."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def recv(self, size: int) -> bytes:
        data, self.data = self.data[:size], self.data[size:]
        return data


def one_error_response(data: bytes) -> Response:
    """``data`` (all the server sent before it closed) is exactly one response announcing the close."""
    reader = Reader(_Replay(data))  # type: ignore[arg-type]
    response = reader.read_response(interim=True)
    assert response.closes, data
    assert reader.closed(), f"bytes after the error response: {bytes(reader.buf)!r}"
    return response


# -- limits ---------------------------------------------------------------------------------------------

def test_limits_allow_what_is_within_them(limited: str) -> None:
    target = "/" + "a" * (LIMITS["line"] - len("GET / HTTP/1.1") - 5)
    headers = [f"X-F{i}: v" for i in range(LIMITS["fields"] - 2)]  # + Host + Connection
    response = post(limited, target, b"b" * LIMITS["body"], *headers[:-1])
    assert response.status == 200, response.body
    assert response.json()["body"] == "b" * LIMITS["body"]


def test_request_line_too_long_is_414(limited: str) -> None:
    target = "/" + "a" * (LIMITS["line"] + 10)
    data = exchange(limited, req(target))
    assert one_error_response(data).status == 414, data


def test_too_many_header_fields_is_431(limited: str) -> None:
    headers = [f"X-F{i}: v" for i in range(LIMITS["fields"] + 5)]
    data = exchange(limited, req("/", *headers))
    assert one_error_response(data).status == 431, data


def test_header_field_too_large_is_431(limited: str) -> None:
    data = exchange(limited, req("/", "X-Big: " + "v" * (LIMITS["field_size"] + 10)))
    assert one_error_response(data).status == 431, data


def test_body_too_large_is_413_before_the_body_is_sent(limited: str) -> None:
    with connect(limited) as sock:
        # Only the head: the answer must come without the server waiting for the body.
        sock.sendall(req("/upload", f"Content-Length: {LIMITS['body'] * 100}", method="POST"))
        reader = Reader(sock)
        response = reader.read_response()
        assert response.status == 413
        assert response.closes
        assert reader.closed()


def test_body_too_large_with_expect_gets_413_and_no_100(limited: str) -> None:
    with connect(limited) as sock:
        sock.sendall(req("/upload", "Expect: 100-continue",
                         f"Content-Length: {LIMITS['body'] * 100}", method="POST"))
        reader = Reader(sock)
        response = reader.read_response(interim=True)
        assert response.status == 413
        assert reader.closed()


def test_chunked_body_too_large_is_413(limited: str) -> None:
    body = b"".join(b"8\r\n%b\r\n" % (b"c" * 8) for _ in range(10)) + b"0\r\n\r\n"
    data = exchange(limited, req("/upload", "Transfer-Encoding: chunked", method="POST", body=body))
    assert one_error_response(data).status == 413, data


# -- header timeout ------------------------------------------------------------------------------------

def test_incomplete_head_gets_408_and_close(short_timeouts: str) -> None:
    with connect(short_timeouts, timeout=10) as sock:  # 10 s: a guard; --header-timeout is 1
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\nX-Partial: ")
        reader = Reader(sock)
        response = reader.read_response()
        assert response.status == 408
        assert response.closes
        assert reader.closed()


# -- what reaches the app ------------------------------------------------------------------------------

def test_header_names_with_underscores_never_reach_the_app(address: str) -> None:
    response = get(address, "/underscores", "X_Forwarded_For: 6.6.6.6", "X-Forwarded-For: 1.2.3.4",
                   "Client_IP: 6.6.6.6", "X-Real-IP: 5.6.7.8", "Content_Length: 99")
    headers = dict(response.json()["headers"])
    assert headers["HTTP_X_FORWARDED_FOR"] == "1.2.3.4"
    assert headers["HTTP_X_REAL_IP"] == "5.6.7.8"
    assert "HTTP_CLIENT_IP" not in headers
    assert "6.6.6.6" not in response.body.decode()
    assert response.json()["content_length"] is None


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_the_app_did_not_read_is_never_parsed_as_a_request(address: str, chunked: bool) -> None:
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
    if chunked:
        first = req("/ignore-body", "Transfer-Encoding: chunked", method="POST",
                    body=b"%x\r\n%b\r\n0\r\n\r\n" % (len(smuggled), smuggled))
    else:
        first = req("/ignore-body", method="POST", body=smuggled)
    with connect(address) as sock:
        sock.sendall(first + req("/after-ignored", "Connection: close"))
        reader = Reader(sock)
        assert reader.read_response().body == b"ignored the body"
        after = reader.read_response()
        assert after.json()["path"] == "/after-ignored"
        assert reader.closed()


# -- curl, a real client ---------------------------------------------------------------------------------

def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result


def test_curl_reuses_the_keep_alive_connection(address: str) -> None:
    result = curl("-v", f"{address}/curl/one", f"{address}/curl/two")
    log = result.stderr.decode(errors="replace")
    assert log.count("Connected to") == 1, log
    assert b'"path": "/curl/one"' in result.stdout and b'"path": "/curl/two"' in result.stdout


def test_curl_upload_with_expect_100_continue(address: str, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 400  # 100 KiB
    upload = tmp_path / "upload.bin"
    upload.write_bytes(payload)
    result = curl("-v", "-H", "Expect: 100-continue", "--data-binary", f"@{upload}",
                  "-H", "Content-Type: application/octet-stream", f"{address}/digest")
    assert "HTTP/1.1 100 Continue" in result.stderr.decode(errors="replace")
    data = json.loads(result.stdout)
    assert data["size"] == len(payload)
    assert data["sha256"] == hashlib.sha256(payload).hexdigest()


def test_curl_chunked_upload(address: str, tmp_path: Path) -> None:
    upload = tmp_path / "chunked.txt"
    upload.write_bytes(b"chunked by curl\n" * 1000)
    result = curl("-H", "Transfer-Encoding: chunked", "--data-binary", f"@{upload}",
                  f"{address}/digest")
    assert b'"size": 16000' in result.stdout

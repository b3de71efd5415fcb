"""What the HTTP core refuses, and with which status (RFC 9110/9112; docs/http.md has the table).

Each refused request is followed in the same buffer by a valid request for /after-fault: it must never
come out, since nothing after a framing error is parsed. The feeding helper also checks that a dead
connection yields nothing more, whatever bytes arrive after the error.
"""

from __future__ import annotations

import pytest

from _httpfeed import feed
from pronghorn.http import NEED_DATA, HTTPConnection, HTTPError, Limits, Request

AFTER = b"GET /after-fault HTTP/1.1\r\nHost: a\r\n\r\n"


def head(*fields: bytes, line: bytes = b"GET / HTTP/1.1", body: bytes = b"") -> bytes:
    return line + b"\r\n" + b"".join(f + b"\r\n" for f in fields) + b"\r\n" + body


def chunked(body: bytes, *fields: bytes) -> bytes:
    return head(b"Host: a", b"Transfer-Encoding: chunked", *fields, line=b"POST / HTTP/1.1", body=body)


H = b"Host: a"

CASES: list[tuple[str, bytes, int]] = [
    # whitespace between a field name and its colon
    ("space-before-colon", head(b"Host : a"), 400),
    ("tab-before-colon", head(H, b"X-A\t: b"), 400),
    # obs-fold
    ("obs-fold-space", head(H, b"X-A: b", b" c"), 400),
    ("obs-fold-tab", head(H, b"X-A: b", b"\tc"), 400),
    ("obs-fold-first-line", head(b" X-A: b", H), 400),
    # control characters in values
    ("nul-in-value", head(H, b"X-A: a\x00b"), 400),
    ("cr-in-value", head(H, b"X-A: a\rb"), 400),
    ("lf-in-value", head(H, b"X-A: a\nb"), 400),
    ("bel-in-value", head(H, b"X-A: a\x07b"), 400),
    ("del-in-value", head(H, b"X-A: a\x7fb"), 400),
    ("esc-in-value", head(H, b"X-A: a\x1bb"), 400),
    ("nul-in-host", head(b"Host: a\x00"), 400),
    # bare line endings
    ("bare-lf-request-line", b"GET / HTTP/1.1\nHost: a\r\n\r\n", 400),
    ("bare-cr-request-line", b"GET / HTTP/1.1\rHost: a\r\n\r\n", 400),
    ("bare-lf-header", b"GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n", 400),
    ("bare-cr-header", b"GET / HTTP/1.1\r\nHost: a\rX-A: b\r\n\r\n", 400),
    ("bare-lf-end-of-head", b"GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
    ("all-bare-lf", b"GET / HTTP/1.1\nHost: a\n\n", 400),
    ("bare-cr-in-target", b"GET /a\rb HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    # invalid field names
    ("name-paren", head(H, b"X(: a"), 400),
    ("name-at", head(H, b"X@Y: a"), 400),
    ("name-quote", head(H, b'X"Y: a'), 400),
    ("name-space", head(H, b"X Y: a"), 400),
    ("name-empty", head(H, b": a"), 400),
    ("name-nul", head(H, b"X\x00: a"), 400),
    ("name-non-ascii", head(H, b"X\xe9: a"), 400),
    ("name-no-colon", head(H, b"X-A"), 400),
    # Content-Length that is not plain digits, repeated, or with Transfer-Encoding
    ("cl-plus", head(H, b"Content-Length: +3", body=b"abc"), 400),
    ("cl-minus", head(H, b"Content-Length: -1"), 400),
    ("cl-space", head(H, b"Content-Length: 3 1", body=b"abc"), 400),
    ("cl-list", head(H, b"Content-Length: 5, 5", body=b"hello"), 400),
    ("cl-hex", head(H, b"Content-Length: 0x5", body=b"hello"), 400),
    ("cl-empty", head(H, b"Content-Length: "), 400),
    ("cl-overflow", head(H, b"Content-Length: 99999999999999999999999999"), 400),
    ("cl-differing", head(H, b"Content-Length: 3", b"Content-Length: 4", body=b"abcd"), 400),
    ("cl-repeated-same", head(H, b"Content-Length: 3", b"Content-Length: 3", body=b"abc"), 400),
    ("cl-then-te", head(H, b"Content-Length: 5", b"Transfer-Encoding: chunked", body=b"0\r\n\r\n"), 400),
    ("te-then-cl", head(H, b"Transfer-Encoding: chunked", b"Content-Length: 5", body=b"0\r\n\r\n"), 400),
    ("identity-and-cl", head(H, b"Transfer-Encoding: identity", b"Content-Length: 5", body=b"hello"), 400),
    # Transfer-Encoding
    ("te-chunked-not-last", head(H, b"Transfer-Encoding: chunked, gzip", body=b"0\r\n\r\n"), 400),
    ("te-chunked-not-last-2-fields", head(H, b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip",
                                          body=b"0\r\n\r\n"), 400),
    ("te-chunked-twice", head(H, b"Transfer-Encoding: chunked, chunked", body=b"0\r\n\r\n"), 400),
    ("te-chunked-twice-2-fields", head(H, b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked",
                                       body=b"0\r\n\r\n"), 400),
    ("te-gzip-only", head(H, b"Transfer-Encoding: gzip", body=b"abc"), 400),
    ("te-gzip-chunked", head(H, b"Transfer-Encoding: gzip, chunked", body=b"0\r\n\r\n"), 501),
    ("te-gzip-then-chunked-fields", head(H, b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked",
                                         body=b"0\r\n\r\n"), 501),
    ("te-http10", head(b"Transfer-Encoding: chunked", line=b"POST / HTTP/1.0", body=b"0\r\n\r\n"), 400),
    # chunk framing
    ("chunk-size-plus", chunked(b"+5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-minus", chunked(b"-5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-leading-space", chunked(b" 5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-trailing-space", chunked(b"5 \r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-non-hex", chunked(b"5g\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-0x", chunked(b"0x5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-empty", chunked(b"\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-17-hex-digits", chunked(b"1" + b"0" * 16 + b"\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size-bare-lf", chunked(b"5\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-extension-bad", chunked(b"5;\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-extension-unterminated-quote", chunked(b'5;a="b\r\nhello\r\n0\r\n\r\n'), 400),
    ("chunk-data-no-crlf", chunked(b"5\r\nhelloXY0\r\n\r\n"), 400),
    ("chunk-data-bare-lf", chunked(b"5\r\nhello\n0\r\n\r\n"), 400),
    ("chunk-data-bare-cr", chunked(b"5\r\nhello\r0\r\n\r\n"), 400),
    ("chunk-data-too-long", chunked(b"3\r\nhello\r\n0\r\n\r\n"), 400),
    # trailers
    ("trailer-content-length", chunked(b"0\r\nContent-Length: 5\r\n\r\n"), 400),
    ("trailer-host", chunked(b"0\r\nHost: evil\r\n\r\n"), 400),
    ("trailer-transfer-encoding", chunked(b"0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400),
    ("trailer-case-insensitive", chunked(b"0\r\ncontent-LENGTH: 5\r\n\r\n"), 400),
    ("trailer-obs-fold", chunked(b"0\r\nX-A: b\r\n c\r\n\r\n"), 400),
    ("trailer-bare-lf", chunked(b"0\r\nX-A: b\n\r\n"), 400),
    ("trailer-space-before-colon", chunked(b"0\r\nX-A : b\r\n\r\n"), 400),
    ("trailer-nul", chunked(b"0\r\nX-A: a\x00b\r\n\r\n"), 400),
    # Host
    ("http11-no-host", head(), 400),
    ("two-hosts", head(b"Host: a", b"Host: a"), 400),
    ("two-hosts-differing", head(b"Host: a", b"host: b"), 400),
    ("host-space", head(b"Host: a b"), 400),
    ("host-slash", head(b"Host: a/b"), 400),
    ("host-userinfo", head(b"Host: user@a"), 400),
    ("host-bad-port", head(b"Host: a:80x"), 400),
    ("host-two-colons", head(b"Host: a:1:2"), 400),
    ("host-unclosed-bracket", head(b"Host: [::1"), 400),
    # request line: method, version, target
    ("method-paren", head(H, line=b"G(T / HTTP/1.1"), 400),
    ("method-non-ascii", head(H, line=b"G\xc3\x89T / HTTP/1.1"), 400),
    ("method-empty", head(H, line=b" / HTTP/1.1"), 400),
    ("method-nul", head(H, line=b"G\x00T / HTTP/1.1"), 400),
    ("method-tab-separator", head(H, line=b"GET\t/ HTTP/1.1"), 400),
    ("method-comma", head(H, line=b"GET,POST / HTTP/1.1"), 400),
    # Gunicorn's rule for methods, kept: no lowercase, no "#", 3 to 20 characters
    ("method-lowercase", head(H, line=b"get / HTTP/1.1"), 400),
    ("method-mixed-case", head(H, line=b"Get / HTTP/1.1"), 400),
    ("method-hash", head(H, line=b"G#T / HTTP/1.1"), 400),
    ("method-too-short", head(H, line=b"GE / HTTP/1.1"), 400),
    ("method-too-long", head(H, line=b"A" * 21 + b" / HTTP/1.1"), 400),
    ("two-spaces", head(H, line=b"GET  / HTTP/1.1"), 400),
    ("trailing-space", head(H, line=b"GET / HTTP/1.1 "), 400),
    ("http2", head(H, line=b"GET / HTTP/2.0"), 505),
    ("http3", head(H, line=b"GET / HTTP/3.0"), 505),
    ("http0.99", head(line=b"GET / HTTP/0.99"), 400),
    ("ftp", head(H, line=b"GET / FTP/1.1"), 400),
    ("lowercase-http", head(H, line=b"GET / http/1.1"), 400),
    ("version-no-minor", head(H, line=b"GET / HTTP/1"), 400),
    ("version-missing", head(H, line=b"GET /"), 400),
    ("get-star", head(H, line=b"GET * HTTP/1.1"), 400),
    ("relative-target", head(H, line=b"GET foo/bar HTTP/1.1"), 400),
    ("dot-relative-target", head(H, line=b"GET ../x HTTP/1.1"), 400),
    ("authority-without-connect", head(H, line=b"GET a:80 HTTP/1.1"), 400),
    ("connect-without-port", head(H, line=b"CONNECT a HTTP/1.1"), 400),
    ("absolute-empty-authority", head(H, line=b"GET http:///x HTTP/1.1"), 400),
    ("absolute-port-without-host", head(H, line=b"GET http://:80/x HTTP/1.1"), 400),
    ("connect-port-without-host", head(H, line=b"CONNECT :443 HTTP/1.1"), 400),
    ("del-in-target", head(H, line=b"GET /\x7f HTTP/1.1"), 400),
    # Expect
    ("expect-unknown", head(H, b"Expect: 200-ok", b"Content-Length: 1", line=b"POST / HTTP/1.1",
                            body=b"x"), 417),
    ("expect-100-continue-with-params", head(H, b"Expect: 100-continue;a=b", b"Content-Length: 1",
                                             line=b"POST / HTTP/1.1", body=b"x"), 417),
    ("expect-unknown-then-100-continue", head(H, b"Expect: foo", b"Expect: 100-continue",
                                              b"Content-Length: 1", line=b"POST / HTTP/1.1",
                                              body=b"x"), 417),
    # more than one Content-Type
    ("two-content-types", head(H, b"Content-Type: a/b", b"Content-Type: c/d"), 400),
]


@pytest.mark.parametrize(("raw", "status"), [pytest.param(raw, status, id=name) for name, raw, status in CASES])
def test_refused(raw: bytes, status: int) -> None:
    # no end of input: each fault must be seen in the bytes themselves, not rescued by an EOF check
    outcome = feed([raw + AFTER], eof=False)
    assert outcome.error == status
    assert all(req.target != b"/after-fault" for req, _, _ in outcome.messages)
    assert outcome.unfinished is None or outcome.unfinished.target != b"/after-fault"


@pytest.mark.parametrize(("raw", "status"), [pytest.param(raw, status, id=name) for name, raw, status in CASES])
def test_refused_byte_at_a_time(raw: bytes, status: int) -> None:
    data = raw + AFTER
    outcome = feed([data[i:i + 1] for i in range(len(data))])
    assert outcome.error == status
    assert all(req.target != b"/after-fault" for req, _, _ in outcome.messages)


def test_case_names_unique() -> None:
    names = [name for name, _, _ in CASES]
    assert len(names) == len(set(names))


# -- the same shapes, valid: the table above refuses the fault, not the neighbourhood -------------------

ACCEPTED: list[tuple[str, bytes]] = [
    ("tab-in-value", head(H, b"X-A: a\tb")),
    ("obs-text-in-value", head(H, b"X-A: caf\xe9")),
    ("empty-value", head(H, b"X-A:")),
    ("cl-leading-zeros", head(H, b"Content-Length: 003", body=b"abc")),
    ("te-case-insensitive", head(H, b"Transfer-Encoding: Chunked", body=b"0\r\n\r\n")),
    ("te-identity-chunked", head(H, b"Transfer-Encoding: identity, chunked", body=b"0\r\n\r\n")),
    ("chunk-size-uppercase-hex", chunked(b"A\r\n0123456789\r\n0\r\n\r\n")),
    ("chunk-size-16-hex-digits-leading-zeros", chunked(b"0" * 16 + b"5\r\nhello\r\n0\r\n\r\n")),
    ("allowed-trailer", chunked(b"0\r\nX-Sum: 1\r\n\r\n")),
    ("host-ipv6", head(b"Host: [::1]:8080")),
    ("host-empty", head(b"Host:")),
    ("host-case", head(b"hOsT: a")),
    ("http10-no-host", head(b"Connection: keep-alive", line=b"GET / HTTP/1.0")),
]


@pytest.mark.parametrize("raw", [pytest.param(raw, id=name) for name, raw in ACCEPTED])
def test_accepted(raw: bytes) -> None:
    outcome = feed([raw + AFTER])
    assert outcome.error is None
    assert [req.target for req, _, _ in outcome.messages][-1] == b"/after-fault"


def test_http09_is_505() -> None:
    # "HTTP/0.9" is a well-formed version with major 0: unsupported, not malformed.
    assert feed([b"GET / HTTP/0.9\r\n\r\n"]).error == 505


# -- limits --------------------------------------------------------------------------------------------

def _line(length: int) -> bytes:
    """A request line of exactly ``length`` bytes."""
    filler = length - len(b"GET / HTTP/1.1")
    return b"GET /" + b"a" * filler + b" HTTP/1.1"


def test_chunk_size_overflow_refused_at_the_size_line() -> None:
    # 16 hex digits fit in 64 bits and wait for their data; 17 significant digits never can
    assert feed([chunked(b"f" * 16 + b"\r\n")], eof=False).error is None
    assert feed([chunked(b"0" * 10 + b"f" * 16 + b"\r\n")], eof=False).error is None
    assert feed([chunked(b"1" + b"0" * 16 + b"\r\n")], eof=False).error == 400


def test_request_line_at_limit_accepted() -> None:
    limits = Limits(request_line=100)
    outcome = feed([head(H, line=_line(100))], limits)
    assert outcome.error is None and len(outcome.messages) == 1


def test_request_line_over_limit_414() -> None:
    limits = Limits(request_line=100)
    assert feed([head(H, line=_line(101))], limits).error == 414
    # also refused before the line ends: a client cannot make us buffer an endless line
    assert feed([_line(500)], limits, eof=False).error == 414


def test_default_request_line_limit() -> None:
    assert feed([head(H, line=_line(4094))]).error is None
    assert feed([head(H, line=_line(4095))]).error == 414


def test_too_many_fields_431() -> None:
    fields = [b"X-%d: v" % i for i in range(99)]
    assert feed([head(H, *fields)]).error is None                     # 100 fields: the default limit
    assert feed([head(H, *fields, b"X-last: v")]).error == 431      # 101


def test_field_too_large_431() -> None:
    # The limit counts "name: value\r\n" (Gunicorn's measure): 8190 by default.
    assert feed([head(H, b"X: " + b"v" * (8190 - 5))]).error is None
    assert feed([head(H, b"X: " + b"v" * (8190 - 4))]).error == 431
    assert feed([head(H, b"X: " + b"v" * 20000)]).error == 431


def test_folded_field_counted_as_sent_431() -> None:
    # With --permit-obsolete-folding a field's size is that of its lines on the wire, CRLFs included,
    # as Gunicorn counts it: "Accept:\r\n */*\r\n" is 15 bytes although "Accept: */*\r\n" is 13.
    folded = head(H, b"Accept:", b" */*")
    assert feed([folded], Limits(request_field_size=15, permit_obsolete_folding=True)).error is None
    assert feed([folded], Limits(request_field_size=14, permit_obsolete_folding=True)).error == 431
    request = feed([folded], Limits(permit_obsolete_folding=True)).messages[0][0]
    assert (b"accept", b"*/*") in [(name.lower(), value) for name, value in request.headers]


def test_folded_field_size_still_second_to_a_malformed_field() -> None:
    # A field refused for its syntax is a 400 whatever the size of a folded one before it.
    raw = head(H, b"Accept:", b" " + b"v" * 40, b"X(: a")
    assert feed([raw], Limits(request_field_size=20, permit_obsolete_folding=True)).error == 400


def test_head_padded_with_whitespace_431() -> None:
    # Whitespace before a value is not seen by the per-field limit (llhttp drops it); the head as a
    # whole is still bounded.
    limits = Limits(request_line=50, request_fields=2, request_field_size=50)
    assert feed([head(H, b"X:" + b" " * (limits.normalized().head_size + 10) + b"v")], limits).error == 431


def test_unbounded_head_refused_before_it_ends() -> None:
    conn = HTTPConnection(Limits(request_fields=4, request_field_size=100))
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n")
    assert conn.next_event() is NEED_DATA
    with pytest.raises(HTTPError) as info:
        for _ in range(100):
            conn.receive_data(b"X-Filler: " + b"v" * 50 + b"\r\n")
            assert conn.next_event() is NEED_DATA
    assert info.value.status == 431


def test_too_many_trailers_431() -> None:
    limits = Limits(request_fields=3)
    three = b"".join(b"X-%d: v\r\n" % i for i in range(3))
    assert feed([chunked(b"0\r\n" + three + b"\r\n")], limits).error is None
    assert feed([chunked(b"0\r\n" + three + b"X-3: v\r\n\r\n")], limits).error == 431


def test_content_length_over_body_limit_413_at_the_head() -> None:
    limits = Limits(request_body=10)
    raw_head = head(H, b"Content-Length: 11", line=b"POST / HTTP/1.1")
    # no body byte and no end of input: the refusal comes from the head alone
    outcome = feed([raw_head], limits, eof=False)
    assert outcome.error == 413
    assert outcome.messages == [] and outcome.unfinished is None
    conn = HTTPConnection(limits)
    conn.receive_data(raw_head)
    with pytest.raises(HTTPError) as info:
        conn.next_event()
    assert info.value.status == 413


def test_content_length_at_body_limit_accepted() -> None:
    limits = Limits(request_body=10)
    outcome = feed([head(H, b"Content-Length: 10", line=b"POST / HTTP/1.1", body=b"0123456789")], limits)
    assert outcome.error is None and outcome.messages[0][1] == b"0123456789"


def test_chunked_over_body_limit_413_before_the_data() -> None:
    limits = Limits(request_body=10)
    ok = chunked(b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n")
    assert feed([ok], limits).messages[0][1] == b"helloworld"
    # the size line that crosses the limit is refused before its data arrives
    outcome = feed([chunked(b"5\r\nhello\r\n6\r\n")], limits, eof=False)
    assert outcome.error == 413
    assert outcome.unfinished is not None


def test_chunk_line_limit() -> None:
    limits = Limits(chunk_line=20)
    assert feed([chunked(b"5;a=" + b"b" * 16 + b"\r\nhello\r\n0\r\n\r\n")], limits).error is None
    assert feed([chunked(b"5;a=" + b"b" * 17 + b"\r\nhello\r\n0\r\n\r\n")], limits).error == 400
    # and refused before the line ends
    assert feed([chunked(b"5;a=" + b"b" * 100)], limits, eof=False).error == 400


def test_limits_zero_means_ceiling() -> None:
    norm = Limits(request_line=0, request_fields=0, request_field_size=0, request_body=-5).normalized()
    assert (norm.request_line, norm.request_fields, norm.request_field_size, norm.request_body) == (
        8190, 32768, 8190, 0)
    assert Limits(request_line=99999, request_fields=10**6).normalized().request_line == 8190
    assert Limits(request_line=99999, request_fields=10**6).normalized().request_fields == 32768


# -- incomplete requests at the end of input ---------------------------------------------------------

INCOMPLETE = [
    ("partial-request-line", b"GET / HTT"),
    ("request-line-only", b"GET / HTTP/1.1\r\n"),
    ("partial-head", b"GET / HTTP/1.1\r\nHost: a\r\n"),
    ("head-missing-lf", b"GET / HTTP/1.1\r\nHost: a\r\n\r"),
    ("short-body", head(H, b"Content-Length: 5", line=b"POST / HTTP/1.1", body=b"abc")),
    ("no-body", head(H, b"Content-Length: 5", line=b"POST / HTTP/1.1")),
    ("chunk-cut", chunked(b"5\r\nhel")),
    ("chunk-no-last", chunked(b"5\r\nhello\r\n")),
    ("chunk-no-final-crlf", chunked(b"5\r\nhello\r\n0\r\n")),
    ("chunk-trailer-cut", chunked(b"5\r\nhello\r\n0\r\nX-A: b\r\n")),
    ("lone-cr", b"\r"),
]


@pytest.mark.parametrize("raw", [pytest.param(raw, id=name) for name, raw in INCOMPLETE])
def test_incomplete_at_eof_400(raw: bytes) -> None:
    assert feed([raw]).error == 400
    # without the end of input it is merely waiting
    assert feed([raw], eof=False).error is None


def test_eof_between_requests_is_quiet() -> None:
    outcome = feed([head(H) + b"\r\n"])
    assert outcome.error is None and len(outcome.messages) == 1
    conn = HTTPConnection()
    conn.receive_data(b"")
    assert conn.next_event() is NEED_DATA and conn.at_eof


# -- after an error --------------------------------------------------------------------------------------

def test_dead_after_error() -> None:
    conn = HTTPConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n" + AFTER)
    with pytest.raises(HTTPError) as info:
        conn.next_event()
    assert info.value.status == 400
    for _ in range(3):
        conn.receive_data(AFTER)
        assert conn.next_event() is NEED_DATA
    with pytest.raises(RuntimeError):
        conn.start_next_cycle()


def test_dead_after_error_in_body() -> None:
    conn = HTTPConnection()
    conn.receive_data(chunked(b"5\r\nhelloXX") + AFTER)
    assert isinstance(conn.next_event(), Request)
    with pytest.raises(HTTPError):
        while True:
            conn.next_event()
    conn.receive_data(AFTER)
    assert conn.next_event() is NEED_DATA


# -- names with "_" ------------------------------------------------------------------------------------

def test_underscore_names_kept_as_sent() -> None:
    outcome = feed([head(H, b"X_Forwarded_For: 1.2.3.4", b"X-Forwarded-For: 5.6.7.8", b"a_b: c")])
    req = outcome.messages[0][0]
    assert req.headers == ((b"Host", b"a"), (b"X_Forwarded_For", b"1.2.3.4"),
                           (b"X-Forwarded-For", b"5.6.7.8"), (b"a_b", b"c"))


def test_header_values_trimmed_names_kept() -> None:
    outcome = feed([head(H, b"X-A:   spaced value \t ", b"x-LOWER: v")])
    assert outcome.messages[0][0].headers[1:] == ((b"X-A", b"spaced value"), (b"x-LOWER", b"v"))

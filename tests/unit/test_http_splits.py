"""The connection's output depends on the bytes, never on how the reads happened to split them.

Every valid request below is fed whole, at every two-piece split, one byte at a time, and at random
multi-piece splits (hypothesis); all must give the same messages. Every invalid one must give the same
error status however it is split.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _httpfeed import Outcome, feed, split_at, summary
from pronghorn.http import HeadCache, Limits

GET = b"GET /path?q=1&r=%20 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\nAccept: */*\r\n\r\n"
POST_CL = (b"POST /submit HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\n"
           b"Content-Length: 11\r\n\r\nhello world")
CHUNKED = (b"POST /chunks HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5;name=value;q=\"quoted \\\" ;str\"\r\nhello\r\n"
           b"6 ; bare\r\n world\r\n"
           b"000\r\nX-Checksum: abc\r\nX-Empty:\r\n\r\n")
HTTP10_KEEPALIVE = (b"GET /one HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                    b"POST /two HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-Length: 3\r\n\r\nabc"
                    b"GET /three HTTP/1.0\r\n\r\n"
                    b"GET /never HTTP/1.0\r\n\r\n")   # /three is not keep-alive: /never is not read
ABSOLUTE = b"GET http://user@example.com:8080/p/a?x=1#frag HTTP/1.1\r\nHost: other\r\n\r\n"
OPTIONS_STAR = b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"
CUSTOM_METHOD = b"-BLARGH /foo HTTP/1.1\r\nHost: a\r\n\r\n"
HTTP12 = b"GET /foo HTTP/1.2\r\nHost: a\r\n\r\n"
PIPELINED = GET + POST_CL + CHUNKED + b"GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nJUNK"

VALID: dict[str, tuple[bytes, Limits | None]] = {
    "get": (GET, None),
    "post-content-length": (POST_CL, None),
    "chunked-extensions-trailers": (CHUNKED, None),
    "pipelined": (PIPELINED, None),
    "http10-keep-alive": (HTTP10_KEEPALIVE, None),
    "absolute-form": (ABSOLUTE, None),
    "options-star": (OPTIONS_STAR, None),
    "custom-method": (CUSTOM_METHOD, None),
    "http12-as-11": (HTTP12, None),
    "leading-empty-lines": (b"\r\n\r\n" + GET, None),
    "empty-lines-between": (GET + b"\r\n" + GET, None),
    "expect-100": (b"PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok", None),
    "upgrade-ignored": (b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                        + GET, None),
    "connect": (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", None),
    "http10-no-host": (b"GET / HTTP/1.0\r\n\r\n", None),
    "empty-chunked": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + GET, None),
    "underscore-header": (b"GET / HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 1.2.3.4\r\n\r\n", None),
    "obs-text-value": (b"GET / HTTP/1.1\r\nHost: a\r\nX-Latin: caf\xe9\t \r\n\r\n", None),
    "exact-limits": (b"GET /" + b"a" * 15 + b" HTTP/1.1\r\nHost: a\r\nX: " + b"v" * 45 + b"\r\n\r\n",
                     Limits(request_line=29, request_fields=2, request_field_size=50)),
}

# What the whole-buffer parse of each valid case must produce: (method, target, body, trailers) per
# message. The split tests compare against the whole parse; this pins the whole parse itself.
EXPECTED = {
    "get": [("GET", b"/path?q=1&r=%20", b"", [])],
    "post-content-length": [("POST", b"/submit", b"hello world", [])],
    "chunked-extensions-trailers": [("POST", b"/chunks", b"hello world",
                                     [(b"X-Checksum", b"abc"), (b"X-Empty", b"")])],
    "pipelined": [("GET", b"/path?q=1&r=%20", b"", []), ("POST", b"/submit", b"hello world", []),
                  ("POST", b"/chunks", b"hello world", [(b"X-Checksum", b"abc"), (b"X-Empty", b"")]),
                  ("GET", b"/last", b"", [])],
    "http10-keep-alive": [("GET", b"/one", b"", []), ("POST", b"/two", b"abc", []),
                          ("GET", b"/three", b"", [])],
    "absolute-form": [("GET", b"http://user@example.com:8080/p/a?x=1#frag", b"", [])],
    "options-star": [("OPTIONS", b"*", b"", [])],
    "custom-method": [("-BLARGH", b"/foo", b"", [])],
    "http12-as-11": [("GET", b"/foo", b"", [])],
    "leading-empty-lines": [("GET", b"/path?q=1&r=%20", b"", [])],
    "empty-lines-between": [("GET", b"/path?q=1&r=%20", b"", [])] * 2,
    "expect-100": [("PUT", b"/x", b"ok", [])],
    "upgrade-ignored": [("GET", b"/ws", b"", []), ("GET", b"/path?q=1&r=%20", b"", [])],
    "connect": [("CONNECT", b"example.com:443", b"", [])],
    "http10-no-host": [("GET", b"/", b"", [])],
    "empty-chunked": [("POST", b"/", b"", []), ("GET", b"/path?q=1&r=%20", b"", [])],
    "underscore-header": [("GET", b"/", b"", [])],
    "obs-text-value": [("GET", b"/", b"", [])],
    "exact-limits": [("GET", b"/" + b"a" * 15, b"", [])],
}

_SMALL = Limits(request_line=40, request_fields=3, request_field_size=60, request_body=8)

# (bytes, status, limits): requests refused whatever the split. Several mix two faults so that which
# one wins could depend on where a read ended (a limit and a malformed byte, a bare LF and a long line).
INVALID: dict[str, tuple[bytes, int, Limits | None]] = {
    "bare-lf-request-line": (b"GET / HTTP/1.1\nHost: a\r\n\r\n", 400, None),
    "bare-lf-in-long-line": (b"GET /\n" + b"a" * 100 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 400, _SMALL),
    "bare-cr-in-long-line": (b"GET /\rx" + b"a" * 100 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 400, _SMALL),
    "long-line": (b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414, _SMALL),
    "bare-lf-header": (b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400, None),
    "bare-cr-header": (b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400, None),
    "obs-fold": (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400, None),
    "space-before-colon": (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, None),
    "nul-in-value": (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400, None),
    "cl-te": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"0\r\n\r\n", 400, None),
    "gzip-chunked": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                     501, None),
    "no-host": (b"GET / HTTP/1.1\r\n\r\n", 400, None),
    "http2": (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, None),
    "chunk-size-sign": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n"
                        b"0\r\n\r\n", 400, None),
    "chunk-no-crlf": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n"
                      b"0\r\n\r\n", 400, None),
    "bad-trailer": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
                    b"Content-Length: 5\r\n\r\n", 400, None),
    "truncated-body": (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc", 400, None),
    "truncated-chunked": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhe",
                          400, None),
    "truncated-head": (b"GET / HTTP/1.1\r\nHost: a\r\n", 400, None),
    "too-many-fields-then-bad-name": (b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD\x01: 4\r\n\r\n",
                                      400, _SMALL),
    "too-many-fields": (b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 431, _SMALL),
    "big-field-then-bad-name": (b"GET / HTTP/1.1\r\nHost: a\r\nA: " + b"1" * 70 + b"\r\nB\x01: 1\r\n\r\n",
                                400, _SMALL),
    "padded-field": (b"GET / HTTP/1.1\r\nHost: a\r\nX:" + b" " * 400 + b"v\r\n\r\n", 431, _SMALL),
    "padded-field-then-nul": (b"GET / HTTP/1.1\r\nHost: a\r\nX:" + b" " * 400 + b"v\x00\r\n\r\n", 431,
                              _SMALL),
    "chunked-over-limit-then-bad-size": (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                                         b"9\r\n123456789\r\nZZ\r\n", 413, _SMALL),
    "pipelined-then-bad": (GET + b"GET / HTTP/1.1\r\nHost: a\r\nX: \x7f\r\n\r\n" + GET, 400, None),
}


def _pin(outcome: Outcome) -> list[tuple[str, bytes, bytes, list[tuple[bytes, bytes]]]]:
    return [(req.method, req.target, body, list(trailers)) for req, body, trailers in outcome.messages]


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_whole(name: str) -> None:
    data, limits = VALID[name]
    outcome = feed([data], limits)
    assert outcome.error is None
    assert _pin(outcome) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_every_two_piece_split(name: str) -> None:
    data, limits = VALID[name]
    whole = summary(feed([data], limits))
    for cut in range(1, len(data)):
        assert summary(feed([data[:cut], data[cut:]], limits)) == whole, f"split at {cut}"


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_byte_at_a_time(name: str) -> None:
    data, limits = VALID[name]
    pieces = [data[i:i + 1] for i in range(len(data))]
    assert summary(feed(pieces, limits)) == summary(feed([data], limits))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_valid_random_splits(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(VALID)), label="case")
    raw, limits = VALID[name]
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=12), label="cuts")
    assert summary(feed(split_at(raw, points), limits)) == summary(feed([raw], limits))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["get", "post-content-length", "chunked-extensions-trailers",
                                 "absolute-form", "custom-method", "expect-100"]), min_size=1, max_size=5),
       st.data())
def test_random_pipelines(names: list[str], data: st.DataObject) -> None:
    """Any sequence of keep-alive requests, concatenated and split anywhere, parses as the sequence."""
    raw = b"".join(VALID[name][0] for name in names)
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=10), label="cuts")
    outcome = feed(split_at(raw, points))
    assert outcome.error is None
    assert _pin(outcome) == [EXPECTED[name][0] for name in names]


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_whole(name: str) -> None:
    raw, status, limits = INVALID[name]
    assert feed([raw], limits).error == status


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_every_split_same_status(name: str) -> None:
    raw, status, limits = INVALID[name]
    whole = summary(feed([raw], limits))
    for cut in range(1, len(raw)):
        assert summary(feed([raw[:cut], raw[cut:]], limits)) == whole, f"split at {cut}"
    assert summary(feed([raw[i:i + 1] for i in range(len(raw))], limits)) == whole


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_invalid_random_splits(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(INVALID)), label="case")
    raw, status, limits = INVALID[name]
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=12), label="cuts")
    outcome = feed(split_at(raw, points), limits)
    assert outcome.error == status
    assert summary(outcome) == summary(feed([raw], limits))


def test_split_at_helper() -> None:
    assert split_at(b"abcdef", [3, 1, 3, 0, 6, 9]) == [b"a", b"bc", b"def"]
    assert split_at(b"abc", []) == [b"abc"]


# Bytes that matter to framing, for mutating the cases above into near-misses.
_FRAMING_BYTES = b"\r\n \t:;,\x00\x7f0123456789aAfF-_/?#*\"\\"
_FUZZ_LIMITS = [None, Limits(request_line=40, request_fields=3, request_field_size=60, request_body=8,
                             chunk_line=20)]


@st.composite
def near_misses(draw: st.DrawFn) -> tuple[bytes, Limits | None]:
    seeds = sorted(VALID) + sorted(INVALID)
    name = draw(st.sampled_from(seeds))
    raw = bytearray(VALID[name][0] if name in VALID else INVALID[name][0])
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw)))
        byte = draw(st.sampled_from(_FRAMING_BYTES))
        kind = draw(st.sampled_from(["replace", "insert", "repeat", "delete"]))
        if kind == "replace" and at < len(raw):
            raw[at] = byte
        elif kind == "insert":
            raw[at:at] = bytes([byte])
        elif kind == "repeat":
            raw[at:at] = bytes([byte]) * 40
        else:
            del raw[at:at + 2]
    return bytes(raw), draw(st.sampled_from(_FUZZ_LIMITS))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_misses(), st.data())
def test_near_misses_split_invariant(case: tuple[bytes, Limits | None], data: st.DataObject) -> None:
    """Valid or not, a mutated request parses to the same outcome however it is split."""
    raw, limits = case
    whole = summary(feed([raw], limits))
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=8), label="cuts")
    assert summary(feed(split_at(raw, points), limits)) == whole
    assert summary(feed([raw[i:i + 1] for i in range(len(raw))], limits)) == whole


@pytest.mark.parametrize("name", sorted(VALID) + sorted(INVALID))
def test_a_warm_head_cache_changes_nothing(name: str) -> None:
    """The same bytes through connections that share a HeadCache (as a worker's do), once it has
    seen them whole: the same outcome as without a cache, at every split."""
    raw, limits = VALID[name] if name in VALID else INVALID[name][::2]
    uncached = summary(feed([raw], limits))
    cache = HeadCache(limits)
    for _ in range(2):
        assert summary(feed([raw], limits, cache=cache)) == uncached
    for cut in range(1, len(raw)):
        assert summary(feed([raw[:cut], raw[cut:]], limits, cache=cache)) == uncached, cut

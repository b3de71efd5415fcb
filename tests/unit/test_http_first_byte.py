"""A byte that cannot begin a request line is refused as soon as it arrives (issue 15, defect 6).

A request line begins with a method, a token (RFC 9110 5.6.2). Anything else (a TLS ClientHello's
0x16, a NUL, a space, a "{") is a 400 at once, whatever follows it and however the reads split it:
before, the connection waited for the line's CRLF, that is for --header-timeout. Empty lines before a
request line are still skipped (RFC 9112 2.2), so a CR waits for the byte after it.

Every case is fed without the end of input (``eof=False``): the verdict must not need it.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _httpfeed import feed, split_at
from pronghorn.http import HeadCache, Limits

TOKEN = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
NOT_TOKEN = bytes(b for b in range(256) if b not in TOKEN and b != 13)  # (CR: see below)
GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"

# The first bytes a real TLS 1.2/1.3 client sends: a handshake record (0x16), TLS 1.0 record version,
# a length, ClientHello (0x01)...; the rest does not matter.
CLIENT_HELLO = bytes.fromhex("16030102000100") + bytes(range(256))


def test_every_first_byte_is_judged_at_once() -> None:
    for byte in range(256):
        outcome = feed([bytes([byte])], eof=False)
        if byte in TOKEN or byte == 13:
            assert outcome.error is None, byte  # it may yet be a request (or an empty line)
        else:
            assert outcome.error == 400, byte


def test_a_tls_client_hello_at_every_split() -> None:
    for cut in range(1, len(CLIENT_HELLO)):
        assert feed([CLIENT_HELLO[:cut], CLIENT_HELLO[cut:]], eof=False).error == 400
    assert feed([CLIENT_HELLO[:1]], eof=False).error == 400


@pytest.mark.parametrize("empty_lines", [b"\r\n", b"\r\n\r\n\r\n"])
def test_after_empty_lines(empty_lines: bytes) -> None:
    raw = empty_lines + CLIENT_HELLO
    for cut in range(1, len(empty_lines) + 2):
        outcome = feed([raw[:cut]], eof=False)
        assert outcome.error == (400 if cut > len(empty_lines) else None), cut
        assert feed([raw[:cut], raw[cut:]], eof=False).error == 400, cut
    # and a request after empty lines is served as before, at every split
    raw = empty_lines + GET
    for cut in range(1, len(raw)):
        outcome = feed([raw[:cut], raw[cut:]], eof=False)
        assert outcome.error is None and len(outcome.messages) == 1, cut


def test_a_cr_waits_for_its_lf() -> None:
    assert feed([b"\r"], eof=False).error is None
    assert feed([b"\r", b"\n"], eof=False).error is None
    assert feed([b"\r", b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"], eof=False).messages
    assert feed([b"\r", b"x"], eof=False).error == 400  # a bare CR
    assert feed([b"\r\n\r", b"\x16"], eof=False).error == 400
    assert feed([b"\n"], eof=False).error == 400  # a bare LF: not an empty line


def test_a_pipelined_request_that_cannot_be_one() -> None:
    """After a whole request the next one's first byte is judged as soon as it is parsed."""
    outcome = feed([GET + b"\x16\x03\x01"], eof=False)
    assert len(outcome.messages) == 1 and outcome.error == 400


@settings(max_examples=300, deadline=None)
@given(first=st.sampled_from(NOT_TOKEN), rest=st.binary(max_size=300),
       empty_lines=st.integers(0, 3), data=st.data())
def test_any_bytes_after_a_bad_first_byte(first: int, rest: bytes, empty_lines: int,
                                          data: st.DataObject) -> None:
    raw = b"\r\n" * empty_lines + bytes([first]) + rest
    points = data.draw(st.lists(st.integers(0, len(raw)), max_size=8), label="cuts")
    limits = data.draw(st.sampled_from([None, Limits(request_line=16)]), label="limits")
    cache = data.draw(st.sampled_from([None, HeadCache(limits)]), label="cache")
    assert feed(split_at(raw, points), limits, eof=False, cache=cache).error == 400
    # the verdict comes with the piece that holds the byte, before any later piece
    assert feed([raw[:2 * empty_lines + 1]], limits, eof=False, cache=cache).error == 400


@settings(max_examples=200, deadline=None)
@given(first=st.sampled_from(TOKEN), rest=st.binary(max_size=40).filter(
    lambda b: b"\r" not in b and b"\n" not in b))
def test_a_token_first_byte_waits_for_the_line(first: int, rest: bytes) -> None:
    """A line that begins like a method is judged when it ends (or is too long), as before."""
    outcome = feed([bytes([first]) + rest], eof=False)
    assert outcome.error is None

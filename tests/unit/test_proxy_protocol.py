"""The PROXY protocol header parser (pronghorn/http/proxy_protocol.py): v1 and v2, every split."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from pronghorn.http.proxy_protocol import (
    V2_SIGNATURE, ProxyHeader, ProxyProtocolError, parse,
)

HTTP = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def v2(command: int = 1, family: int = 0x11, body: bytes | None = None,
       source: tuple[str, int] = ("192.0.2.1", 56324),
       destination: tuple[str, int] = ("192.0.2.11", 443), tlv: bytes = b"") -> bytes:
    if body is None:
        src, dst = ipaddress.ip_address(source[0]), ipaddress.ip_address(destination[0])
        body = src.packed + dst.packed + struct.pack("!HH", source[1], destination[1])
    body += tlv
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(body)) + body


def incremental(data: bytes, mode: str = "auto") -> ProxyHeader:
    """Feed data growing one byte at a time: None until the header is complete, then the same
    answer as all at once."""
    for end in range(len(data)):
        result = parse(data[:end], mode)
        if result is not None:
            assert result == parse(data, mode)
            return result
    result = parse(data, mode)
    assert result is not None
    return result


@pytest.mark.parametrize("line, source, destination", [
    (b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", ("192.168.0.1", 56324),
     ("192.168.0.11", 443)),
    (b"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n", ("2001:db8::1", 1), ("2001:db8::2", 65535)),
])
def test_v1_addresses(line: bytes, source: tuple[str, int], destination: tuple[str, int]) -> None:
    header = incremental(line + HTTP)
    assert (header.version, header.source, header.destination) == (1, source, destination)
    assert (line + HTTP)[header.consumed:] == HTTP


def test_v1_unknown_keeps_the_peer() -> None:
    header = incremental(b"PROXY UNKNOWN whatever\r\n" + HTTP)
    assert header.source is None and header.consumed == len(b"PROXY UNKNOWN whatever\r\n")


@pytest.mark.parametrize("line", [
    b"PROXY TCP4 192.168.0.1 192.16...\r\n",
    b"PROXY TCP4 192.168.0.1 192.168.0.11 65iii 100000\r\n",
    b"PROXY TCP4 not-an-ip 192.168.0.11 56324 443\r\n",
    b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 65536\r\n",
    b"PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n",
    b"PROXY TCP4 2001:db8::1 192.168.0.11 1 2\r\n",
    b"PROXY TCP6 192.168.0.1 192.168.0.11 1 2\r\n",
    b"PROXY TCP4  192.168.0.1 192.168.0.11 1 2\r\n",
    b"PROXY UDP4 192.168.0.1 192.168.0.11 1 2\r\n",
    b"PROXY TCP4 192.168.0.1 192.168.0.11 1 2\n",
    b"PROXY " + b"9" * 120,
])
def test_v1_malformed(line: bytes) -> None:
    with pytest.raises(ProxyProtocolError):
        incremental(line)


@pytest.mark.parametrize("start", [b"GET / HTTP/1.1\r\n", b"\r\n\r\n\x00\r\nQUIX", b"PROXZ", b"G"])
def test_anything_else_is_refused(start: bytes) -> None:
    with pytest.raises(ProxyProtocolError):
        parse(start)


def test_v2_ipv4_and_ipv6_with_tlvs() -> None:
    header = incremental(v2(tlv=b"\x04\x00\x02ok") + HTTP)
    assert (header.version, header.source, header.destination) == (
        2, ("192.0.2.1", 56324), ("192.0.2.11", 443))
    six = v2(family=0x21, source=("2001:db8::1", 4711), destination=("2001:db8::2", 80))
    header = incremental(six + HTTP)
    assert header.source == ("2001:db8::1", 4711) and header.consumed == len(six)


def test_v2_local_and_unspec_keep_the_peer() -> None:
    assert incremental(v2(command=0) + HTTP).source is None
    assert incremental(v2(family=0x00, body=b"") + HTTP).source is None


@pytest.mark.parametrize("header", [
    V2_SIGNATURE + b"\x11\x11\x00\x0c" + bytes(12),          # version 1
    V2_SIGNATURE + b"\x22\x11\x00\x0c" + bytes(12),          # command 2
    V2_SIGNATURE + b"\x21\x11\x00\x04" + bytes(4),           # address block too short
    V2_SIGNATURE + b"\x21\x13\x00\x0c" + bytes(12),          # transport 3
    V2_SIGNATURE + b"\x21\x11\xff\xff",                      # longer than we take
])
def test_v2_malformed(header: bytes) -> None:
    with pytest.raises(ProxyProtocolError):
        incremental(header)


def test_modes_take_only_their_version() -> None:
    line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
    assert parse(line, "v1") is not None
    with pytest.raises(ProxyProtocolError):
        parse(line, "v2")
    with pytest.raises(ProxyProtocolError):
        parse(v2(), "v1")
    assert parse(v2(), "v2") is not None

"""The PROXY protocol header (HAProxy's spec, versions 1 and 2), sans-IO.

A proxy that speaks it opens each connection with one header naming the client's address, before
any HTTP. On a listener configured for it the header is required: bytes that cannot begin one are an
error, as is a malformed one, and nothing after it is parsed as HTTP until it is complete.

``parse(data, mode)`` looks at the bytes received so far and returns None while the header may
still be incomplete, or a ProxyHeader saying how many bytes it took and the addresses it carried;
it raises ProxyProtocolError for anything else.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from types import MappingProxyType

V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest v1 line, CRLF included (spec 2.1)
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_MAX_BODY = 4096  # address block and TLVs; real proxies send well under this
MODES = ("v1", "v2", "auto")

_V2_ADDRESS_SIZES = MappingProxyType({0x1: 4, 0x2: 16})  # AF_INET, AF_INET6: bytes per address


class ProxyProtocolError(ValueError):
    """The connection did not start with a valid PROXY header."""


@dataclass(frozen=True)
class ProxyHeader:
    consumed: int
    version: int
    # (host, port) of the client and of the address it connected to; None when the header says
    # the proxy itself is talking (v2 LOCAL, v1 UNKNOWN, an address family we do not map).
    source: tuple[str, int] | None
    destination: tuple[str, int] | None


def parse(data: bytes, mode: str = "auto") -> ProxyHeader | None:
    if mode in ("v1", "auto") and data[:len(V1_PREFIX)] == V1_PREFIX[:len(data)]:
        return _parse_v1(data)
    if mode in ("v2", "auto") and data[:len(V2_SIGNATURE)] == V2_SIGNATURE[:len(data)]:
        return _parse_v2(data)
    wanted = {"v1": "a PROXY v1 line", "v2": "a PROXY v2 header"}.get(mode, "a PROXY header")
    raise ProxyProtocolError(f"the connection does not start with {wanted}")


def _parse_v1(data: bytes) -> ProxyHeader | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX or b"\n" in data:
            raise ProxyProtocolError("PROXY v1 line too long or not ended by CRLF")
        return None
    line = data[:end].decode("ascii", "replace")
    parts = line.split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return ProxyHeader(end + 2, 1, None, None)
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyProtocolError(f"invalid PROXY v1 line {line[:120]!r}")
    _, family, src, dst, sport, dport = parts
    version_class = ipaddress.IPv4Address if family == "TCP4" else ipaddress.IPv6Address
    try:
        source = (str(version_class(src)), _port(sport))
        destination = (str(version_class(dst)), _port(dport))
    except ValueError:
        raise ProxyProtocolError(f"invalid address or port in PROXY v1 line {line[:120]!r}") from None
    return ProxyHeader(end + 2, 1, source, destination)


def _port(text: str) -> int:
    if not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise ValueError(text)
    port = int(text)
    if port > 65535:
        raise ValueError(text)
    return port


def _parse_v2(data: bytes) -> ProxyHeader | None:
    if len(data) < 16:
        return None
    version, command = data[12] >> 4, data[12] & 0x0F
    if version != 2:
        raise ProxyProtocolError(f"PROXY v2 header with version {version}")
    if command not in (0, 1):
        raise ProxyProtocolError(f"PROXY v2 header with unknown command {command}")
    length = int.from_bytes(data[14:16], "big")
    if length > V2_MAX_BODY:
        raise ProxyProtocolError(f"PROXY v2 header of {length} bytes is too long")
    if len(data) < 16 + length:
        return None
    consumed = 16 + length
    family, transport = data[13] >> 4, data[13] & 0x0F
    if command == 0 or family not in _V2_ADDRESS_SIZES:
        # LOCAL (a health check from the proxy itself), UNSPEC or a unix address: the connection's
        # own peer stands.
        return ProxyHeader(consumed, 2, None, None)
    if transport not in (1, 2):
        raise ProxyProtocolError(f"PROXY v2 header with unknown transport {transport}")
    size = _V2_ADDRESS_SIZES[family]
    if length < 2 * size + 4:
        raise ProxyProtocolError("PROXY v2 address block too short")
    body = data[16:16 + length]
    source_ip = ipaddress.ip_address(body[:size])
    destination_ip = ipaddress.ip_address(body[size:2 * size])
    source_port = int.from_bytes(body[2 * size:2 * size + 2], "big")
    destination_port = int.from_bytes(body[2 * size + 2:2 * size + 4], "big")
    return ProxyHeader(consumed, 2, (str(source_ip), source_port),
                       (str(destination_ip), destination_port))

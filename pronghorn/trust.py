"""Which peers are trusted proxies: Gunicorn's --forwarded-allow-ips and --proxy-allow-from lists.

A list is comma-separated addresses or networks (``127.0.0.1,::1``, ``10.0.0.0/8``); ``*`` trusts
every peer. A unix-socket peer has no address and is trusted whenever the list is non-empty: only
processes that can open the socket file reach it, which is how nginx on the same host connects.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any, Callable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allow_list(text: str) -> tuple[Network, ...] | None:
    """The networks of a list, or None for ``*`` (everyone). ValueError names a bad entry."""
    entries = [entry.strip() for entry in str(text).split(",") if entry.strip()]
    if "*" in entries:
        return None
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network "
                             "(e.g. 127.0.0.1, ::1, 10.0.0.0/8, or * for every peer)") from None
    return tuple(networks)


def allow_list(text: str) -> str:
    """Setting converter: checks the list, keeps its text."""
    parse_allow_list(text)
    return str(text)


def matcher(text: str) -> Callable[[Any], bool]:
    """peer (a socket address: (host, port[, ...]) or a unix path / None) → trusted?"""
    networks = parse_allow_list(text)
    if networks is None:
        return lambda peer: True
    if not networks:
        return lambda peer: False

    @lru_cache(maxsize=1024)  # a handful of proxies connect over and over: look each up once
    def trusted_host(host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
        return any(address in network for network in networks)

    def trusted(peer: Any) -> bool:
        if isinstance(peer, tuple):
            return trusted_host(str(peer[0]))
        return True  # a unix socket

    return trusted

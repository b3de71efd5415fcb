"""Which peers are trusted proxies: Gunicorn's --forwarded-allow-ips and --proxy-allow-from lists.

A list is comma-separated addresses or networks (``127.0.0.1,::1``, ``10.0.0.0/8``); ``*`` trusts
every peer. A unix-socket peer has no address and is trusted whenever the list is non-empty: only
processes that can open the socket file reach it, which is how nginx on the same host connects.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any, Callable

# The list's syntax belongs to the setting: the configuration checks a list with this parser when it
# reads it, so what it accepts is exactly what matcher() understands.
from .config.values import parse_allow_list

__all__ = ["matcher", "parse_allow_list"]


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

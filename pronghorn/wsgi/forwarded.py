"""What a reverse proxy says about the client: X-Forwarded-For, X-Forwarded-Proto (and Gunicorn's
other secure-scheme headers) and RFC 7239 ``Forwarded``.

From a trusted peer (``--forwarded-allow-ips``) they set ``REMOTE_ADDR``/``REMOTE_PORT`` and
``wsgi.url_scheme``; scheme headers that contradict one another are a 400, as in Gunicorn, because
a proxy that sends both "https" and "http" is misconfigured and guessing would be a security bug.
From any other peer they are removed from the environ: a client must not be able to claim an address
or a scheme by sending a header, and an app that reads HTTP_X_FORWARDED_FOR itself must not see a
forged one.

The client's address is the right-most entry not itself a trusted proxy: each proxy appends the
address it received the request from, so everything left of the last trusted hop is the client's to
forge.
"""

from __future__ import annotations

from typing import Any, Mapping

# Gunicorn's default --secure-scheme-headers is the setting's default, declared with the setting.
from ..config.values import DEFAULT_SECURE_SCHEME_HEADERS as DEFAULT_SECURE_SCHEME_HEADERS
from ..config.values import mismatched_scheme_key
from ..http import HTTPError
from ..trust import matcher, parse_allow_list

_FOR = "HTTP_X_FORWARDED_FOR"
_FORWARDED = "HTTP_FORWARDED"


def _environ_key(header: str) -> str:
    return "HTTP_" + header.strip().upper().replace("-", "_")



class ForwardedPolicy:
    def __init__(self, allow_ips: str, secure_scheme_headers: Mapping[str, str]) -> None:
        self.trusted = matcher(allow_ips)
        self.everyone = parse_allow_list(allow_ips) is None
        # A key matches as Gunicorn matches it: the header's name in upper case, exactly. A key
        # written otherwise ("X-Forwarded-Proto") never matches there, so it does not here either
        # (the master warns of it at start).
        self.scheme_headers = [(_environ_key(name), str(value).strip().lower())
                               for name, value in secure_scheme_headers.items()
                               if not mismatched_scheme_key(name)]
        # Every key this policy reads, so a request without any of them costs a few lookups.
        self.keys = tuple(dict.fromkeys([_FOR, _FORWARDED, *(k for k, _ in self.scheme_headers)]))

    def consulted_by(self, environ: Mapping[str, Any]) -> bool:
        """Whether ``environ`` holds any header this policy reads (without one, apply does nothing)."""
        return any(key in environ for key in self.keys)

    def apply(self, environ: dict[str, Any], peer: Any) -> None:
        if not self.consulted_by(environ):
            return
        if not self.trusted(peer):
            for key in self.keys:
                environ.pop(key, None)
            return
        secure: bool | None = None
        for key, meaning_https in self.scheme_headers:
            value = environ.get(key)
            if value is not None:
                secure = self._vote(secure, _last(value).lower() == meaning_https)
        client: tuple[str, str] | None = None
        forwarded = environ.get(_FORWARDED)
        if forwarded is not None:
            elements = parse_forwarded(forwarded)
            protos = [e["proto"] for e in elements if "proto" in e]
            if protos:
                secure = self._vote(secure, protos[-1].lower() == "https")
            client = self._client([e["for"] for e in elements if "for" in e])
        if client is None and _FOR in environ:
            client = self._client([entry.strip() for entry in environ[_FOR].split(",")])
        if secure:
            environ["wsgi.url_scheme"] = "https"
            if environ.get("SERVER_PORT") == "80" and ":" not in environ.get("HTTP_HOST", ":"):
                environ["SERVER_PORT"] = "443"  # the Host had no port: the scheme's default
        if client is not None:
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = client

    @staticmethod
    def _vote(secure: bool | None, says_https: bool) -> bool:
        if secure is not None and secure != says_https:
            raise HTTPError(400, "contradictory scheme headers from the proxy")
        return says_https

    def _client(self, entries: list[str]) -> tuple[str, str] | None:
        """(address, port) of the client among the hops, right to left; None if unknowable."""
        hops = [_split_host_port(entry) for entry in entries if entry]
        if not hops:
            return None
        if self.everyone:
            return hops[0] if hops[0][0] else None
        for host, port in reversed(hops):
            if not host:
                return None  # "unknown" or an obfuscated name: we cannot see past it
            if not self.trusted((host, 0)):
                return host, port
        return hops[0]  # every hop is a trusted proxy: the first one is as close as we get


def _last(value: str) -> str:
    """The last of a comma-separated list (the value the nearest proxy added)."""
    return value.rsplit(",", 1)[-1].strip()


def parse_forwarded(value: str) -> list[dict[str, str]]:
    """RFC 7239: ``for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"`` → a dict per element.
    Malformed pairs are skipped (the header is advice from a trusted proxy, not framing)."""
    elements: list[dict[str, str]] = []
    for element in _split_outside_quotes(value, ","):
        pairs: dict[str, str] = {}
        for pair in _split_outside_quotes(element, ";"):
            name, sep, text = pair.partition("=")
            if not sep:
                continue
            text = text.strip()
            if len(text) >= 2 and text[0] == text[-1] == '"':
                text = text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            pairs[name.strip().lower()] = text
        elements.append(pairs)
    return elements


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _split_host_port(entry: str) -> tuple[str, str]:
    """``[2001:db8::1]:4711`` / ``192.0.2.1:80`` / ``2001:db8::1`` / ``192.0.2.1`` → (host, port);
    host is "" when the entry is not an IP address (``unknown``, ``_hidden``)."""
    import ipaddress

    entry = entry.strip()
    host, port = entry, ""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return "", ""
    if port and not port.isdigit():
        port = ""
    return host, port or "0"

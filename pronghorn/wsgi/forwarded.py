"""What a reverse proxy says about the request, and whom we believe: Gunicorn's rules by default.

A peer in ``--forwarded-allow-ips`` (a trusted proxy; a unix-socket peer always is) may say:

- the scheme, with ``secure_scheme_headers``: a header whose upper-cased name is a key as written
  sets ``wsgi.url_scheme`` to "https" when its value is exactly the key's value and to "http" when it
  is anything else; two such headers that disagree are a 400, as in Gunicorn, because a proxy that
  sends both "https" and "http" is misconfigured and guessing would be a security bug;
- the headers named in ``--forwarder-headers`` (names with '_', which otherwise are dropped or
  refused by ``--header-map``): they reach the environ as HTTP_*, and SCRIPT_NAME also sets
  SCRIPT_NAME (the environ builder does that part).

Nothing else: REMOTE_ADDR and REMOTE_PORT stay the socket's peer, and X-Forwarded-For, Forwarded and
the rest reach the app as HTTP_* unchanged, from any peer, as under Gunicorn.

``--forwarded-client-address`` (a pronghorn addition, off by default) adds the rewriting pronghorn
once did by default: from a trusted proxy, REMOTE_ADDR/REMOTE_PORT come from RFC 7239 ``Forwarded``
(whose ``proto=`` also counts as a scheme header) or else X-Forwarded-For, and from any other peer
those two headers are removed, so an app that reads them never sees a forged one. The client's
address is the right-most entry not itself a trusted proxy: each proxy appends the address it
received the request from, so everything left of the last trusted hop is the client's to forge.

What a request says is worked out once per request (and once per shared head, see environ.py) by
:meth:`ForwardedPolicy.said`; whom to believe is decided per peer by :meth:`ForwardedPolicy.apply`.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

# Gunicorn's default --secure-scheme-headers is the setting's default, declared with the setting.
from ..config.values import DEFAULT_SECURE_SCHEME_HEADERS as DEFAULT_SECURE_SCHEME_HEADERS
from ..config.values import mismatched_scheme_key
from ..http import HTTPError
from ..http.events import Fields
from ..trust import matcher, parse_allow_list

_FOR = "HTTP_X_FORWARDED_FOR"
_FORWARDED = "HTTP_FORWARDED"
CONFLICT = "conflict"  # what said() reports for scheme headers that disagree


def _environ_key(header: str) -> str:
    return "HTTP_" + header.strip().upper().replace("-", "_")


class Said(NamedTuple):
    """What one request's headers claim, before anyone is believed (a pure function of the request).

    ``scheme``: "https" or "http" from the secure-scheme headers, CONFLICT when they disagree, None
    without any; ``underscored``: the (upper-cased name, value) of each header whose name has '_',
    in order; ``client``: it carries X-Forwarded-For or Forwarded and --forwarded-client-address is
    on."""

    scheme: str | None
    underscored: tuple[tuple[str, str], ...]
    client: bool


class ForwardedPolicy:
    def __init__(self, allow_ips: str, secure_scheme_headers: Mapping[str, str],
                 client_address: bool = False, forwarder_headers: str = "SCRIPT_NAME,PATH_INFO",
                 header_map: str = "drop") -> None:
        self.trusted = matcher(allow_ips)
        self.everyone = parse_allow_list(allow_ips) is None
        # A key matches as Gunicorn matches it: the header's name in upper case, exactly. A key
        # written otherwise ("X-Forwarded-Proto") never matches there, so it does not here either
        # (the master warns of it at start). Values compare exactly, case included, as there.
        self.scheme_headers = {name: str(value) for name, value in secure_scheme_headers.items()
                               if not mismatched_scheme_key(name)}
        self.client_address = client_address
        # Gunicorn splits the list on commas and strips each name; names match as written.
        self.forwarder_headers = frozenset(
            name.strip() for name in forwarder_headers.split(",") if name.strip())
        # "dangerous" is not applied (cli.unapplied_leniencies says so at start): it drops.
        self.refuse_underscores = header_map == "refuse"
        # The environ keys of the headers said() reads (a request without any costs a few lookups).
        self.scheme_keys = tuple(dict.fromkeys(_environ_key(name) for name in self.scheme_headers))
        self.client_keys = (_FOR, _FORWARDED) if client_address else ()

    def said(self, environ: Mapping[str, Any], headers: Fields,
             underscored: tuple[tuple[str, str], ...]) -> Said | None:
        """What the request whose header fields are ``headers`` (and whose environ, without peer,
        is ``environ``) claims; None when it claims nothing this policy reads."""
        scheme: str | None = None
        if any(key in environ for key in self.scheme_keys):
            for raw_name, raw_value in headers:
                expected = self.scheme_headers.get(raw_name.decode("latin-1").upper())
                if expected is None:
                    continue
                says = "https" if raw_value.decode("latin-1") == expected else "http"
                if scheme is not None and scheme != says:
                    scheme = CONFLICT
                    break
                scheme = says
        client = any(key in environ for key in self.client_keys)
        if scheme is None and not underscored and not client:
            return None
        return Said(scheme, underscored, client)

    def apply(self, environ: dict[str, Any], peer: Any, said: Said) -> list[tuple[str, str]]:
        """Believe what ``said`` claims as far as ``peer`` is trusted: set the scheme (and, with
        --forwarded-client-address, the client's address). Returns the underscored headers that
        reach the environ (the builder maps them). Raises HTTPError: 400 for a trusted proxy's
        contradictory scheme headers, or for a header with '_' under --header-map=refuse."""
        trusted = self.trusted(peer)
        secure: bool | None = None
        if trusted and said.scheme is not None:
            if said.scheme == CONFLICT:
                raise HTTPError(400, "contradictory scheme headers from the proxy")
            secure = said.scheme == "https"
        if said.client:
            if not trusted:
                for key in self.client_keys:
                    environ.pop(key, None)
            else:
                secure = self._client(environ, secure)
        if secure is not None:
            environ["wsgi.url_scheme"] = "https" if secure else "http"
        kept: list[tuple[str, str]] = []
        for name, value in said.underscored:
            if trusted and (name in self.forwarder_headers or "*" in self.forwarder_headers):
                kept.append((name, value))  # this proxy may set it
            elif self.refuse_underscores:
                raise HTTPError(400, f"a header name with '_' ({name})")
        return kept

    def _client(self, environ: dict[str, Any], secure: bool | None) -> bool | None:
        """--forwarded-client-address from a trusted proxy: REMOTE_ADDR/REMOTE_PORT from Forwarded
        or X-Forwarded-For; Forwarded's proto= votes on the scheme. Returns the scheme's verdict."""
        client: tuple[str, str] | None = None
        forwarded = environ.get(_FORWARDED)
        if forwarded is not None:
            elements = parse_forwarded(forwarded)
            protos = [e["proto"] for e in elements if "proto" in e]
            if protos:
                says_https = protos[-1].lower() == "https"
                if secure is not None and secure != says_https:
                    raise HTTPError(400, "contradictory scheme headers from the proxy")
                secure = says_https
            client = self._client_hop([e["for"] for e in elements if "for" in e])
        if client is None and _FOR in environ:
            client = self._client_hop([entry.strip() for entry in environ[_FOR].split(",")])
        if client is not None:
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = client
        return secure

    def _client_hop(self, entries: list[str]) -> tuple[str, str] | None:
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

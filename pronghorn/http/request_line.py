"""The request line, parsed here rather than by llhttp.

llhttp knows a fixed list of methods and refuses any other token (RFC 9110 allows every token, and
Gunicorn's corpus has `-BLARGH`), refuses HTTP/1.2 (which RFC 9112 says to serve as 1.1) and accepts
`GET *`. So we validate the line ourselves, against the grammar, and hand llhttp a fixed, known-good line
for the header section that follows.
"""

from __future__ import annotations

import re
from typing import NoReturn

from .errors import HTTPError
from .limits import Limits

_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_LINE = re.compile(rb"(" + _TOKEN + rb") ([^\x00-\x20\x7f]+) HTTP/([0-9])\.([0-9])")
_METHOD = re.compile(_TOKEN)
_UNCONVENTIONAL_METHOD = re.compile(rb"[a-z#]")
_VERSION_LIKE = re.compile(rb"HTTP/[0-9]\.[0-9]")

# host = IP-literal / reg-name (IPv4 is a reg-name); port = *DIGIT  (RFC 3986 3.2.2, 3.2.3)
_HOST = rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)"
_AUTHORITY = re.compile(_HOST + rb"(?::[0-9]*)?")
_USERINFO_AUTHORITY = re.compile(rb"(?:[A-Za-z0-9\-._~%!$&'()*+,;=:]*@)?(" + _HOST + rb"(?::[0-9]*)?)")
_ABSOLUTE = re.compile(rb"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)(.*)", re.DOTALL)


def host_is_valid(value: bytes) -> bool:
    return _AUTHORITY.fullmatch(value) is not None


RequestLine = tuple[str, bytes, bytes, bytes, tuple[int, int], bytes | None]

# (Both are pure functions of their bytes; a worker remembers their answers in its HeadCache.)


_STRICT = Limits()


def parse_request_line(line: bytes, rules: Limits = _STRICT) -> RequestLine:
    """Return (method, target, path, query, version, authority) or raise HTTPError.

    ``authority`` is the host of an absolute-form or authority-form target, which RFC 9112 3.2.2 says
    replaces the Host header field. ``rules``: the leniencies asked for (Gunicorn's
    permit_unconventional_http_method and _version, casefold_http_method); none by default.
    """
    match = _LINE.fullmatch(line)
    if match is None:
        _explain_bad_line(line)  # (raises)
    method_b, target, major_b, minor_b = match.groups()
    major, minor = major_b[0] - 48, minor_b[0] - 48
    if major == 1:
        version = (1, 0) if minor == 0 else (1, 1)
    elif not rules.permit_unconventional_version:
        raise HTTPError(505, f"HTTP version {major}.{minor} is not supported")
    else:
        # Gunicorn serves these with 1.0's framing below 1.0 and 1.1's above; so do we, and the
        # app is told the version whose framing it got.
        version = (1, 0) if major == 0 else (1, 1)
    # Any token is a method to RFC 9110, but Gunicorn refuses lowercase letters, "#" and lengths
    # outside 3..20 by default: front proxies that case-fold methods or read "#" differently would
    # otherwise disagree with us about which request this is. We keep Gunicorn's rule, and its switch.
    if (not rules.permit_unconventional_method
            and (not 3 <= len(method_b) <= 20 or _UNCONVENTIONAL_METHOD.search(method_b))):
        raise HTTPError(400, "unconventional method (lowercase, '#', or not 3 to 20 characters)")
    method = method_b.decode("ascii")
    if rules.casefold_method:
        method = method.upper()  # before the target's checks, which look at the method (as Gunicorn)

    authority: bytes | None = None
    first = target[0]
    if first == 47:  # "/": origin-form, the common case
        path, query = _split_path(target)
    elif target == b"*":
        if method != "OPTIONS":
            raise HTTPError(400, "the '*' target is only allowed with OPTIONS")
        path, query = b"", b""
    elif method == "CONNECT":
        if _AUTHORITY.fullmatch(target) is None or b":" not in target or target[0] == 58:
            raise HTTPError(400, "CONNECT needs an authority-form target")
        path, query, authority = b"", b"", target
    else:
        absolute = _ABSOLUTE.fullmatch(target)
        if absolute is None:
            raise HTTPError(400, "invalid request target")
        authority_part = _USERINFO_AUTHORITY.fullmatch(absolute.group(2))
        if authority_part is None or authority_part.group(1)[:1] in (b"", b":"):
            raise HTTPError(400, "invalid authority in the request target")
        authority = authority_part.group(1)
        rest = absolute.group(3)
        if rest and rest[0] not in b"/?#":
            raise HTTPError(400, "invalid request target")
        path, query = _split_path(rest)
        if not path:
            path = b"/"
    return method, target, path, query, version, authority


def _split_path(target: bytes) -> tuple[bytes, bytes]:
    hash_at = target.find(b"#")
    if hash_at >= 0:
        target = target[:hash_at]
    path, _, query = target.partition(b"?")
    return path, query


def _explain_bad_line(line: bytes) -> NoReturn:
    parts = line.split(b" ")
    if len(parts) != 3:
        raise HTTPError(400, "malformed request line")
    method, _, version = parts
    if not _METHOD.fullmatch(method):
        raise HTTPError(400, "invalid method")
    if _VERSION_LIKE.fullmatch(version):
        raise HTTPError(400, "invalid request target")
    raise HTTPError(400, "invalid HTTP version")

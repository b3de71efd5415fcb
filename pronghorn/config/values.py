"""What the values of the settings that the runtime also reads mean, each defined once.

The registry checks a value when it is read (so a bad one is an error naming its setting and source,
at start-up and on HUP), and the runtime interprets the same value later: the allow lists in
pronghorn/trust.py, the TLS names in pronghorn/tls.py, the log addresses and the access-log format in
pronghorn/logs.py, the user and group in the master. Both sides use the functions here, so they
cannot disagree. This module is the standard library only: the configuration is the bottom layer
and must load nothing of the runtime (tests/unit/test_import_layers.py).
"""

from __future__ import annotations

import grp
import ipaddress
import pwd
import re
import socket
from typing import Any, Callable, TypeVar

Convert = TypeVar("Convert", bound=Callable[..., Any])

_TAKES_OBJECTS: set[Callable[..., Any]] = set()


def takes_objects(convert: Convert) -> Convert:
    """Mark a converter that a config file hands its Python value as it is (a dict, an ssl module
    constant) rather than only text; it does its own type checks."""
    _TAKES_OBJECTS.add(convert)
    return convert


def accepts_objects(convert: Callable[..., Any]) -> bool:
    return convert in _TAKES_OBJECTS


# -- trusted peers: --forwarded-allow-ips, --proxy-allow-from -----------------------------------------

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


#: Gunicorn's default --secure-scheme-headers: header → the value that means https.
DEFAULT_SECURE_SCHEME_HEADERS: dict[str, str] = {
    "X-FORWARDED-PROTOCOL": "ssl", "X-FORWARDED-PROTO": "https", "X-FORWARDED-SSL": "on",
}


def mismatched_scheme_key(name: str) -> bool:
    """Whether a secure_scheme_headers key can never match a header under Gunicorn, which compares
    it with the header's upper-cased name as it is: one with lower-case letters or spaces."""
    return name != name.upper() or name != name.strip()


# -- TLS: --ssl-version, --cert-reqs (ssl itself is imported only where a context is made) ------------

#: --ssl-version values (Gunicorn's names, and the numbers its ssl.PROTOCOL_* constants had) →
#: the minimum TLS version, as ssl.TLSVersion member names. Every PROTOCOL_TLS* means "negotiate the
#: best"; we keep the floor at 1.2 for those.
SSL_VERSIONS: dict[str, str] = {
    "TLS": "TLSv1_2", "TLS_SERVER": "TLSv1_2", "SSLv23": "TLSv1_2", "2": "TLSv1_2",
    "17": "TLSv1_2", "TLSv1_2": "TLSv1_2", "5": "TLSv1_2", "TLSv1_3": "TLSv1_3",
}
_REFUSED_VERSIONS = {"SSLv2", "SSLv3", "TLSv1", "TLSv1_1", "0", "1", "3", "4"}

#: --cert-reqs: Gunicorn takes ssl.CERT_* numbers; their names work too.
CERT_REQS: dict[str, int] = {"0": 0, "1": 1, "2": 2, "CERT_NONE": 0, "CERT_OPTIONAL": 1,
                             "CERT_REQUIRED": 2, "none": 0, "optional": 1, "required": 2}


# A config file may give these two as Gunicorn did, as ssl module constants (ssl.CERT_REQUIRED,
# ssl.PROTOCOL_TLS_SERVER) rather than text.
@takes_objects
def ssl_version(value: Any) -> str:
    """--ssl-version → the minimum version's name; ValueError for an insecure or unknown one."""
    text = str(getattr(value, "name", value)).strip()  # an ssl._SSLMethod member gives its name
    if text.startswith("PROTOCOL_"):
        text = text[len("PROTOCOL_"):]
    if text in _REFUSED_VERSIONS:
        raise ValueError(f"{value!r} is insecure and not supported; TLS 1.2 is the minimum "
                         "(leave --ssl-version unset, or use TLSv1_3 for 1.3 only)")
    if text not in SSL_VERSIONS:
        raise ValueError(f"{value!r} is not a TLS version; use TLS (the default: 1.2 or newer) or "
                         "TLSv1_3")
    return SSL_VERSIONS[text]


@takes_objects
def cert_reqs(value: Any) -> int:
    text = str(int(value) if isinstance(value, int) else value).strip()  # ssl.CERT_* are IntEnums
    if text not in CERT_REQS:
        raise ValueError(f"{value!r} is not 0 (CERT_NONE), 1 (CERT_OPTIONAL) or 2 (CERT_REQUIRED)")
    return CERT_REQS[text]


# -- logging: syslog and statsd addresses, the access-log format ---------------------------------------

#: Gunicorn's syslog facility names.
SYSLOG_FACILITIES = {
    "auth": 4, "authpriv": 10, "cron": 9, "daemon": 3, "ftp": 11, "kern": 0, "lpr": 6, "mail": 2,
    "news": 7, "security": 4, "syslog": 5, "user": 1, "uucp": 8, "local0": 16, "local1": 17,
    "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}


def parse_syslog_address(addr: str) -> tuple[socket.SocketKind | None, Any]:
    """Gunicorn's --log-syslog-to: unix://PATH[#dgram|#stream], udp://HOST[:PORT], tcp://HOST[:PORT]
    → (socket type or None, address). ValueError says what is wrong."""
    if addr.startswith("unix://"):
        sock_type: socket.SocketKind | None = None
        path, _, kind = addr.partition("#")
        if kind == "dgram":
            sock_type = socket.SOCK_DGRAM
        elif kind == "stream":
            sock_type = socket.SOCK_STREAM
        elif kind:
            raise ValueError(f"{addr!r}: the socket type after '#' is 'stream' or 'dgram'")
        return sock_type, path[len("unix://"):]
    if addr.startswith("udp://"):
        rest, sock_type = addr[len("udp://"):], socket.SOCK_DGRAM
    elif addr.startswith("tcp://"):
        rest, sock_type = addr[len("tcp://"):], socket.SOCK_STREAM
    else:
        raise ValueError(f"{addr!r} is not an address like udp://HOST:PORT, tcp://HOST:PORT or "
                         "unix://PATH")
    if "[" in rest and "]" in rest:
        host = rest.split("]")[0][1:].lower()
    elif ":" in rest:
        host = rest.split(":")[0].lower()
    elif rest == "":
        host = "localhost"
    else:
        host = rest.lower()
    rest = rest.split("]")[-1]
    port = 514
    if ":" in rest:
        text = rest.split(":", 1)[1]
        if not text.isdigit():
            raise ValueError(f"{addr!r}: {text!r} is not a port number")
        port = int(text)
    return sock_type, (host, port)


def parse_statsd_address(text: str) -> tuple[int, Any]:
    """Gunicorn's --statsd-host: HOST:PORT (port 8125 if left out), [IPV6]:PORT, unix://PATH (also
    unix:PATH) → (address family, address)."""
    match = re.fullmatch(r"unix:(\d+)", text)  # Gunicorn reads "unix:8125" as host "unix"
    if match:
        return socket.AF_INET, ("unix", int(match.group(1)))
    if re.match(r"unix:(//)?", text):
        path = re.split(r"unix:(//)?", text)[-1]
        if not path:
            raise ValueError(f"{text!r}: no socket path after 'unix:'")
        return socket.AF_UNIX, path
    netloc = text[len("tcp://"):] if text.startswith("tcp://") else text
    host, port = netloc, "8125"
    if "[" in netloc and "]" in netloc:
        host = netloc.split("]")[0][1:]
        port = (netloc.split("]:") + ["8125"])[1]
    elif ":" in netloc:
        host, port = (netloc.split(":") + ["8125"])[:2]
    elif netloc == "":
        host = "0.0.0.0"
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{text!r}: {port!r} is not a port number")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, (host.lower(), int(port))


DEFAULT_ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

#: A stand-in value per atom, to try a format with: the numbers' atoms are numbers (a %d of them
#: must work), every other atom is text.
ACCESS_FORMAT_SAMPLES = {"B": 0, "T": 0, "D": 0, "M": 0}
_SPEC = re.compile(r"[#0\- +]*(?:\d+)?(?:\.\d+)?[hlL]?[diouxXeEfFgGcrsa]")


class AccessFormatError(ValueError):
    pass


class _SampleAtoms(dict[str, Any]):
    def __getitem__(self, key: str) -> Any:
        return ACCESS_FORMAT_SAMPLES.get(key, "-")


def parse_access_format(fmt: str) -> tuple[str, list[str]] | None:
    """Gunicorn's --access-logformat → (positional template, atom names), or None for what only
    ``fmt % atoms`` can do (a '%' without a (name), '*' widths). Follows the % operator's rules,
    nested parentheses in names included. Raises AccessFormatError (a ValueError) for a format
    that cannot work, having tried it on sample values."""
    template: list[str] = []
    keys: list[str] = []
    i, n = 0, len(fmt)
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            template.append(fmt[i:])
            break
        template.append(fmt[i:j])
        if fmt.startswith("%%", j):
            template.append("%%")
            i = j + 2
            continue
        if not fmt.startswith("(", j + 1):
            try:
                fmt % _SampleAtoms()
            except (TypeError, ValueError, KeyError) as exc:
                raise AccessFormatError(f"{fmt!r}: {exc}") from None
            return None
        depth, k = 1, j + 2
        while k < n and depth:
            if fmt[k] == "(":
                depth += 1
            elif fmt[k] == ")":
                depth -= 1
            k += 1
        if depth:
            raise AccessFormatError(f"{fmt!r}: a '%(' without its ')'")
        spec = _SPEC.match(fmt, k)
        if spec is None:
            raise AccessFormatError(f"{fmt!r}: '%({fmt[j + 2:k - 1]})' is not followed by a "
                                    "conversion like 's'")
        keys.append(fmt[j + 2:k - 1])
        template.append("%" + spec.group())
        i = spec.end()
    positional = "".join(template)
    try:
        positional % tuple(ACCESS_FORMAT_SAMPLES.get(key, "-") for key in keys)
    except (TypeError, ValueError, KeyError) as exc:
        raise AccessFormatError(f"{fmt!r}: {exc}") from None
    return positional, keys


def access_log_format(text: str) -> str:
    """Setting converter: checks the format, keeps its text."""
    parse_access_format(text)
    return text


# -- --user and --group --------------------------------------------------------------------------------

def resolve_user(value: str | int | None) -> tuple[int, str | None] | None:
    """A user name or numeric id → (uid, name or None)."""
    if value is None or value == "":
        return None
    text = str(value)
    if text.isdigit():
        uid = int(text)
        try:
            return uid, pwd.getpwuid(uid).pw_name
        except KeyError:
            return uid, None
    try:
        return pwd.getpwnam(text).pw_uid, text
    except KeyError:
        raise ValueError(f"no such user: {text!r}") from None


def resolve_group(value: str | int | None) -> int | None:
    if value is None or value == "":
        return None
    text = str(value)
    if text.isdigit():
        return int(text)
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise ValueError(f"no such group: {text!r}") from None


"""The error log, the access log, syslog, logging configs and statsd: Gunicorn's, so that log scrapers,
logging configs and dashboards written for Gunicorn keep working.

Theory of operation
-------------------
``setup_logging(cfg)`` runs in the master (at start and on HUP) before any worker is forked; workers
inherit what it built. It follows Gunicorn's ``glogging.Logger.setup`` step by step:

1. ``--capture-output`` with an error log file: the file is opened and put on file descriptors 1
   and 2, so everything written to stdout/stderr (``print`` in the app, C libraries) lands in it.
2. The error log ("pronghorn.error") goes to ``--error-logfile`` (``-``: stderr) at ``--log-level``.
3. The access log ("pronghorn.access", propagate off) goes to ``--access-logfile`` (``-``: stdout).
4. ``--log-syslog`` adds a SysLogHandler to the error log and, unless
   ``--disable-redirect-access-to-syslog``, to the access log.
5. A logging config on top: ``logconfig_dict`` (``--log-config-dict``), else ``--log-config-json``,
   else ``--log-config`` (an ini file for ``logging.config.fileConfig``). The dict forms are merged
   over ``CONFIG_DEFAULTS`` as Gunicorn merges over its own. A config written for Gunicorn names the
   loggers "gunicorn.error" and "gunicorn.access": when it configures those and not ours, ours take
   their handlers, level and propagation. Either way "gunicorn.error"/"gunicorn.access" end up
   writing where ours do, for apps that borrow Gunicorn's logger by name.
6. ``--statsd-host``: a UDP (or unix datagram) socket, and a handler on the error log that counts
   warnings, errors, exceptions and criticals as Gunicorn's ``gunicorn.log.*`` counters.

The access line. ``--access-logformat`` is Gunicorn's: printf-style ``%(atom)s`` over the atoms
below. It is compiled once (``compile_access_format``) into one generated function that computes only
the atoms the format names and fills a positional template, so a request costs one ``%`` and the
atoms it uses. Values are those of Gunicorn's ``glogging.Logger.atoms``, taken from the environ after
the app ran (a ProxyFix that rewrote REMOTE_ADDR is honoured), with Gunicorn's quoting of ``"`` as
``\\"``; in addition control characters (``\\x00``-``\\x1f``, ``\\x7f``) are written as ``\\xNN`` so a
request cannot forge log lines or drive a terminal (Gunicorn writes them raw).

Most lines need no escaping, so the generated function fills the template with the raw values and
checks the values once; only a line that fails the check is made again value by value. A format of
atoms that repeat from request to request (the default: address, user, time to the second, request
line, status, size, referer, User-Agent) remembers its clean lines whole, keyed on their values, in
a budget of bytes: behind a proxy that adds an X-Request-Id and a cookie to every request, the line
of a page already seen that second is a dict lookup. A format without a duration atom (the default
again) does not make the request cycle read the clock around each request.

When the access logger is exactly what we set up (our one file or stdout handler, no filters), a
request's line is written straight to the handler's stream under its lock (chosen once per worker,
when its request cycle is made, after the app was imported, since an app may configure the access
logger): Python logging's record
machinery would cost more than the rest of a small request (docs/performance.md). The sync and gevent workers, whose requests all finish on their loop's
thread (gevent's in greenlets of its hub), go further: the lines of one turn of the loop are written
together, once the turn's ready work is done
(a write system call per turn, not per request: on a busy worker a turn finishes many requests).
Anything logged on the error log, a USR1 reopen and the worker's exit write the gathered lines
first, so a file both logs share keeps its order and a worker that stops, or is aborted for
--timeout, loses no line (one killed outright, by SIGKILL or a crash, loses those of its last
turn). Otherwise (syslog, a logging config) the line goes through ``logger.info(format, atoms)``
exactly as Gunicorn logs it, so formatters and filters written for Gunicorn see the same record
(``record.args`` is the atoms mapping).

``--logger-class`` naming a class of Gunicorn's Logger interface (other than Gunicorn's own, which
mean all of the above) replaces steps 1-5: the class is made with a Gunicorn-shaped ``cfg`` and sets
up what it likes; every record of "pronghorn.error" goes to its method of that level, the request
cycle calls its ``access()``, USR1 its ``reopen_files()``, HUP its ``setup()``. statsd stays ours.

USR1 (logrotate): ``reopen_logs`` reopens every FileHandler of every logger (and the captured
output), in the master from its main loop and in workers from their event loop (never inside a signal
handler, which could swap a stream under a write in progress). Lines already written stay in the
renamed file; later ones go to the new one; none is lost.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import logging
import os
import re
import socket
import sys
import threading
import time
import weakref
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, cast

from .config import Config
from .config.gunicorn_config import GunicornConfig
# What these settings' values mean is defined with the settings (the configuration checks a value
# when it reads it); the names logs.py had stay importable from here.
from .config.values import (
    ACCESS_FORMAT_SAMPLES, DEFAULT_ACCESS_LOG_FORMAT as DEFAULT_ACCESS_LOG_FORMAT,
    SYSLOG_FACILITIES as SYSLOG_FACILITIES, AccessFormatError as AccessFormatError,
    parse_access_format, parse_statsd_address as parse_statsd_address,
    parse_syslog_address as parse_syslog_address, resolve_group, resolve_user,
)

if TYPE_CHECKING:
    import logging.handlers

LOGGER_NAME = "pronghorn.error"
ACCESS_LOGGER_NAME = "pronghorn.access"
_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
_DATEFMT = "%Y-%m-%d %H:%M:%S %z"
_SYSLOG_FORMAT = "[%(process)d] %(message)s"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL}
# Names Python's logging knows that Gunicorn's levels do not: Gunicorn logs at info for them (its
# fallback for any name it does not know), and so do we, saying so once.
_GUNICORN_INFO = {"warn": logging.INFO, "fatal": logging.INFO, "notset": logging.INFO}

#: What logconfig_dict and --log-config-json are merged over (top-level keys replace ours), shaped
#: like Gunicorn's glogging.CONFIG_DEFAULTS with our loggers' names. Unlike Gunicorn's, our loggers do
#: not also propagate to the root's console handler, which printed every line twice.
CONFIG_DEFAULTS: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        LOGGER_NAME: {"level": "INFO", "handlers": ["error_console"], "propagate": False},
        ACCESS_LOGGER_NAME: {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "generic",
                    "stream": "ext://sys.stdout"},
        "error_console": {"class": "logging.StreamHandler", "formatter": "generic",
                          "stream": "ext://sys.stderr"},
    },
    "formatters": {
        "generic": {"format": _FORMAT, "datefmt": _DATEFMT, "class": "logging.Formatter"},
    },
}

_GUNICORN_NAMES = {LOGGER_NAME: "gunicorn.error", ACCESS_LOGGER_NAME: "gunicorn.access"}

# What setup_logging built; workers inherit it through fork.
_request_logger: "RequestLogger | None" = None
_statsd: "Statsd | None" = None
_captured: dict[str, Any] = {"path": None, "file": None}
#: The handlers made here: ours to close and replace on HUP, and to write to directly. Those a
#: logging config made are the user's, and another logger may share them.
_OURS: weakref.WeakSet[logging.Handler] = weakref.WeakSet()


# -- statsd's prefix --------------------------------------------------------------------------------

def statsd_prefix(prefix: str) -> str:
    """As Gunicorn does it: a trailing '.' is added (to prefixes of two characters or more)."""
    return re.sub(r"^(.+[^.]+)\.*$", "\\g<1>.", prefix)


# -- the access log format ---------------------------------------------------------------------------

_UNSAFE = re.compile('[\x00-\x1f\x7f"]')
_ESCAPES = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7f]}
_ESCAPES[ord('"')] = '\\"'
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                         "te", "trailers", "transfer-encoding", "upgrade"})


def escape(value: str) -> str:
    """Gunicorn's quoting (``"`` → ``\\"``), and control characters as ``\\xNN``."""
    # isprintable() is a C loop, several times faster than the regex: a printable value has no
    # control character (the regex still decides for values with other non-printables).
    if '"' not in value and (value.isprintable() or _UNSAFE.search(value) is None):
        return value
    return value.translate(_ESCAPES)


def _escape_any(value: Any) -> Any:
    return escape(value) if value.__class__ is str else value


# (the second it stands for as [since, until), the text): one tuple, replaced whole, since gthread's
# threads log too. A list around it, so that compiled lines read it without calling clf_now.
_clf_cache: list[tuple[float, float, str]] = [(0.0, 0.0, "")]


def clf_now() -> str:
    """The time in Common Log Format, as Gunicorn writes it: [10/Oct/2000:13:55:36 -0700]."""
    now = time.time()
    cached = _clf_cache[0]
    if cached[0] <= now < cached[1]:  # (a clock set back is a new second too)
        return cached[2]
    second = int(now)
    text = time.strftime("[%d/%b/%Y:%H:%M:%S %z]", time.localtime(second))
    _clf_cache[0] = (float(second), float(second + 1), text)
    return text


def basic_user(environ: dict[str, Any]) -> str | None:
    """The user name of HTTP Basic auth, decoded exactly as Gunicorn does."""
    auth = environ.get("HTTP_AUTHORIZATION")
    if not auth or not auth.lower().startswith("basic"):
        return None
    parts = auth.split(" ", 1)
    if len(parts) != 2:
        return None
    try:
        decoded = base64.b64decode(parts[1].strip().encode("utf-8"))
        return decoded.split(b":", 1)[0].decode("utf-8")
    except (TypeError, binascii.Error, UnicodeDecodeError):
        return None


def request_header(request: Any, name: bytes) -> str:
    """The last field named ``name`` (lower case), as Gunicorn's ``{name}i``: names with '_' are
    not headers to it (they are dropped), values are latin-1."""
    found = "-"
    for key, value in request.headers:
        if key.lower() == name and b"_" not in key:
            found = escape(value.decode("latin-1"))
    return found


def response_header(exchange: Any, name: str) -> str:
    """The app's last header ``name`` (lower case), as Gunicorn's ``{name}o``: hop-by-hop headers
    are not kept, values are stripped."""
    found = "-"
    if name in _HOP_BY_HOP:
        return found
    for key, value in exchange.headers or ():
        if key.lower() == name:
            found = escape(value.strip(" \t"))
    return found


def environ_value(environ: dict[str, Any], name: str) -> Any:
    """Gunicorn's ``{name}e``: the environ key whose lower case is ``name``."""
    found: Any = "-"
    for key, value in environ.items():
        if key.lower() == name:
            found = _escape_any(value)
    return found


# Each atom: the expression that computes it in the generated function, whose arguments are
# E (environ), R (request), X (exchange), us (duration in µs), S (status code), N (body bytes sent).
_ATOM_CODE = {
    "h": "esc_any(E.get('REMOTE_ADDR', '-'))",
    "l": "'-'",
    "u": "esc(basic_user(E) or '-')",
    "t": "clf_now()",
    "r": "esc('%s %s %s' % (E['REQUEST_METHOD'], E['RAW_URI'], E['SERVER_PROTOCOL']))",
    "s": "str(S)",
    "m": "esc_any(E.get('REQUEST_METHOD'))",
    "U": "esc_any(E.get('PATH_INFO'))",
    "q": "esc_any(E.get('QUERY_STRING'))",
    "H": "esc_any(E.get('SERVER_PROTOCOL'))",
    "b": "str(N)",
    "B": "N",
    "f": "esc_any(E.get('HTTP_REFERER', '-'))",
    "a": "esc_any(E.get('HTTP_USER_AGENT', '-'))",
    "T": "us // 1000000",
    "D": "us",
    "M": "us // 1000",
    "L": "'%d.%06d' % divmod(us, 1000000)",
    "p": "'<%d>' % getpid()",
}
# The same atoms unescaped, for the line that needs no escaping (see _compiled_line).
_RAW_ATOM_CODE = {
    # clf_now() inline: the cached second's text when the clock is still in it (a call fewer).
    "t": "c[2] if (c := CLF[0])[0] <= time() < c[1] else clf_now()",
    "h": "E.get('REMOTE_ADDR', '-')",
    "u": "(basic_user(E) or '-') if 'HTTP_AUTHORIZATION' in E else '-'",
    "r": "'%s %s %s' % (E['REQUEST_METHOD'], E['RAW_URI'], E['SERVER_PROTOCOL'])",
    "m": "E.get('REQUEST_METHOD')",
    "U": "E.get('PATH_INFO')",
    "q": "E.get('QUERY_STRING')",
    "H": "E.get('SERVER_PROTOCOL')",
    "f": "E.get('HTTP_REFERER', '-')",
    "a": "E.get('HTTP_USER_AGENT', '-')",
}
_NAMESPACE: dict[str, Any] = {
    "esc": escape, "esc_any": _escape_any, "basic_user": basic_user, "clf_now": clf_now,
    "request_header": request_header, "response_header": response_header,
    "environ_value": environ_value, "getpid": os.getpid, "str": str, "divmod": divmod,
    "CLF": _clf_cache, "time": time.time,
}


def _atom_code(key: str) -> str:
    if key.startswith("{"):
        lowered = key.lower()
        if lowered.endswith("}i"):
            return f"request_header(R, {lowered[1:-2].encode('latin-1')!r})"
        if lowered.endswith("}o"):
            return f"response_header(X, {lowered[1:-2]!r})"
        if lowered.endswith("}e"):
            return f"environ_value(E, {lowered[1:-2]!r})"
        return "'-'"
    return _ATOM_CODE.get(key, "'-'")


def compile_access_format(fmt: str) -> Callable[..., str]:
    """One function ``line(environ, request, exchange, us, status, sent) -> str`` for ``fmt``.
    Raises AccessFormatError (a ValueError) for a format that cannot work."""
    parsed = parse_access_format(fmt)
    if parsed is None:
        def generic(E: dict[str, Any], R: Any, X: Any, us: int, S: int, N: int) -> str:
            return fmt % AccessAtoms(E, R, X, us, S, N)
        return generic
    template, keys = parsed
    return _compiled_line(template, keys)


# What the raw line puts in place of an atom formatted with a plain %s (see _compiled_line): the
# request line as its three parts, and the numbers as they are (they are str()'d there anyway). A
# %r or a width would tell them apart, so only a plain %s gets these.
_PLAIN_RAW_ATOM_CODE = {"r": ["E['REQUEST_METHOD']", "E['RAW_URI']", "E['SERVER_PROTOCOL']"],
                        "s": ["S"], "b": ["N"]}
_CONVERSION = re.compile(r"(%%|%[^%a-zA-Z]*[a-zA-Z])")


# Atoms whose values are made here (a time, numbers, a constant): never a '"' or a control character.
_SAFE_ATOMS = frozenset("ltsbBTDMLp")
_CLEAN_MAX = 256  # value combinations remembered as clean, per format


def _all_clean(values: tuple[Any, ...], seen: set[tuple[Any, ...]]) -> bool:
    """Whether escaping would leave every value as it is (plain str, no '"', all printable);
    a clean combination is remembered in ``seen``, which is bounded."""
    for value in values:
        if value.__class__ is not str or '"' in value or not value.isprintable():
            return False
    if len(seen) >= _CLEAN_MAX:
        seen.clear()
    seen.add(values)
    return True


_NAMESPACE["all_clean"] = _all_clean


def _raw_line_body(template: str, keys: list[str],
                   raw: list[str]) -> tuple[str, str, list[str], list[str]] | None:
    """The statements that put each value into a local, the f-string that makes the raw line from
    them (no format string to interpret per request, unlike ``template % values``), the locals
    holding values that may need escaping, and all the locals. None when the template's
    conversions cannot be told apart (then it is formatted with %)."""
    pieces = _CONVERSION.split(template)
    if len([p for p in pieces[1::2] if p != "%%"]) != len(keys):
        return None
    lines: list[str] = []
    text: list[str] = []
    checked: list[str] = []
    index = 0
    for i, piece in enumerate(pieces):
        if not i % 2:
            text.append(piece.replace("{", "{{").replace("}", "}}"))
        elif piece == "%%":
            text.append("%")
        else:
            plain = _PLAIN_RAW_ATOM_CODE.get(keys[index]) if piece == "%s" else None
            if plain is None:
                code = raw[index] if piece == "%s" else f"{piece!r} % ({raw[index]},)"
                plain = [code]
            names = []
            for code in plain:
                name = f"v{len(lines)}"
                lines.append(f"    {name} = {code}\n")
                names.append("{" + name + "!s}")
                if keys[index] not in _SAFE_ATOMS:
                    checked.append(name)
            text.append(" ".join(names))
            index += 1
    names_all = [line.split(" = ", 1)[0].strip() for line in lines]
    return "".join(lines), f"f{''.join(text)!r}", checked, names_all


# Atoms whose value repeats from request to request (the same client, page, status and size, in
# the same second): a format of only these makes lines that repeat, worth remembering whole. A
# duration or a header such as X-Request-Id differs every time.
_REPEATING_ATOMS = frozenset("hlutrsmUqHbBfap")
#: What the remembered lines of one format may hold, in bytes (counting each line twice, for the
#: key's strings, and a fixed amount for the key and the dict's slot); past it they are forgotten.
LINES_BUDGET = 128 * 1024
_LINE_OVERHEAD = 256


def _remember(lines: dict[tuple[Any, ...], str], fill: list[int], key: tuple[Any, ...],
              text: str) -> str:
    """Keep ``text`` as the line for ``key``, forgetting every line once the budget is spent (the
    count is approximate under gthread's threads; the dict itself stays consistent)."""
    size = 2 * len(text) + _LINE_OVERHEAD
    if fill[0] + size > LINES_BUDGET:
        lines.clear()
        fill[0] = 0
    if size <= LINES_BUDGET:
        lines[key] = text
        fill[0] += size
    return text


def _plain_clean(values: tuple[Any, ...]) -> bool:
    """Whether every value is a plain str that escaping leaves as it is (no '"', all printable)."""
    for value in values:
        if value.__class__ is not str or '"' in value or not value.isprintable():
            return False
    return True


_NAMESPACE["remember"] = _remember
_NAMESPACE["plain_clean"] = _plain_clean


def _compiled_line(template: str, keys: list[str]) -> Callable[..., str]:
    """Generate the line function for a positional template and its atoms.

    Escaping each value costs a call and a scan per atom, yet almost no request has a '"' or a
    control character in what is logged. So the generated function first makes the line from the
    raw values; when none of them would change by escaping, that line is the answer, and otherwise
    it is made again the careful way, value by value. (Scanning the whole line for quotes and
    unprintable characters cost more than making it.)

    Most formats, the default among them, log only atoms that repeat: a client's address and
    User-Agent, the request line, the status, the size, the second. Behind a proxy every request
    differs (an X-Request-Id, a cookie), but not in those. So for such a format the line itself is
    remembered, keyed on its values: a request whose values were all seen, in the same second,
    costs a tuple and a dict lookup instead of a line to build and check (docs/performance.md). Only
    lines made of plain, clean strings are remembered (a key's values then determine the line),
    within LINES_BUDGET bytes per format.

    For other formats the combinations of values found clean are remembered instead: the same
    values come again and again (a repeated request's strings are the very same objects each
    time), so whether they need escaping is known without a scan."""
    escaped = [_atom_code(key) for key in keys]
    raw = [_RAW_ATOM_CODE.get(key, code) for key, code in zip(keys, escaped)]
    source = ("CLEAN = set()\n"
              "LINES = {}\n"
              "FILL = [0]\n"
              "def careful(E, R, X, us, S, N):\n"
              f"    return {template!r} % ({''.join(e + ', ' for e in escaped)})\n")
    quotes = (template % tuple(ACCESS_FORMAT_SAMPLES.get(key, "-") for key in keys)).count('"')
    made = _raw_line_body(template, keys, raw) if template.isprintable() and raw != escaped else None
    if made is not None and all(key in _REPEATING_ATOMS for key in keys):
        body, fstring, checked, names = made
        source += ("def line(E, R, X, us, S, N):\n" + body +
                   f"    key = ({''.join(name + ', ' for name in names)})\n"
                   "    try:\n"
                   "        return LINES[key]\n"
                   "    except KeyError:\n"
                   "        pass\n"
                   "    except TypeError:  # an unhashable value (an app's own, in the environ)\n"
                   "        return careful(E, R, X, us, S, N)\n"
                   f"    if plain_clean(({''.join(name + ', ' for name in checked)})):\n"
                   f"        return remember(LINES, FILL, key, {fstring})\n"
                   "    return careful(E, R, X, us, S, N)\n")
    elif made is not None:
        body, fstring, checked, names = made
        source += ("def line(E, R, X, us, S, N):\n" + body +
                   f"    text = {fstring}\n"
                   f"    values = ({''.join(name + ', ' for name in checked)})\n"
                   "    try:\n"
                   "        known = values in CLEAN\n"
                   "    except TypeError:  # an unhashable value (an app's own, in the environ)\n"
                   "        return careful(E, R, X, us, S, N)\n"
                   "    if known or all_clean(values, CLEAN):\n"
                   "        return text\n"
                   "    return careful(E, R, X, us, S, N)\n")
    elif template.isprintable() and raw != escaped:
        source += ("def line(E, R, X, us, S, N):\n"
                   f"    text = {template!r} % ({''.join(e + ', ' for e in raw)})\n"
                   f"    if text.count('\"') == {quotes} and text.isprintable():\n"
                   "        return text\n"
                   "    return careful(E, R, X, us, S, N)\n")
    else:
        source += "line = careful\n"
    namespace = dict(_NAMESPACE)
    exec(compile(source, "<access log format>", "exec"), namespace)
    line: Callable[..., str] = namespace["line"]
    return line


class AccessAtoms(dict[str, Any]):
    """Every atom, as Gunicorn's SafeAtoms mapping: what ``logger.info(format, atoms)`` passes as
    ``record.args`` for formatters written for Gunicorn; unknown atoms are '-', {...} names are
    case-insensitive."""

    def __init__(self, E: dict[str, Any], R: Any, X: Any, us: int, S: int, N: int) -> None:
        super().__init__()
        seconds, micros = divmod(us, 1000000)
        self.update({
            "h": E.get("REMOTE_ADDR", "-"), "l": "-", "u": basic_user(E) or "-", "t": clf_now(),
            "r": "%s %s %s" % (E["REQUEST_METHOD"], E["RAW_URI"], E["SERVER_PROTOCOL"]),
            "s": str(S), "m": E.get("REQUEST_METHOD"), "U": E.get("PATH_INFO"),
            "q": E.get("QUERY_STRING"), "H": E.get("SERVER_PROTOCOL"), "b": str(N), "B": N,
            "f": E.get("HTTP_REFERER", "-"), "a": E.get("HTTP_USER_AGENT", "-"), "T": seconds,
            "D": us, "M": us // 1000, "L": "%d.%06d" % (seconds, micros), "p": "<%d>" % os.getpid(),
        })
        self.update({"{%s}i" % k.decode("latin-1").lower(): v.decode("latin-1")
                     for k, v in R.headers if b"_" not in k})
        self.update({"{%s}o" % k.lower(): v.strip(" \t") for k, v in X.headers or ()
                     if k.lower() not in _HOP_BY_HOP})
        self.update({"{%s}e" % k.lower(): v for k, v in E.items()})
        for key, value in self.items():
            if value.__class__ is str:
                self[key] = escape(value)

    def __getitem__(self, key: str) -> Any:
        if key.startswith("{"):
            key = key.lower()
        return super().get(key, "-")


_iso_cache: list[Any] = [-1, "", ""]


def iso_now() -> str:
    """The local time in ISO 8601 with milliseconds and the UTC offset, as datetime's isoformat()
    writes it (2024-05-01T12:00:00.123+02:00); the part that changes once a second is cached."""
    now = time.time()
    second = int(now)
    if second != _iso_cache[0]:
        local = datetime.fromtimestamp(second).astimezone()
        _iso_cache[1] = local.strftime("%Y-%m-%dT%H:%M:%S")
        _iso_cache[2] = local.isoformat()[19:]  # "+02:00" (or "+05:30:15" for odd zones)
        _iso_cache[0] = second
    return "%s.%03d%s" % (_iso_cache[1], int((now - second) * 1000), _iso_cache[2])


def json_line(E: dict[str, Any], R: Any, X: Any, us: int, S: int, N: int) -> str:
    """--access-log-json: one JSON object per request, for log collectors in containers."""
    record: dict[str, Any] = {
        "time": iso_now(),
        "remote_addr": E.get("REMOTE_ADDR"),
        "user": basic_user(E),
        "method": E.get("REQUEST_METHOD"),
        "uri": E.get("RAW_URI"),
        "path": E.get("PATH_INFO"),
        "query": E.get("QUERY_STRING"),
        "protocol": E.get("SERVER_PROTOCOL"),
        "status": S,
        "bytes": N,
        "duration_ms": round(us / 1000, 3),
        "referer": E.get("HTTP_REFERER"),
        "user_agent": E.get("HTTP_USER_AGENT"),
        "pid": os.getpid(),
    }
    request_id = E.get("HTTP_X_REQUEST_ID")
    if request_id is not None:
        record["request_id"] = request_id
    return _json_encode(record)


# One encoder for every line: json.dumps(..., default=str) would build a new one per call.
_json_encode = json.JSONEncoder(default=str).encode


# -- writing requests ------------------------------------------------------------------------------------

_DURATION_ATOMS = frozenset("TDML")


class RequestLogger:
    """What a worker calls once per finished request (``log``): the access line and the statsd
    metrics."""

    __slots__ = ("_line", "_format", "_logger", "_emit", "_statsd", "_error_log", "_defer",
                 "_pending", "_flush_due", "_write", "_gathering", "_chosen", "_timed_atoms")

    def __init__(self, line: Callable[..., str] | None, fmt: str | None, logger: logging.Logger,
                 statsd: "Statsd | None", error_log: logging.Logger) -> None:
        self._line = line
        self._format = fmt            # None: JSON lines, logged as they are
        self._logger = logger
        self._statsd = statsd
        self._error_log = error_log
        self._emit: Callable[..., None] = self._first_emit
        self._defer: Callable[..., Any] | None = None
        self._pending: list[str] = []
        self._flush_due = False
        self._write: Callable[[str], None] | None = None
        self._gathering = False  # lines are gathered for a write per turn (by log itself)
        self._chosen = False  # how to write is chosen (choose_writer)
        # Whether the line needs the request's duration: a format naming T, D, M or L, JSON lines
        # (duration_ms), and a format only ``format % AccessAtoms`` can do (it may show them all).
        parsed = parse_access_format(fmt) if fmt is not None else None
        self._timed_atoms = parsed is None or any(key in _DURATION_ATOMS for key in parsed[1])

    def wants_duration(self) -> bool:
        """Whether anything here uses the request's duration (else the cycle does not time its
        requests: two clock reads fewer). Chooses how to write, so ask it once the app is loaded."""
        self.choose_writer()
        return (self._statsd is not None
                or (self._line is not None and (self._timed_atoms or self._write is None)))

    def log(self, request: Any, environ: dict[str, Any], exchange: Any, seconds: float) -> None:
        """One finished request (``seconds``: its duration, 0 when wants_duration() said no)."""
        try:
            framer = exchange.framer
            # No head written by the framer: the app failed and the client got our 500.
            status = framer.status_code if exchange.head_sent else 500
            us = int(seconds * 1000000) if seconds else 0
            if self._gathering:  # here, not in an emitter: the sync worker's every request
                # (Gathering implies a line and a defer: choose_writer, write_once_per_turn.)
                self._pending.append(
                    self._line(environ, request, exchange, us, status, framer.sent))  # type: ignore[misc]
                if not self._flush_due:
                    self._flush_due = True
                    self._defer(self.flush)  # type: ignore[misc]
            elif self._line is not None:
                self._emit(environ, request, exchange, us, status, framer.sent)
            if self._statsd is not None:
                self._statsd.request(us, status)
        except Exception:
            self._error_log.exception("Error writing the access log")

    __call__ = log

    def write_once_per_turn(self, call_soon: Callable[..., Any]) -> None:
        """Gather the lines of one turn of an event loop and write them together (``call_soon``
        runs the write once the loop has handled what is ready). For a worker whose requests all
        finish on the loop's thread. A write per line is a system call per request; on a busy
        worker one turn finishes many requests. Anything logged on the error log first writes the
        lines gathered so far, so a file both logs share keeps requests in order."""
        self._defer = call_soon
        self._gathering = self._chosen and self._write is not None and self._line is not None
        self._error_log.addFilter(self._flush_before_error)

    def _flush_before_error(self, record: logging.LogRecord) -> bool:
        self.flush()
        return True

    def flush(self) -> None:
        """Write the gathered lines now (the loop's turn is over, the worker is stopping, the logs
        are being reopened, or an error line is about to be written)."""
        self._flush_due = False  # before taking the lines: one added meanwhile schedules anew
        lines = self._pending
        if lines and self._write is not None:
            self._pending = []
            try:
                self._write("\n".join(lines) + "\n")
            except Exception:
                self._error_log.exception("Error writing the access log")

    def choose_writer(self) -> None:
        """Choose how to write, once per process, after the app was imported (it may configure
        the access logger): straight to our handler's stream when the logger is only that, else
        through logging like Gunicorn. The worker's request cycle asks when it is made
        (wants_duration); else the first line does."""
        if self._chosen:
            return
        self._chosen = True
        self._write = self._direct_writer()
        if self._write is None:
            self._emit = self._logging_emit
        elif self._defer is not None and self._line is not None:
            self._gathering = True  # log gathers every line
        else:
            self._emit = self._write_now

    def _first_emit(self, E: dict[str, Any], R: Any, X: Any, us: int, S: int, N: int) -> None:
        self.choose_writer()
        if self._gathering:
            self._pending.append(self._line(E, R, X, us, S, N))  # type: ignore[misc]
            self._flush_due = True
            self._defer(self.flush)  # type: ignore[misc]
            return
        self._emit(E, R, X, us, S, N)

    def _direct_writer(self) -> Callable[[str], None] | None:
        logger = self._logger
        handlers = logger.handlers
        if (len(handlers) != 1 or logger.filters or logger.disabled or logger.propagate
                or not logger.isEnabledFor(logging.INFO)):
            return None
        handler = handlers[0]
        if (type(handler) not in (logging.StreamHandler, logging.FileHandler)
                or not isinstance(handler, logging.StreamHandler) or handler not in _OURS
                or handler.filters or handler.level > logging.INFO or handler.lock is None):
            return None
        lock = handler.lock

        def write(text: str) -> None:
            with lock:
                stream = handler.stream
                if stream is None and isinstance(handler, logging.FileHandler):
                    stream = handler.stream = handler._open()  # a reopen failed; try again
                stream.write(text)
                stream.flush()
        return write

    # (The emitters take the atoms one by one, not as *atoms: no tuple to pack per request.
    # choose_writer picks them only when there is a line to write, _write_now only with a writer.)
    def _write_now(self, E: dict[str, Any], R: Any, X: Any, us: int, S: int, N: int) -> None:
        line, write = self._line, self._write
        if line is not None and write is not None:
            write(line(E, R, X, us, S, N) + "\n")

    def _logging_emit(self, E: dict[str, Any], R: Any, X: Any, us: int, S: int, N: int) -> None:
        if self._format is None:
            line = self._line
            if line is not None:
                self._logger.info(line(E, R, X, us, S, N))
        else:
            self._logger.info(self._format, AccessAtoms(E, R, X, us, S, N))


def request_logger() -> RequestLogger | None:
    """This process's request logger; None when neither an access log nor statsd is on."""
    return _request_logger


# -- statsd ------------------------------------------------------------------------------------------------

class Statsd:
    """Gunicorn's statsd client: its metric names, prefix rule and dogstatsd tags, one datagram each."""

    def __init__(self, host: str, prefix: str = "", tags: str = "") -> None:
        family, address = parse_statsd_address(host)
        self.prefix = statsd_prefix(prefix)
        self.suffix = ("|#" + tags).encode("ascii") if tags else b""
        self.sock: socket.socket | None = None
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
        except OSError:
            return
        try:
            sock.setblocking(False)
            sock.connect(address)
        except OSError:  # as Gunicorn: a name that does not resolve means no metrics, no crash
            sock.close()
            return
        self.sock = sock

    def _send(self, text: str) -> None:
        sock = self.sock
        if sock is None:
            return
        try:
            sock.send(text.encode("ascii") + self.suffix)
        except OSError:
            pass  # nobody listening (ECONNREFUSED from an earlier datagram), buffer full: drop it

    def gauge(self, name: str, value: Any) -> None:
        self._send(f"{self.prefix}{name}:{value}|g")

    def increment(self, name: str, value: Any, sampling_rate: float = 1.0) -> None:
        self._send(f"{self.prefix}{name}:{value}|c|@{sampling_rate}")

    def decrement(self, name: str, value: Any, sampling_rate: float = 1.0) -> None:
        self._send(f"{self.prefix}{name}:-{value}|c|@{sampling_rate}")

    def timer(self, name: str, value: Any) -> None:
        self._send(f"{self.prefix}{name}:{value}|ms")

    def histogram(self, name: str, value: Any) -> None:
        self._send(f"{self.prefix}{name}:{value}|h")

    def request(self, us: int, status: int) -> None:
        seconds, micros = divmod(us, 1000000)
        self.timer("gunicorn.request.duration", seconds * 1000 + float(micros) / 10 ** 3)
        self.increment("gunicorn.requests", 1)
        self.increment("gunicorn.request.status.%d" % status, 1)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class _StatsdLogCounter(logging.Handler):
    """Counts the error log's warnings and worse as Gunicorn's gunicorn.log.* counters."""

    def __init__(self, statsd: Statsd) -> None:
        super().__init__(logging.WARNING)
        self.statsd = statsd
        _OURS.add(self)

    def emit(self, record: logging.LogRecord) -> None:
        level = record.levelno
        if level >= logging.CRITICAL:
            name = "critical"
        elif level >= logging.ERROR:
            name = "exception" if record.exc_info else "error"
        else:
            name = "warning"
        self.statsd.increment(f"gunicorn.log.{name}", 1)


def statsd_client() -> Statsd | None:
    return _statsd


# -- setup -------------------------------------------------------------------------------------------------

def setup_error_log(target: str, level: str) -> logging.Logger:
    """The error log alone (kept for callers that have no full configuration)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.propagate = False
    _set_level(logger, level)
    _set_handler(logger, target, sys.stderr, logging.Formatter(_FORMAT, _DATEFMT), "--error-logfile")
    return logger


def _set_level(logger: logging.Logger, level: str) -> None:
    name = level.lower()
    if name in _GUNICORN_INFO:
        logger.setLevel(_GUNICORN_INFO[name])
        return
    if name not in _LEVELS:
        raise ValueError(f"--log-level: {level!r} is not one of {', '.join(_LEVELS)}")
    logger.setLevel(_LEVELS[name])


def _remove_handlers(logger: logging.Logger) -> None:
    """A fresh start for our loggers (HUP): ours are closed; a logging config's are only dropped
    (another logger may share them; the config applied next sets them again)."""
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        if handler in _OURS:
            handler.close()


# logging.handlers, logging.config and configparser are imported where they are used: most
# deployments never need them, and each worker would carry them (~1.5 MiB).

def _syslog_handler_class() -> type[logging.handlers.SysLogHandler]:
    import logging.handlers as handlers

    return handlers.SysLogHandler


def _set_handler(logger: logging.Logger, target: str | None, stream: Any,
                 formatter: logging.Formatter, flag: str, owner: Any = None) -> None:
    for old in list(logger.handlers):
        if old in _OURS and not isinstance(old, (_syslog_handler_class(), _StatsdLogCounter)):
            logger.removeHandler(old)
            old.close()
    if target is None:
        return
    handler: logging.Handler
    if target == "-":
        handler = logging.StreamHandler(stream)
    else:
        try:
            handler = logging.FileHandler(target)
        except OSError as exc:
            raise ValueError(f"{flag}: cannot open {target!r}: {exc.strerror or exc}") from None
        if owner is not None:
            try:  # workers that run as --user/--group must be able to reopen it on USR1
                os.chown(handler.baseFilename, *owner)
            except OSError:
                pass
    handler.setFormatter(formatter)
    _OURS.add(handler)
    logger.addHandler(handler)


def _owner(cfg: Config) -> tuple[int, int] | None:
    if not (cfg.user or cfg.group):
        return None
    user = resolve_user(cfg.user)
    gid = resolve_group(cfg.group)
    return (user[0] if user else -1, gid if gid is not None else -1)


def _syslog_handler(cfg: Config, name: str) -> logging.Handler:
    prefix = cfg.syslog_prefix or (cfg.proc_name or cfg.default_proc_name or cfg.app_uri
                                   or "pronghorn").replace(":", ".")
    try:
        facility = SYSLOG_FACILITIES[cfg.syslog_facility.lower()]
    except KeyError:
        raise ValueError(f"--log-syslog-facility: unknown facility {cfg.syslog_facility!r}") \
            from None
    socktype, address = parse_syslog_address(cfg.syslog_addr)
    try:
        handler = _syslog_handler_class()(address=address, facility=facility,
                                          socktype=socktype)
    except OSError as exc:
        raise ValueError(f"--log-syslog-to: cannot reach {cfg.syslog_addr!r}: "
                         f"{exc.strerror or exc}") from None
    # Gunicorn's program name, so that syslog rules written for it keep matching.
    program = f"gunicorn.{prefix}.{name}".replace("%", "%%")
    handler.setFormatter(logging.Formatter(f"{program}: {_SYSLOG_FORMAT}"))
    _OURS.add(handler)
    return handler


def _capture_output(path: str | None) -> None:
    """--capture-output: fds 1 and 2 write to the error log file (None: leave them)."""
    _captured["path"] = path
    if path is None:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    try:
        new = open(path, "a+")
    except OSError as exc:
        raise ValueError(f"--capture-output: cannot open {path!r}: {exc.strerror or exc}") from None
    os.dup2(new.fileno(), 1)
    os.dup2(new.fileno(), 2)
    old, _captured["file"] = _captured["file"], new
    if old is not None:
        old.close()


def _configured_names_ini(path: str) -> set[str]:
    import configparser

    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path)
        keys = [k.strip() for k in parser.get("loggers", "keys", fallback="").split(",")]
        return {parser.get(f"logger_{key}", "qualname", fallback=key) for key in keys if key}
    except configparser.Error:
        return set()


def _merged_config(user: dict[str, Any], level: str) -> dict[str, Any]:
    """The user's dict over CONFIG_DEFAULTS. As in Gunicorn, a top-level key replaces ours (so
    "loggers" and "root" route as the user says), except that the definitions in "formatters",
    "filters" and "handlers" add to ours: a config whose own "handlers" left out the "console"
    that our default root uses works instead of failing as it does under Gunicorn."""
    config = copy.deepcopy(CONFIG_DEFAULTS)
    config["loggers"][LOGGER_NAME]["level"] = level.upper()
    for key, value in user.items():
        if key in ("formatters", "filters", "handlers") and isinstance(value, dict):
            config.setdefault(key, {}).update(value)
        else:
            config[key] = value
    return config


def _apply_logging_config(cfg: Config) -> set[str] | None:
    """logconfig_dict, else --log-config-json, else --log-config; the logger names it configured
    (None when there is no logging config)."""
    if not (cfg.logconfig_dict or cfg.logconfig_json or cfg.logconfig):
        return None
    import configparser
    import logging.config as logging_config

    if cfg.logconfig_dict:
        config = _merged_config(cfg.logconfig_dict, cfg.loglevel)
        try:
            logging_config.dictConfig(config)
        except (AttributeError, ImportError, ValueError, TypeError) as exc:
            raise ValueError(f"logconfig_dict: {exc}") from None
        return set(config.get("loggers", {}))
    if cfg.logconfig_json:
        try:
            with open(cfg.logconfig_json, encoding="utf-8") as handle:
                loaded = json.load(handle)
            if not isinstance(loaded, dict):
                raise ValueError("the file does not hold a JSON object")
            config = _merged_config(loaded, cfg.loglevel)
            logging_config.dictConfig(config)
        except OSError as exc:
            raise ValueError(f"--log-config-json: cannot read {cfg.logconfig_json!r}: "
                             f"{exc.strerror or exc}") from None
        except (AttributeError, ImportError, ValueError, TypeError) as exc:
            raise ValueError(f"--log-config-json: {cfg.logconfig_json}: {exc}") from None
        return set(config.get("loggers", {}))
    if cfg.logconfig:
        path = cfg.logconfig
        if not os.path.exists(path):
            raise ValueError(f"--log-config: the log config {path!r} does not exist")
        defaults = {"__file__": path, "here": os.path.dirname(path)}
        try:
            logging_config.fileConfig(path, defaults=defaults, disable_existing_loggers=False)
        except (KeyError, ValueError, TypeError, AttributeError, ImportError,
                configparser.Error) as exc:
            raise ValueError(f"--log-config: {path}: {type(exc).__name__}: {exc}") from None
        return _configured_names_ini(path)
    return None


class _NamedAs(logging.Filter):
    """Gives our records the name of the Gunicorn logger a logging config set up for them."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.as_name = name

    def filter(self, record: logging.LogRecord) -> bool:
        record.name = self.as_name
        return True


def _copy_logger(source: logging.Logger, target: logging.Logger) -> None:
    target.handlers = list(source.handlers)
    target.filters = list(source.filters)
    target.setLevel(source.level)
    target.propagate = source.propagate
    target.disabled = source.disabled


# -- logger_class: a Gunicorn-style logger object ----------------------------------------------------------

#: The names of Gunicorn's own logger classes (and "simple", Gunicorn's alias of its default): they
#: mean the logging above, which does what they do (Gunicorn's Statsd logger included: --statsd-host).
OUR_LOGGER_CLASSES = frozenset({"gunicorn.glogging.Logger", "simple", "glogging.Logger",
                                "gunicorn.instrument.statsd.Statsd"})
#: What pronghorn calls on a logger_class object; Gunicorn calls the same.
LOGGER_METHODS = ("access", "critical", "error", "warning", "info", "debug", "exception",
                  "reopen_files")

# The --logger-class object (made in the master, inherited by workers), or None for ours.
_custom: Any = None


def custom_logger() -> Any:
    """The --logger-class object receiving the access and error logs, or None (ours does)."""
    return _custom


def load_logger_class(spec: Any) -> type | None:
    """The class --logger-class names (MODULE.CLASS, egg:DIST#NAME, or a class from a config file);
    None for the names of Gunicorn's own loggers, which mean ours. Raises ValueError saying exactly
    why a class cannot be used."""
    if isinstance(spec, type):
        if f"{spec.__module__}.{spec.__qualname__}" in OUR_LOGGER_CLASSES:
            return None
        cls: Any = spec
        name = f"{spec.__module__}.{spec.__qualname__}"
    else:
        name = str(spec).strip()
        if name in OUR_LOGGER_CLASSES:
            return None
        cls = _import_class(name)
    if not callable(cls):
        raise ValueError(f"logger_class: {name} is not a class")
    missing = [method for method in LOGGER_METHODS if not callable(getattr(cls, method, None))]
    if missing:
        raise ValueError(f"logger_class: {name} lacks {', '.join(missing)} of Gunicorn's Logger "
                         "interface (subclass gunicorn.glogging.Logger, or define them)")
    return cast(type, cls)


def _import_class(name: str) -> Any:
    import importlib

    if name.startswith("egg:"):
        from importlib.metadata import entry_points

        dist, _, entry = name[4:].partition("#")
        found = entry_points(group="gunicorn.loggers", name=entry or "default")
        for point in found:
            if not dist or point.dist is None or point.dist.name == dist:
                return point.load()
        raise ValueError(f"logger_class: no entry point {entry!r} in group gunicorn.loggers"
                         + (f" of {dist!r}" if dist else ""))
    module_name, _, attribute = name.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"logger_class: {name!r} is not MODULE.CLASS")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        why = f"cannot import {module_name!r}: {exc}"
        if (exc.name or "").split(".")[0] == "gunicorn":
            why += (" (the class needs Gunicorn's gunicorn.glogging.Logger: install gunicorn in "
                    "the same environment, pip install gunicorn, or give the class the Logger "
                    "methods itself)")
        raise ValueError(f"logger_class: {why}") from None
    except Exception as exc:
        raise ValueError(f"logger_class: importing {module_name!r} failed: "
                         f"{type(exc).__name__}: {exc}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"logger_class: module {module_name!r} has no {attribute!r}") from None


class _ToCustomLogger(logging.Handler):
    """On "pronghorn.error": hands every record to the logger class's method of its level, with the
    message and arguments as they were logged (as Gunicorn's code calls its logger)."""

    def __init__(self, target: Any) -> None:
        super().__init__()
        self.target = target
        self._inside = threading.local()
        _OURS.add(self)

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._inside, "active", False):
            return  # the logger class logged to pronghorn.error itself: no loop
        self._inside.active = True
        try:
            level = record.levelno
            if level >= logging.CRITICAL:
                method = "critical"
            elif level >= logging.ERROR:
                method = "exception" if record.exc_info else "error"
            elif level >= logging.WARNING:
                method = "warning"
            elif level >= logging.INFO:
                method = "info"
            else:
                method = "debug"
            if isinstance(record.args, tuple):
                msg, args = record.msg, record.args
            else:
                msg, args = record.getMessage(), ()
            call = getattr(self.target, method)
            if record.exc_info:
                try:
                    call(msg, *args, exc_info=record.exc_info)
                except TypeError:  # a method without **kwargs
                    call(msg, *args)
            else:
                call(msg, *args)
        except Exception:
            self.handleError(record)
        finally:
            self._inside.active = False


def _restart_statsd(cfg: Config, error_log: logging.Logger) -> None:
    """A new statsd client for cfg (the old one closed), counting error_log's records."""
    global _statsd
    if _statsd is not None:
        _statsd.close()
        _statsd = None
    if cfg.statsd_host:
        _statsd = Statsd(cfg.statsd_host, cfg.statsd_prefix, cfg.dogstatsd_tags)
        error_log.addHandler(_StatsdLogCounter(_statsd))


def _setup_custom(cls: type, cfg: Config) -> logging.Logger:
    """--logger-class: the object gets the error log (every record of "pronghorn.error") and, through
    the request cycle, every request's access(); statsd stays ours. HUP calls its setup() again."""
    global _custom, _request_logger, _statsd
    shaped = GunicornConfig(cfg)  # what Gunicorn's loggers read, in Gunicorn's forms
    name = f"{cls.__module__}.{cls.__qualname__}"
    try:
        if _custom is not None and type(_custom) is cls:
            setup = getattr(_custom, "setup", None)
            if callable(setup):
                setup(shaped)
        else:
            install = getattr(cls, "install", None)
            if callable(install):
                install()
            _custom = cls(shaped)
    except Exception as exc:
        raise ValueError(f"logger_class: {name} failed to set up: {type(exc).__name__}: {exc}") \
            from None
    error_log = logging.getLogger(LOGGER_NAME)
    access_log = logging.getLogger(ACCESS_LOGGER_NAME)
    error_log.propagate = access_log.propagate = False
    _set_level(error_log, cfg.loglevel)
    for logger in (error_log, access_log):
        _remove_handlers(logger)
    _capture_output(None)  # (the logger class captures output itself, as Gunicorn's does)
    error_log.addHandler(_ToCustomLogger(_custom))
    _restart_statsd(cfg, error_log)
    _request_logger = (RequestLogger(None, None, access_log, _statsd, error_log)
                       if _statsd is not None else None)
    close_on_exec = getattr(_custom, "close_on_exec", None)
    if callable(close_on_exec):  # (USR2's new master must not inherit the log files)
        close_on_exec()
    return error_log


def setup_logging(cfg: Config) -> logging.Logger:
    """Set up every log from the configuration (see the module docstring); returns the error log.
    Raises ValueError naming the setting when one cannot be used."""
    global _request_logger, _statsd, _custom
    custom_class = load_logger_class(cfg.logger_class)
    if custom_class is not None:
        return _setup_custom(custom_class, cfg)
    _custom = None
    error_log = logging.getLogger(LOGGER_NAME)
    access_log = logging.getLogger(ACCESS_LOGGER_NAME)
    error_log.propagate = access_log.propagate = False
    _set_level(error_log, cfg.loglevel)
    access_log.setLevel(logging.INFO)
    for logger in (error_log, access_log):
        _remove_handlers(logger)
    owner = _owner(cfg)

    _capture_output(cfg.errorlog if cfg.capture_output and cfg.errorlog != "-" else None)
    _set_handler(error_log, cfg.errorlog, sys.stderr, logging.Formatter(_FORMAT, _DATEFMT),
                 "--error-logfile", owner)
    _set_handler(access_log, cfg.accesslog, sys.stdout, logging.Formatter("%(message)s"),
                 "--access-logfile", owner)
    if cfg.syslog:
        error_log.addHandler(_syslog_handler(cfg, "error"))
        if not cfg.disable_redirect_access_to_syslog:
            access_log.addHandler(_syslog_handler(cfg, "access"))

    configured = _apply_logging_config(cfg)
    configured = configured or set()
    for ours, theirs in _GUNICORN_NAMES.items():
        if theirs in configured and ours not in configured:
            _copy_logger(logging.getLogger(theirs), logging.getLogger(ours))
            # The config's formats and filters expect Gunicorn's logger name (%(name)s).
            logging.getLogger(ours).addFilter(_NamedAs(theirs))
        elif theirs not in configured:
            _copy_logger(logging.getLogger(ours), logging.getLogger(theirs))

    _restart_statsd(cfg, error_log)

    # Gunicorn writes access lines whenever something may want them: an access log file, a logging
    # config (its handlers decide), or syslog that takes them.
    access_on = bool(cfg.accesslog or cfg.logconfig or cfg.logconfig_dict or cfg.logconfig_json
                     or (cfg.syslog and not cfg.disable_redirect_access_to_syslog))
    line: Callable[..., str] | None = None
    fmt: str | None = None
    if access_on:
        if cfg.access_log_json:
            line = json_line
        else:
            fmt = cfg.access_log_format
            try:
                line = compile_access_format(fmt)
            except AccessFormatError as exc:
                raise ValueError(f"--access-logformat: {exc}") from None
    elif cfg.access_log_json:
        error_log.warning("--access-log-json has no effect without --access-logfile")
    _request_logger = (RequestLogger(line, fmt, access_log, _statsd, error_log)
                       if line is not None or _statsd is not None else None)
    if cfg.loglevel.lower() in _GUNICORN_INFO:
        error_log.warning("--log-level %s is not one of Gunicorn's levels (debug, info, warning, "
                          "error, critical); as under Gunicorn, the log is at info", cfg.loglevel)
    return error_log


def error_log() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


def _all_loggers() -> list[logging.Logger]:
    manager = logging.Logger.manager
    found: list[logging.Logger] = [logging.getLogger()]
    found += [logger for logger in list(manager.loggerDict.values())
              if isinstance(logger, logging.Logger)]
    return found


def reopen_logs() -> None:
    """USR1 (logrotate): reopen every log file so writes go to the new file, losing no line."""
    if _request_logger is not None:
        _request_logger.flush()  # the lines of requests that finished before the signal
    if _custom is not None:  # --logger-class: its reopen_files(), as Gunicorn calls it
        try:
            _custom.reopen_files()
        except Exception:
            error_log().exception("Error in the logger class's reopen_files()")
        return
    if _captured["path"] is not None:
        try:
            _capture_output(_captured["path"])
        except ValueError as exc:
            error_log().error("%s", exc)
    seen: set[int] = set()
    for logger in _all_loggers():
        for handler in logger.handlers:
            if not isinstance(handler, logging.FileHandler) or id(handler) in seen:
                continue
            seen.add(id(handler))  # the gunicorn.* loggers share our handlers
            handler.acquire()
            try:
                if handler.stream is not None:
                    handler.stream.flush()
                    handler.stream.close()
                    handler.stream = None  # if opening fails, the next write tries again
                    handler.stream = handler._open()
            except OSError as exc:
                error_log().error("Cannot reopen %s: %s", handler.baseFilename, exc)
            finally:
                handler.release()

"""Every setting, declared once: name, type, default, flags, environment variable, section, help.

Names and flag spellings are Gunicorn's (``--limit-request-field_size`` included) so that a Gunicorn
command line works unchanged. The command line (cli.py), the config file (file.py), ``--help``,
``--print-config`` and docs/settings.md (docs.py) are all built from :data:`SETTINGS`.

Where a value comes from, lowest to highest: the default (or, for a setting with ``env``, that
environment variable: ``WEB_CONCURRENCY`` for workers, ``PORT`` for bind, as in Gunicorn), the config
file, ``PRONGHORN_CMD_ARGS`` (or ``GUNICORN_CMD_ARGS`` when ours is unset), the command line.
``Config.sources`` records which one each value came from.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Collection, Mapping, Sequence

from .hooks import Hooks
from .values import (
    DEFAULT_ACCESS_LOG_FORMAT, DEFAULT_SECURE_SCHEME_HEADERS, SYSLOG_FACILITIES, access_log_format,
    accepts_objects, allow_list, cert_reqs, parse_statsd_address, parse_syslog_address, ssl_version,
    takes_objects,
)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"{text!r} is negative")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise ValueError(f"{text!r} is negative")
    return value


def metrics_address(text: str) -> str:
    """--metrics-bind: an address as --bind takes it (HOST:PORT, [IPV6]:PORT or unix:PATH), one the
    master binds itself (so not fd://N)."""
    kind, _ = parse_bind(text)
    if kind == "fd":
        raise ValueError(f"{text!r}: the metrics address is bound by the master, not inherited")
    return text


def parse_umask(text: str) -> int:
    """As Gunicorn reads it: "0o027", "027" (octal by its leading zero), "0x17" or decimal."""
    value_text = str(text).strip()
    if re.fullmatch(r"0[0-7]+", value_text):
        value_text = "0o" + value_text[1:]
    value = int(value_text, 0)
    if not 0 <= value <= 0o777:
        raise ValueError(f"{text!r} is not a umask between 0 and 0o777")
    return value


def parse_mode(text: str) -> int:
    """A file mode as Gunicorn reads --control-socket-mode: "0o600", "0600" (octal by its leading
    zero), "0x180" or decimal ("384")."""
    value_text = str(text).strip()
    if re.fullmatch(r"0[0-7]+", value_text):
        value_text = "0o" + value_text[1:]
    value = int(value_text, 0)
    if not 0 <= value <= 0o777:
        raise ValueError(f"{text!r} is not a file mode between 0 and 0o777")
    return value


def statsd_address(text: str) -> str:
    parse_statsd_address(text)
    return text


def syslog_address(text: str) -> str:
    parse_syslog_address(text)
    return text


def syslog_facility(text: str) -> str:
    if text.lower() not in SYSLOG_FACILITIES:
        raise ValueError(f"{text!r} is not a syslog facility ({', '.join(SYSLOG_FACILITIES)})")
    return text


@takes_objects  # config files pass the dict as is
def json_dict(value: Any) -> dict[str, Any]:
    """A dict: in a config file a Python dict, on the command line a JSON object."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{value!r} is not a dict")
    return dict(value)


@takes_objects
def scheme_headers(value: Any) -> dict[str, str]:
    """secure_scheme_headers: {header: value meaning https}; a JSON object on the command line."""
    headers = json_dict(value)
    for name, meaning in headers.items():
        if not isinstance(name, str) or not isinstance(meaning, str) or not name.strip():
            raise ValueError(f"{name!r}: {meaning!r} is not a header name and a string value")
    # The keys as written: Gunicorn compares them with upper-case header names as they are, so one
    # in mixed case never matches (ForwardedPolicy does the same; the master warns of it).
    return dict(headers)


@takes_objects  # True/False, as older Gunicorn config files say it
def proxy_protocol_mode(value: Any) -> str:
    """--proxy-protocol: off, v1, v2 or auto; True/False as older Gunicorn config files say it."""
    if value is True:
        return "auto"
    if value is False or value is None:
        return "off"
    text = str(value).strip().lower()
    text = {"true": "auto", "on": "auto", "yes": "auto", "1": "auto", "false": "off", "no": "off",
            "0": "off"}.get(text, text)
    if text not in ("off", "v1", "v2", "auto"):
        raise ValueError(f"{value!r} is not off, v1, v2 or auto")
    return text


def gunicorn_env_bool(text: str) -> bool:
    """A switch's text as Gunicorn reads the SENDFILE variable: y, yes, 1 or true (any case) is on,
    anything else off."""
    return text.strip().lower() in ("y", "yes", "1", "true")


HEADER_MAP_VALUES = ("drop", "refuse", "dangerous")
HTTP_PARSERS = ("auto", "fast", "python")


def header_map(text: str) -> str:
    """--header-map: Gunicorn's values, case and surrounding spaces ignored as there."""
    value = text.strip().lower()
    if value not in HEADER_MAP_VALUES:
        raise ValueError(f"{text!r} is not one of {', '.join(HEADER_MAP_VALUES)}")
    return value


def http_parser(text: str) -> str:
    """--http-parser: Gunicorn's values, case and surrounding spaces ignored as there."""
    value = text.strip().lower()
    if value not in HTTP_PARSERS:
        raise ValueError(f"{text!r} is not one of {', '.join(HTTP_PARSERS)}")
    return value


SERVER_PROTOCOLS = ("http", "uwsgi")


def server_protocol(text: str) -> str:
    """--protocol: http or uwsgi, case and surrounding spaces ignored."""
    value = text.strip().lower()
    if value not in SERVER_PROTOCOLS:
        raise ValueError(f"{text!r} is not one of {', '.join(SERVER_PROTOCOLS)}")
    return value


ASGI_LOOPS = ("auto", "asyncio", "uvloop")
ASGI_LIFESPANS = ("auto", "on", "off")


def asgi_loop(text: str) -> str:
    """--asgi-loop: Gunicorn's values, case and surrounding spaces ignored as there."""
    value = text.strip().lower()
    if value not in ASGI_LOOPS:
        raise ValueError(f"{text!r} is not one of {', '.join(ASGI_LOOPS)}")
    return value


def asgi_lifespan(text: str) -> str:
    """--asgi-lifespan: Gunicorn's values, case and surrounding spaces ignored as there."""
    value = text.strip().lower()
    if value not in ASGI_LIFESPANS:
        raise ValueError(f"{text!r} is not one of {', '.join(ASGI_LIFESPANS)}")
    return value


def key_value(text: str) -> str:
    """A KEY=VALUE pair (-e/--env)."""
    if "=" not in text or not text.partition("=")[0]:
        raise ValueError(f"{text!r} is not KEY=VALUE")
    return text


@takes_objects  # a config file may give the class itself, as Gunicorn allows
def logger_class_name(value: Any) -> Any:
    """--logger-class: MODULE.CLASS (or egg:DIST#NAME), or a class object from a config file.
    Loaded where the logs are set up (pronghorn/logs.py), which says why one cannot be used."""
    if value is None:
        return DEFAULT_LOGGER_CLASS
    if isinstance(value, type):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not a class or a MODULE.CLASS name")
    return value.strip()


HTTP_PROTOCOLS = ("h1", "h2")
H2C_MODES = ("off", "prior-knowledge", "upgrade", "both")


def http_protocols(text: str) -> str:
    """--http-protocols: h1 and/or h2, comma-separated, in order of preference (Gunicorn's rules:
    case and spaces ignored, no duplicates, empty means h1); kept as normalized text."""
    names = [name.strip().lower() for name in str(text).split(",") if name.strip()]
    for name in names:
        if name not in HTTP_PROTOCOLS:
            raise ValueError(f"{name!r} is not one of {', '.join(HTTP_PROTOCOLS)}")
    if len(names) != len(set(names)):
        raise ValueError("a protocol is named twice")
    return ",".join(names) or "h1"


@takes_objects  # True/False in a config file, as Gunicorn reads it
def http2_cleartext(value: Any) -> str:
    """--http2-cleartext: off, prior-knowledge, upgrade or both (True means prior-knowledge)."""
    if value is None or value is False:
        return "off"
    if value is True:
        return "prior-knowledge"
    text = str(value).strip().lower()
    if text not in H2C_MODES:
        raise ValueError(f"{value!r} is not one of {', '.join(H2C_MODES)}")
    return text


def _int_in(text: Any, low: int, high: int, what: str) -> int:
    """An integer in [low, high], from text (0x... too, as Gunicorn reads it) or a config file's int."""
    if isinstance(text, bool) or not isinstance(text, (int, str)):
        raise ValueError(f"{text!r} is not an integer")
    try:
        value = text if isinstance(text, int) else int(text.strip(), 0)
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None
    if not low <= value <= high:
        raise ValueError(f"{what} must be between {low} and {high}, not {value}")
    return value


@takes_objects  # an int in a config file
def http2_window(text: Any) -> int:
    """A flow-control window: at most 2**31-1 bytes (RFC 9113 §6.9.1)."""
    return _int_in(text, 0, 2 ** 31 - 1, "an HTTP/2 window size")


@takes_objects  # an int in a config file
def http2_streams(text: Any) -> int:
    return _int_in(text, 1, 2 ** 31 - 1, "the HTTP/2 concurrent streams")


@takes_objects  # an int in a config file
def http2_frame_size(text: Any) -> int:
    """SETTINGS_MAX_FRAME_SIZE's range (RFC 9113 §6.5.2)."""
    return _int_in(text, 16384, 16777215, "the HTTP/2 frame size")


DEFAULT_LOGGER_CLASS = "gunicorn.glogging.Logger"


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


# Names Gunicorn accepts and logs at info for (its fallback): Python's aliases that are not its levels.
GUNICORN_INFO_LEVELS = ("warn", "fatal", "notset")


def log_level(text: str) -> str:
    if text.strip().lower() not in LOG_LEVELS + GUNICORN_INFO_LEVELS:
        raise ValueError(f"{text!r} is not one of {', '.join(LOG_LEVELS)}")
    return text.strip()


PRINT_CONFIG_FORMATS = ("plain", "annotated")


@takes_objects  # print_config = True in a config file, as in Gunicorn
def print_config_format(value: Any) -> str:
    """--print-config: "plain" (Gunicorn's format), "annotated" (with sources), or "" (off)."""
    if value is True:
        return "plain"
    if value is False or value is None:
        return ""
    text = str(value).strip().lower()
    text = {"true": "plain", "1": "plain", "yes": "plain", "gunicorn": "plain", "false": "",
            "0": "", "no": "", "off": ""}.get(text, text)
    if text and text not in PRINT_CONFIG_FORMATS:
        raise ValueError(f"{value!r} is not a --print-config format ({', '.join(PRINT_CONFIG_FORMATS)})")
    return text


#: The sections, in the order --help and docs/settings.md show them (Gunicorn's section names).
SECTIONS = ("Config File", "Server Socket", "Worker Processes", "Security", "Server Mechanics",
            "Process Naming", "Debugging", "Logging", "SSL", "HTTP/2", "Control",
            "Metrics")


@dataclass(frozen=True)
class Setting:
    name: str
    flags: tuple[str, ...]
    default: Any
    section: str
    help: str
    convert: Callable[[str], Any] = str
    metavar: str | None = None
    multiple: bool = False           # the flag may repeat; the value is a list
    flag_only: bool = False          # boolean switch (store_true)
    default_factory: Callable[[], Any] | None = field(default=None, compare=False)
    env: str | None = None           # an environment variable that, when set, replaces the default
    env_format: str = "{}"           # how that variable's text becomes the value's text
    const: Any = None                # the value of the flag given without one (nargs="?")
    # The optional value only counts attached (--print-config=annotated): the flag alone is the
    # const, so that "--print-config app:app" keeps app:app as the application, as in Gunicorn.
    value_attached: bool = False
    # A switch's flag sets True, or False for a "--no-X" flag (--no-sendfile); a switch's text (from
    # its env variable, or a config file's string) is read by ``convert`` when that is not str.
    switch_value: bool = True

    def initial(self) -> Any:
        if self.default_factory is not None:
            return self.default_factory()
        return list(self.default) if self.multiple else self.default


SETTINGS: tuple[Setting, ...] = (
    Setting("config", ("-c", "--config"), None, "Config File",
            "A Gunicorn-format Python config file: PATH, file:PATH or python:MODULE. Without it, "
            "./pronghorn.conf.py or else ./gunicorn.conf.py is read if present. The command line "
            "overrides the file.", str, "CONFIG"),
    Setting("strict_config", ("--strict-config",), False, "Config File",
            "Make names in the config file that look like a misspelt setting or hook an error; "
            "without it they are ignored, as Gunicorn ignores them, and named in one warning "
            "(a pronghorn addition).", flag_only=True),
    Setting("bind", ("-b", "--bind"), ["127.0.0.1:8000"], "Server Socket",
            "Address to listen on: HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N. Repeat to listen on "
            "several. When $PORT is set, the default is 0.0.0.0:$PORT, as in Gunicorn.",
            metavar="ADDRESS", multiple=True, env="PORT", env_format="0.0.0.0:{}"),
    Setting("backlog", ("--backlog",), 2048, "Server Socket",
            "The most pending connections the kernel queues per listener.", positive_int, "INT"),
    Setting("reuse_port", ("--reuse-port",), False, "Server Mechanics",
            "Set SO_REUSEPORT on listening sockets.", flag_only=True),
    Setting("workers", ("-w", "--workers"), 1, "Worker Processes",
            "The number of worker processes (default: $WEB_CONCURRENCY or 1).", positive_int, "INT",
            env="WEB_CONCURRENCY"),
    Setting("worker_class", ("-k", "--worker-class"), "sync", "Worker Processes",
            "The worker class: 'sync' (one request at a time per worker, for CPU-bound apps), "
            "'gthread' (a pool of --threads threads per worker, for thread-safe apps that wait on "
            "I/O) or 'gevent' (a greenlet per connection; pip install 'pronghorn[gevent]'). "
            "Gunicorn's class paths (gunicorn.workers.ggevent.GeventWorker, ...) name the same "
            "classes. With --threads above 1, 'sync' runs as 'gthread', as in Gunicorn. 'asgi' "
            "runs an ASGI 3 (or 2) application on an event loop, a task per request; "
            "uvicorn.workers.UvicornWorker and its kin name it too.",
            str, "STRING"),
    Setting("asgi_loop", ("--asgi-loop",), "auto", "Worker Processes",
            "The asgi worker's event loop: auto (uvloop when installed, else asyncio's own), "
            "asyncio or uvloop.", asgi_loop, "STRING"),
    Setting("asgi_lifespan", ("--asgi-lifespan",), "auto", "Worker Processes",
            "The asgi worker's lifespan protocol: auto (run it; an app that does not support it "
            "is served without it, quietly), on (an app that does not support it fails the "
            "worker's boot) or off. A startup the app reports as failed fails the worker's boot "
            "in auto and on, as an import error does.", asgi_lifespan, "STRING"),
    Setting("asgi_disconnect_grace_period", ("--asgi-disconnect-grace-period",), 3,
            "Worker Processes",
            "Seconds an ASGI request's task has, once its client has gone (it receives "
            "http.disconnect), to end by itself before it is cancelled (0: cancelled at once).",
            positive_int, "INT"),
    Setting("http_protocols", ("--http-protocols",), "h1", "HTTP/2",
            "HTTP versions to serve, comma-separated, in order of preference: h1 (HTTP/1.1), h2 "
            "(HTTP/2: ALPN on TLS listeners, or cleartext with --http2-cleartext). A client that "
            "does not pick h2 is served HTTP/1.1. h2 needs pip install 'pronghorn[http2]'.",
            http_protocols, "STRING"),
    Setting("http2_cleartext", ("--http2-cleartext",), "off", "HTTP/2",
            "Cleartext HTTP/2 (h2c), only from peers in --forwarded-allow-ips (others get "
            "HTTP/1.1 as if off): prior-knowledge (the connection opens with the HTTP/2 preface; "
            "anything else from a trusted peer is a 400), upgrade (an HTTP/1.1 'Upgrade: h2c' "
            "request), or both. For a TLS-terminating proxy that speaks h2c (Cloud Run); ignored "
            "with TLS. Needs h2 in --http-protocols.", http2_cleartext, "MODE"),
    Setting("http2_max_concurrent_streams", ("--http2-max-concurrent-streams",), 100, "HTTP/2",
            "The most streams (requests) open at once on one HTTP/2 connection.", http2_streams,
            "INT"),
    Setting("http2_initial_window_size", ("--http2-initial-window-size",), 65535, "HTTP/2",
            "The HTTP/2 flow-control window the server offers per stream, in bytes (at most "
            "2**31-1).", http2_window, "INT"),
    Setting("http2_max_frame_size", ("--http2-max-frame-size",), 16384, "HTTP/2",
            "The largest HTTP/2 frame payload accepted, in bytes (16384 to 16777215).",
            http2_frame_size, "INT"),
    Setting("http2_max_header_list_size", ("--http2-max-header-list-size",), 65536, "HTTP/2",
            "The most bytes of decoded header fields in one HTTP/2 request (HPACK bombs); 0 "
            "means unlimited, as in Gunicorn (the HTTP/1.1 limits still apply to the fields).",
            positive_int, "INT"),
    Setting("websocket_max_message_size", ("--websocket-max-message-size",), 16 * 1024 * 1024,
            "Worker Processes",
            "Largest WebSocket message, in bytes, the asgi worker takes (the app gets whole "
            "messages, each held in memory until its last frame): a larger one closes the "
            "connection with code 1009, message too big (0: no limit).",
            positive_int, "INT"),
    Setting("websocket_ping_interval", ("--websocket-ping-interval",), 20.0,
            "Worker Processes",
            "Seconds between the pings the asgi worker sends each open WebSocket, to find dead or "
            "stuck peers (0: none). Not in Gunicorn 27; uvicorn's --ws-ping-interval.",
            positive_float, "FLOAT"),
    Setting("websocket_ping_timeout", ("--websocket-ping-timeout",), 20.0,
            "Worker Processes",
            "Seconds a WebSocket peer has to answer a ping with a pong; one that does not is "
            "closed with code 1011 (0: wait forever). Not in Gunicorn 27; uvicorn's "
            "--ws-ping-timeout.", positive_float, "FLOAT"),
    Setting("threads", ("--threads",), 1, "Worker Processes",
            "Threads per worker that run requests (gthread). Above 1, the sync class becomes "
            "gthread.", positive_int, "INT"),
    Setting("worker_connections", ("--worker-connections",), 1000, "Worker Processes",
            "The most connections one gthread or gevent worker holds at once; past it, new "
            "connections wait in the listen queue. The sync worker ignores it, as Gunicorn's does.",
            positive_int, "INT"),
    Setting("http_parser", ("--http-parser",), "auto", "Worker Processes",
            "Gunicorn's choice of request parser: auto, fast or python. Accepted and ignored: "
            "pronghorn always uses its own strict parser (llhttp under its rules); the log says "
            "so at start when another value than auto is given.", http_parser, "STRING"),
    Setting("timeout", ("-t", "--timeout"), 30.0, "Worker Processes",
            "Workers silent for more than this many seconds are killed and restarted.",
            positive_float, "INT"),
    Setting("graceful_timeout", ("--graceful-timeout",), 30.0, "Worker Processes",
            "After TERM, how long in-flight requests have to finish before workers are killed.",
            positive_float, "INT"),
    Setting("shutdown_delay", ("--shutdown-delay",), 0.0, "Worker Processes",
            "After TERM, seconds to keep accepting and serving while reporting not-ready (systemd "
            "STATUS=, the log), so that load balancers stop sending first; then the graceful stop "
            "begins. A second TERM ends the delay at once; INT or QUIT stops quickly (a pronghorn "
            "addition).", positive_float, "SECONDS"),
    Setting("keepalive", ("--keep-alive",), 5.0, "Worker Processes",
            "Seconds to wait for the next request on a keep-alive connection.", positive_float, "INT"),
    Setting("header_timeout", ("--header-timeout",), 30.0, "Security",
            "Seconds a client has to send a whole request head (408 after that); stops slowloris.",
            positive_float, "INT"),
    Setting("write_timeout", ("--write-timeout",), 30.0, "Security",
            "Seconds a response write may make no progress (the client reads nothing) before the "
            "connection is dropped and logged; the worker serves its other clients meanwhile. "
            "0 means never (a pronghorn addition).", positive_float, "INT"),
    Setting("max_unsent_bytes", ("--max-unsent-bytes",), 64 * 1024 * 1024, "Security",
            "The most response bytes one worker holds for clients that are not reading them; past "
            "it, the connection that has made no write progress for the longest is dropped and "
            "logged (a pronghorn addition).", positive_int, "INT"),
    Setting("limit_request_line", ("--limit-request-line",), 4094, "Security",
            "The longest request line in bytes (414 beyond it); 0 means the 8190 ceiling.",
            positive_int, "INT"),
    Setting("limit_request_fields", ("--limit-request-fields",), 100, "Security",
            "The most header fields in a request (431 beyond it).", positive_int, "INT"),
    Setting("limit_request_field_size", ("--limit-request-field_size", "--limit-request-field-size"),
            8190, "Security", "The largest header field in bytes (431 beyond it); 0 means 8190.",
            positive_int, "INT"),
    Setting("limit_request_body", ("--limit-request-body",), 0, "Security",
            "The largest request body in bytes (413 beyond it, before it is read); 0 means no limit.",
            positive_int, "INT"),
    Setting("max_requests", ("--max-requests",), 0, "Worker Processes",
            "Recycle a worker after this many requests (0: never); it finishes what it holds first.",
            positive_int, "INT"),
    Setting("max_requests_jitter", ("--max-requests-jitter",), 0, "Worker Processes",
            "Add up to this many requests, at random per worker, to --max-requests so workers do not "
            "all recycle at once.", positive_int, "INT"),
    Setting("max_worker_memory", ("--max-worker-memory",), 0, "Worker Processes",
            "Recycle a worker whose resident memory (RSS) passes this many MiB (0: never), as "
            "--max-requests does: its replacement starts accepting first, then it finishes what it "
            "holds. The master reads each worker's RSS from /proc about once a second (Linux; a "
            "pronghorn addition).", positive_int, "MiB"),
    Setting("preload_app", ("--preload",), False, "Server Mechanics",
            "Import the application in the master before forking the workers.", flag_only=True),
    Setting("pidfile", ("-p", "--pid"), None, "Server Mechanics",
            "Write the master's pid to this file.", str, "FILE"),
    Setting("daemon", ("-D", "--daemon"), False, "Server Mechanics",
            "Detach from the terminal and run in the background, with umask 022 (as Gunicorn).",
            flag_only=True),
    Setting("user", ("-u", "--user"), None, "Server Mechanics",
            "Run the workers as this user (name or uid).", str, "USER"),
    Setting("group", ("-g", "--group"), None, "Server Mechanics",
            "Run the workers as this group (name or gid).", str, "GROUP"),
    Setting("umask", ("-m", "--umask"), 0, "Server Mechanics",
            "The umask a unix socket is bound under (octal like 0o007 or decimal): the socket file "
            "gets mode 0o777 & ~umask, so 0o007 lets its owner and group connect, not others. "
            "Nothing else: the pidfile (always 0644), the logs and the app's files follow the "
            "umask pronghorn was started with (022 under --daemon).", parse_umask, "INT"),
    Setting("chdir", ("--chdir",), None, "Server Mechanics",
            "Change to this directory before loading the application.", str, "DIR"),
    Setting("pythonpath", ("--pythonpath",), None, "Server Mechanics",
            "Comma-separated directories to put first on sys.path.", str, "STRING"),
    Setting("raw_env", ("-e", "--env"), [], "Server Mechanics",
            "Set an environment variable in the server: -e KEY=VALUE (repeatable).", key_value,
            "KEY=VALUE", multiple=True),
    Setting("paste", ("--paste", "--paster"), None, "Server Mechanics",
            "Load the application from a PasteDeploy ini file (PATH, or PATH#NAME for an app "
            "section other than main) instead of MODULE:CALLABLE; its [loggers] sections, if any, "
            "configure the logs unless --log-config says otherwise. Needs pip install PasteDeploy.",
            str, "STRING"),
    Setting("raw_paste_global_conf", ("--paste-global",), [], "Server Mechanics",
            "A KEY=VALUE the PasteDeploy ini file sees as a global variable, like "
            "'paste_global_conf' in Gunicorn (repeatable).", key_value, "CONF", multiple=True),
    Setting("proc_name", ("-n", "--name"), None, "Process Naming",
            "A name for the process titles ('pronghorn: master [NAME]'); when unset, "
            "default_proc_name.", str, "STRING"),
    Setting("default_proc_name", (), None, "Process Naming",
            "The process-title name when proc_name is unset (config file only). Gunicorn sets it "
            "to the application named on the command line, which is what None means here.",
            str, "STRING"),
    Setting("sendfile", ("--no-sendfile",), True, "Server Mechanics",
            "Send wsgi.file_wrapper responses with os.sendfile (never through TLS); --no-sendfile "
            "writes them with plain writes instead. When not set, the SENDFILE environment "
            "variable decides, as in Gunicorn (y, yes, 1, true: on; anything else: off).",
            gunicorn_env_bool, flag_only=True, switch_value=False, env="SENDFILE"),
    Setting("initgroups", ("--initgroups",), False, "Server Mechanics",
            "With --user, give the workers every group the user is a member of (initgroups(3)) "
            "besides the primary one; without it their only group is the primary one.",
            flag_only=True),
    Setting("tmp_upload_dir", (), None, "Server Mechanics",
            "The directory where request bodies larger than 1 MiB wait for the app (as temporary "
            "files, already unlinked); it must be writable by the workers' user. Default: the "
            "system's temporary directory ($TMPDIR, else /tmp).", str, "DIR"),
    Setting("worker_tmp_dir", ("--worker-tmp-dir",), None, "Server Mechanics",
            "A directory for each worker's heartbeat file, as in Gunicorn (/dev/shm is the usual "
            "choice): made there, unlinked, and touched at every heartbeat, for whatever "
            "watches it. pronghorn's master reads a shared-memory heartbeat; without this "
            "setting no file is made.", str, "DIR"),
    Setting("reload", ("--reload",), False, "Debugging",
            "Restart workers when the application's code changes (development only).",
            flag_only=True),
    Setting("reload_engine", ("--reload-engine",), "auto", "Debugging",
            "How --reload watches files: auto, poll or watchfiles.", str, "STRING"),
    Setting("reload_extra_files", ("--reload-extra-file",), [], "Debugging",
            "Another file for --reload to watch (repeatable).", str, "FILE", multiple=True),
    Setting("spew", ("--spew",), False, "Debugging",
            "Print every line the workers execute to stdout (sys.settrace): a last resort for "
            "debugging, far too slow for serving.", flag_only=True),
    Setting("check_config", ("--check-config",), False, "Debugging",
            "Load the configuration and the application (after --chdir, --pythonpath and --env, "
            "without binding or forking), then exit: 0 if all is well, else 1 with the error.",
            flag_only=True),
    Setting("print_config", ("--print-config",), "", "Debugging",
            "Print every setting and server hook as Gunicorn prints them ('name = value', sorted), "
            "then check the configuration as --check-config does and exit. "
            "--print-config=annotated prints a valid config file instead, each value with where it "
            "came from (default, config file, PRONGHORN_CMD_ARGS or GUNICORN_CMD_ARGS, command "
            "line, WEB_CONCURRENCY, PORT).", print_config_format, "[=annotated]", const="plain",
            value_attached=True),
    Setting("loglevel", ("--log-level",), "info", "Logging",
            "The error log's level: debug, info, warning, error or critical.", log_level, "LEVEL"),
    Setting("errorlog", ("--error-logfile", "--log-file"), "-", "Logging",
            "Where the error log goes; '-' is stderr.", str, "FILE"),
    Setting("accesslog", ("--access-logfile",), None, "Logging",
            "Where the access log goes; '-' is stdout. Off by default.", str, "FILE"),
    Setting("access_log_format", ("--access-logformat",), DEFAULT_ACCESS_LOG_FORMAT, "Logging",
            "The access log format, Gunicorn's: %(h)s remote address, %(l)s '-', %(u)s Basic auth "
            "user, %(t)s time, %(r)s request line, %(m)s method, %(U)s path, %(q)s query, %(H)s "
            "protocol, %(s)s status, %(B)s/%(b)s body bytes (b: CLF), %(f)s referer, %(a)s user "
            "agent, %(T)s/%(M)s/%(D)s/%(L)s duration in s/ms/us/decimal s, %(p)s pid, "
            "%({header}i)s request header, %({header}o)s response header, %({var}e)s environ "
            "variable. Control characters are written as \\xNN.", access_log_format, "STRING"),
    Setting("access_log_json", ("--access-log-json",), False, "Logging",
            "Write the access log as one JSON object per request (time, remote_addr, user, "
            "method, uri, path, query, protocol, status, bytes, duration_ms, referer, user_agent, "
            "pid, request_id from X-Request-ID) instead of --access-logformat. A pronghorn "
            "addition; Gunicorn has no such option.", flag_only=True),
    Setting("disable_redirect_access_to_syslog", ("--disable-redirect-access-to-syslog",), False,
            "Logging", "With --log-syslog, keep the access log out of syslog.", flag_only=True),
    Setting("capture_output", ("--capture-output",), False, "Logging",
            "Redirect stdout/stderr (of the master and the workers) to the --error-logfile file.",
            flag_only=True),
    Setting("enable_stdio_inheritance", ("-R", "--enable-stdio-inheritance"), False, "Logging",
            "With --daemon, keep stdout and stderr where they point (a file, a pipe) rather than "
            "/dev/null; a terminal is still let go. stdin is always /dev/null.", flag_only=True),
    Setting("logger_class", ("--logger-class",), DEFAULT_LOGGER_CLASS, "Logging",
            "A class with Gunicorn's Logger interface (setup(cfg), access(resp, req, environ, "
            "request_time), critical/error/warning/info/debug/exception, reopen_files) that "
            "receives the error and access logs; a subclass of gunicorn.glogging.Logger works "
            "when Gunicorn is installed. 'gunicorn.glogging.Logger' (Gunicorn's default) and "
            "'simple' mean pronghorn's own logging. USR1 calls reopen_files(), HUP setup(cfg).",
            logger_class_name, "STRING"),
    Setting("logconfig", ("--log-config",), None, "Logging",
            "A logging config file in the ini format of Python's logging.config.fileConfig.",
            str, "FILE"),
    Setting("logconfig_dict", ("--log-config-dict",), {}, "Logging",
            "A logging config dict (logging.config.dictConfig) merged over the defaults; it wins "
            "over --log-config-json and --log-config. In a config file a dict, as in Gunicorn; "
            "the command-line flag, which takes JSON, is a pronghorn addition.", json_dict, "JSON",
            default_factory=dict),
    Setting("logconfig_json", ("--log-config-json",), None, "Logging",
            "A JSON file holding a logging config dict (logging.config.dictConfig).", str, "FILE"),
    Setting("syslog", ("--log-syslog",), False, "Logging",
            "Send the error log (and the access log, see --disable-redirect-access-to-syslog) to "
            "syslog, as program 'gunicorn.PREFIX.error' / '.access' like Gunicorn.",
            flag_only=True),
    Setting("syslog_addr", ("--log-syslog-to",), "udp://localhost:514", "Logging",
            "Where syslog messages go: unix://PATH[#stream|#dgram], udp://HOST:PORT or "
            "tcp://HOST:PORT.", syslog_address, "SYSLOG_ADDR"),
    Setting("syslog_prefix", ("--log-syslog-prefix",), None, "Logging",
            "The PREFIX of the syslog program name (default: the process name).", str,
            "SYSLOG_PREFIX"),
    Setting("syslog_facility", ("--log-syslog-facility",), "user", "Logging",
            "The syslog facility name.", syslog_facility, "SYSLOG_FACILITY"),
    Setting("statsd_host", ("--statsd-host",), None, "Logging",
            "Send Gunicorn's statsd metrics to HOST:PORT (UDP) or unix://PATH.", statsd_address,
            "STATSD_ADDR"),
    Setting("enable_backlog_metric", ("--enable-backlog-metric",), False, "Logging",
            "Send the number of connections waiting in the listen queues, summed, to statsd as "
            "the histogram gunicorn.backlog, about once a second. Linux TCP listeners only (read "
            "with TCP_INFO); unix sockets and other systems have no such count.",
            flag_only=True),
    Setting("statsd_prefix", ("--statsd-prefix",), "", "Logging",
            "A prefix for the statsd metric names (a trailing '.' is added).", str,
            "STATSD_PREFIX"),
    Setting("dogstatsd_tags", ("--dogstatsd-tags",), "", "Logging",
            "Comma-separated dogstatsd tags added to every metric, like 'env:prod,app:web'.", str,
            "DOGSTATSD_TAGS"),
    # -- behind proxies (pronghorn/wsgi/forwarded.py, pronghorn/http/proxy_protocol.py) --
    Setting("forwarded_allow_ips", ("--forwarded-allow-ips",), "127.0.0.1,::1", "Server Mechanics",
            "Peers trusted to say the request's scheme with --secure-scheme-headers and to send "
            "--forwarder-headers (addresses or networks, comma-separated; * for all; unix-socket "
            "peers are trusted). As in Gunicorn, REMOTE_ADDR stays the socket's peer (see "
            "--forwarded-client-address), and an untrusted peer's headers reach the app "
            "unchanged, as HTTP_*.", allow_list, "STRING", env="FORWARDED_ALLOW_IPS"),
    Setting("secure_scheme_headers", (), dict(DEFAULT_SECURE_SCHEME_HEADERS), "Server Mechanics",
            "Headers a trusted proxy sets to say the client used https, with the value that "
            "means it (config file only). Headers that disagree are a 400. As in Gunicorn, the "
            "names are upper case ('X-FORWARDED-PROTO'): one written otherwise never matches, "
            "and the log says so at start.", scheme_headers,
            default_factory=lambda: dict(DEFAULT_SECURE_SCHEME_HEADERS)),
    Setting("proxy_protocol", ("--proxy-protocol",), "off", "Server Mechanics",
            "Require a PROXY protocol header (v1, v2, or auto for either; the flag alone means "
            "auto) at the start of every connection, and take the client's address from it. A "
            "connection without a valid one is closed.", proxy_protocol_mode, "MODE",
            const="auto"),
    Setting("proxy_allow_ips", ("--proxy-allow-from",), "127.0.0.1,::1", "Server Mechanics",
            "Peers allowed to send a PROXY header (addresses or networks; * for all).",
            allow_list, "STRING"),
    Setting("protocol", ("--protocol",), "http", "Server Mechanics",
            "The protocol every listener speaks: http (HTTP/1.x), or uwsgi (the uwsgi binary "
            "protocol, for nginx's uwsgi_pass with include uwsgi_params; see docs/deploying.md).",
            server_protocol, "STRING"),
    Setting("uwsgi_allow_ips", ("--uwsgi-allow-from",), "127.0.0.1,::1", "Server Mechanics",
            "Peers allowed to send uwsgi requests with --protocol uwsgi (addresses or networks; * "
            "for all); a connection from any other is closed and logged. A unix-socket peer is "
            "always allowed.", allow_list, "STRING"),
    Setting("forwarded_client_address", ("--forwarded-client-address",), False,
            "Server Mechanics",
            "Take REMOTE_ADDR and REMOTE_PORT from a trusted proxy's Forwarded or X-Forwarded-For "
            "header (the right-most hop that is not itself a trusted proxy; the port is '0' when "
            "the header names none), and wsgi.url_scheme also from Forwarded's proto=; from "
            "untrusted peers those two headers are removed from the environ. Off by default, as "
            "Gunicorn has no such thing: REMOTE_ADDR is the socket's peer (a pronghorn addition).",
            flag_only=True),
    Setting("forwarder_headers", ("--forwarder-headers",), "SCRIPT_NAME,PATH_INFO",
            "Server Mechanics",
            "Upper-case header names ('_' included) that a trusted proxy (--forwarded-allow-ips) "
            "may send to reach the environ, comma-separated ('*' for any): each becomes "
            "HTTP_NAME whatever --header-map says, and a SCRIPT_NAME header also sets SCRIPT_NAME "
            "(the request path must start with it, else 500), as in Gunicorn.", str, "STRING"),
    Setting("root_path", ("--root-path",), "", "Server Mechanics",
            "The ASGI scope's root_path: where the application is mounted behind a proxy "
            "(/api); the asgi worker only.", str, "STRING"),
    Setting("header_map", ("--header-map",), "drop", "Server Mechanics",
            "What to do with a request header whose name has '_' (it would share an environ key "
            "with its '-' twin): 'drop' it, 'refuse' the request (400); 'dangerous' (map it "
            "anyway) is accepted but not applied: such headers are dropped and the log says so at "
            "start. --forwarder-headers from a trusted proxy are kept regardless.", header_map,
            "STRING"),
    Setting("permit_obsolete_folding", ("--permit-obsolete-folding",), False, "Server Mechanics",
            "Accept header values continued on the next line (obsolete line folding, RFC 9112 "
            "5.2), joining the lines with one space, as Gunicorn does; without it they get 400.",
            flag_only=True),
    Setting("strip_header_spaces", ("--strip-header-spaces",), False, "Server Mechanics",
            "Accepted for Gunicorn compatibility but not applied: whitespace between a header "
            "name and ':' is a request-smuggling vector and still gets 400 (RFC 9112 5.1); the "
            "log says so at start.", flag_only=True),
    Setting("permit_unconventional_http_method", ("--permit-unconventional-http-method",), False,
            "Server Mechanics",
            "Accept any token as a method: lowercase letters, '#', shorter than 3 or longer than "
            "20 characters (refused with 400 by default, as in Gunicorn).", flag_only=True),
    Setting("permit_unconventional_http_version", ("--permit-unconventional-http-version",),
            False, "Server Mechanics",
            "Accept HTTP versions other than 1.x in the request line (HTTP/0.9, HTTP/2.0, ...): "
            "0.x is served as HTTP/1.0, 2.x and above as HTTP/1.1. Without it they get 505.",
            flag_only=True),
    Setting("casefold_http_method", ("--casefold-http-method",), False, "Server Mechanics",
            "Upper-case the method before the app sees it (with "
            "--permit-unconventional-http-method, 'get' is served as GET), as Gunicorn does.",
            flag_only=True),
    # -- SSL (pronghorn/tls.py makes the context, in each worker) --
    Setting("certfile", ("--certfile",), None, "SSL",
            "Serve HTTPS: the certificate file (PEM, the chain after the certificate). TLS 1.2 "
            "is the minimum.", str, "FILE"),
    Setting("keyfile", ("--keyfile",), None, "SSL",
            "The private key file, when it is not in --certfile.", str, "FILE"),
    Setting("ca_certs", ("--ca-certs",), None, "SSL",
            "CA certificates that client certificates are checked against.", str, "FILE"),
    Setting("cert_reqs", ("--cert-reqs",), 0, "SSL",
            "Client certificates: 0 not asked for, 1 optional, 2 required (needs --ca-certs).",
            cert_reqs, "INT"),
    Setting("ciphers", ("--ciphers",), None, "SSL",
            "OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are OpenSSL's); default: Python's.",
            str, "STRING"),
    Setting("ssl_version", ("--ssl-version",), "TLSv1_2", "SSL",
            "The lowest TLS version: TLS (the default, 1.2 or newer) or TLSv1_3. Older versions "
            "are refused. Gunicorn's numeric values are understood.", ssl_version, "STRING"),
    Setting("do_handshake_on_connect", ("--do-handshake-on-connect",), False, "SSL",
            "Accepted for Gunicorn compatibility: the handshake always completes, within "
            "10 seconds, before the request is read.", flag_only=True),
    Setting("suppress_ragged_eofs", ("--suppress-ragged-eofs",), True, "SSL",
            "Accepted for Gunicorn compatibility: a client that closes without TLS close_notify "
            "is treated as closing.", flag_only=True),
    # -- the control socket (pronghorn/master/control.py), Gunicorn 27's, for gunicornc --
    Setting("control_socket", ("--control-socket",), None, "Control",
            "A unix socket where the master takes Gunicorn's control commands (gunicornc -s PATH, "
            "or pronghorn ctl -s PATH): show workers|stats|config|listeners|all, worker "
            "add|remove|kill, reload, reopen, shutdown [graceful|quick]. A relative path is taken "
            "from the directory pronghorn started in. Off unless given (Gunicorn opens one in "
            "$XDG_RUNTIME_DIR or ~/.gunicorn by default).", str, "PATH"),
    Setting("control_socket_mode", ("--control-socket-mode",), 0o600, "Control",
            "The control socket's file mode (octal like 0600, or decimal): 0600 lets only its "
            "owner connect, 0660 its group too.", parse_mode, "INT"),
    Setting("control_socket_disable", ("--no-control-socket",), False, "Control",
            "Open no control socket, even when --control-socket is given.", flag_only=True),
    Setting("metrics_bind", ("--metrics-bind",), None, "Metrics",
            "An address (HOST:PORT, [IPV6]:PORT or unix:PATH) where the master serves /metrics "
            "(Prometheus text format: requests by status class and method, durations, in-flight "
            "requests, body bytes, open connections, listen backlogs, worker restarts by reason, "
            "worker RSS; counted across workers, kept when workers are replaced), /livez (200 "
            "while the master runs) and /readyz (200 while a worker is accepting; 503 during "
            "--shutdown-delay, while stopping, or with no worker ready). Off unless given; "
            "workers count requests only then (a pronghorn addition).", metrics_address,
            "ADDRESS"),
)


# -- converting a value -----------------------------------------------------------------------------------

_KINDS: dict[Callable[..., Any], str] = {
    positive_int: "an integer",
    positive_float: "a number",
    parse_umask: "a umask",
    parse_mode: "a file mode",
}
_INT_AS_STR = frozenset({"user", "group"})  # Gunicorn accepts a uid or gid number


def convert_value(setting: Setting, value: Any) -> Any:
    """A value for ``setting`` → the value the Config holds; ValueError says why not. The value is
    text from the command line or the environment, or any Python value from a config file."""
    if setting.flag_only:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and setting.convert is not str:
            return bool(setting.convert(value))
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ValueError(f"{value!r} is not a boolean (True or False)")
    if setting.multiple:
        if isinstance(value, (str, os.PathLike)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{value!r} is not a string or a list of strings")
        items = []
        for item in value:
            if not isinstance(item, (str, os.PathLike)):
                raise ValueError(f"{item!r} in {value!r} is not a string")
            items.append(_convert_one(setting, os.fspath(item)))
        return items
    if value is None and setting.default is None:
        return None
    return _convert_one(setting, value)


def _convert_one(setting: Setting, value: Any) -> Any:
    convert = setting.convert
    if accepts_objects(convert):  # a dict setting (logconfig_dict), ssl constants: its own checks
        return convert(value)
    kind = _KINDS.get(convert)
    if isinstance(value, os.PathLike) and convert is str:
        value = os.fspath(value)
    if isinstance(value, str):
        try:
            return convert(value)
        except ValueError as exc:
            if kind is not None and str(exc).startswith(("invalid literal", "could not convert")):
                raise ValueError(f"{value!r} is not {kind}") from None
            raise
    if convert is str or kind is None:  # a text setting (a path, a level, KEY=VALUE, ...)
        if setting.name in _INT_AS_STR and isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"{value!r} is not a string")
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not {kind or 'a valid value'}")
    if convert is positive_int or convert is parse_umask or convert is parse_mode:
        if not isinstance(value, int):
            raise ValueError(f"{value!r} is not {kind}")
    elif convert is positive_float:
        if not isinstance(value, (int, float)):
            raise ValueError(f"{value!r} is not {kind}")
    elif not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a string")
    if isinstance(value, (int, float)) and value < 0 and convert is not parse_umask:
        raise ValueError(f"{value!r} is negative")
    try:  # the converter's own checks (range, ...) on the number's text
        return convert(str(value))
    except ValueError as exc:
        raise ValueError(str(exc).replace(repr(str(value)), repr(value))) from None


DEFAULT_SOURCE = "default"


def environment_defaults(environ: Mapping[str, str],
                         skip: Collection[str] = ()) -> dict[str, tuple[Any, str]]:
    """name → (value, variable) for each setting whose ``env`` variable is set (and not blank) in
    ``environ``, except the names in ``skip`` (set elsewhere, so a bad variable does not matter).
    Raises ValueError naming the variable: "WEB_CONCURRENCY: 'two' is not an integer (...)"."""
    found: dict[str, tuple[Any, str]] = {}
    for setting in SETTINGS:
        if setting.env is None or setting.name in skip:
            continue
        text = environ.get(setting.env, "").strip()
        if not text:
            continue
        try:
            found[setting.name] = (convert_value(setting, setting.env_format.format(text)),
                                   setting.env)
        except ValueError as exc:
            raise ValueError(f"{setting.env}: {exc} (it sets the default of {setting.name})") \
                from None
    return found


class Config:
    """The resolved configuration: one typed attribute per setting, and where each value came from.

    The attributes below are the registry seen by the type checker: one per :data:`SETTINGS` entry,
    in its order, typed as its converter returns it (a list for a repeatable setting, ``| None``
    when the default is None, bool for a switch). tests/unit/test_config_types.py checks that they
    and the registry agree, so a setting is still declared once, in SETTINGS; add its annotation
    here as that test prints it.

    ``sources[name]`` says where each value came from: "default", "config file PATH",
    "PRONGHORN_CMD_ARGS", "GUNICORN_CMD_ARGS", "command line", or an environment variable such as
    "WEB_CONCURRENCY"; ``sources["wsgi_app"]`` is where the application came from. Values given to
    the constructor take their source from ``sources=`` (else "given"); the rest are the defaults,
    or the environment's (``Setting.env``).
    """

    # -- the settings --
    config: str | None
    strict_config: bool
    bind: list[str]
    backlog: int
    reuse_port: bool
    workers: int
    worker_class: str
    asgi_loop: str
    asgi_lifespan: str
    asgi_disconnect_grace_period: int
    http_protocols: str
    http2_cleartext: str
    http2_max_concurrent_streams: int
    http2_initial_window_size: int
    http2_max_frame_size: int
    http2_max_header_list_size: int
    websocket_max_message_size: int
    websocket_ping_interval: float
    websocket_ping_timeout: float
    threads: int
    worker_connections: int
    http_parser: str
    timeout: float
    graceful_timeout: float
    shutdown_delay: float
    keepalive: float
    header_timeout: float
    write_timeout: float
    max_unsent_bytes: int
    limit_request_line: int
    limit_request_fields: int
    limit_request_field_size: int
    limit_request_body: int
    max_requests: int
    max_requests_jitter: int
    max_worker_memory: int
    preload_app: bool
    pidfile: str | None
    daemon: bool
    user: str | None
    group: str | None
    umask: int
    chdir: str | None
    pythonpath: str | None
    raw_env: list[str]
    paste: str | None
    raw_paste_global_conf: list[str]
    proc_name: str | None
    default_proc_name: str | None
    sendfile: bool
    initgroups: bool
    tmp_upload_dir: str | None
    worker_tmp_dir: str | None
    reload: bool
    reload_engine: str
    reload_extra_files: list[str]
    spew: bool
    check_config: bool
    print_config: str
    loglevel: str
    errorlog: str
    accesslog: str | None
    access_log_format: str
    access_log_json: bool
    disable_redirect_access_to_syslog: bool
    capture_output: bool
    enable_stdio_inheritance: bool
    logger_class: Any            # MODULE.CLASS, or a class object
    logconfig: str | None
    logconfig_dict: dict[str, Any]
    logconfig_json: str | None
    syslog: bool
    syslog_addr: str
    syslog_prefix: str | None
    syslog_facility: str
    statsd_host: str | None
    enable_backlog_metric: bool
    statsd_prefix: str
    dogstatsd_tags: str
    forwarded_allow_ips: str
    secure_scheme_headers: dict[str, str]
    proxy_protocol: str
    proxy_allow_ips: str
    protocol: str
    uwsgi_allow_ips: str
    forwarded_client_address: bool
    forwarder_headers: str
    root_path: str
    header_map: str
    permit_obsolete_folding: bool
    strip_header_spaces: bool
    permit_unconventional_http_method: bool
    permit_unconventional_http_version: bool
    casefold_http_method: bool
    certfile: str | None
    keyfile: str | None
    ca_certs: str | None
    cert_reqs: int
    ciphers: str | None
    ssl_version: str
    do_handshake_on_connect: bool
    suppress_ragged_eofs: bool
    control_socket: str | None
    control_socket_mode: int
    control_socket_disable: bool
    metrics_bind: str | None

    # -- not settings --
    app_uri: str                 # MODULE[:CALLABLE], from the command line or wsgi_app
    sources: dict[str, str]      # name → where its value came from (see above)
    config_file: str | None      # the config file read, if any
    hooks: Hooks                 # the config file's server hooks
    argv: list[str]              # the command line, for USR2 to re-execute
    config_warnings: list[str]   # the config file's names that look like misspelt settings
    notes: list[str]             # what the master says once at start (a worker class mapped)

    def __init__(self, *, sources: Mapping[str, str] | None = None, app_uri: str = "",
                 config_file: str | None = None, hooks: Hooks | None = None,
                 argv: Sequence[str] = (), **values: Any) -> None:
        unknown = sorted(set(values) - _NAMES)
        if unknown:
            raise TypeError(f"not settings: {', '.join(unknown)}")
        given_sources = dict(sources or {})
        from_env = environment_defaults(os.environ, skip=values)
        self.sources = {}
        for setting in SETTINGS:
            if setting.name in values:
                value, source = values[setting.name], given_sources.get(setting.name, "given")
            elif setting.name in from_env:
                value, source = from_env[setting.name]
            else:
                value, source = setting.initial(), DEFAULT_SOURCE
            # The one assignment by name: the annotations above say each attribute's type.
            setattr(self, setting.name, value)
            self.sources[setting.name] = source
        self.app_uri = app_uri
        self.sources["wsgi_app"] = given_sources.get("wsgi_app", DEFAULT_SOURCE)
        self.config_file = config_file
        self.hooks = hooks or Hooks()
        self.argv = list(argv)
        self.config_warnings = []
        self.notes = []

    if not TYPE_CHECKING:  # at run time, a clearer message; the type checker knows every name
        def __getattr__(self, name: str) -> Any:  # only reached for unknown names
            raise AttributeError(f"{name!r} is not a setting")


_NAMES = frozenset(setting.name for setting in SETTINGS)


def parse_bind(address: str) -> tuple[str, Any]:
    """'unix:/p' → ('unix', '/p'); 'fd://3' → ('fd', 3); '[::1]:80' → ('inet6', ('::1', 80));
    'host:80' / 'host' → ('inet', (host, port)). Raises ValueError with the reason."""
    if address.startswith("unix:"):
        path = address[5:]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise ValueError(f"{address!r}: no socket path after 'unix:'")
        return "unix", path
    if address.startswith("fd://"):
        number = address[5:]
        if not number.isdigit():
            raise ValueError(f"{address!r}: expected fd://N with a file descriptor number")
        return "fd", int(number)
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise ValueError(f"{address!r}: missing ']' after the IPv6 address")
        host, rest = address[1:end], address[end + 1:]
        if rest and not rest.startswith(":"):
            raise ValueError(f"{address!r}: expected [IPV6]:PORT")
        return "inet6", (host, _port(address, rest[1:] if rest else "8000"))
    host, sep, port = address.rpartition(":")
    if not sep:
        host, port = address, "8000"
    if ":" in host:
        raise ValueError(f"{address!r}: put an IPv6 address in brackets, like [::1]:8000")
    return "inet", (host or "0.0.0.0", _port(address, port))


def _port(address: str, text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise ValueError(f"{address!r}: {text!r} is not a port number")
    return int(text)

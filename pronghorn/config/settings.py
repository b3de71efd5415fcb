"""Every setting, declared once: name, type, default, flags, section, help.

Names and flag spellings are Gunicorn's (``--limit-request-field_size`` included) so that a Gunicorn
command line works unchanged.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .hooks import Hooks


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


def parse_umask(text: str) -> int:
    """As Gunicorn reads it: "0o027", "027" (octal by its leading zero), "0x17" or decimal."""
    value_text = str(text).strip()
    if re.fullmatch(r"0[0-7]+", value_text):
        value_text = "0o" + value_text[1:]
    value = int(value_text, 0)
    if not 0 <= value <= 0o777:
        raise ValueError(f"{text!r} is not a umask between 0 and 0o777")
    return value


def _default_workers() -> int:
    return int(os.environ.get("WEB_CONCURRENCY", "1") or 1)


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

    def initial(self) -> Any:
        if self.default_factory is not None:
            return self.default_factory()
        return list(self.default) if self.multiple else self.default


SETTINGS: tuple[Setting, ...] = (
    Setting("config", ("-c", "--config"), None, "Config File",
            "A Gunicorn-format Python config file: PATH, file:PATH or python:MODULE. Without it, "
            "./pronghorn.conf.py or else ./gunicorn.conf.py is read if present. The command line "
            "overrides the file.", str, "CONFIG"),
    Setting("bind", ("-b", "--bind"), ["127.0.0.1:8000"], "Server socket",
            "Address to listen on: HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N. Repeat to listen on "
            "several.", metavar="ADDRESS", multiple=True),
    Setting("backlog", ("--backlog",), 2048, "Server socket",
            "The most pending connections the kernel queues per listener.", positive_int, "INT"),
    Setting("reuse_port", ("--reuse-port",), False, "Server socket",
            "Set SO_REUSEPORT on listening sockets.", flag_only=True),
    Setting("workers", ("-w", "--workers"), 1, "Worker processes",
            "The number of worker processes (default: $WEB_CONCURRENCY or 1).", positive_int, "INT",
            default_factory=_default_workers),
    Setting("worker_class", ("-k", "--worker-class"), "sync", "Worker processes",
            "The worker class. This version has 'sync'.", str, "STRING"),
    Setting("timeout", ("-t", "--timeout"), 30.0, "Worker processes",
            "Workers silent for more than this many seconds are killed and restarted.",
            positive_float, "INT"),
    Setting("graceful_timeout", ("--graceful-timeout",), 30.0, "Worker processes",
            "After TERM, how long in-flight requests have to finish before workers are killed.",
            positive_float, "INT"),
    Setting("keepalive", ("--keep-alive",), 5.0, "Worker processes",
            "Seconds to wait for the next request on a keep-alive connection.", positive_float, "INT"),
    Setting("header_timeout", ("--header-timeout",), 30.0, "Security",
            "Seconds a client has to send a whole request head (408 after that); stops slowloris.",
            positive_float, "INT"),
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
    Setting("max_requests", ("--max-requests",), 0, "Worker processes",
            "Recycle a worker after this many requests (0: never); it finishes what it holds first.",
            positive_int, "INT"),
    Setting("max_requests_jitter", ("--max-requests-jitter",), 0, "Worker processes",
            "Add up to this many requests, at random per worker, to --max-requests so workers do not "
            "all recycle at once.", positive_int, "INT"),
    Setting("preload_app", ("--preload",), False, "Server mechanics",
            "Import the application in the master before forking the workers.", flag_only=True),
    Setting("pidfile", ("-p", "--pid"), None, "Server mechanics",
            "Write the master's pid to this file.", str, "FILE"),
    Setting("daemon", ("-D", "--daemon"), False, "Server mechanics",
            "Detach from the terminal and run in the background.", flag_only=True),
    Setting("user", ("-u", "--user"), None, "Server mechanics",
            "Run the workers as this user (name or uid).", str, "USER"),
    Setting("group", ("-g", "--group"), None, "Server mechanics",
            "Run the workers as this group (name or gid).", str, "GROUP"),
    Setting("umask", ("-m", "--umask"), 0, "Server mechanics",
            "The file mode creation mask (octal like 0o027 or decimal).", parse_umask, "INT"),
    Setting("chdir", ("--chdir",), None, "Server mechanics",
            "Change to this directory before loading the application.", str, "DIR"),
    Setting("pythonpath", ("--pythonpath",), None, "Server mechanics",
            "Comma-separated directories to put first on sys.path.", str, "STRING"),
    Setting("raw_env", ("-e", "--env"), [], "Server mechanics",
            "Set an environment variable in the server: -e KEY=VALUE (repeatable).", str,
            "KEY=VALUE", multiple=True),
    Setting("proc_name", ("-n", "--name"), None, "Server mechanics",
            "A name for the process titles ('pronghorn: master [NAME]').", str, "STRING"),
    Setting("worker_tmp_dir", ("--worker-tmp-dir",), None, "Server mechanics",
            "Accepted for Gunicorn compatibility; heartbeats use shared memory, not files.", str,
            "DIR"),
    Setting("reload", ("--reload",), False, "Debugging",
            "Restart workers when the application's code changes (development only).",
            flag_only=True),
    Setting("reload_engine", ("--reload-engine",), "auto", "Debugging",
            "How --reload watches files: auto, poll or watchfiles.", str, "STRING"),
    Setting("reload_extra_files", ("--reload-extra-file",), [], "Debugging",
            "Another file for --reload to watch (repeatable).", str, "FILE", multiple=True),
    Setting("loglevel", ("--log-level",), "info", "Logging",
            "The error log's level: debug, info, warning, error or critical.", str, "LEVEL"),
    Setting("errorlog", ("--error-logfile", "--log-file"), "-", "Logging",
            "Where the error log goes; '-' is stderr.", str, "FILE"),
)


class Config:
    """Resolved values, attribute access by setting name."""

    def __init__(self, **values: Any) -> None:
        for setting in SETTINGS:
            setattr(self, setting.name, values.get(setting.name, setting.initial()))
        self.app_uri: str = values.get("app_uri", "")
        self.config_file: str | None = values.get("config_file")  # the file read, if any
        self.hooks: Hooks = values.get("hooks") or Hooks()  # the config file's server hooks

    def __getattr__(self, name: str) -> Any:  # only reached for unknown names
        raise AttributeError(f"{name!r} is not a setting")


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

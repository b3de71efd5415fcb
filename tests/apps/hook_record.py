"""What a server hook saw, for tests/test_gunicorn_configs.py: the config files there call
``record(hook, server=..., worker=..., req=..., resp=...)`` from their hooks, and each call appends
a JSON line to the file named by $HOOK_RECORD_PATH (nothing when it is unset, so the files also run
outside the test). The line holds, for the attributes real hooks read (Gunicorn's arbiter, worker,
request and response objects), the kind of value each has: pids, addresses and times vary between
two servers, what is there and of which kind does not.
"""

from __future__ import annotations

import json
import os
from typing import Any

#: Attributes real hooks read, per argument name (dotted: an attribute of an attribute).
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "server": ("address", "cfg", "cfg.settings", "cfg.env", "cfg.worker_class_str",
               "cfg.worker_class", "cfg.workers", "cfg.bind", "cfg.proc_name", "pid",
               "num_workers", "timeout", "log", "log.info", "app", "LISTENERS", "WORKERS",
               "kill_worker", "reload", "stop", "halt", "proc_name", "worker_class"),
    "worker": ("pid", "ppid", "age", "cfg", "log", "log.info", "wsgi", "app", "sockets", "tmp",
               "notify", "booted", "timeout", "alive", "nr", "max_requests", "aborted"),
    "req": ("method", "uri", "path", "query", "fragment", "version", "headers", "scheme", "body",
            "peer_addr", "remote_addr", "trailers"),
    "resp": ("status", "status_code", "headers", "sent", "response_length", "version"),
    "environ": (),
}


def kind(value: Any) -> str:
    """The kind of a value, as two servers can agree on it."""
    for name, types in (("None", type(None)), ("bool", bool), ("int", int), ("float", float),
                        ("str", str), ("bytes", bytes), ("list", list), ("tuple", tuple),
                        ("dict", dict)):
        if isinstance(value, types):
            return name
    return "callable" if callable(value) else "object"


def _look(obj: Any, dotted: str) -> str:
    try:
        for part in dotted.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        return "missing"
    except Exception as exc:  # a property that fails is worth seeing, not a crash of the hook
        return f"raised {type(exc).__name__}"
    return kind(obj)


def record(hook: str, **objects: Any) -> None:
    path = os.environ.get("HOOK_RECORD_PATH")
    if not path:
        return
    seen = {name: {attr: _look(obj, attr) for attr in ATTRIBUTES.get(name, ())}
            for name, obj in objects.items()}
    line = json.dumps({"hook": hook, "pid": os.getpid(), "seen": seen}, sort_keys=True) + "\n"
    # One write with O_APPEND: the master and the workers append to the same file.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)

"""Which of pronghorn's modules the build compiles (setup.py reads MODULES from this file), and
which of them this installation runs compiled. Nothing here imports them: the master asks before it
forks, and gevent must patch a worker before its I/O modules load."""

from __future__ import annotations

import os
from importlib.machinery import EXTENSION_SUFFIXES
from typing import Callable, TypeVar

try:
    # A mark for mypyc, read when it compiles a module (see setup.py); at run time it does nothing,
    # and without mypy_extensions installed (no run-time dependency) it is this module's own.
    from mypy_extensions import mypyc_attr as mypyc_attr
except ImportError:
    _Class = TypeVar("_Class")

    def mypyc_attr(*attrs: str, **kwattrs: object) -> Callable[[_Class], _Class]:
        return lambda cls: cls

# What a request runs through, in every worker class; nothing that runs once per worker or less.
# Paths relative to the package's directory.
MODULES = (
    "http/cache.py",
    "http/chunked.py",
    "http/connection.py",
    "http/events.py",
    "http/limits.py",
    "http/request_line.py",
    "http/response.py",
    "http/uwsgi.py",
    "http/ws_frames.py",
    "wsgi/body.py",
    "wsgi/environ.py",
    "wsgi/exchange.py",
    "wsgi/forwarded.py",
    "cycle/clock.py",
    "cycle/connection.py",
    "cycle/counters.py",
    "cycle/request.py",
    "cycle/streamed_body.py",
    "cycle/asgi_request.py",
    "cycle/asgi_websocket.py",
    "asgi/scope.py",
    "workers/aio.py",
    "workers/asgi.py",
    "workers/held_output.py",
    "workers/sync.py",
)

PACKAGE = os.path.dirname(os.path.abspath(__file__))


def compiled_file(module: str, package: str = PACKAGE) -> str | None:
    """The extension Python would import for ``module`` (a path in MODULES) instead of its source,
    or None. The import system tries extension suffixes before ``.py`` in a directory."""
    stem = os.path.join(package, module[:-3])
    for suffix in EXTENSION_SUFFIXES:
        if os.path.exists(stem + suffix):
            return stem + suffix
    return None


def stale(package: str = PACKAGE) -> list[str]:
    """The modules whose extension is older than their source: Python would import the extension,
    not the edited ``.py`` (tests/conftest.py refuses them, bench/run rebuilds)."""
    return [module for module in MODULES
            if (built := compiled_file(module, package)) is not None
            and os.path.getmtime(built) < os.path.getmtime(os.path.join(package, module))]


def describe() -> str:
    """For ``pronghorn --version``: compiled, pure Python, or (a failed compile) in part."""
    count = sum(compiled_file(module) is not None for module in MODULES)
    if count == 0:
        return "pure Python"
    if count == len(MODULES):
        return f"compiled: {count} per-request modules"
    return f"compiled: {count} of {len(MODULES)} per-request modules"

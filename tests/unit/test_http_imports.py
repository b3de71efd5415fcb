"""pronghorn/http is sans-IO: no sockets, event loops, TLS, logging, clock or configuration.

Checked on the source (every import statement, at any depth, in every file of the package), so a lazy
import inside a function is caught too, and nothing needs to be imported to check it.
"""

from __future__ import annotations

import ast
import collections
import importlib
from pathlib import Path

import pytest

import pronghorn.http
from pronghorn.http import BoundedCache, HeadCache

PACKAGE = Path(pronghorn.http.__file__).resolve().parent
FORBIDDEN = {"socket", "asyncio", "selectors", "ssl", "logging", "time", "select", "threading"}
FORBIDDEN_OWN = {"pronghorn.config", "pronghorn.workers", "pronghorn.master", "pronghorn.logs"}


def imported_modules(source: str, package: str = "pronghorn.http") -> set[str]:
    """Every module an import statement in ``source`` names, relative imports resolved."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            # "from pronghorn import config" and "from .. import config" name a module in the alias
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "__import__":
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


def is_forbidden(module: str) -> bool:
    top = module.split(".")[0]
    return top in FORBIDDEN or any(module == own or module.startswith(own + ".") for own in FORBIDDEN_OWN)


def test_package_files_found() -> None:
    names = {p.name for p in PACKAGE.glob("*.py")}
    assert {"connection.py", "request_line.py", "chunked.py", "response.py", "events.py"} <= names


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_no_io_imports(path: Path) -> None:
    bad = sorted(m for m in imported_modules(path.read_text()) if is_forbidden(m))
    assert bad == [], f"{path.name} imports {bad}"


@pytest.mark.parametrize("source", [
    "import socket",
    "import asyncio.events",
    "from selectors import DefaultSelector",
    "def f():\n    import ssl\n",
    "import logging as log",
    "from logging import getLogger",
    "from ..config import settings",
    "from .. import config",
    "from pronghorn import logs",
    "__import__('socket')",
    "try:\n    import time\nexcept ImportError:\n    pass\n",
])
def test_checker_catches(source: str) -> None:
    # the check above can fail: each of these would be caught
    assert any(is_forbidden(m) for m in imported_modules(source))


@pytest.mark.parametrize("source", ["import re", "from .errors import HTTPError", "import httptools",
                                    "from dataclasses import dataclass", "import socketserver_lookalike"])
def test_checker_allows(source: str) -> None:
    assert not any(is_forbidden(m) for m in imported_modules(source))


# -- no module-level mutable state ----------------------------------------------------------------------

MUTABLE = (dict, list, set, bytearray, collections.deque, memoryview)


@pytest.mark.parametrize("module", sorted(p.stem for p in PACKAGE.glob("*.py")))
def test_no_module_level_mutable_state(module: str) -> None:
    """What the HTTP core remembers lives in objects a worker owns (HeadCache, ResponseHeadCache),
    never in a module: a module-level table is shared by every connection of every worker class and
    every test, and nothing bounds it per worker."""
    name = "pronghorn.http" if module == "__init__" else f"pronghorn.http.{module}"
    namespace = vars(importlib.import_module(name))
    found = sorted(key for key, value in namespace.items()
                   if not key.startswith("__") and (isinstance(value, MUTABLE)
                                                    or isinstance(value, (BoundedCache, HeadCache))))
    assert found == [], f"{name} keeps mutable state at module level: {found}"

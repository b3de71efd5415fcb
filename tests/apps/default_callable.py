"""Test app: only a callable named `application`, the name the CLI uses when none is given."""

from __future__ import annotations

from typing import Any, Callable, Iterable


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "19")])
    return [b"default application"]

"""Test app that cannot be imported: the server must stop at once and show this traceback."""

from __future__ import annotations

BROKEN = 1 / 0


def application(environ, start_response):  # type: ignore[no-untyped-def]  # never reached
    start_response("200 OK", [])
    return [b""]

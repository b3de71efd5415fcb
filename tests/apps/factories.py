"""Test apps made by factories: `factories:create_app()` and `factories:create_app('arg')`.

Nothing here is a WSGI app until a factory is called, so a server that does not call the factory
cannot serve these."""

from __future__ import annotations

from typing import Any, Callable, Iterable


def create_app(greeting: str = "made by a factory", punctuation: str = ".") -> Callable[..., Any]:
    body = f"{greeting}{punctuation}".encode()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    return app

"""Test app for the req/resp of hooks and custom loggers: reads the body, answers with a known
length, a stream (chunked), or hop-by-hop headers that resp.headers must leave out."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = environ["wsgi.input"].read()
    path = environ["PATH_INFO"]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Out", "streamed")])

        def pieces() -> Iterator[bytes]:
            yield b"first,"
            yield b"second"
        return pieces()
    data = b"got " + body + b" at " + path.encode("latin-1")
    start_response("201 Created" if body else "200 OK", [
        ("Content-Type", "text/plain"), ("Content-Length", str(len(data))),
        ("X-Out", "  padded  "), ("Keep-Alive", "timeout=5")])
    return [data]

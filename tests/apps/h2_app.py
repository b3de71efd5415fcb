"""Test apps for HTTP/2 (tests/test_http2.py): the same routes as WSGI (``app``) and ASGI
(``asgi``). Every call appends its path to the file named by H2_CALLS, if set, so a test can tell
that a refused request never reached the app."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs


def _record(path: str) -> None:
    where = os.environ.get("H2_CALLS")
    if where:
        with open(where, "a") as out:
            out.write(path + "\n")


def _size(query: str) -> int:
    return int(parse_qs(query).get("n", ["0"])[0])


# /overlap: how many calls were under way at once, at most (the worker class's concurrency).
_active = [0, 0]  # (now, the most seen)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    _record(path)
    if path == "/overlap":
        _active[0] += 1
        _active[1] = max(_active)
        time.sleep(0.3)  # (the app's work: other calls may run meanwhile, or not)
        _active[0] -= 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(_active[1]).encode()]
    if path == "/big":
        body = b"x" * _size(environ["QUERY_STRING"])
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    if path == "/stream":
        size = _size(environ["QUERY_STRING"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (b"y" * 1024 for _ in range(size // 1024))
    if path == "/hints":
        environ["wsgi.early_hints"]([("Link", "</style.css>; rel=preload")])
    body = environ["wsgi.input"].read()
    data = json.dumps({"protocol": environ["SERVER_PROTOCOL"], "method": environ["REQUEST_METHOD"],
                       "path": path, "query": environ["QUERY_STRING"],
                       "host": environ.get("HTTP_HOST"), "cookie": environ.get("HTTP_COOKIE"),
                       "scheme": environ["wsgi.url_scheme"], "body": body.decode("latin-1"),
                       "length": environ.get("CONTENT_LENGTH")}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Connection", "keep-alive")])  # (hop-by-hop: never sent on h2)
    return [data]


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    _record(path)
    query = scope["query_string"].decode()
    if path == "/overlap":
        _active[0] += 1
        _active[1] = max(_active)
        await asyncio.sleep(0.3)
        _active[0] -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(_active[1]).encode()})
        return
    if path == "/big":
        body = b"x" * _size(query)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(_size(query) // 1024):
            await send({"type": "http.response.body", "body": b"y" * 1024, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = dict(scope["headers"])
    data = json.dumps({"protocol": "HTTP/" + scope["http_version"], "method": scope["method"],
                       "path": path, "query": query,
                       "host": headers.get(b"host", b"").decode(),
                       "cookie": headers.get(b"cookie", b"").decode() or None,
                       "scheme": scope["scheme"], "body": body.decode("latin-1"),
                       "length": headers.get(b"content-length", b"").decode() or None}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": data})



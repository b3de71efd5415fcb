"""Raw ASGI 3 apps for tests/test_asgi.py: no framework, every message by hand."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

EVENTS = os.environ.get("ASGI_EVENTS_FILE", "")


def record(line: str) -> None:
    """Append a line to the events file the test reads (lifespan, disconnects)."""
    if EVENTS:
        with open(EVENTS, "a") as out:
            out.write(line + "\n")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["greeting"] = "hello from lifespan"
                record("startup")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                record("shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/scope":
        body = json.dumps({
            k: (v.decode("latin-1") if isinstance(v, bytes) else v)
            for k, v in scope.items()
            if k in ("http_version", "method", "scheme", "path", "raw_path", "query_string",
                     "root_path", "client", "server", "type", "asgi")
        } | {"headers": [[n.decode(), v.decode()] for n, v in scope["headers"]],
             "state": scope.get("state", {}).get("greeting")}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
    elif path == "/echo":
        pieces = []
        while True:
            message = await receive()
            assert message["type"] == "http.request", message
            pieces.append(len(message["body"]))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body",
                    "body": json.dumps({"pieces": pieces, "total": sum(pieces)}).encode()})
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        for i in range(5):
            await send({"type": "http.response.body", "body": b"piece %d\n" % i,
                        "more_body": True})
            await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b""})
    elif path == "/sse":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        assert (await receive())["type"] == "http.request"  # (the empty body)
        gone = asyncio.ensure_future(receive())
        while True:
            if gone.done():
                record("disconnect " + gone.result()["type"])
                return
            await send({"type": "http.response.body", "body": b"data: tick\n\n",
                        "more_body": True})
            await asyncio.wait([gone], timeout=0.05)
    elif path == "/bad-header":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"x-bad", b"a\r\nx-injected: 1")]})
        await send({"type": "http.response.body", "body": b"no"})
    elif path == "/raise":
        raise RuntimeError("the app failed")
    else:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"Hello, ASGI!"})


def asgi2_app(scope: dict[str, Any]) -> Any:
    """An ASGI 2 double callable."""
    async def instance(receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"asgi2"})
    return instance


async def failing_startup(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
        return
    await app(scope, receive, send)


async def no_lifespan(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        raise ValueError(f"unsupported scope type {scope['type']}")
    await app(scope, receive, send)

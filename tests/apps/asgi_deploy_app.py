"""A raw ASGI app for tests/test_asgi_deploy.py that says what its scope holds, over HTTP and over
a WebSocket.

HTTP: /scope answers the scope's scheme, client, server and headers as JSON; /big answers 100 KB
with a Content-Length; /stream answers 13 bytes in three pieces; /raise fails; anything else says
hello.
WebSocket: the first message sent is the same JSON; then every message is echoed.
"""

from __future__ import annotations

import json
from typing import Any


def _scope_json(scope: dict[str, Any]) -> str:
    return json.dumps({
        "type": scope["type"], "scheme": scope["scheme"], "client": scope["client"],
        "server": scope["server"], "path": scope["path"],
        "headers": {name.decode("latin-1"): value.decode("latin-1")
                    for name, value in scope["headers"]}})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return  # (auto mode: an app without lifespan is served quietly)
    if scope["type"] == "websocket":
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": _scope_json(scope)})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message.get("text"),
                        "bytes": message.get("bytes")})
    path = scope["path"]
    if path == "/stream":  # three pieces, no length: chunked
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"x-app", b"deploy")]})
        for piece in (b"one ", b"two ", b"three"):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/raise":
        raise RuntimeError("the app failed")
    if path == "/scope":
        body = _scope_json(scope).encode()
        content_type = b"application/json"
    elif path == "/big":
        body = b"b" * 100_000
        content_type = b"application/octet-stream"
    else:
        body = b"hello"
        content_type = b"text/plain"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", content_type),
                            (b"content-length", str(len(body)).encode()),
                            (b"x-app", b"deploy")]})
    await send({"type": "http.response.body", "body": body})


async def gated(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``app``, whose lifespan startup lasts until the file $ASGI_GATE exists (a database that
    takes its time to come up)."""
    if scope["type"] == "lifespan":
        import asyncio
        import os

        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                while not os.path.exists(os.environ["ASGI_GATE"]):
                    await asyncio.sleep(0.01)  # (the app's own wait, as a real startup's)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await app(scope, receive, send)

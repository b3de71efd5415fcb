"""WebSocket apps for the asgi worker's tests: a raw ASGI echo and a Starlette WebSocket route.

Raw app, by path: /echo echoes each message (subprotocol "chat" chosen when offered; the client's
close code is written to $WS_EVENTS_FILE); /deny closes before accepting (a 403); /teapot denies
with a response of its own (websocket.http.response.*); /slow-close waits after a disconnect
before returning. Plain HTTP requests get "http ok".
"""

from __future__ import annotations

import os
from typing import Any

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


def _note(line: str) -> None:
    path = os.environ.get("WS_EVENTS_FILE")
    if path:
        with open(path, "a") as out:
            out.write(line + "\n")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"http ok"})
        return
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    path = scope["path"]
    if path == "/deny":
        await send({"type": "websocket.close"})
        return
    if path == "/teapot":
        await send({"type": "websocket.http.response.start", "status": 418,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "websocket.http.response.body", "body": b"no websockets here"})
        return
    subprotocol = "chat" if "chat" in scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol,
                "headers": [(b"x-scope-scheme", scope["scheme"].encode())]})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            _note(f"disconnect {message['code']}")
            return
        if message.get("text") == "close-me":
            await send({"type": "websocket.close", "code": 4000, "reason": "asked to"})
            continue
        await send({"type": "websocket.send", "text": message.get("text"),
                    "bytes": message.get("bytes")})


async def starlette_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_text("starlette: " + text)
    except WebSocketDisconnect as exc:
        _note(f"starlette disconnect {exc.code}")


starlette_app = Starlette(routes=[WebSocketRoute("/ws", starlette_echo)])

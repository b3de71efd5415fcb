"""A WebSocket app that only sends (tests/test_asgi_ws_ping.py): it never calls receive() after
the connect, so only send() can tell it that its peer has gone."""

from __future__ import annotations

import asyncio
import os
from typing import Any

EVENTS = os.environ.get("WS_EVENTS_FILE", "")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        return
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    try:
        while True:
            await send({"type": "websocket.send", "text": "tick"})
            await asyncio.sleep(0.005)
    except OSError as exc:
        if EVENTS:
            with open(EVENTS, "a") as out:
                out.write(f"send raised {type(exc).__name__}\n")
        raise

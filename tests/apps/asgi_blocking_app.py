"""An ASGI app whose view blocks its worker's event loop with a synchronous call, the mistake the
heartbeat must catch (tests/test_asgi_timeout.py): ``/block`` sleeps in ``time.sleep``; every other
path answers at once."""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable


async def blocking_view() -> None:
    time.sleep(600)  # a sync call in an async view: the loop stops here


async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
              send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/block":
        await blocking_view()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})

"""ASGI apps for tests/test_asgi_send.py: trailers, pathsend, zerocopysend (raw), and a Starlette
FileResponse (which uses pathsend when the server offers it)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

FILE = os.environ.get("ASGI_SEND_FILE", "")
EVENTS = os.environ.get("ASGI_EVENTS_FILE", "")


def _record(line: str) -> None:
    if EVENTS:
        with open(EVENTS, "a") as out:
            out.write(line + "\n")


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/extensions":
        body = json.dumps(sorted(scope.get("extensions", {}))).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
    elif path == "/trailers":
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"trailer", b"x-checksum, x-count")]})
        await send({"type": "http.response.body", "body": b"part one ", "more_body": True})
        await send({"type": "http.response.body", "body": b"part two"})
        await send({"type": "http.response.trailers", "more_trailers": True,
                    "headers": [(b"x-checksum", b"abc123")]})
        await send({"type": "http.response.trailers",
                    "headers": [(b"x-count", b"2"), (b"content-length", b"99")]})
    elif path == "/trailers-forgotten":
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": []})
        await send({"type": "http.response.body", "body": b"no trailers came"})
    elif path == "/pathsend":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.pathsend", "path": FILE})
    elif path == "/zerocopysend":
        with open(FILE, "rb") as f:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            # Two pieces of one descriptor: 10 bytes from offset 5, then the rest from the
            # position the first left untouched (an explicit offset does not move it).
            await send({"type": "http.response.zerocopysend", "file": f, "offset": 5,
                        "count": 10, "more_body": True})
            f.seek(15)
            await send({"type": "http.response.zerocopysend", "file": f.fileno()})
    elif path in ("/sse-blind", "/sse-blind-raise"):
        # An SSE stream that never listens for http.disconnect: only send() can stop it.
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        sent = 0
        try:
            while True:
                await send({"type": "http.response.body", "body": b"data: tick\n\n",
                            "more_body": True})
                sent += 1
                await asyncio.sleep(0.001)
        except OSError as exc:
            _record(f"send raised {type(exc).__name__}")
            if path == "/sse-blind-raise":
                raise
    elif path == "/linger":
        # Streams a first piece, then waits on something else for an hour: it notes when it
        # hears http.disconnect and when its task is cancelled (--asgi-disconnect-grace-period).
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first\n", "more_body": True})

        async def listen() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            _record(f"disconnect {time.monotonic()}")

        listener = asyncio.ensure_future(listen())
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            _record(f"cancelled {time.monotonic()}")
            listener.cancel()
            raise
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"not found"})


def starlette_files() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import FileResponse
    from starlette.routing import Route

    async def download(request: Any) -> Any:
        return FileResponse(FILE)

    return Starlette(routes=[Route("/file", download)])


starlette_app = starlette_files() if FILE else None

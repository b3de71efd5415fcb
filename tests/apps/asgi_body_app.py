"""An ASGI app for tests/test_asgi_body.py: request bodies read at the app's pace, or not at all."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any


def _rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def _answer(send: Any, body: bytes, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/held":
        # Take one piece, then nothing until the test creates the file named in the query
        # string: meanwhile the server must stop reading the client. Then read the rest, and
        # say how much the worker's memory grew while the body went through.
        gate = scope["query_string"].decode()
        start = _rss()
        peak = start
        message = await receive()
        total = len(message["body"])
        while not os.path.exists(gate):
            await asyncio.sleep(0.01)  # (the app's own pace, not a test's wait)
        while message.get("more_body"):
            message = await receive()
            assert message["type"] == "http.request", message
            total += len(message["body"])
            peak = max(peak, _rss())
        await _answer(send, json.dumps({"total": total, "growth": peak - start}).encode())
    elif path == "/first":
        # Answer with the first piece of the body, before the rest has come.
        message = await receive()
        await _answer(send, message["body"])
    elif path == "/ignore":
        await _answer(send, b"ignored")
    elif path == "/":
        await _answer(send, b"hello")
    else:
        await _answer(send, b"not found: " + path.encode(), 404)

"""The ASGI 3 applications of the benchmark's ASGI scenarios, one callable per scenario.

Every ASGI server under test (pronghorn -k asgi, Gunicorn 27 -k asgi, uvicorn, Granian, hypercorn)
loads these same callables (``asgi_apps:hello`` and so on). Like bench_apps.py's WSGI apps they
are as cheap as the scenario allows, so that what is measured is the server around them. Each
answers the lifespan protocol (startup and shutdown complete at once), as a framework's app does,
so that no server logs a lifespan failure or falls back to a slower path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HELLO = b"Hello, World!"
BIG = b"x" * (100 * 1024)
# One Server-Sent Event (WHATWG HTML, "server-sent events"): an id, a data line of JSON, the blank line
# that ends it: 81 bytes, about what a notification feed sends.
SSE_EVENTS = 16
SSE_DATA = b'{"type":"notification","text":"You have a new message","unread":7}'


def sse_event(number: int) -> bytes:
    return b"id: %02d\ndata: %s\n\n" % (number, SSE_DATA)


SSE_BODY_LENGTH = sum(len(sse_event(n)) for n in range(SSE_EVENTS))

_TEXT_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", str(len(HELLO)).encode())]
_BIG_HEADERS = [(b"content-type", b"application/octet-stream"), (b"content-length", str(len(BIG)).encode())]
_SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return await _lifespan(receive, send)
    await send({"type": "http.response.start", "status": 200, "headers": _TEXT_HEADERS})
    await send({"type": "http.response.body", "body": HELLO})


async def big(scope: Scope, receive: Receive, send: Send) -> None:
    """A 100 KB body in one message: how well the server writes more than a socket buffer."""
    if scope["type"] != "http":
        return await _lifespan(receive, send)
    await send({"type": "http.response.start", "status": 200, "headers": _BIG_HEADERS})
    await send({"type": "http.response.body", "body": BIG})


async def upload(scope: Scope, receive: Receive, send: Send) -> None:
    """Receives the whole request body (the client sends 64 KB) and answers with its length."""
    if scope["type"] != "http":
        return await _lifespan(receive, send)
    total = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return  # the client went away
        total += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = str(total).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def sse(scope: Scope, receive: Receive, send: Send) -> None:
    """A short Server-Sent Events stream: 16 events, each its own ``http.response.body`` message
    with ``more_body``, then the end. The server frames it (chunked: no Content-Length) and writes
    each event as it comes, which is what SSE needs of it; the events are ready at once (no wait
    between them), so the time measured is the server's per event, not the app's."""
    if scope["type"] != "http":
        return await _lifespan(receive, send)
    await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
    for number in range(SSE_EVENTS):
        await send({"type": "http.response.body", "body": sse_event(number), "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """A WebSocket echo: every message back as it came (text as text, bytes as bytes)."""
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    if scope["type"] != "websocket":
        # A plain GET: the harness's readiness probe reaches the server before the WebSocket one.
        await send({"type": "http.response.start", "status": 200, "headers": _TEXT_HEADERS})
        await send({"type": "http.response.body", "body": HELLO})
        return
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return  # websocket.disconnect
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes")})

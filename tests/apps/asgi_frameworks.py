"""A Starlette app and a FastAPI app for tests/test_asgi.py, as users write them."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncIterator

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

from asgi_app import record


@contextlib.asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[dict[str, str]]:
    record("startup")
    yield {"greeting": "from the lifespan"}
    record("shutdown")


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"Hello, Starlette! {request.state.greeting}")


async def upload(request: Request) -> JSONResponse:
    sizes = [len(piece) async for piece in request.stream() if piece]
    return JSONResponse({"pieces": len(sizes), "total": sum(sizes)})


async def stream(request: Request) -> StreamingResponse:
    async def numbers() -> AsyncIterator[bytes]:
        for i in range(10):
            yield f"{i}\n".encode()
            await asyncio.sleep(0)
    return StreamingResponse(numbers(), media_type="text/plain")


async def sse(request: Request) -> StreamingResponse:
    async def events() -> AsyncIterator[bytes]:
        while True:
            if await request.is_disconnected():
                record("sse client gone")
                return
            yield b"data: tick\n\n"
            await asyncio.sleep(0.02)
    return StreamingResponse(events(), media_type="text/event-stream")


starlette_app = Starlette(routes=[
    Route("/", home), Route("/upload", upload, methods=["POST"]), Route("/stream", stream),
    Route("/sse", sse),
], lifespan=lifespan)


fastapi_app = FastAPI()


class Item(BaseModel):
    name: str
    price: float


@fastapi_app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None) -> dict[str, Any]:
    return {"item_id": item_id, "q": q}


@fastapi_app.post("/items")
async def create_item(item: Item) -> dict[str, Any]:
    return {"name": item.name, "double": item.price * 2}


# -- FastAPI as deployed apps use it: a file, a stream, server-sent events, a background task and
# -- a WebSocket route (tests/test_asgi_deploy.py) --------------------------------------------------

import json  # noqa: E402
import os  # noqa: E402

from fastapi import BackgroundTasks, WebSocket, WebSocketDisconnect  # noqa: E402
from fastapi.responses import FileResponse  # noqa: E402

#: The file /download serves: this module's own source.
DOWNLOAD = os.path.abspath(__file__)


@fastapi_app.api_route("/download", methods=["GET", "HEAD"])
async def download() -> FileResponse:
    return FileResponse(DOWNLOAD, media_type="text/x-python", filename="frameworks.py")


@fastapi_app.get("/numbers")
async def numbers(count: int = 5) -> StreamingResponse:
    async def lines() -> AsyncIterator[bytes]:
        for i in range(count):
            yield f"{i}\n".encode()
            await asyncio.sleep(0)
    return StreamingResponse(lines(), media_type="text/plain")


@fastapi_app.get("/events")
async def events(request: Request) -> StreamingResponse:
    async def ticks() -> AsyncIterator[str]:
        n = 0
        while not await request.is_disconnected():
            yield f"id: {n}\ndata: tick {n}\n\n"
            n += 1
            await asyncio.sleep(0.02)
        record("fastapi sse client gone")
    return StreamingResponse(ticks(), media_type="text/event-stream",
                             headers={"X-Accel-Buffering": "no"})


@fastapi_app.post("/signup")
async def signup(item: Item, tasks: BackgroundTasks) -> dict[str, str]:
    async def welcome(name: str) -> None:
        record(f"background: welcome {name}")
    tasks.add_task(welcome, item.name)
    return {"queued": item.name}


@fastapi_app.websocket("/ws/{room}")
async def room(websocket: WebSocket, room: str) -> None:
    await websocket.accept()
    await websocket.send_json({"room": room, "scheme": websocket.url.scheme})
    try:
        while True:
            data = await websocket.receive_json()
            await websocket.send_text(json.dumps({"echo": data}))
    except WebSocketDisconnect as exc:
        record(f"fastapi ws disconnect {exc.code}")

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

"""Which calling convention an ASGI application uses, decided once when the worker starts."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Awaitable, Callable, MutableMapping

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _is_coroutine_function(function: Any) -> bool:
    # asyncio's test also sees functions marked as coroutines by asgiref and Django
    # (markcoroutinefunction) on the Pythons whose inspect does not.
    return inspect.iscoroutinefunction(function) or asyncio.iscoroutinefunction(function)


def is_asgi3(app: Any) -> bool:
    """ASGI 3 (one call taking scope, receive, send) or ASGI 2 (app(scope) returns the coroutine's
    maker), told apart as uvicorn tells them: a class is ASGI 3 only if its instances are
    awaitable, a function if it is a coroutine function, any other object by its __call__."""
    if inspect.isclass(app):
        return hasattr(app, "__await__")
    if inspect.isfunction(app) or inspect.ismethod(app):
        return _is_coroutine_function(app)
    return _is_coroutine_function(getattr(app, "__call__", None))


def as_asgi3(app: Any) -> ASGIApp:
    """The application as an ASGI 3 callable (an ASGI 2 double callable wrapped)."""
    if is_asgi3(app):
        return app

    async def asgi2(scope: Scope, receive: Receive, send: Send) -> None:
        instance = app(scope)
        await instance(receive, send)

    return asgi2

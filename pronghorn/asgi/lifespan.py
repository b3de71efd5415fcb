"""The ASGI lifespan protocol: startup before the worker serves, shutdown when it stops.

Theory of operation: the app is called once with a ``lifespan`` scope, in a task of its own that
lives as long as the worker. ``startup()`` hands it ``lifespan.startup`` and waits for its answer;
``shutdown()`` hands it ``lifespan.shutdown`` and waits again, within the time it is given.

An app that does not support the protocol raises (Django: "unsupported scope type") or returns
before answering. In ``auto`` mode that only means no lifespan, said once at debug level; in ``on``
mode it is a failed startup. An app that answers ``lifespan.startup.failed`` (or raises after
receiving startup, in ``on`` mode) fails the startup in both modes: the worker then exits as one
whose app cannot be imported does.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .app import ASGIApp, Message
from .scope import ASGI_VERSION


class LifespanFailed(Exception):
    """The app's startup failed; the message is the app's (or what went wrong)."""


class Lifespan:
    def __init__(self, app: ASGIApp, mode: str, log: logging.Logger) -> None:
        self.app = app
        self.mode = mode  # "auto" or "on" ("off" never makes one)
        self.log = log
        self.state: dict[str, Any] = {}
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._answer: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.supported = False  # the app answered startup
        self._ended = False

    async def startup(self) -> None:
        """Raises LifespanFailed when the startup failed (see the module's docstring)."""
        scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": self.state}
        self._task = asyncio.get_running_loop().create_task(self._run(scope))
        await self._inbox.put({"type": "lifespan.startup"})
        answer = await self._answer.get()
        kind = answer.get("type")
        if kind == "lifespan.startup.complete":
            self.supported = True
            return
        if kind == "lifespan.startup.failed":
            raise LifespanFailed(str(answer.get("message", "")) or "lifespan.startup.failed")
        # The app raised or returned without answering.
        why = str(answer.get("message", ""))
        if self.mode == "on":
            raise LifespanFailed(why or "the application does not support the lifespan protocol")
        self.log.debug("ASGI lifespan not supported by the application (%s); serving without it",
                       why or "it returned")

    async def shutdown(self, timeout: float) -> None:
        """Tell the app the worker stops; wait for its answer up to timeout seconds."""
        task = self._task
        if not self.supported or task is None or task.done():
            return
        await self._inbox.put({"type": "lifespan.shutdown"})
        try:
            answer = await asyncio.wait_for(self._answer.get(), timeout)
        except asyncio.TimeoutError:
            self.log.warning("ASGI lifespan shutdown did not complete within %g s", timeout)
            answer = {}
        if answer.get("type") == "lifespan.shutdown.failed":
            self.log.error("ASGI lifespan shutdown failed: %s", answer.get("message", ""))
        elif answer.get("type") == "lifespan.error":
            self.log.error("ASGI lifespan shutdown raised: %s", answer.get("message", ""))
        if not task.done():
            task.cancel()
            try:
                await task
            except BaseException:
                pass

    async def _run(self, scope: dict[str, Any]) -> None:
        try:
            await self.app(scope, self._receive, self._send)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            if self.supported or self.mode == "on":
                self.log.exception("Exception in the ASGI lifespan")
            await self._answer.put({"type": "lifespan.error", "message": str(exc) or repr(exc)})
            return
        finally:
            self._ended = True
        await self._answer.put({"type": "lifespan.error", "message": ""})

    async def _receive(self) -> Message:
        return await self._inbox.get()

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        if kind not in ("lifespan.startup.complete", "lifespan.startup.failed",
                        "lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            raise RuntimeError(f"unexpected ASGI lifespan message {kind!r}")
        await self._answer.put(message)

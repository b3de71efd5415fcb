"""One WebSocket session of the asgi worker (RFC 6455, ASGI WebSocket spec), frames by wsproto.

Theory of operation
-------------------
The HTTP core parses the handshake as any request (llhttp stops at the head of an Upgrade
request, so no byte after it is parsed as HTTP). ``is_websocket(request)`` tells the driver that
the request asks for a WebSocket; the driver then runs ``WebSocketSession.run`` as the request's
task and hands every byte the client sends next to ``feed`` (never to the HTTP parser).

The app gets ``websocket.connect``; it answers ``websocket.accept`` (the 101 response, with its
subprotocol and headers, and permessage-deflate when the client offered it), or denies: a
``websocket.close`` before accepting is a 403, and ``websocket.http.response.start/body`` is a
response of the app's own (the request cycle's HTTP send does it, so the same checks apply).
Messages are reassembled from fragments up to --websocket-max-message-size (past it: close
1009); pings are answered here; text frames are checked as UTF-8 by wsproto (1007). The session
ends when either side's close is answered, or the connection is lost: the app then receives
``websocket.disconnect`` with the code. ``going_away`` (graceful stop) sends close 1001. Every
--websocket-ping-interval the session pings the peer; one that sends no pong within
--websocket-ping-timeout is closed with 1011 (as uvicorn does), so a dead or stuck peer does not
hold a connection and its app forever.

One access log line per session, when it ends: status 101 and the bytes of messages sent.
"""

from __future__ import annotations

import asyncio
import base64
from collections import deque
from typing import Any, Awaitable, Callable, Final, Protocol

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (BytesMessage, CloseConnection, Message as WSMessage, Ping, Pong,
                            TextMessage)
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.handshake import server_extensions_handshake
from wsproto.utilities import generate_accept_token

from ..asgi.app import ASGIApp, Message
from ..asgi.scope import websocket_scope
from ..http import HTTPError, ResponseFramer
from ..http.ws_frames import BINARY, PASS, ClientFrames, server_frame
from ..wsgi.body import empty_input
from ..wsgi.exchange import Exchange
from .asgi_request import from_disconnect
from .client_gone import ClientDisconnected
from .request import SERVER, Job, RequestCycle

GOING_AWAY = 1001
INTERNAL_ERROR = 1011  # (also a peer that does not answer our pings, as uvicorn closes it)
MESSAGE_TOO_BIG = 1009
ABNORMAL = 1006  # (never on the wire: the connection was lost without a close frame)
# How long a close we sent waits for the client's answer before the connection is cut.
CLOSE_WAIT = 5.0
# Received messages the app has not taken yet: past this many, stop reading the client.
INBOX_LIMIT: Final = 64


def _tokens(request: Any, name: bytes) -> list[str]:
    found: list[str] = []
    for key, value in request.headers:
        if key.lower() == name:
            found.extend(t.strip() for t in value.decode("latin-1").split(",") if t.strip())
    return found


def _header(request: Any, name: bytes) -> bytes | None:
    for key, value in request.headers:
        if key.lower() == name:
            return bytes(value)
    return None


def is_websocket(request: Any) -> bool:
    """Whether the request asks to switch to WebSocket (``Upgrade: websocket`` named by
    ``Connection: upgrade``: an Upgrade the Connection field does not name is ignored)."""
    if request.method != "GET":
        return False
    if not any(t.lower() == "websocket" for t in _tokens(request, b"upgrade")):
        return False
    return any(t.lower() == "upgrade" for t in _tokens(request, b"connection"))


def handshake_error(request: Any) -> HTTPError | None:
    """What makes an upgrade request a bad handshake (RFC 6455 4.2.1), or None."""
    if request.version < (1, 1):
        return HTTPError(400, "WebSocket handshake over HTTP/1.0")
    if request.has_body:
        return HTTPError(400, "WebSocket handshake with a body")
    if _header(request, b"sec-websocket-version") != b"13":
        return HTTPError(426, "unsupported Sec-WebSocket-Version (13 is)")
    key = _header(request, b"sec-websocket-key")
    try:
        valid = key is not None and len(base64.b64decode(key, validate=True)) == 16
    except ValueError:
        valid = False
    if not valid:
        return HTTPError(400, "invalid Sec-WebSocket-Key")
    return None


class WSChannel(Protocol):
    """What a session asks of its connection (the asgi worker's protocol)."""

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def gone(self) -> bool: ...
    def backlogged(self) -> bool: ...
    def drained(self) -> Awaitable[None]: ...
    def pause_input(self, paused: bool) -> None: ...
    def refuse(self, status: int, reason: str, log: bool = True) -> None: ...
    def complete(self, data: bytes, keep_alive: bool) -> None: ...


class WebSocketSession:
    """See the module's docstring. Made by the driver when the handshake request is ready."""

    def __init__(self, cycle: RequestCycle, app: ASGIApp, job: Job, channel: WSChannel,
                 unread: bytes, max_size: int, ping_interval: float = 0.0,
                 ping_timeout: float = 0.0) -> None:
        self.cycle = cycle
        self.app = app
        self.job = job
        self.channel = channel
        self.max_size = max_size
        self.pending = bytearray(unread)  # what the client sent before the accept
        self.ws: Connection | None = None
        # Without extensions, the frames most messages come in are read and written here, not by
        # wsproto (http/ws_frames.py), which gets every other frame whole; None with
        # permessage-deflate (wsproto has all the bytes).
        self.frames: ClientFrames | None = None
        self.accepted = False
        self.closed_code: int | None = None  # set once the session is over for the app
        self.close_sent = False
        self.connected_told = False
        self.inbox: deque[Message] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.parts: list[Any] = []  # the message being reassembled
        self.part_size = 0
        self.sent = 0
        self.going = False
        self.denial: Any = None  # the HTTP send of a denial (websocket.http.response.*)
        # Keepalive (--websocket-ping-interval/-timeout): the next ping, and the deadline for
        # the pong a ping sent asks for.
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.next_ping: asyncio.TimerHandle | None = None
        self.pong_deadline: asyncio.TimerHandle | None = None

    # -- from the connection -----------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes from the client (b"": it finished sending)."""
        ws = self.ws
        if ws is None:
            if data:
                self.pending += data
                if len(self.pending) > 1024 * 1024:
                    self.channel.pause_input(True)  # (before the accept: held, up to a point)
            return
        if not data:
            self.lost()
            return
        frames = self.frames
        if frames is None:
            ws.receive_data(data)
            self._events()
            return
        for kind, payload in frames.split(data):
            if kind == PASS:
                ws.receive_data(payload)  # type: ignore[arg-type]
                self._events()
                if self.channel.gone():
                    return  # (a close, or an error: nothing after it is read, as before)
            elif self.closed_code is None:
                self._deliver({"type": "websocket.receive",
                               "bytes" if kind == BINARY else "text": payload})
        if len(self.inbox) > INBOX_LIMIT:
            self.channel.pause_input(True)

    def lost(self) -> None:
        """The connection is gone (or the client finished sending)."""
        if self.closed_code is None:
            self._over(ABNORMAL)
        self.channel.close()

    def going_away(self) -> None:
        """The worker stops: a close 1001, and the app learns it by websocket.disconnect."""
        self.going = True
        if self.accepted:
            self._send_close(GOING_AWAY, "")

    def _events(self) -> None:
        ws = self.ws
        assert ws is not None
        for event in ws.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                self.parts.append(event.data)
                self.part_size += len(event.data)
                if self.max_size and self.part_size > self.max_size:
                    self.parts.clear()
                    self._send_close(MESSAGE_TOO_BIG, "message too big")
                    self._over(MESSAGE_TOO_BIG)
                    return
                if event.message_finished:
                    if isinstance(event, TextMessage):
                        message: Message = {"type": "websocket.receive",
                                            "text": "".join(self.parts)}
                    else:
                        message = {"type": "websocket.receive", "bytes": b"".join(self.parts)}
                    self.parts.clear()
                    self.part_size = 0
                    self._deliver(message)
            elif isinstance(event, Ping):
                self._write(ws.send(event.response()))
            elif isinstance(event, Pong):
                deadline, self.pong_deadline = self.pong_deadline, None
                if deadline is not None:
                    deadline.cancel()
            elif isinstance(event, CloseConnection):
                if ws.state is ConnectionState.REMOTE_CLOSING:
                    self._write(ws.send(event.response()))  # (the answer to the client's close)
                elif ws.state is ConnectionState.OPEN:  # a protocol error wsproto found
                    self._send_close(event.code, event.reason or "")
                self._over(event.code)
                self.channel.close()
                return
        if len(self.inbox) > INBOX_LIMIT:
            self.channel.pause_input(True)

    def _deliver(self, message: Message) -> None:
        self.inbox.append(message)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _over(self, code: int) -> None:
        if self.closed_code is None:
            self.closed_code = code
            self._deliver({"type": "websocket.disconnect", "code": code})
            for timer in (self.next_ping, self.pong_deadline):
                if timer is not None:
                    timer.cancel()
            self.next_ping = self.pong_deadline = None

    # -- keepalive: a peer that is dead, or too stuck to answer a ping, is closed ---------------

    def _ping(self) -> None:
        self.next_ping = None
        ws = self.ws
        if (ws is None or self.closed_code is not None or self.close_sent
                or ws.state is not ConnectionState.OPEN or self.channel.gone()):
            return
        loop = asyncio.get_running_loop()
        self._write(ws.send(Ping(payload=b"pronghorn")))
        if self.ping_timeout and self.pong_deadline is None:
            self.pong_deadline = loop.call_later(self.ping_timeout, self._no_pong)
        self.next_ping = loop.call_later(self.ping_interval, self._ping)

    def _no_pong(self) -> None:
        self.pong_deadline = None
        if self.closed_code is not None:
            return
        self.cycle.log.info("Closed the WebSocket from %s: no pong within %g s",
                            self.job.peer, self.ping_timeout)
        self._send_close(INTERNAL_ERROR, "keepalive ping timeout")
        self._over(INTERNAL_ERROR)
        # (the close frame goes out if it can; a dead peer does not answer it)
        self.channel.close()

    def _write(self, data: bytes) -> None:
        if data:
            self.channel.write(data)

    def _send_close(self, code: int, reason: str) -> None:
        ws = self.ws
        if ws is None or self.close_sent or ws.state is not ConnectionState.OPEN:
            return
        self.close_sent = True
        self._write(ws.send(CloseConnection(code=code, reason=reason)))
        # The client answers with its close (then we close); one that does not is cut.
        asyncio.get_running_loop().call_later(CLOSE_WAIT, self.channel.close)

    # -- the app's side ----------------------------------------------------------------------------

    async def receive(self) -> Message:
        if not self.connected_told:
            self.connected_told = True
            return {"type": "websocket.connect"}
        while not self.inbox:
            if self.closed_code is not None:
                return {"type": "websocket.disconnect", "code": self.closed_code}
            waiter = self.waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self.waiter = None
        message = self.inbox.popleft()
        if len(self.inbox) == INBOX_LIMIT // 2 and self.closed_code is None:
            self.channel.pause_input(False)
        return message

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "websocket.send":
            if not self.accepted:
                raise RuntimeError("websocket.send before websocket.accept")
            ws = self.ws
            if self.closed_code is not None:
                # The session is over (ASGI 2.4: an OSError), so an app that only sends stops.
                raise ClientDisconnected(f"the WebSocket is closed ({self.closed_code})")
            if self.close_sent or ws is None or ws.state is not ConnectionState.OPEN:
                return  # (closing: the app learns it from receive())
            text = message.get("text")
            data: Any = text if text is not None else message.get("bytes")
            if data is None:
                raise ValueError("websocket.send with neither bytes nor text")
            # The access log's bytes are the payload's: UTF-8 for text (len() of an ASCII str
            # is its size already, and isascii() is a flag check).
            self.sent += len(data) if type(data) is not str or data.isascii() \
                else len(data.encode())
            if self.frames is not None:
                self._write(server_frame(data))
            else:
                self._write(ws.send(WSMessage(data=data)))
            if self.channel.backlogged():
                await self.channel.drained()
        elif kind == "websocket.accept":
            if self.accepted or self.denial is not None:
                raise RuntimeError("websocket.accept sent twice, or after a denial")
            self._accept(message)
        elif kind == "websocket.close":
            if not self.accepted:
                if self.denial is None:
                    self.denial = True
                    self.channel.refuse(403, "the application closed the WebSocket before "
                                        "accepting it", log=False)
                    self._set_status(403)
                return
            self._send_close(int(message.get("code") or 1000), message.get("reason") or "")
            self._over(int(message.get("code") or 1000))
        elif kind in ("websocket.http.response.start", "websocket.http.response.body"):
            if self.accepted:
                raise RuntimeError(f"{kind} after websocket.accept")
            if self.denial is None:
                self.denial = self._denial_sender()
            if self.denial is True:
                return
            await self.denial({**message, "type": kind[len("websocket."):]})
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} in a WebSocket session")

    def _denial_sender(self) -> Callable[[Message], Awaitable[None]]:
        from .asgi_request import _Request  # (the HTTP send, for a denial)

        exchange = self.job.exchange
        assert exchange is not None
        return _Request(self.job, self.channel, exchange).send  # type: ignore[arg-type]

    def _accept(self, message: Message) -> None:
        request = self.job.request
        key = _header(request, b"sec-websocket-key") or b""
        lines = [b"HTTP/1.1 101 Switching Protocols", b"Upgrade: websocket",
                 b"Connection: Upgrade", b"Sec-WebSocket-Accept: " + generate_accept_token(key)]
        subprotocol = message.get("subprotocol")
        if subprotocol is not None:
            lines.append(b"Sec-WebSocket-Protocol: " + str(subprotocol).encode("latin-1"))
        # permessage-deflate when offered: wsproto agrees on its parameters (one offer taken).
        extensions: list[Extension] = []
        offers = _tokens(request, b"sec-websocket-extensions")
        if any(o.split(";", 1)[0].strip() == PerMessageDeflate.name for o in offers):
            deflate = PerMessageDeflate()
            agreed = server_extensions_handshake(offers, [deflate])
            if agreed is not None:
                lines.append(b"Sec-WebSocket-Extensions: " + agreed)
                extensions.append(deflate)
        reserved = {b"upgrade", b"connection", b"sec-websocket-accept",
                    b"sec-websocket-extensions", b"content-length", b"transfer-encoding"}
        headers: list[tuple[str, str]] = []
        for name, value in message.get("headers", ()):
            name, value = bytes(name), bytes(value)
            if b"\r" in name + value or b"\n" in name + value or b":" in name:
                raise HTTPError(500, "invalid header in websocket.accept")
            if name.lower() in reserved:
                continue
            if name.lower() == b"sec-websocket-protocol" and subprotocol is not None:
                continue
            lines.append(name + b": " + value)
            headers.append((name.decode("latin-1"), value.decode("latin-1")))
        lines.append(b"Date: " + self.cycle.dates.get())
        self.channel.write(b"\r\n".join(lines) + b"\r\n\r\n")
        self.accepted = True
        self._set_status(101, headers)
        self.ws = Connection(ConnectionType.SERVER, extensions=extensions or None)
        if not extensions:
            self.frames = ClientFrames(min(self.max_size or 0xFFFF, 0xFFFF))
        if self.ping_interval:
            self.next_ping = asyncio.get_running_loop().call_later(self.ping_interval, self._ping)
        self.channel.pause_input(False)
        pending, self.pending = bytes(self.pending), bytearray()
        if pending:
            self.feed(pending)
        if self.going:
            self._send_close(GOING_AWAY, "")

    def _set_status(self, code: int, headers: list[tuple[str, str]] | None = None) -> None:
        """What the access log reads of the exchange."""
        exchange = self.job.exchange
        if exchange is not None and not exchange.head_sent:
            exchange.status = f"{code} {'Switching Protocols' if code == 101 else 'Forbidden'}"
            exchange.headers = headers or []
            exchange.head_sent = True
            exchange.framer.status_code = code

    # -- the task ----------------------------------------------------------------------------------

    async def run(self, server: tuple[str, int] | None, root_path: str,
                  state: dict[str, Any] | None) -> None:
        cycle = self.cycle
        job = self.job
        request = job.request
        if cycle.timed:
            from time import perf_counter
            job.started = perf_counter()
            cycle.count_started()
        try:
            environ = job.builder.build(request, empty_input(), job.peer, job.trailers)
        except HTTPError as exc:
            self.channel.refuse(exc.status, exc.reason)
            cycle.count_refused(job, exc.status)
            return
        framer = ResponseFramer(request.version, False, False, cycle.response_heads)
        job.exchange = Exchange(framer, self.channel.write, cycle.dates.get(), SERVER)
        job.environ = environ
        error = handshake_error(request)
        if error is not None:
            self.channel.refuse(error.status, error.reason)
            cycle.finish(job)
            return
        subprotocols = [t for t in _tokens(request, b"sec-websocket-protocol")]
        try:
            if cycle.pre_request_hook:
                cycle.hooks.call_or_raise("pre_request", cycle.ctx, cycle.hook_request(job))
            scope = websocket_scope(request, environ, server, root_path, state, subprotocols)
            await self.app(scope, self.receive, self.send)
        except Exception as exc:
            if not from_disconnect(exc):
                cycle.log.exception("Exception in ASGI application %s",
                                    request.target.decode("latin-1"))
            if self.accepted:
                self._send_close(1011, "")
            elif self.denial is None or self.denial is True:
                if not self.channel.gone():
                    self.channel.refuse(500, "the application failed", log=False)
                self._set_status(500)
        else:
            if self.accepted:
                self._send_close(1000, "")
            elif self.denial is None:
                # The app returned without accepting: a denial, as uvicorn and Gunicorn make it.
                self.channel.refuse(403, "the application did not accept the WebSocket", log=False)
                self._set_status(403)
        if self.accepted:  # (a denial's response counted its own bytes, as any HTTP response)
            job.exchange.framer.sent = self.sent
        cycle.finish(job)


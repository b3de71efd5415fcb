"""WebSockets under the asgi worker (`-k asgi`): a real pronghorn process, the `websockets`
library as the client; a raw ASGI echo app and a Starlette WebSocket route (tests/apps/asgi_ws_app.py)."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import connect as connect_socket, exchange

websockets = pytest.importorskip("websockets", reason="needs websockets (pip install -e '.[test]')")
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402


def _poll(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def _ws(address: str) -> str:
    return "ws://" + address.split("://", 1)[-1]


def _run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 20))


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def events(tmp_path: Path) -> Path:
    return tmp_path / "events.txt"


def test_echo_text_bytes_a_megabyte_and_a_subprotocol(start_server) -> None:
    server, (address,) = start_server("asgi_ws_app:app", "-k", "asgi", "--access-logfile", "-")

    async def talk() -> None:
        async with connect(_ws(address) + "/echo", subprotocols=["chat"]) as ws:
            assert ws.subprotocol == "chat"
            assert ws.response.headers["x-scope-scheme"] == "ws"
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\xff")
            assert await ws.recv() == b"\x00\xff"
            big = bytes(range(256)) * 4096  # 1 MiB
            await ws.send(big)
            assert await ws.recv() == big
            # A fragmented message arrives whole.
            await ws.send(["frag", "men", "ted"])
            assert await ws.recv() == "fragmented"
            # The server answers pings.
            await asyncio.wait_for(await ws.ping(b"p"), 5)

    _run(talk())
    server.wait_for_line(r'"GET /echo HTTP/1\.1" 101 ')


def test_permessage_deflate_agreed_and_without_it(start_server) -> None:
    server, (address,) = start_server("asgi_ws_app:app", "-k", "asgi")

    async def talk(compression: str | None) -> str | None:
        async with connect(_ws(address) + "/echo", compression=compression) as ws:
            await ws.send("z" * 10000)
            assert await ws.recv() == "z" * 10000
            return ws.response.headers.get("sec-websocket-extensions")

    assert (_run(talk("deflate")) or "").startswith("permessage-deflate")
    assert _run(talk(None)) is None


def test_a_message_over_the_limit_closes_1009(start_server, events: Path) -> None:
    server, (address,) = start_server("asgi_ws_app:app", "-k", "asgi",
                                      "--websocket-max-message-size", "1000",
                                      env={"WS_EVENTS_FILE": str(events)})

    async def talk() -> int | None:
        async with connect(_ws(address) + "/echo") as ws:
            await ws.send("x" * 1000)  # at the limit: fine
            assert await ws.recv() == "x" * 1000
            await ws.send("x" * 1001)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.close_code

    assert _run(talk()) == 1009
    _poll(lambda: "disconnect 1009" in _lines(events))


def test_client_close_code_seen_by_the_app_and_server_close_code(start_server,
                                                                 events: Path) -> None:
    server, (address,) = start_server("asgi_ws_app:app", "-k", "asgi",
                                      env={"WS_EVENTS_FILE": str(events)})

    async def client_closes() -> None:
        async with connect(_ws(address) + "/echo") as ws:
            await ws.send("a")
            await ws.recv()
            await ws.close(code=4321, reason="bye")

    async def app_closes() -> tuple[int | None, str | None]:
        async with connect(_ws(address) + "/echo") as ws:
            await ws.send("close-me")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.close_code, ws.close_reason

    _run(client_closes())
    _poll(lambda: "disconnect 4321" in _lines(events))
    assert _run(app_closes()) == (4000, "asked to")


def test_denial_403_and_the_http_response_extension(start_server) -> None:
    server, (address,) = start_server("asgi_ws_app:app", "-k", "asgi")

    async def denied(path: str) -> Any:
        with pytest.raises(InvalidStatus) as caught:
            async with connect(_ws(address) + path):
                pass
        return caught.value.response

    response = _run(denied("/deny"))
    assert response.status_code == 403
    response = _run(denied("/teapot"))
    assert response.status_code == 418 and response.body == b"no websockets here"


def test_invalid_text_and_bad_handshakes(start_server) -> None:
    server, (address,) = start_server("asgi_ws_app:app", "-k", "asgi")
    head = (b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
    assert exchange(address, head + b"Sec-WebSocket-Version: 8\r\n\r\n").startswith(
        b"HTTP/1.1 426 ")
    assert exchange(address, head.replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"short") +
                    b"Sec-WebSocket-Version: 13\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    # A text frame that is not UTF-8 (masked, as a client's must be): close 1007.
    frame = bytes([0x81, 0x80 | 2, 0, 0, 0, 0]) + b"\xff\xfe"
    answer = exchange(address, head + b"Sec-WebSocket-Version: 13\r\n\r\n" + frame)
    assert answer.startswith(b"HTTP/1.1 101 ")
    close = answer.split(b"\r\n\r\n", 1)[1]
    assert close[0] == 0x88 and int.from_bytes(close[2:4], "big") == 1007


def test_starlette_websocket_route(start_server, events: Path) -> None:
    server, (address,) = start_server("asgi_ws_app:starlette_app", "-k", "asgi",
                                      env={"WS_EVENTS_FILE": str(events)})

    async def talk() -> None:
        async with connect(_ws(address) + "/ws") as ws:
            await ws.send("hi")
            assert await ws.recv() == "starlette: hi"

    _run(talk())
    _poll(lambda: "starlette disconnect 1000" in _lines(events))


def test_term_sends_1001_and_http_is_served_beside_websockets(start_server,
                                                               events: Path) -> None:
    server, (address,) = start_server("asgi_ws_app:app", "-k", "asgi",
                                      env={"WS_EVENTS_FILE": str(events)})

    async def talk() -> int | None:
        async with connect(_ws(address) + "/echo") as ws:
            await ws.send("a")
            assert await ws.recv() == "a"
            # The worker keeps serving HTTP with a WebSocket open, and after one has closed.
            reply = await asyncio.to_thread(
                exchange, address, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert reply.endswith(b"http ok")
            server.proc.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed):
                while True:
                    await ws.recv()
            return ws.close_code

    assert _run(talk()) == 1001
    _poll(lambda: "disconnect 1001" in _lines(events))
    assert server.stop() == 0


def test_http_after_a_websocket_session(start_server) -> None:
    server, (address,) = start_server("asgi_ws_app:app", "-k", "asgi", "-w", "1")

    async def talk() -> None:
        async with connect(_ws(address) + "/echo") as ws:
            await ws.send("a")
            assert await ws.recv() == "a"

    _run(talk())
    assert exchange(address, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                    ).endswith(b"http ok")


def _client_frame(first: int, payload: bytes) -> bytes:
    key = b"\x5a\x17\xc3\x08"
    size = len(payload)
    length = bytes([0x80 | size]) if size < 126 else bytes([0x80 | 126]) + size.to_bytes(2, "big")
    return bytes([first]) + length + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def _read_frame(sock: Any, buffer: bytearray) -> tuple[int, bytes]:
    """The next (unmasked) server frame: (first byte, payload)."""
    def need(count: int) -> None:
        while len(buffer) < count:
            data = sock.recv(65536)
            assert data, "the server closed before a whole frame"
            buffer.extend(data)
    need(2)
    size, start = buffer[1] & 0x7F, 2
    if size == 126:
        need(4)
        size, start = int.from_bytes(buffer[2:4], "big"), 4
    need(start + size)
    frame = (buffer[0], bytes(buffer[start:start + size]))
    del buffer[:start + size]
    return frame


def test_fast_frames_and_wsprotos_frames_mixed_on_one_connection(start_server) -> None:
    """Whole small frames (read by the session's fast path) and fragments, pings and errors (read by
    wsproto) in one stream, sent with the handshake and after it: the same echoes and closes."""
    server, (address,) = start_server("asgi_ws_app:app", "-k", "asgi")
    head = (b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    first = (_client_frame(0x81, b"a")
             + _client_frame(0x01, b"frag") + _client_frame(0x89, b"p")
             + _client_frame(0x80, b"mented")
             + _client_frame(0x82, b"\x00\xff") + _client_frame(0x81, "é".encode() * 100))
    with connect_socket(address) as sock:
        sock.sendall(head + first)  # (read before the accept, then through the same path)
        buffer = bytearray()
        while b"\r\n\r\n" not in buffer:
            data = sock.recv(65536)
            assert data
            buffer.extend(data)
        status, _, rest = bytes(buffer).partition(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 101 ")
        buffer = bytearray(rest)
        got = [_read_frame(sock, buffer) for _ in range(5)]
        assert (0x8A, b"p") in got  # the pong, whenever it was written
        assert [f for f in got if f[0] != 0x8A] == [
            (0x81, b"a"), (0x81, b"fragmented"), (0x82, b"\x00\xff"),
            (0x81, "é".encode() * 100)]
        # One byte at a time, a frame too.
        for byte in _client_frame(0x81, b"slow"):
            sock.sendall(bytes([byte]))
        assert _read_frame(sock, buffer) == (0x81, b"slow")
        # A whole final text frame inside a fragmented message is a protocol error: 1002.
        sock.sendall(_client_frame(0x01, b"x") + _client_frame(0x81, b"y"))
        code, payload = _read_frame(sock, buffer)
        assert code == 0x88 and int.from_bytes(payload[:2], "big") == 1002

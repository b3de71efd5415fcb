"""The WebSocket echo load: many small messages over 50 connections, one at a time on each.

    python bench/ws_echo.py --port PORT [--host 127.0.0.1] [--path /] [--connections 50]
                            [--size 64] [--duration 5] [--warmup 1]

Each connection makes the WebSocket handshake (RFC 6455 4.1, without permessage-deflate: what is
measured is the server's framing and the ASGI round trip, not zlib), then sends a text message of
``--size`` bytes, waits for its echo, sends the next, as wrk keeps each HTTP connection busy with
one request at a time. After ``--warmup`` unmeasured seconds it counts the echoes for
``--duration`` seconds and prints one line of JSON: messages echoed per second, the round trip's
p50/p99/p99.9 in ms, errors, and the client's own CPU use over the measured seconds.

It measures the server, not itself: the client is an asyncio protocol on uvloop (asyncio's own loop
without it) that does no per-message work in Python beyond one comparison and one write. Every
frame it sends is the same pre-masked frame (RFC 6455 asks for a fresh masking key per frame, to
defeat cache poisoning through proxies; a server cannot tell and unmasks all the same), and every
echo must be byte-identical to the unmasked frame expected, so a server that answers wrong is
counted as an error, not as a fast server (a server's keepalive ping is answered with a pong). If ``client_cpu`` nears 1.0 (a whole core) the client
was the bottleneck and the rate says nothing about the server: the harness prints it beside the
rate for that reason.

``probe(host, port, path)`` (used by the harness to wait for readiness) does one handshake and one
echo with a plain blocking socket, and raises OSError until the server answers, ValueError when it
answers wrong (a close before the answer is an OSError too: a server still starting).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import resource
import socket
import sys
import time
from typing import Any

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MASK = b"\x37\xfa\x21\x3d"


def handshake_request(host: str, port: int, path: str) -> tuple[bytes, bytes]:
    """The upgrade request and the Sec-WebSocket-Accept value its answer must carry."""
    key = base64.b64encode(os.urandom(16))
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    request = (b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
               % (path.encode(), host.encode(), port, key))
    return request, accept


def check_handshake(head: bytes, accept: bytes) -> None:
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 101"):
        raise ValueError(f"handshake answered {lines[0][:60]!r}")
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-accept":
            if value.strip() != accept:
                raise ValueError("wrong Sec-WebSocket-Accept")
            return
    raise ValueError("no Sec-WebSocket-Accept in the 101 response")


def frames(size: int) -> tuple[bytes, bytes]:
    """The client's masked text frame of ``size`` bytes and the server's unmasked echo of it."""
    if size >= 126:
        raise ValueError("--size must be below 126 (a one-byte length: small messages)")
    payload = (b"chat message " * (size // 13 + 1))[:size]
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | size]) + MASK + masked, bytes([0x81, size]) + payload


def split_frame(data: bytes) -> tuple[int, bytes, bytes] | None:
    """The first whole frame of a server's (unmasked, unfragmented) ``data`` as (opcode, payload,
    the bytes after it), or None while it is incomplete."""
    if len(data) < 2:
        return None
    length = data[1] & 0x7F
    start = 2
    if length == 126:
        if len(data) < 4:
            return None
        length, start = int.from_bytes(data[2:4], "big"), 4
    elif length == 127:
        if len(data) < 10:
            return None
        length, start = int.from_bytes(data[2:10], "big"), 10
    if len(data) < start + length:
        return None
    return data[0] & 0x0F, data[start:start + length], data[start + length:]


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A final client frame (payloads below 126 bytes: control frames and small messages)."""
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + MASK + bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


CLOSE_FRAME = bytes([0x88, 0x82]) + MASK + bytes(b ^ MASK[i] for i, b in enumerate((1000).to_bytes(2, "big")))


class Load:
    """What the connections share: the phase, the counters, the round trips measured."""

    def __init__(self, size: int) -> None:
        self.send_frame, self.echo_frame = frames(size)
        self.measuring = False
        self.running = True
        self.messages = 0
        self.echoed = 0  # warm-up included
        self.errors = 0
        self.latencies: list[float] = []


class EchoClient(asyncio.Protocol):
    def __init__(self, load: Load, request: bytes, accept: bytes, ready: asyncio.Future[None]) -> None:
        self.load = load
        self.request = request
        self.accept = accept
        self.ready = ready
        self.head = b""
        self.buffer = b""
        self.open = False  # the handshake is done
        self.sent_at = 0.0
        self.transport: Any = None
        self.lost: asyncio.Future[None] = ready.get_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.open:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            try:
                check_handshake(self.head[:end], self.accept)
            except ValueError as exc:
                if not self.ready.done():
                    self.ready.set_exception(exc)
                self.transport.close()
                return
            self.open = True
            data = self.head[end + 4:]
            self.head = b""
            self.ready.set_result(None)
            self.send()
            if not data:
                return
        load = self.load
        expected = load.echo_frame
        if self.buffer:
            data = self.buffer + data
            self.buffer = b""
        if data == expected:  # (the common case: exactly the echo, nothing else)
            self.echoed()
            return
        # Anything else goes through a frame parser: a piece of the echo, or a server's keepalive
        # ping (answered with a pong, as a browser does) before or after it.
        while data:
            frame = split_frame(data)
            if frame is None:
                self.buffer = data  # the rest of the frame is on its way
                return
            opcode, payload, data = frame
            if opcode == 0x9:
                self.transport.write(masked_frame(0xA, payload))
            elif opcode == 0xA:
                pass
            elif opcode == 0x1 and payload == expected[2:]:
                self.echoed()
            else:
                load.errors += 1  # a wrong answer, or a close in the middle of the run
                self.transport.close()
                return

    def echoed(self) -> None:
        load = self.load
        load.echoed += 1
        if load.measuring:
            load.messages += 1
            load.latencies.append(time.perf_counter() - self.sent_at)
        if load.running:
            self.send()

    def send(self) -> None:
        self.sent_at = time.perf_counter()
        self.transport.write(self.load.send_frame)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(CLOSE_FRAME)
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.load.running:
            self.load.errors += 1  # the server closed a connection in the middle of the run
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed during the handshake"))
        if not self.lost.done():
            self.lost.set_result(None)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(len(values) * fraction))]


async def run(host: str, port: int, path: str, connections: int, size: int, duration: float,
              warmup: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    load = Load(size)
    clients: list[EchoClient] = []
    for _ in range(connections):
        request, accept = handshake_request(host, port, path)
        ready = loop.create_future()
        _, client = await loop.create_connection(lambda: EchoClient(load, request, accept, ready), host, port)
        clients.append(client)
        await ready  # one at a time: a server's accept queue is not what is measured
    await asyncio.sleep(warmup)
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    load.measuring = True
    await asyncio.sleep(duration)
    load.measuring = False
    elapsed = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    load.running = False
    for client in clients:
        client.close()
    await asyncio.wait([c.lost for c in clients], timeout=2)
    latencies = sorted(load.latencies)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {
        "messages": load.messages,
        "echoed": load.echoed,
        "seconds": round(elapsed, 3),
        "rate": load.messages / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "p999_ms": percentile(latencies, 0.999) * 1000,
        "errors": load.errors,
        "client_cpu": round(cpu / elapsed, 2),
    }


def probe(host: str, port: int, path: str = "/", size: int = 64) -> None:
    """One handshake and one echo (see the module's docstring)."""
    send_frame, echo_frame = frames(size)
    request, accept = handshake_request(host, port, path)
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"closed during the handshake: {data[:60]!r}")
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        check_handshake(head, accept)
        sock.sendall(send_frame)
        while len(data) < len(echo_frame):
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed before the echo")
            data += chunk
        if data != echo_frame:
            raise ValueError(f"wrong echo: {data[:60]!r}")
        sock.sendall(CLOSE_FRAME)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--size", type=int, default=64, help="bytes per message (below 126)")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        new_loop = asyncio.new_event_loop
    else:
        new_loop = uvloop.new_event_loop
    loop = new_loop()
    try:
        result = loop.run_until_complete(run(args.host, args.port, args.path, args.connections, args.size,
                                             args.duration, args.warmup))
    finally:
        loop.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])

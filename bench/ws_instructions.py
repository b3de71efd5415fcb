"""Instructions per echoed WebSocket message of the asgi worker, counted by valgrind (callgrind).

    python bench/ws_instructions.py [--messages N] [--connections 10] [--size 64] [--binary]
                                    [--deflate] [--profile]

The worker (``-k asgi``'s ASGIWorker on uvloop, as bench/instructions.py runs it) serves an echo
app (bench/apps/asgi_apps.py's shape: accept, then send back every message as it came) in a child
process under ``valgrind --tool=callgrind``; it stops once the app has echoed N messages. The client,
in this process, opens ``--connections`` WebSocket connections (the handshake first, one at a
time), then keeps one small masked frame in flight on each, as bench/ws_echo.py does, checking each
echo byte for byte. It is run twice, for N/4 and N messages; the difference divided by the
difference in messages is the cost of one message (its frame parsed and unmasked, the UTF-8 check,
the ASGI receive and send, the frame written), without the start-up and the handshakes. The kernel's
side of the system calls is not counted.

``--deflate`` offers permessage-deflate (RFC 7692, ``client_max_window_bits``) and sends every
message compressed (the frame's RSV1 set, no context takeover kept by the client: each message is
compressed alone), checking the echoes by inflating them: zlib's cost then dominates.

``--profile`` runs the worker once under cProfile instead of valgrind (the same clients, N
messages) and prints its top functions by own time and by cumulative time.
"""

from __future__ import annotations

import argparse
import os
import re
import selectors
import socket
import subprocess
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from instructions import free_port, wait_listening  # noqa: E402
from ws_echo import MASK, check_handshake, handshake_request, split_frame  # noqa: E402

WORKER = r'''
import logging, os, socket, sys
from pronghorn.config.settings import Config
from pronghorn.workers.base import WorkerContext
from pronghorn.workers.asgi import ASGIWorker, TaskCalls
port, total = int(sys.argv[1]), int(sys.argv[2])
echoed = 0
async def echo(scope, receive, send):
    global echoed
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes")})
        echoed += 1
        if echoed == total:
            worker.loop.call_soon(worker.stop_now)
class Heartbeat:
    def tick(self): pass
    def set_state(self, state): pass
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(1024)
# No keepalive pings: a ping under valgrind's slowness would be counted as messages' cost.
cfg = Config(websocket_ping_interval=0)
log = logging.getLogger("ws_instructions")
ctx = WorkerContext(1, os.getppid(), Heartbeat(), -1, cfg, log)
ctx.tick = lambda: True
ctx.notify_ready = lambda: None
worker = ASGIWorker(echo, cfg, [listener], log, ctx, TaskCalls(echo, cfg, log))
if os.environ.get("PRONGHORN_BENCH_PROFILE"):
    import cProfile, pstats
    profiler = cProfile.Profile()
    profiler.runcall(worker.run)
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)
else:
    worker.run()
'''

DEFLATE_OFFER = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"


def mask(payload: bytes) -> bytes:
    return bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))


def client_frame(size: int, binary: bool, deflate: bool) -> tuple[bytes, bytes, bool]:
    """The masked frame a client sends, the payload its echo carries once inflated, and whether
    the echo is binary."""
    payload = (b"chat message " * (size // 13 + 1))[:size]
    first = 0x82 if binary else 0x81
    wire = payload
    if deflate:
        compressor = zlib.compressobj(wbits=-15)
        wire = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
        assert wire.endswith(b"\x00\x00\xff\xff")
        wire = wire[:-4]
        first |= 0x40  # RSV1: this message is compressed
    if len(wire) >= 126:
        raise SystemExit("--size must make frames below 126 bytes (a one-byte length)")
    return bytes([first, 0x80 | len(wire)]) + MASK + mask(wire), payload, binary


def connect(port: int, deflate: bool) -> tuple[socket.socket, bytes]:
    request, accept = handshake_request("127.0.0.1", port, "/")
    if deflate:
        request = request[:-2] + DEFLATE_OFFER + b"\r\n"
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise SystemExit(f"closed during the handshake: {data[:80]!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    check_handshake(head, accept)
    if deflate and b"permessage-deflate" not in head.lower():
        raise SystemExit("the server did not agree to permessage-deflate")
    return sock, rest


def echo_client(port: int, total: int, connections: int, size: int, binary: bool,
                deflate: bool) -> None:
    """``connections`` WebSockets, each sending its next message once the last one's echo is in."""
    frame, payload, _ = client_frame(size, binary, deflate)
    opcode = 0x2 if binary else 0x1
    selector = selectors.DefaultSelector()
    inflaters: dict[int, zlib._Decompress] = {}
    sent = answered = 0
    for _ in range(connections):
        sock, rest = connect(port, deflate)
        if rest:
            raise SystemExit("bytes after the 101 before any message")
        selector.register(sock, selectors.EVENT_READ, [b""])
        inflaters[sock.fileno()] = zlib.decompressobj(wbits=-15)
        if sent < total:
            sock.sendall(frame)
            sent += 1
    while answered < total:
        for key, _ in selector.select(60):
            sock, pending = key.fileobj, key.data
            data = sock.recv(65536)  # type: ignore[union-attr]
            if not data:
                # The worker stops once its app has echoed `total` messages, which may be before
                # the last echoes in flight have reached us.
                if answered < total - connections:
                    raise SystemExit("the worker closed a WebSocket in the middle of the run")
                selector.unregister(sock)
                sock.close()  # type: ignore[union-attr]
                if not selector.get_map():
                    return
                continue
            buffer = pending[0] + data
            while True:
                split = split_frame(buffer)
                if split is None:
                    break
                first = buffer[0]
                got_opcode, got, buffer = split
                if got_opcode != opcode:
                    raise SystemExit(f"unexpected frame (opcode {got_opcode}): {got[:60]!r}")
                if deflate:
                    if not first & 0x40:
                        raise SystemExit("an echo not compressed, with permessage-deflate agreed")
                    got = inflaters[sock.fileno()].decompress(got + b"\x00\x00\xff\xff")  # type: ignore[union-attr]
                if got != payload:
                    raise SystemExit(f"wrong echo: {got[:60]!r}")
                answered += 1
                if sent < total:
                    sock.sendall(frame)  # type: ignore[union-attr]
                    sent += 1
            pending[0] = buffer
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]


def count(messages: int, connections: int, size: int, binary: bool, deflate: bool,
          profile: bool = False) -> int:
    port = free_port()
    out = f"/tmp/pronghorn-ws-callgrind-{os.getpid()}.out"
    env = dict(os.environ, PYTHONHASHSEED="0",
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    argv = [sys.executable, "-c", WORKER, str(port), str(messages)]
    if profile:
        env["PRONGHORN_BENCH_PROFILE"] = "1"
    else:
        argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv]
    worker = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE)
    try:
        wait_listening(port, worker)
        echo_client(port, messages, connections, size, binary, deflate)
        _, err = worker.communicate(timeout=600)
    finally:
        if worker.poll() is None:
            worker.kill()
        if os.path.exists(out):
            os.unlink(out)
    if profile:
        return 0
    found = re.search(rb"Collected : (\d+)", err)
    if found is None:
        raise SystemExit(err.decode(errors="replace")[-2000:])
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=8000)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--size", type=int, default=64, help="bytes per message (frames below 126)")
    parser.add_argument("--binary", action="store_true", help="binary messages (default: text)")
    parser.add_argument("--deflate", action="store_true", help="negotiate permessage-deflate")
    parser.add_argument("--profile", action="store_true",
                        help="run the worker once under cProfile (no valgrind) and print where the time goes")
    args = parser.parse_args()
    options = (args.connections, args.size, args.binary, args.deflate)
    if args.profile:
        count(args.messages, *options, profile=True)
        return
    few, many = args.messages // 4, args.messages
    per_message = (count(many, *options) - count(few, *options)) / (many - few)
    kind = "binary" if args.binary else "text"
    deflated = ", permessage-deflate" if args.deflate else ""
    print(f"asgi worker, WebSocket echo of {args.size}-byte {kind} messages{deflated}, "
          f"{args.connections} connections: {per_message:,.0f} instructions per message "
          f"(callgrind, {many} vs {few} messages)")


if __name__ == "__main__":
    main()

"""Instructions per request of the whole sync worker (loop, system call wrappers, HTTP, WSGI), counted
by valgrind, which a noisy machine does not change the way it changes req/s.

    python bench/instructions.py [--mode keepalive|close] [--requests N] [--access-log PATH]

The worker runs in a child process under ``valgrind --tool=callgrind`` (apt-get install valgrind),
serving a hello app on a loopback port until it has answered a fixed number of requests; a client
in this process keeps 50 connections busy, as wrk does (keep-alive), or opens a connection per
request (close). It is run twice, for N/4 and N requests; the difference divided by the difference
in requests is the cost of one request, without the start-up. The turn budget is off (under
valgrind every turn would overrun it). The kernel's side of the system calls is not counted.
With ``--access-log PATH`` the worker writes the default-format access log to PATH, its logging set
up by ``setup_logging`` as the master sets it up before forking a real worker.
"""

from __future__ import annotations

import argparse
import os
import re
import selectors
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CONNECTIONS = 50

# The child: pronghorn's sync worker (LoopWorker with InlineCalls) on a listener of its own, stopping after exactly N requests.
WORKER = r'''
import logging, os, socket, sys
from pronghorn.config.settings import Config
from pronghorn.workers import sync
from pronghorn.workers.aio import LoopWorker
from pronghorn.workers.base import WorkerContext
sync.TURN_BUDGET = float("inf")
port, total = int(sys.argv[1]), int(sys.argv[2])
access_log = sys.argv[3] if len(sys.argv) > 3 else None
answered = 0
def hello(environ, start_response):
    global answered
    answered += 1
    if answered == total:
        worker.loop.call_soon(worker.stop_now)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]
class Heartbeat:
    def tick(self): pass
    def set_state(self, state): pass
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(1024)
cfg = Config(accesslog=access_log) if access_log else Config()
if access_log:
    from pronghorn.logs import setup_logging
    log = setup_logging(cfg)
else:
    log = logging.getLogger("instructions")
ctx = WorkerContext(1, os.getppid(), Heartbeat(), -1, cfg, log)
ctx.tick = lambda: True
ctx.notify_ready = lambda: None
worker = LoopWorker(hello, cfg, [listener], log, ctx, sync.InlineCalls())
worker.run()
'''

KEEPALIVE = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
CLOSE = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nConnection: close\r\n\r\n"
BODY = b"Hello, world!"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, worker: subprocess.Popen[bytes]) -> None:
    """Poll until the worker accepts (valgrind takes seconds to start it)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise SystemExit("the worker exited before listening; is valgrind installed?")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the worker did not listen within 120 s")


def keepalive_client(port: int, total: int) -> None:
    """50 connections, each sending its next request once the last one's body is in."""
    selector = selectors.DefaultSelector()
    sent = answered = 0
    for _ in range(CONNECTIONS):
        sock = socket.create_connection(("127.0.0.1", port))
        selector.register(sock, selectors.EVENT_READ, [b""])
        if sent < total:
            sock.sendall(KEEPALIVE)
            sent += 1
    while answered < total:
        for key, _ in selector.select(30):
            sock, pending = key.fileobj, key.data
            data = sock.recv(65536)  # type: ignore[union-attr]
            if not data:
                raise SystemExit("the worker closed a keep-alive connection")
            pending[0] += data
            done = pending[0].count(BODY)
            if done:
                pending[0] = pending[0][pending[0].rfind(BODY) + len(BODY):]
            answered += done
            for _ in range(done):
                if sent < total:
                    sock.sendall(KEEPALIVE)  # type: ignore[union-attr]
                    sent += 1
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]


def close_client(port: int, total: int) -> None:
    """50 connections at a time, one request each, read to the server's close."""
    selector = selectors.DefaultSelector()
    opened = closed = 0

    def open_one() -> None:
        nonlocal opened
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(CLOSE)
        selector.register(sock, selectors.EVENT_READ)
        opened += 1

    for _ in range(min(CONNECTIONS, total)):
        open_one()
    while closed < total:
        for key, _ in selector.select(30):
            sock = key.fileobj
            try:
                data = sock.recv(65536)  # type: ignore[union-attr]
            except ConnectionError:
                data = b""
            if not data:
                selector.unregister(sock)
                sock.close()  # type: ignore[union-attr]
                closed += 1
                if opened < total:
                    open_one()


def count(mode: str, requests: int, access_log: str | None = None) -> int:
    """Instructions the worker process ran to start, serve ``requests`` and stop."""
    port = free_port()
    out = f"/tmp/pronghorn-callgrind-{os.getpid()}.out"
    env = dict(os.environ, PYTHONHASHSEED="0",
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    worker = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", WORKER,
         str(port), str(requests), *([access_log] if access_log else [])],
        env=env, stderr=subprocess.PIPE)
    try:
        wait_listening(port, worker)
        (keepalive_client if mode == "keepalive" else close_client)(port, requests)
        _, err = worker.communicate(timeout=600)
    finally:
        if worker.poll() is None:
            worker.kill()
        if os.path.exists(out):
            os.unlink(out)
    found = re.search(rb"Collected : (\d+)", err)
    if found is None:
        raise SystemExit(err.decode(errors="replace")[-2000:])
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("keepalive", "close"), default="keepalive")
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--access-log", metavar="PATH",
                        help="write the access log (default format) to PATH")
    args = parser.parse_args()
    few, many = args.requests // 4, args.requests
    per_request = (count(args.mode, many, args.access_log)
                   - count(args.mode, few, args.access_log)) / (many - few)
    logged = f", access log to {args.access_log}" if args.access_log else ""
    print(f"sync worker, hello, {args.mode}{logged}: {per_request:,.0f} instructions per request "
          f"(callgrind, {many} vs {few} requests)")


if __name__ == "__main__":
    main()

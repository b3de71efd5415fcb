"""Instructions per request of the whole sync worker (loop, system call wrappers, HTTP, WSGI), counted
by valgrind, which a noisy machine does not change the way it changes req/s; or of the asgi worker.

    python bench/instructions.py [--mode keepalive|close|uwsgi] [--scenario hello|proxied] [--requests N]
                                 [--access-log PATH] [--worker-class sync|asgi] [--metrics]
                                 [--server pronghorn|bjoern|fastpysgi] [--breakdown N] [--profile]

The worker runs in a child process under ``valgrind --tool=callgrind`` (apt-get install valgrind),
serving a hello app on a loopback port until it has answered a fixed number of requests; a client
in this process keeps 50 connections busy, as wrk does (keep-alive), or opens a connection per
request (close), or (uwsgi: the worker runs ``--protocol uwsgi``) opens a connection per request,
sends one uwsgi packet holding the vars nginx's ``uwsgi_params`` sends for wrk's request, reads the
response and closes, as nginx's ``uwsgi_pass`` does. It is run twice, for N/4 and N requests; the difference divided by the difference
in requests is the cost of one request, without the start-up. The turn budget is off (under
valgrind every turn would overrun it). The kernel's side of the system calls is not counted.

Scenarios: ``hello`` sends one byte-identical head forever, as wrk does. ``proxied`` sends what nginx
forwards for a browser (Host, X-Real-IP, X-Forwarded-For/Proto, a browser's User-Agent, Accept,
Accept-Language and Accept-Encoding, constant; a unique X-Request-Id and a session cookie that vary with
every request), and the worker trusts the client as a proxy (``forwarded_allow_ips``), as behind nginx.

With ``--access-log PATH`` the worker writes the default-format access log to PATH, its logging set
up by ``setup_logging`` as the master sets it up before forking a real worker.

``--worker-class asgi`` runs the asgi worker (``-k asgi``: ASGIWorker and its task per request, on
uvloop as --asgi-loop auto chooses) serving an ASGI 3 hello app (http.response.start, then one
http.response.body), the lifespan's startup answered; the clients and the counting are the same.

``--metrics`` gives the worker the request counters --metrics-bind gives it (cycle/counters.py: a
page shared with a master, here with nobody), so that the cost of counting is measured; the
heartbeat that copies the counts into the page is not run (once a second, it is no request's cost).

``--server bjoern`` or ``--server fastpysgi`` counts a C peer serving the same hello app to the same
clients (keep-alive or close; the proxied heads are passed to its app as they are, since neither has a
trusted-proxy setting), run from the benchmark's virtualenv (``bench/run`` makes it), which has them.
Neither can be told to stop, so the app ends the process (``os._exit``) when it is called for the
last request, before answering it: one request fewer in both runs, the same in the difference.

``--breakdown N`` keeps both runs' callgrind files and prints where one request's instructions go:
the difference per function between the runs, divided by the difference in requests, summed by
shared object (and, inside libpython, by source file: ``ceval.c`` is bytecode being interpreted),
then the N costliest functions. That is the profile that says what a request still costs and where.

``--profile`` runs the worker once under cProfile instead of valgrind (the same clients, N
requests) and prints its top functions by own time and by cumulative time: where the time goes,
in Python's terms (cProfile's own overhead inflates small functions; the instructions are the
measure, the profile the map).
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

# The child: pronghorn's sync worker (LoopWorker with InlineCalls), or its asgi worker (ASGIWorker with
# TaskCalls), on a listener of its own, stopping after exactly N requests.
WORKER = r'''
import logging, os, socket, sys
from pronghorn.config.settings import Config
from pronghorn.workers import sync
from pronghorn.workers.aio import LoopWorker
from pronghorn.workers.base import WorkerContext
sync.TURN_BUDGET = float("inf")
port, total, scenario, worker_class = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
access_log = sys.argv[5] if len(sys.argv) > 5 else None
answered = 0
def hello(environ, start_response):
    global answered
    answered += 1
    if answered == total:
        worker.loop.call_soon(worker.stop_now)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"13")]
async def asgi_hello(scope, receive, send):
    global answered
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    answered += 1
    if answered == total:
        worker.loop.call_soon(worker.stop_now)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": b"Hello, world!"})
class Heartbeat:
    def tick(self): pass
    def set_state(self, state): pass
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(1024)
# proxied: the client is the proxy, and trusted as one (as the harness runs it behind nginx's address)
options = dict(forwarded_allow_ips="127.0.0.1") if scenario == "proxied" else {}
if scenario == "uwsgi":
    options = dict(protocol="uwsgi")
cfg = Config(accesslog=access_log, **options) if access_log else Config(**options)
if access_log:
    from pronghorn.logs import setup_logging
    log = setup_logging(cfg)
else:
    log = logging.getLogger("instructions")
ctx = WorkerContext(1, os.getppid(), Heartbeat(), -1, cfg, log)
ctx.tick = lambda: True
if os.environ.get("PRONGHORN_BENCH_METRICS"):
    from pronghorn.cycle.counters import RequestCounters
    ctx.counters = RequestCounters()
ctx.notify_ready = lambda: None
if worker_class == "asgi":
    from pronghorn.workers.asgi import ASGIWorker, TaskCalls
    worker = ASGIWorker(asgi_hello, cfg, [listener], log, ctx, TaskCalls(asgi_hello, cfg, log))
else:
    worker = LoopWorker(hello, cfg, [listener], log, ctx, sync.InlineCalls())
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

# The child for --server bjoern|fastpysgi: the same hello app on the peer's own loop; the app ends
# the process when it is called for the last request (neither server has a stop to call).
PEER = r'''
import os, sys
port, total, server = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
answered = 0
def hello(environ, start_response):
    global answered
    answered += 1
    if answered == total:
        os._exit(0)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]
if server == "bjoern":
    import bjoern
    bjoern.run(hello, "127.0.0.1", port)
else:
    import fastpysgi
    fastpysgi.run(wsgi_app=hello, host="127.0.0.1", port=port)
'''

KEEPALIVE = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
CLOSE = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nConnection: close\r\n\r\n"
# nginx's proxy_pass with keep-alive upstreams (proxy_http_version 1.1, Connection ""), forwarding a
# browser's request; %(id)s and %(session)s change with every request.
PROXIED = (
    b"GET / HTTP/1.1\r\n"
    b"Host: app.example.com\r\n"
    b"X-Real-IP: 203.0.113.195\r\n"
    b"X-Forwarded-For: 203.0.113.195\r\n"
    b"X-Forwarded-Proto: https\r\n"
    b"X-Request-Id: %(id)s\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
    b"Cookie: sessionid=%(session)s; csrftoken=Yq3JkT0bW9cXzL2mN8pR4sV6uA1dE5fG\r\n"
    b"\r\n")
BODY = b"Hello, world!"


def uwsgi_packet(variables: dict[bytes, bytes]) -> bytes:
    """A uwsgi request packet (modifier1 0): the 4-byte header, then each var's sizes (2 bytes,
    little-endian) and bytes."""
    block = b"".join(len(key).to_bytes(2, "little") + key + len(value).to_bytes(2, "little") + value
                     for key, value in variables.items())
    return b"\0" + len(block).to_bytes(2, "little") + b"\0" + block


# What nginx 1.22's uwsgi_params (and the client's Host field) send for wrk's GET / to a uwsgi_pass.
UWSGI = uwsgi_packet({
    b"QUERY_STRING": b"", b"REQUEST_METHOD": b"GET", b"CONTENT_TYPE": b"", b"CONTENT_LENGTH": b"",
    b"REQUEST_URI": b"/", b"PATH_INFO": b"/", b"DOCUMENT_ROOT": b"/usr/share/nginx/html",
    b"SERVER_PROTOCOL": b"HTTP/1.1", b"REQUEST_SCHEME": b"http", b"HTTPS": b"",
    b"REMOTE_ADDR": b"127.0.0.1", b"REMOTE_PORT": b"51234", b"SERVER_PORT": b"8080",
    b"SERVER_NAME": b"localhost", b"HTTP_HOST": b"127.0.0.1:8080"})


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


def proxied_request(number: int) -> bytes:
    """The PROXIED head for the request ``number``: its own X-Request-Id (32 hex digits, as nginx's
    $request_id) and one of a thousand sessions."""
    request_id = (number + 1) * 0x9E3779B97F4A7C15F39CC0605CEDC835 % (1 << 128)
    return PROXIED % {b"id": b"%032x" % request_id,
                      b"session": b"%032x" % (number % 1000 * 0x2545F4914F6CDD1D)}


def keepalive_client(port: int, total: int, scenario: str) -> None:
    """50 connections, each sending its next request once the last one's body is in."""
    if scenario == "proxied":
        heads = [proxied_request(number) for number in range(total)]
    else:
        heads = [KEEPALIVE] * total
    selector = selectors.DefaultSelector()
    sent = answered = 0
    for _ in range(CONNECTIONS):
        sock = socket.create_connection(("127.0.0.1", port))
        selector.register(sock, selectors.EVENT_READ, [b""])
        if sent < total:
            sock.sendall(heads[sent])
            sent += 1
    while answered < total and selector.get_map():
        for key, _ in selector.select(30):
            sock, pending = key.fileobj, key.data
            data = sock.recv(65536)  # type: ignore[union-attr]
            if not data:
                # The worker stops once its app has been called `total` times, which may be before
                # the last responses in flight have reached us: only then is a close expected.
                if answered < total - CONNECTIONS:
                    raise SystemExit("the worker closed a keep-alive connection")
                selector.unregister(sock)
                sock.close()  # type: ignore[union-attr]
                continue
            pending[0] += data
            done = pending[0].count(BODY)
            if done:
                pending[0] = pending[0][pending[0].rfind(BODY) + len(BODY):]
            answered += done
            for _ in range(done):
                if sent < total:
                    sock.sendall(heads[sent])  # type: ignore[union-attr]
                    sent += 1
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]


def close_client(port: int, total: int, request: bytes = CLOSE, hang_up: bool = False) -> None:
    """50 connections at a time, one request each, read to the server's close (``hang_up``: to the
    body's end, then closed by the client, as nginx closes a uwsgi connection)."""
    selector = selectors.DefaultSelector()
    opened = closed = 0

    def open_one() -> None:
        nonlocal opened
        try:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(request)
        except ConnectionError:  # a peer that has exited after its last request
            return
        opened += 1
        selector.register(sock, selectors.EVENT_READ, [b""])

    for _ in range(min(CONNECTIONS, total)):
        open_one()
    while closed < total and selector.get_map():
        for key, _ in selector.select(30):
            sock = key.fileobj
            try:
                data = sock.recv(65536)  # type: ignore[union-attr]
            except ConnectionError:
                data = b""
            if hang_up and data:
                key.data[0] += data
                if not key.data[0].endswith(BODY):
                    continue
                data = b""
            if not data:
                selector.unregister(sock)
                sock.close()  # type: ignore[union-attr]
                closed += 1
                if opened < total:
                    open_one()


def count(mode: str, scenario: str, requests: int, access_log: str | None = None,
          worker_class: str = "sync", profile: bool = False, metrics: bool = False,
          server: str = "pronghorn", keep: str | None = None) -> int:
    """Instructions the worker process ran to start, serve ``requests`` and stop (``profile``: run
    it under cProfile instead, print the profile, and return 0; ``keep``: leave callgrind's file
    there)."""
    port = free_port()
    out = keep or f"/tmp/pronghorn-callgrind-{os.getpid()}.out"
    env = dict(os.environ, PYTHONHASHSEED="0",
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    if server == "pronghorn":
        argv = [sys.executable, "-c", WORKER, str(port), str(requests),
                "uwsgi" if mode == "uwsgi" else scenario, worker_class,
                *([access_log] if access_log else [])]
    else:
        argv = [sys.executable, "-c", PEER, str(port), str(requests), server]
    if metrics:
        env["PRONGHORN_BENCH_METRICS"] = "1"
    if profile:
        env["PRONGHORN_BENCH_PROFILE"] = "1"
    else:
        argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv]
    worker = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE)
    try:
        wait_listening(port, worker)
        if mode == "keepalive":
            keepalive_client(port, requests, scenario)
        elif mode == "uwsgi":
            close_client(port, requests, UWSGI, hang_up=True)
        else:
            close_client(port, requests)
        _, err = worker.communicate(timeout=600)
    finally:
        if worker.poll() is None:
            worker.kill()
        if os.path.exists(out) and not keep:
            os.unlink(out)
    if profile:
        return 0
    found = re.search(rb"Collected : (\d+)", err)
    if found is None:
        raise SystemExit(err.decode(errors="replace")[-2000:])
    return int(found.group(1))


# callgrind_annotate's line for one function: "Ir (pct)  file:function [object]" (a recursive
# function's deeper frames are "function'2": summed with the rest of it). Some lines name no object
# (a function inlined from a header, say): the source file's path says whose it is.
ANNOTATED = re.compile(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*):([^:\s]+?)(?:'\d+)?(?: \[(.*)\])?$")


def functions(out: str) -> dict[tuple[str, str, str], int]:
    """Each function's own instructions (not its callees') in a callgrind file: (object, file,
    function) → instructions."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", out],
                          check=True, capture_output=True, text=True).stdout
    costs: dict[tuple[str, str, str], int] = {}
    for line in text.splitlines():
        found = ANNOTATED.match(line)
        if found:
            key = (found.group(4) or "", found.group(2), found.group(3))
            costs[key] = costs.get(key, 0) + int(found.group(1).replace(",", ""))
    return costs


def where(key: tuple[str, str, str]) -> str:
    """The group a function's cost is summed in: its shared object, and inside libpython its source
    file (the interpreter's loop, dicts, strings, memory...)."""
    obj, source, _ = key
    name = os.path.basename(obj)
    if name.startswith(("libpython", "python")) or (not obj and "/Python-3" in source):
        return f"libpython: {os.path.basename(source)}"
    if not obj:
        return "libc and the loader" if source.startswith("./") else f"? {os.path.dirname(source)}"
    if "/pronghorn/" in obj:
        return "pronghorn, compiled (mypyc)"
    return name


def breakdown(few_out: str, many_out: str, requests: int, top: int) -> None:
    """Print one request's instructions by group and the ``top`` costliest functions: the
    difference between the runs' callgrind files, divided by the difference in ``requests``."""
    few, many = functions(few_out), functions(many_out)
    delta = {key: (many.get(key, 0) - few.get(key, 0)) / requests for key in many.keys() | few.keys()}
    groups: dict[str, float] = {}
    for key, cost in delta.items():
        group = where(key)
        groups[group] = groups.get(group, 0) + cost
    total = sum(groups.values())
    print(f"\nper request, by where it runs ({total:,.0f} in all):")
    for group, cost in sorted(groups.items(), key=lambda item: -item[1]):
        if abs(cost) >= total / 200:
            print(f"  {cost:9,.0f}  {cost / total:6.1%}  {group}")
    print(f"\nper request, the {top} costliest functions:")
    for key, cost in sorted(delta.items(), key=lambda item: -item[1])[:top]:
        print(f"  {cost:9,.0f}  {cost / total:6.1%}  {key[2]}  [{where(key)}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("keepalive", "close", "uwsgi"), default="keepalive",
                        help="keepalive: 50 connections; close: a connection per request (Connection: "
                             "close); uwsgi: a connection per request, one uwsgi packet each")
    parser.add_argument("--scenario", choices=("hello", "proxied"), default="hello")
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--access-log", metavar="PATH",
                        help="write the access log (default format) to PATH")
    parser.add_argument("--worker-class", choices=("sync", "asgi"), default="sync",
                        help="sync: a WSGI hello app on the sync worker; asgi: an ASGI hello app on -k asgi")
    parser.add_argument("--metrics", action="store_true",
                        help="count requests as --metrics-bind does (the worker's shared counters)")
    parser.add_argument("--server", choices=("pronghorn", "bjoern", "fastpysgi"), default="pronghorn",
                        help="count a C peer serving the same hello app instead (needs bench/.venv's python)")
    parser.add_argument("--breakdown", type=int, metavar="N", default=0,
                        help="also print where a request's instructions go, and the N costliest functions")
    parser.add_argument("--profile", action="store_true",
                        help="run the worker once under cProfile (no valgrind) and print where the time goes")
    args = parser.parse_args()
    if args.mode != "keepalive" and args.scenario != "hello":
        parser.error(f"--mode {args.mode} measures the hello scenario only")
    if args.server != "pronghorn" and (args.mode == "uwsgi" or args.worker_class != "sync"
                                       or args.access_log or args.metrics or args.profile):
        parser.error(f"--server {args.server} serves the WSGI hello app, keep-alive or close, and nothing else")
    if args.profile:
        count(args.mode, args.scenario, args.requests, args.access_log, args.worker_class, profile=True,
              metrics=args.metrics)
        return
    few, many = args.requests // 4, args.requests
    outs = ([f"/tmp/pronghorn-callgrind-{os.getpid()}-{n}.out" for n in (many, few)] if args.breakdown
            else [None, None])
    try:
        counts = [count(args.mode, args.scenario, n, args.access_log, args.worker_class,
                        metrics=args.metrics, server=args.server, keep=out)
                  for n, out in zip((many, few), outs)]
        per_request = (counts[0] - counts[1]) / (many - few)
        if args.server == "pronghorn":
            logged = f", access log to {args.access_log}" if args.access_log else ""
            logged += ", metrics on" if args.metrics else ""
            sys.path.insert(0, ROOT)  # the tree the worker ran, compiled where bench/run or setup.py built it
            from pronghorn.compiled import describe
            logged += f" [{describe()}]"
            served = f"{args.worker_class} worker"
        else:
            logged, served = "", args.server
        print(f"{served}, {args.scenario}, {args.mode}{logged}: {per_request:,.0f} instructions "
              f"per request (callgrind, {many} vs {few} requests)")
        if args.breakdown:
            breakdown(str(outs[1]), str(outs[0]), many - few, args.breakdown)
    finally:
        for out in outs:
            if out and os.path.exists(out):
                os.unlink(out)


if __name__ == "__main__":
    main()

"""Per-request Python cost of pronghorn's HTTP and WSGI layers, without sockets or an event loop.

    python bench/micro_request.py [--requests N]

Feeds the request wrk sends through HTTPConnection, builds the environ, calls a hello-world app
and frames its response, as the sync worker does for each request, and prints microseconds per
request for each stage. It counts only our code (no syscalls): use it to see what a change in
http/ or wsgi/ saves, then confirm with bench/run.
"""

from __future__ import annotations

import argparse
import io
import time
from typing import Any, Callable

from pronghorn import SERVER_SOFTWARE
from pronghorn.http import (
    EndOfMessage, HeadCache, HTTPConnection, Limits, ResponseFramer, ResponseHeadCache,
)
from pronghorn.wsgi.body import empty_input
from pronghorn.wsgi.environ import EnvironBuilder
from pronghorn.wsgi.exchange import Exchange
from pronghorn.wsgi.forwarded import DEFAULT_SECURE_SCHEME_HEADERS, ForwardedPolicy

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"  # what wrk sends
BROWSER = (b"GET /articles/2026/11/?page=2 HTTP/1.1\r\nHost: example.com\r\n"
           b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/140.0\r\n"
           b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
           b"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n"
           b"Cookie: sessionid=abc123; csrftoken=def456\r\nConnection: keep-alive\r\n\r\n")


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]


def run(raw: bytes, count: int) -> dict[str, float]:
    limits = Limits().normalized()
    builder = EnvironBuilder(("127.0.0.1", 8000), "http", io.StringIO(), False, False,
                             ForwardedPolicy("127.0.0.1,::1", DEFAULT_SECURE_SCHEME_HEADERS))
    conn = HTTPConnection(limits, HeadCache(limits))  # the worker's caches, as a worker makes them
    response_heads = ResponseHeadCache()
    server = SERVER_SOFTWARE.encode()
    date = b"Sat, 28 Nov 2026 12:00:00 GMT"
    peer = ("127.0.0.1", 50000)
    spent = {"parse": 0.0, "environ": 0.0, "app": 0.0, "respond": 0.0}
    clock = time.perf_counter
    out: list[bytes] = []
    for _ in range(count):
        t0 = clock()
        conn.receive_data(raw)
        request = conn.next_event()
        assert type(conn.next_event()) is EndOfMessage
        t1 = clock()
        environ = builder.build(request, empty_input(), peer)  # type: ignore[arg-type]
        t2 = clock()
        framer = ResponseFramer(request.version, request.keep_alive, False,  # type: ignore[union-attr]
                                response_heads)
        exchange = Exchange(framer, out.append, date, server)
        result = hello(environ, exchange.start_response)
        t3 = clock()
        pieces = [exchange.head_bytes(sum(map(len, result)))]
        for piece in result:
            pieces.append(framer.body(piece))
        pieces.append(framer.end())
        b"".join(pieces)
        conn.start_next_cycle()
        t4 = clock()
        spent["parse"] += t1 - t0
        spent["environ"] += t2 - t1
        spent["app"] += t3 - t2
        spent["respond"] += t4 - t3
    return {stage: seconds / count * 1e6 for stage, seconds in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200_000)
    args = parser.parse_args()
    for name, raw in (("wrk's GET", REQUEST), ("a browser's GET", BROWSER)):
        run(raw, 2000)  # warm up
        stages = min((run(raw, args.requests // 5) for _ in range(5)),
                     key=lambda s: sum(s.values()))
        total = sum(stages.values())
        detail = ", ".join(f"{stage} {us:.2f}" for stage, us in stages.items())
        print(f"{name:16} {total:6.2f} µs/request ({detail}); {1e6 / total:,.0f} requests/s of "
              f"Python alone")


if __name__ == "__main__":
    main()

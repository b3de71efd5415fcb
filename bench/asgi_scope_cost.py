"""What the ASGI scope costs per request, made as the asgi worker makes it today: from the WSGI environ.

    python bench/asgi_scope_cost.py [--calls N] [--no-valgrind]

The asgi worker (cycle/asgi_request.py) builds the WSGI environ of each request with the shared
builder (wsgi/environ.py: the trusted-proxy policy and the PROXY header's client applied there),
then makes the scope from the request and that environ (asgi/scope.py). This counts, under
callgrind (apt-get install valgrind), the instructions per request of:

  parse            the request parsed (HTTPConnection), the baseline the others include
  environ          + the WSGI environ (EnvironBuilder.build)
  environ+scope    + the scope from it (http_scope): what the worker does today
  direct scope     + a scope made straight from the request and the peer, no environ: a sketch of
                   the same keys (for a request no trusted proxy vouches for; with one, the
                   forwarded policy would still have to decide the scheme and the client)

for wrk's GET (a repeated head: the environ is a copy of a cached one) and a browser's GET (7
fields, its session cookie one of 1,000: a head of a known shape, its environ the shape's template
with the cookie set, as the worker makes it behind a proxy). Each count is the
difference between a run of 4N and one of N calls, over 3N: no start-up in it. ``--no-valgrind``
times the same in microseconds instead (noisy on a shared machine).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import time
from typing import Any
from urllib.parse import unquote

from pronghorn.asgi.scope import ASGI_VERSION


REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"  # what wrk sends
BROWSER = (b"GET /articles/2026/11/?page=2 HTTP/1.1\r\nHost: example.com\r\n"
           b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/140.0\r\n"
           b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
           b"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n"
           b"Cookie: sessionid=abc123; csrftoken=def456\r\nConnection: keep-alive\r\n\r\n")
VARIANTS = ("parse", "environ", "environ+scope", "direct scope")
HEADS = {"wrk": REQUEST, "browser": BROWSER}


def direct_scope(request: Any, peer: tuple[str, int], scheme: str, server: tuple[str, int] | None,
                 root_path: str) -> dict[str, Any]:
    """The scope's keys as asgi/scope.py makes them, from the request alone (see the docstring)."""
    raw_path: bytes = request.path
    return {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": "1.1" if request.version == (1, 1) else "1.0",
        "method": request.method,
        "scheme": scheme,
        "path": unquote(raw_path.decode("latin-1")) if b"%" in raw_path else raw_path.decode("latin-1"),
        "raw_path": raw_path,
        "query_string": request.query,
        "root_path": root_path,
        "headers": [(name.lower(), value) for name, value in request.headers],
        "client": peer,
        "server": server,
    }


def loop(variant: str, head: str, calls: int) -> float:
    """``calls`` requests through ``variant``; seconds spent."""
    from pronghorn.asgi.scope import http_scope
    from pronghorn.http import EndOfMessage, HeadCache, HTTPConnection, Limits
    from pronghorn.wsgi.body import empty_input
    from pronghorn.wsgi.environ import EnvironBuilder

    raw = HEADS[head]
    limits = Limits().normalized()
    # As the asgi worker's builder for a TCP listener, no trusted proxy (forwarded_allow_ips' default
    # trusts only 127.0.0.1, and this peer is not it).
    builder = EnvironBuilder(("127.0.0.1", 8000), "http", io.StringIO(), False, False, None)
    conn = HTTPConnection(limits, HeadCache(limits))
    peer = ("203.0.113.7", 50000)
    server = ("127.0.0.1", 8000)
    build = builder.build
    with_environ = variant in ("environ", "environ+scope")
    with_scope = variant == "environ+scope"
    direct = variant == "direct scope"
    start = time.perf_counter()
    for number in range(calls):
        if head == "browser":
            # The session cookie varies, as behind a proxy: no head repeats byte for byte, and the
            # worker's caches (one HeadCache, one builder) learn the head's shape, as they do.
            conn.receive_data(raw.replace(b"abc123", b"%06d" % (number % 1000)))
        else:
            conn.receive_data(raw)
        request = conn.next_event()
        assert type(conn.next_event()) is EndOfMessage
        if with_environ:
            environ = build(request, empty_input(), peer)  # type: ignore[arg-type]
            if with_scope:
                http_scope(request, environ, server, "", None)
        elif direct:
            direct_scope(request, peer, "http", server, "")
        conn.start_next_cycle()
    return time.perf_counter() - start


def instructions(variant: str, head: str, calls: int) -> int:
    out = f"/tmp/pronghorn-scope-callgrind-{os.getpid()}.out"
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, __file__,
         "--child", variant, head, str(calls)],
        capture_output=True, env=dict(os.environ, PYTHONHASHSEED="0"), check=False)
    if os.path.exists(out):
        os.unlink(out)
    found = re.search(rb"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(done.stderr.decode(errors="replace")[-2000:])
    return int(found.group(1))


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        variant, head, calls = sys.argv[2], sys.argv[3], int(sys.argv[4])
        loop(variant, head, calls)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--no-valgrind", action="store_true")
    parser.add_argument("--heads", default=",".join(HEADS), help="which requests: wrk, browser (default both)")
    args = parser.parse_args()
    for head in args.heads.split(","):
        costs: dict[str, float] = {}
        for variant in VARIANTS:
            if args.no_valgrind:
                loop(variant, head, args.calls)  # warm up
                costs[variant] = min(loop(variant, head, args.calls * 10) for _ in range(5)) / (args.calls * 10) * 1e6
            else:
                few = instructions(variant, head, args.calls)
                many = instructions(variant, head, args.calls * 4)
                costs[variant] = (many - few) / (args.calls * 3)
        unit = "µs" if args.no_valgrind else "instructions"
        base = costs["parse"]
        parts = ", ".join(f"{variant} +{costs[variant] - base:,.{2 if args.no_valgrind else 0}f}"
                          for variant in VARIANTS[1:])
        print(f"{head:8} parse {base:,.{2 if args.no_valgrind else 0}f} {unit}; {parts}")


if __name__ == "__main__":
    main()

"""Test app for the logging tests (also served by Gunicorn in the byte-for-byte comparison, so it
uses nothing but PEP 3333). The path chooses the behaviour:

- ``/raise``: raises before start_response (the server answers 500);
- ``/print?marker=M``: prints M to stdout and stderr (for --capture-output);
- ``/stream``: a generator body in three pieces, no Content-Length;
- ``/created``: 201 with a body, after reading the request body;
- ``/proxied``: rewrites REMOTE_ADDR in the environ, as a ProxyFix middleware does;
- ``/slow?ms=N``: sleeps N milliseconds before answering (a duration the log must show);
- ``/borrow-logger``: logs through ``logging.getLogger("gunicorn.error")``, as Flask apps do to
  write into Gunicorn's error log;
- anything else: 200 with a small body and an ``X-Out`` response header.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import parse_qs


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/raise":
        raise RuntimeError("logging_app was asked to raise")
    if path == "/print":
        marker = parse_qs(environ["QUERY_STRING"])["marker"][0]
        print(f"stdout says {marker}", flush=True)
        print(f"stderr says {marker}", file=sys.stderr, flush=True)
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _pieces()
    if path == "/borrow-logger":
        logging.getLogger("gunicorn.error").warning("the app borrowed gunicorn.error")
    if path == "/slow":
        time.sleep(int(parse_qs(environ["QUERY_STRING"])["ms"][0]) / 1000)
    if path == "/proxied":
        environ["REMOTE_ADDR"] = "203.0.113.9"
    body = environ["wsgi.input"].read()
    if path == "/created":
        data = b"created %d bytes\n" % len(body)
        start_response("201 Created", [("Content-Type", "text/plain"),
                                       ("Content-Length", str(len(data)))])
        return [data]
    data = b"hello from " + path.encode("latin-1") + b"\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(data))),
                              ("X-Out", " out-value "), ("Connection", "keep-alive")])
    return [data]


def _pieces() -> Iterator[bytes]:
    yield b"one "
    yield b"two "
    yield b"three\n"

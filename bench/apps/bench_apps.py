"""The WSGI applications the benchmark serves, one callable per scenario.

Every server under test loads these same callables (``bench_apps:hello`` and so on), so a
difference in the numbers is the server's. They are deliberately as cheap as the scenario
allows: the point is what the server costs around them.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

StartResponse = Callable[..., Any]
Environ = dict[str, Any]

HELLO = b"Hello, World!"
BIG = b"x" * (100 * 1024)
STREAM_CHUNK = b"y" * 1024
STREAM_CHUNKS = 16
# The harness writes this file before it starts a server; the path comes through the
# environment so that the app and the harness agree without a shared import.
FILE_PATH = os.environ.get("BENCH_FILE", os.path.join(tempfile.gettempdir(), "pronghorn-bench-1mb.bin"))
FILE_SIZE = 1024 * 1024
SLEEP_SECONDS = 0.010


def hello(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(HELLO)))])
    return [HELLO]


def big(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """A 100 KB body in one piece: how well the server writes more than a socket buffer."""
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(BIG)))])
    return [BIG]


def upload(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Reads the whole request body and answers with its length (the client sends 64 KB)."""
    stream = environ["wsgi.input"]
    total = 0
    while True:
        chunk = stream.read(65536)
        if not chunk:
            break
        total += len(chunk)
    body = str(total).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def stream(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
    """A generator without Content-Length: the server must frame it (chunked on HTTP/1.1)."""
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    for _ in range(STREAM_CHUNKS):
        yield STREAM_CHUNK


def file(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """1 MB from a real file through wsgi.file_wrapper, where sendfile can do the work."""
    handle = open(FILE_PATH, "rb")
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(FILE_SIZE))])
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is not None:
        wrapped: Iterable[bytes] = wrapper(handle, 65536)
        return wrapped
    # A server without file_wrapper (PEP 3333 makes it optional) gets the same bytes by blocks.
    return _blocks(handle)


def _blocks(handle: Any) -> Iterator[bytes]:
    with handle:
        while block := handle.read(65536):
            yield block


def sleep(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Waits 10 ms as an app waiting on a database would; under gevent, time.sleep is patched to yield."""
    time.sleep(SLEEP_SECONDS)
    return hello(environ, start_response)

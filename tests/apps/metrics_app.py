"""An app for tests/test_metrics.py: answers by path, so a test can send a known mix of requests.

/missing is a 404, /fail raises (our 500), /pid says which worker answered, /quit answers and
TERMs its own worker (which exits gracefully, well within a heartbeat of the request), /hold?FILE waits (up to
30 s) until FILE exists (a request kept in flight while the test looks at /metrics); anything else
answers 200 with the request body echoed, or "hello". With METRICS_APP_BOOT_FLAG set, importing it
waits (up to 30 s) until that file exists: a worker that is not ready yet."""

from __future__ import annotations

import os
import signal
import time
from typing import Any, Callable, Iterable

_BOOT_FLAG = os.environ.get("METRICS_APP_BOOT_FLAG")
if _BOOT_FLAG:
    _until = time.monotonic() + 30
    while not os.path.exists(_BOOT_FLAG) and time.monotonic() < _until:
        time.sleep(0.01)  # the import's own wait, released by the test


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/missing":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no such thing"]
    if path == "/fail":
        raise RuntimeError("asked to fail")
    if path == "/pid":
        body = str(os.getpid()).encode()
    elif path == "/quit":
        os.kill(os.getpid(), signal.SIGTERM)  # (handled as the response goes out: a graceful stop)
        body = b"bye"
    elif path == "/hold":
        flag = environ["QUERY_STRING"]
        deadline = time.monotonic() + 30
        while not os.path.exists(flag) and time.monotonic() < deadline:
            time.sleep(0.01)  # the app's own wait, released by the test
        body = b"released"
    else:
        body = environ["wsgi.input"].read() or b"hello"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

"""Test app for the stop and recycling tests (tests/test_zero_drop.py).

``/hold?gate=PATH`` says "holding" in the error log, then keeps its worker busy until the file PATH
exists (the test opens the gate once the stop has begun) and, when the config file
``stop_hooks.py`` handed it the worker, until that worker has seen TERM (``worker.alive`` False):
the response is then made after the worker knew it was stopping, whatever the threads' timing.
Every other path answers after a short sleep, with the worker's pid, so that a test sees which
worker served it.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

# The ``worker`` of hooks, set by tests/apps/stop_hooks.py's post_worker_init when it is used.
WORKER: Any = None


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/hold":
        gate = parse_qs(environ.get("QUERY_STRING", ""))["gate"][-1]
        print(f"holding in {os.getpid()}", file=sys.stderr, flush=True)
        while not os.path.exists(gate):
            time.sleep(0.005)  # the app's own work: a busy worker, not the test waiting
        while WORKER is not None and WORKER.alive:
            time.sleep(0.005)  # (the worker's TERM handler runs in another thread for gthread)
    else:
        time.sleep(0.001)
    body = f"served by {os.getpid()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

"""Test app for tests/test_worker_defects.py: the responses that exposed the worker-layer defects of
issue 15 (a client that stops reading, a forked child holding a connection, unsent bodies piling
up, a 100-continue body that never comes).

Every other path answers a small page, so a bystander's request is cheap to serve.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Callable, Iterable, Iterator

StartResponse = Callable[..., Any]

STREAM_PIECE = 64 * 1024
STREAM_PIECES = 1024  # 64 MiB in all: far more than any socket buffer holds
UNSENT_SIZE = 50_000_000


def _query(environ: dict[str, Any]) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(environ.get("QUERY_STRING", "")))


def _json(start_response: StartResponse, payload: Any, *headers: tuple[str, str]) -> list[bytes]:
    data = json.dumps(payload).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(data))), *headers])
    return [data]


def small(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """A small page that says which process served it."""
    return _json(start_response, {"pid": os.getpid(), "path": environ["PATH_INFO"]})


def stream(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """A generator body of STREAM_PIECES pieces of STREAM_PIECE bytes, no Content-Length."""
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    def generate() -> Iterator[bytes]:
        piece = b"s" * STREAM_PIECE
        for _ in range(STREAM_PIECES):
            yield piece

    return generate()


def unsent(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """A 50 MB body as a one-element list, made fresh for each request (as an app that renders a
    big page does), announced in the error log with the request's marker once made."""
    body = b"x" * UNSENT_SIZE
    environ["wsgi.errors"].write(f"unsent body made {_query(environ).get('marker', '')}\n")
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(body)))])
    return [body]


def _unpatched_sleep() -> Callable[[float], None]:
    """time.sleep as it was before gevent patched it: a forked child must block itself, not run
    the worker's hub (and with it the worker's greenlets) in the child."""
    if "gevent" in sys.modules:
        from gevent import monkey

        if monkey.is_module_patched("time"):
            return monkey.get_original("time", "sleep")  # type: ignore[no-any-return]
    return time.sleep


def fork_hold(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Fork a child that keeps every inherited descriptor (the connection's among them) and
    sleeps, as an app that starts a background process without closing its descriptors does; the
    parent answers with Connection: close. The child's pid is in the answer, for the test to kill
    it."""
    child_sleep = _unpatched_sleep()
    child = os.fork()
    if child == 0:
        try:
            child_sleep(30)
        finally:
            os._exit(0)
    return _json(start_response, {"worker": os.getpid(), "child": child},
                 ("Connection", "close"))


def read_body(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Read the whole request body; answer its length."""
    body = environ["wsgi.input"].read()
    return _json(start_response, {"pid": os.getpid(), "length": len(body)})


ROUTES: dict[str, Callable[[dict[str, Any], StartResponse], Iterable[bytes]]] = {
    "/stream": stream,
    "/unsent": unsent,
    "/fork-hold": fork_hold,
    "/read-body": read_body,
}


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    return ROUTES.get(environ["PATH_INFO"], small)(environ, start_response)

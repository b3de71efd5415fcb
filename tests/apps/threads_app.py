"""An app for the gthread tests: requests that meet at a barrier, and requests that hang."""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl

StartResponse = Callable[..., Any]

_barriers: dict[str, threading.Barrier] = {}
_barriers_lock = threading.Lock()


def _query(environ: dict[str, Any]) -> dict[str, str]:
    return dict(parse_qsl(environ.get("QUERY_STRING", "")))


def _text(start_response: StartResponse, text: str, status: str = "200 OK") -> list[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def meet(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """?name=N&parties=P: wait until P calls with this name are inside the app at once. Calls that
    ran one after another would never meet: the barrier breaks after 20 s and the answer is 500."""
    q = _query(environ)
    parties = int(q["parties"])
    with _barriers_lock:
        barrier = _barriers.setdefault(q["name"], threading.Barrier(parties))
    try:
        barrier.wait(20)
    except threading.BrokenBarrierError:
        return _text(start_response, "never met", "500 Internal Server Error")
    return _text(start_response, threading.current_thread().name)


def hang(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Announce the call in the log, then hang for a minute."""
    environ["wsgi.errors"].write(f"hanging {_query(environ).get('marker', '')}\n")
    environ["wsgi.errors"].flush()
    time.sleep(60)
    return _text(start_response, "woke up")


ROUTES: dict[str, Callable[[dict[str, Any], StartResponse], Iterable[bytes]]] = {
    "/meet": meet,
    "/hang": hang,
    "/pid": lambda environ, start_response: _text(start_response, str(os.getpid())),
    "/multithread": lambda environ, start_response: _text(
        start_response, str(environ["wsgi.multithread"])),
}


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    return ROUTES.get(environ["PATH_INFO"], ROUTES["/pid"])(environ, start_response)

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


def spin(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Compute for a minute without yielding: blocks a gevent hub (and holds the GIL's turns)."""
    environ["wsgi.errors"].write("spinning\n")
    environ["wsgi.errors"].flush()
    end = time.monotonic() + 60
    while time.monotonic() < end:
        pass
    return _text(start_response, "done")


def patched(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """What gevent had patched when this module was imported, as JSON."""
    import json

    return _text(start_response, json.dumps(PATCHED_AT_IMPORT))


def _patched_at_import() -> dict[str, Any]:
    import sys

    if "gevent" not in sys.modules:
        return {"gevent": False}
    from gevent import monkey

    return {"gevent": True, "socket": monkey.is_module_patched("socket"),
            "threading": monkey.is_module_patched("threading"),
            "ssl": monkey.is_module_patched("ssl"),
            "sleep_is_gevents": time.sleep.__module__.startswith("gevent")}


PATCHED_AT_IMPORT = _patched_at_import()


ROUTES: dict[str, Callable[[dict[str, Any], StartResponse], Iterable[bytes]]] = {
    "/spin": spin,
    "/patched": patched,
    "/meet": meet,
    "/hang": hang,
    "/pid": lambda environ, start_response: _text(start_response, str(os.getpid())),
    "/multithread": lambda environ, start_response: _text(
        start_response, str(environ["wsgi.multithread"])),
}


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    return ROUTES.get(environ["PATH_INFO"], ROUTES["/pid"])(environ, start_response)

"""Test apps: one WSGI app whose behaviour is chosen by the request path, so that one server can
exercise many PEP 3333 corners. Query parameters tune each behaviour.

Anything a test needs to observe from inside the server process (an iterable's close(), a request
that has started) is written to wsgi.errors, which lands in the server's error log, where the test
waits for the line.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import parse_qs

StartResponse = Callable[..., Any]


def _query(environ: dict[str, Any]) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _json(start_response: StartResponse, payload: Any, status: str = "200 OK") -> list[bytes]:
    data = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data)))])
    return [data]


def _text(start_response: StartResponse, text: str | bytes, status: str = "200 OK") -> list[bytes]:
    data = text.encode() if isinstance(text, str) else text
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]


# -- echo --------------------------------------------------------------------------------------------

def echo(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    body = environ["wsgi.input"].read()
    headers = sorted([k, v] for k, v in environ.items() if k.startswith("HTTP_"))
    return _json(start_response, {
        "method": environ["REQUEST_METHOD"],
        "path": environ["PATH_INFO"],
        "query": environ["QUERY_STRING"],
        "raw_uri": environ.get("RAW_URI"),
        "protocol": environ["SERVER_PROTOCOL"],
        "server_name": environ["SERVER_NAME"],
        "server_port": environ["SERVER_PORT"],
        "content_length": environ.get("CONTENT_LENGTH"),
        "content_type": environ.get("CONTENT_TYPE"),
        "headers": headers,
        "body": body.decode("latin-1"),
        "trailers": environ.get("pronghorn.trailers", []),
    })


def environ_dump(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Every key with its type, and the value of every str one."""
    dump = {}
    for key, value in environ.items():
        entry: dict[str, Any] = {"type": type(value).__name__, "key_type": type(key).__name__}
        if isinstance(value, (str, bool, int)):
            entry["value"] = value
        elif isinstance(value, tuple):
            entry["value"] = list(value)
        dump[key] = entry
    stream_api = {
        "input": [n for n in ("read", "readline", "readlines", "__iter__")
                  if hasattr(environ["wsgi.input"], n)],
        "errors": [n for n in ("write", "writelines", "flush") if hasattr(environ["wsgi.errors"], n)],
    }
    return _json(start_response, {"environ_type": type(environ).__name__, "environ": dump,
                                  "streams": stream_api,
                                  "file_wrapper_callable": callable(environ.get("wsgi.file_wrapper"))})


# -- wsgi.input ------------------------------------------------------------------------------------

def input_ops(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """?ops=read:3,readline,readline:2,readlines,iter,read — each op's result, in order."""
    stream = environ["wsgi.input"]
    results: list[Any] = []
    for op in _query(environ).get("ops", "read").split(","):
        name, _, arg = op.partition(":")
        if name == "read":
            value: Any = stream.read(int(arg)) if arg else stream.read()
        elif name == "readline":
            value = stream.readline(int(arg)) if arg else stream.readline()
        elif name == "readlines":
            value = stream.readlines(int(arg)) if arg else stream.readlines()
        elif name == "iter":
            value = list(stream)
        else:
            raise ValueError(f"unknown op {op!r}")
        if isinstance(value, list):
            results.append([v.decode("latin-1") for v in value])
        else:
            if type(value) is not bytes:
                raise TypeError(f"{op} returned {type(value).__name__}")
            results.append(value.decode("latin-1"))
    return _json(start_response, results)


def input_digest(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Read a (large) body in 64 KiB pieces; answer its length and sha256."""
    import hashlib

    digest = hashlib.sha256()
    size = 0
    stream = environ["wsgi.input"]
    while True:
        piece = stream.read(65536)
        if not piece:
            break
        size += len(piece)
        digest.update(piece)
    return _json(start_response, {"size": size, "sha256": digest.hexdigest(),
                                  "content_length": environ.get("CONTENT_LENGTH")})


def ignore_body(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    return _text(start_response, "ignored the body")


# -- wsgi.errors -----------------------------------------------------------------------------------

def errors(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    marker = _query(environ)["marker"]
    stream = environ["wsgi.errors"]
    stream.write(f"errors-write {marker}\n")
    stream.writelines([f"errors-writelines {marker}\n"])
    stream.flush()
    return _text(start_response, "logged")


# -- response framing ------------------------------------------------------------------------------

def content_length(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """?declared=N&actual=M[&stream=1]: announce N bytes, produce M."""
    q = _query(environ)
    declared, actual = int(q["declared"]), int(q["actual"])
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(declared))])
    body = b"".join(b"%d" % (i % 10) for i in range(actual))
    if q.get("stream"):
        return iter([body[: actual // 2], body[actual // 2:]])
    return [body]


def stream(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """A generator body with no Content-Length: the server must frame it. ``count=N&size=K``
    streams N pieces of K bytes instead, piece i made of its own number over and over (so a piece
    lost, repeated or reordered shows)."""
    query = _query(environ)
    start_response("200 OK", [("Content-Type", "text/plain")])
    if "count" in query:
        count, size = int(query["count"]), int(query["size"])
        return ((b"%08d" % i) * (size // 8) for i in range(count))
    pieces = query.get("pieces", "alpha,beta,gamma").split(",")

    def generate() -> Iterator[bytes]:
        for piece in pieces:
            yield piece.encode()
            yield b""  # an empty piece must not end a chunked body early

    return generate()


def status(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """?code=204: a status that carries no body, with a body the server must not send."""
    code = _query(environ)["code"]
    start_response(f"{code} Whatever", [("Content-Type", "text/plain")])
    return iter([b"this body must not be sent"])


def bad_header(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    kind = _query(environ)["kind"]
    name, value = {
        "value-crlf": ("X-Ok", "a\r\nX-Injected: yes"),
        "value-lf": ("X-Ok", "a\nX-Injected: yes"),
        "value-cr": ("X-Ok", "a\rX-Injected: yes"),
        "value-nul": ("X-Ok", "a\x00b"),
        "name-crlf": ("X-Injected: yes\r\nX-Ok", "a"),
        "name-lf": ("X-Bad\nX-Injected", "a"),
        "name-nul": ("X-Bad\x00", "a"),
        "name-cr": ("X-Bad\r", "a"),
    }[kind]
    start_response("200 OK", [("Content-Type", "text/plain"), (name, value)])
    return [b"must not be sent"]


def write_callable(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """PEP 3333's write(): pieces pushed before the iterable is returned."""
    q = _query(environ)
    headers = [("Content-Type", "text/plain")]
    if q.get("cl"):
        headers.append(("Content-Length", q["cl"]))
    write = start_response("200 OK", headers)
    write(b"one,")
    write(b"two,")
    if q.get("generator"):
        return iter([b"three,", b"four"])
    return [b"three,", b"four"]


# -- files -----------------------------------------------------------------------------------------

def file(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """?path=P[&offset=N][&bytesio=1]: the file through wsgi.file_wrapper."""
    q = _query(environ)
    handle: Any = open(q["path"], "rb")
    if q.get("bytesio"):
        with handle:
            handle = io.BytesIO(handle.read())
    if q.get("offset"):
        handle.seek(int(q["offset"]))
    headers = [("Content-Type", "application/octet-stream")]
    if q.get("cl"):
        headers.append(("Content-Length", q["cl"]))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](handle, 8192)


# -- errors and start_response rules ---------------------------------------------------------------

def raise_error(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    raise RuntimeError("boom " + _query(environ).get("marker", ""))


def raise_after_headers(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    q = _query(environ)
    headers = [("Content-Type", "text/plain")]
    if q.get("cl"):
        headers.append(("Content-Length", q["cl"]))
    start_response("200 OK", headers)

    def generate() -> Iterator[bytes]:
        yield b"first piece;"
        raise RuntimeError("late boom " + q.get("marker", ""))

    return generate()


def exc_info_before(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Headers not sent yet: start_response with exc_info replaces the response."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "yes")])
    try:
        raise ValueError("changed my mind")
    except ValueError:
        start_response("503 Changed Mind", [("Content-Type", "text/plain")], sys.exc_info())
    return [b"replaced response"]


def exc_info_after(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Headers already sent: start_response with exc_info must re-raise (and the connection ends)."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"already sent;")
    try:
        raise ValueError("too late " + _query(environ).get("marker", ""))
    except ValueError:
        start_response("500 Oops", [("Content-Type", "text/plain")], sys.exc_info())
    return [b"must never be reached"]


def start_twice(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    start_response("201 Created", [("Content-Type", "text/plain")])  # no exc_info: an error
    return [b"must not be sent"]


def no_start(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    return [b"start_response was never called"]


# -- close() ---------------------------------------------------------------------------------------

class ClosingIterable:
    """An iterable whose close() is observable. Deliberately not a generator: a generator's cleanup
    also runs on garbage collection, which would hide a server that forgets to call close()."""

    def __init__(self, environ: dict[str, Any], marker: str, mode: str) -> None:
        self.errors = environ["wsgi.errors"]
        self.marker = marker
        self.mode = mode
        self.count = 0

    def __iter__(self) -> Any:
        if self.mode == "list":  # as Django's HttpResponse: an iterator over its list of content
            return iter([b"piece1;", b"piece2;"])
        if self.mode == "iter-raises":
            raise RuntimeError("no iterator " + self.marker)
        return self

    def __next__(self) -> bytes:
        self.count += 1
        if self.mode == "infinite":
            if self.count == 1:
                self.errors.write(f"streaming started {self.marker}\n")
            return b"x" * 65536
        if self.mode == "raise" and self.count == 2:
            raise RuntimeError("iteration failed " + self.marker)
        if self.count > 3:
            raise StopIteration
        return b"piece%d;" % self.count

    def close(self) -> None:
        self.errors.write(f"iterable closed {self.marker}\n")


def closing(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    q = _query(environ)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ClosingIterable(environ, q["marker"], q.get("mode", "normal"))


# -- timing and concurrency ------------------------------------------------------------------------

def sleep(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Announce the call in the error log, then take a while: a request in flight."""
    q = _query(environ)
    environ["wsgi.errors"].write(f"sleeping {q.get('marker', '')}\n")
    time.sleep(float(q.get("seconds", "0.5")))
    return _text(start_response, "slept well")


_active = 0
_max_active = 0
_lock = threading.Lock()


def concurrency(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """How many calls of this app ran at the same time in this process, at most, so far."""
    global _active, _max_active
    with _lock:
        _active += 1
        _max_active = max(_max_active, _active)
    try:
        time.sleep(float(_query(environ).get("seconds", "0.2")))
    finally:
        with _lock:
            _active -= 1
    return _json(start_response, {"pid": os.getpid(), "max_active": _max_active})


_served = 0


def served(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Take ``seconds`` (a slow page), then say how many calls of this endpoint this process has
    begun so far, this one included: the order in which the worker ran them."""
    global _served
    with _lock:
        _served += 1
        number = _served
    time.sleep(float(_query(environ).get("seconds", "0.005")))
    return _json(start_response, {"served": number})


def pid(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    return _text(start_response, str(os.getpid()))


def spaced_header(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """A header value with whitespace around it, as Django's Set-Cookie values have."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", " 2 "),
                              ("Set-Cookie", " sessionid=abc; Path=/ ")])
    return [b"ok"]


def event_loop(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The older way a sync view runs a coroutine: the thread's event loop, run until done."""
    import asyncio

    async def compute() -> str:
        await asyncio.sleep(0)
        return "ran in the thread's event loop"

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        result = asyncio.get_event_loop().run_until_complete(compute())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    return _text(start_response, result)


def asyncio_run(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """What a sync view does when it needs a coroutine's result (asgiref's async_to_sync does the
    same on a thread of its own when this thread has a running loop)."""
    import asyncio

    async def compute() -> str:
        await asyncio.sleep(0)
        return "ran in asyncio.run"

    return _text(start_response, asyncio.run(compute()))


ROUTES: dict[str, Callable[[dict[str, Any], StartResponse], Iterable[bytes]]] = {
    "/environ": environ_dump,
    "/input": input_ops,
    "/digest": input_digest,
    "/ignore-body": ignore_body,
    "/errors": errors,
    "/cl": content_length,
    "/stream": stream,
    "/status": status,
    "/bad-header": bad_header,
    "/write": write_callable,
    "/file": file,
    "/raise": raise_error,
    "/raise-after-headers": raise_after_headers,
    "/exc-info-before": exc_info_before,
    "/exc-info-after": exc_info_after,
    "/start-twice": start_twice,
    "/no-start": no_start,
    "/closing": closing,
    "/sleep": sleep,
    "/concurrency": concurrency,
    "/pid": pid,
    "/asyncio-run": asyncio_run,
    "/spaced-header": spaced_header,
    "/event-loop": event_loop,
    "/served": served,
}


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    handler = ROUTES.get(environ["PATH_INFO"], echo)
    return handler(environ, start_response)

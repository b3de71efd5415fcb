"""Test app wrapped in wsgiref.validate.validator: any PEP 3333 fault the server commits raises
(warnings are turned into errors) and shows up as a 500 or a traceback in the server's log."""

from __future__ import annotations

import warnings
import wsgiref.validate
from typing import Any, Callable, Iterable, Iterator

warnings.simplefilter("error", wsgiref.validate.WSGIWarning)


def _inner(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    stream = environ["wsgi.input"]
    path = environ["PATH_INFO"]
    # The validator's input wrapper insists on read(n); exercise each reading method.
    if path == "/lines":
        first = stream.readline()
        rest = b"".join(stream.readlines())
        body = first + rest
    elif path == "/iterate":
        body = b"".join(stream)
    else:
        pieces = []
        while True:
            piece = stream.read(7)
            if not piece:
                break
            pieces.append(piece)
        body = b"".join(pieces)
    environ["wsgi.errors"].write(f"validated {environ['REQUEST_METHOD']} {path}\n")
    environ["wsgi.errors"].flush()
    reply = b"body=" + body
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(reply)
        return []
    if path == "/generator":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def generate() -> Iterator[bytes]:
            yield reply[:3]
            yield reply[3:]

        return generate()
    if path == "/no-content":
        start_response("204 No Content", [])
        return []
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(reply)))])
    return [reply]


application = wsgiref.validate.validator(_inner)

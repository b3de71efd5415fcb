"""The ASGI twin of echo.py: what the server handed the application, as JSON, in echo.py's shape
(headers in the WSGI environ's form), so that the conformance and smuggling suites check the asgi
worker with the same expectations they have for the WSGI workers."""

from __future__ import annotations

import json
from typing import Any


def _environ_headers(scope: dict[str, Any], body: bytes) -> list[list[str]]:
    """The request's fields as a WSGI server maps them (PEP 3333): names with "_" left out (they
    could pose as their "-" twins), repeated fields joined, Cookie with "; "; a chunked body's
    decoded length as CONTENT_LENGTH (echo.py's server says it, the body being complete)."""
    environ: dict[str, str] = {}
    chunked = False
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").upper()
        value = raw_value.decode("latin-1")
        if name == "TRANSFER-ENCODING" and value.lower().rsplit(",", 1)[-1].strip() == "chunked":
            chunked = True
        if "_" in name:
            continue
        key = name.replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        if key in environ:
            environ[key] += ("; " if key == "HTTP_COOKIE" else ",") + value
        else:
            environ[key] = value
    if chunked:
        environ["CONTENT_LENGTH"] = str(len(body))
    return sorted([key, value] for key, value in environ.items())


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    pieces = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return  # (the client has gone, or its body was refused)
        pieces.append(message["body"])
        if not message.get("more_body"):
            break
    body = b"".join(pieces)
    raw_path = scope["raw_path"].decode("latin-1")
    query = scope["query_string"].decode("latin-1")
    payload = {
        "method": scope["method"],
        "path": scope["path"],
        "query": query,
        "raw_uri": raw_path + ("?" + query if query else ""),
        "protocol": "HTTP/" + scope["http_version"],
        "script_name": scope["root_path"],
        "remote_addr": (scope.get("client") or [""])[0],
        "url_scheme": scope["scheme"],
        "headers": _environ_headers(scope, body),
        "body": body.decode("latin-1"),
    }
    data = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})

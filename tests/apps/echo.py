"""Test apps: echo what the server handed the application, as JSON."""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = environ["wsgi.input"].read()
    headers = [[k, v] for k, v in environ.items() if k.startswith("HTTP_")]
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if key in environ:
            headers.append([key, environ[key]])
    payload = {
        "method": environ["REQUEST_METHOD"],
        "path": environ["PATH_INFO"],
        "query": environ["QUERY_STRING"],
        "raw_uri": environ.get("RAW_URI"),
        "protocol": environ["SERVER_PROTOCOL"],
        "script_name": environ["SCRIPT_NAME"],
        "server_name": environ["SERVER_NAME"],
        "server_port": environ["SERVER_PORT"],
        "remote_addr": environ["REMOTE_ADDR"],
        "url_scheme": environ["wsgi.url_scheme"],
        "headers": sorted(headers),
        "body": body.decode("latin-1"),
        "trailers": environ.get("pronghorn.trailers", []),
    }
    data = json.dumps(payload).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(data)))])
    return [data]

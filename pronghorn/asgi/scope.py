"""The scope of an HTTP request (ASGI HTTP connection scope, spec 2.4).

It is made from the request and from the WSGI environ the shared builder made for it: that environ
already holds what the trusted-proxy policy (wsgi/forwarded.py) and the PROXY protocol decided
about the scheme and the client, so both interfaces believe exactly the same peers. The scope's
``client`` is REMOTE_ADDR/REMOTE_PORT, its ``scheme`` is wsgi.url_scheme.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}


def http_scope(request: Any, environ: dict[str, Any], server: tuple[str, int] | None,
               root_path: str, state: dict[str, Any] | None) -> dict[str, Any]:
    """``request``: the HTTP core's Request; ``environ``: the WSGI environ built for it;
    ``server``: the listener's (host, port), None on a unix socket; ``state``: the lifespan's
    state, of which each request gets a shallow copy (so one request's changes reach no other)."""
    raw_path: bytes = request.path
    port = environ.get("REMOTE_PORT")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": "1.1" if request.version == (1, 1) else "1.0",
        "method": request.method,
        "scheme": environ["wsgi.url_scheme"],
        # Percent-decoded as UTF-8 (what the spec asks, as uvicorn does), the root path not in it
        # (as Gunicorn 27 has it).
        "path": unquote(raw_path.decode("latin-1")) if b"%" in raw_path
        else raw_path.decode("latin-1"),
        "raw_path": raw_path,
        "query_string": request.query,
        "root_path": root_path,
        # Names lower-cased, as the spec asks; every field, in order.
        "headers": [(name.lower(), value) for name, value in request.headers],
        "client": (environ["REMOTE_ADDR"], int(port)) if port else None,
        "server": server,
    }
    if state is not None:
        scope["state"] = state.copy()
    return scope


def websocket_scope(request: Any, environ: dict[str, Any], server: tuple[str, int] | None,
                    root_path: str, state: dict[str, Any] | None,
                    subprotocols: list[str]) -> dict[str, Any]:
    """The scope of a WebSocket handshake (ASGI WebSocket connection scope): the HTTP scope's
    scheme (ws or wss from wsgi.url_scheme, so the proxy policy decides it as for HTTP), client,
    server, path and headers, the subprotocols the client offered, and the denial extension."""
    scope = http_scope(request, environ, server, root_path, state)
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
    del scope["method"]
    scope["subprotocols"] = subprotocols
    scope["extensions"] = {"websocket.http.response": {}}
    return scope

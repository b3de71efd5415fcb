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
# The response extensions the asgi worker's HTTP send takes (cycle/asgi_request.py). Each scope
# gets a copy (an app may add to its own); the empty dicts inside, the extensions' parameters
# (none), are shared: building them per request cost ~2,000 instructions of a hello's ~100,000.
_EXTENSIONS: dict[str, Any] = {"http.response.trailers": {}, "http.response.pathsend": {},
                               "http.response.zerocopysend": {}}


def http_scope(request: Any, environ: dict[str, Any], server: tuple[str, int] | None,
               root_path: str, state: dict[str, Any] | None) -> dict[str, Any]:
    """``request``: the HTTP core's Request; ``environ``: the WSGI environ built for it;
    ``server``: the listener's (host, port), None on a unix socket; ``state``: the lifespan's
    state, of which each request gets a shallow copy (so one request's changes reach no other)."""
    # (an asterisk-form or authority-form target has no path: the target is what there is)
    raw_path: bytes = request.path or request.target
    port = environ.get("REMOTE_PORT")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": "1.1" if request.version == (1, 1) else
        "2" if request.version == (2, 0) else "1.0",
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
        "extensions": _EXTENSIONS.copy(),
    }
    if state is not None:
        scope["state"] = state.copy()
    return scope


class HTTPScopes:
    """Makes one worker's HTTP scopes as ``http_scope`` does, for less: what a scope takes from
    the request alone is remembered for the last request the HTTP core shared (a repeated head,
    see pronghorn/http/cache.py: the same immutable Request object again), so a keep-alive client
    repeating its head gets a copy of that template, with its own headers list, extensions dict,
    state copy, scheme and client. One entry, holding that Request: bounded, and a hit (by
    identity) is always the same request's."""

    __slots__ = ("root_path", "_last", "_client", "_peer")

    def __init__(self, root_path: str) -> None:
        self.root_path = root_path
        # (shared request, its listener's server tuple, the scope's keys from them alone)
        self._last: tuple[Any, Any, dict[str, Any]] = (None, None, {})
        # (REMOTE_ADDR, REMOTE_PORT, the client tuple): a connection's requests share those strs.
        self._client: tuple[Any, Any, tuple[str, int] | None] = (None, None, None)
        # (the last peer taken as it is, its client tuple)
        self._peer: tuple[Any, tuple[str, int] | None] = (None, None)

    def make(self, request: Any, environ: dict[str, Any], server: tuple[str, int] | None,
             state: dict[str, Any] | None) -> dict[str, Any]:
        """``http_scope(request, environ, server, root_path, state)``."""
        addr = environ["REMOTE_ADDR"]
        port = environ.get("REMOTE_PORT")
        known = self._client
        if known[0] is not addr or known[1] is not port:
            known = self._client = (addr, port, (addr, int(port)) if port else None)
        return self.make_direct(request, environ["wsgi.url_scheme"], known[2], server, state)

    def make_direct(self, request: Any, scheme: str, client: tuple[str, int] | None,
                    server: tuple[str, int] | None,
                    state: dict[str, Any] | None) -> dict[str, Any]:
        """The same scope from the scheme and client that the environ builder decided (see
        EnvironBuilder.scheme_without_environ), without an environ."""
        last = self._last
        if last[0] is request and last[1] is server:
            scope = last[2].copy()
            scope["headers"] = scope["headers"].copy()  # (the app may change its own list)
        else:
            scope = _request_keys(request, server, self.root_path)
            if request.shared:
                template = scope.copy()
                template["headers"] = scope["headers"].copy()
                self._last = (request, server, template)
        scope["scheme"] = scheme
        scope["client"] = client
        scope["extensions"] = _EXTENSIONS.copy()
        if state is not None:
            scope["state"] = state.copy()
        return scope

    def client_of(self, peer: Any) -> tuple[str, int] | None:
        """The scope's client for a peer the environ would take as it is: REMOTE_ADDR and
        REMOTE_PORT are its address (None for a unix socket's, which has no port)."""
        known = self._peer
        if known[0] is not peer:
            client = None
            if isinstance(peer, tuple):
                port = str(peer[1])  # (as the environ's REMOTE_PORT, read back as the scope's)
                client = (peer[0], int(port)) if port else None
            known = self._peer = (peer, client)
        return known[1]


def _request_keys(request: Any, server: tuple[str, int] | None,
                  root_path: str) -> dict[str, Any]:
    """The scope's keys that come from the request and the listener alone."""
    raw_path: bytes = request.path or request.target
    return {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": "1.1" if request.version == (1, 1) else
        "2" if request.version == (2, 0) else "1.0",
        "method": request.method,
        "scheme": None,
        # Percent-decoded as UTF-8 (what the spec asks, as uvicorn does), the root path not in it
        # (as Gunicorn 27 has it).
        "path": unquote(raw_path.decode("latin-1")) if b"%" in raw_path
        else raw_path.decode("latin-1"),
        "raw_path": raw_path,
        "query_string": request.query,
        "root_path": root_path,
        # Names lower-cased, as the spec asks; every field, in order.
        "headers": [(name.lower(), value) for name, value in request.headers],
        "client": None,
        "server": server,
    }


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

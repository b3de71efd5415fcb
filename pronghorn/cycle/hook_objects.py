"""The ``req`` and ``resp`` that Gunicorn-style code receives: the ``pre_request(worker, req)`` and
``post_request(worker, req, environ, resp)`` hooks, and a custom logger's
``access(resp, req, environ, request_time)`` (``--logger-class``).

They carry the attributes of Gunicorn 27's ``http.message.Request`` and ``http.wsgi.Response``, with
the same meanings, made from what the request cycle already holds. Nothing here runs unless a hook or
a custom logger is configured: the cycle makes them on first need (``hook_request``), and one request
has one ``req``, the same object in pre_request, access and post_request, so a hook may leave
something on it for the next one to read, as it can under Gunicorn.
"""

from __future__ import annotations

from typing import Any

from .. import SERVER_SOFTWARE
from ..http.uwsgi import UWSGIConnection

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                         "te", "trailers", "transfer-encoding", "upgrade"})


def _fields(fields: Any) -> list[tuple[str, str]]:
    """Header fields as Gunicorn keeps them: upper-case names, values latin-1 without the
    whitespace around them; names with '_' are dropped (so are they before the app)."""
    return [(name.decode("latin-1").upper(), value.decode("latin-1").strip(" \t"))
            for name, value in fields if b"_" not in name]


def _proxy_info(header: Any) -> dict[str, Any]:
    """Gunicorn's ``proxy_protocol_info`` for a parsed PROXY header."""
    source, destination = header.source, header.destination
    if source is None:
        kind = "LOCAL" if header.version == 2 else "UNKNOWN"
    else:
        kind = ("TCP6" if ":" in source[0] else "TCP4")
    return {
        "proxy_protocol": kind,
        "client_addr": source[0] if source else None,
        "client_port": source[1] if source else None,
        "proxy_addr": destination[0] if destination else None,
        "proxy_port": destination[1] if destination else None,
    }


class HookRequest:
    """Gunicorn's ``req``: method, uri, path, query, fragment, version, headers, trailers, body,
    scheme, peer_addr, remote_addr, proxy_protocol_info, must_close, req_number, should_close().

    ``body`` is the request body stream the app reads as ``wsgi.input`` (the very same object, as
    under Gunicorn): a hook that reads it leaves less for the app."""

    def __init__(self, job: Any, closing: bool) -> None:
        request = job.request
        target: bytes = request.target
        self.method: str = request.method
        self.uri = target.decode("latin-1")
        self.path = request.path.decode("latin-1")
        self.query = request.query.decode("latin-1")
        # (the HTTP core drops a fragment; Gunicorn's parser keeps it here)
        self.fragment = target.partition(b"#")[2].decode("latin-1")
        self.version: tuple[int, int] = request.version
        self.headers = _fields(request.headers)
        self._job = job
        environ = job.environ
        self.scheme: str = environ.get("wsgi.url_scheme", "http") if environ else "http"
        policy = job.policy
        if policy is not None:
            if policy.conn.__class__ is UWSGIConnection:
                # Gunicorn's req.path is the PATH_INFO var as nginx sent it (http/uwsgi.py
                # escaped its "%" for the environ's one decoding).
                self.path = self.path.replace("%25", "%")
            peer = policy.socket_peer
            self.req_number: int = policy.served + 1
            header = policy.proxy_header
            # As Gunicorn: only the connection's first request carries the PROXY header's facts.
            self.proxy_protocol_info: dict[str, Any] | None = (
                _proxy_info(header) if header is not None and self.req_number == 1 else None)
        else:
            peer = job.peer
            self.req_number = 1
            self.proxy_protocol_info = None
        # The socket's peer: (host, port), or '' on a unix socket (what accept() gives Gunicorn).
        self.peer_addr: Any = peer if peer is not None else ""
        self.remote_addr: Any = self.peer_addr
        self.must_close = closing
        self._keep_alive: bool = request.keep_alive

    @property
    def body(self) -> Any:
        environ = self._job.environ
        if environ is not None:
            return environ.get("wsgi.input", self._job.body)
        return self._job.body

    @property
    def trailers(self) -> list[tuple[str, str]]:
        """A chunked body's trailer fields, once the body has been read (as under Gunicorn)."""
        fields = self._job.trailers or getattr(self.body, "trailers", None) or ()
        return _fields(fields)

    def force_close(self) -> None:
        self.must_close = True

    def should_close(self) -> bool:
        return self.must_close or self.method == "CONNECT" or not self._keep_alive

    def __repr__(self) -> str:
        return f"<HookRequest {self.method} {self.uri}>"


class HookResponse:
    """Gunicorn's ``resp``: status, status_code, headers (the app's, without hop-by-hop ones),
    version (the Server header's text), chunked, sent (body bytes written), response_length (the
    app's Content-Length, or None), headers_sent, must_close, should_close(), req.

    Read after the response (post_request, access): the values are final then."""

    def __init__(self, job: Any, req: HookRequest) -> None:
        exchange = job.exchange
        framer = exchange.framer
        self.req = req
        self.version = SERVER_SOFTWARE
        self.headers_sent: bool = exchange.head_sent
        if exchange.head_sent:
            self.status: str | None = exchange.status
            self.status_code: int | None = framer.status_code
        else:  # the app failed before its head went out: the client got our 500 page
            self.status = "500 Internal Server Error"
            self.status_code = 500
        headers: list[tuple[str, str]] = []
        length: int | None = None
        upgrade = False
        for name, value in exchange.headers or ():
            value = value.strip(" \t")
            lowered = name.lower()
            if lowered == "content-length":
                try:
                    length = int(value)
                except ValueError:
                    pass
            elif lowered in _HOP_BY_HOP:
                if lowered == "upgrade" and value.lower() == "websocket":
                    upgrade = True
                    headers.append((name, value))
                continue
            headers.append((name, value))
        self.headers = headers
        self.response_length = length
        self.upgrade = upgrade
        self.chunked: bool = framer.chunked
        self.sent: int = framer.sent
        self.must_close = not framer.keep_alive

    def force_close(self) -> None:
        self.must_close = True

    def should_close(self) -> bool:
        return self.must_close or self.req.should_close()

    def __repr__(self) -> str:
        return f"<HookResponse {self.status}>"

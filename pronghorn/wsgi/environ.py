"""Build the PEP 3333 environ from a parsed request.

Per worker we precompute everything that does not change between requests (the wsgi.* keys, the
server software) and cache header-name → environ-key mappings, so a request costs one dict copy and a
loop over its headers.
"""

from __future__ import annotations

import os
from typing import Any, BinaryIO
from urllib.parse import unquote_to_bytes

from .. import SERVER_SOFTWARE
from ..http import Request
from ..http.events import Fields
from .body import DeferredInput, trailer_list
from .file_wrapper import FileWrapper
from .forwarded import ForwardedPolicy

_HEADER_KEY_CACHE: dict[bytes, str | None] = {}
_CACHE_LIMIT = 2048


def _environ_key(name: bytes) -> str | None:
    key = _HEADER_KEY_CACHE.get(name)
    if key is None and name not in _HEADER_KEY_CACHE:
        # A name with "_" would collide with its "-" twin once mapped (X_Forwarded_For posing as
        # X-Forwarded-For): such headers are dropped, as Gunicorn does by default.
        if b"_" in name:
            key = None
        else:
            upper = name.decode("latin-1").upper().replace("-", "_")
            key = upper if upper in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + upper
        if len(_HEADER_KEY_CACHE) < _CACHE_LIMIT:
            _HEADER_KEY_CACHE[name] = key
    return key


class EnvironBuilder:
    """Makes environs for one listener: its address fills SERVER_NAME/PORT when there is no Host."""

    def __init__(self, server_address: Any, url_scheme: str, errors: Any, multiprocess: bool,
                 multithread: bool = False, forwarded: ForwardedPolicy | None = None) -> None:
        self.forwarded = forwarded
        if isinstance(server_address, tuple):
            self.server_name, self.server_port = str(server_address[0]), str(server_address[1])
        else:
            self.server_name, self.server_port = str(server_address or "localhost"), ""
        self.url_scheme = url_scheme
        self.default_port = "443" if url_scheme == "https" else "80"
        # Gunicorn takes SCRIPT_NAME from the process environment; so do we.
        script_name = os.environ.get("SCRIPT_NAME", "").rstrip("/")
        self.script_name = script_name
        self._script_name_b = script_name.encode("latin-1")
        self.base: dict[str, Any] = {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": url_scheme,
            "wsgi.errors": errors,
            "wsgi.multithread": multithread,
            "wsgi.multiprocess": multiprocess,
            "wsgi.run_once": False,
            "wsgi.file_wrapper": FileWrapper,
            "wsgi.input_terminated": True,
            "SERVER_SOFTWARE": SERVER_SOFTWARE,
            "SCRIPT_NAME": script_name,
        }
        # Host header → (HTTP_HOST, SERVER_NAME, SERVER_PORT): a server sees few distinct hosts.
        self._hosts: dict[bytes, tuple[str, str, str]] = {}
        # The peer of the last request (a connection's requests share its tuple) with its strings,
        # as one tuple: gthread builds environs on several threads, and one attribute read is atomic.
        self._last_peer: tuple[Any, tuple[str, str]] = (None, ("", ""))
        # id(shared request) → (that request, the environ keys made from it alone, whether it has
        # any header the forwarded policy reads).
        self._from_shared: dict[int, tuple[Request, dict[str, Any], bool]] = {}

    def build(self, request: Request, body: BinaryIO | DeferredInput, peer: Any,
              trailers: Fields = ()) -> dict[str, Any]:
        """The environ for ``request``. ``trailers``: the fields its chunked body ended with (the
        EndOfMessage's), once the body is complete; a body still to come (DeferredInput) sets them
        when the app has read it."""
        forwarded = self.forwarded
        if request.shared:
            # The same head as before (see HTTPConnection): what the environ takes from the request
            # alone was made then; copy it.
            kept = self._from_shared.get(id(request))
            if kept is not None and kept[0] is request:
                environ = kept[1].copy()
                if not kept[2]:
                    forwarded = None  # none of its headers: nothing for the policy to do
            else:
                environ = self._from_request(request, body)
                if len(self._from_shared) >= 256:
                    self._from_shared.clear()
                # The entry holds the request, so its id is not reused while the entry lives.
                self._from_shared[id(request)] = (
                    request, environ.copy(),
                    forwarded is not None and forwarded.consulted_by(environ))
        else:
            environ = self._from_request(request, body)
            if request.chunked:
                if trailers:
                    environ["pronghorn.trailers"] = trailer_list(trailers)
                elif isinstance(body, DeferredInput):
                    body.environ = environ  # (the trailers arrive with the body)
        environ["wsgi.input"] = body
        last = self._last_peer
        if last[0] is not peer:
            last = self._last_peer = (
                peer, (peer[0], str(peer[1])) if isinstance(peer, tuple) else ("", ""))
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = last[1]
        if forwarded is not None:
            # May raise HTTPError(400): contradictory scheme headers from a trusted proxy.
            forwarded.apply(environ, peer)
        return environ

    def _from_request(self, request: Request, body: BinaryIO | DeferredInput) -> dict[str, Any]:
        """The environ's keys that depend on the request alone (and, for a chunked body, its
        length): no peer, no wsgi.input."""
        environ = self.base.copy()
        path = request.path
        if b"%" in path:
            path = unquote_to_bytes(path)
        script_b = self._script_name_b
        if script_b and (path == script_b or path.startswith(script_b + b"/")):
            path = path[len(script_b):]
        environ["REQUEST_METHOD"] = request.method
        environ["PATH_INFO"] = path.decode("latin-1")
        environ["QUERY_STRING"] = request.query.decode("latin-1")
        environ["RAW_URI"] = request.target.decode("latin-1")
        environ["SERVER_PROTOCOL"] = "HTTP/1.1" if request.version == (1, 1) else "HTTP/1.0"

        for name, value in request.headers:
            key = _environ_key(name)
            if key is None:
                continue
            text = value.decode("latin-1")
            if key in environ:
                # Repeated fields are one comma-separated list (RFC 9110 5.3); Cookie is joined with
                # "; " because that is its own list syntax.
                environ[key] += ("; " if key == "HTTP_COOKIE" else ",") + text
            else:
                environ[key] = text
        # A buffered body is complete by the time the app runs, so its length is known even when
        # it came chunked; a deferred one (Expect: 100-continue) is not, and gets no length.
        if request.chunked and not isinstance(body, DeferredInput):
            environ["CONTENT_LENGTH"] = str(_length_of(body))
        if request.host is not None:
            known = self._hosts.get(request.host)
            if known is None:
                host = request.host.decode("latin-1")
                name, port = _split_host(host)
                known = (host, name, port or self.default_port)
                if len(self._hosts) >= 64:
                    self._hosts.clear()
                self._hosts[request.host] = known
            environ["HTTP_HOST"], environ["SERVER_NAME"], environ["SERVER_PORT"] = known
        else:
            environ["SERVER_NAME"] = self.server_name
            environ["SERVER_PORT"] = self.server_port
        return environ


def _split_host(host: str) -> tuple[str, str]:
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[:end + 1], host[end + 1:]
        return name, rest[1:] if rest.startswith(":") else ""
    name, _, port = host.partition(":")
    return name, port


def _length_of(body: BinaryIO) -> int:
    position = body.tell()
    body.seek(0, 2)
    size = body.tell()
    body.seek(position)
    return size


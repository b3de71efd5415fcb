"""Build the PEP 3333 environ from a parsed request.

Per listener we precompute everything that does not change between requests (the wsgi.* keys, the
server software) and remember header-name → environ-key mappings, so a request costs one dict copy
and a loop over its headers; for a head the HTTP core shares (a repeated one), the loop ran once.

What the builder remembers comes from client bytes, so each table is a BoundedCache (see
pronghorn/http/cache.py), bounded in bytes, owned by the builder, holding only what a request produces
whatever else it carries:

- header names → environ keys ("" for a name that is dropped): a pure function of the name;
- Host values → (HTTP_HOST, SERVER_NAME, SERVER_PORT): a function of the value and of the listener's
  scheme, which is the builder's own;
- shared Requests (by identity, the entry holding the Request so its id cannot be reused) → the
  environ keys made from that request alone, and what its headers claim (``forwarded.Said``): the
  Request is immutable, and peer, wsgi.input, trailers and the forwarded policy's verdict on those
  claims (which depends on the peer) are applied to every copy afterwards;
- head shapes (by identity, the entry holding the shape; see HeadShape in pronghorn/http/events.py)
  → the environ made from the shape's template and what it claims, with the environ key of each
  varying field: a request of that shape differs from the template only in those fields' values,
  so its environ is the template's with those keys set from its values. Only when that is so: each
  varying field's key is one no other field of the shape maps to (no joined list), not one the
  forwarded policy reads (its claims are then the template's), and not a dropped '_' name; a
  shape that fails this is built field by field, as any request.

SERVER_NAME and SERVER_PORT are Gunicorn's: on TCP the listener's address, whatever the Host says;
on a unix socket the Host's name and port (the scheme's default port when the Host has none), or
the socket's path and "" without a Host. HTTP_HOST is the Host (or an absolute-form target's
authority, RFC 9112 3.2.2).
"""

from __future__ import annotations

import os
from typing import Any, BinaryIO
from urllib.parse import unquote_to_bytes

from .. import SERVER_SOFTWARE
from ..http import BoundedCache, HTTPError, Request
from ..http.cache import OBJECT_OVERHEAD
from ..http.events import Fields, HeadShape
from .body import DeferredInput, trailer_list
from .file_wrapper import FileWrapper
from .forwarded import ForwardedPolicy, Said

# How a builder's cache_bytes are shared between its tables, in sixteenths: most go to the environs of
# shared heads, which save the most; the header names get the rest.
_SHARED_SHARE, _SHAPES_SHARE, _HOSTS_SHARE = 8, 3, 1


# The keys every request's environ gets, from the request (build, _from_request) and from the request
# cycle (the connection's gunicorn.socket, the exchange as wsgi.early_hints).
# SERVER_PROTOCOL by version: HTTP/2 is "HTTP/2.0", as Gunicorn 27's WSGI workers say it.
_PROTOCOLS = {(1, 1): "HTTP/1.1", (1, 0): "HTTP/1.0", (2, 0): "HTTP/2.0"}
_ALWAYS_SET = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "RAW_URI", "SERVER_PROTOCOL",
               "SERVER_NAME", "SERVER_PORT", "wsgi.input", "REMOTE_ADDR", "REMOTE_PORT",
               "gunicorn.socket", "wsgi.early_hints")


def environ_key(name: bytes) -> str:
    """The environ key for a header name, or "" for a name whose header is dropped."""
    # A name with "_" would collide with its "-" twin once mapped (X_Forwarded_For posing as
    # X-Forwarded-For): such headers are dropped, as Gunicorn does by default.
    if b"_" in name:
        return ""
    upper = name.decode("latin-1").upper().replace("-", "_")
    return upper if upper in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + upper


class EnvironBuilder:
    """Makes environs for one listener: its address fills SERVER_NAME/PORT when there is no Host."""

    def __init__(self, server_address: Any, url_scheme: str, errors: Any, multiprocess: bool,
                 multithread: bool = False, forwarded: ForwardedPolicy | None = None,
                 cache_bytes: int = 768 * 1024) -> None:
        """``cache_bytes``: what the builder's memory of past requests may hold (see above)."""
        self.forwarded = forwarded
        # (for_scheme's builders for the other scheme, made on first need: this one and its twin)
        self._args = (server_address, errors, multiprocess, multithread, forwarded, cache_bytes)
        # (None: the listener's own builder, whose scheme is the listener's)
        self._by_scheme: dict[str | None, EnvironBuilder] = {url_scheme: self, None: self}
        self.on_tcp = isinstance(server_address, tuple)
        if isinstance(server_address, tuple):
            self.server_name, self.server_port = str(server_address[0]), str(server_address[1])
        else:  # a unix socket's path (its getsockname()), as Gunicorn names it
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
        # Every key each request sets, present from the start (None until then): an environ is a
        # copy of this dict (or of one made from it), and a copy keeps its table's size, so a request's
        # stores replace values and never make the dict grow (a resize per request, 3% of one).
        for key in _ALWAYS_SET:
            self.base.setdefault(key, None)
        # Host header → (HTTP_HOST, SERVER_NAME, SERVER_PORT): a server sees few distinct hosts.
        self._hosts: BoundedCache[bytes, tuple[str, str, str]] = BoundedCache(
            cache_bytes * _HOSTS_SHARE // 16)
        self._keys: BoundedCache[bytes, str] = BoundedCache(
            cache_bytes * (16 - _SHARED_SHARE - _HOSTS_SHARE) // 16)
        # The peer of the last request (a connection's requests share its tuple) with its strings,
        # as one tuple: gthread builds environs on several threads, and one attribute read is atomic.
        self._last_peer: tuple[Any, tuple[str, str]] = (None, ("", ""))
        # The last claims judged when the verdict was only a scheme: (claims, peer, scheme), one
        # tuple for the same reason.
        self._believed: tuple[Said | None, Any, str] = (None, None, url_scheme)
        # id(shared request) → (the environ keys made from it alone, what its headers claim for
        # the forwarded policy to judge or None, that request).
        self._from_shared: BoundedCache[
            int, tuple[dict[str, Any], Said | None, Request]] = BoundedCache(
                cache_bytes * _SHARED_SHARE // 16)
        self._shared_known = self._from_shared.young  # (the same dict for the cache's life)
        # id(head shape) → (the template's environ keys, its claims, the (field index, environ key)
        # of each varying field, that shape); the keys None when the shape cannot be filled in.
        self._from_shapes: BoundedCache[int, tuple[
            dict[str, Any], Said | None, tuple[tuple[int, str], ...] | None, HeadShape]] = (
                BoundedCache(cache_bytes * _SHAPES_SHARE // 16))
        self._shapes_known = self._from_shapes.young  # (the same dict for the cache's life)

    def for_scheme(self, scheme: str | None) -> EnvironBuilder:
        """The builder for this listener's requests that say their scheme themselves (a uwsgi
        packet's HTTPS var): "http" or "https"; None, the listener's own."""
        builder = self._by_scheme.get(scheme)
        if builder is None:
            address, errors, multiprocess, multithread, forwarded, cache_bytes = self._args
            builder = EnvironBuilder(address, scheme or self.url_scheme, errors, multiprocess,
                                     multithread, forwarded, cache_bytes)
            builder._by_scheme = self._by_scheme  # (one table: either one finds the other)
            self._by_scheme[scheme] = builder
        return builder

    def build(self, request: Request, body: BinaryIO | DeferredInput, peer: Any,
              trailers: Fields = ()) -> dict[str, Any]:
        """The environ for ``request``. ``trailers``: the fields its chunked body ended with (the
        EndOfMessage's), once the body is complete; a body still to come (DeferredInput) sets them
        when the app has read it."""
        if request.shared:
            # The same head as before (see HTTPConnection): what the environ takes from the request
            # alone was made then; copy it.
            kept = self._shared_known.get(id(request))
            if kept is None:
                kept = self._from_shared.get(id(request))
            # (An entry found under id(request) is this request's: the entry holds its Request, and
            # no two live objects share an id.)
            if kept is not None:
                environ = kept[0].copy()
                said = kept[1]
            else:
                environ, said = self._from_request(request, body)
                # The entry holds the request, so its id is not reused while the entry lives.
                self._from_shared.put(id(request), (environ.copy(), said, request),
                                      _environ_size(environ, request))
        elif request.shape is not None:
            shape = request.shape
            filled = self._shapes_known.get(id(shape)) or self._from_shapes.get(id(shape))
            if filled is None:
                filled = self._learn_shape(shape, body)
            keys = filled[2]
            if keys is not None:
                environ = filled[0].copy()
                said = filled[1]
                headers = request.headers
                for index, key in keys:
                    environ[key] = headers[index][1].decode("latin-1")
            else:
                environ, said = self._from_request(request, body)
        else:
            environ, said = self._from_request(request, body)
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
        if last[1][1]:
            environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = last[1]
        else:  # a unix-socket peer: REMOTE_ADDR "" and no REMOTE_PORT, as under Gunicorn
            environ["REMOTE_ADDR"] = last[1][0]
            environ.pop("REMOTE_PORT", None)  # (the base environ's placeholder for it)
        if said is not None and self.forwarded is not None:
            believed = self._believed
            if believed[0] is said and believed[1] is peer:
                environ["wsgi.url_scheme"] = believed[2]
            else:
                self._believe(environ, request, peer, said, self.forwarded)
        return environ

    def scheme_without_environ(self, request: Request, peer: Any) -> str | None:
        """The ``wsgi.url_scheme`` that ``build(request, ..., peer)`` would give, when it is known
        without building the environ: no forwarded policy, or a repeated (shared) head already
        built whose headers claim nothing the policy reads, or only a scheme already judged for
        this same peer. Then REMOTE_ADDR/REMOTE_PORT are the peer's own and nothing can be
        refused. None otherwise: build the environ (which remembers the head for next time).
        For a caller that needs only those (the ASGI scope), so that the trusted-proxy policy
        stays this builder's."""
        if self.forwarded is None:
            return self.url_scheme
        if not request.shared:
            return None
        kept = self._shared_known.get(id(request))
        if kept is None:
            return None
        said = kept[1]
        if said is None:
            return self.url_scheme
        believed = self._believed
        if believed[0] is said and believed[1] is peer:
            return believed[2]
        return None

    def _learn_shape(self, shape: HeadShape, body: BinaryIO | DeferredInput) -> tuple[
            dict[str, Any], Said | None, tuple[tuple[int, str], ...] | None, HeadShape]:
        """What requests of ``shape`` share (see the module's docstring), remembered."""
        template = shape.template
        environ, said = self._from_request(template, body)
        keys = [known_key(name, self._keys) for name, _ in template.headers]
        read = set(self.forwarded.scheme_keys + self.forwarded.client_keys
                   if self.forwarded is not None else ())
        varying = tuple((index, keys[index]) for index in shape.varying)
        fillable = all(key and keys.count(key) == 1 and key not in read for _, key in varying)
        filled = (environ, said, varying if fillable else None, shape)
        # The entry holds the shape, so its id is not reused while the entry lives.
        self._from_shapes.put(id(shape), filled, _environ_size(environ, template)
                              + OBJECT_OVERHEAD * (3 * len(varying) + 4))
        return filled

    def _believe(self, environ: dict[str, Any], request: Request, peer: Any, said: Said,
                 forwarded: ForwardedPolicy) -> None:
        """Apply what the peer is trusted to say (see forwarded.py). May raise HTTPError: 400 for a
        trusted proxy's contradictory scheme headers or a refused '_' header, 500 for a proxy's
        SCRIPT_NAME that the path does not start with (as in Gunicorn)."""
        for name, value in forwarded.apply(environ, peer, said):
            key = "HTTP_" + name.replace("-", "_")
            environ[key] = environ[key] + "," + value if key in environ else value
            if name == "SCRIPT_NAME":
                path = request.path.decode("latin-1")
                if not path.startswith(value):
                    raise HTTPError(500, f"the request path {path!r} does not start with "
                                         f"SCRIPT_NAME {value!r} (from the proxy)")
                environ["SCRIPT_NAME"] = value
                environ["PATH_INFO"] = unquote_to_bytes(path[len(value):]).decode("latin-1")
        if self.on_tcp and not said.underscored and not said.client:
            # Then the verdict is only a scheme, a function of these two objects (kept claims,
            # a connection's peer): the next request with both gets it without asking.
            self._believed = (said, peer, environ["wsgi.url_scheme"])
        if (not self.on_tcp and request.host is not None
                and environ["wsgi.url_scheme"] != self.url_scheme
                and not _split_host(environ["HTTP_HOST"])[1]):
            # A unix socket's SERVER_PORT is the Host's, or the default of the scheme the proxy said.
            environ["SERVER_PORT"] = "443" if environ["wsgi.url_scheme"] == "https" else "80"

    def _from_request(self, request: Request,
                      body: BinaryIO | DeferredInput) -> tuple[dict[str, Any], Said | None]:
        """The environ's keys that depend on the request alone (and, for a chunked body, its
        length): no peer, no wsgi.input; and what its headers claim, for the forwarded policy."""
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
        environ["SERVER_PROTOCOL"] = _PROTOCOLS[request.version]

        known = self._keys.young  # (a hit costs one lookup; a miss asks the cache, then maps the name)
        underscored: list[tuple[str, str]] | None = None
        for name, value in request.headers:
            key = known.get(name) or self._environ_key(name)
            if not key:  # a name with "_": only the forwarded policy may let it in
                if underscored is None:
                    underscored = []
                underscored.append((name.decode("latin-1").upper(), value.decode("latin-1")))
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
            hosts = self._hosts
            host_keys = hosts.young.get(request.host) or hosts.get(request.host)
            if host_keys is None:
                host = request.host.decode("latin-1")
                if self.on_tcp:
                    host_keys = (host, self.server_name, self.server_port)
                else:
                    server_name, port = _split_host(host)
                    host_keys = (host, server_name, port or self.default_port)
                hosts.put(request.host, host_keys,
                          4 * len(request.host) + 5 * OBJECT_OVERHEAD)  # the bytes and 3 strs
            environ["HTTP_HOST"], environ["SERVER_NAME"], environ["SERVER_PORT"] = host_keys
        else:
            environ["SERVER_NAME"] = self.server_name
            environ["SERVER_PORT"] = self.server_port
        forwarded = self.forwarded
        if forwarded is None:
            return environ, None
        return environ, forwarded.said(environ, request.headers,
                                       () if underscored is None else tuple(underscored))

    def _environ_key(self, name: bytes) -> str:
        """``environ_key(name)``, remembered (the young generation missed)."""
        return known_key(name, self._keys)


def known_key(name: bytes, keys: BoundedCache[bytes, str]) -> str:
    """``environ_key(name)``, remembered in ``keys``."""
    key = keys.get(name)
    if key is None:
        key = environ_key(name)
        # The name's bytes and the key's characters (the name's length and 5), in two objects.
        keys.put(name, key, 2 * len(name) + 5 + 2 * OBJECT_OVERHEAD)
    return key


def _environ_size(environ: dict[str, Any], request: Request) -> int:
    """The bytes a shared-environ entry pins: the environ's keys and str values with a key, a
    value and a slot per item; and the Request it holds (see pronghorn.http.cache.head_entry_size),
    estimated from its fields and target."""
    text = sum(len(k) + (len(v) if type(v) is str else 0) for k, v in environ.items())
    fields = sum(len(n) + len(v) for n, v in request.headers)
    return (text + 3 * (fields + len(request.target))
            + OBJECT_OVERHEAD * (2 * len(environ) + 3 * len(request.headers) + 12))


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


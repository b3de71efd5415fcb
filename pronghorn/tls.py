"""TLS for the listeners: Gunicorn's settings (--certfile, --keyfile, --ca-certs, --cert-reqs,
--ciphers, --ssl-version and the ssl_context hook) turned into one server SSLContext.

The context is made in each worker, never in the master: with the gevent class the master must not
import ``ssl`` before it forks (gevent has to patch it first in its workers). The master only checks,
with :func:`check_settings`, what it can without ``ssl``: that the files exist. The configuration
has already checked the names (--ssl-version, --cert-reqs: pronghorn/config/values.py). TLS 1.2 is
the floor unless --ssl-version asks for 1.3; older versions are refused there.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .config import Config

if TYPE_CHECKING:
    import ssl  # for the annotations only: the master never imports it (see above)

#: How long a client has to finish the TLS handshake.
HANDSHAKE_TIMEOUT = 10.0


def enabled(cfg: Config) -> bool:
    return bool(cfg.certfile)


def check_settings(cfg: Config) -> str | None:
    """What is wrong with the TLS settings, as (setting, problem) text, or None. No ssl import."""
    if cfg.keyfile and not cfg.certfile:
        return "keyfile: --keyfile needs --certfile"
    if not cfg.certfile:
        if cfg.ca_certs or cfg.cert_reqs:
            return "ca_certs: --ca-certs and --cert-reqs need --certfile"
        return None
    for name in ("certfile", "keyfile", "ca_certs"):
        path = getattr(cfg, name)
        if path and not os.access(path, os.R_OK):
            return f"{name}: cannot read {path!r}"
    if cfg.cert_reqs and not cfg.ca_certs:
        return "cert_reqs: verifying client certificates needs --ca-certs"
    return None


def alpn_protocols(cfg: Config) -> list[str]:
    """--http-protocols as ALPN names (h1 is "http/1.1"), in its order of preference."""
    return ["h2" if name == "h2" else "http/1.1" for name in cfg.http_protocols.split(",")]


def server_context(cfg: Config) -> ssl.SSLContext:
    """The SSLContext for the listeners (in a worker). Raises OSError/ssl.SSLError when the
    certificate, key or CA file cannot be used."""
    import ssl

    def default_context() -> ssl.SSLContext:
        certfile = cfg.certfile
        if not certfile:  # not asked for without one (enabled), but a hook may call this anyway
            raise ssl.SSLError("TLS needs --certfile")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = getattr(ssl.TLSVersion, cfg.ssl_version)
        context.load_cert_chain(certfile, cfg.keyfile or None)
        context.verify_mode = ssl.VerifyMode(cfg.cert_reqs)
        if cfg.ca_certs:
            context.load_verify_locations(cafile=cfg.ca_certs)
        if cfg.ciphers:
            context.set_ciphers(cfg.ciphers)
        # The protocols spoken, in --http-protocols' order of preference, by their ALPN names.
        context.set_alpn_protocols(alpn_protocols(cfg))
        return context

    hooks = cfg.hooks
    if hooks.has("ssl_context"):
        # Gunicorn's hook: ssl_context(config, default_ssl_context_factory) -> SSLContext.
        context = hooks.call("ssl_context", cfg, default_context)
        if not isinstance(context, ssl.SSLContext):
            raise ssl.SSLError("the ssl_context hook did not return an ssl.SSLContext")
        return context
    return default_context()


"""TLS for the listeners: Gunicorn's settings (--certfile, --keyfile, --ca-certs, --cert-reqs,
--ciphers, --ssl-version and the ssl_context hook) turned into one server SSLContext.

The context is made in each worker, never in the master: with the gevent class the master must not
import ``ssl`` before it forks (gevent has to patch it first in its workers). The master only checks,
with :func:`check_settings`, what it can without ``ssl``: that the files exist and the names are known.
TLS 1.2 is the floor unless --ssl-version asks for 1.3; older versions are refused.
"""

from __future__ import annotations

import os
from typing import Any

#: --ssl-version values (Gunicorn's names, and the numbers its ssl.PROTOCOL_* constants had) →
#: the minimum TLS version, as ssl.TLSVersion member names. Every PROTOCOL_TLS* means "negotiate the
#: best"; we keep the floor at 1.2 for those.
SSL_VERSIONS: dict[str, str] = {
    "TLS": "TLSv1_2", "TLS_SERVER": "TLSv1_2", "SSLv23": "TLSv1_2", "2": "TLSv1_2",
    "17": "TLSv1_2", "TLSv1_2": "TLSv1_2", "5": "TLSv1_2", "TLSv1_3": "TLSv1_3",
}
_REFUSED_VERSIONS = {"SSLv2", "SSLv3", "TLSv1", "TLSv1_1", "0", "1", "3", "4"}

#: --cert-reqs: Gunicorn takes ssl.CERT_* numbers; their names work too.
CERT_REQS: dict[str, int] = {"0": 0, "1": 1, "2": 2, "CERT_NONE": 0, "CERT_OPTIONAL": 1,
                             "CERT_REQUIRED": 2, "none": 0, "optional": 1, "required": 2}

#: How long a client has to finish the TLS handshake.
HANDSHAKE_TIMEOUT = 10.0


def ssl_version(value: Any) -> str:
    """--ssl-version → the minimum version's name; ValueError for an insecure or unknown one."""
    text = str(getattr(value, "name", value)).strip()  # an ssl._SSLMethod member gives its name
    if text.startswith("PROTOCOL_"):
        text = text[len("PROTOCOL_"):]
    if text in _REFUSED_VERSIONS:
        raise ValueError(f"{value!r} is insecure and not supported; TLS 1.2 is the minimum "
                         "(leave --ssl-version unset, or use TLSv1_3 for 1.3 only)")
    if text not in SSL_VERSIONS:
        raise ValueError(f"{value!r} is not a TLS version; use TLS (the default: 1.2 or newer) or "
                         "TLSv1_3")
    return SSL_VERSIONS[text]


def cert_reqs(value: Any) -> int:
    text = str(int(value) if isinstance(value, int) else value).strip()  # ssl.CERT_* are IntEnums
    if text not in CERT_REQS:
        raise ValueError(f"{value!r} is not 0 (CERT_NONE), 1 (CERT_OPTIONAL) or 2 (CERT_REQUIRED)")
    return CERT_REQS[text]


def enabled(cfg: Any) -> bool:
    return bool(cfg.certfile)


def check_settings(cfg: Any) -> str | None:
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


def server_context(cfg: Any) -> Any:
    """The SSLContext for the listeners (in a worker). Raises OSError/ssl.SSLError when the
    certificate, key or CA file cannot be used."""
    import ssl

    def default_context() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = getattr(ssl.TLSVersion, cfg.ssl_version)
        context.load_cert_chain(cfg.certfile, cfg.keyfile or None)
        context.verify_mode = ssl.VerifyMode(cfg.cert_reqs)
        if cfg.ca_certs:
            context.load_verify_locations(cafile=cfg.ca_certs)
        if cfg.ciphers:
            context.set_ciphers(cfg.ciphers)
        # Only HTTP/1.1 is spoken here; say so to clients that offer ALPN.
        context.set_alpn_protocols(["http/1.1"])
        return context

    hooks = cfg.hooks
    if hooks.has("ssl_context"):
        # Gunicorn's hook: ssl_context(config, default_ssl_context_factory) -> SSLContext.
        context = hooks.call("ssl_context", cfg, default_context)
        if not isinstance(context, ssl.SSLContext):
            raise ssl.SSLError("the ssl_context hook did not return an ssl.SSLContext")
        return context
    return default_context()


# A config file may give these as Gunicorn did, as ssl module numbers (ssl.CERT_REQUIRED,
# ssl.PROTOCOL_TLS_SERVER) rather than text: the converters take the objects themselves.
ssl_version.takes_objects = True  # type: ignore[attr-defined]
cert_reqs.takes_objects = True  # type: ignore[attr-defined]

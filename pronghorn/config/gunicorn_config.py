"""Our :class:`Config` as Gunicorn's ``Config`` looks to the code that holds one: ``server.cfg`` and
``worker.cfg`` in hooks, a custom ``logger_class``, and an embedding application's ``self.cfg``
(pronghorn/app/: it sets values on a view over a Config of the defaults, then checks and serves
that Config, :attr:`GunicornConfig.pronghorn_config`).

Gunicorn's users read settings three ways, and each works here, under Gunicorn's names:

- ``cfg.workers``, ``cfg.bind``, ``cfg.post_fork`` (an attribute per setting and hook);
- ``cfg.settings["workers"].value`` / ``.get()`` / ``.set(4)``, and ``cfg.set("workers", 4)``;
- Gunicorn's derived properties: ``env`` (raw_env as a dict), ``env_orig``, ``worker_class_str``,
  ``worker_class``, ``address``, ``uid``, ``gid``, ``is_ssl``, ``ssl_options``, ``proc_name``,
  ``sendfile``, ``reuse_port``, ``paste_global_conf``.

A value reads as Gunicorn holds it where the two differ in form: ``user``/``group`` are the uid and
gid numbers, ``forwarded_allow_ips``/``proxy_allow_ips`` lists, whole-second timeouts ints. ``set``
converts and checks the value as the config file would and writes it into the Config underneath, so
what the server then reads is the new value (what a running master has already applied, such as its
sockets, stays until the change is acted on: a reload, as under Gunicorn). ``set(name, None)``
leaves a setting unset: its default again (or WEB_CONCURRENCY's, PORT's). The value's source, for
--print-config=annotated, is :data:`SET_IN_CODE`; a bad value is a ValueError naming the setting,
an unknown name an AttributeError, as in Gunicorn.

Gunicorn settings we do not implement (config/file.py's ``KNOWN_GUNICORN_SETTINGS``) read as their
Gunicorn default, so code that looks at them runs; setting one to anything but a value we already
honour is an error, as in a config file.

This is a view, made cheaply and never on a request's path; it holds nothing of the runtime.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

from .file import _ANY, KNOWN_GUNICORN_SETTINGS, inert_value, unsupported_message
from .hooks import HOOK_SPECS
from .settings import (DEFAULT_SOURCE, SETTINGS, Config, Setting, convert_value,
                       environment_defaults, parse_bind)
from .values import parse_statsd_address, resolve_group, resolve_user

#: The environment as the server found it, before -e/--env changed it (Gunicorn's ``env_orig``,
#: which its Config copies when it is made, at start). Captured when the config package is
#: first imported, which is before anything applies raw_env.
ENV_AT_START: dict[str, str] = dict(os.environ)
# Gunicorn's chdir defaults to the directory it started in.
CWD_AT_START = os.getcwd()

HOOKS_SECTION = "Server Hooks"
#: Where a value set with ``cfg.set`` came from (``cfg.sources``, --print-config=annotated).
SET_IN_CODE = "application (cfg.set)"

#: Gunicorn's worker class names for ours (``cfg.worker_class.__name__``).
_CLASS_NAMES = {"sync": "SyncWorker", "gthread": "ThreadWorker", "gevent": "GeventWorker",
                "asgi": "ASGIWorker"}

_SETTINGS_BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}
_ORDER = {name: index for index, name in enumerate(
    [s.name for s in SETTINGS] + ["wsgi_app"] + list(HOOK_SPECS) + list(KNOWN_GUNICORN_SETTINGS))}


#: Gunicorn settings we do not implement whose Gunicorn value is a list (ours spell them as text).
_LISTS = frozenset({"forwarder_headers"})
#: Gunicorn's hooks of features we do not have (dirty arbiters): they read as no-ops, as there.
_FOREIGN_HOOKS = frozenset({"on_dirty_starting", "dirty_post_fork", "dirty_worker_init",
                            "dirty_worker_exit"})


def _no_op(*args: Any) -> None:
    """An unset hook: Gunicorn's defaults do nothing, and can still be called."""


def _int_if_whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _comma_list(text: Any) -> Any:
    return [entry.strip() for entry in str(text).split(",") if entry.strip()]


def _uid(value: Any) -> int:
    user = resolve_user(value)
    return user[0] if user else os.geteuid()


def _gid(value: Any) -> int:
    gid = resolve_group(value)
    return gid if gid is not None else os.getegid()


def _address_text(value: Any) -> Any:
    """A (host, port) pair as the HOST:PORT text our setting takes."""
    if isinstance(value, tuple) and len(value) == 2:
        host, port = value
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return value


def _comma_text(value: Any) -> Any:
    return ",".join(value) if isinstance(value, (list, tuple)) else value


def _ssl_protocol(value: Any) -> int:
    # Gunicorn holds an ssl.PROTOCOL_* number; ours is the lowest version, always negotiated as
    # ssl.PROTOCOL_TLS (2, Gunicorn's default), which needs no import of ssl here.
    return value if isinstance(value, int) else 2


#: Settings whose value Gunicorn holds in another form: (ours → Gunicorn's, Gunicorn's → ours).
_FORMS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "chdir": (lambda v: v or CWD_AT_START, lambda v: v),
    "config": (lambda v: v or "./gunicorn.conf.py", lambda v: v),
    "ssl_version": (_ssl_protocol, lambda v: v),
    "user": (_uid, lambda v: v),
    "group": (_gid, lambda v: v),
    "forwarded_allow_ips": (_comma_list, _comma_text),
    "proxy_allow_ips": (_comma_list, _comma_text),
    "uwsgi_allow_ips": (_comma_list, _comma_text),
    "forwarder_headers": (_comma_list, _comma_text),
    "http_protocols": (_comma_list, _comma_text),
    "timeout": (_int_if_whole, lambda v: v),
    "graceful_timeout": (_int_if_whole, lambda v: v),
    "keepalive": (_int_if_whole, lambda v: v),
    "statsd_host": (lambda v: parse_statsd_address(v)[1] if v else None, _address_text),
    # Gunicorn's print_config is a switch; ours names a format ("" when off).
    "print_config": (bool, lambda v: v),
    # Gunicorn fills it in itself (the app's name), so it is never None there.
    "default_proc_name": (lambda v: v or "pronghorn", lambda v: v),
    # Gunicorn's None means "not given: $SENDFILE decides"; ours has resolved that already.
    "sendfile": (lambda v: None if v else False, lambda v: True if v is None else v),
}


class GunicornSetting:
    """One entry of ``cfg.settings``: Gunicorn's Setting, reading and writing our Config."""

    __slots__ = ("name", "section", "cli", "meta", "default", "const", "short", "desc", "order",
                 "_config", "_setting", "_fixed")

    def __init__(self, config: GunicornConfig, name: str) -> None:
        self._config = config
        self.name = name
        self._setting = setting = _SETTINGS_BY_NAME.get(name)
        self._fixed: Any = None
        self.order = _ORDER.get(name, len(_ORDER))
        if setting is not None:
            self.section, self.cli = setting.section, list(setting.flags) or None
            self.meta, self.const = setting.metavar, setting.const
            self.default = setting.initial()
            self.desc = setting.help
        elif name == "wsgi_app":
            self.section, self.cli, self.meta, self.const = "Config File", None, "STRING", None
            self.default = None
            self.desc = "The WSGI application (MODULE:CALLABLE), when the config file names it."
        elif name in HOOK_SPECS:
            self.section, self.cli, self.meta, self.const = HOOKS_SECTION, None, None, None
            self.default = _no_op
            self.desc = f"The {name}({', '.join(HOOK_SPECS[name])}) server hook."
        else:
            known = KNOWN_GUNICORN_SETTINGS[name]
            self.section = "Not implemented by pronghorn"
            self.cli, self.meta, self.const = list(known.flags) or None, known.metavar, None
            inert = known.inert[0] if known.inert else None
            inert = None if inert is _ANY else inert
            if name in _LISTS:
                inert = _comma_list(inert)
            elif name in _FOREIGN_HOOKS:
                inert = _no_op
            self.default = self._fixed = inert
            self.desc = known.advice
        self.short = self.desc.split(". ")[0]

    @property
    def value(self) -> Any:
        return self.get()

    @value.setter
    def value(self, value: Any) -> None:
        self.set(value)

    def get(self) -> Any:
        config = self._config._config
        if self._setting is not None:
            value = getattr(config, self.name)
            form = _FORMS.get(self.name)
            return form[0](value) if form is not None else value
        if self.name in HOOK_SPECS:
            return config.hooks.get(self.name) or _no_op
        if self.name == "default_proc_name":
            return config.app_uri or "pronghorn"
        if self.name == "wsgi_app":  # Gunicorn's is set only where it is written: not argv's
            source = config.sources.get("wsgi_app", "")
            return config.app_uri or None if source not in ("command line", "default") else None
        return self._fixed

    def set(self, value: Any) -> None:
        self._config._set(self.name, value)
        if self._setting is None and self.name not in HOOK_SPECS:
            self._fixed = value

    def __lt__(self, other: GunicornSetting) -> bool:
        # Gunicorn sorts its settings by section, then by declaration order.
        return (self.section, self.order) < (other.section, other.order)

    def __repr__(self) -> str:
        return f"<GunicornSetting {self.name}={self.get()!r}>"


class GunicornConfig:
    """``cfg`` as Gunicorn's code and hooks use it, over our :class:`Config` (see the module)."""

    _config: Config

    def __init__(self, config: Config, usage: str | None = None, prog: str | None = None) -> None:
        object.__setattr__(self, "_config", config)
        # A plain dict, as Gunicorn's (hooks test type(cfg.settings) and copy it), of views.
        object.__setattr__(self, "settings",
                           {name: GunicornSetting(self, name) for name in _ORDER})
        object.__setattr__(self, "env_orig", dict(ENV_AT_START))
        object.__setattr__(self, "usage", usage)
        if prog is None and sys.argv:
            prog = os.path.basename(sys.argv[0])
        object.__setattr__(self, "prog", prog)

    @property
    def pronghorn_config(self) -> Config:
        """The Config this view reads and writes: what the master runs with (Gunicorn has no such
        name, so no setting hides it)."""
        return self._config

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not the view's own (below): a setting, a hook, or one
        # of Config's own attributes (hooks, app_uri, sources, ...).
        if name in _ORDER:
            return self.settings[name].get()
        try:
            return getattr(self._config, name)
        except AttributeError:
            raise AttributeError(f"No configuration setting for: {name}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _ORDER:  # Gunicorn refuses it too: settings change through set()
            raise AttributeError("Invalid access!")
        object.__setattr__(self, name, value)

    def set(self, name: str, value: Any) -> None:
        if name not in _ORDER:
            raise AttributeError(f"No configuration setting for: {name}")
        self.settings[name].set(value)

    def _set(self, name: str, value: Any) -> None:
        config = self._config
        setting = _SETTINGS_BY_NAME.get(name)
        if setting is not None:
            if value is None and name != "config":  # "not set", as a config file's None is
                self._unset(name)
                return
            form = _FORMS.get(name)
            try:
                if form is not None and value is not None:
                    value = form[1](value)
                converted = convert_value(setting, value)
                if name == "bind":
                    for address in converted:
                        parse_bind(address)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
            setattr(config, name, converted)
            config.sources[name] = SET_IN_CODE
        elif name in HOOK_SPECS:
            config.hooks.set(name, value)
        elif name == "wsgi_app":
            config.app_uri = value or ""
            config.sources["wsgi_app"] = SET_IN_CODE
        elif not inert_value(KNOWN_GUNICORN_SETTINGS[name], value):
            raise ValueError(unsupported_message(name, repr(name)))

    def _unset(self, name: str) -> None:
        """The setting's default again: the environment's (WEB_CONCURRENCY, PORT) or the registry's."""
        from_env = environment_defaults(os.environ, skip=_SETTINGS_BY_NAME.keys() - {name})
        value, source = from_env.get(name, (_SETTINGS_BY_NAME[name].initial(), DEFAULT_SOURCE))
        setattr(self._config, name, value)
        self._config.sources[name] = source

    def __str__(self) -> str:
        width = max(len(name) for name in self.settings)
        lines = []
        for name in sorted(self.settings):
            value = self.settings[name].get()
            if callable(value):
                value = f"<{getattr(value, '__qualname__', repr(value))}()>"
            lines.append(f"{name:{width}} = {value}")
        return "\n".join(lines)

    # -- Gunicorn's derived properties ---------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for pair in self._config.raw_env or ():
            key, sep, value = pair.partition("=")
            if not sep:
                raise RuntimeError(f"environment setting {pair!r} invalid")
            env[key] = value
        return env

    @property
    def paste_global_conf(self) -> dict[str, str]:
        """--paste-global's KEY=VALUE pairs as a dict, for PasteDeploy's global_conf."""
        return dict(pair.partition("=")[::2] for pair in self._config.raw_paste_global_conf)

    @property
    def worker_class_str(self) -> str:
        # Our Config holds the resolved name ('sync', 'gthread', 'gevent'), with Gunicorn's rule
        # (sync with --threads above 1 is gthread) already applied.
        return self._config.worker_class

    @property
    def worker_class(self) -> type:
        """A class named as Gunicorn's (SyncWorker, ThreadWorker, GeventWorker). The config layer
        imports nothing of the runtime, so it stands for ours rather than being it."""
        name = self._config.worker_class
        return type(_CLASS_NAMES.get(name, name), (),
                    {"__module__": f"pronghorn.workers.{name}", "__doc__": f"The {name} worker."})

    @property
    def address(self) -> list[Any]:
        """Gunicorn's parsed --bind: (host, port) tuples, unix socket paths, fd numbers."""
        return [parse_bind(address)[1] for address in self._config.bind]

    @property
    def uid(self) -> int:
        return _uid(self._config.user)

    @property
    def gid(self) -> int:
        return _gid(self._config.group)

    @property
    def proc_name(self) -> str:
        return self._config.proc_name or self._config.app_uri or "pronghorn"

    @property
    def is_ssl(self) -> Any:
        # Gunicorn's: the certfile or keyfile itself (None when neither), used for its truth.
        return self._config.certfile or self._config.keyfile

    @property
    def ssl_options(self) -> dict[str, Any]:
        return {name: self.settings[name].get() for name in self.settings
                if self.settings[name].section == "SSL"}

    @property
    def sendfile(self) -> bool:
        # Gunicorn's rule (the setting when given, else $SENDFILE, else on) is how ours was resolved.
        return bool(self._config.sendfile)

    @property
    def reuse_port(self) -> bool:
        return self._config.reuse_port

    def __repr__(self) -> str:
        return f"<GunicornConfig over {self._config!r}>"


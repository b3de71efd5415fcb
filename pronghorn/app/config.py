"""``self.cfg`` of an embedding application: Gunicorn's ``Config`` as embedding code uses it.

Code written for ``gunicorn.app.base`` sets options with ``cfg.set(name, value)`` (often only when
``name in cfg.settings``), reads them back as attributes (``cfg.workers``) or through
``cfg.settings[name].value`` / ``.get()``. :class:`AppConfig` gives exactly that over our registry,
converting and checking each value as a config file's is, then :meth:`AppConfig.build` makes the
:class:`~pronghorn.config.Config` the master runs with.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Iterator, Mapping

from ..config import HOOK_SPECS, KNOWN_GUNICORN_SETTINGS, SETTINGS, Config, ConfigError, Hooks
from ..config.file import APP_NAME, inert_value, unsupported_message
from ..config.hooks import validate_hook
from ..config.settings import DEFAULT_SOURCE, convert_value, environment_defaults

#: Where values set with ``cfg.set`` came from, for --print-config=annotated and messages.
SET_IN_CODE = "application (cfg.set)"
_BY_NAME = {setting.name: setting for setting in SETTINGS}


class SettingValue:
    """One entry of ``cfg.settings``: its ``name``, ``value`` (also ``get()``), ``set(value)``."""

    __slots__ = ("_cfg", "name")

    def __init__(self, cfg: AppConfig, name: str) -> None:
        self._cfg = cfg
        self.name = name

    @property
    def value(self) -> Any:
        return self._cfg.get(self.name)

    def get(self) -> Any:
        return self._cfg.get(self.name)

    def set(self, value: Any) -> None:
        self._cfg.set(self.name, value)

    @property
    def default(self) -> Any:
        setting = _BY_NAME.get(self.name)
        return setting.initial() if setting is not None else None

    def __repr__(self) -> str:
        return f"<setting {self.name} = {self.value!r}>"


class _Settings(Mapping[str, SettingValue]):
    """name → SettingValue for every name ``cfg.set`` takes (settings, hooks, wsgi_app, and
    Gunicorn's names we accept only with their harmless values), as Gunicorn's ``cfg.settings``."""

    def __init__(self, cfg: AppConfig) -> None:
        self._cfg = cfg
        self._names = sorted({*_BY_NAME, *HOOK_SPECS, APP_NAME, *KNOWN_GUNICORN_SETTINGS})

    def __getitem__(self, name: str) -> SettingValue:
        if name not in self._names:
            raise KeyError(name)
        return SettingValue(self._cfg, name)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class AppConfig:
    """What an embedding application set, over the defaults (and WEB_CONCURRENCY, PORT)."""

    def __init__(self, usage: str | None = None, prog: str | None = None) -> None:
        self.usage = usage
        self.prog = prog
        self.values: dict[str, Any] = {}
        self.sources: dict[str, str] = {}
        self.hooks: dict[str, Callable[..., Any]] = {}
        self.app_uri = ""
        self.config_file: str | None = None
        self.argv: list[str] = []
        self.warnings: list[str] = []
        self.settings: Mapping[str, SettingValue] = _Settings(self)

    @classmethod
    def from_config(cls, config: Config, usage: str | None = None,
                    prog: str | None = None) -> AppConfig:
        """The values of a configuration read as the command line reads it (WSGIApplication)."""
        cfg = cls(usage, prog)
        for setting in SETTINGS:
            cfg.values[setting.name] = getattr(config, setting.name)
        cfg.sources = dict(config.sources)
        cfg.hooks = {name: hook for name in config.hooks.names()
                     if (hook := config.hooks.get(name)) is not None}
        cfg.app_uri, cfg.config_file = config.app_uri, config.config_file
        cfg.argv, cfg.warnings = list(config.argv), list(config.config_warnings)
        return cfg

    def set(self, name: str, value: Any) -> None:
        """Set a setting, a hook or wsgi_app; the value is checked as a config file's would be
        (ConfigError says why not; an unknown name is an AttributeError, as in Gunicorn)."""
        setting = _BY_NAME.get(name)
        if setting is not None:
            if value is None and name != "config":  # "not set", as a config file's None is
                self.values.pop(name, None)
                self.sources.pop(name, None)
                return
            try:
                self.values[name] = convert_value(setting, value)
            except ValueError as exc:
                raise ConfigError(f"{name}: {exc}") from None
            self.sources[name] = SET_IN_CODE
        elif name in HOOK_SPECS:
            if value is None:
                self.hooks.pop(name, None)
                return
            try:
                self.hooks[name] = validate_hook(name, value)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        elif name == APP_NAME:
            self.app_uri = value or ""
            self.sources[APP_NAME] = SET_IN_CODE
        elif name in KNOWN_GUNICORN_SETTINGS:
            if not inert_value(KNOWN_GUNICORN_SETTINGS[name], value):
                raise ConfigError(unsupported_message(name, repr(name)))
        else:
            raise AttributeError(f"No configuration setting for: {name}")

    def get(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        setting = _BY_NAME.get(name)
        if setting is not None:
            from_env = environment_defaults(os.environ, skip=self.values)  # WEB_CONCURRENCY, PORT
            return from_env[name][0] if name in from_env else setting.initial()
        if name in HOOK_SPECS:
            return self.hooks.get(name)
        if name == APP_NAME:
            return self.app_uri or None
        if name in KNOWN_GUNICORN_SETTINGS:
            inert = KNOWN_GUNICORN_SETTINGS[name].inert
            return inert[0] if inert and isinstance(inert[0], (str, int, list)) else None
        raise AttributeError(f"No configuration setting for: {name}")

    def __getattr__(self, name: str) -> Any:  # only reached for what is not an attribute
        if name.startswith("_"):
            raise AttributeError(name)
        return self.get(name)

    # Gunicorn's derived attributes that embedding code reads.
    @property
    def worker_class_str(self) -> str:
        return str(self.get("worker_class"))

    @property
    def env(self) -> dict[str, str]:
        return dict(pair.partition("=")[::2] for pair in self.get("raw_env"))

    @property
    def paste_global_conf(self) -> dict[str, str]:
        return dict(pair.partition("=")[::2] for pair in self.get("raw_paste_global_conf"))

    @property
    def is_ssl(self) -> bool:
        return bool(self.get("certfile") or self.get("keyfile"))

    def build(self, argv: list[str] | None = None) -> Config:
        """The configuration the master runs with; ConfigError if a value cannot be used."""
        from ..cli import check_values

        sources = {name: self.sources.get(name, SET_IN_CODE) for name in self.values}
        sources[APP_NAME] = self.sources.get(APP_NAME, DEFAULT_SOURCE)
        # Without wsgi_app the script is what runs (it names the processes: "master [serve.py]").
        app_uri = self.app_uri or os.path.basename(sys.argv[0] if sys.argv else "") or "app"
        config = Config(sources=sources, app_uri=app_uri, config_file=self.config_file,
                        hooks=Hooks(self.hooks), argv=self.argv if argv is None else argv,
                        **self.values)
        config.config_warnings = list(self.warnings)

        def fail(name: str, flag: str, problem: str) -> Any:
            raise ConfigError(f"{name}: {problem}")

        check_values(config, fail)
        return config

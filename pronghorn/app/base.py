"""Gunicorn's embedding classes under pronghorn's name: ``from pronghorn.app.base import
BaseApplication`` where code said ``from gunicorn.app.base import BaseApplication``, nothing else
changed.

The life of an application object, as in Gunicorn:

- the constructor calls :meth:`BaseApplication.do_load_config`: :meth:`load_default_config` makes
  ``self.cfg``, a :class:`~pronghorn.config.GunicornConfig` over a Config of the defaults (the same
  view hooks get as ``server.cfg``), then the subclass's :meth:`load_config` sets options on it; a
  problem prints ``Error: ...`` and exits 1;
- :meth:`run` starts pronghorn's master in this process with that configuration. Workers (or the
  master, with ``preload_app``) get the app from :meth:`wsgi`, which calls :meth:`load` once;
- HUP calls :meth:`reload` (the configuration again, from ``load_config``); USR2 starts this same
  script again (``sys.executable`` and ``sys.argv``) on the listening sockets.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, NoReturn

from ..config import Config, ConfigError, GunicornConfig


class BaseApplication:
    """An application that configures itself in code: override :meth:`load_config` and
    :meth:`load`, then call :meth:`run`."""

    def __init__(self, usage: str | None = None, prog: str | None = None) -> None:
        self.usage = usage
        self.prog = prog
        self.cfg: GunicornConfig  # made by do_load_config, below (a bad default is its error)
        self.callable: Callable[..., Any] | None = None
        self.logger: Any = None
        self.start_cwd = os.getcwd()  # USR2 starts the script again from here
        self.do_load_config()

    def do_load_config(self) -> None:
        """Load the configuration; on a problem print it and exit 1, as Gunicorn does."""
        try:
            self.load_default_config()
            self.load_config()
        except (ConfigError, ValueError, AttributeError) as exc:
            _exit_with(exc)

    def load_default_config(self) -> None:
        """``self.cfg`` of the defaults (and WEB_CONCURRENCY's, PORT's), for load_config to set on."""
        self.cfg = GunicornConfig(Config(), self.usage, self.prog)

    def init(self, parser: Any, opts: Any, args: list[str]) -> dict[str, Any] | None:
        raise NotImplementedError

    def load(self) -> Callable[..., Any]:
        """The WSGI application (called in each worker, or once in the master with preload)."""
        raise NotImplementedError

    def load_config(self) -> None:
        """Set options with ``self.cfg.set(name, value)``; override this."""
        raise NotImplementedError

    def reload(self) -> None:
        """HUP: the configuration again (errors propagate, for the master to log and keep the old)."""
        self.load_default_config()
        self.load_config()

    def wsgi(self) -> Callable[..., Any]:
        if self.callable is None:
            self.callable = self.load()
        return self.callable

    def build_config(self) -> Config:
        """The configuration the master runs with: ``self.cfg``'s, once it passes the checks every
        configuration passes (ConfigError says why not)."""
        from ..cli import check_values

        config = self.cfg.pronghorn_config
        if not config.app_uri:
            # Without wsgi_app the script is what runs (it names the processes: "master [serve.py]").
            config.app_uri = os.path.basename(sys.argv[0] if sys.argv else "") or "app"

        def fail(name: str, flag: str, problem: str) -> NoReturn:
            raise ConfigError(f"{name}: {problem}")

        check_values(config, fail)
        return config

    def _reloaded_config(self) -> Config:
        self.reload()
        return self.build_config()

    def run(self) -> NoReturn:
        """Serve until stopped, then exit with the master's status (as Gunicorn's run exits)."""
        from ..cli import serve

        try:
            cfg = self.build_config()
        except ConfigError as exc:
            _exit_with(exc)
        status = serve(cfg, self._reloaded_config, app_loader=self.wsgi,
                       reexec_argv=[sys.executable, *sys.argv], start_cwd=self.start_cwd)
        sys.exit(status)


class Application(BaseApplication):
    """Gunicorn's ``Application``: the command line, ``GUNICORN_CMD_ARGS``/``PRONGHORN_CMD_ARGS``
    and the config file, read as the ``pronghorn`` command reads them, with what :meth:`init`
    returns below the config file. A subclass implements ``init`` and ``load``."""

    def chdir(self) -> None:
        """Change to ``cfg.chdir`` and put it first on sys.path (as Gunicorn's does)."""
        directory = self.cfg.chdir
        if directory:
            os.chdir(directory)
            if directory not in sys.path:
                sys.path.insert(0, directory)

    def load_config_from_file(self, filename: str) -> dict[str, Any]:
        return self.load_config_from_module_name_or_filename(filename)

    def load_config_from_module_name_or_filename(self, location: str) -> dict[str, Any]:
        """Apply a config file (PATH, file:PATH or python:MODULE): its settings and hooks, over what
        is set; its names, as Gunicorn returns them."""
        from ..config.file import find_config_file, load_config_file

        path = find_config_file(location)
        if path is None:  # only without a location, which is not the case here
            return {}
        loaded = load_config_file(path)
        for name, value in loaded.values.items():
            self.cfg.set(name, value)
        for name, hook in loaded.hooks.items():
            self.cfg.set(name, hook)
        if loaded.app_uri:
            self.cfg.set("wsgi_app", loaded.app_uri)
        self.cfg.pronghorn_config.config_file = loaded.path
        self.cfg.pronghorn_config.config_warnings = list(loaded.warnings)
        return dict(loaded.values, **loaded.hooks)

    def load_config(self) -> None:
        from ..cli import build_parser, reload_config

        argv = sys.argv[1:]
        parser = build_parser()
        opts, _ = parser.parse_known_args(argv)
        args = [opts.app_uri] if opts.app_uri else []
        extra = self.init(parser, opts, args)
        config = reload_config(argv, base=extra or {}, require_app=self._needs_app_uri())
        self.cfg = GunicornConfig(config, self.usage, self.prog)

    def _needs_app_uri(self) -> bool:
        return False  # load() gives the app; WSGIApplication needs MODULE (or --paste)

    def run(self) -> NoReturn:
        if self.cfg.print_config or self.cfg.check_config:
            from ..cli import check_config

            try:
                cfg = self.build_config()
            except ConfigError as exc:
                _exit_with(exc)
            sys.exit(check_config(cfg, app_loader=self.wsgi))
        super().run()


def _exit_with(exc: BaseException) -> NoReturn:
    print(f"\nError: {exc}", file=sys.stderr)
    sys.stderr.flush()
    sys.exit(1)

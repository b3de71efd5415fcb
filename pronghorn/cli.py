"""`pronghorn [OPTIONS] MODULE[:CALLABLE]`: the command line, built from the settings registry."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from typing import Any, NoReturn, Sequence

from . import __version__
from .config import SETTINGS, Config, ConfigError, Hooks, parse_bind
from .config.file import APP_NAME, load as load_config_file, unsupported_gunicorn_flag
from .logs import setup_error_log


class UsageError(ConfigError):
    """The command line is wrong (the usage line is worth printing)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # raise, so that a HUP reload can log it instead
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pronghorn", allow_abbrev=False,
        usage="%(prog)s [OPTIONS] MODULE[:CALLABLE]",
        description="A fast, strict WSGI HTTP server for UNIX; a drop-in replacement for Gunicorn.",
    )
    parser.add_argument("app_uri", metavar="MODULE[:CALLABLE]", nargs="?", default=None,
                        help="The WSGI application, e.g. mysite.wsgi or app:create_app() (or "
                             f"{APP_NAME} in the config file)")
    parser.add_argument("-v", "--version", action="version", version=f"pronghorn {__version__}")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for setting in SETTINGS:
        group = groups.get(setting.section)
        if group is None:
            group = groups[setting.section] = parser.add_argument_group(setting.section)
        if setting.flag_only:
            group.add_argument(*setting.flags, dest=setting.name, action="store_true",
                               default=None, help=setting.help)
            continue
        group.add_argument(
            *setting.flags, dest=setting.name, metavar=setting.metavar or "VALUE",
            action="append" if setting.multiple else "store", default=None,
            type=_converter(setting.flags[-1], setting.convert), help=setting.help,
        )
    return parser


def _converter(flag: str, convert):  # type: ignore[no-untyped-def]
    def run(text: str):  # type: ignore[no-untyped-def]
        try:
            return convert(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{flag}: {exc}") from None
    run.__name__ = flag  # argparse names the converter in "invalid ... value" messages
    return run


def _unrecognized(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    """The message for arguments argparse did not know, with the flag the user probably meant."""
    flags = [flag for action in parser._actions for flag in action.option_strings]
    for extra in extras:
        if extra.startswith("-") and extra != "-":
            flag = extra.split("=", 1)[0]
            gunicorn = unsupported_gunicorn_flag(flag)
            if gunicorn is not None:
                return f"{flag} is a Gunicorn option pronghorn does not support yet ({gunicorn})"
            match = difflib.get_close_matches(flag, flags, n=1)
            return f"unrecognized argument {flag}" + (f"; did you mean {match[0]}?" if match else "")
    return f"unrecognized arguments: {' '.join(extras)}"


def reload_config(argv: Sequence[str], cwd: str | None = None) -> Config:
    """The configuration from defaults, then the config file, then the command line ``argv``.

    Reads the config file afresh each time (HUP calls this); relative paths are taken from ``cwd``
    (default: the current directory). Any problem raises ConfigError (UsageError for the command
    line) with a one-paragraph message; nothing is printed and nothing exits.
    """
    parser = build_parser()
    args, extras = parser.parse_known_args(list(argv))
    if extras:
        raise UsageError(_unrecognized(parser, extras))
    cli_values = {name: value for name, value in vars(args).items() if value is not None}
    loaded = load_config_file(cli_values.get("config"), cwd)
    values: dict[str, Any] = {}
    source = {name: "--" for name in cli_values}  # where each value came from, for messages
    if loaded is not None:
        values.update(loaded.values)
        source.update({name: loaded.path for name in loaded.values if name not in cli_values})
        if loaded.app_uri:
            values["app_uri"] = loaded.app_uri
            source.setdefault("app_uri", loaded.path)
        values["hooks"] = Hooks(loaded.hooks)
        values["config_file"] = loaded.path
    values.update(cli_values)
    cfg = Config(**values)

    def fail(name: str, flag: str, problem: str) -> NoReturn:
        where = source.get(name, "--")
        if where == "--":
            raise UsageError(f"{flag}: {problem}")
        raise ConfigError(f"{where}: {name}: {problem}")

    if not cfg.app_uri:
        raise UsageError("the following arguments are required: MODULE[:CALLABLE] (or set "
                         f"{APP_NAME} in the config file)")
    for address in cfg.bind:
        try:
            parse_bind(address)
        except ValueError as exc:
            fail("bind", "--bind", str(exc))
    if cfg.worker_class != "sync":
        fail("worker_class", "--worker-class",
             f"{cfg.worker_class!r} is not available in this version; use 'sync'")
    if cfg.workers < 1:
        fail("workers", "--workers", "must be at least 1")
    return cfg


def parse_config(argv: Sequence[str]) -> Config:
    """The start-up configuration; a problem prints its message and exits with status 2."""
    try:
        return reload_config(argv)
    except ConfigError as exc:
        if isinstance(exc, UsageError):
            build_parser().print_usage(sys.stderr)
        print(f"pronghorn: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    start_cwd = os.getcwd()  # HUP re-reads a relative -c path from here, whatever --chdir did
    cfg = parse_config(args)
    cfg.argv = args  # USR2 re-executes the same command line
    try:
        prepare_process(cfg)
        log = setup_error_log(cfg.errorlog, cfg.loglevel)
    except (OSError, ValueError) as exc:
        print(f"pronghorn: {exc}", file=sys.stderr)
        return 2
    from .master.arbiter import Arbiter

    def reload() -> Config:
        """HUP: read the configuration again; an error is raised for the master to log."""
        new_cfg = reload_config(args, cwd=start_cwd)
        new_cfg.argv = args
        return new_cfg

    return Arbiter(cfg, log, reload_config=reload).run()


def prepare_process(cfg: Config) -> None:
    """What the master does to itself before anything else: environment, directory, import path,
    umask, and detaching (-D)."""
    from .master.process import daemonize, parse_env, resolve_group, resolve_user

    resolve_user(cfg.user)  # an unknown user or group stops us here, with its name
    resolve_group(cfg.group)
    os.environ.update(parse_env(cfg.raw_env))
    if cfg.chdir:
        os.chdir(cfg.chdir)
    if cfg.pythonpath:
        sys.path[0:0] = [path for path in cfg.pythonpath.split(",") if path]
    os.umask(cfg.umask)
    if cfg.daemon:
        daemonize()


if __name__ == "__main__":
    sys.exit(main())

"""`pronghorn [OPTIONS] MODULE[:CALLABLE]`: the command line, built from the settings registry."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from . import __version__
from .config import SETTINGS, Config, parse_bind
from .logs import setup_error_log


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pronghorn", allow_abbrev=False,
        usage="%(prog)s [OPTIONS] MODULE[:CALLABLE]",
        description="A fast, strict WSGI HTTP server for UNIX; a drop-in replacement for Gunicorn.",
    )
    parser.add_argument("app_uri", metavar="MODULE[:CALLABLE]",
                        help="The WSGI application, e.g. mysite.wsgi or app:create_app()")
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


def parse_config(argv: Sequence[str]) -> Config:
    parser = build_parser()
    args = parser.parse_args(argv)
    values = {name: value for name, value in vars(args).items() if value is not None}
    cfg = Config(**values)
    for address in cfg.bind:
        try:
            parse_bind(address)
        except ValueError as exc:
            parser.error(f"--bind: {exc}")
    if cfg.worker_class != "sync":
        parser.error(f"--worker-class: {cfg.worker_class!r} is not available in this version; "
                     "use 'sync'")
    if cfg.workers < 1:
        parser.error("--workers: must be at least 1")
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
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
        reloader = globals().get("reload_config")
        if reloader is not None:
            new_cfg = reloader(args)
        else:
            try:
                new_cfg = parse_config(args)
            except SystemExit as exc:
                raise ValueError(f"the command line no longer parses (status {exc.code})") from None
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

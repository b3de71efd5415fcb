"""`pronghorn systemd-unit [--name N] [--user U] [--group G] [--socket] [--output-dir DIR] [OPTIONS] APP`:
the systemd unit (and with --socket, the .socket unit) that runs this very command line as a service.

The server options are parsed exactly as the server parses them (the same registry, config file and
checks), so a typo gets the same "did you mean" error now rather than at the first ``systemctl start``;
they are written into ExecStart= as given, after the absolute path of this pronghorn. The unit
declares ``Type=notify``: the master says READY=1 once its workers answer (see master/systemd.py).

This command's own options are long-only, because the server's short ones mean something else:
``-n``/``-u``/``-g`` stay the server's process name, --user and --group (the master starting as root
and switching its workers), while ``--name``/``--user``/``--group`` here name the unit and its
User=/Group= (the whole service runs as that user).
"""

from __future__ import annotations

import argparse
import grp
import ipaddress
import math
import os
import pwd
import re
import sys
from pathlib import Path
from typing import NoReturn, Sequence

from .cli import CMD_ARGS_VARIABLES, UsageError, build_parser as server_parser, reload_config
from .config import Config, ConfigError, parse_bind

# Carried into Environment= when set: where the app's modules are, and Django's settings module.
ENVIRONMENT_VARIABLES = ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")
# Seconds after --graceful-timeout before systemd sends SIGKILL: room for the master to finish.
STOP_MARGIN = 5
_UNIT_NAME = re.compile(r"[A-Za-z0-9:_.\\-]+")
_BIND_FLAGS = ("-b", "--bind")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pronghorn systemd-unit", allow_abbrev=False, add_help=False,
        usage="%(prog)s [--name NAME] [--user USER] [--group GROUP] [--socket] "
              "[--output-dir DIR] [OPTIONS] MODULE[:CALLABLE]",
        description="Print a systemd service unit that runs pronghorn with OPTIONS and the app "
                    "(and with --socket, a matching .socket unit).",
        epilog="OPTIONS are the server's (pronghorn --help), checked as the server checks them; "
               "its -n, -u and -g (process name, the workers' user and group) go into ExecStart.")
    parser.add_argument("--help", action="help", help="show this help and exit")
    parser.add_argument("--name", default="pronghorn",
                        help="the unit name: NAME.service (and NAME.socket); default: pronghorn")
    parser.add_argument("--user", help="User= of the service (the whole service runs as USER)")
    parser.add_argument("--group", help="Group= of the service")
    parser.add_argument("--socket", action="store_true",
                        help="socket activation: also write NAME.socket, listening on each --bind "
                             "address; the service serves the sockets systemd passes")
    parser.add_argument("--output-dir", metavar="DIR",
                        help="write NAME.service (and NAME.socket) into DIR instead of printing")
    return parser


# -- quoting ------------------------------------------------------------------------------------------
# systemd unquotes and C-unescapes each word of ExecStart= and Environment=, expands %-specifiers in
# every setting, and expands $VAR in ExecStart= when the service starts: a word is written so that
# all of that gives back exactly the text we were given.

_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./$-]+")
_C_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _specifiers(text: str) -> str:
    return text.replace("%", "%%")


def _quote(word: str, dollar: bool) -> str:
    text = _specifiers(word)
    if dollar:
        text = text.replace("$", "$$")
    if _PLAIN.fullmatch(text):
        return text
    escaped = "".join(_C_ESCAPES.get(char, char) if char.isprintable() or char in _C_ESCAPES
                      else f"\\x{ord(char):02x}" for char in text)
    return f'"{escaped}"'


def exec_word(word: str) -> str:
    """One argument of ExecStart=, as systemd will pass it."""
    if word == ";":
        return "\\;"  # a lone ";" would separate two commands
    return _quote(word, dollar=True)


def environment_line(name: str, value: str) -> str:
    return f"Environment={_quote(f'{name}={value}', dollar=False)}"


# -- the command line ---------------------------------------------------------------------------------

def executable() -> list[str]:
    """How this pronghorn was started, absolute: the ``pronghorn`` script, else ``python -m
    pronghorn``. Symlinks are kept: a virtualenv's bin/python is a symlink whose target is outside
    the virtualenv."""
    script = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if script and os.path.basename(script) != "__main__.py" and os.access(script, os.X_OK):
        return [script]
    return [os.path.abspath(sys.executable), "-m", "pronghorn"]


def without_binds(argv: Sequence[str]) -> list[str]:
    """``argv`` without its -b/--bind options: the .socket unit listens instead."""
    result: list[str] = []
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in _BIND_FLAGS:
            skip = True
        elif token.startswith("--bind=") or (token.startswith("-b") and not token.startswith("--")):
            pass
        else:
            result.append(token)
    return result


def listen_stream(address: str, cwd: str) -> str:
    """A --bind address as ListenStream= wants it; raises ValueError for what systemd cannot take."""
    kind, where = parse_bind(address)
    if kind == "unix":
        return os.path.normpath(os.path.join(cwd, where))
    if kind == "fd":
        raise ValueError(f"--bind {address}: a file descriptor cannot be a .socket unit's address")
    host, port = where
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"--bind {address}: a .socket unit listens on an IP address, not a host "
                         "name (use 127.0.0.1, [::1], 0.0.0.0 or [::])") from None
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


# -- the units ----------------------------------------------------------------------------------------

def _describe(name: str, what: str) -> str:
    return what if name == "pronghorn" else f"{name} ({what})"


def service_unit(name: str, cfg: Config, exec_start: Sequence[str], cwd: str,
                 environ: dict[str, str], user: str | None, group: str | None,
                 socket: bool) -> str:
    lines = [f"# {name}.service, written by pronghorn systemd-unit",
             "[Unit]",
             f"Description={_specifiers(_describe(name, f'pronghorn serving {cfg.app_uri}'))}"]
    if socket:
        lines += [f"Requires={name}.socket", f"After={name}.socket network.target"]
    else:
        lines.append("After=network.target")
    lines += ["", "[Service]",
              # The master sends READY=1 once its workers answer, and RELOADING=1/READY=1 on HUP.
              "Type=notify"]
    if user:
        lines.append(f"User={_specifiers(user)}")
    if group:
        lines.append(f"Group={_specifiers(group)}")
    for variable in ENVIRONMENT_VARIABLES:
        if environ.get(variable):
            lines.append(environment_line(variable, environ[variable]))
    if not socket:
        # A unix socket in /run/NAME/ needs that directory to exist and belong to User=.
        runtime = sorted({parts[2] for address in cfg.bind
                          if parse_bind(address)[0] == "unix"
                          for parts in [Path(listen_stream(address, cwd)).parts]
                          if len(parts) > 3 and parts[1] == "run"})
        for directory in runtime:
            lines.append(f"RuntimeDirectory={_specifiers(directory)}")
    lines += [f"WorkingDirectory={_specifiers(cwd)}",
              "ExecStart=" + " ".join(exec_word(word) for word in exec_start),
              "ExecReload=/bin/kill -s HUP $MAINPID",
              # TERM to the master only (it stops its workers gracefully); KILL to all at the end.
              "KillMode=mixed",
              f"TimeoutStopSec={math.ceil(cfg.graceful_timeout) + STOP_MARGIN}",
              "Restart=on-failure",
              "", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


def socket_unit(name: str, cfg: Config, cwd: str, user: str | None = None,
                group: str | None = None) -> str:
    addresses = [listen_stream(address, cwd) for address in cfg.bind]
    lines = [f"# {name}.socket, written by pronghorn systemd-unit",
             "[Unit]",
             f"Description={_specifiers(_describe(name, 'pronghorn listening sockets'))}",
             "", "[Socket]"]
    lines += [f"ListenStream={_specifiers(address)}" for address in addresses]
    if any(address.startswith("[") for address in addresses):
        # pronghorn's own IPv6 listeners are IPv6-only, so [::]:8000 and 0.0.0.0:8000 can coexist.
        lines.append("BindIPv6Only=ipv6-only")
    lines.append(f"Backlog={cfg.backlog}")
    if cfg.reuse_port:
        lines.append("ReusePort=true")
    if any(address.startswith("/") for address in addresses):
        # systemd, not pronghorn, creates these socket files, so --umask and --user/--group would
        # not reach them: say the same here (systemd's own default, 0666, lets every local user
        # connect and, as a trusted unix-socket peer, claim any client address in X-Forwarded-For).
        lines.append(f"SocketMode={0o777 & ~cfg.umask:04o}")
        owner = user or (str(cfg.user) if cfg.user is not None else None)
        owner_group = group or (str(cfg.group) if cfg.group is not None else None)
        if owner:
            lines.append(f"SocketUser={_specifiers(owner)}")
        if owner_group:
            lines.append(f"SocketGroup={_specifiers(owner_group)}")
    lines += ["", "[Install]", "WantedBy=sockets.target", ""]
    return "\n".join(lines)


def _fail(message: str) -> NoReturn:
    print(f"pronghorn systemd-unit: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: Sequence[str]) -> int:
    parser = build_parser()
    try:
        options, server_argv = parser.parse_known_args(list(argv))
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        _fail(str(exc))
    name = options.name.removesuffix(".service")
    if not _UNIT_NAME.fullmatch(name):
        _fail(f"--name {options.name!r}: a unit name has letters, digits and :_.\\- only")
    # The service will not see this shell's PRONGHORN_CMD_ARGS, PORT or WEB_CONCURRENCY: check the
    # command line without them, as systemd will run it.
    service_environ = {key: value for key, value in os.environ.items()
                       if key not in (*CMD_ARGS_VARIABLES, "PORT", "WEB_CONCURRENCY")}
    try:
        cfg = reload_config(server_argv, environ=service_environ)
    except ConfigError as exc:  # worded as the server words it, "did you mean" included
        if isinstance(exc, UsageError):
            server_parser().print_usage(sys.stderr)
        _fail(str(exc))
    if cfg.daemon:
        _fail("--daemon: a systemd service must stay in the foreground (systemd supervises it)")
    for label, value, lookup in (("--user", options.user, pwd.getpwnam),
                                 ("--group", options.group, grp.getgrnam)):
        if value:
            try:
                lookup(value)
            except KeyError:
                # The unit may be meant for another machine: say so, but write it.
                print(f"pronghorn systemd-unit: warning: {label} {value!r} does not exist here",
                      file=sys.stderr)
    cwd = os.getcwd()
    exec_start = executable() + (without_binds(server_argv) if options.socket else server_argv)
    units = {f"{name}.service": service_unit(name, cfg, exec_start, cwd, service_environ,
                                             options.user, options.group, options.socket)}
    if options.socket:
        try:
            units[f"{name}.socket"] = socket_unit(name, cfg, cwd, options.user, options.group)
        except ValueError as exc:
            _fail(str(exc))
    if options.output_dir:
        directory = Path(options.output_dir)
        for filename, text in units.items():
            try:
                (directory / filename).write_text(text)
            except OSError as exc:
                _fail(f"cannot write {directory / filename}: {exc.strerror}")
            print(directory / filename)
        return 0
    sys.stdout.write("\n".join(units.values()))
    return 0

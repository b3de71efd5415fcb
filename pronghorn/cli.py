"""`pronghorn [OPTIONS] MODULE[:CALLABLE]`: the command line, built from the settings registry.

Sources, lowest to highest (as in Gunicorn): the defaults (and WEB_CONCURRENCY, PORT), the config file,
``PRONGHORN_CMD_ARGS`` (or ``GUNICORN_CMD_ARGS`` when ours is unset; split like a shell would and parsed
like the command line), the command line. A ``-c`` in the environment's arguments picks the config file
unless the command line has one. :func:`reload_config` does all of it, at start-up and on every HUP.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shlex
import sys
import traceback
from typing import Any, Callable, Mapping, NamedTuple, NoReturn, Sequence

from . import __version__
from .compiled import describe
from .config import (HOOK_SPECS, KNOWN_GUNICORN_SETTINGS, SETTINGS, Config, ConfigError, Hooks, Setting,
                     parse_bind)
from .config.file import (APP_NAME, inert_flag_value, load as load_config_file,
                          unknown_names_text, unsupported_message)
from .config.settings import DEFAULT_SOURCE, SECTIONS, convert_value, environment_defaults
from .config.values import mismatched_scheme_key
from .logs import load_logger_class, setup_logging

COMMAND_LINE = "command line"
# Both are read when both are set: GUNICORN_CMD_ARGS first, then PRONGHORN_CMD_ARGS over it (a
# deployment moving from Gunicorn may set ours beside its old one).
CMD_ARGS_VARIABLES = ("PRONGHORN_CMD_ARGS", "GUNICORN_CMD_ARGS")
_GUNICORN_DEST = "gunicorn:"  # argparse dest prefix of Gunicorn flags we know but do not implement
_CHECK_FLAGS = ("--check-config", "--print-config")


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
        epilog="pronghorn systemd-unit [OPTIONS] MODULE[:CALLABLE] prints a systemd unit for a "
               "command line (see pronghorn systemd-unit --help).",
    )
    parser.add_argument("app_uri", metavar="MODULE[:CALLABLE]", nargs="?", default=None,
                        help="The WSGI application, e.g. mysite.wsgi or app:create_app() (or "
                             f"{APP_NAME} in the config file)")
    parser.add_argument("-v", "--version", action="version", version=f"pronghorn {__version__} ({describe()})")
    groups: dict[str, argparse._ArgumentGroup] = {
        section: parser.add_argument_group(section) for section in SECTIONS}  # in SECTIONS order
    for setting in SETTINGS:
        group = groups.get(setting.section)
        if group is None:
            group = groups[setting.section] = parser.add_argument_group(setting.section)
        # Values stay text here and are converted afterwards (convert_value), as the config file's
        # are, so that a bad value reads "--workers: 'two' is not an integer" wherever it came from.
        if not setting.flags:
            continue  # set in the config file only (secure_scheme_headers, as in Gunicorn)
        if setting.flag_only:
            group.add_argument(*setting.flags, dest=setting.name, action="store_const",
                               const=setting.switch_value, default=None, help=setting.help.replace("%", "%%"))
            continue
        optional: dict[str, Any] = {}
        if setting.const is not None:  # "--proxy-protocol" alone means its const ("auto")
            optional = {"nargs": "?", "const": setting.const}
        group.add_argument(
            *setting.flags, dest=setting.name, metavar=setting.metavar or "VALUE",
            action="append" if setting.multiple else "store", default=None,
            help=setting.help.replace("%", "%%"),  # argparse formats help with %
            **optional,
        )
    # Gunicorn's flags for what pronghorn does not implement: hidden, parsed so that a harmless value
    # (--http-parser auto) is accepted and any other gets the advice, not "unrecognized".
    ours = {setting.name for setting in SETTINGS}
    for name, known in KNOWN_GUNICORN_SETTINGS.items():
        if not known.flags or name in ours:  # the registry wins over a stale entry
            continue
        kwargs: dict[str, Any] = {"dest": _GUNICORN_DEST + name, "default": None,
                                  "help": argparse.SUPPRESS}
        if known.metavar is None:
            kwargs["action"] = "store_true"
        elif known.metavar.startswith("["):
            kwargs.update(nargs="?", const=True)
        parser.add_argument(*known.flags, **kwargs)
    return parser


def _long_flag(setting: Setting) -> str:
    return next((flag for flag in setting.flags if flag.startswith("--")), setting.flags[0])


def _typed_flag(argv: Sequence[str], flags: Sequence[str]) -> str:
    """Which of ``flags`` the user typed in ``argv`` (for messages)."""
    for token in argv:
        for flag in flags:
            if token == flag or token.startswith(flag + "="):
                return flag
    return flags[-1]


def _unrecognized(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    """The message for arguments argparse did not know, with the flag the user probably meant."""
    flags = [flag for action in parser._actions if action.help is not argparse.SUPPRESS
             for flag in action.option_strings]
    for extra in extras:
        if extra.startswith("-") and extra != "-":
            flag = extra.split("=", 1)[0]
            match = difflib.get_close_matches(flag, flags, n=1)
            return f"unrecognized argument {flag}" + (f"; did you mean {match[0]}?" if match else "")
    return f"unrecognized arguments: {' '.join(extras)}"


class _Layer(NamedTuple):
    """What one source set: "command line", "PRONGHORN_CMD_ARGS", "config file PATH"."""

    label: str
    values: dict[str, Any]
    app_uri: str | None


def _complain(label: str, message: str) -> NoReturn:
    if label == COMMAND_LINE:
        raise UsageError(message)
    raise ConfigError(f"{label}: {message}")


_ATTACHED_ONLY = {flag: setting.const for setting in SETTINGS if setting.value_attached
                  for flag in setting.flags}


def _parse_arguments(parser: argparse.ArgumentParser, argv: Sequence[str], label: str) -> _Layer:
    """Parse command-line style arguments (the command line, or PRONGHORN_CMD_ARGS) into values."""
    # A flag whose value must be attached, given alone, is its const (Setting.value_attached).
    tokens = [f"{token}={_ATTACHED_ONLY[token]}" if token in _ATTACHED_ONLY else token
              for token in argv]
    try:
        args, extras = parser.parse_known_args(tokens)
        if extras:
            raise UsageError(_unrecognized(parser, extras))
    except UsageError as exc:
        _complain(label, str(exc))
    given = vars(args)
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        if given.get(setting.name) is None:
            continue
        try:
            values[setting.name] = convert_value(setting, given[setting.name])
        except ValueError as exc:
            _complain(label, f"{_long_flag(setting)}: {exc}")
    for name, known in KNOWN_GUNICORN_SETTINGS.items():
        value = given.get(_GUNICORN_DEST + name)
        if value is not None and not inert_flag_value(known, value):
            _complain(label, unsupported_message(name, _typed_flag(argv, known.flags)))
    return _Layer(label, values, given.get("app_uri"))


def _cmd_args_from_environment(environ: Mapping[str, str]) -> list[tuple[str, list[str]]]:
    """(variable, arguments) for each of PRONGHORN_CMD_ARGS and GUNICORN_CMD_ARGS that is set,
    the one that wins first."""
    found = []
    for variable in CMD_ARGS_VARIABLES:
        if variable in environ:
            try:
                found.append((variable, shlex.split(environ[variable])))
            except ValueError as exc:
                raise ConfigError(f"{variable}: cannot split {environ[variable]!r} into arguments: "
                                  f"{exc}") from None
    return found


def reload_config(argv: Sequence[str], cwd: str | None = None,
                  environ: Mapping[str, str] | None = None, *,
                  base: Mapping[str, Any] | None = None, require_app: bool = True) -> Config:
    """The configuration from the defaults (and WEB_CONCURRENCY, PORT), the config file,
    GUNICORN_CMD_ARGS, PRONGHORN_CMD_ARGS and the command line ``argv``, lowest to highest;
    ``cfg.sources`` says where each value came from.

    Reads the config file and the environment (default: ``os.environ``) afresh each time (HUP calls
    this); relative paths are taken from ``cwd`` (default: the current directory). ``base`` holds
    values below the config file's (what an embedding application's ``init`` returns); without
    ``require_app`` no MODULE is needed (an embedding application loads its own). Any problem raises
    ConfigError (UsageError for the command line) with a one-paragraph message that names the source
    and the setting; nothing is printed and nothing exits.
    """
    environ = os.environ if environ is None else environ
    parser = build_parser()
    layers = [_parse_arguments(parser, argv, COMMAND_LINE)]  # highest first
    for variable, arguments in _cmd_args_from_environment(environ):
        layers.append(_parse_arguments(parser, arguments, variable))
    given_config = next((layer.values["config"] for layer in layers if "config" in layer.values),
                        None)
    loaded = load_config_file(given_config, cwd)
    file_label = None
    if loaded is not None:
        file_label = f"config file {loaded.path}"
        layers.append(_Layer(file_label, loaded.values, loaded.app_uri))
    if base:
        layers.append(_base_layer(base))
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}  # where each value came from: messages and --print-config
    app_uri = ""
    for layer in reversed(layers):  # lowest first; each replaces what the one below set
        for name, value in layer.values.items():
            values[name], sources[name] = value, layer.label
        if layer.app_uri:
            app_uri, sources["wsgi_app"] = layer.app_uri, layer.label
    try:
        for name, (value, variable) in environment_defaults(environ, skip=values).items():
            values[name], sources[name] = value, variable
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if values.get("paste"):
        app_uri = _paste_application(values, sources, cwd)
    for setting in SETTINGS:  # the rest are defaults (Config must not read os.environ again)
        if setting.name not in values:
            values[setting.name], sources[setting.name] = setting.initial(), DEFAULT_SOURCE
    cfg = Config(sources=sources, app_uri=app_uri, argv=argv,
                 hooks=Hooks(loaded.hooks) if loaded is not None else None,
                 config_file=loaded.path if loaded is not None else None, **values)

    def fail(name: str, flag: str, problem: str) -> NoReturn:
        where = sources.get(name, DEFAULT_SOURCE)
        if where == COMMAND_LINE:
            raise UsageError(f"{flag}: {problem}")
        if where in CMD_ARGS_VARIABLES:
            raise ConfigError(f"{where}: {flag}: {problem}")
        if loaded is not None and where == file_label:
            raise ConfigError(f"{loaded.path}: {name}: {problem}")
        if where == DEFAULT_SOURCE:
            raise ConfigError(f"{name}: {problem}")
        raise ConfigError(f"{where}: {name}: {problem}")  # an environment variable (PORT, ...)

    if loaded is not None and loaded.warnings:
        if cfg.strict_config:
            raise ConfigError(f"{loaded.path}: " + unknown_names_text(loaded.warnings))
        cfg.config_warnings = loaded.warnings
    if not cfg.app_uri and require_app:
        raise UsageError("the following arguments are required: MODULE[:CALLABLE] (or set "
                         f"{APP_NAME} in the config file)")
    check_values(cfg, fail)
    return cfg


EMBEDDING = "application"  # the source of values an embedding application gives


def _base_layer(given: Mapping[str, Any]) -> _Layer:
    """An embedding application's own settings (Gunicorn's ``init`` result), converted and checked
    as a config file's are."""
    by_name = {setting.name: setting for setting in SETTINGS}
    values: dict[str, Any] = {}
    for key, value in given.items():
        name = key.lower()
        setting = by_name.get(name)
        if setting is None:
            raise ConfigError(f"{EMBEDDING}: {name!r} is not a setting")
        if value is None:
            continue
        try:
            values[name] = convert_value(setting, value)
        except ValueError as exc:
            raise ConfigError(f"{EMBEDDING}: {name}: {exc}") from None
    return _Layer(EMBEDDING, values, None)


def _paste_application(values: dict[str, Any], sources: dict[str, str], cwd: str | None) -> str:
    """--paste: the ini file (absolute, from the directory we started in, as Gunicorn takes it) is
    the application, whatever MODULE says; its [loggers] configure the logs unless --log-config
    (or a config file's logconfig) names another file."""
    from .wsgi.loader import paste_file, paste_has_logging

    uri = os.path.join(cwd or os.getcwd(), values["paste"])
    path = paste_file(uri)
    if not os.path.isfile(path):
        where = sources.get("paste", COMMAND_LINE)
        raise ConfigError(f"{where}: paste: the PasteDeploy file {path!r} does not exist")
    values["paste"] = uri
    if "logconfig" not in values and paste_has_logging(path):
        values["logconfig"], sources["logconfig"] = path, "paste"
    sources["wsgi_app"] = sources["paste"]
    return uri


def check_values(cfg: Config, fail: Callable[[str, str, str], NoReturn]) -> None:
    """The checks every configuration passes before the master uses it, whoever built it (the
    command line here, an embedding application in pronghorn.app): ``fail(name, flag, problem)``
    raises the error, worded for where the value came from."""
    for address in cfg.bind:
        try:
            parse_bind(address)
        except ValueError as exc:
            fail("bind", "--bind", str(exc))
    from .workers import GEVENT_MISSING, WorkerClassError, mapped_alias, resolve_worker_class

    alias_note = mapped_alias(cfg.worker_class)
    if alias_note is not None and alias_note not in cfg.notes:
        cfg.notes.append(alias_note)
    try:
        # The canonical name from here on: Gunicorn's class paths and sync-with-threads resolved.
        cfg.worker_class = resolve_worker_class(cfg.worker_class, cfg.threads)
    except WorkerClassError as exc:
        if str(exc) == GEVENT_MISSING:
            raise ConfigError(str(exc)) from None  # one line, naming what to install
        fail("worker_class", "--worker-class", str(exc))
    if cfg.workers < 1:
        fail("workers", "--workers", "must be at least 1")
    if "h2" in cfg.http_protocols.split(","):
        _check_http2(cfg, fail)
    from .tls import check_settings as tls_problem

    problem_text = tls_problem(cfg)
    if problem_text is not None:
        name, _, why = problem_text.partition(": ")
        fail(name, "--" + name.replace("_", "-"), why)
    from .master.reloader import engine_problem

    problem = engine_problem(cfg.reload_engine, cfg.reload)
    if problem is not None:
        kind, message = problem
        if kind == "missing":
            raise ConfigError(message)  # one line, naming the package to install
        fail("reload_engine", "--reload-engine", message)


def _check_http2(cfg: Config, fail: Callable[[str, str, str], NoReturn]) -> None:
    """h2 in --http-protocols: the library is there (not imported: the master stays lean), and
    HTTP/2 can be reached at all."""
    import importlib.util

    if importlib.util.find_spec("h2") is None:
        raise ConfigError("--http-protocols h2 needs the h2 library: pip install 'pronghorn[http2]'")
    from .tls import enabled as tls_enabled

    note = ("--http-protocols has h2 but there is no TLS and --http2-cleartext is off: HTTP/2 "
            "will never be used")
    if not tls_enabled(cfg) and cfg.http2_cleartext == "off" and note not in cfg.notes:
        cfg.notes.append(note)


def parse_config(argv: Sequence[str]) -> Config:
    """The start-up configuration; a problem prints its message and exits with status 2 (1 under
    --check-config or --print-config, as Gunicorn's check exits)."""
    try:
        return reload_config(argv)
    except ConfigError as exc:
        if isinstance(exc, UsageError):
            build_parser().print_usage(sys.stderr)
        print(f"pronghorn: error: {exc}", file=sys.stderr)
        raise SystemExit(1 if _checking(argv) else 2) from None


def _checking(argv: Sequence[str]) -> bool:
    """Whether --check-config or --print-config was asked for (read from the raw arguments, for when
    the configuration itself cannot be read)."""
    tokens = list(argv)
    try:
        for _, arguments in _cmd_args_from_environment(os.environ):
            tokens += arguments
    except ConfigError:
        pass
    return any(token.split("=", 1)[0] in _CHECK_FLAGS for token in tokens)


def format_config(cfg: Config) -> str:
    """--print-config: Gunicorn's format, or with --print-config=annotated, the annotated one."""
    if cfg.print_config == "annotated":
        return format_config_annotated(cfg)
    return format_config_plain(cfg)


def _plain_value(value: Any) -> str:
    if callable(value):
        return f"<{getattr(value, '__qualname__', type(value).__name__)}()>"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # timeout = 30, as Gunicorn (whose seconds are ints) prints it
    return str(value)


def format_config_plain(cfg: Config) -> str:
    """--print-config as Gunicorn prints it: ``name = value``, the names sorted and padded as
    Gunicorn pads them (to its longest setting name), values as str() prints them, hooks as
    ``<qualname()>`` (None when not set), wsgi_app as the config file set it."""
    rows: dict[str, Any] = {setting.name: getattr(cfg, setting.name) for setting in SETTINGS}
    rows["print_config"] = bool(cfg.print_config)  # Gunicorn's is a switch
    from_file = cfg.sources.get(APP_NAME, "").startswith("config file")
    rows[APP_NAME] = cfg.app_uri if from_file else None  # Gunicorn's wsgi_app is the file's only
    for hook in HOOK_SPECS:
        rows[hook] = cfg.hooks.get(hook)
    width = max(len(name) for name in [*rows, *KNOWN_GUNICORN_SETTINGS])
    return "".join(f"{name:<{width}} = {_plain_value(rows[name])}\n" for name in sorted(rows))


def format_config_annotated(cfg: Config) -> str:
    """--print-config=annotated: every setting (and wsgi_app), sorted by name, as
    ``name = value  # source``: a valid Python config file that also says where each value came from."""
    rows = [(setting.name, getattr(cfg, setting.name)) for setting in SETTINGS]
    rows.append((APP_NAME, cfg.app_uri or None))
    rows.sort()
    texts = [(name, oct(value) if name == "umask" else repr(value)) for name, value in rows]
    name_width = max(len(name) for name, _ in texts)
    value_width = min(max(len(text) for _, text in texts), 40)
    lines = ["# pronghorn --print-config: each setting, its value and where the value came from",
             f"# config file read: {cfg.config_file or 'none'}"]
    for name, text in texts:
        source = cfg.sources.get(name, DEFAULT_SOURCE)
        lines.append(f"{name:<{name_width}} = {text:<{value_width}}  # {source}")
    for hook in cfg.hooks.names():
        lines.append(f"# server hook {hook}: from config file {cfg.config_file}")
    return "\n".join(lines) + "\n"


def check_config(cfg: Config, app_loader: Callable[[], Any] | None = None) -> int:
    """--check-config (and --print-config, which implies it, as in Gunicorn): print the configuration
    if asked, then do what the master does before it starts — --env, --chdir, --pythonpath,
    --user/--group lookups, never --daemon — and import the application, without binding a socket or
    forking a worker. 0 if all went well; else 1, with the error (an import error's traceback)."""
    if cfg.print_config:
        sys.stdout.write(format_config(cfg))
        sys.stdout.flush()
    if cfg.config_warnings:
        print(f"pronghorn: warning: {unknown_names_text(cfg.config_warnings)}", file=sys.stderr)
    try:
        prepare_process(cfg, detach=False)
        load_logger_class(cfg.logger_class)  # (after --pythonpath: the class may live there)
    except (OSError, ValueError) as exc:
        print(f"pronghorn: error: {exc}", file=sys.stderr)
        return 1
    from .tls import enabled as tls_enabled, server_context

    if tls_enabled(cfg):
        try:
            server_context(cfg)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            print(f"pronghorn: error: cannot use the TLS certificate or key: {exc}", file=sys.stderr)
            return 1
    from .wsgi.loader import AppLoadError, app_from_config

    try:
        if app_loader is not None:
            app_loader()
        else:
            app_from_config(cfg)
    except AppLoadError as exc:
        print(f"pronghorn: error: cannot load the application {cfg.app_uri!r}: {exc}",
              file=sys.stderr)
        return 1
    except (Exception, SystemExit):
        print(f"pronghorn: error: the application {cfg.app_uri!r} failed to load:", file=sys.stderr)
        traceback.print_exc()
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server (``pronghorn systemd-unit`` is told apart before this, in __main__.py)."""
    args = list(sys.argv[1:] if argv is None else argv)
    start_cwd = os.getcwd()  # HUP re-reads a relative -c path from here, whatever --chdir did
    cfg = parse_config(args)  # cfg.argv: USR2 re-executes the same command line
    if cfg.check_config or cfg.print_config:
        return check_config(cfg)

    def reload() -> Config:
        """HUP: read the configuration again; an error is raised for the master to log."""
        return reload_config(args, cwd=start_cwd)

    return serve(cfg, reload, start_cwd=start_cwd)


def serve(cfg: Config, reload: Callable[[], Config] | None = None, *,
          app_loader: Callable[[], Any] | None = None, reexec_argv: Sequence[str] | None = None,
          start_cwd: str | None = None) -> int:
    """Prepare this process (--env, --chdir, --pythonpath, --daemon), set up the logs and run the
    master until it stops; its exit status. ``reload`` gives the configuration afresh on HUP;
    ``app_loader`` gives the app (default: the one ``cfg`` names); ``reexec_argv`` is the command
    USR2 starts the new master with (default: ``python -m pronghorn`` and ``cfg.argv``)."""
    start_cwd = start_cwd or os.getcwd()
    try:
        prepare_process(cfg)
        log = setup_logging(cfg)
    except (OSError, ValueError) as exc:
        print(f"pronghorn: {exc}", file=sys.stderr)
        return 2
    if cfg.config_warnings:
        log.warning(unknown_names_text(cfg.config_warnings))
    for key in filter(mismatched_scheme_key, cfg.secure_scheme_headers):
        log.warning("secure_scheme_headers: %r never matches a header (Gunicorn compares the keys "
                    "with upper-case header names; so does pronghorn): write %r", key,
                    key.strip().upper())
    for warning in unapplied_leniencies(cfg):
        log.warning(warning)
    for note in cfg.notes:
        log.info(note)
    from .master.arbiter import Arbiter

    arbiter = Arbiter(cfg, log, reload_config=reload, app_loader=app_loader,
                      reexec_argv=reexec_argv)
    arbiter.start_cwd = start_cwd  # USR2 re-executes from here: relative paths mean the same
    return arbiter.run()


def unapplied_leniencies(cfg: Config) -> list[str]:
    """One line for each Gunicorn parsing switch the configuration asks for that pronghorn accepts
    but does not apply (each would weaken request parsing, or has nothing to choose here)."""
    lines = []
    if cfg.strip_header_spaces:
        lines.append("strip_header_spaces is accepted but not applied: whitespace between a header "
                     "name and ':' lets a proxy and this server disagree on the request (request "
                     "smuggling), so such requests still get 400 (RFC 9112 5.1)")
    if cfg.header_map == "dangerous":
        lines.append("header_map = 'dangerous' is accepted but not applied: a header name with '_' "
                     "would share an environ key with its '-' twin (a client could pose as a "
                     "proxy's header), so such headers are dropped as with 'drop'; list the ones a "
                     "trusted proxy sends in forwarder_headers instead")
    if cfg.http_parser != "auto":
        lines.append(f"http_parser = {cfg.http_parser!r} is accepted and ignored: pronghorn always "
                     "parses requests with its own strict parser")
    return lines


def prepare_process(cfg: Config, detach: bool = True) -> None:
    """What the master does to itself before anything else: environment, directory, import path,
    and detaching (-D; not when ``detach`` is false, as for --check-config).

    The process umask is left as it was inherited: --umask applies only while a unix socket is
    bound (master.listeners), so the pidfile, the logs and the app's files follow the operator's
    umask (or a daemon's 022, see daemonize)."""
    from .master.process import daemonize, parse_env, resolve_group, resolve_user

    resolve_user(cfg.user)  # an unknown user or group stops us here, with its name
    resolve_group(cfg.group)
    os.environ.update(parse_env(cfg.raw_env))
    if cfg.chdir:
        os.chdir(cfg.chdir)
    if cfg.pythonpath:
        sys.path[0:0] = [path for path in cfg.pythonpath.split(",") if path]
    # A USR2 re-exec (PRONGHORN_FD handed over) is already a daemon's child: detaching again would
    # look to the old master like the new one exited at once.
    if cfg.daemon and detach and not os.environ.get("PRONGHORN_FD"):
        daemonize(cfg.enable_stdio_inheritance)


if __name__ == "__main__":
    sys.exit(main())

"""Gunicorn-format Python config files.

A config file is Python, executed as a module (``__name__ == "__config__"``, ``__file__`` set; its
directory is not put on ``sys.path``). Its module-level names are then read:

- a name that is a setting (``bind``, ``workers``, ``timeout``, ... every ``Setting.name`` in
  ``SETTINGS``) sets that setting. A value may be a Python value (an int, a float for seconds, a
  bool for switches, a list of str for repeatable settings, where a single str is a one-item list)
  or a string, which is converted as the command line converts it. A wrong value is an error naming
  the setting and why: ``workers: 'two' is not an integer``;
- a name that is a server hook (``post_fork``, ``when_ready``, ... see ``hooks.HOOK_SPECS``) sets
  that hook; it must be callable with the hook's arguments;
- ``wsgi_app`` names the application when the command line does not (Gunicorn's spelling);
- a Gunicorn setting pronghorn does not implement (``KNOWN_GUNICORN_SETTINGS``, the one list of
  them, each with what to use instead) is an error, "'dirty_workers' is a Gunicorn setting
  pronghorn does not support: run long-lived background work ...", unless its value asks for
  nothing pronghorn does not already do: Gunicorn's own default (``dirty_workers = 0``,
  ``http_parser = "auto"``), or any value of the few settings that are harmless to ignore. A config
  that spells out Gunicorn's defaults keeps working; one that asks for a missing feature is told so
  rather than silently getting less. The command line treats these settings' flags the same way
  (``--dirty-timeout 300`` is accepted, ``--dirty-workers 2`` is an error with the advice).

Every other name is the file's own business, with one exception. The rule for unknown names:

- names starting with ``_``, modules, classes, and callables defined elsewhere (``from os import
  cpu_count``) are ignored;
- any other name — a variable, or a function defined in the file — that looks like a typo of a
  setting or hook (``difflib`` ratio >= 0.8 against a setting, a hook, ``wsgi_app`` or a known
  Gunicorn setting: "worker is not a setting; did you mean workers?", "post_frok is not a server
  hook; did you mean post_fork?") is ignored too, and named, with every other such name, in one
  warning; ``--strict-config`` makes that warning an error. Unless the file also sets what it
  looks like: ``keepalive_str`` beside ``keepalive`` is a helper, as in the container template;
- anything else (``MY_PORT = 8000``, ``cores = cpu_count()``) is a helper and is ignored.

Gunicorn ignores every unknown name, so a misspelt ``worker = 4`` silently runs one worker; we say so,
while users' real config files, full of helper variables (``log_level = os.getenv(...)``), run as
under Gunicorn. Comparison is case-sensitive: ``WORKERS = 4`` is a constant, ``Workers = 4`` a typo.
A helper can be renamed with a leading ``_`` to keep the warning quiet. A setting whose value is None
(``errorlog = os.getenv("ERRORLOG")`` with the variable unset) is not set, as in Gunicorn, and so is
a Gunicorn setting pronghorn does not implement; but ``forwarded_allow_ips`` and ``proxy_allow_ips``
set to None trust nobody, as Gunicorn's empty list does. ``config`` cannot be set from inside a
config file.

Where the file comes from: ``-c PATH`` (also ``file:PATH``, or ``python:MODULE`` for an importable
module). Without ``-c``, ``./pronghorn.conf.py`` is read if it exists, else ``./gunicorn.conf.py``
(relative to the current directory). ``-c`` naming a missing file is an error.

Every problem raises :class:`ConfigError` with a one-paragraph message that starts with the file
(and, when known, the line): ``/srv/app/gunicorn.conf.py:4: workers: 'two' is not an integer``.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import inspect
import os
import sys
import types
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from .hooks import HOOK_SPECS, validate_hook
from .settings import SETTINGS, Setting, convert_value, parse_bind

DEFAULT_FILES = ("pronghorn.conf.py", "gunicorn.conf.py")
MODULE_NAME = "__config__"


class ConfigError(Exception):
    """The configuration cannot be used; the message says where and why, in one paragraph."""


# -- Gunicorn's settings that pronghorn does not implement --------------------------------------------

_ANY = object()  # marker: every value is harmless to ignore


class GunicornSetting(NamedTuple):
    flags: tuple[str, ...]      # Gunicorn's command-line spellings, to explain an unknown flag
    advice: str                 # what to do instead: in the error message and docs/settings.md
    inert: tuple[Any, ...]      # values that ask for nothing pronghorn does not do (or (_ANY,))
    metavar: str | None = None  # the flag takes a value (METAVAR), an optional one ("[MODE]"), or
    #                             is a switch (None)


def _g(flags: tuple[str, ...], advice: str, *inert: Any, value: str | None = None) -> GunicornSetting:
    return GunicornSetting(flags, advice, inert, value)


_HTTP2 = ("HTTP/2 is not supported; let nginx speak HTTP/2 to clients (listen ... http2) and "
          "HTTP/1.1 to pronghorn")
_DIRTY = ("Gunicorn's dirty arbiters are not supported; run long-lived background work in its own "
          "service or task queue")

#: Gunicorn's documented settings (and hooks) that are not in our registry: the values that are safe
#: to accept (Gunicorn's default and its equivalents) and what to use instead. A setting that
#: pronghorn implements is declared in settings.SETTINGS instead; the registry wins if a name is in both.
KNOWN_GUNICORN_SETTINGS: dict[str, GunicornSetting] = {
    # Worker processes
    # Debugging
    # Server mechanics
    "protocol": _g(("--protocol",), "only HTTP is served; use nginx's proxy_pass instead of "
                   "uwsgi_pass", "http", value="STRING"),
    "uwsgi_allow_ips": _g(("--uwsgi-allow-from",), "the uwsgi protocol is not supported (see "
                          "protocol)", "127.0.0.1,::1", "127.0.0.1", value="STRING"),
    # Logging
    # Process naming
    # SSL (ssl is never imported in the master, so its constants are spelled as numbers)
    # HTTP/2, ASGI (Gunicorn 24+)
    "http_protocols": _g(("--http-protocols",), _HTTP2, "h1", value="STRING"),
    "http2_cleartext": _g(("--http2-cleartext",), _HTTP2, "off", False, value="[MODE]"),
    "http2_max_concurrent_streams": _g(("--http2-max-concurrent-streams",), _HTTP2, 100, value="INT"),
    "http2_initial_window_size": _g(("--http2-initial-window-size",), _HTTP2, 65535, value="INT"),
    "http2_max_frame_size": _g(("--http2-max-frame-size",), _HTTP2, 16384, value="INT"),
    "http2_max_header_list_size": _g(("--http2-max-header-list-size",), _HTTP2, 65536, value="INT"),
    # Dirty arbiters (Gunicorn 25+)
    "dirty_apps": _g(("--dirty-app",), _DIRTY, [], value="STRING"),
    "dirty_workers": _g(("--dirty-workers",), _DIRTY, 0, value="INT"),
    "dirty_timeout": _g(("--dirty-timeout",), _DIRTY, 300, value="INT"),
    "dirty_threads": _g(("--dirty-threads",), _DIRTY, 1, value="INT"),
    "dirty_graceful_timeout": _g(("--dirty-graceful-timeout",), _DIRTY, 30, value="INT"),
    "on_dirty_starting": _g((), _DIRTY, None),
    "dirty_post_fork": _g((), _DIRTY, None),
    "dirty_worker_init": _g((), _DIRTY, None),
    "dirty_worker_exit": _g((), _DIRTY, None),
}

#: The config-file name for the application (Gunicorn's); the command line's MODULE wins over it.
APP_NAME = "wsgi_app"

_SETTINGS_BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}

#: The settings for which None is not "not set" under Gunicorn: its list validator makes None an
#: empty list, so ``forwarded_allow_ips = os.getenv("TRUSTED")`` with TRUSTED unset trusts no proxy
#: (not the default 127.0.0.1,::1). An empty allow-list is also ours for "nobody".
_NONE_IS_EMPTY = frozenset({"forwarded_allow_ips", "proxy_allow_ips"})
_TYPO_CUTOFF = 0.8


def inert_value(known: GunicornSetting, value: Any) -> bool:
    if _ANY in known.inert:
        return True
    return any(type(value) is type(inert) and value == inert for inert in known.inert)


def inert_flag_value(known: GunicornSetting, given: Any) -> bool:
    """Whether a Gunicorn flag as given on the command line (True for a switch, else its text) asks
    for nothing pronghorn does not do: ``--http-parser auto``, ``--http-protocols h1``."""
    if _ANY in known.inert:
        return True
    if given is True:
        return any(inert is True for inert in known.inert)
    text = str(given).strip()
    return any(isinstance(inert, (str, int)) and not isinstance(inert, bool) and text == str(inert)
               for inert in known.inert)


def unsupported_message(name: str, subject: str) -> str:
    """"SUBJECT is a Gunicorn ... pronghorn does not support yet: ADVICE" for Gunicorn setting
    ``name`` (SUBJECT is the flag as typed, or the quoted config-file name)."""
    kind = "option" if subject.startswith("-") else "setting"
    return (f"{subject} is a Gunicorn {kind} pronghorn does not support yet: "
            f"{KNOWN_GUNICORN_SETTINGS[name].advice}")


# -- loading --------------------------------------------------------------------------------------------

@dataclass
class ConfigFile:
    """What a config file set: setting values, hooks and (optionally) the application."""

    path: str                                  # the file read (absolute), or "python:MODULE"
    values: dict[str, Any] = field(default_factory=dict)
    hooks: dict[str, Callable[..., Any]] = field(default_factory=dict)
    app_uri: str | None = None
    # Names that look like a misspelt setting or hook ("worker is not a setting; did you mean
    # workers?"), for one warning (an error with --strict-config).
    warnings: list[str] = field(default_factory=list)


def find_config_file(given: str | None, cwd: str | None = None) -> str | None:
    """The config file to read: ``-c``'s value (absolute, or ``python:MODULE``), else the first of
    DEFAULT_FILES that exists in ``cwd`` (default: the current directory), else None."""
    base = cwd if cwd is not None else os.getcwd()
    if given is not None:
        if given.startswith("python:"):
            return given
        if given.startswith("file:"):
            given = given[len("file:"):]
        if not given:
            raise ConfigError("-c/--config: no file named")
        path = os.path.join(base, os.path.expanduser(given))
        if not os.path.exists(path):
            raise ConfigError(f"-c/--config: the config file {path!r} does not exist")
        return os.path.normpath(path)
    for name in DEFAULT_FILES:
        path = os.path.join(base, name)
        if os.path.isfile(path):
            return os.path.normpath(path)
    return None


def load_config_file(path: str, cwd: str | None = None) -> ConfigFile:
    """Execute the config file at ``path`` (from :func:`find_config_file`) and read its names;
    ``python:MODULE`` is looked for in ``cwd`` (default: the current directory) first."""
    module, filename, source = _execute(path, cwd or os.getcwd())
    return read_namespace(vars(module), path, module.__name__, _assignment_lines(source, filename))


def load(given: str | None, cwd: str | None = None) -> ConfigFile | None:
    """Find and load the config file (see :func:`find_config_file`); None when there is none."""
    path = find_config_file(given, cwd)
    return None if path is None else load_config_file(path, cwd)


def _find_module(name: str, cwd: str) -> Any:
    """python:MODULE's spec, found as Gunicorn finds it: in the current directory, then sys.path
    (the ``pronghorn`` script's own directory is sys.path's first entry, not the current one)."""
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.util.find_spec(name)
    finally:
        if added:
            sys.path.remove(cwd)


def _execute(spec_text: str, cwd: str) -> tuple[types.ModuleType, str, bytes | None]:
    """Run the file (or python:MODULE) as a fresh module; errors name the file and line."""
    if spec_text.startswith("python:"):
        name = spec_text[len("python:"):]
        try:
            spec = _find_module(name, cwd)
        except (ImportError, ValueError) as exc:
            raise ConfigError(f"{spec_text}: cannot import the config module: {exc}") from None
        if spec is None or spec.origin is None or not os.path.isfile(spec.origin):
            raise ConfigError(f"{spec_text}: no config module named {name!r}")
        filename, module_name = spec.origin, name
    else:
        filename, module_name = spec_text, MODULE_NAME
    try:
        with open(filename, "rb") as handle:
            source = handle.read()
    except OSError as exc:
        raise ConfigError(f"{spec_text}: cannot read the config file: {exc.strerror or exc}") \
            from None
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        line = f":{exc.lineno}" if exc.lineno else ""
        text = f": {exc.text.strip()!r}" if exc.text and exc.text.strip() else ""
        raise ConfigError(f"{filename}{line}: the config file has a syntax error: {exc.msg}{text}") \
            from None
    except ValueError as exc:  # NUL bytes
        raise ConfigError(f"{filename}: the config file cannot be compiled: {exc}") from None
    module = types.ModuleType(module_name)
    module.__file__ = filename
    previous = sys.modules.get(module_name)
    sys.modules[module_name] = module  # as Gunicorn does; dataclasses and pickle look here
    try:
        exec(code, module.__dict__)
    except (Exception, SystemExit) as exc:
        if previous is not None:
            sys.modules[module_name] = previous
        else:
            sys.modules.pop(module_name, None)
        lineno = _line_in(exc.__traceback__, filename)
        where = f"{filename}:{lineno}" if lineno else filename
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise ConfigError(f"{where}: the config file raised {detail}") from None
    return module, filename, source


def _line_in(tb: types.TracebackType | None, filename: str) -> int | None:
    """The line of the innermost traceback frame that runs code from ``filename``."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _assignment_lines(source: bytes | None, filename: str) -> dict[str, int]:
    """name → the line of its last module-level binding (for pointing at a bad value)."""
    if source is None:
        return {}
    try:
        tree = ast.parse(source, filename)
    except (SyntaxError, ValueError):
        return {}
    lines: dict[str, int] = {}

    def visit(statements: list[ast.stmt]) -> None:
        for stmt in statements:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                lines[stmt.name] = stmt.lineno
                continue
            targets: list[ast.AST] = []
            if isinstance(stmt, ast.Assign):
                targets = list(stmt.targets)
            elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign, ast.For)):
                targets = [stmt.target]
            for target in targets:
                for node in ast.walk(target):
                    if isinstance(node, ast.Name):
                        lines[node.id] = stmt.lineno
            for block in ("body", "orelse", "finalbody"):  # if/for/while/with/try at module level
                visit(getattr(stmt, block, []))
            for handler in getattr(stmt, "handlers", []):
                visit(handler.body)

    visit(tree.body)
    return lines


def _candidates() -> list[str]:
    return [*_SETTINGS_BY_NAME, *HOOK_SPECS, APP_NAME, *KNOWN_GUNICORN_SETTINGS]


def suggest(name: str) -> str | None:
    """The setting, hook or Gunicorn setting ``name`` is most likely a typo of, if any."""
    matches = difflib.get_close_matches(name, _candidates(), n=1, cutoff=_TYPO_CUTOFF)
    return matches[0] if matches else None


def _is_foreign(value: Any, module_name: str) -> bool:
    """Modules, classes and callables defined elsewhere: imports, never settings or typos."""
    if inspect.ismodule(value) or inspect.isclass(value):
        return True
    return callable(value) and getattr(value, "__module__", None) != module_name


def read_namespace(namespace: dict[str, Any], path: str, module_name: str = MODULE_NAME,
                   lines: dict[str, int] | None = None) -> ConfigFile:
    """Turn a config module's names into a ConfigFile, by the rules in this module's docstring."""
    lines = lines or {}
    result = ConfigFile(path)
    for name, value in namespace.items():
        if name.startswith("_"):
            continue
        where = f"{path}:{lines[name]}" if name in lines else path
        setting = _SETTINGS_BY_NAME.get(name)
        if setting is not None:
            if value is None and name in _NONE_IS_EMPTY:
                value = ""
            elif value is None and name != "config":
                # os.getenv("X") for an X that is not set: as in Gunicorn, the setting is not set
                # (where Gunicorn would crash, at once or later, e.g. loglevel or workers, or
                # silence its log, errorlog, None is the default here too).
                continue
            if name == "config":
                raise ConfigError(f"{where}: config: a config file cannot name another config "
                                  "file; use -c on the command line")
            try:
                result.values[name] = convert_value(setting, value)
                if name == "bind":  # checked here, where the line is known
                    for address in result.values[name]:
                        parse_bind(address)
            except ValueError as exc:
                raise ConfigError(f"{where}: {name}: {exc}") from None
        elif name in HOOK_SPECS:
            if value is None:
                continue
            try:
                result.hooks[name] = validate_hook(name, value)
            except ValueError as exc:
                raise ConfigError(f"{where}: {exc}") from None
        elif name == APP_NAME:
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{where}: {APP_NAME}: {value!r} is not a string like "
                                  "'module:callable'")
            result.app_uri = value or None
        elif name in KNOWN_GUNICORN_SETTINGS:
            if value is not None and not inert_value(KNOWN_GUNICORN_SETTINGS[name], value):
                raise ConfigError(f"{where}: {unsupported_message(name, repr(name))}")
        elif _is_foreign(value, module_name):
            continue
        else:
            match = suggest(name)
            # A name whose look-alike the file sets too is that setting's helper
            # (keepalive_str beside keepalive), not a typo of it.
            if match is not None and match not in namespace:
                kind = "server hook" if match in HOOK_SPECS else "setting"
                result.warnings.append(f"{where}: {name} is not a {kind}; did you mean {match}?")
    return result


def unknown_names_text(warnings: list[str]) -> str:
    """The one message for a config file's names that look like misspelt settings or hooks."""
    return ("the config file sets names that are not settings or hooks (ignored, as Gunicorn "
            "does; prefix a helper's name with '_', or pass --strict-config to make this an "
            "error): " + "; ".join(warnings))

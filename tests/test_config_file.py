"""Gunicorn-format Python config files (-c, ./pronghorn.conf.py, ./gunicorn.conf.py) and server hooks.

In-process tests drive the loader (``reload_config``/``parse_config``) with config files in tmp_path;
process tests start a real server and check that what the file says takes effect.
"""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from conftest import APPS, ROOT, Server, connect, wait_ready
from pronghorn.cli import UsageError, parse_config, reload_config
from pronghorn.config import (HOOK_SPECS, KNOWN_GUNICORN_SETTINGS, SETTINGS, Config, ConfigError,
                              Hooks)
from pronghorn.config.hooks import validate_hook
from wire import Reader, get

APP = "echo:app"


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


def load(tmp_path: Path, source: str, *argv: str) -> Config:
    """reload_config with a config file holding ``source`` and the command line ``argv``."""
    path = write(tmp_path / "conf.py", source)
    return reload_config(["-c", str(path), *argv, APP])


def error_of(tmp_path: Path, source: str, *argv: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, source, *argv)
    return str(info.value)


# -- settings from the file ------------------------------------------------------------------------

GUNICORN_CONF = """
    import multiprocessing
    import os
    from os.path import join

    _here = os.path.dirname(__file__)
    bind = "127.0.0.1:9876"
    workers = 2
    timeout = 12
    keepalive = 3
    loglevel = "debug"
    errorlog = join(_here, "error.log")
    max_requests = 1000
    max_requests_jitter = 50
    raw_env = ["A=1", "B=2"]
    preload_app = True
    umask = 0o027
    proc_name = "site"

    def when_ready(server):
        return ("ready", server)

    def post_fork(server, worker):
        return ("forked", server, worker)
"""


def test_gunicorn_config_sets_settings_and_hooks(tmp_path: Path) -> None:
    cfg = load(tmp_path, GUNICORN_CONF)
    assert cfg.bind == ["127.0.0.1:9876"]  # a single str is a one-item list
    assert cfg.workers == 2
    assert cfg.timeout == 12
    assert cfg.keepalive == 3
    assert cfg.loglevel == "debug"
    assert cfg.errorlog == str(tmp_path / "error.log")  # __file__ is set
    assert (cfg.max_requests, cfg.max_requests_jitter) == (1000, 50)
    assert cfg.raw_env == ["A=1", "B=2"]
    assert cfg.preload_app is True
    assert cfg.umask == 0o027
    assert cfg.proc_name == "site"
    assert cfg.config == str(tmp_path / "conf.py")
    assert cfg.config_file == str(tmp_path / "conf.py")
    assert cfg.app_uri == APP
    assert cfg.hooks.has("when_ready") and cfg.hooks.has("post_fork")
    assert not cfg.hooks.has("pre_request")
    assert cfg.hooks.call("when_ready", "S") == ("ready", "S")
    assert cfg.hooks.call("post_fork", "S", "W") == ("forked", "S", "W")
    assert cfg.hooks.call("pre_request", "W", "R") is None  # unset: nothing to call


def test_values_may_be_strings_converted_as_the_command_line_converts_them(tmp_path: Path) -> None:
    cfg = load(tmp_path, """
        workers = "3"
        timeout = "7.5"
        backlog = "64"
        umask = "027"
        preload_app = "true"
        reuse_port = "False"
        bind = ["unix:/tmp/a.sock", "127.0.0.1:0"]
        user = 0
    """)
    assert (cfg.workers, cfg.timeout, cfg.backlog, cfg.umask) == (3, 7.5, 64, 0o027)
    assert cfg.preload_app is True and cfg.reuse_port is False
    assert cfg.bind == ["unix:/tmp/a.sock", "127.0.0.1:0"]
    assert cfg.user == "0"  # a uid number, as Gunicorn accepts


def test_every_setting_accepts_its_own_default(tmp_path: Path) -> None:
    """A file that spells out every default gives the default Config (every type is handled)."""
    defaults = Config()
    lines = [f"{s.name} = {getattr(defaults, s.name)!r}" for s in SETTINGS if s.name != "config"]
    cfg = load(tmp_path, "\n".join(lines))
    for setting in SETTINGS:
        if setting.name != "config":
            assert getattr(cfg, setting.name) == getattr(defaults, setting.name), setting.name


def test_without_a_file_everything_is_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = reload_config([APP])
    assert cfg.config is None and cfg.config_file is None
    assert cfg.bind == ["127.0.0.1:8000"] and cfg.timeout == 30
    assert isinstance(cfg.hooks, Hooks) and not cfg.hooks.has("post_fork")


def test_command_line_beats_the_file(tmp_path: Path) -> None:
    cfg = load(tmp_path, """
        workers = 3
        bind = ["127.0.0.1:1", "127.0.0.1:2"]
        timeout = 9
        loglevel = "warning"
    """, "-w", "5", "-b", "unix:/tmp/x.sock", "--log-level", "error")
    assert cfg.workers == 5
    assert cfg.bind == ["unix:/tmp/x.sock"]  # the command line's list replaces the file's
    assert cfg.loglevel == "error"
    assert cfg.timeout == 9  # not on the command line: the file's value stays


def test_wsgi_app_names_the_application_unless_the_command_line_does(tmp_path: Path) -> None:
    path = write(tmp_path / "conf.py", 'wsgi_app = "factories:create_app()"\n')
    assert reload_config(["-c", str(path)]).app_uri == "factories:create_app()"
    assert reload_config(["-c", str(path), APP]).app_uri == APP
    with pytest.raises(UsageError, match=r"MODULE\[:CALLABLE\].*wsgi_app"):
        reload_config(["-c", str(write(tmp_path / "empty.py", "workers = 1\n"))])


def test_file_prefix_and_python_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "conf.py", "workers = 4\n")
    assert reload_config(["-c", f"file:{tmp_path / 'conf.py'}", APP]).workers == 4
    name = f"pronghorn_conf_{uuid.uuid4().hex[:8]}"
    write(tmp_path / f"{name}.py", "workers = 6\ndef on_exit(server):\n    return 'bye'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = reload_config(["-c", f"python:{name}", APP])
    assert cfg.workers == 6 and cfg.hooks.call("on_exit", None) == "bye"
    assert cfg.config_file == f"python:{name}"
    with pytest.raises(ConfigError, match="no config module named 'no_such_conf_module'"):
        reload_config(["-c", "python:no_such_conf_module", APP])


# -- where the file comes from ---------------------------------------------------------------------

@pytest.mark.parametrize("files, expected", [
    ({"gunicorn.conf.py": 2}, "gunicorn.conf.py"),
    ({"pronghorn.conf.py": 3}, "pronghorn.conf.py"),
    ({"pronghorn.conf.py": 3, "gunicorn.conf.py": 2}, "pronghorn.conf.py"),
])
def test_default_files_in_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                files: dict[str, int], expected: str) -> None:
    for name, workers in files.items():
        write(tmp_path / name, f"workers = {workers}\n")
    monkeypatch.chdir(tmp_path)
    cfg = reload_config([APP])
    assert cfg.config_file == str(tmp_path / expected)
    assert cfg.workers == files[expected]
    assert cfg.config is None  # -c was not given


def test_dash_c_replaces_the_default_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "gunicorn.conf.py", "workers = 2\n")
    write(tmp_path / "other.py", "timeout = 4\n")
    monkeypatch.chdir(tmp_path)
    cfg = reload_config(["-c", "other.py", APP])
    assert (cfg.workers, cfg.timeout) == (Config().workers, 4)
    assert cfg.config_file == str(tmp_path / "other.py")


def test_relative_paths_are_read_from_the_given_directory(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """HUP passes the start-up directory, so --chdir does not lose a relative -c."""
    write(tmp_path / "conf.py", "workers = 7\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert reload_config(["-c", "conf.py", APP], cwd=str(tmp_path)).workers == 7
    with pytest.raises(ConfigError, match=re.escape(str(elsewhere / "conf.py"))):
        reload_config(["-c", "conf.py", APP])


def test_missing_config_file_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.conf.py"
    with pytest.raises(ConfigError) as info:
        reload_config(["-c", str(missing), APP])
    assert str(missing) in str(info.value) and "does not exist" in str(info.value)


# -- mistakes in the file --------------------------------------------------------------------------

@pytest.mark.parametrize("source, message", [
    ("workers = 'two'", "conf.py:1: workers: 'two' is not an integer"),
    ("workers = 2.5", "workers: 2.5 is not an integer"),
    ("workers = -1", "workers: -1 is negative"),
    ("workers = 0", "workers: must be at least 1"),
    ("timeout = 'soon'", "timeout: 'soon' is not a number"),
    ("timeout = [1]", "timeout: [1] is not a number"),
    ("preload_app = 1", "preload_app: 1 is not a boolean"),
    ("preload_app = 'yes'", "preload_app: 'yes' is not a boolean"),
    ("bind = 8000", "bind: 8000 is not a string or a list of strings"),
    ("bind = ['127.0.0.1:1', 2]", "bind: 2 in ['127.0.0.1:1', 2] is not a string"),
    ("x = 1\nbind = '[::1'", "conf.py:2: bind: '[::1': missing ']'"),
    ("umask = 0o7777", "umask: 4095 is not a umask"),
    ("loglevel = 3", "loglevel: 3 is not a string"),
    ("worker_class = 'eventlet'", "worker_class: 'eventlet': eventlet is deprecated upstream"),
    ("wsgi_app = 3", "wsgi_app: 3 is not a string"),
    ("config = 'other.py'", "config: a config file cannot name another config file"),
])
def test_bad_values_name_the_setting_and_why(tmp_path: Path, source: str, message: str) -> None:
    text = error_of(tmp_path, source)
    assert message in text
    assert str(tmp_path / "conf.py") in text


@pytest.mark.parametrize("source, message", [
    ("worker = 2", "worker is not a setting; did you mean workers?"),
    ("log_level = 'debug'", "log_level is not a setting; did you mean loglevel?"),
    ("keep_alive = 2", "keep_alive is not a setting; did you mean keepalive?"),
    ("Workers = 2", "Workers is not a setting; did you mean workers?"),
    ("max_request = 10", "max_request is not a setting; did you mean max_requests?"),
    ("def post_frok(server, worker):\n    pass",
     "post_frok is not a server hook; did you mean post_fork?"),
    ("when_ready_ = lambda server: None", "when_ready_ is not a server hook; did you mean when_ready?"),
    ("acceslog = '-'", "acceslog is not a setting; did you mean accesslog?"),
])
def test_typos_are_warned_of_with_a_suggestion_and_strict_config_makes_them_errors(
        tmp_path: Path, source: str, message: str) -> None:
    path = write(tmp_path / "conf.py", "import os\n" + source + "\n")
    cfg = reload_config(["-c", str(path), APP])  # Gunicorn runs such a file: so do we
    assert len(cfg.config_warnings) == 1
    assert message in cfg.config_warnings[0]
    assert f"{path}:2:" in cfg.config_warnings[0]  # the line of the typo
    with pytest.raises(ConfigError) as info:
        reload_config(["--strict-config", "-c", str(path), APP])
    assert message in str(info.value) and f"{path}:2:" in str(info.value)


def test_every_unknown_name_is_in_one_warning_and_none_means_not_set(tmp_path: Path) -> None:
    """The container template's style: helpers named like settings, and os.getenv() that returns
    None for a variable that is not set."""
    path = write(tmp_path / "conf.py", textwrap.dedent("""\
        import os
        use_loglevel = os.getenv("NO_SUCH_LOG_LEVEL_FOR_PRONGHORN", "info")
        log_level = use_loglevel
        keepalive_str = os.getenv("NO_SUCH_KEEPALIVE_FOR_PRONGHORN", "5")
        keepalive = int(keepalive_str)
        loglevel = use_loglevel
        errorlog = os.getenv("NO_SUCH_ERRORLOG_FOR_PRONGHORN")
        statsd_prefix = os.getenv("NO_SUCH_PREFIX_FOR_PRONGHORN")
        forwarded_allow_ips = os.getenv("NO_SUCH_IPS_FOR_PRONGHORN")
        raw_env = None
        logger_class = os.getenv("NO_SUCH_LOGGER_FOR_PRONGHORN")
        spew = None
        max_request = 100
    """))
    cfg = reload_config(["-c", str(path), APP])
    assert cfg.keepalive == 5 and cfg.loglevel == "info"
    assert cfg.errorlog == "-" and cfg.raw_env == []  # (the defaults: None did not set them)
    # Gunicorn's list validator makes None an empty list: no proxy is trusted.
    assert cfg.forwarded_allow_ips == ""
    assert cfg.sources["errorlog"] == "default"
    warnings = "\n".join(cfg.config_warnings)
    assert "max_request is not a setting; did you mean max_requests?" in warnings
    # The file sets loglevel and keepalive too: their look-alikes are its helpers, not typos.
    assert "log_level" not in warnings and "keepalive_str" not in warnings


def test_a_config_file_full_of_helpers_serves_and_warns_once(start_server,  # type: ignore[no-untyped-def]
                                                               tmp_path: Path) -> None:
    conf = write(tmp_path / "conf.py", textwrap.dedent("""\
        import os
        log_level = os.getenv("NO_SUCH_LOG_LEVEL_FOR_PRONGHORN", "info")
        pid_file = os.getenv("NO_SUCH_PIDFILE_FOR_PRONGHORN")
        graceful_timeout_str = os.getenv("NO_SUCH_GRACEFUL_FOR_PRONGHORN", "20")
        graceful_timeout = int(graceful_timeout_str)
        loglevel = log_level
        errorlog = os.getenv("NO_SUCH_ERRORLOG_FOR_PRONGHORN")
    """))
    server, (address,) = start_server(APP, "-c", str(conf))
    assert get(address, "/").status == 200
    warnings = [line for line in server.output.splitlines() if "not settings or hooks" in line]
    assert len(warnings) == 1, server.output
    assert "pid_file is not a setting; did you mean pidfile?" in warnings[0]
    # Helpers of settings the file sets (loglevel, graceful_timeout) are not suspected typos.
    assert "log_level" not in warnings[0] and "graceful_timeout_str" not in warnings[0]


def test_helpers_imports_and_private_names_are_ignored(tmp_path: Path) -> None:
    cfg = load(tmp_path, """
        import multiprocessing
        import os.path
        from collections import OrderedDict
        from os import cpu_count, getenv
        from logging import getLogger

        MY_PORT = 8000
        WORKERS = 3
        HOST = getenv("NO_SUCH_VARIABLE_FOR_PRONGHORN", "127.0.0.1")
        cores = cpu_count() or 1
        _worker = 9
        logger = getLogger("site")
        settings_table = OrderedDict()

        def make_address(host, port):
            return f"{host}:{port}"

        class Helper:
            pass

        bind = make_address(HOST, MY_PORT)
        workers = WORKERS
    """)
    assert cfg.bind == ["127.0.0.1:8000"] and cfg.workers == 3


def test_an_imported_hook_is_a_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"site_hooks_{uuid.uuid4().hex[:8]}"
    write(tmp_path / f"{name}.py", "def post_fork(server, worker):\n    return 'imported'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = load(tmp_path, f"from {name} import post_fork\n")
    assert cfg.hooks.call("post_fork", None, None) == "imported"


@pytest.mark.parametrize("source", [
    "dirty_workers = 2",
    "dirty_timeout = 10",
])
def test_unsupported_gunicorn_settings_are_errors(tmp_path: Path, source: str) -> None:
    name = source.split()[1].split("(")[0] if source.startswith("def") else source.split()[0]
    text = error_of(tmp_path, source)
    assert f"'{name}' is a Gunicorn setting pronghorn does not support yet" in text


def test_gunicorn_defaults_and_harmless_settings_are_accepted(tmp_path: Path) -> None:
    cfg = load(tmp_path, """
        threads = 1
        accesslog = None
        capture_output = False
        forwarded_allow_ips = "127.0.0.1,::1"
        proxy_protocol = False
        worker_connections = 2000
        sendfile = False
        tmp_upload_dir = "/tmp"
        worker_tmp_dir = "/dev/shm"
        workers = 2
    """)
    assert cfg.workers == 2 and cfg.worker_tmp_dir == "/dev/shm"


def test_known_gunicorn_settings_do_not_shadow_ours() -> None:
    ours = {setting.name for setting in SETTINGS} | set(HOOK_SPECS)
    assert "dirty_workers" in KNOWN_GUNICORN_SETTINGS
    # A setting pronghorn implements is declared in SETTINGS; delete its KNOWN_GUNICORN_SETTINGS entry.
    assert not ours & set(KNOWN_GUNICORN_SETTINGS)


def test_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    text = error_of(tmp_path, "workers = 2\nbind = = '127.0.0.1:1'\n")
    assert f"{tmp_path / 'conf.py'}:2:" in text and "syntax error" in text


def test_exception_in_the_file_names_the_file_and_line(tmp_path: Path) -> None:
    source = "import os\n\nworkers = int(os.environ['NO_SUCH_VARIABLE_FOR_PRONGHORN'])\n"
    text = error_of(tmp_path, source)
    assert f"{tmp_path / 'conf.py'}:3:" in text
    assert "KeyError" in text and "NO_SUCH_VARIABLE_FOR_PRONGHORN" in text


def test_exception_in_a_module_the_file_imports_points_at_the_import(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"broken_{uuid.uuid4().hex[:8]}"
    write(tmp_path / f"{name}.py", "x = 1 / 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    text = error_of(tmp_path, f"workers = 1\nimport {name}\n")
    assert f"{tmp_path / 'conf.py'}:2:" in text and "ZeroDivisionError" in text


# -- hooks -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(HOOK_SPECS))
def test_every_hook_is_loaded_with_its_documented_arguments(tmp_path: Path, name: str) -> None:
    params = ", ".join(HOOK_SPECS[name])
    cfg = load(tmp_path, f"def {name}({params}):\n    return ({params},)\n")
    args = tuple(range(len(HOOK_SPECS[name])))
    assert cfg.hooks.has(name)
    assert cfg.hooks.call(name, *args) == args


@pytest.mark.parametrize("source, message", [
    ("def post_fork(server):\n    pass",
     "post_fork: the hook must accept 2 positional arguments (server, worker); "
     "it is defined as post_fork(server)"),
    ("def when_ready():\n    pass", "when_ready: the hook must accept 1 positional argument (server)"),
    ("def post_request(worker, req):\n    pass",
     "post_request: the hook must accept 4 positional arguments (worker, req, environ, resp)"),
    ("def pre_request(worker, *, req):\n    pass", "pre_request: the hook must accept 2"),
    ("on_exit = 'shutdown'", "on_exit: a hook must be callable"),
])
def test_hooks_with_the_wrong_arguments_are_rejected(tmp_path: Path, source: str, message: str) -> None:
    text = error_of(tmp_path, source)
    assert message in text
    assert f"{tmp_path / 'conf.py'}:1:" in text


def test_flexible_hook_signatures_are_fine(tmp_path: Path) -> None:
    cfg = load(tmp_path, """
        import functools

        def post_fork(*args):
            return args

        def post_request(worker, req, environ=None, resp=None, extra=None):
            return resp

        def _nworkers(server, new_value, old_value, label):
            return label

        nworkers_changed = functools.partial(_nworkers, label="changed")

        class WhenReady:
            def __call__(self, server):
                return server

        when_ready = WhenReady()
        on_exit = None
    """)
    assert cfg.hooks.call("post_fork", 1, 2) == (1, 2)
    assert cfg.hooks.call("post_request", 1, 2, 3, 4) == 4
    assert cfg.hooks.call("nworkers_changed", 1, 2, 3) == "changed"
    assert cfg.hooks.call("when_ready", "S") == "S"
    assert not cfg.hooks.has("on_exit")


def test_a_raising_hook_is_logged_and_swallowed(caplog: pytest.LogCaptureFixture) -> None:
    def worker_exit(server, worker):  # type: ignore[no-untyped-def]
        raise RuntimeError("hook went wrong")

    hooks = Hooks({"worker_exit": worker_exit})
    with caplog.at_level(logging.ERROR, logger="pronghorn.error"):
        assert hooks.call("worker_exit", "S", "W") is None
    (record,) = [r for r in caplog.records if r.name == "pronghorn.error"]
    assert record.getMessage() == "Exception in worker_exit hook"
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    assert "hook went wrong" in caplog.text and "Traceback" in caplog.text


def test_hooks_refuse_unknown_names() -> None:
    with pytest.raises(KeyError):
        Hooks().has("post_frok")
    with pytest.raises(ValueError, match="not a server hook"):
        Hooks({"post_frok": lambda server, worker: None})
    with pytest.raises(ValueError, match="post_fork"):
        validate_hook("post_fork", lambda server: None)


# -- the command line ------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--worker", "2", APP], "unrecognized argument --worker; did you mean --workers?"),
    (["--worker=2", APP], "unrecognized argument --worker; did you mean --workers?"),
    (["--bnid", "127.0.0.1:0", APP], "unrecognized argument --bnid; did you mean --bind?"),
    (["--timout", "3", APP], "unrecognized argument --timout; did you mean --timeout?"),
    (["--zzzzzz", APP], "unrecognized argument --zzzzzz"),
])
def test_unknown_flags_suggest_the_closest(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        reload_config(argv)
    assert str(info.value) == message


def test_parse_config_exits_2_with_the_message(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "conf.py", "worker = 2\n")
    with pytest.raises(SystemExit) as info:
        parse_config(["--strict-config", "-c", str(path), APP])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pronghorn: error: {path}: the config file sets names that are not "
                          "settings or hooks")
    assert err.endswith(f"{path}:1: worker is not a setting; did you mean workers?\n")


def test_reload_config_reads_the_file_again(tmp_path: Path) -> None:
    path = write(tmp_path / "conf.py", "workers = 2\n")
    argv = ["-c", str(path), APP]
    assert reload_config(argv).workers == 2
    write(path, "workers = 3\ndef on_reload(server):\n    return 'again'\n")
    cfg = reload_config(argv)
    assert cfg.workers == 3 and cfg.hooks.call("on_reload", None) == "again"
    write(path, "workers = 'many'\n")
    with pytest.raises(ConfigError, match="workers: 'many' is not an integer"):
        reload_config(argv)  # raised for the master to log, not an exit


# -- real processes --------------------------------------------------------------------------------

def wait_for_file(path: Path, pattern: str, count: int = 1, timeout: float = 20.0) -> str:
    """Poll ``path`` until ``pattern`` occurs ``count`` times; return the text."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        if len(re.findall(pattern, text)) >= count:
            return text
        time.sleep(0.05)  # polling interval, not a wait for an outcome
    raise AssertionError(f"{path} never had {count} x {pattern!r}:\n{text}")


@pytest.fixture
def servers() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(*args: str, cwd: Path | None = None) -> Server:
        server = Server(list(args), cwd=cwd)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_gunicorn_config_file_takes_effect(tmp_path: Path, servers: Callable[..., Server]) -> None:
    sock_path = tmp_path / "site.sock"
    log_path = tmp_path / "error.log"
    conf = write(tmp_path / "gunicorn.conf.py", f"""
        import os
        bind = "unix:{sock_path}"
        workers = 2
        timeout = 20
        keepalive = 1
        loglevel = "debug"
        errorlog = os.path.join(os.path.dirname(__file__), "error.log")

        def post_fork(server, worker):
            pass
    """)
    server = servers("-c", str(conf), APP)
    log = wait_for_file(log_path, r"Booting worker with pid", count=2)
    assert f"Listening at: unix:{sock_path}" in log
    address = f"unix:{sock_path}"
    wait_ready(address)
    assert get(address, "/from-config").json()["path"] == "/from-config"
    assert server.output == ""  # the error log went to the file, not to stderr

    # loglevel = "debug": a refused request is logged at debug level.
    with connect(address) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        assert Reader(sock).read_response().status == 400
    wait_for_file(log_path, r"\[DEBUG\] Refused request")

    # keepalive = 1: an idle keep-alive connection is closed well before the default 5 s.
    with connect(address, timeout=3.5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        reader = Reader(sock)
        assert reader.read_response().status == 200
        assert reader.closed()


def test_command_line_beats_the_config_file(tmp_path: Path,
                                            start_server: Callable[..., Any]) -> None:
    sock_path = tmp_path / "file.sock"
    conf = write(tmp_path / "conf.py", f'bind = "unix:{sock_path}"\nloglevel = "critical"\n')
    server, (address,) = start_server(APP, "-c", str(conf), "--log-level", "info")
    assert address.startswith("http://127.0.0.1:")  # the fixture's -b 127.0.0.1:0
    assert not sock_path.exists()
    assert "Booting worker" in server.output  # info, not the file's critical


@pytest.mark.parametrize("files, expected", [
    (("gunicorn.conf.py",), "gunicorn"),
    (("pronghorn.conf.py", "gunicorn.conf.py"), "pronghorn"),
])
def test_default_config_file_is_read_from_the_current_directory(
        tmp_path: Path, start_server: Callable[..., Any], files: tuple[str, ...],
        expected: str) -> None:
    name = f"envapp_{uuid.uuid4().hex[:8]}"
    write(tmp_path / f"{name}.py", """
        import os

        def application(environ, start_response):
            body = os.environ.get("CONFIG_SOURCE", "none").encode()
            start_response("200 OK", [("Content-Length", str(len(body)))])
            return [body]
    """)
    for file in files:
        write(tmp_path / file, f'raw_env = ["CONFIG_SOURCE={file.split(".")[0]}"]\n')
    _, (address,) = start_server(name, cwd=tmp_path)
    assert get(address, "/").body == expected.encode()


def test_wsgi_app_from_the_file(tmp_path: Path) -> None:
    conf = write(tmp_path / "conf.py", 'wsgi_app = "echo:app"\n')
    server = Server(["-c", str(conf), "-b", "127.0.0.1:0"])
    try:
        (address,) = server.addresses(1)
        wait_ready(address)
        assert get(address, "/wsgi-app").json()["path"] == "/wsgi-app"
    finally:
        server.stop()


def test_hup_with_a_broken_config_keeps_serving(tmp_path: Path,
                                                start_server: Callable[..., Any]) -> None:
    conf = write(tmp_path / "conf.py", "workers = 1\n")
    server, (address,) = start_server(APP, "-c", str(conf))
    write(conf, "workers = 'lots'\n")
    server.proc.send_signal(signal.SIGHUP)
    server.wait_for_line(re.escape(f"{conf}:1: workers: 'lots' is not an integer"))
    assert get(address, "/still").json()["path"] == "/still"


def run_pronghorn(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A start that must fail at once (the timeout is a guard)."""
    env = {"PYTHONPATH": str(APPS), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "pronghorn", *args], capture_output=True, text=True,
                          cwd=str(cwd), env=env, timeout=30)


@pytest.mark.parametrize("source, expected", [
    ("strict_config = True\nworker = 2\n",
     r"gunicorn\.conf\.py:2: worker is not a setting; did you mean workers\?"),
    ("workers = 'two'\n", r"gunicorn\.conf\.py:1: workers: 'two' is not an integer"),
    ("workers = 2\nbind = (\n", r"gunicorn\.conf\.py:2: the config file has a syntax error"),
    ("import os\nos.environ['NO_SUCH_VAR_PRONGHORN']\n",
     r"gunicorn\.conf\.py:2: the config file raised KeyError: 'NO_SUCH_VAR_PRONGHORN'"),
])
def test_bad_config_file_exits_2_with_one_message(tmp_path: Path, source: str, expected: str) -> None:
    write(tmp_path / "gunicorn.conf.py", source)
    result = run_pronghorn(APP, cwd=tmp_path)
    assert result.returncode == 2
    assert re.search(expected, result.stderr), result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("pronghorn: error: /")
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_missing_dash_c_file_exits_2_naming_it(tmp_path: Path) -> None:
    result = run_pronghorn("-c", "absent.conf.py", APP, cwd=tmp_path)
    assert result.returncode == 2
    assert str(tmp_path / "absent.conf.py") in result.stderr


def test_unknown_flag_exits_2_with_a_suggestion(tmp_path: Path) -> None:
    result = run_pronghorn("--worker", "2", APP, cwd=tmp_path)
    assert result.returncode == 2
    assert "unrecognized argument --worker; did you mean --workers?" in result.stderr


def test_the_config_flag_is_in_help() -> None:
    result = subprocess.run([sys.executable, "-m", "pronghorn", "--help"], capture_output=True,
                            text=True, cwd=str(ROOT), timeout=30)
    assert result.returncode == 0
    assert re.search(r"-c CONFIG, --config CONFIG", result.stdout)


def test_python_module_config_is_found_in_the_current_directory(tmp_path: Path) -> None:
    """-c python:MODULE with the installed `pronghorn` script, whose own directory, not the current
    one, starts sys.path: the module beside the operator is found, as under Gunicorn."""
    script = Path(sys.executable).parent / "pronghorn"
    if not script.exists():
        pytest.skip(f"no pronghorn script beside {sys.executable}")
    write(tmp_path / "site_conf.py", "workers = 3\n")
    env = {"PYTHONPATH": str(APPS), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([str(script), "-c", "python:site_conf", "--print-config=annotated",
                             APP], capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^workers +=  *3 +# config file python:site_conf", result.stdout, re.M), \
        result.stdout

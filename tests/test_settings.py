"""The settings registry as a whole: where values come from (defaults, WEB_CONCURRENCY and PORT, the
config file, PRONGHORN_CMD_ARGS / GUNICORN_CMD_ARGS, the command line), --print-config,
--check-config, bad-value messages, the generated docs/settings.md, and the audit against Gunicorn's
documented settings.

In-process tests drive ``reload_config`` with an explicit environment; process tests start real
servers (or --check-config runs) and observe what they do. Nothing sleeps to wait for an outcome.
"""

from __future__ import annotations

import ast
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import APPS, ROOT, Server, wait_ready
from pronghorn.cli import (UsageError, build_parser, format_config, parse_config, reload_config)
from pronghorn.config import HOOK_SPECS, KNOWN_GUNICORN_SETTINGS, SETTINGS, Config, ConfigError
from pronghorn.config import docs
from pronghorn.config.file import _ANY, APP_NAME
from pronghorn.config.settings import SECTIONS
from wire import get

APP = "echo:app"
ENV_VARIABLES = ("PRONGHORN_CMD_ARGS", "GUNICORN_CMD_ARGS", "WEB_CONCURRENCY", "PORT")
BY_NAME = {setting.name: setting for setting in SETTINGS}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The variables under test are unset unless a test sets them (servers inherit os.environ), and
    in-process tests run in an empty directory (no ./gunicorn.conf.py but the test's own)."""
    for name in ENV_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


def config(argv: list[str], environ: dict[str, str] | None = None, cwd: Path | None = None) -> Config:
    return reload_config(argv, cwd=str(cwd) if cwd else None, environ=environ or {})


def error(argv: list[str], environ: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        config(argv, environ, cwd)
    return str(info.value)


# -- precedence, in process ------------------------------------------------------------------------

@pytest.mark.parametrize("in_file", [False, True])
@pytest.mark.parametrize("in_env", [False, True])
@pytest.mark.parametrize("on_command_line", [False, True])
def test_each_source_beats_the_ones_below(tmp_path: Path, in_file: bool, in_env: bool,
                                          on_command_line: bool) -> None:
    """timeout: default 30 < config file 10 < PRONGHORN_CMD_ARGS 20 < command line 40."""
    conf = write(tmp_path / "conf.py", "timeout = 10\n" if in_file else "backlog = 64\n")
    environ = {"PRONGHORN_CMD_ARGS": "--timeout 20"} if in_env else {}
    argv = ["-c", str(conf)] + (["--timeout", "40"] if on_command_line else []) + [APP]
    cfg = config(argv, environ)
    expected = ((40, "command line") if on_command_line else (20, "PRONGHORN_CMD_ARGS") if in_env
                else (10, f"config file {conf}") if in_file else (30, "default"))
    assert (cfg.timeout, cfg.sources["timeout"]) == expected
    assert (cfg.backlog, cfg.sources["backlog"]) == (
        (2048, "default") if in_file else (64, f"config file {conf}"))


def test_every_setting_has_a_source(tmp_path: Path) -> None:
    cfg = config([APP])
    assert set(cfg.sources) == {setting.name for setting in SETTINGS} | {APP_NAME}
    assert {source for name, source in cfg.sources.items() if name != APP_NAME} == {"default"}
    assert cfg.sources[APP_NAME] == "command line"
    assert Config().sources["workers"] == "default"


def test_gunicorn_cmd_args_and_ours_merge_ours_last() -> None:
    gunicorn_only = config([APP], {"GUNICORN_CMD_ARGS": "--workers=3 --keep-alive 9"})
    assert (gunicorn_only.workers, gunicorn_only.sources["workers"]) == (3, "GUNICORN_CMD_ARGS")
    assert gunicorn_only.keepalive == 9
    # Both set (a deployment moving from Gunicorn): Gunicorn's is read first, ours over it; neither
    # is dropped.
    both = config([APP], {"GUNICORN_CMD_ARGS": "--workers=3 --keep-alive 9",
                          "PRONGHORN_CMD_ARGS": "-w 5"})
    assert (both.workers, both.sources["workers"]) == (5, "PRONGHORN_CMD_ARGS")
    assert (both.keepalive, both.sources["keepalive"]) == (9, "GUNICORN_CMD_ARGS")
    empty = config([APP], {"GUNICORN_CMD_ARGS": "--workers=3", "PRONGHORN_CMD_ARGS": ""})
    assert (empty.workers, empty.sources["workers"]) == (3, "GUNICORN_CMD_ARGS")


def test_environment_arguments_are_split_like_a_shell(tmp_path: Path) -> None:
    cfg = config([APP], {"PRONGHORN_CMD_ARGS":
                         f"--access-logformat '%(h)s \"%(r)s\"' -e 'GREETING=hello world' "
                         f"-b unix:{tmp_path}/a.sock -b 127.0.0.1:0 --preload"})
    assert cfg.access_log_format == '%(h)s "%(r)s"'
    assert cfg.raw_env == ["GREETING=hello world"]
    assert cfg.bind == [f"unix:{tmp_path}/a.sock", "127.0.0.1:0"]
    assert cfg.preload_app is True and cfg.sources["preload_app"] == "PRONGHORN_CMD_ARGS"


def test_lists_are_replaced_not_merged(tmp_path: Path) -> None:
    conf = write(tmp_path / "conf.py", 'bind = ["127.0.0.1:1", "127.0.0.1:2"]\nraw_env = ["A=1"]\n')
    env_wins = config(["-c", str(conf), APP], {"PRONGHORN_CMD_ARGS": "-b 127.0.0.1:3 -e B=2"})
    assert env_wins.bind == ["127.0.0.1:3"] and env_wins.raw_env == ["B=2"]
    cli_wins = config(["-c", str(conf), "-b", "127.0.0.1:4", APP],
                      {"PRONGHORN_CMD_ARGS": "-b 127.0.0.1:3 -e B=2"})
    assert cli_wins.bind == ["127.0.0.1:4"] and cli_wins.raw_env == ["B=2"]
    assert (cli_wins.sources["bind"], cli_wins.sources["raw_env"]) == ("command line",
                                                                       "PRONGHORN_CMD_ARGS")


def test_the_environment_can_name_the_config_file(tmp_path: Path) -> None:
    write(tmp_path / "env.py", "workers = 4\n")
    write(tmp_path / "cli.py", "workers = 6\n")
    write(tmp_path / "gunicorn.conf.py", "workers = 8\n")
    from_env = config([APP], {"PRONGHORN_CMD_ARGS": "-c env.py"}, cwd=tmp_path)
    assert from_env.workers == 4 and from_env.config_file == str(tmp_path / "env.py")
    assert from_env.sources["config"] == "PRONGHORN_CMD_ARGS"
    from_cli = config(["-c", "cli.py", APP], {"PRONGHORN_CMD_ARGS": "-c env.py"}, cwd=tmp_path)
    assert from_cli.workers == 6 and from_cli.sources["config"] == "command line"
    default_file = config([APP], {"PRONGHORN_CMD_ARGS": "--timeout 3"}, cwd=tmp_path)
    assert default_file.workers == 8 and default_file.config_file == str(tmp_path / "gunicorn.conf.py")


def test_the_application_from_each_source(tmp_path: Path) -> None:
    conf = write(tmp_path / "conf.py", 'wsgi_app = "from_file:app"\n')
    assert config(["-c", str(conf)]).sources[APP_NAME] == f"config file {conf}"
    from_env = config(["-c", str(conf)], {"PRONGHORN_CMD_ARGS": "from_env:app"})
    assert (from_env.app_uri, from_env.sources[APP_NAME]) == ("from_env:app", "PRONGHORN_CMD_ARGS")
    from_cli = config(["-c", str(conf), "cli:app"], {"PRONGHORN_CMD_ARGS": "from_env:app"})
    assert (from_cli.app_uri, from_cli.sources[APP_NAME]) == ("cli:app", "command line")


def test_web_concurrency_is_the_default_worker_count(tmp_path: Path) -> None:
    cfg = config([APP], {"WEB_CONCURRENCY": "4"})
    assert (cfg.workers, cfg.sources["workers"]) == (4, "WEB_CONCURRENCY")
    conf = write(tmp_path / "conf.py", "workers = 2\n")
    assert config(["-c", str(conf), APP], {"WEB_CONCURRENCY": "4"}).workers == 2
    assert config(["-w", "3", APP], {"WEB_CONCURRENCY": "4"}).workers == 3
    assert config([APP], {"WEB_CONCURRENCY": " "}).sources["workers"] == "default"
    # A bad value matters only when it is used, and then it is named.
    assert config(["-w", "3", APP], {"WEB_CONCURRENCY": "lots"}).workers == 3
    assert error([APP], {"WEB_CONCURRENCY": "lots"}) == (
        "WEB_CONCURRENCY: 'lots' is not an integer (it sets the default of workers)")
    assert error([APP], {"WEB_CONCURRENCY": "0"}) == "WEB_CONCURRENCY: workers: must be at least 1"


def test_port_is_the_default_bind_as_in_gunicorn() -> None:
    cfg = config([APP], {"PORT": "5123"})
    assert (cfg.bind, cfg.sources["bind"]) == (["0.0.0.0:5123"], "PORT")
    assert config(["-b", "127.0.0.1:0", APP], {"PORT": "5123"}).bind == ["127.0.0.1:0"]
    assert error([APP], {"PORT": "http"}) == "PORT: bind: '0.0.0.0:http': 'http' is not a port number"


def test_reload_reads_the_environment_and_the_file_again(tmp_path: Path) -> None:
    """HUP calls reload_config with the same argv: every source is read afresh."""
    conf = write(tmp_path / "conf.py", "keepalive = 1\n")
    argv = ["-c", str(conf), APP]
    environ = {"PRONGHORN_CMD_ARGS": "--timeout 5", "WEB_CONCURRENCY": "2"}
    first = config(argv, environ)
    assert (first.timeout, first.workers, first.keepalive) == (5, 2, 1)
    write(conf, "keepalive = 3\n")
    environ.update(PRONGHORN_CMD_ARGS="--timeout 6", WEB_CONCURRENCY="3")
    second = config(argv, environ)
    assert (second.timeout, second.workers, second.keepalive) == (6, 3, 3)


def test_reload_config_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRONGHORN_CMD_ARGS", "--graceful-timeout 11")
    cfg = reload_config([APP])
    assert (cfg.graceful_timeout, cfg.sources["graceful_timeout"]) == (11, "PRONGHORN_CMD_ARGS")


# -- mistakes in each source -----------------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["-w", "two"], "--workers: 'two' is not an integer"),
    (["--workers=two"], "--workers: 'two' is not an integer"),
    (["-w", "2.5"], "--workers: '2.5' is not an integer"),
    (["-w", "-3"], "--workers: '-3' is negative"),
    (["-w", "0"], "--workers: must be at least 1"),
    (["-t", "soon"], "--timeout: 'soon' is not a number"),
    (["--keep-alive", "x"], "--keep-alive: 'x' is not a number"),
    (["--backlog", "many"], "--backlog: 'many' is not an integer"),
    (["--limit-request-field-size", "big"], "--limit-request-field_size: 'big' is not an integer"),
    (["-m", "0o7777"], "--umask: '0o7777' is not a umask between 0 and 0o777"),
    (["-m", "rw"], "--umask: 'rw' is not a umask"),
    (["--log-level", "loud"], "--log-level: 'loud' is not one of debug, info, warning, error, "
                              "critical"),
    (["-e", "NOEQUALS"], "--env: 'NOEQUALS' is not KEY=VALUE"),
    (["-b", "[::1"], "--bind: '[::1': missing ']' after the IPv6 address"),
    (["-b", "127.0.0.1:http"], "--bind: '127.0.0.1:http': 'http' is not a port number"),
    (["-k", "tornado"], "--worker-class: 'tornado': pronghorn serves WSGI apps; run a Tornado app "
                        "with Tornado's own server. pronghorn's worker classes are 'sync', "
                        "'gthread', 'gevent'"),
    (["--reload-engine", "magic"], "--reload-engine: 'magic' is not one of"),
])
def test_bad_values_on_the_command_line_name_the_flag_and_why(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        config([*argv, APP])
    assert str(info.value).startswith(message)
    assert "invalid literal" not in str(info.value) and "could not convert" not in str(info.value)


@pytest.mark.parametrize("source, message", [
    ("workers = 'two'", "workers: 'two' is not an integer"),
    ("loglevel = 'loud'", "loglevel: 'loud' is not one of debug, info, warning, error, critical"),
    ("raw_env = ['A=1', 'NOEQUALS']", "raw_env: 'NOEQUALS' is not KEY=VALUE"),
    ("raw_env = 'A=1'", None),  # one string is a one-item list, as in Gunicorn
    ("check_config = 'yes'", "check_config: 'yes' is not a boolean (True or False)"),
])
def test_bad_values_in_the_file_name_the_setting_and_why(tmp_path: Path, source: str,
                                                        message: str | None) -> None:
    conf = write(tmp_path / "conf.py", source + "\n")
    if message is None:
        assert config(["-c", str(conf), APP]).raw_env == ["A=1"]
        return
    assert error(["-c", str(conf), APP]) == f"{conf}:1: {message}"


@pytest.mark.parametrize("variable", ["PRONGHORN_CMD_ARGS", "GUNICORN_CMD_ARGS"])
@pytest.mark.parametrize("arguments, message", [
    ("-w two", "--workers: 'two' is not an integer"),
    ("-w 0", "--workers: must be at least 1"),
    ("--worker 2", "unrecognized argument --worker; did you mean --workers?"),
    ("--dirty-workers 2", "--dirty-workers is a Gunicorn option pronghorn does not support yet: "
                          + KNOWN_GUNICORN_SETTINGS["dirty_workers"].advice),
    ("-k 'gevent", "cannot split \"-k 'gevent\" into arguments: No closing quotation"),
])
def test_bad_environment_arguments_name_the_variable(variable: str, arguments: str,
                                                     message: str) -> None:
    text = error([APP], {variable: arguments})
    assert text == f"{variable}: {message}"


def test_bad_environment_arguments_are_config_errors_not_usage_errors() -> None:
    with pytest.raises(ConfigError) as info:
        config([APP], {"PRONGHORN_CMD_ARGS": "-w two"})
    assert not isinstance(info.value, UsageError)  # no usage line: the command line was fine


def test_a_bad_value_stops_the_start_with_status_2(tmp_path: Path) -> None:
    result = run_pronghorn("-w", "two", APP, cwd=tmp_path)
    assert result.returncode == 2
    assert "pronghorn: error: --workers: 'two' is not an integer" in result.stderr
    assert "invalid literal" not in result.stderr


# -- Gunicorn settings pronghorn does not have -----------------------------------------------------

def _refused_flags() -> list[tuple[str, list[str]]]:
    """For each Gunicorn flag we do not implement, a command line that asks for something."""
    cases = []
    for name, known in KNOWN_GUNICORN_SETTINGS.items():
        if not known.flags or _ANY in known.inert:
            continue
        if known.metavar is None:
            if True in known.inert:
                continue  # a switch whose "on" is what pronghorn does anyway
            cases.append((name, [known.flags[-1]]))
        else:
            cases.append((name, [known.flags[-1], "something-else"]))
    return cases


@pytest.mark.parametrize("name, argv", _refused_flags(), ids=lambda value: str(value))
def test_every_unsupported_gunicorn_flag_says_what_to_use_instead(name: str, argv: list[str]) -> None:
    with pytest.raises(UsageError) as info:
        config([*argv, APP])
    assert str(info.value) == (f"{argv[0]} is a Gunicorn option pronghorn does not support yet: "
                               f"{KNOWN_GUNICORN_SETTINGS[name].advice}")


@pytest.mark.parametrize("argv", [
    ["--threads", "1"], ["--threads=1"], ["--worker-connections", "5000"], ["--no-sendfile"],
    ["--suppress-ragged-eofs"], ["--no-control-socket"], ["--initgroups"],
    ["--forwarded-allow-ips", "127.0.0.1,::1"], ["--proxy-protocol", "off"], ["--header-map", "drop"],
])
def test_gunicorn_flags_that_ask_for_nothing_new_are_accepted(argv: list[str]) -> None:
    cfg = config([*argv, APP])
    assert cfg.app_uri == APP  # an optional-value flag did not swallow the application


def test_unsupported_settings_in_the_file_say_what_to_use_instead(tmp_path: Path) -> None:
    conf = write(tmp_path / "conf.py", "dirty_workers = 2\n")
    assert error(["-c", str(conf), APP]) == (
        f"{conf}:1: 'dirty_workers' is a Gunicorn setting pronghorn does not support yet: "
        f"{KNOWN_GUNICORN_SETTINGS['dirty_workers'].advice}")


def test_every_unsupported_setting_has_advice() -> None:
    for name, known in KNOWN_GUNICORN_SETTINGS.items():
        assert known.advice.strip() and "\n" not in known.advice, name
        assert known.metavar is None or re.fullmatch(r"\[?[A-Z]+\]?", known.metavar), name


def test_hidden_gunicorn_flags_stay_out_of_help() -> None:
    text = build_parser().format_help()
    assert "--dirty-workers" not in text and "--dirty-timeout" not in text
    assert "--http-protocols" in text and "--http2-cleartext" in text  # (implemented: shown)
    assert "--check-config" in text and "--print-config" in text and "--workers" in text


# -- the audit against Gunicorn's documented settings ----------------------------------------------

#: Gunicorn's settings reference (docs/content/reference/settings.md, Gunicorn 24.0: the sections
#: Config File, Debugging, Logging, Process Naming, SSL, Security, Server Hooks, Server Mechanics,
#: Server Socket, Worker Processes), setting name → its command-line flags.
GUNICORN_SETTINGS: dict[str, tuple[str, ...]] = {
    # Config File
    "config": ("-c", "--config"), "wsgi_app": (),
    # Debugging
    "reload": ("--reload",), "reload_engine": ("--reload-engine",),
    "reload_extra_files": ("--reload-extra-file",), "spew": ("--spew",),
    "check_config": ("--check-config",), "print_config": ("--print-config",),
    # Logging
    "accesslog": ("--access-logfile",),
    "disable_redirect_access_to_syslog": ("--disable-redirect-access-to-syslog",),
    "access_log_format": ("--access-logformat",), "errorlog": ("--error-logfile", "--log-file"),
    "loglevel": ("--log-level",), "capture_output": ("--capture-output",),
    "logger_class": ("--logger-class",), "logconfig": ("--log-config",), "logconfig_dict": (),
    "logconfig_json": ("--log-config-json",), "syslog_addr": ("--log-syslog-to",),
    "syslog": ("--log-syslog",), "syslog_prefix": ("--log-syslog-prefix",),
    "syslog_facility": ("--log-syslog-facility",),
    "enable_stdio_inheritance": ("-R", "--enable-stdio-inheritance"),
    "statsd_host": ("--statsd-host",), "dogstatsd_tags": ("--dogstatsd-tags",),
    "statsd_prefix": ("--statsd-prefix",),
    # Process Naming
    "proc_name": ("-n", "--name"), "default_proc_name": (),
    # SSL
    "keyfile": ("--keyfile",), "certfile": ("--certfile",), "ssl_version": ("--ssl-version",),
    "cert_reqs": ("--cert-reqs",), "ca_certs": ("--ca-certs",),
    "suppress_ragged_eofs": ("--suppress-ragged-eofs",),
    "do_handshake_on_connect": ("--do-handshake-on-connect",), "ciphers": ("--ciphers",),
    # Security
    "limit_request_line": ("--limit-request-line",),
    "limit_request_fields": ("--limit-request-fields",),
    "limit_request_field_size": ("--limit-request-field_size",),
    # Server Hooks
    "on_starting": (), "on_reload": (), "when_ready": (), "pre_fork": (), "post_fork": (),
    "post_worker_init": (), "worker_int": (), "worker_abort": (), "pre_exec": (),
    "pre_request": (), "post_request": (), "child_exit": (), "worker_exit": (),
    "nworkers_changed": (), "on_exit": (), "ssl_context": (),
    # Server Mechanics
    "preload_app": ("--preload",), "sendfile": ("--no-sendfile",), "reuse_port": ("--reuse-port",),
    "chdir": ("--chdir",), "daemon": ("-D", "--daemon"), "raw_env": ("-e", "--env"),
    "pidfile": ("-p", "--pid"), "worker_tmp_dir": ("--worker-tmp-dir",),
    "user": ("-u", "--user"), "group": ("-g", "--group"), "umask": ("-m", "--umask"),
    "initgroups": ("--initgroups",), "tmp_upload_dir": (), "secure_scheme_headers": (),
    "forwarded_allow_ips": ("--forwarded-allow-ips",), "pythonpath": ("--pythonpath",),
    "paste": ("--paste", "--paster"), "proxy_protocol": ("--proxy-protocol",),
    "proxy_allow_ips": ("--proxy-allow-from",), "protocol": ("--protocol",),
    "uwsgi_allow_ips": ("--uwsgi-allow-from",), "raw_paste_global_conf": ("--paste-global",),
    "permit_obsolete_folding": ("--permit-obsolete-folding",),
    "strip_header_spaces": ("--strip-header-spaces",),
    "permit_unconventional_http_method": ("--permit-unconventional-http-method",),
    "permit_unconventional_http_version": ("--permit-unconventional-http-version",),
    "casefold_http_method": ("--casefold-http-method",),
    "forwarder_headers": ("--forwarder-headers",), "header_map": ("--header-map",),
    "root_path": ("--root-path",),
    # Server Socket
    "bind": ("-b", "--bind"), "backlog": ("--backlog",),
    # Worker Processes
    "workers": ("-w", "--workers"), "worker_class": ("-k", "--worker-class"),
    "threads": ("--threads",), "worker_connections": ("--worker-connections",),
    "max_requests": ("--max-requests",), "max_requests_jitter": ("--max-requests-jitter",),
    "timeout": ("-t", "--timeout"), "graceful_timeout": ("--graceful-timeout",),
    "keepalive": ("--keep-alive",), "asgi_loop": ("--asgi-loop",),
    "asgi_lifespan": ("--asgi-lifespan",),
}

#: Added in Gunicorn 25 (its changelog and the current settings reference): the control socket,
#: HTTP/2 and the dirty arbiters.
GUNICORN_25_SETTINGS: dict[str, tuple[str, ...]] = {
    "control_socket": ("--control-socket",), "control_socket_mode": ("--control-socket-mode",),
    "control_socket_disable": ("--no-control-socket",), "http_protocols": ("--http-protocols",),
    "http2_max_concurrent_streams": ("--http2-max-concurrent-streams",),
    "http2_initial_window_size": ("--http2-initial-window-size",),
    "http2_max_frame_size": ("--http2-max-frame-size",),
    "http2_max_header_list_size": ("--http2-max-header-list-size",),
    "dirty_workers": ("--dirty-workers",), "on_dirty_starting": (), "dirty_post_fork": (),
    "dirty_worker_init": (), "dirty_worker_exit": (),
}


@pytest.mark.parametrize("name", sorted({**GUNICORN_SETTINGS, **GUNICORN_25_SETTINGS}))
def test_every_documented_gunicorn_setting_is_supported_or_refused_with_advice(name: str) -> None:
    flags = {**GUNICORN_SETTINGS, **GUNICORN_25_SETTINGS}[name]
    if name in BY_NAME:  # supported: the same name, and every Gunicorn spelling of the flag
        assert set(flags) <= set(BY_NAME[name].flags), (name, BY_NAME[name].flags)
    elif name in HOOK_SPECS or name == APP_NAME:
        assert not flags
    else:
        assert name in KNOWN_GUNICORN_SETTINGS, f"{name} is neither supported nor refused"
        assert set(flags) == set(KNOWN_GUNICORN_SETTINGS[name].flags), name
        assert KNOWN_GUNICORN_SETTINGS[name].advice


def test_gunicorn_flags_of_supported_settings_work_on_the_command_line() -> None:
    """Each Gunicorn spelling parses to our setting (a smoke test of the whole parser)."""
    for name, flags in GUNICORN_SETTINGS.items():
        setting = BY_NAME.get(name)
        if setting is None or name == "config":
            continue
        for flag in flags:
            argv = ([flag] if setting.flag_only or setting.value_attached
                    else [flag, SAMPLE_VALUES.get(name, "1")])
            cfg = config([*argv, *COMPANIONS.get(name, ()), APP])
            assert cfg.sources[name] == "command line", (name, flag)


SAMPLE_VALUES = {
    "bind": "127.0.0.1:0", "worker_class": "sync", "reload_engine": "poll", "loglevel": "debug",
    "raw_env": "A=1", "access_log_format": "%(h)s", "syslog_addr": "udp://localhost:514",
    "syslog_facility": "user", "statsd_host": "localhost:8125", "user": str(os.getuid()),
    "group": str(os.getgid()),
    # Only readability is checked before a worker loads them.
    "certfile": __file__, "keyfile": __file__, "ca_certs": __file__, "cert_reqs": "0",
    "ssl_version": "TLSv1_2", "forwarded_allow_ips": "10.0.0.0/8", "proxy_allow_ips": "*",
    "proxy_protocol": "v2", "paste": __file__, "raw_paste_global_conf": "A=1",
    "header_map": "refuse", "http_parser": "python", "asgi_loop": "asyncio",
    "asgi_lifespan": "off", "root_path": "/api", "protocol": "uwsgi",
    "uwsgi_allow_ips": "10.0.0.0/8",
}

#: What a setting needs beside it to be valid.
COMPANIONS = {"keyfile": ("--certfile", __file__), "ca_certs": ("--certfile", __file__)}


def test_pronghorn_additions_do_not_shadow_gunicorn_names() -> None:
    """A setting of ours that Gunicorn does not document must not use a Gunicorn flag for
    something else."""
    gunicorn_flags = {flag: name for name, flags in {**GUNICORN_SETTINGS,
                                                     **GUNICORN_25_SETTINGS}.items()
                      for flag in flags}
    for setting in SETTINGS:
        for flag in setting.flags:
            assert gunicorn_flags.get(flag, setting.name) == setting.name, (setting.name, flag)


def test_every_section_is_known() -> None:
    assert {setting.section for setting in SETTINGS} <= set(SECTIONS)


# -- docs/settings.md ------------------------------------------------------------------------------

def test_docs_settings_md_is_up_to_date() -> None:
    path = ROOT / "docs" / "settings.md"
    committed = path.read_text() if path.exists() else ""
    assert committed == docs.render(), (
        f"docs/settings.md is out of date; regenerate it with `{docs.COMMAND}`")


def test_docs_list_every_setting_hook_and_unsupported_gunicorn_setting() -> None:
    text = docs.render()
    for setting in SETTINGS:
        assert f"### `{setting.name}`" in text
        for flag in setting.flags:
            assert f"`{flag}" in text, flag
        assert setting.help in text
    for name in HOOK_SPECS:
        assert f"| `{name}` |" in text
    for name, known in KNOWN_GUNICORN_SETTINGS.items():
        assert f"| `{name}` |" in text and known.advice in text
    assert "`WEB_CONCURRENCY` (when set, it is the default)" in text
    assert "`PORT` (when set, the default is `0.0.0.0:$PORT`)" in text


def test_docs_do_not_depend_on_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    before = docs.render()
    monkeypatch.setenv("WEB_CONCURRENCY", "7")
    monkeypatch.setenv("PORT", "9")
    assert docs.render() == before


# -- --print-config --------------------------------------------------------------------------------

def parse_printed(text: str) -> dict[str, tuple[Any, str]]:
    """--print-config=annotated output → name → (value, source)."""
    found: dict[str, tuple[Any, str]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"(\w+) += (.*?) +# (.+)", line)
        assert match, line
        found[match.group(1)] = (ast.literal_eval(match.group(2)), match.group(3))
    return found


def test_format_config_shows_every_value_and_its_source(tmp_path: Path) -> None:
    conf = write(tmp_path / "conf.py", "keepalive = 2\numask = 0o27\n"
                                       "def post_fork(server, worker):\n    pass\n")
    cfg = config(["-c", str(conf), "-w", "3", "--print-config=annotated", APP],
                 {"PRONGHORN_CMD_ARGS": "--timeout 9"})
    text = format_config(cfg)
    printed = parse_printed(text)
    assert set(printed) == {setting.name for setting in SETTINGS} | {APP_NAME}
    assert list(printed) == sorted(printed)
    assert printed["workers"] == (3, "command line")
    assert printed["timeout"] == (9.0, "PRONGHORN_CMD_ARGS")
    assert printed["keepalive"] == (2, f"config file {conf}")
    assert printed["umask"] == (0o27, f"config file {conf}")
    assert printed["backlog"] == (2048, "default")
    assert printed[APP_NAME] == (APP, "command line")
    assert f"# config file read: {conf}" in text
    assert f"# server hook post_fork: from config file {conf}" in text
    namespace: dict[str, Any] = {}
    exec(compile(text, "<print-config>", "exec"), namespace)  # it is a valid config file too
    assert namespace["workers"] == 3 and namespace["umask"] == 0o27


def run_pronghorn(*args: str, cwd: Path, env: dict[str, str] | None = None,
                  timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """A run that must finish by itself (the timeout is a guard)."""
    full_env = {"PYTHONPATH": str(APPS), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "pronghorn", *args], capture_output=True,
                          text=True, cwd=str(cwd), env=full_env, timeout=timeout)


def test_print_config_prints_sources_and_exits_without_serving(tmp_path: Path) -> None:
    write(tmp_path / "gunicorn.conf.py", "keepalive = 2\ngraceful_timeout = 7\n")
    port_holder, port = _listening_socket()
    with port_holder:
        result = run_pronghorn(
            "--print-config=annotated", "--graceful-timeout", "6", "-b", f"127.0.0.1:{port}", APP,
            cwd=tmp_path, env={"WEB_CONCURRENCY": "3", "PRONGHORN_CMD_ARGS": "--timeout 9",
                               "GUNICORN_CMD_ARGS": "--timeout 99"})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    printed = parse_printed(result.stdout)
    conf = tmp_path / "gunicorn.conf.py"
    assert printed["workers"] == (3, "WEB_CONCURRENCY")
    assert printed["timeout"] == (9.0, "PRONGHORN_CMD_ARGS")
    assert printed["keepalive"] == (2, f"config file {conf}")
    assert printed["graceful_timeout"] == (6.0, "command line")
    assert printed["bind"] == ([f"127.0.0.1:{port}"], "command line")
    assert printed["print_config"] == ("annotated", "command line")
    assert printed["limit_request_line"] == (4094, "default")
    assert printed[APP_NAME] == (APP, "command line")
    assert "Listening at" not in result.stdout + result.stderr


def test_print_config_from_gunicorn_cmd_args_and_a_broken_app_exits_1(tmp_path: Path) -> None:
    """--print-config implies --check-config, as in Gunicorn: the app is loaded after printing."""
    result = run_pronghorn("broken_import", cwd=tmp_path,
                           env={"GUNICORN_CMD_ARGS": "--print-config -w 2"})
    assert result.returncode == 1
    assert re.search(r"^workers += 2$", result.stdout, re.MULTILINE)
    assert "ZeroDivisionError" in result.stderr and "Traceback" in result.stderr


# -- --check-config --------------------------------------------------------------------------------

def _listening_socket() -> tuple[socket.socket, int]:
    """A socket listening on a free port: the port is taken while it is open."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock, sock.getsockname()[1]


IMPORT_RECORDING_APP = """
import os

with open(os.environ["IMPORT_LOG"], "a") as _log:
    _log.write(f"{os.getpid()}\\n")

def app(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
"""


def test_check_config_loads_the_app_without_binding_or_forking(tmp_path: Path) -> None:
    name = f"recorded_{uuid.uuid4().hex[:8]}"
    write(tmp_path / f"{name}.py", IMPORT_RECORDING_APP)
    log = tmp_path / "imports.log"
    holder, port = _listening_socket()  # a server that tried to bind this port would fail
    env = dict(os.environ, PYTHONPATH=str(tmp_path), IMPORT_LOG=str(log))
    with holder:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pronghorn", "--check-config", "-w", "4", "--preload", "-D",
             "-b", f"127.0.0.1:{port}", f"{name}:app"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(tmp_path), env=env)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert (out, err) == ("", "")
    # Imported exactly once, by the process we started: no worker, no fork for -D.
    assert log.read_text().split() == [str(proc.pid)]


def test_check_config_honours_chdir_pythonpath_and_env(tmp_path: Path) -> None:
    site, libs = tmp_path / "site", tmp_path / "libs"
    site.mkdir()
    libs.mkdir()
    helper = f"helper_{uuid.uuid4().hex[:8]}"
    write(libs / f"{helper}.py", "VALUE = 'from --pythonpath'\n")
    name = f"needs_{uuid.uuid4().hex[:8]}"
    write(site / f"{name}.py", f"""
        import os
        import {helper}

        if os.environ["NEEDED_BY_APP"] != "yes":
            raise RuntimeError("-e was not applied")

        def app(environ, start_response):
            return []
    """)
    args = ("--check-config", "--chdir", str(site), "--pythonpath", str(libs), f"{name}:app")
    ok = run_pronghorn(*args[:-1], "-e", "NEEDED_BY_APP=yes", args[-1], cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    missing_env = run_pronghorn(*args, cwd=tmp_path)
    assert missing_env.returncode == 1
    assert "KeyError: 'NEEDED_BY_APP'" in missing_env.stderr
    no_path = run_pronghorn("--check-config", "--chdir", str(site), "-e", "NEEDED_BY_APP=yes",
                            f"{name}:app", cwd=tmp_path)
    assert no_path.returncode == 1
    assert f"No module named '{helper}'" in no_path.stderr


@pytest.mark.parametrize("app, expected", [
    ("broken_import", ["Traceback (most recent call last)", "broken_import.py",
                       "ZeroDivisionError: division by zero"]),
    ("no_such_module_for_pronghorn", ["ModuleNotFoundError: No module named "
                                      "'no_such_module_for_pronghorn'"]),
    ("echo:no_such_callable", ["module 'echo' has no attribute 'no_such_callable'"]),
])
def test_check_config_with_a_broken_app_exits_1_with_the_error(tmp_path: Path, app: str,
                                                               expected: list[str]) -> None:
    result = run_pronghorn("--check-config", app, cwd=tmp_path)
    assert result.returncode == 1
    for text in expected:
        assert text in result.stderr, result.stderr
    assert result.stdout == "" and "Booting worker" not in result.stderr


@pytest.mark.parametrize("args, env, message", [
    (["-w", "two"], {}, "--workers: 'two' is not an integer"),
    ([], {"PRONGHORN_CMD_ARGS": "--dirty-workers 2"},
     "PRONGHORN_CMD_ARGS: --dirty-workers is a Gunicorn option"),
    (["-u", "no_such_user_for_pronghorn"], {}, "no such user: 'no_such_user_for_pronghorn'"),
    (["-c", "absent.py"], {}, "does not exist"),
])
def test_check_config_with_a_bad_config_exits_1(tmp_path: Path, args: list[str],
                                                env: dict[str, str], message: str) -> None:
    result = run_pronghorn("--check-config", *args, APP, cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert message in result.stderr


def test_check_config_from_the_environment_and_a_good_app(tmp_path: Path) -> None:
    result = run_pronghorn(APP, cwd=tmp_path, env={"PRONGHORN_CMD_ARGS": "--check-config -w 3"})
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_parse_config_exits_1_when_checking(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_config(["--check-config", "-w", "two", APP])
    assert info.value.code == 1
    with pytest.raises(SystemExit) as info:
        parse_config(["-w", "two", APP])
    assert info.value.code == 2
    assert capsys.readouterr().err.count("--workers: 'two' is not an integer") == 2


# -- precedence in real servers --------------------------------------------------------------------

SOURCE_APP = """
import os

def application(environ, start_response):
    body = os.environ.get("SETTING_SOURCE", "none").encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
"""


@pytest.mark.parametrize("in_file, env, on_command_line, expected", [
    (True, {}, False, "file"),
    (True, {"GUNICORN_CMD_ARGS": "-e SETTING_SOURCE=gunicorn-env"}, False, "gunicorn-env"),
    (True, {"PRONGHORN_CMD_ARGS": "-e SETTING_SOURCE=pronghorn-env",
            "GUNICORN_CMD_ARGS": "-e SETTING_SOURCE=gunicorn-env"}, False, "pronghorn-env"),
    (True, {"PRONGHORN_CMD_ARGS": "-e SETTING_SOURCE=pronghorn-env"}, True, "command-line"),
    (False, {"PRONGHORN_CMD_ARGS": "-e SETTING_SOURCE=pronghorn-env"}, False, "pronghorn-env"),
    (False, {}, False, "none"),
])
def test_a_server_takes_each_setting_from_the_highest_source(
        tmp_path: Path, start_server: Callable[..., Any], in_file: bool, env: dict[str, str],
        on_command_line: bool, expected: str) -> None:
    name = f"sourceapp_{uuid.uuid4().hex[:8]}"
    write(tmp_path / f"{name}.py", SOURCE_APP)
    if in_file:
        write(tmp_path / "gunicorn.conf.py", 'raw_env = ["SETTING_SOURCE=file"]\n')
    flags = ["-e", "SETTING_SOURCE=command-line"] if on_command_line else []
    _, (address,) = start_server(name, *flags, env=env, cwd=tmp_path)
    assert get(address, "/").body == expected.encode()


def wait_for_count(server: Server, pattern: str, count: int, timeout: float = 20.0) -> int:
    """Wait until ``count`` lines match ``pattern``; return how many matched by then."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    with server._changed:
        while True:
            found = sum(1 for line in server.lines if regex.search(line))
            if found >= count:
                return found
            if server.proc.poll() is not None and not server._reader.is_alive():
                raise AssertionError(f"server exited:\n{server.output}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{found} of {count} lines matching {pattern!r}:\n"
                                     f"{server.output}")
            server._changed.wait(min(remaining, 0.5))


@pytest.mark.parametrize("env, workers", [
    ({"WEB_CONCURRENCY": "2"}, 2),
    ({"WEB_CONCURRENCY": "2", "PRONGHORN_CMD_ARGS": "--workers 3"}, 3),
])
def test_web_concurrency_and_environment_arguments_reach_the_server(
        start_server: Callable[..., Any], env: dict[str, str], workers: int) -> None:
    server, (address,) = start_server(APP, env=env)
    assert wait_for_count(server, r"Booting worker with pid", workers) >= workers
    assert get(address, "/counted").json()["path"] == "/counted"


def test_environment_bind_is_used_and_the_command_line_beats_it(
        tmp_path: Path, start_server: Callable[..., Any]) -> None:
    sock_path = tmp_path / "env.sock"
    env = {"PRONGHORN_CMD_ARGS": f"-b unix:{sock_path}"}
    server = Server([APP], env=env)
    try:
        (address,) = server.addresses(1)
        assert address == f"unix:{sock_path}"
        wait_ready(address)
    finally:
        server.stop()
    _, (address,) = start_server(APP, env=env)  # the fixture passes -b 127.0.0.1:0
    assert address.startswith("http://127.0.0.1:")


def test_port_sets_the_default_bind_of_a_server() -> None:
    holder, port = _listening_socket()
    holder.close()  # a free port number for the server to take
    server = Server([APP], env={"PORT": str(port)})
    try:
        (address,) = server.addresses(1)
        assert address == f"http://0.0.0.0:{port}"
        wait_ready(f"http://127.0.0.1:{port}")
    finally:
        server.stop()


GUNICORN = Path("/tmp/gvenv/bin/gunicorn")
PRINTED_ALIKE_CONF = """
workers = 3
bind = ["127.0.0.1:8123", "unix:/tmp/never-bound.sock"]
timeout = 45
keepalive = 4
loglevel = "debug"
accesslog = "-"
proc_name = "myproc"
max_requests = 100
preload_app = True
raw_env = ["A=1"]
wsgi_app = "echo:app"


def post_fork(server, worker):
    pass


def when_ready(server):
    pass
"""
#: Settings whose values pronghorn holds as Gunicorn does, so --print-config prints the same line.
PRINTED_ALIKE = (
    "access_log_format", "accesslog", "backlog", "bind", "errorlog", "graceful_timeout",
    "keepalive", "limit_request_field_size", "limit_request_line", "loglevel", "max_requests",
    "pidfile", "post_fork", "preload_app", "print_config", "proc_name", "raw_env",
    "secure_scheme_headers", "statsd_prefix", "syslog_addr", "threads", "timeout", "umask",
    "when_ready", "worker_class", "workers", "wsgi_app",
)


@pytest.mark.skipif(not GUNICORN.exists(), reason="Gunicorn beside us: python3 -m venv /tmp/gvenv "
                                                   "&& /tmp/gvenv/bin/pip install gunicorn gevent")
def test_print_config_prints_what_gunicorn_prints(tmp_path: Path) -> None:
    write(tmp_path / "gunicorn.conf.py", PRINTED_ALIKE_CONF)

    def lines(command: list[str]) -> dict[str, str]:
        result = subprocess.run([*command, "--print-config"], capture_output=True, text=True,
                                cwd=tmp_path, timeout=60,
                                env={"PYTHONPATH": str(APPS), "PATH": os.environ["PATH"]})
        assert result.returncode == 0, result.stderr
        return {line.split(" ", 1)[0]: line for line in result.stdout.splitlines()}

    ours = lines([sys.executable, "-m", "pronghorn"])
    theirs = lines([str(GUNICORN)])
    assert {name: ours.get(name) for name in PRINTED_ALIKE} == \
        {name: theirs.get(name) for name in PRINTED_ALIKE}
    assert ours["post_fork"].endswith("= <post_fork()>")  # the hooks are there, as Gunicorn's are
    assert re.fullmatch(r"workers += 3", ours["workers"])

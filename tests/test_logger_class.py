"""--logger-class: a class with Gunicorn's Logger interface receives the error and access logs
(a plain class, and a subclass of gunicorn.glogging.Logger when Gunicorn is importable, compared
with Gunicorn running the same class); USR1 calls its reopen_files(), HUP its setup(); a class that
cannot work stops the start with the reason."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import APPS, Server, exchange, wait_ready
from master_util import poll
from pronghorn.logs import load_logger_class

APP = "hook_objects_app:app"
GUNICORN = os.environ.get("GUNICORN", "/tmp/gvenv/bin/gunicorn")
GUNICORN_SITE = next(iter(sorted(Path(GUNICORN).resolve().parent.parent.glob(
    "lib/python3*/site-packages"))), None) if os.access(GUNICORN, os.X_OK) else None
NO_GUNICORN = (f"no Gunicorn at {GUNICORN} (python3 -m venv /tmp/gvenv && /tmp/gvenv/bin/pip "
               "install gunicorn, or set GUNICORN)")

PLAIN_LOGGER = '''
import datetime, os, sys


class FileLogger:
    """Gunicorn's Logger interface, no Gunicorn: every call becomes a line in $LOGGER_OUT."""

    def __init__(self, cfg):
        self.setup(cfg)

    def _line(self, text):
        with open(os.environ["LOGGER_OUT"], "a") as handle:
            handle.write("%d %s\\n" % (os.getpid(), text))

    def setup(self, cfg):
        self.cfg = cfg
        self._line("SETUP loglevel=%s errorlog=%s proc_name=%s user_is_int=%s"
                   % (cfg.loglevel, cfg.errorlog, cfg.proc_name, isinstance(cfg.user, int)))

    def access(self, resp, req, environ, request_time):
        self._line("ACCESS %s %s %s sent=%s delta=%s tag=%s"
                   % (req.method, environ["PATH_INFO"], resp.status, resp.sent,
                      isinstance(request_time, datetime.timedelta), getattr(req, "tag", None)))

    def _log(self, level, msg, *args, **kwargs):
        text = msg % args if args else msg
        print("[custom] [%s] %s" % (level, text), flush=True)  # the server's "Listening at"
        self._line("%s %s" % (level, text))

    def critical(self, msg, *args, **kwargs): self._log("CRITICAL", msg, *args)
    def error(self, msg, *args, **kwargs): self._log("ERROR", msg, *args)
    def warning(self, msg, *args, **kwargs): self._log("WARNING", msg, *args)
    def info(self, msg, *args, **kwargs): self._log("INFO", msg, *args)
    def debug(self, msg, *args, **kwargs): self._log("DEBUG", msg, *args)
    def exception(self, msg, *args, **kwargs): self._log("EXCEPTION", msg, *args)
    def log(self, lvl, msg, *args, **kwargs): self._log(str(lvl), msg, *args)

    def reopen_files(self):
        self._line("REOPEN")

    def close_on_exec(self):
        self._line("CLOSE_ON_EXEC")
'''

HOOK_CONF = '''
def pre_request(worker, req):
    req.tag = "from-pre"


def post_request(worker, req, environ, resp):
    with open(__import__("os").environ["LOGGER_OUT"], "a") as handle:
        handle.write("%d POST tag=%s\\n" % (__import__("os").getpid(), req.tag))
'''

# A subclass of Gunicorn's own Logger, as real projects write them (JSON-ish access lines,
# error lines through Gunicorn's handlers). The module finds Gunicorn in the side venv.
GUNICORN_SUBCLASS = '''
import sys
sys.path.append(%r)
from gunicorn.glogging import Logger


class TaggedLogger(Logger):
    def access(self, resp, req, environ, request_time):
        super().access(resp, req, environ, request_time)
        self.error_log.info("tagged %%s %%s %%s %%s", req.method, req.path, resp.status_code,
                            resp.sent)
'''



def lines(path: Path, word: str) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines() if line.split(" ")[1] == word]


def get(address: str, target: str) -> bytes:
    return exchange(address, f"GET {target} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
                    .encode())


def test_a_plain_class_gets_the_error_and_access_logs(tmp_path: Path) -> None:
    (tmp_path / "plain_logger.py").write_text(PLAIN_LOGGER)
    (tmp_path / "conf.py").write_text(HOOK_CONF)
    out = tmp_path / "logger.out"
    server = Server(["-c", str(tmp_path / "conf.py"), "--pythonpath", str(tmp_path),
                     "--logger-class", "plain_logger.FileLogger", "-b", "127.0.0.1:0", APP],
                    env={"LOGGER_OUT": str(out)})
    try:
        (address,) = server.addresses()
        wait_ready(address)
        master = server.proc.pid
        assert f"{master} SETUP loglevel=info errorlog=- proc_name=hook_objects_app:app " \
               "user_is_int=True" in lines(out, "SETUP")
        assert f"{master} CLOSE_ON_EXEC" in out.read_text()
        # pronghorn's own error log went to the class
        assert any(re.search(r"INFO Listening at: http://127\.0\.0\.1:\d+", line)
                   for line in lines(out, "INFO"))
        get(address, "/one")
        access = poll(lambda: [a for a in lines(out, "ACCESS") if "/one" in a],
                      "the access() of /one")
        # one req for pre_request, access() and post_request: the tag set in pre_request
        assert access[0].split(" ", 1)[1] == \
            "ACCESS GET /one 200 OK sent=12 delta=True tag=from-pre"
        poll(lambda: any("tag=from-pre" in p for p in lines(out, "POST")), "post_request")

        os.kill(master, signal.SIGUSR1)
        # the master's and the worker's reopen_files()
        poll(lambda: len({line.split()[0] for line in lines(out, "REOPEN")}) >= 2,
             "reopen_files() in the master and the worker")

        os.kill(master, signal.SIGHUP)
        poll(lambda: [s for s in lines(out, "SETUP") if s.startswith(f"{master} ")][1:],
             "setup() again on HUP")
    finally:
        server.stop()
    assert not [line for line in server.lines if "Traceback" in line], server.output


def test_a_config_file_may_give_the_class_itself(tmp_path: Path) -> None:
    (tmp_path / "plain_logger.py").write_text(PLAIN_LOGGER)
    (tmp_path / "gunicorn.conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\n"
        "from plain_logger import FileLogger\nlogger_class = FileLogger\nloglevel = 'debug'\n")
    out = tmp_path / "logger.out"
    server = Server(["-c", str(tmp_path / "gunicorn.conf.py"), "-b", "127.0.0.1:0", APP],
                    env={"LOGGER_OUT": str(out)})
    try:
        (address,) = server.addresses()
        wait_ready(address)
        get(address, "/two")
        poll(lambda: [a for a in lines(out, "ACCESS") if "/two 200 OK" in a], "access() of /two")
        assert any("SETUP loglevel=debug" in line for line in lines(out, "SETUP"))
    finally:
        server.stop()


def test_gunicorns_own_names_mean_ours() -> None:
    assert load_logger_class("gunicorn.glogging.Logger") is None
    assert load_logger_class("simple") is None
    assert load_logger_class("gunicorn.instrument.statsd.Statsd") is None


@pytest.mark.parametrize("source, name, expected", [
    ("", "no_such_module_xyz.Logger",
     r"logger_class: cannot import 'no_such_module_xyz': No module named 'no_such_module_xyz'"),
    ("class Half:\n    def access(self, *a): pass\n", "half_logger.Half",
     r"logger_class: half_logger\.Half lacks critical, error, warning, info, debug, exception, "
     r"reopen_files of Gunicorn's Logger interface"),
    ("from gunicorn.glogging import Logger\nclass L(Logger): pass\n", "needs_gunicorn.L",
     r"logger_class: cannot import 'needs_gunicorn': No module named 'gunicorn' \(the class needs "
     r"Gunicorn's gunicorn\.glogging\.Logger: install gunicorn"),
])
def test_a_class_that_cannot_work_says_why(tmp_path: Path, source: str, name: str,
                                           expected: str) -> None:
    if source:
        (tmp_path / f"{name.split('.')[0]}.py").write_text(source)
    result = subprocess.run(
        [sys.executable, "-m", "pronghorn", "--pythonpath", str(tmp_path), "--logger-class", name,
         "-b", "127.0.0.1:0", APP],
        capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(APPS)))
    assert result.returncode == 2
    assert re.search(expected, result.stderr), result.stderr


def test_check_config_loads_the_class(tmp_path: Path) -> None:
    (tmp_path / "half_logger.py").write_text("class Half:\n    pass\n")
    base = [sys.executable, "-m", "pronghorn", "--check-config", "--pythonpath", str(tmp_path)]
    env = dict(os.environ, PYTHONPATH=str(APPS))
    bad = subprocess.run([*base, "--logger-class", "half_logger.Half", APP], capture_output=True,
                         text=True, timeout=60, env=env)
    assert bad.returncode == 1 and "logger_class: half_logger.Half lacks access" in bad.stderr
    (tmp_path / "plain_logger.py").write_text(PLAIN_LOGGER)
    good = subprocess.run([*base, "--logger-class", "plain_logger.FileLogger", APP],
                          capture_output=True, text=True, timeout=60, env=env)
    assert good.returncode == 0, good.stderr


@pytest.mark.skipif(GUNICORN_SITE is None, reason=NO_GUNICORN)
def test_a_gunicorn_logger_subclass_logs_as_under_gunicorn(tmp_path: Path) -> None:
    (tmp_path / "tagged_logger.py").write_text(GUNICORN_SUBCLASS % str(GUNICORN_SITE))
    fmt = '%(h)s "%(r)s" %(s)s %(b)s "%(a)s" "%({x-out}o)s" %({content-type}i)s'
    results = {}
    for tag, command in (("pronghorn", [sys.executable, "-m", "pronghorn"]),
                         ("gunicorn", [GUNICORN])):
        access, errors = tmp_path / f"{tag}-access.log", tmp_path / f"{tag}-error.log"
        extra = ["--no-control-socket"] if tag == "gunicorn" else []
        proc = subprocess.Popen(
            [*command, "--pythonpath", str(tmp_path), "--logger-class", "tagged_logger.TaggedLogger",
             "-b", "127.0.0.1:0", "--access-logfile", str(access), "--error-logfile", str(errors),
             "--access-logformat", fmt, *extra, APP],
            cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=str(APPS)),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            def listening() -> str | None:
                text = errors.read_text() if errors.exists() else ""
                assert proc.poll() is None, text
                match = re.search(r"Listening at: (http://\S+) \(", text)
                return match.group(1) if match else None

            address = poll(listening, f"{tag} to listen", timeout=30)
            wait_ready(address)
            exchange(address, b"GET /x?y=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: ua/1\r\n"
                              b"Connection: close\r\n\r\n")
            exchange(address, b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n"
                              b"Content-Length: 2\r\nConnection: close\r\n\r\nhi")
            exchange(address, b"GET /stream HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
            poll(lambda: errors.read_text().count("tagged ") >= 4, f"{tag}'s tagged lines")
            poll(lambda: len(access.read_text().splitlines()) >= 4, f"{tag}'s access lines")
        finally:
            proc.terminate()
            proc.wait(30)
        results[tag] = (
            [line for line in access.read_text().splitlines() if "/__ready" not in line],
            [line.split("] ", 3)[-1] for line in errors.read_text().splitlines()
             if "tagged " in line and "/__ready" not in line])
    assert results["pronghorn"] == results["gunicorn"]
    assert results["pronghorn"][1] == ["tagged GET /x 200 10", "tagged POST /p 201 12",
                                       "tagged GET /stream 200 12"]

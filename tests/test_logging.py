"""Logging: the access log (Gunicorn's format and atoms, JSON lines), logging configs, syslog,
--capture-output, USR1 reopening and statsd, against real server processes; plus the access format
compiler in process.

Files and sockets are polled for what the server writes; nothing sleeps to wait for an outcome.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import pytest

from conftest import APPS, Server, exchange, wait_ready
from pronghorn import logs
from pronghorn.cli import reload_config

APP = "logging_app:app"
CLF_TIME = r"\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]"
DEFAULT_LINE = re.compile(
    r'^(?P<h>\S+) (?P<l>\S+) (?P<u>\S+) (?P<t>' + CLF_TIME + r') "(?P<r>[^"]*)" (?P<s>\d{3}) '
    r'(?P<b>\S+) "(?P<f>(?:[^"\\]|\\.)*)" "(?P<a>(?:[^"\\]|\\.)*)"$')


# -- helpers -------------------------------------------------------------------------------------------

def request(address: str, target: str | bytes = "/", method: str = "GET",
            headers: list[tuple[str, str | bytes]] | None = None, body: bytes = b"",
            version: str = "HTTP/1.1") -> bytes:
    """One request on its own connection (Connection: close); the raw response."""
    if isinstance(target, str):
        target = target.encode("latin-1")
    lines = [method.encode() + b" " + target + b" " + version.encode(), b"Host: logging.test"]
    for name, value in headers or []:
        lines.append(name.encode() + b": " + (value if isinstance(value, bytes) else value.encode()))
    if body:
        lines.append(b"Content-Length: %d" % len(body))
    lines.append(b"Connection: close")
    return exchange(address, b"\r\n".join(lines) + b"\r\n\r\n" + body)


def body_of(response: bytes) -> bytes:
    return response.split(b"\r\n\r\n", 1)[1]


def poll(check: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """check() until it returns something true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)  # polling interval, not a wait for an outcome


def app_lines(path: Path) -> list[str]:
    """The access lines in ``path``, without the fixture's readiness probes."""
    if not path.exists():
        return []
    return [line for line in path.read_text(encoding="utf-8").splitlines() if "/__ready" not in line]


def wait_lines(path: Path, count: int, timeout: float = 15.0) -> list[str]:
    lines = poll(lambda: len(app_lines(path)) >= count and app_lines(path),
                 f"{count} access lines in {path}", timeout)
    return lines


def basic(user: bytes, password: bytes = b"pw") -> str:
    return "Basic " + base64.b64encode(user + b":" + password).decode()


class UDPReceiver:
    """A UDP socket the server sends statsd metrics or syslog messages to."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[str] = []

    def wait_for(self, predicate: Callable[[str], bool], what: str, timeout: float = 15.0) -> str:
        """The first datagram (received so far or from now on) that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for message in self.received[seen:]:
                if predicate(message):
                    return message
            seen = len(self.received)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no datagram {what}; received:\n" + "\n".join(self.received))
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            self.received.append(data.decode("utf-8", "replace"))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def start_quiet() -> Iterator[Callable[..., tuple[Server, str]]]:
    """start_quiet(*flags, cwd=None) → (Server, address), for servers whose error log does not
    come to the output (so "Listening at" cannot be read there): the test binds the listening
    socket and hands it over as fd://N."""
    servers: list[Server] = []

    def start(*flags: str, cwd: Path | None = None) -> tuple[Server, str]:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        fd = listener.fileno()
        listener.set_inheritable(True)
        address = "http://127.0.0.1:%d" % listener.getsockname()[1]
        try:
            server = Server([*flags, "-b", f"fd://{fd}", APP], cwd=cwd, pass_fds=(fd,))
        finally:
            listener.close()
        servers.append(server)
        wait_ready(address)
        return server, address

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def udp() -> Iterator[UDPReceiver]:
    receiver = UDPReceiver()
    yield receiver
    receiver.close()


# -- the access log, default format --------------------------------------------------------------------

def test_access_log_is_off_by_default(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP)
    request(address, "/marker-off", headers=[("User-Agent", "probe")])
    # The error log (also on this output) says the worker handled its request; nothing else may
    # mention the path.
    request(address, "/raise")
    server.wait_for_line(r"Error handling request")
    assert not any("/marker-off" in line for line in server.lines), server.output


def test_default_format(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "access.log"
    server, (address,) = start_server(APP, "--access-logfile", str(log))
    response = request(address, "/some/path?q=1&r=%20x", headers=[
        ("User-Agent", "Mozilla/5.0 (test)"), ("Referer", "http://ref.test/from?a=b")])
    before = datetime.now().astimezone()
    (line,) = wait_lines(log, 1)
    match = DEFAULT_LINE.match(line)
    assert match, line
    assert match["h"] == "127.0.0.1" and match["l"] == "-" and match["u"] == "-"
    assert match["r"] == "GET /some/path?q=1&r=%20x HTTP/1.1"
    assert match["s"] == "200" and match["b"] == str(len(body_of(response)))
    assert match["f"] == "http://ref.test/from?a=b" and match["a"] == "Mozilla/5.0 (test)"
    logged = datetime.strptime(match["t"], "[%d/%b/%Y:%H:%M:%S %z]")
    assert abs(logged - before) < timedelta(seconds=5)


def test_access_log_to_stdout(start_server) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP, "--access-logfile", "-")
    request(address, "/to-stdout", headers=[("User-Agent", "stdout-agent")])
    found = server.wait_for_line(r'"GET /to-stdout HTTP/1.1" 200')
    assert DEFAULT_LINE.match(found.string), found.string
    assert found.string.endswith('"-" "stdout-agent"')


def test_missing_headers_are_dashes_and_errors_are_500(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "access.log"
    _, (address,) = start_server(APP, "--access-logfile", str(log))
    request(address, "/plain")
    request(address, "/raise")
    request(address, "/stream")
    request(address, "/head", method="HEAD")
    request(address, "/created", method="POST", body=b"12345")
    lines = wait_lines(log, 5)
    parsed = [DEFAULT_LINE.match(line) for line in lines]
    assert all(parsed), lines
    by_path = {m["r"].split()[1]: m for m in parsed}  # type: ignore[index]
    assert (by_path["/plain"]["f"], by_path["/plain"]["a"]) == ("-", "-")
    assert (by_path["/raise"]["s"], by_path["/raise"]["b"]) == ("500", "0")
    assert (by_path["/stream"]["s"], by_path["/stream"]["b"]) == ("200", str(len("one two three\n")))
    assert (by_path["/head"]["s"], by_path["/head"]["b"]) == ("200", "0")
    assert (by_path["/created"]["s"], by_path["/created"]["b"]) == ("201", str(len("created 5 bytes\n")))


def test_remote_address_is_the_environ_after_the_app(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A ProxyFix-style middleware that rewrites REMOTE_ADDR is what %(h)s shows, as in Gunicorn."""
    log = tmp_path / "access.log"
    _, (address,) = start_server(APP, "--access-logfile", str(log))
    request(address, "/proxied")
    (line,) = wait_lines(log, 1)
    assert line.startswith("203.0.113.9 - - ["), line


@pytest.mark.parametrize("authorization, user", [
    (basic(b"alice"), "alice"),
    (basic(b"bob:with:colons", b""), "bob"),
    ("basic " + base64.b64encode(b"carol:x").decode(), "carol"),  # the scheme is case-insensitive
    ("Basic !!!notbase64", "-"),
    ("Bearer abc.def", "-"),
    (basic("zoë".encode()), "zoë"),
])
def test_basic_auth_user(start_server, tmp_path: Path, authorization: str, user: str) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "access.log"
    _, (address,) = start_server(APP, "--access-logfile", str(log))
    request(address, "/auth", headers=[("Authorization", authorization)])
    (line,) = wait_lines(log, 1)
    match = DEFAULT_LINE.match(line)
    assert match and match["u"] == user, line


# -- every atom ----------------------------------------------------------------------------------------

EVERY_ATOM = ("h=%(h)s|l=%(l)s|u=%(u)s|t=%(t)s|r=%(r)s|m=%(m)s|U=%(U)s|q=%(q)s|H=%(H)s|s=%(s)s|"
              "B=%(B)s|b=%(b)s|f=%(f)s|a=%(a)s|T=%(T)s|D=%(D)s|M=%(M)s|L=%(L)s|p=%(p)s|"
              "i=%({x-custom}i)s|I=%({X-CUSTOM}i)s|o=%({x-out}o)s|ct=%({content-type}o)s|"
              "hop=%({connection}o)s|e=%({request_method}e)s|E=%({SERVER_PROTOCOL}e)s|"
              "port=%({remote_port}e)s|none=%({x-absent}i)s|unknown=%(zz)s|pct=%%|D8=%(D)08d")


def test_every_atom(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "access.log"
    server, (address,) = start_server(APP, "--access-logfile", str(log),
                                      "--access-logformat", EVERY_ATOM)
    response = request(address, "/p%20ath/x?a=1&b=two", headers=[
        ("Authorization", basic(b"alice")), ("Referer", "http://ref/"), ("User-Agent", "ua/1"),
        ("X-Custom", "first"), ("x-custom", "last")])
    (line,) = wait_lines(log, 1)
    atoms = dict(part.split("=", 1) for part in line.split("|"))
    sent = len(body_of(response))
    assert atoms["h"] == "127.0.0.1" and atoms["l"] == "-" and atoms["u"] == "alice"
    assert re.fullmatch(CLF_TIME, atoms["t"]), atoms["t"]
    assert atoms["r"] == "GET /p%20ath/x?a=1&b=two HTTP/1.1"
    assert (atoms["m"], atoms["U"], atoms["q"], atoms["H"]) == ("GET", "/p ath/x", "a=1&b=two",
                                                                 "HTTP/1.1")
    assert atoms["s"] == "200" and atoms["B"] == atoms["b"] == str(sent)
    assert (atoms["f"], atoms["a"]) == ("http://ref/", "ua/1")
    # {header}i: the last field of that name, any case in the format.
    assert atoms["i"] == atoms["I"] == "last"
    # {header}o: the app's header, stripped; hop-by-hop headers are not the app's to log.
    assert (atoms["o"], atoms["ct"], atoms["hop"]) == ("out-value", "text/plain", "-")
    assert (atoms["e"], atoms["E"]) == ("GET", "HTTP/1.1") and atoms["port"].isdigit()
    assert atoms["none"] == "-" and atoms["unknown"] == "-" and atoms["pct"] == "%"
    micros = int(atoms["D"])
    assert atoms["D8"] == "%08d" % micros
    assert int(atoms["T"]) == micros // 1000000 and int(atoms["M"]) == micros // 1000
    assert atoms["L"] == "%d.%06d" % divmod(micros, 1000000)
    worker_pid = int(re.fullmatch(r"<(\d+)>", atoms["p"]).group(1))  # type: ignore[union-attr]
    assert worker_pid != server.proc.pid
    assert f"Booting worker with pid: {worker_pid}" in server.output


def test_http_10_request(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "access.log"
    _, (address,) = start_server(APP, "--access-logfile", str(log),
                                 "--access-logformat", "%(H)s %(s)s %(b)s %(U)s")
    request(address, "/old", version="HTTP/1.0")
    (line,) = wait_lines(log, 1)
    assert line == f"HTTP/1.0 200 {len('hello from /old')+1} /old"


# -- escaping ------------------------------------------------------------------------------------------

def test_control_characters_are_escaped(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """What gets past the HTTP parser: a percent-encoded ESC decoded into PATH_INFO (%(U)s), a Basic
    auth user name (any bytes once decoded), a tab inside a header value, and quotes."""
    log = tmp_path / "access.log"
    _, (address,) = start_server(APP, "--access-logfile", str(log), "--access-logformat",
                                 '%(U)s|%(u)s|"%(a)s"|"%(r)s"|%({x-tab}i)s')
    request(address, "/esc%1b[31mred%7f%0a", headers=[
        ("Authorization", basic(b"ev\x1bil\x00")), ("User-Agent", 'tab\there "quoted"'),
        ("X-Tab", "a\tb")])
    # The readiness probe's line comes first: wait for this request's own.
    raw = poll(lambda: log.exists() and b"\n/esc" in b"\n" + log.read_bytes() and log.read_bytes(),
               "the access line")
    line = raw.decode("utf-8").splitlines()[-1]
    assert line == ('/esc\\x1b[31mred\\x7f\\x0a|ev\\x1bil\\x00|"tab\\x09here \\"quoted\\""|'
                    '"GET /esc%1b[31mred%7f%0a HTTP/1.1"|a\\x09b'), line
    assert not re.search(rb"[\x00-\x09\x0b-\x1f\x7f]", raw), raw


@pytest.mark.parametrize("worker", ["sync", "gevent"])
def test_one_file_for_both_logs_keeps_the_order_of_requests(start_quiet, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                            worker: str) -> None:
    """The sync and gevent workers write the access lines of a turn of their loop together; an
    error logged meanwhile must not jump ahead of the line of a request that finished before it.
    Two pipelined requests arrive in one read, so they are served in one turn (the 500 closes the
    connection)."""
    if worker == "gevent":
        pytest.importorskip("gevent", reason="the gevent worker needs gevent (the test extra)")
    both = tmp_path / "both.log"
    _, address = start_quiet("-k", worker, "--access-logfile", str(both), "--error-logfile",
                             str(both),
                             "--access-logformat", "ACCESS %(U)s")
    host, port = address.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /raise HTTP/1.1\r\nHost: t\r\n\r\n")
        while sock.recv(65536):
            pass
    lines = poll(lambda: "ACCESS /raise" in both.read_text() and both.read_text().splitlines(),
                 "both requests in the log")
    order = [("error" if "Error handling" in line else line) for line in lines
             if line in ("ACCESS /a", "ACCESS /raise") or "Error handling" in line]
    assert order == ["ACCESS /a", "error", "ACCESS /raise"], lines


def test_obs_text_is_written_as_gunicorn_does(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A header byte above 0x7f is latin-1 to WSGI, and the log file is UTF-8 (as Gunicorn's)."""
    log = tmp_path / "access.log"
    _, (address,) = start_server(APP, "--access-logfile", str(log), "--access-logformat", "%(a)s")
    request(address, "/", headers=[("User-Agent", b"caf\xe9")])
    poll(lambda: log.exists() and log.read_bytes().count(b"\n") >= 2, "the access line")
    # (The first line is the readiness probe's, whose User-Agent is not this one.)
    assert log.read_bytes().splitlines()[-1] == "café".encode("utf-8")


# -- JSON lines ----------------------------------------------------------------------------------------

def test_json_access_log(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "access.json"
    server, (address,) = start_server(APP, "--access-logfile", str(log), "--access-log-json")
    response = request(address, "/j%1bson/path?x=1", headers=[
        ("User-Agent", "json-agent"), ("Referer", "http://r/"), ("X-Request-ID", "req-42"),
        ("Authorization", basic(b"jo"))])
    request(address, "/raise")
    lines = wait_lines(log, 2)
    first, second = (json.loads(line) for line in lines)
    assert first["remote_addr"] == "127.0.0.1" and first["user"] == "jo"
    assert first["method"] == "GET" and first["path"] == "/j\x1bson/path"
    assert first["uri"] == "/j%1bson/path?x=1" and first["query"] == "x=1"
    assert first["protocol"] == "HTTP/1.1" and first["status"] == 200
    assert first["bytes"] == len(body_of(response))
    assert first["referer"] == "http://r/" and first["user_agent"] == "json-agent"
    assert first["request_id"] == "req-42"
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] >= 0
    assert first["pid"] != server.proc.pid
    stamp = datetime.fromisoformat(first["time"])
    assert stamp.tzinfo is not None and abs(stamp - datetime.now().astimezone()) < timedelta(seconds=5)
    assert "\x1b" not in lines[0]  # JSON escapes it
    assert second["status"] == 500 and second["bytes"] == 0 and "request_id" not in second
    assert second["referer"] is None and second["user_agent"] is None and second["user"] is None


# -- USR1 ----------------------------------------------------------------------------------------------

def test_usr1_reopens_the_logs_without_losing_a_line(start_quiet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    server, address = start_quiet("-w", "2", "--access-logfile", str(access),
                                  "--error-logfile", str(errors))
    sent = 0
    for _ in range(10):
        request(address, f"/n/{sent}")
        sent += 1
    wait_lines(access, sent)
    access.rename(tmp_path / "access.log.1")
    errors.rename(tmp_path / "error.log.1")
    os.kill(server.proc.pid, signal.SIGUSR1)
    # The master reopens its files at once; each worker when its loop next runs. Keep sending
    # until a line lands in the new file: workers have reopened (both, after enough requests).
    poll(lambda: errors.exists(), "a new error log")

    def new_file_has_lines() -> bool:
        nonlocal sent
        request(address, f"/n/{sent}")
        sent += 1
        return len(app_lines(access)) >= 2

    poll(new_file_has_lines, "access lines in the new file")
    for _ in range(10):
        request(address, f"/n/{sent}")
        sent += 1
    old_lines = app_lines(tmp_path / "access.log.1")

    def all_lines() -> list[str] | None:
        lines = old_lines + app_lines(access)
        return lines if len(lines) >= sent else None

    lines = poll(all_lines, f"{sent} lines across both files")
    numbers = sorted(int(re.search(r"/n/(\d+) ", line).group(1)) for line in lines)  # type: ignore[union-attr]
    assert numbers == list(range(sent)), numbers  # every request once: none lost, none twice
    assert len(app_lines(access)) >= 10
    # Logged before the master reopened: in the renamed file.
    assert "Handling signal: usr1" in (tmp_path / "error.log.1").read_text()


# -- logging configs -----------------------------------------------------------------------------------

def _dict_config(target: Path, logger: str, fmt: str) -> dict[str, Any]:
    return {
        "version": 1,
        "formatters": {"tagged": {"format": fmt}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(target),
                              "formatter": "tagged"}},
        "loggers": {logger: {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }


def test_log_config_json(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "via-json.log"
    config = tmp_path / "logging.json"
    config.write_text(json.dumps(_dict_config(target, "pronghorn.access",
                                              "JSONCFG %(name)s %(message)s")))
    _, (address,) = start_server(APP, "--log-config-json", str(config))
    request(address, "/via-json", headers=[("User-Agent", "j")])
    (line,) = wait_lines(target, 1)
    assert line.startswith("JSONCFG pronghorn.access 127.0.0.1 - - [")
    assert re.search(r'"GET /via-json HTTP/1.1" 200 \d+ "-" "j"$', line), line


def test_logconfig_dict_in_a_gunicorn_config_file(start_quiet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A Gunicorn config names Gunicorn's loggers: they configure ours. A formatter that reads
    record.args as Gunicorn's atoms keeps working."""
    target = tmp_path / "via-dict.log"
    config = _dict_config(target, "gunicorn.access", "DICTCFG %(name)s %(message)s")
    config["loggers"]["gunicorn.error"] = {"handlers": ["file"], "level": "INFO",
                                          "propagate": False}
    config["formatters"]["tagged"]["()"] = "access_formatter.ArgsFormatter"
    (tmp_path / "access_formatter.py").write_text(
        "import logging\n"
        "class ArgsFormatter(logging.Formatter):\n"
        "    def format(self, record):\n"
        "        text = super().format(record)\n"
        "        if isinstance(record.args, dict):\n"
        "            text += ' ARGS status=%s path=%s agent=%s' % (\n"
        "                record.args['s'], record.args['U'], record.args['{user-agent}i'])\n"
        "        return text\n")
    (tmp_path / "gunicorn.conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\nlogconfig_dict = {config!r}\n")
    server, address = start_quiet(cwd=tmp_path)
    request(address, "/via-dict", headers=[("User-Agent", "d")])
    lines = poll(lambda: [l for l in app_lines(target) if "/via-dict" in l], "the access line")
    # %(name)s is the Gunicorn logger the config set up, as under Gunicorn.
    assert lines[0].startswith("DICTCFG gunicorn.access 127.0.0.1 - - ["), lines
    assert re.search(r'" 200 \d+ "-" "d" ARGS status=200 path=/via-dict agent=d$', lines[0]), lines
    assert any("DICTCFG gunicorn.error Booting worker" in l for l in app_lines(target))
    assert "Booting worker" not in server.output  # the error log went to the file instead


def test_log_config_dict_flag(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "via-flag.log"
    config = _dict_config(target, "pronghorn.access", "FLAG %(message)s")
    _, (address,) = start_server(APP, "--log-config-dict", json.dumps(config))
    request(address, "/via-flag")
    (line,) = wait_lines(target, 1)
    assert line.startswith("FLAG 127.0.0.1 - - [") and '"GET /via-flag HTTP/1.1" 200' in line


def test_log_config_ini(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "via-ini.log"
    ini = tmp_path / "logging.ini"
    ini.write_text(f"""
[loggers]
keys=root,access

[handlers]
keys=file

[formatters]
keys=plain

[logger_root]
level=WARNING
handlers=

[logger_access]
level=INFO
handlers=file
propagate=0
qualname=gunicorn.access

[handler_file]
class=FileHandler
formatter=plain
args=('%(here)s/{target.name}',)

[formatter_plain]
format=INI %(message)s
""")
    _, (address,) = start_server(APP, "--log-config", str(ini))
    request(address, "/via-ini")
    (line,) = wait_lines(target, 1)
    assert line.startswith("INI 127.0.0.1 - - [") and '"GET /via-ini HTTP/1.1" 200' in line


@pytest.mark.parametrize("flags, message", [
    (["--log-config", "/nonexistent/logging.ini"], "--log-config: the log config"),
    (["--log-config-json", "/nonexistent/logging.json"], "--log-config-json: cannot read"),
    (["--log-config-dict", "[1, 2]"], "--log-config-dict: [1, 2] is not a dict"),
    (["--log-config-dict", "{nope"], "--log-config-dict: not valid JSON"),
    (["--access-logformat", "%(h)d"], "--access-logformat: '%(h)d': %d format: a real number is "
                                      "required, not str"),
    (["--access-logformat", "%(h)"], "--access-logformat: '%(h)': '%(h)' is not followed by a "
                                     "conversion"),
    (["--log-syslog-facility", "local9"], "--log-syslog-facility: 'local9' is not a syslog facility"),
    (["--log-syslog-to", "http://x"], "--log-syslog-to: 'http://x' is not an address"),
    (["--statsd-host", "localhost:port"], "--statsd-host: 'localhost:port': 'port' is not a port"),
    (["--access-logfile", "/nonexistent/dir/access.log"], "--access-logfile: cannot open"),
])
def test_bad_logging_settings_stop_the_start(tmp_path: Path, flags: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "pronghorn", *flags, "-b", "127.0.0.1:0", APP],
                            capture_output=True, text=True, timeout=30, cwd=tmp_path,
                            env=dict(os.environ, PYTHONPATH=str(APPS)))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_logging_settings_in_a_config_file(tmp_path: Path) -> None:
    (tmp_path / "gunicorn.conf.py").write_text(
        "accesslog = '-'\naccess_log_format = '%(h)s %(s)s'\ncapture_output = True\n"
        "logconfig_dict = {'root': {'level': 'INFO'}}\nsyslog = True\n"
        "syslog_addr = 'udp://127.0.0.1:5514'\nstatsd_host = 'localhost:8125'\n"
        "statsd_prefix = 'web'\ndogstatsd_tags = 'env:prod'\n"
        "disable_redirect_access_to_syslog = True\n")
    cfg = reload_config([APP], cwd=str(tmp_path))
    assert (cfg.accesslog, cfg.access_log_format, cfg.capture_output) == ("-", "%(h)s %(s)s", True)
    assert cfg.logconfig_dict == {"root": {"level": "INFO"}} and cfg.syslog
    assert (cfg.statsd_host, cfg.statsd_prefix, cfg.dogstatsd_tags) == ("localhost:8125", "web",
                                                                       "env:prod")
    assert cfg.disable_redirect_access_to_syslog and cfg.syslog_addr == "udp://127.0.0.1:5514"


def test_logging_flags_have_gunicorn_defaults() -> None:
    cfg = reload_config([APP])
    assert cfg.accesslog is None and cfg.access_log_format == logs.DEFAULT_ACCESS_LOG_FORMAT
    assert cfg.logconfig is None and cfg.logconfig_dict == {} and cfg.logconfig_json is None
    assert (cfg.syslog, cfg.syslog_addr, cfg.syslog_prefix, cfg.syslog_facility) == (
        False, "udp://localhost:514", None, "user")
    assert (cfg.statsd_host, cfg.statsd_prefix, cfg.dogstatsd_tags) == (None, "", "")
    assert not (cfg.capture_output or cfg.disable_redirect_access_to_syslog or cfg.access_log_json)
    assert reload_config([APP]).logconfig_dict is not cfg.logconfig_dict  # no shared default


def test_help_lists_the_logging_flags() -> None:
    result = subprocess.run([sys.executable, "-m", "pronghorn", "--help"], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    for flag in ("--access-logfile", "--access-logformat", "--access-log-json", "--log-config",
                 "--log-config-dict", "--log-config-json", "--log-syslog", "--log-syslog-to",
                 "--log-syslog-prefix", "--log-syslog-facility", "--capture-output",
                 "--disable-redirect-access-to-syslog", "--statsd-host", "--statsd-prefix",
                 "--dogstatsd-tags"):
        assert flag in result.stdout, flag
    assert "%(h)s" in result.stdout and "pronghorn addition" in result.stdout


# -- syslog ----------------------------------------------------------------------------------------------

def test_syslog(start_server, udp: UDPReceiver) -> None:  # type: ignore[no-untyped-def]
    _, (address,) = start_server(APP, "--log-syslog", "--log-syslog-to",
                                 f"udp://127.0.0.1:{udp.port}", "--log-syslog-prefix", "shop",
                                 "--log-syslog-facility", "local0")
    # <134> = facility local0 (16) * 8 + severity info (6); Gunicorn's program name and format.
    booted = udp.wait_for(lambda m: "Booting worker" in m, "saying a worker booted")
    assert re.fullmatch(r"<134>gunicorn\.shop\.error: \[\d+\] Booting worker with pid: \d+\x00?",
                        booted), booted
    request(address, "/to-syslog", headers=[("User-Agent", "sys")])
    line = udp.wait_for(lambda m: "/to-syslog" in m, "with the access line")
    assert re.fullmatch(r'<134>gunicorn\.shop\.access: \[\d+\] 127\.0\.0\.1 - - ' + CLF_TIME +
                        r' "GET /to-syslog HTTP/1\.1" 200 \d+ "-" "sys"\x00?', line), line
    request(address, "/raise")
    error = udp.wait_for(lambda m: "Error handling request" in m, "with the app's error")
    assert error.startswith("<131>gunicorn.shop.error: ")  # severity error (3)


def test_disable_redirect_access_to_syslog(start_server, udp: UDPReceiver) -> None:  # type: ignore[no-untyped-def]
    _, (address,) = start_server(APP, "--log-syslog", "--log-syslog-to",
                                 f"udp://127.0.0.1:{udp.port}", "--disable-redirect-access-to-syslog")
    request(address, "/not-to-syslog")
    request(address, "/raise")  # logged by the same worker after the first request's access line
    udp.wait_for(lambda m: "Error handling request /raise" in m, "with the app's error")
    assert not any("/not-to-syslog" in m for m in udp.received), udp.received
    # The program name defaults to the process name, ':' made '.', as Gunicorn's.
    assert any(m.startswith("<11>gunicorn.logging_app.app.error: ") for m in udp.received)


# -- --capture-output --------------------------------------------------------------------------------------

def test_capture_output(start_quiet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    errors = tmp_path / "error.log"
    server, address = start_quiet("--capture-output", "--error-logfile", str(errors))
    request(address, "/print?marker=m-1")
    text = poll(lambda: "stderr says m-1" in errors.read_text() and errors.read_text(),
                "the app's output in the error log")
    assert "stdout says m-1" in text and "Booting worker" in text
    assert "says m-1" not in server.output


def test_without_capture_output_prints_stay_on_stdout(start_quiet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    errors = tmp_path / "error.log"
    server, address = start_quiet("--error-logfile", str(errors))
    request(address, "/print?marker=m-2")
    server.wait_for_line("stderr says m-2")
    assert "says m-2" not in errors.read_text()


# -- statsd ------------------------------------------------------------------------------------------------

def test_statsd_metrics(start_server, udp: UDPReceiver) -> None:  # type: ignore[no-untyped-def]
    _, (address,) = start_server(APP, "-w", "2", "--statsd-host", f"127.0.0.1:{udp.port}",
                                 "--statsd-prefix", "shop", "--dogstatsd-tags", "env:test,team:x")
    tags = "|#env:test,team:x"
    udp.wait_for(lambda m: m == "shop.gunicorn.workers:2|g" + tags, "gauging 2 workers")
    request(address, "/counted")
    udp.wait_for(lambda m: m == "shop.gunicorn.requests:1|c|@1.0" + tags, "counting a request")
    udp.wait_for(lambda m: m == "shop.gunicorn.request.status.200:1|c|@1.0" + tags,
                 "counting a 200")
    timer = udp.wait_for(lambda m: m.startswith("shop.gunicorn.request.duration:"), "timing")
    assert re.fullmatch(r"shop\.gunicorn\.request\.duration:\d+\.\d+\|ms" + re.escape(tags),
                        timer), timer
    request(address, "/raise")
    udp.wait_for(lambda m: m == "shop.gunicorn.request.status.500:1|c|@1.0" + tags,
                 "counting a 500")
    udp.wait_for(lambda m: m == "shop.gunicorn.log.exception:1|c|@1.0" + tags,
                 "counting the logged exception")


def test_statsd_worker_gauge_follows_ttin_and_no_access_log_needed(start_server, udp: UDPReceiver,
                                                                   tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP, "--statsd-host", f"127.0.0.1:{udp.port}")
    udp.wait_for(lambda m: m == "gunicorn.workers:1|g", "gauging 1 worker (no prefix, no tags)")
    os.kill(server.proc.pid, signal.SIGTTIN)
    udp.wait_for(lambda m: m == "gunicorn.workers:2|g", "gauging 2 workers after TTIN")
    os.kill(server.proc.pid, signal.SIGTTOU)
    udp.wait_for(lambda m: m == "gunicorn.workers:1|g" and udp.received.count(m) >= 2,
                 "gauging 1 worker after TTOU")


def test_statsd_prefix_rule() -> None:
    assert logs.statsd_prefix("") == ""
    assert logs.statsd_prefix("app") == "app."
    assert logs.statsd_prefix("app.") == "app."
    assert logs.statsd_prefix("app...") == "app."
    assert logs.statsd_prefix("a") == "a"  # Gunicorn's regex needs two characters


def test_statsd_log_counters(udp: UDPReceiver) -> None:
    statsd = logs.Statsd(f"127.0.0.1:{udp.port}", "pfx", "")
    logger = logging.getLogger("pronghorn.test.statsd")
    logger.propagate = False
    logger.handlers = [logs._StatsdLogCounter(statsd)]
    try:
        logger.info("not counted")
        logger.warning("w")
        logger.error("e")
        try:
            raise ValueError("x")
        except ValueError:
            logger.exception("x")
        logger.critical("c")
        for name in ("warning", "error", "exception", "critical"):
            udp.wait_for(lambda m, n=name: m == f"pfx.gunicorn.log.{n}:1|c|@1.0", name)
        assert len(udp.received) == 4, udp.received
    finally:
        logger.handlers = []
        statsd.close()


# -- the format compiler, in process ---------------------------------------------------------------------

def _fake(headers: list[tuple[bytes, bytes]] | None = None) -> tuple[Any, ...]:
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/a%20b?x=1", "SERVER_PROTOCOL": "HTTP/1.1",
               "PATH_INFO": "/a b", "QUERY_STRING": "x=1", "REMOTE_ADDR": "10.0.0.1",
               "HTTP_REFERER": "http://r/", "HTTP_USER_AGENT": 'agent "x"',
               "HTTP_AUTHORIZATION": basic(b"u\x07ser"), "wsgi.version": (1, 0), "Mixed_Case": "mc"}
    request_ = SimpleNamespace(headers=headers or [(b"User-Agent", b'agent "x"'), (b"X-A", b"1"),
                                                   (b"x-a", b"2"), (b"X_Under", b"u")])
    exchange_ = SimpleNamespace(headers=[("Content-Type", "text/plain"), ("X-Out", " v\x1b "),
                                         ("Transfer-Encoding", "chunked")])
    return environ, request_, exchange_, 1234567, 404, 321


FORMATS = [
    logs.DEFAULT_ACCESS_LOG_FORMAT,
    EVERY_ATOM,
    "%(D)d %(T)5d %(M)-6d| %(L)s %(B)x %(s)s",
    "%(h)20s|%(h)-20s|%(u).3s",
    "%({x-a}i)s %({X-A}I)s %({x_under}i)s %({x-out}o)s %({transfer-encoding}o)s",
    "%({wsgi.version}e)s %({mixed_case}e)s %({MIXED_CASE}e)r %({nope}e)s",
    "%(zz)s %(h(x))s 100%% done",
    '"%(r)s" %(r)s|%(r)20s|%(r).3s',  # the raw line splits a plain %(r)s into its three parts
    "%(r)r %(r)s %%(r)s",
    "%(s)r %(s)s %(b)5s %(b)s %(s)-4s|",  # and passes the numbers to a plain %s as they are
    "{%(h)s} {{x}} }{ %(m)s",  # braces are literal text (the raw line is an f-string)
    "no atoms at all",
    "",
]


def _clean_fake() -> tuple[Any, ...]:
    """A request with nothing to escape: the compiled line's fast path."""
    environ, request_, exchange_, us, status, sent = _fake([(b"User-Agent", b"agent x")])
    environ.update(HTTP_USER_AGENT="agent x", HTTP_AUTHORIZATION=basic(b"user"))
    exchange_.headers = [("Content-Type", "text/plain"), ("X-Out", " v ")]
    return environ, request_, exchange_, us, status, sent


@pytest.mark.parametrize("values", ["to escape", "clean"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_compiled_format_equals_gunicorns_way(fmt: str, values: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled function gives what Gunicorn's ``format % SafeAtoms(atoms)`` gives (with our
    escaping), for every atom and printf conversion, whether or not a value needs escaping."""
    frozen = lambda: "[FROZEN]"  # noqa: E731
    monkeypatch.setitem(logs._NAMESPACE, "clf_now", frozen)
    monkeypatch.setattr(logs, "clf_now", frozen)
    monkeypatch.setitem(logs._NAMESPACE, "CLF", [(0.0, 0.0, "")])  # (compiled lines read it first)
    args = _fake() if values == "to escape" else _clean_fake()
    compiled = logs.compile_access_format(fmt)(*args)
    assert compiled == fmt % logs.AccessAtoms(*args)


class _Shown(str):
    def __str__(self) -> str:
        return "shown"


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_compiled_format_over_clean_and_dirty_values(fmt: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The same compiled line, fed values it has seen clean, then ones that need escaping, then the
    clean ones again (it remembers clean combinations), then values an app may have put in the
    environ (a str subclass, something unhashable): always what Gunicorn's way gives."""
    frozen = lambda: "[FROZEN]"  # noqa: E731
    monkeypatch.setitem(logs._NAMESPACE, "clf_now", frozen)
    monkeypatch.setattr(logs, "clf_now", frozen)
    monkeypatch.setitem(logs._NAMESPACE, "CLF", [(0.0, 0.0, "")])  # (compiled lines read it first)
    line = logs.compile_access_format(fmt)
    odd = _clean_fake()
    odd[0].update(REMOTE_ADDR=_Shown('1"2'), HTTP_REFERER=["un", "hashable"])
    for args in (_clean_fake(), _clean_fake(), _fake(), _clean_fake(), odd, _fake()):
        assert line(*args) == fmt % logs.AccessAtoms(*args)


def _frozen_clock(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The compiled lines' clock, frozen to the text in the returned list (the test moves it)."""
    now = ["[FROZEN 1]"]
    frozen = lambda: now[0]  # noqa: E731
    monkeypatch.setitem(logs._NAMESPACE, "clf_now", frozen)
    monkeypatch.setattr(logs, "clf_now", frozen)
    monkeypatch.setitem(logs._NAMESPACE, "CLF", [(0.0, 0.0, "")])  # (compiled lines read it first)
    return now


def _request_like(uri: str, agent: str, addr: str = "10.0.0.1") -> tuple[Any, ...]:
    environ, request_, exchange_, us, status, sent = _clean_fake()
    environ.update(RAW_URI=uri, HTTP_USER_AGENT=agent, REMOTE_ADDR=addr)
    return environ, request_, exchange_, us, status, sent


def test_remembered_lines_are_those_gunicorns_way_gives(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default format remembers its lines whole (keyed on their values): requests that repeat
    values, differ in one, change second, status or size, need escaping, or carry an app's odd
    values, each get the line Gunicorn's way gives, from strings made anew each time as a proxied
    request's are."""
    now = _frozen_clock(monkeypatch)
    fmt = logs.DEFAULT_ACCESS_LOG_FORMAT
    line = logs.compile_access_format(fmt)
    remembered = line.__globals__["LINES"]
    odd = _request_like("/a", "agent")
    odd[0].update(HTTP_REFERER=["un", "hashable"])
    cases: list[tuple[Any, ...]] = [
        _request_like("/a", "agent"), _request_like("/a", "agent"),
        _request_like("/b", "agent"), _request_like("/a", "other agent"),
        _request_like("/a", "agent", addr="10.0.0.2"),
        _request_like("/a", 'agent "quoted"'), _request_like("/a", "agent\x1b"), odd,
        (*_request_like("/a", "agent")[:4], 500, 0), (*_request_like("/a", "agent")[:5], 999),
        _request_like("/a", "agent"),
    ]
    for args in cases:
        args = ({**args[0], "RAW_URI": "".join(args[0]["RAW_URI"])}, *args[1:])  # a new str
        assert line(*args) == fmt % logs.AccessAtoms(*args)
    assert 0 < len(remembered) < len(cases)
    now[0] = "[FROZEN 2]"  # the next second: its lines are new
    args = _request_like("/a", "agent")
    assert line(*args) == fmt % logs.AccessAtoms(*args) and "[FROZEN 2]" in line(*args)


def test_remembered_lines_stay_within_their_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines are remembered within LINES_BUDGET bytes per format, however many distinct (and
    however long) the requests; past it the format forgets them and goes on remembering."""
    _frozen_clock(monkeypatch)
    fmt = logs.DEFAULT_ACCESS_LOG_FORMAT
    line = logs.compile_access_format(fmt)
    remembered, fill = line.__globals__["LINES"], line.__globals__["FILL"]
    largest = 0
    for i in range(3000):
        args = _request_like(f"/{i:05d}/" + "x" * (i % 3 * 2000), "agent")
        assert line(*args) == fmt % logs.AccessAtoms(*args)
        size = sum(2 * len(text) + logs._LINE_OVERHEAD for text in remembered.values())
        assert size == fill[0] <= logs.LINES_BUDGET
        largest = max(largest, len(remembered))
    assert 0 < len(remembered) and largest < 3000
    huge = _request_like("/" + "y" * logs.LINES_BUDGET, "agent")  # larger than the budget itself
    assert line(*huge) == fmt % logs.AccessAtoms(*huge)
    assert fill[0] <= logs.LINES_BUDGET


@pytest.mark.parametrize("fmt, timed", [
    (logs.DEFAULT_ACCESS_LOG_FORMAT, False), ("%(h)s %({x-request-id}i)s %(p)s", False),
    ("%(h)s %(D)s", True), ("%(L)s", True), ("%(T)s", True), ("%(M)s", True),
    ("%s", True),  # (only ``format % atoms`` can do it: it shows every atom)
])
def test_requests_are_timed_when_the_format_uses_the_duration(fmt: str, timed: bool,
                                                               tmp_path: Path) -> None:
    """The request cycle times requests only when the access log asks (wants_duration): a format
    with a duration atom, JSON lines, statsd, or a line that goes through logging (whose record
    holds every atom for formatters written for Gunicorn)."""
    logger = logging.getLogger("pronghorn.test.timed")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.FileHandler(tmp_path / "access.log")
    logs._OURS.add(handler)  # as if setup_logging had made it
    logger.handlers = [handler]
    try:
        direct = logs.RequestLogger(logs.compile_access_format(fmt), fmt, logger, None, logger)
        assert direct.wants_duration() is timed
        as_json = logs.RequestLogger(logs.json_line, None, logger, None, logger)
        assert as_json.wants_duration()
        logger.addFilter(lambda record: True)  # the line goes through logging now
        through_logging = logs.RequestLogger(logs.compile_access_format(fmt), fmt, logger, None,
                                             logger)
        assert through_logging.wants_duration()
    finally:
        handler.close()
        logger.handlers = []
        logger.filters = []


@pytest.mark.parametrize("worker", ["sync", "gthread", "gevent"])
def test_lines_in_order_and_durations_under_every_worker(start_quiet, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                         worker: str) -> None:
    """Keep-alive requests that repeat, differ and repeat again, in one file: every line is this
    request's (the remembered lines of the default format are never another's), in order, and
    appear without the worker stopping. A format with a duration shows the app's time."""
    if worker == "gevent":
        pytest.importorskip("gevent", reason="the gevent worker needs gevent (the test extra)")
    log, timed = tmp_path / "access.log", tmp_path / "timed.log"
    _, address = start_quiet("-k", worker, "--access-logfile", str(log))
    host, port = address.removeprefix("http://").rsplit(":", 1)
    agents = ["agent-a", "agent-a", "agent-b", "agent-a", 'agent "q"', "agent-a"]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        for i, agent in enumerate(agents):
            sock.sendall(f"GET /n{i % 2} HTTP/1.1\r\nHost: t\r\nUser-Agent: {agent}\r\n"
                         f"X-Request-Id: {i}\r\n\r\n".encode())
            response = b""
            while not response.endswith(b"\n") or b"\r\n\r\n" not in response:
                response += sock.recv(65536)
        lines = wait_lines(log, len(agents))  # (the connection still open)
    expected = [f'"GET /n{i % 2} HTTP/1.1" 200 {len(f"hello from /n{i % 2}") + 1} "-" '
                f'"{agent.replace(chr(34), chr(92) + chr(34))}"' for i, agent in enumerate(agents)]
    assert [line.split(" ", 5)[5] for line in lines] == expected, lines

    _, address = start_quiet("-k", worker, "--access-logfile", str(timed),
                             "--access-logformat", "%(U)s %(D)s")
    request(address, "/slow?ms=60")
    (line,) = wait_lines(timed, 1)
    path, micros = line.split()
    assert path == "/slow" and 60000 <= int(micros) < 30000000, line


def test_compiled_values() -> None:
    line = logs.compile_access_format(
        '%(h)s %(u)s "%(a)s" %({x-a}i)s %({x_under}i)s %({x-out}o)s %({transfer-encoding}o)s '
        '%(s)s %(b)s %(D)s %(L)s %(T)s %(M)s %(p)s %(zz)s')(*_fake())
    assert line == (f'10.0.0.1 u\\x07ser "agent \\"x\\"" 2 - v\\x1b - 404 321 1234567 1.234567 1 '
                    f'1234 <{os.getpid()}> -')


def test_formats_the_generic_path_handles() -> None:
    """A '%s' without a name formats the mapping itself, as Gunicorn's logging call does; '*'
    widths cannot work with a mapping and are refused."""
    args = _fake()
    assert logs.compile_access_format("x %(s)s")(*args) == "x 404"
    line = logs.compile_access_format("%s")(*args)
    assert line.startswith("{") and "'s': '404'" in line
    with pytest.raises(ValueError):
        logs.compile_access_format("%(h)*s")


def test_direct_write_and_logging_write_agree(tmp_path: Path) -> None:
    """The fast path (straight to our handler's stream) and Gunicorn's logging call write the same
    line; the fast path is taken only when the logger is nothing but our handler."""
    args = _fake()
    fmt = EVERY_ATOM.replace("|t=%(t)s", "")
    outputs = []
    for extra_filter in (False, True):
        logger = logging.getLogger(f"pronghorn.test.access.{extra_filter}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        handler = logging.FileHandler(tmp_path / f"{extra_filter}.log")
        handler.setFormatter(logging.Formatter("%(message)s"))
        logs._OURS.add(handler)  # as if setup_logging had made it
        logger.handlers = [handler]
        if extra_filter:
            logger.addFilter(lambda record: True)
        writer = logs.RequestLogger(logs.compile_access_format(fmt), fmt, logger, None, logger)
        environ, request_, exchange_, us, status, sent = args
        exchange_.framer = SimpleNamespace(status_code=status, sent=sent)
        exchange_.head_sent = True
        writer(request_, environ, exchange_, us / 1000000)
        handler.close()
        direct = writer._write is not None
        assert direct is not extra_filter
        outputs.append((tmp_path / f"{extra_filter}.log").read_text())
    assert outputs[0] == outputs[1] and outputs[0].count("\n") == 1


# -- byte for byte against Gunicorn ------------------------------------------------------------------------

GUNICORN = os.environ.get("GUNICORN", "/tmp/gvenv/bin/gunicorn")

COMPARED_REQUESTS: list[tuple[str, str | bytes, list[tuple[str, str | bytes]], bytes, str]] = [
    ("GET", "/compare/path?x=1&y=%20z", [
        ("User-Agent", 'pronghorn-compare/1.0 (X11; "quoted")'),
        ("Referer", "http://referer.test/page?a=b"), ("Authorization", basic(b"alice", b"s3cret"))],
     b"", "HTTP/1.1"),
    ("GET", "/no-agent", [], b"", "HTTP/1.1"),
    ("HEAD", "/head", [("User-Agent", "head-agent")], b"", "HTTP/1.1"),
    ("POST", "/created", [("User-Agent", "poster"), ("Content-Type", "text/plain")], b"abcdef",
     "HTTP/1.1"),
    ("GET", "/stream", [("User-Agent", "streamer")], b"", "HTTP/1.1"),
    ("GET", "/old", [("User-Agent", "http10")], b"", "HTTP/1.0"),
    ("GET", "/proxied", [("Referer", "-")], b"", "HTTP/1.1"),
    ("GET", "/p%C3%A9th/%2F?q=%22", [("User-Agent", b"obs-text \xe9\xff")], b"", "HTTP/1.1"),
]
# The one known difference: when the app raises, Gunicorn logs its 500 from a fresh environ without
# the request's headers (referer, user agent and Basic user become "-"); we keep them.
ERROR_REQUEST = ("GET", "/raise", [("User-Agent", "raiser"), ("Referer", "http://r/")], b"",
                 "HTTP/1.1")


def _gunicorn_flags() -> list[str]:
    help_text = subprocess.run([GUNICORN, "--help"], capture_output=True, text=True,
                               timeout=60).stdout
    # Gunicorn 25+ opens a control socket in ~/.gunicorn otherwise.
    return ["--no-control-socket"] if "--no-control-socket" in help_text else []


def _start_gunicorn(tmp_path: Path, access: Path) -> tuple[subprocess.Popen[bytes], str]:
    errors = tmp_path / "gunicorn-error.log"
    extra = _gunicorn_flags()
    proc = subprocess.Popen(
        [GUNICORN, "-b", "127.0.0.1:0", "-w", "1", "--access-logfile", str(access),
         "--error-logfile", str(errors), *extra, APP],
        cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=str(APPS)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listening() -> str | None:
        if proc.poll() is not None:
            raise AssertionError("gunicorn exited:\n" + (errors.read_text() if errors.exists() else ""))
        text = errors.read_text() if errors.exists() else ""
        match = re.search(r"Listening at: (http://\S+) \(", text)
        return match.group(1) if match else None

    return proc, poll(listening, "gunicorn to listen", timeout=30)


@pytest.mark.skipif(not os.access(GUNICORN, os.X_OK),
                    reason=f"no Gunicorn at {GUNICORN} (python3 -m venv /tmp/gvenv && "
                           "/tmp/gvenv/bin/pip install gunicorn, or set GUNICORN)")
def test_default_format_matches_gunicorn_byte_for_byte(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ours_log, theirs_log = tmp_path / "pronghorn-access.log", tmp_path / "gunicorn-access.log"
    proc, gunicorn_address = _start_gunicorn(tmp_path, theirs_log)
    try:
        wait_ready(gunicorn_address)
        _, (address,) = start_server(APP, "--access-logfile", str(ours_log))
        for method, target, headers, body, version in [*COMPARED_REQUESTS, ERROR_REQUEST]:
            for where in (address, gunicorn_address):
                request(where, target, method=method, headers=headers, body=body,
                        version=version)
        count = len(COMPARED_REQUESTS) + 1
        wait_lines(ours_log, count)
        wait_lines(theirs_log, count)
    finally:
        proc.terminate()
        proc.wait(30)

    def lines(path: Path) -> list[bytes]:
        out = []
        for line in path.read_bytes().splitlines():
            if b"/__ready" in line:
                continue
            normalized, replaced = re.subn(CLF_TIME.encode(), b"[TIME]", line)
            assert replaced == 1, line
            out.append(normalized)
        return out

    ours, theirs = lines(ours_log), lines(theirs_log)
    assert len(ours) == len(theirs) == len(COMPARED_REQUESTS) + 1
    for mine, gunicorns in zip(ours[:-1], theirs[:-1]):
        assert mine == gunicorns
    assert ours[-1] == b'127.0.0.1 - - [TIME] "GET /raise HTTP/1.1" 500 0 "http://r/" "raiser"'
    assert theirs[-1] == b'127.0.0.1 - - [TIME] "GET /raise HTTP/1.1" 500 0 "-" "-"'


# -- a Gunicorn config file with logging, unchanged ----------------------------------------------------

GUNICORN_CONF = '''
import os

_here = os.path.dirname(os.path.abspath(__file__))
_tag = os.environ["CONF_TAG"]  # which server this is: the file is the same for both
bind = "unix:" + os.path.join(_here, _tag + ".sock")
workers = 2
timeout = 30
graceful_timeout = 10
keepalive = 2
loglevel = "info"
errorlog = os.path.join(_here, _tag + "-error.log")
accesslog = os.path.join(_here, _tag + "-access.log")
access_log_format = ('%(h)s "%(r)s" %(s)s %(b)s %(m)s %(U)s %(q)s %(H)s %(B)s %(u)s %(l)s '
                     '"%({x-forwarded-for}i)s" "%({content-type}o)s" "%({x-out}o)s" '
                     '%({server_protocol}e)s %({x-absent}i)s')
disable_redirect_access_to_syslog = False
capture_output = False


def post_fork(server, worker):
    server.log.info("conf post_fork %s", worker.pid)


def post_request(worker, req, environ, resp):
    worker.log.info("conf post_request %s %s", req.path, resp.status_code)
'''

CONF_REQUESTS: list[tuple[str, str, list[tuple[str, str | bytes]], bytes]] = [
    ("GET", "/conf/a?k=v%20w", [("X-Forwarded-For", "198.51.100.7, 10.0.0.1"),
                                ("Authorization", basic(b"dora"))], b""),
    ("POST", "/created", [("Content-Type", "text/plain")], b"xyz"),
    ("GET", "/stream", [], b""),
]
CONF_EXPECTED = [
    ' "GET /conf/a?k=v%20w HTTP/1.1" 200 19 GET /conf/a k=v%20w HTTP/1.1 19 dora - '
    '"198.51.100.7, 10.0.0.1" "text/plain" "out-value" HTTP/1.1 -',
    ' "POST /created HTTP/1.1" 201 16 POST /created  HTTP/1.1 16 - - "-" "text/plain" "-" '
    'HTTP/1.1 -',
    ' "GET /stream HTTP/1.1" 200 14 GET /stream  HTTP/1.1 14 - - "-" "text/plain" "-" HTTP/1.1 -',
]


def _run_conf(tmp_path: Path, tag: str, command: list[str], servers: list[Any]) -> list[str]:
    """Serve the config under ``tag``, send CONF_REQUESTS, return the access lines."""
    env = dict(os.environ, CONF_TAG=tag, PYTHONPATH=str(APPS))
    proc = subprocess.Popen([*command, "-c", str(tmp_path / "gunicorn.conf.py"), APP],
                            cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    servers.append(proc)
    errors, access = tmp_path / f"{tag}-error.log", tmp_path / f"{tag}-access.log"
    address = f"unix:{tmp_path / (tag + '.sock')}"

    def booted() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{tag} exited:\n{errors.read_text() if errors.exists() else ''}")
        return errors.exists() and errors.read_text().count("conf post_fork") >= 2

    poll(booted, f"{tag}'s two workers", timeout=30)
    wait_ready(address)
    for method, target, headers, body in CONF_REQUESTS:
        request(address, target, method=method, headers=headers, body=body)
    lines = wait_lines(access, len(CONF_REQUESTS))
    poll(lambda: errors.read_text().count("conf post_request /stream 200") == 1,
         f"{tag}'s post_request hook")
    assert "conf post_request /conf/a 200" in errors.read_text()
    return lines


def test_a_gunicorn_config_with_logging_runs_unchanged(tmp_path: Path) -> None:
    """One gunicorn.conf.py (workers, bind, timeouts, logging, hooks) served by pronghorn and, when
    it is installed, by Gunicorn: the same access lines."""
    (tmp_path / "gunicorn.conf.py").write_text(GUNICORN_CONF)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        ours = _run_conf(tmp_path, "pronghorn", [sys.executable, "-m", "pronghorn"], servers)
        # %(h)s is empty on a unix socket, as in Gunicorn, X-Forwarded-For or not: REMOTE_ADDR
        # is the socket's peer unless --forwarded-client-address is given.
        assert ours == CONF_EXPECTED
        if os.access(GUNICORN, os.X_OK):
            theirs = _run_conf(tmp_path, "gunicorn", [GUNICORN, *_gunicorn_flags()], servers)
            assert ours == theirs
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(30)


# -- odds and ends -----------------------------------------------------------------------------------------

def test_apps_can_borrow_gunicorns_error_logger(start_server) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP)
    request(address, "/borrow-logger")
    line = server.wait_for_line(r"the app borrowed gunicorn\.error").string
    assert re.fullmatch(r"\[[\d: +-]+\] \[\d+\] \[WARNING\] the app borrowed gunicorn\.error", line)


def test_hup_applies_new_logging_settings_once(tmp_path: Path, start_quiet) -> None:  # type: ignore[no-untyped-def]
    access = tmp_path / "access.log"
    conf = tmp_path / "conf.py"
    conf.write_text(f"accesslog = {str(access)!r}\naccess_log_format = 'first %(U)s'\n")
    server, address = start_quiet("-c", str(conf))
    request(address, "/one")
    wait_lines(access, 1)
    conf.write_text(f"accesslog = {str(access)!r}\naccess_log_format = 'second %(U)s'\n")
    os.kill(server.proc.pid, signal.SIGHUP)

    def second_format() -> bool:
        request(address, "/probe")
        return any(line.startswith("second ") for line in app_lines(access))

    poll(second_format, "the new format")
    request(address, "/two")
    lines = poll(lambda: any(line.endswith(" /two") for line in app_lines(access))
                 and app_lines(access), "the line of /two")
    # Each request once: the reload did not stack a second handler.
    assert sum(1 for line in lines if line.endswith(" /two")) == 1, lines
    assert "second /two" in lines and "first /one" in lines


def test_address_parsing() -> None:
    assert logs.parse_syslog_address("udp://LogHost:1514") == (socket.SOCK_DGRAM, ("loghost", 1514))
    assert logs.parse_syslog_address("tcp://[::1]:601") == (socket.SOCK_STREAM, ("::1", 601))
    assert logs.parse_syslog_address("udp://") == (socket.SOCK_DGRAM, ("localhost", 514))
    assert logs.parse_syslog_address("unix:///dev/log") == (None, "/dev/log")
    assert logs.parse_syslog_address("unix:///dev/log#dgram") == (socket.SOCK_DGRAM, "/dev/log")
    assert logs.parse_statsd_address("statsd.local") == (socket.AF_INET, ("statsd.local", 8125))
    assert logs.parse_statsd_address("[::1]:9125") == (socket.AF_INET6, ("::1", 9125))
    assert logs.parse_statsd_address("unix:///run/statsd.sock") == (socket.AF_UNIX,
                                                                    "/run/statsd.sock")
    assert logs.parse_statsd_address("unix:8125") == (socket.AF_INET, ("unix", 8125))


def test_statsd_over_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "statsd.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(str(path))
        receiver.settimeout(10)
        statsd = logs.Statsd(f"unix://{path}", "", "a:b")
        statsd.request(1500, 204)
        statsd.close()
        got = [receiver.recv(1024) for _ in range(3)]
    assert got == [b"gunicorn.request.duration:1.5|ms|#a:b", b"gunicorn.requests:1|c|@1.0|#a:b",
                   b"gunicorn.request.status.204:1|c|@1.0|#a:b"]


def test_statsd_without_a_server_is_silent() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    statsd = logs.Statsd(f"127.0.0.1:{port}")  # nobody listens: ICMP refusals must not raise
    for _ in range(5):
        statsd.increment("gunicorn.requests", 1)
    statsd.close()


@pytest.mark.parametrize("level", ["warn", "fatal", "notset"])
def test_log_levels_gunicorn_reads_as_info_run_at_info_and_say_so(start_server,  # type: ignore[no-untyped-def]
                                                                     level: str) -> None:
    """Gunicorn maps a level name it does not know (Python's aliases among them) to info; a config
    written for it keeps working here, and the log says what happened once."""
    server, _ = start_server(APP, "--log-level", level)
    assert f"--log-level {level} is not one of Gunicorn's levels" in server.output
    assert "Booting worker with pid" in server.output  # an info line: the log is at info

"""docs/deploying.md, checked with the real tools so the guide cannot drift from pronghorn.

Every block the guide marks with ``<!-- check: NAME -->`` on the line before its fence is read from
the guide itself and then:

- the seed's command line (``seed``) is run with a temporary log file and free ports, against a
  Django project (or, without Django, a stand-in with the same layout: ``proj.wsgi`` in one
  directory, the host's ``settings`` in another, both through PYTHONPATH), and must serve;
- the ``pronghorn systemd-unit`` commands are run, and what they write must equal the units written
  out in the guide; the units then go through ``systemd-analyze verify``;
- the nginx sites go through ``nginx -t`` and then serve: a request goes through nginx to a
  running pronghorn over TCP and over a unix socket made with the guide's umask, and an unknown Host
  gets nothing at all (``return 444``);
- the supervisor section is parsed as supervisor parses it (an ini file) and checked against the
  seed;
- the Dockerfile's exec-form CMD is run with the Dockerfile's ENV as PID 1 of a new PID namespace,
  as a container runs it, and must stop with status 0 on TERM.

The guide's worker class is gevent. Where the gevent worker cannot run here (gevent or pronghorn's
gevent worker missing), the commands run with the sync class instead; everything else is as written.
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Iterator

import pytest

from conftest import (NGINX, ROOT, Server, connect, free_port, nginx_conf, systemd_analyze_verify,
                      wait_ready)
from master_util import children, poll, unshare_works
from wire import Reader, Response

GUIDE = ROOT / "docs" / "deploying.md"
PRONGHORN = Path(sys.executable).with_name("pronghorn")  # the venv's console script
ANALYZE = shutil.which("systemd-analyze")
GEVENT, SYNC = "--worker-class=gevent", "--worker-class=sync"
CLIENT = "127.0.0.2"  # an address no proxy list trusts: what the app sees proves the hop

needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
needs_nginx = pytest.mark.skipif(NGINX is None, reason="needs nginx (apt-get install nginx-light)")

_CHECK = re.compile(r"^<!-- check: ([\w-]+) -->\n```[^\n]*\n(.*?)^```$", re.M | re.S)


def guide_blocks() -> dict[str, str]:
    blocks: dict[str, str] = {}
    for match in _CHECK.finditer(GUIDE.read_text()):
        assert match.group(1) not in blocks, f"two blocks are named {match.group(1)}"
        blocks[match.group(1)] = match.group(2)
    return blocks


BLOCKS = guide_blocks()


def block(name: str) -> str:
    assert name in BLOCKS, f"docs/deploying.md has no block marked <!-- check: {name} -->"
    return BLOCKS[name]


def commands(text: str) -> list[list[str]]:
    """The shell commands of a block, each as its words (continuation lines joined)."""
    joined = re.sub(r"\\\n", " ", text)
    return [shlex.split(line, comments=True) for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def gevent_runs_here() -> bool:
    return (importlib.util.find_spec("gevent") is not None
            and importlib.util.find_spec("pronghorn.workers.ggevent") is not None)


def runnable(args: list[str]) -> list[str]:
    """The guide's server options, with --worker-class=gevent as sync where gevent cannot run."""
    if gevent_runs_here():
        return list(args)
    return [SYNC if arg == GEVENT else arg for arg in args]


class Invocation:
    """``[cd DIR] [runuser ... --] [env] [NAME=VALUE ...] .../bin/pronghorn ARGS``, taken apart."""

    def __init__(self, text: str) -> None:
        self.cwd: str | None = None
        self.env: dict[str, str] = {}
        self.program = ""
        self.args: list[str] = []
        for words in commands(text):
            if words[0] == "cd":
                self.cwd = words[1]
                continue
            if words[0] == "runuser":
                words = words[words.index("--") + 1:]
            if words[0] == "env":
                words = words[1:]
            while "=" in words[0] and not words[0].startswith("-"):
                name, value = words.pop(0).split("=", 1)
                self.env[name] = value
            assert words[0].endswith("/bin/pronghorn"), words
            self.program, self.args = words[0], words[1:]

    def option(self, name: str) -> str | None:
        for arg in self.args:
            if arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
        return None


SEED = Invocation(block("seed"))


def shared_tempdir() -> Path:
    """A directory nginx's ``nobody`` workers can enter (pytest's tmp_path is under a 0700 one)."""
    path = Path(tempfile.mkdtemp(prefix="pronghorn-guide-"))
    os.chmod(path, 0o755)
    return path


# -- the Django project ----------------------------------------------------------------------------

STAND_IN_WSGI = '''\
import importlib
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")


def application(environ, start_response):
    settings = importlib.import_module(os.environ["DJANGO_SETTINGS_MODULE"])
    body = f"{settings.ORIGIN} DEBUG={settings.DEBUG}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


def make_project(root: Path) -> tuple[Path, Path, bool]:
    """(code directory, settings directory, with Django?) laid out as the guide's /opt/proj and
    /etc/opt/proj, with the guide's settings.py."""
    code, etc = root / "opt-proj", root / "etc-opt-proj"
    code.mkdir()
    etc.mkdir()
    django = importlib.util.find_spec("django") is not None
    if django:
        subprocess.run([sys.executable, "-m", "django", "startproject", "proj", str(code)],
                       check=True, capture_output=True, timeout=60)
    else:
        (code / "proj").mkdir()
        (code / "proj" / "__init__.py").write_text("")
        (code / "proj" / "settings.py").write_text(
            'ORIGIN = "the project\'s defaults"\nDEBUG = True\n')
        (code / "proj" / "wsgi.py").write_text(STAND_IN_WSGI)
    (etc / "secret_key").write_text("not-a-secret-but-long-enough-for-a-test\n")
    settings = block("settings").replace("/etc/opt/proj/secret_key", str(etc / "secret_key"))
    (etc / "settings.py").write_text(settings)
    return code, etc, django


# -- 1. the seed, by hand --------------------------------------------------------------------------

def test_every_checked_block_is_there() -> None:
    assert set(BLOCKS) == {
        "settings", "seed", "systemd-unit-command", "service", "systemd-unit-unix",
        "systemd-unit-socket-command", "service-socket-activated", "socket", "socket-dropin",
        "nginx-tcp", "nginx-unix", "nginx-uwsgi", "supervisor", "dockerfile", "asgi-py",
        "consumers-py", "asgi-seed", "systemd-unit-asgi", "nginx-asgi",
        "h2c", "fleet-host", "haproxy", "prometheus"}  # (h2c: run by tests/test_http2.py)


def log_addresses(log: Path, server: Server, count: int) -> list[str]:
    def found() -> list[str] | None:
        assert server.proc.poll() is None, f"the server exited:\n{server.output}\n{log.read_text()}"
        lines = log.read_text().splitlines() if log.exists() else []
        addresses = [m.group(1) for m in map(re.compile(r"Listening at: (\S+) \(").search, lines)
                     if m]
        return addresses if len(addresses) >= count else None

    return poll(found, "the log's Listening at lines", server=server)


def ask(address: str, target: str, host: str) -> Response:
    with connect(address) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        return Reader(sock).read_response()


def test_the_seed_command_line_serves_on_both_binds(tmp_path: Path) -> None:
    assert SEED.cwd == "/opt/proj"
    assert SEED.env == {"PYTHONPATH": "/etc/opt/proj:/opt/proj",
                        "DJANGO_SETTINGS_MODULE": "settings"}
    assert SEED.args[0] == "proj.wsgi:application"
    assert SEED.option("--bind") == "127.0.0.1:8000"
    assert "--bind=[::1]:8000" in SEED.args
    code, etc, django = make_project(tmp_path)
    log = tmp_path / "pronghorn.log"
    args = []
    for arg in runnable(SEED.args):  # the guide's line, with our log file and free ports
        if arg.startswith("--log-file="):
            arg = f"--log-file={log}"
        elif arg.startswith("--bind="):
            arg = re.sub(r":8000$", ":0", arg)
        args.append(arg)
    pythonpath = SEED.env["PYTHONPATH"].replace("/etc/opt/proj", str(etc)).replace(
        "/opt/proj", str(code))
    server = Server(args, env={"PYTHONPATH": pythonpath,
                               "DJANGO_SETTINGS_MODULE": SEED.env["DJANGO_SETTINGS_MODULE"]},
                    cwd=code)
    try:
        addresses = log_addresses(log, server, 2)
        assert addresses[0].startswith("http://127.0.0.1:")
        assert addresses[1].startswith("http://[::1]:")
        for address, host in zip(addresses, ("127.0.0.1", "[::1]")):
            wait_ready(address)
            if django:  # Django's own login page, with the host's settings (DEBUG off, the hosts)
                response = ask(address, "/admin/login/", host)
                assert response.status == 200, response.body[:500]
                assert ask(address, "/admin/login/", "evil.example").status == 400
            else:
                response = ask(address, "/", host)
                assert response.status == 200
                assert response.body == b"the project's defaults DEBUG=False"
        assert server.stop() == 0, server.output
    finally:
        server.stop()
    assert "Shutting down: Master" in log.read_text()


# -- 3. systemd ------------------------------------------------------------------------------------

def run_systemd_unit(invocation: Invocation, cwd: Path, output_dir: Path | None) -> str:
    assert invocation.program == "/opt/proj/venv/bin/pronghorn"
    assert invocation.args[0] == "systemd-unit"
    args = invocation.args[1:]
    if output_dir is not None:
        where = args.index("--output-dir")
        assert args[where + 1] == "/etc/systemd/system"
        args[where + 1] = str(output_dir)
    if importlib.util.find_spec("gevent") is None:  # systemd-unit checks that gevent is there
        args = [SYNC if arg == GEVENT else arg for arg in args]
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "PRONGHORN_CMD_ARGS",
                          "GUNICORN_CMD_ARGS", "PORT", "WEB_CONCURRENCY")}
    env.update(invocation.env)
    result = subprocess.run([str(PRONGHORN), "systemd-unit", *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def as_documented(unit: str, cwd: Path) -> str:
    """A unit written here, with this machine's paths put back to the guide's."""
    if importlib.util.find_spec("gevent") is None:
        unit = unit.replace(f" {SYNC} ", f" {GEVENT} ")
    return (unit.replace(f"ExecStart={PRONGHORN} ", "ExecStart=/opt/proj/venv/bin/pronghorn ")
            .replace(f"WorkingDirectory={cwd}\n", "WorkingDirectory=/opt/proj\n"))


def test_the_systemd_unit_command_runs_the_seed() -> None:
    invocation = Invocation(block("systemd-unit-command"))
    assert invocation.env == SEED.env and invocation.cwd == SEED.cwd
    server_args = invocation.args[invocation.args.index("proj.wsgi:application"):]
    assert server_args == SEED.args  # the unit runs exactly the command line run by hand


@needs_analyze
def test_the_documented_service_unit_is_what_systemd_unit_writes(tmp_path: Path) -> None:
    cwd, out = tmp_path / "proj", tmp_path / "units"
    cwd.mkdir()
    out.mkdir()
    printed = run_systemd_unit(Invocation(block("systemd-unit-command")), cwd, out)
    assert printed == f"{out / 'proj.service'}\n"
    service = out / "proj.service"
    assert as_documented(service.read_text(), cwd) == block("service")
    systemd_analyze_verify(service)


@needs_analyze
def test_the_documented_socket_units_are_what_systemd_unit_writes(tmp_path: Path) -> None:
    cwd, out = tmp_path / "proj", tmp_path / "units"
    cwd.mkdir()
    out.mkdir()
    invocation = Invocation(block("systemd-unit-socket-command"))
    assert "--socket" in invocation.args
    run_systemd_unit(invocation, cwd, out)
    service, sock = out / "proj.service", out / "proj.socket"
    assert as_documented(service.read_text(), cwd) == block("service-socket-activated")
    assert sock.read_text() == block("socket")
    systemd_analyze_verify(sock, service)


@needs_analyze
def test_the_unix_socket_unit_and_the_socket_drop_in_verify(tmp_path: Path) -> None:
    cwd, out = tmp_path / "proj", tmp_path / "units"
    cwd.mkdir()
    out.mkdir()
    invocation = Invocation(block("systemd-unit-unix"))
    unit = run_systemd_unit(invocation, cwd, None)
    lines = unit.splitlines()
    assert "RuntimeDirectory=proj" in lines
    exec_start = next(line for line in lines if line.startswith("ExecStart="))
    assert exec_start.endswith("--bind=unix:/run/proj/pronghorn.sock --umask=007")
    (out / "proj.service").write_text(unit)
    systemd_analyze_verify(out / "proj.service")
    # The same binds as socket activation, with the drop-in's lines in the .socket unit.
    activated = Invocation(block("systemd-unit-unix"))
    app = activated.args.index("proj.wsgi:application")
    activated.args[app:app] = ["--socket", "--output-dir", "/etc/systemd/system"]
    socket_dir = tmp_path / "activated"
    socket_dir.mkdir()
    run_systemd_unit(activated, cwd, socket_dir)
    sock = socket_dir / "proj.socket"
    dropin = block("socket-dropin")
    assert dropin.startswith("[Socket]\n")
    sock.write_text(sock.read_text().replace("[Socket]\n", dropin, 1))
    assert "ListenStream=/run/proj/pronghorn.sock" in sock.read_text().splitlines()
    systemd_analyze_verify(sock, socket_dir / "proj.service")


# -- 4. nginx --------------------------------------------------------------------------------------

def nginx_site(upstream: str, port: int, static: Path, server: str | None = None) -> str:
    """The guide's TCP site, listening on ``port`` instead of 80, with ``upstream`` as its
    upstream block and the static files from ``static``; ``server``: what replaces its
    proj.example.com server block (the ASGI section's)."""
    site = block("nginx-tcp")
    site = re.sub(r"upstream proj_app \{.*?\n\}\n", lambda _: upstream, site, count=1, flags=re.S)
    if server is not None:
        site, count = re.subn(r"^server \{\n    listen 80;\n.*?^\}\n", lambda _: server, site,
                              flags=re.S | re.M)
        assert count == 1, site
    site = site.replace("listen 80", f"listen 127.0.0.1:{port}")
    site = site.replace("listen [::]:80", f"listen [::1]:{port}")
    return site.replace("/var/opt/proj/static/", f"{static}/")


class Nginx:
    def __init__(self, site: str, group: str) -> None:
        assert NGINX is not None
        self.dir = shared_tempdir()
        # As root, nginx's workers run as nobody in ``group``, the one the service's socket belongs
        # to (www-data joining the proj group in the guide).
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(nginx_conf(self.dir, site, group))
        test = subprocess.run([NGINX, "-t", "-c", str(self.conf), "-p", str(self.dir)],
                              capture_output=True, text=True, timeout=60)
        assert test.returncode == 0, test.stderr
        assert "test is successful" in test.stderr
        self.proc = subprocess.Popen([NGINX, "-c", str(self.conf), "-p", str(self.dir)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text()[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def through(host: str, port: int, target: str, hostname: str = "proj.example.com",
            source: str | None = CLIENT) -> bytes:
    """Everything nginx answers to one request (b"" when it closes without a word)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.settimeout(10)
        if source and family == socket.AF_INET:
            sock.bind((source, 0))
        sock.connect((host, port))
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {hostname}\r\nConnection: close\r\n\r\n"
                     .encode())
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1]) if raw.startswith(b"HTTP/1.1 ") else 0


def environ_through(host: str, port: int) -> dict[str, str]:
    raw = through(host, port, "/environ")
    assert status_of(raw) == 200, raw[:500]
    body = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    return {key: entry.get("value") for key, entry in body["environ"].items()}


def wait_through(nginx: Nginx, port: int, expect: int = 200) -> None:
    def answered() -> bool:
        assert nginx.proc.poll() is None, f"nginx exited: {nginx.log()}"
        try:
            return status_of(through("127.0.0.1", port, "/environ")) == expect
        except OSError:
            return False

    poll(answered, f"a {expect} through nginx: {nginx.log()}")


@pytest.fixture
def static_dir() -> Iterator[Path]:
    path = shared_tempdir()
    (path / "hello.txt").write_text("static hello\n")
    os.chmod(path / "hello.txt", 0o644)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@needs_nginx
def test_the_nginx_site_proxies_to_pronghorn_over_tcp(  # type: ignore[no-untyped-def]
        start_server, static_dir: Path) -> None:
    server, (address,) = start_server("behaviours:app")
    wait_ready(address)
    upstream_port = int(address.rsplit(":", 1)[1])
    upstream = re.search(r"upstream proj_app \{.*?\n\}\n", block("nginx-tcp"), re.S)
    assert upstream and "server 127.0.0.1:8000 fail_timeout=0;" in upstream.group(0)
    port = free_port()
    ours = upstream.group(0).replace("127.0.0.1:8000", f"127.0.0.1:{upstream_port}")
    nginx = Nginx(nginx_site(ours, port, static_dir), "nogroup")
    try:
        wait_through(nginx, port)
        # The scheme arrives through X-Forwarded-Proto from a trusted peer (the default
        # --forwarded-allow-ips); REMOTE_ADDR is nginx, as under Gunicorn, and the client is in
        # X-Forwarded-For; the Host is the client's.
        environ = environ_through("127.0.0.1", port)
        assert environ["REMOTE_ADDR"] == "127.0.0.1"
        assert environ["HTTP_X_FORWARDED_FOR"] == CLIENT
        assert environ["wsgi.url_scheme"] == "http"
        assert environ["HTTP_HOST"] == "proj.example.com"
        assert environ_through("::1", port)["HTTP_X_FORWARDED_FOR"] == "::1"  # nginx's IPv6 listener
        # Another Host: the default server closes the connection without an answer.
        assert through("127.0.0.1", port, "/environ", hostname="other.example") == b""
        assert through("::1", port, "/", hostname="203.0.113.9") == b""
        # Static files come from nginx, not from the app.
        static = through("127.0.0.1", port, "/static/hello.txt")
        assert status_of(static) == 200 and static.endswith(b"\r\n\r\nstatic hello\n")
    finally:
        nginx.stop()


@needs_nginx
@pytest.mark.parametrize("umask", ["guide", "077"])
def test_the_nginx_unix_socket_site_and_the_umask_that_lets_nginx_in(  # type: ignore[no-untyped-def]
        start_server, static_dir: Path, umask: str) -> None:
    guide_umask = Invocation(block("systemd-unit-unix")).option("--umask")
    assert guide_umask == "007"
    if umask == "077" and os.geteuid() != 0:
        pytest.skip("only as root does nginx run as another user, whom a mode can lock out")
    where = shared_tempdir()
    try:
        path = where / "pronghorn.sock"
        server, (address,) = start_server(
            "behaviours:app", f"--bind=unix:{path}",
            f"--umask={guide_umask if umask == 'guide' else umask}")
        wait_ready(address)
        assert oct(path.stat().st_mode & 0o777) == ("0o770" if umask == "guide" else "0o700")
        upstream = block("nginx-unix")
        assert "server unix:/run/proj/pronghorn.sock fail_timeout=0;" in upstream
        port = free_port()
        # nginx's workers run in the group of the socket (here root's, since the test is root).
        group = "root" if os.geteuid() == 0 else "nogroup"
        nginx = Nginx(nginx_site(upstream.replace("/run/proj/pronghorn.sock", str(path)), port,
                                 static_dir), group)
        try:
            if umask == "guide":
                wait_through(nginx, port)
                environ = environ_through("127.0.0.1", port)
                # REMOTE_ADDR is the socket's peer (none, on a unix socket), as under Gunicorn.
                assert environ["REMOTE_ADDR"] == ""
                assert environ["HTTP_X_FORWARDED_FOR"] == CLIENT
            else:  # what the guide warns about: nginx cannot open the socket, and says so
                wait_through(nginx, port, expect=502)
                assert "Permission denied" in nginx.log()
        finally:
            nginx.stop()
    finally:
        shutil.rmtree(where, ignore_errors=True)


@needs_nginx
def test_the_uwsgi_pass_site_serves_pronghorn_speaking_uwsgi(  # type: ignore[no-untyped-def]
        tmp_path: Path) -> None:
    site = block("nginx-uwsgi")
    assert "include uwsgi_params;" in site and "server 127.0.0.1:8000 fail_timeout=0;" in site
    upstream_port, port = free_port(), free_port()
    server = Server([f"--bind=127.0.0.1:{upstream_port}", "--protocol=uwsgi", "behaviours:app"])
    site = (site.replace("127.0.0.1:8000", f"127.0.0.1:{upstream_port}")
            .replace("include uwsgi_params;", "include /etc/nginx/uwsgi_params;")
            .replace("listen 80", f"listen 127.0.0.1:{port}")
            .replace("listen [::]:80", f"listen [::1]:{port}"))
    nginx = Nginx(site, "nogroup")
    try:
        server.wait_for_line(r"Booting worker")
        wait_through(nginx, port)
        environ = environ_through("127.0.0.1", port)
        # The request is the client's; REMOTE_ADDR is nginx's, as under Gunicorn --protocol uwsgi.
        assert environ["HTTP_HOST"] == "proj.example.com"
        assert environ["REMOTE_ADDR"] == "127.0.0.1"
        assert environ["wsgi.url_scheme"] == "http"
        assert environ_through("::1", port)["PATH_INFO"] == "/environ"
    finally:
        nginx.stop()
        server.stop()


# -- 5. supervisor ---------------------------------------------------------------------------------

def test_the_supervisor_program_runs_the_seed_and_outwaits_the_graceful_timeout() -> None:
    parser = configparser.RawConfigParser()  # supervisor reads its files with configparser
    parser.read_string(block("supervisor"))
    assert parser.sections() == ["program:proj"]
    program = parser["program:proj"]
    command = shlex.split(program["command"])
    assert command[0] == SEED.program
    assert command[1:] == SEED.args  # the very command line run by hand
    assert not {"-D", "--daemon"} & set(command)
    assert program["directory"] == SEED.cwd
    environment = dict(pair.split("=", 1) for pair in program["environment"].split(","))
    assert {key: value.strip('"') for key, value in environment.items()} == SEED.env
    unit = dict(line.split("=", 1) for line in block("service").splitlines() if "=" in line)
    assert program["user"] == unit["User"]
    assert program["stopsignal"] == "TERM"
    graceful = float(SEED.option("--graceful-timeout") or 30)
    assert int(program["stopwaitsecs"]) > graceful
    assert program["stopasgroup"] == "false" and program["killasgroup"] == "true"
    assert program["autorestart"] == "true"


# -- 6. the container ------------------------------------------------------------------------------

def dockerfile() -> tuple[dict[str, str], list[str]]:
    """The Dockerfile's ENV (as one dict) and its CMD (which must be exec form)."""
    env: dict[str, str] = {}
    cmd: list[str] | None = None
    text = re.sub(r"\\\n", " ", block("dockerfile"))
    for line in text.splitlines():
        instruction, _, rest = line.strip().partition(" ")
        if instruction == "ENV":
            env.update(word.split("=", 1) for word in shlex.split(rest))
        elif instruction == "CMD":
            cmd = json.loads(rest)  # exec form is a JSON array; the shell form would not parse
    assert isinstance(cmd, list) and all(isinstance(word, str) for word in cmd), cmd
    return env, cmd


class ContainerServer(Server):
    """The CMD as PID 1 of a new PID namespace (``unshare``), with only the image's ENV."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, pid1: bool) -> None:
        prefix = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"] if pid1 else []
        base = {"PATH": f"{PRONGHORN.parent}:/usr/local/bin:/usr/bin:/bin"}
        self.proc = subprocess.Popen([*prefix, *argv], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env={**base, **env}, cwd=str(cwd),
                                     text=True)
        self.lines = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()


def test_the_container_cmd_serves_as_pid_1_and_stops_on_term(tmp_path: Path) -> None:
    env, cmd = dockerfile()
    assert cmd[0] == "pronghorn" and cmd[1] == "proj.wsgi:application"
    assert not any(arg.startswith(("--bind", "-b")) for arg in cmd)  # PORT decides
    assert "--access-logfile=-" in cmd
    graceful = float(next(arg.split("=", 1)[1] for arg in cmd
                          if arg.startswith("--graceful-timeout=")))
    assert graceful < 10  # docker stop's grace period
    assert env["PORT"] == "8000" and env["PYTHONPATH"] == "/app"
    workers = int(env["WEB_CONCURRENCY"])
    # The image's /app, with the project in it; the settings are the project's own.
    app = tmp_path / "app"
    code, _, django = make_project(tmp_path)
    code.rename(app)
    port = free_port()
    image_env = {**env, "PORT": str(port), "PYTHONPATH": str(app)}
    pid1 = unshare_works()
    server = ContainerServer([str(PRONGHORN), *runnable(cmd[1:])], image_env, app, pid1)
    try:
        address = f"http://0.0.0.0:{port}"
        master = "1" if pid1 else r"\d+"
        server.wait_for_line(rf"Listening at: {re.escape(address)} \({master}\)")
        wait_ready(f"http://127.0.0.1:{port}")
        response = ask(f"http://127.0.0.1:{port}", "/admin/login/" if django else "/", "localhost")
        assert response.status in ((200, 400) if django else (200,))  # 400: ALLOWED_HOSTS
        server.wait_for_line(r'"GET /(admin/login/)? HTTP/1.1" \d{3}')  # the access log, on stdout
        booted = len([line for line in server.lines if "Booting worker" in line])
        assert booted == workers, server.output
        # docker stop: TERM to PID 1, from outside its namespace.
        target = server.proc.pid
        if pid1:
            (target,) = poll(lambda: children(server.proc.pid), "the master under unshare")
        os.kill(target, signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0, server.output
        assert "Handling signal: term" in server.output
    finally:
        server.stop()


# -- 8. ASGI ---------------------------------------------------------------------------------------

ASGI_SEED = Invocation(block("asgi-seed"))


def as_asgi(args: list[str]) -> list[str]:
    """The seed's words as the ASGI section has them: its application and worker class."""
    return [{"proj.wsgi:application": "proj.asgi:application",
             GEVENT: "--worker-class=asgi"}.get(arg, arg) for arg in args]


def test_the_asgi_command_line_is_the_seeds_with_the_asgi_app_and_class() -> None:
    assert ASGI_SEED.program == SEED.program
    assert ASGI_SEED.env == SEED.env and ASGI_SEED.cwd == SEED.cwd
    assert ASGI_SEED.args == as_asgi(SEED.args)
    unit = Invocation(block("systemd-unit-asgi"))
    assert unit.env == SEED.env and unit.cwd == SEED.cwd
    assert unit.args == as_asgi(Invocation(block("systemd-unit-command")).args)


def ws_echo(url: str, origin: str, host: str | None = None) -> None:
    """Through the guide's Channels consumer: a text and a binary message come back."""
    from websockets.asyncio.client import connect
    from websockets.typing import Origin

    async def talk() -> None:
        extra = {"host": host} if host else {}
        async with connect(url, origin=Origin(origin), **extra) as ws:  # type: ignore[arg-type]
            await ws.send("hello over asgi")
            assert await ws.recv() == "hello over asgi"
            await ws.send(b"\x00\x01")
            assert await ws.recv() == b"\x00\x01"

    import asyncio
    asyncio.run(asyncio.wait_for(talk(), 20))


def ws_status(url: str, origin: str, host: str | None = None) -> int:
    """The status of a WebSocket handshake that is refused."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus
    from websockets.typing import Origin

    async def refused() -> int:
        extra = {"host": host} if host else {}
        try:
            async with connect(url, origin=Origin(origin), **extra):  # type: ignore[arg-type]
                pass
        except InvalidStatus as exc:
            return exc.response.status_code
        raise AssertionError(f"{url} accepted a WebSocket from {origin}")

    import asyncio
    return asyncio.run(asyncio.wait_for(refused(), 20))


def test_the_asgi_command_line_serves_django_and_channels_behind_the_guides_nginx(  # type: ignore[no-untyped-def]
        tmp_path: Path, static_dir: Path) -> None:
    pytest.importorskip("django", reason="needs Django (pip install -e '.[test]')")
    pytest.importorskip("channels", reason="needs Django Channels (pip install -e '.[test]')")
    pytest.importorskip("websockets", reason="needs websockets (pip install -e '.[test]')")
    code, etc, _ = make_project(tmp_path)
    (code / "proj" / "asgi.py").write_text(block("asgi-py"))
    (code / "proj" / "consumers.py").write_text(block("consumers-py"))
    log = tmp_path / "pronghorn.log"
    args = []
    for arg in ASGI_SEED.args:  # the guide's line, with our log file and free ports
        if arg.startswith("--log-file="):
            arg = f"--log-file={log}"
        elif arg.startswith("--bind="):
            arg = re.sub(r":8000$", ":0", arg)
        args.append(arg)
    pythonpath = ASGI_SEED.env["PYTHONPATH"].replace("/etc/opt/proj", str(etc)).replace(
        "/opt/proj", str(code))
    server = Server(args, env={"PYTHONPATH": pythonpath, "DJANGO_SETTINGS_MODULE": "settings"},
                    cwd=code)
    try:
        addresses = log_addresses(log, server, 2)
        assert "Using worker: asgi" in log.read_text()
        for address, host in zip(addresses, ("127.0.0.1", "[::1]")):
            wait_ready(address)
            response = ask(address, "/admin/login/", host)  # Django's own page, through asgi.py
            assert response.status == 200 and b"csrfmiddlewaretoken" in response.body
            assert ask(address, "/admin/login/", "evil.example").status == 400  # ALLOWED_HOSTS
            ws_echo(f"ws://{address.split('://', 1)[1]}/ws/echo/", f"http://{host}")
        if NGINX is None:
            pytest.skip("needs nginx (apt-get install nginx-light) for the rest")
        # The guide's site with the ASGI server block, to the first bind.
        upstream_port = int(addresses[0].rsplit(":", 1)[1])
        upstream = re.search(r"upstream proj_app \{.*?\n\}\n", block("nginx-tcp"), re.S)
        assert upstream is not None
        ours = upstream.group(0).replace("127.0.0.1:8000", f"127.0.0.1:{upstream_port}")
        port = free_port()
        asgi_server = block("nginx-asgi").replace("listen 80;", f"listen 127.0.0.1:{port};")
        asgi_server = asgi_server.replace("listen [::]:80;", f"listen [::1]:{port};")
        nginx = Nginx(nginx_site(ours, port, static_dir, server=asgi_server), "nogroup")
        try:
            def answered() -> bool:
                assert nginx.proc.poll() is None, f"nginx exited: {nginx.log()}"
                try:
                    return status_of(through("127.0.0.1", port, "/admin/login/")) == 200
                except OSError:
                    return False

            poll(answered, f"a 200 through nginx: {nginx.log()}")
            assert status_of(through("::1", port, "/admin/login/")) == 200
            assert through("127.0.0.1", port, "/admin/login/", hostname="other.example") == b""
            # The WebSocket goes through nginx's Upgrade (and the consumer's origin check).
            url = f"ws://proj.example.com:{port}/ws/echo/"
            ws_echo(url, "https://proj.example.com", host="127.0.0.1")
            assert ws_status(url, "https://evil.example", host="127.0.0.1") == 403
            static = through("127.0.0.1", port, "/static/hello.txt")
            assert status_of(static) == 200 and static.endswith(b"static hello\n")
        finally:
            nginx.stop()
        assert server.stop() == 0, server.output
    finally:
        server.stop()
    assert "Shutting down: Master" in log.read_text()


@needs_analyze
def test_the_asgi_systemd_unit_is_the_documented_one_with_the_asgi_words(tmp_path: Path) -> None:
    cwd, out = tmp_path / "proj", tmp_path / "units"
    cwd.mkdir()
    out.mkdir()
    printed = run_systemd_unit(Invocation(block("systemd-unit-asgi")), cwd, out)
    service = out / "proj.service"
    assert printed == f"{service}\n"
    written = as_documented(service.read_text(), cwd)
    assert written == block("service").replace("proj.wsgi:application", "proj.asgi:application") \
        .replace(GEVENT, "--worker-class=asgi")
    systemd_analyze_verify(service)

"""Shared fixtures: start a real `pronghorn` process and find out where it listens.

The server is started with port 0; its "Listening at:" log lines say which ports the kernel gave it.
Readiness is polled (a request that gets an answer), never slept for.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"
_LISTENING = re.compile(r"Listening at: (\S+) \(")


def pytest_report_header() -> str:
    from pronghorn.compiled import describe
    return f"pronghorn: {describe()}"


def pytest_configure(config: pytest.Config) -> None:
    """Refuses to test an extension built from an older source (setup.py builds them into the
    checkout only when asked, PRONGHORN_COMPILE=1): Python would import it instead of the edited
    ``.py``, and the suite would pass or fail on code that is not in the tree."""
    from pronghorn.compiled import stale
    old = stale(str(ROOT / "pronghorn"))
    if old:
        pytest.exit(f"the extensions of pronghorn/{', pronghorn/'.join(old)} are older than their "
                    "sources: rebuild them (PRONGHORN_COMPILE=1 python setup.py build_ext --inplace) "
                    "or delete them (find pronghorn -name '*.so' -delete: pure Python)", returncode=4)


#: The worker classes the shared integration suite runs under (see the worker_class fixture), and
#: "sync-asyncio": the sync worker on asyncio's own loop, as where uvloop is not installed (the
#: loop interface both back ends share is the one the sync and gthread workers use).
WORKER_CLASSES = ("sync", "gthread", "gevent", "sync-asyncio")
_current_worker_class = "sync"
_current_shadow: str | None = None  # a PYTHONPATH entry that hides uvloop from the server


@pytest.fixture(scope="module", params=WORKER_CLASSES)
def worker_class(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Runs a module's tests once per worker class: every Server started meanwhile gets ``-k``.
    Yields the class's name ("sync" for "sync-asyncio": the tests ask what the class does, and
    the loop under it must not change it).

    A module opts in with ``pytestmark = pytest.mark.usefixtures("worker_class")``; its
    module-scoped server fixtures must also take ``worker_class`` as an argument, so that they start
    after it and are started again for each class.
    """
    global _current_worker_class, _current_shadow
    name, _, loop = request.param.partition("-")
    if name == "gevent":
        pytest.importorskip("gevent", reason="the gevent worker needs gevent (the test extra)")
    shadow = None
    if loop == "asyncio":
        shadow = tmp_path_factory.mktemp("no_uvloop")
        (shadow / "uvloop.py").write_text("raise ImportError('plain asyncio for this test')\n")
    previous = _current_worker_class, _current_shadow
    _current_worker_class, _current_shadow = name, (str(shadow) if shadow else None)
    yield name
    _current_worker_class, _current_shadow = previous


def _with_worker_class(args: list[str]) -> list[str]:
    if _current_worker_class == "sync" or any(
            a in ("-k", "--worker-class") or a.startswith("--worker-class=") for a in args):
        return args
    return ["-k", _current_worker_class, *args]


class Server:
    """A running pronghorn: its process, its addresses and everything it logged so far."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None,
                 cwd: str | Path | None = None, pass_fds: tuple[int, ...] = (),
                 umask: int = -1, script: str | Path | None = None,
                 command: list[str] | None = None) -> None:
        """``umask`` (-1: this process's) is the one the server inherits from its launcher;
        ``script``: a Python script that embeds pronghorn, run instead of ``-m pronghorn``;
        ``command`` runs another server with ``args`` instead (Gunicorn, to compare with)."""
        if command is None:
            args = _with_worker_class(args)
        full_env = dict(os.environ)
        full_env["PYTHONPATH"] = os.pathsep.join(
            ([_current_shadow] if _current_shadow else []) + [str(APPS)]
            + ([full_env["PYTHONPATH"]] if full_env.get("PYTHONPATH") else []))
        full_env["PYTHONUNBUFFERED"] = "1"
        if env:
            full_env.update(env)
        self.proc = subprocess.Popen(
            [*(command or [sys.executable, *([str(script)] if script else ["-m", "pronghorn"])]),
             *args], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=full_env, cwd=str(cwd or ROOT), text=True,
            pass_fds=pass_fds, umask=umask,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                seen = len(self.lines)
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(f"server exited before logging {pattern!r}:\n{self.output}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no line matching {pattern!r} in:\n{self.output}")
                self._changed.wait(min(remaining, 0.5))

    def addresses(self, count: int = 1) -> list[str]:
        found: list[str] = []
        deadline = time.monotonic() + 15
        while len(found) < count:
            found = [m.group(1) for m in map(_LISTENING.search, list(self.lines)) if m]
            if len(found) >= count:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not report {count} listeners:\n{self.output}")
            self.wait_for_line(r"Listening at:|Using worker", timeout=15)
            if any("Using worker" in line for line in self.lines):
                found = [m.group(1) for m in map(_LISTENING.search, list(self.lines)) if m]
                break
        return found

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join(5)
        return code


def parse_address(address: str) -> tuple[int, object]:
    """A "Listening at:" address → (socket family, connect address)."""
    if address.startswith("unix:"):
        return socket.AF_UNIX, address[5:]
    match = re.fullmatch(r"https?://\[(.+)\]:(\d+)", address)
    if match:
        return socket.AF_INET6, (match.group(1), int(match.group(2)))
    match = re.fullmatch(r"https?://(.+):(\d+)", address)
    assert match, address
    return socket.AF_INET, (match.group(1), int(match.group(2)))


def connect(address: str, timeout: float = 10.0, rcvbuf: int | None = None) -> socket.socket:
    """A client socket connected to ``address``; ``rcvbuf`` sets its receive buffer before the
    connection is made (after, TCP would already have offered the peer a larger window)."""
    family, where = parse_address(address)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(where)  # type: ignore[arg-type]
    return sock


def free_port() -> int:
    """A TCP port nobody listens on now, on 127.0.0.1, for tools that need a number rather than 0
    (nginx, systemd-socket-activate). Free when this returns, not reserved."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def has_ipv6_loopback() -> bool:
    """Whether ::1 can be bound here (some containers have no IPv6)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def free_port_on_both_loopbacks(attempts: int = 50) -> int:
    """A port free on 127.0.0.1 and on ::1 at once, for a server bound to the same port on both.

    The kernel hands out a free IPv4 port; the same number may be taken on ::1, so the next one is
    tried. The port is free when this returns, not reserved: nothing holds it after."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as v4:
            v4.bind(("127.0.0.1", 0))
            port = v4.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as v6:
                    v6.bind(("::1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no port free on both 127.0.0.1 and ::1")


def wait_ready(address: str, timeout: float = 15.0) -> None:
    """Poll until a worker answers a request on ``address``."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with connect(address, timeout=2) as sock:
                sock.sendall(b"GET /__ready HTTP/1.1\r\nHost: ready\r\nConnection: close\r\n\r\n")
                if sock.recv(12).startswith(b"HTTP/1.1 "):
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.05)  # polling interval while the worker boots, not a wait for an outcome
    raise AssertionError(f"server at {address} never answered: {last}")


def exchange(address: str, raw: bytes, timeout: float = 10.0, half_close: bool = False) -> bytes:
    """Send raw bytes, read until the server closes; return everything it sent."""
    with connect(address, timeout) as sock:
        sock.sendall(raw)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


# -- outside tools ---------------------------------------------------------------------------------

#: nginx, where users have it (Debian's nginx-light puts it in /usr/sbin, which may not be on PATH).
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)

_NGINX_CONF = """
{user}
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
{http}
}}
"""


def nginx_conf(directory: Path, http: str, group: str = "nogroup") -> str:
    """An nginx.conf for an nginx in the foreground whose pid, log and temporary files all stay in
    ``directory``, with ``http`` (upstreams, servers) inside its http block.

    As root, nginx's workers run as nobody, as on a real host; ``group`` is theirs, the one that
    must be let into a unix socket the upstream listens on."""
    user = f"user nobody {group};" if os.geteuid() == 0 else ""
    return _NGINX_CONF.format(user=user, dir=directory, http=http)


def systemd_analyze_verify(*units: Path) -> None:
    """``systemd-analyze verify`` on unit files, which must pass without a word. It needs no running
    systemd (it loads the files offline); callers skip when it is not installed."""
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None
    result = subprocess.run([analyze, "verify", *map(str, units)], capture_output=True, text=True,
                            timeout=60)
    assert (result.returncode, result.stderr, result.stdout) == (0, "", ""), \
        "\n".join(path.read_text() for path in units)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator:
    """start_server(app, *flags, binds=1) → (Server, [addresses]); every server is stopped after."""
    servers: list[Server] = []

    def start(app: str, *flags: str, env: dict[str, str] | None = None, binds: int | None = None,
              ready: bool = True, cwd: str | Path | None = None,
              pass_fds: tuple[int, ...] = (), umask: int = -1) -> tuple[Server, list[str]]:
        args = list(flags)
        if not any(f in ("-b", "--bind") or f.startswith("--bind=") for f in flags):
            args += ["-b", "127.0.0.1:0"]
        count = binds or sum(1 for f in flags if f in ("-b", "--bind") or f.startswith("--bind="))
        server = Server(args + [app], env=env, cwd=cwd, pass_fds=pass_fds, umask=umask)
        servers.append(server)
        addresses = server.addresses(max(count, 1))
        if ready:
            for address in addresses:
                wait_ready(address)
        return server, addresses

    yield start
    for server in servers:
        server.stop()

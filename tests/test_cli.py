"""The command line: finding the app, binding (TCP, IPv6, unix, fd://), workers, signals, boot failures."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import (Server, connect, free_port_on_both_loopbacks, has_ipv6_loopback, parse_address,
                      wait_ready)
from wire import get

APP = "behaviours:app"
SCRIPT = Path(sys.executable).parent / "pronghorn"


needs_ipv6 = pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback")


def write_module(directory: Path, text: str) -> str:
    """A uniquely named app module in ``directory``; returns its name."""
    name = f"mod_{uuid.uuid4().hex[:10]}"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.py").write_text(text)
    return name


APP_SOURCE = '''
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "{n}")])
    return [b"{body}"]
'''


def app_source(body: str) -> str:
    return APP_SOURCE.format(n=len(body), body=body)


class ScriptServer(Server):
    """A server started through the installed `pronghorn` console script rather than `python -m`."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen([str(SCRIPT), *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=env, cwd=str(cwd), text=True)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()


# -- finding the application --------------------------------------------------------------------------

def test_callable_defaults_to_application(start_server) -> None:  # type: ignore[no-untyped-def]
    _, (address,) = start_server("default_callable")
    assert get(address, "/").body == b"default application"


@pytest.mark.parametrize("spec, body", [
    ("factories:create_app()", b"made by a factory."),
    ("factories:create_app('hello')", b"hello."),
    ("factories:create_app('hi', punctuation='!')", b"hi!"),
])
def test_factory_is_called(start_server, spec: str, body: bytes) -> None:  # type: ignore[no-untyped-def]
    _, (address,) = start_server(spec)
    assert get(address, "/").body == body


def test_current_directory_is_on_sys_path(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    name = write_module(tmp_path, app_source("from the cwd"))
    # PYTHONSAFEPATH stops `python -m` from putting the cwd on sys.path itself: pronghorn must.
    _, (address,) = start_server(name, cwd=tmp_path, env={"PYTHONSAFEPATH": "1"})
    assert get(address, "/").body == b"from the cwd"


def test_console_script_serves_from_the_current_directory(tmp_path: Path) -> None:
    name = write_module(tmp_path, app_source("via the console script"))
    server = ScriptServer(["-b", "127.0.0.1:0", f"{name}:application"], cwd=tmp_path)
    try:
        (address,) = server.addresses(1)
        wait_ready(address)
        assert get(address, "/").body == b"via the console script"
    finally:
        code = server.stop()
    assert code == 0, server.output


def test_pythonpath_is_honoured(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    name = write_module(second, app_source("found on PYTHONPATH"))
    _, (address,) = start_server(name, env={"PYTHONPATH": f"{first}{os.pathsep}{second}"},
                                 cwd=tmp_path / "first")
    assert get(address, "/").body == b"found on PYTHONPATH"


# -- boot failures --------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, expected", [
    ("broken_import", "ZeroDivisionError: division by zero"),
    ("no_such_module_for_pronghorn", "ModuleNotFoundError: No module named 'no_such_module_for_pronghorn'"),
    ("echo:no_such_callable", "no_such_callable"),
])
@pytest.mark.parametrize("workers", ["1", "2"])
def test_app_that_cannot_load_stops_the_server_at_once(start_server, spec: str, expected: str,  # type: ignore[no-untyped-def]
                                                       workers: str) -> None:
    server, _ = start_server(spec, "-w", workers, ready=False)
    try:
        code = server.proc.wait(timeout=20)  # a guard: the server must stop by itself
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the server kept running:\n{server.output}") from None
    server.stop()  # collects the rest of the output
    output = server.output
    assert code != 0
    assert expected in output
    if spec == "broken_import":
        assert "Traceback (most recent call last)" in output
        assert "broken_import.py" in output
    assert "Worker failed to boot" in output
    # No fork loop: never more boots than workers asked for.
    assert 1 <= output.count("Booting worker with pid") <= int(workers)


def test_bad_bind_is_a_usage_error() -> None:
    result = subprocess.run([sys.executable, "-m", "pronghorn", "-b", "[::1", APP],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "--bind" in result.stderr


# -- binding --------------------------------------------------------------------------------------------

@needs_ipv6
def test_ipv6_bind(start_server) -> None:  # type: ignore[no-untyped-def]
    _, (address,) = start_server(APP, "-b", "[::1]:0")
    assert address.startswith("http://[::1]:")
    assert parse_address(address)[0] == socket.AF_INET6
    env = get(address, "/environ").json()["environ"]
    assert env["REMOTE_ADDR"]["value"] == "::1"


def test_unix_socket_bind(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "pronghorn.sock"
    server, (address,) = start_server(APP, "-b", f"unix:{path}")
    assert address == f"unix:{path}"
    data = get(address, "/over-unix?x=1").json()
    assert data["path"] == "/over-unix" and data["query"] == "x=1"
    curl = subprocess.run(["curl", "-sS", "--max-time", "20", "--unix-socket", str(path),
                           "http://localhost/curl-unix"], capture_output=True, timeout=30)
    assert curl.returncode == 0, curl.stderr
    assert b'"path": "/curl-unix"' in curl.stdout
    assert server.stop() == 0
    assert not path.exists()  # the master removes the socket file it made


def test_fd_bind(start_server) -> None:  # type: ignore[no-untyped-def]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    try:
        _, (address,) = start_server(APP, "-b", f"fd://{fd}", pass_fds=(fd,))
    finally:
        listener.close()  # the server holds its own copy now
    assert address == f"http://127.0.0.1:{port}"
    assert get(address, "/through-fd").json()["path"] == "/through-fd"


@needs_ipv6
def test_ipv4_and_ipv6_on_the_same_port(start_server) -> None:  # type: ignore[no-untyped-def]
    port = free_port_on_both_loopbacks()
    server, addresses = start_server(APP, f"--bind=127.0.0.1:{port}", f"--bind=[::1]:{port}")
    assert sorted(addresses) == sorted([f"http://127.0.0.1:{port}", f"http://[::1]:{port}"])
    for address in addresses:
        assert get(address, "/both").json()["path"] == "/both"
    for flag, host in (("-4", "127.0.0.1"), ("-6", "[::1]")):
        curl = subprocess.run(["curl", "-sS", "--max-time", "20", "-g", flag,
                               f"http://{host}:{port}/curl{flag}"], capture_output=True, timeout=30)
        assert curl.returncode == 0, curl.stderr
        assert f'"path": "/curl{flag}"'.encode() in curl.stdout


@needs_ipv6
def test_tcp_ipv6_and_unix_binds_serve_at_once(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, addresses = start_server(APP, "-b", "127.0.0.1:0", "-b", "[::1]:0",
                                "-b", f"unix:{tmp_path / 'u.sock'}")
    assert len(addresses) == 3
    for address in addresses:
        assert get(address, "/everywhere").status == 200


# -- workers and signals -----------------------------------------------------------------------------

def _parent_pid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def worker_pids(server: Server, count: int) -> set[int]:
    """The pids of the "Booting worker" lines, once there are ``count`` of them (polled)."""
    booting = re.compile(r"Booting worker with pid: (\d+)")
    deadline = time.monotonic() + 15
    while True:
        pids = {int(m.group(1)) for m in map(booting.search, list(server.lines)) if m}
        if len(pids) >= count or time.monotonic() > deadline:
            return pids
        time.sleep(0.05)  # polling interval while the workers boot


def test_two_workers(start_server) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP, "-w", "2")
    pids = worker_pids(server, 2)
    assert len(pids) == 2, server.output
    for pid in pids:
        assert _parent_pid(pid) == server.proc.pid
    served_by = int(get(address, "/pid").body)
    assert served_by in pids
    assert get(address, "/environ").json()["environ"]["wsgi.multiprocess"]["value"] is True
    assert server.stop() == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_term_and_int_exit_zero(start_server, sig: signal.Signals) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP, "-w", "2", "--graceful-timeout", "60")
    # An idle keep-alive connection must not hold up the stop.
    idle = connect(address)
    idle.sendall(b"GET /idle HTTP/1.1\r\nHost: t\r\n\r\n")
    assert idle.recv(12) == b"HTTP/1.1 200"
    # stop() waits 10 s and then kills (exit -9): a hang fails the test, it is not a timing check.
    assert server.stop(sig, timeout=10) == 0, server.output
    idle.close()
    with pytest.raises(OSError):
        connect(address, timeout=2).close()

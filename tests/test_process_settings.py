"""Gunicorn's process and I/O settings, on real servers: sendfile (--no-sendfile, SENDFILE),
tmp_upload_dir, spew, enable_backlog_metric, initgroups, enable_stdio_inheritance (-R) and
default_proc_name. Each is checked where its effect shows: the file position the app's file was
left at, /proc, the statsd and syslog datagrams, the daemon's output pipe."""

from __future__ import annotations

import grp
import importlib.util
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from conftest import APPS, Server, connect, wait_ready
from master_util import Subreaper, cmdline, poll, read_pid, wait_children
from wire import get, post

APP = "process_app:app"
FILE_SIZE = 300_000  # several sendfile calls and many 8 KiB reads
GUNICORN = os.environ.get("GUNICORN", "/tmp/gvenv/bin/gunicorn")
PEERS = ["pronghorn", pytest.param("gunicorn", marks=pytest.mark.skipif(
    not os.access(GUNICORN, os.X_OK),
    reason=f"no Gunicorn at {GUNICORN} (python3 -m venv /tmp/gvenv && /tmp/gvenv/bin/pip install "
           "gunicorn, or set GUNICORN)"))]


class GunicornServer(Server):
    """Gunicorn run as the reference, read like a Server: its output, its "Listening at:" lines."""

    def __init__(self, args: list[str]) -> None:  # (Server's reader, not its command line)
        env = dict(os.environ, PYTHONPATH=str(APPS), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [GUNICORN, "--no-control-socket", "-b", "127.0.0.1:0", *args], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, env=env, cwd=str(APPS), text=True)
        self.lines = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()


@pytest.fixture
def start_peer(start_server) -> Iterator[Callable[..., tuple[Server, str]]]:  # type: ignore[no-untyped-def]
    """start_peer(peer, *flags) → (server, address): pronghorn or Gunicorn serving APP, ready."""
    peers: list[Server] = []

    def start(peer: str, *flags: str) -> tuple[Server, str]:
        if peer == "pronghorn":
            server, (address,) = start_server(APP, *flags)
            return server, address
        server = GunicornServer([*flags, APP])
        peers.append(server)
        # (With --spew its own source lines mention "Listening at:" too: the log line is wanted.)
        address = server.wait_for_line(r"\[INFO\] Listening at: (http://\S+) \(", 60).group(1)
        wait_ready(address, timeout=60)
        return server, address

    yield start
    for server in peers:
        server.stop()


@pytest.fixture
def served_file(tmp_path: Path) -> Path:
    path = tmp_path / "payload.bin"
    path.write_bytes(bytes(range(256)) * (FILE_SIZE // 256) + b"tail")
    return path


class UDPReceiver:
    """Where the server sends statsd metrics or syslog messages."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[str] = []

    def wait_for(self, predicate: Callable[[str], bool], what: str, timeout: float = 20.0) -> str:
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
                self.received.append(self.sock.recv(65536).decode("utf-8", "replace"))
            except socket.timeout:
                continue


@pytest.fixture
def udp() -> Iterator[UDPReceiver]:
    receiver = UDPReceiver()
    yield receiver
    receiver.sock.close()


# -- sendfile --------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, env, sendfile", [
    ((), {}, True),
    (("--no-sendfile",), {}, False),
    ((), {"SENDFILE": "0"}, False),
    ((), {"SENDFILE": "yes"}, True),
    (("--no-sendfile",), {"SENDFILE": "1"}, False),  # the flag wins over the variable
], ids=["default", "no-sendfile", "SENDFILE=0", "SENDFILE=yes", "flag-over-env"])
def test_sendfile_or_plain_writes(start_server, worker_class: str, served_file: Path,  # type: ignore[no-untyped-def]
                                  flags: tuple[str, ...], env: dict[str, str],
                                  sendfile: bool) -> None:
    """os.sendfile leaves the file's position where it was; plain writes read it to the end. The
    app's file says at close() which it was, and the client gets the same bytes either way."""
    server, (address,) = start_server(APP, *flags, env=env)
    expected = served_file.read_bytes()
    for _ in range(2):  # and again on a kept-alive connection's worker, no state left behind
        response = get(address, f"/file?path={served_file}")
        assert response.status == 200 and response.body == expected
    position = 0 if sendfile else len(expected)
    server.wait_for_line(rf"^file closed at {position}$")
    assert not [line for line in server.lines
                if line.startswith("file closed at ") and line != f"file closed at {position}"]


# -- tmp_upload_dir ----------------------------------------------------------------------------------

def test_large_bodies_spool_to_tmp_upload_dir(start_server, worker_class: str,  # type: ignore[no-untyped-def]
                                              tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    conf = tmp_path / "conf.py"
    conf.write_text(f"tmp_upload_dir = {str(uploads)!r}\n")
    _, (address,) = start_server(APP, "-c", str(conf))
    body = b"x" * (3 * 1024 * 1024)
    size, where = post(address, "/spool", body).body.decode().split(" ", 1)
    assert int(size) == len(body)
    assert where.startswith(f"{uploads}/") and where.endswith("(deleted)"), where
    # A small body stays in memory.
    assert post(address, "/spool", b"small").body.decode() == "5 memory"


def test_without_tmp_upload_dir_bodies_spool_to_the_system_temporary_directory(  # type: ignore[no-untyped-def]
        start_server, tmp_path: Path) -> None:
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    _, (address,) = start_server(APP, env={"TMPDIR": str(system_tmp)})
    _, where = post(address, "/spool", b"y" * (2 * 1024 * 1024)).body.decode().split(" ", 1)
    assert where.startswith(f"{system_tmp}/"), where


# -- spew ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("peer", PEERS)
def test_spew_prints_every_line_the_worker_runs(start_peer, worker_class: str, peer: str) -> None:  # type: ignore[no-untyped-def]
    if peer == "gunicorn" and worker_class != "sync":
        pytest.skip("Gunicorn's spew is compared once, with its sync worker")
    server, address = start_peer(peer, "--spew", "--timeout", "120")
    assert get(address, "/spew-marker").body == b"the spew marker line"
    source = (APPS / "process_app.py").read_text().splitlines()
    lineno = next(number for number, line in enumerate(source, 1) if "the spew marker line\"" in line)
    # Gunicorn's format: MODULE:LINENO: SOURCE
    server.wait_for_line(rf"^process_app:{lineno}:\s+marker = \"the spew marker line\"", timeout=60)
    server.wait_for_line(rf"^{peer}\.[\w.]+:\d+: ", timeout=60)  # the server's own lines too


def test_without_spew_nothing_is_traced(start_server) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP)
    assert get(address, "/spew-marker").status == 200
    assert server.stop() == 0
    assert not [line for line in server.lines if line.startswith("process_app:")], server.output


# -- enable_backlog_metric ---------------------------------------------------------------------------

@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_INFO is Linux's")
@pytest.mark.parametrize("peer", PEERS)
def test_backlog_metric_counts_connections_waiting_to_be_accepted(start_peer, udp: UDPReceiver,  # type: ignore[no-untyped-def]
                                                                 peer: str) -> None:
    server, address = start_peer(peer, "--enable-backlog-metric", "--statsd-host",
                                 f"127.0.0.1:{udp.port}", "--log-level", "debug")
    udp.wait_for(lambda m: m == "gunicorn.backlog:0|h", "saying the backlog is empty")
    (worker,) = wait_children(server, server.proc.pid, 1)
    os.kill(worker, signal.SIGSTOP)  # it accepts nothing now: connections wait in the queue
    clients = []
    try:
        clients = [connect(address) for _ in range(3)]
        udp.wait_for(lambda m: m == "gunicorn.backlog:3|h", "counting 3 waiting connections")
        server.wait_for_line(r"\[DEBUG\] socket backlog: 3$")
    finally:
        os.kill(worker, signal.SIGCONT)
        for client in clients:
            client.close()


def test_backlog_metric_is_off_by_default(start_server, udp: UDPReceiver) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP, "--statsd-host", f"127.0.0.1:{udp.port}")
    get(address, "/")
    udp.wait_for(lambda m: m.startswith("gunicorn.requests:"), "counting the request")
    assert server.stop() == 0
    assert not [m for m in udp.received if "backlog" in m]


def test_backlog_metric_on_unix_sockets_says_it_cannot(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, _ = start_server(APP, "--enable-backlog-metric", "-b", f"unix:{tmp_path / 's.sock'}")
    server.wait_for_line(r"--enable-backlog-metric: no listener can count its pending connections")


# -- initgroups ----------------------------------------------------------------------------------------

def _user_with_supplementary_groups() -> tuple[str, int, int, list[int]]:
    """(name, uid, primary gid, supplementary gids) of a user of this machine who is a member of
    groups besides its primary one."""
    for user in pwd.getpwall():
        if user.pw_uid == 0:
            continue
        extra = sorted(g.gr_gid for g in grp.getgrall()
                       if user.pw_name in g.gr_mem and g.gr_gid != user.pw_gid)
        if extra:
            return user.pw_name, user.pw_uid, user.pw_gid, extra
    pytest.skip("no user here is a member of a group besides its primary one "
                "(usermod -aG GROUP USER would make one)")


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
@pytest.mark.parametrize("initgroups", [False, True])
def test_initgroups_gives_workers_the_users_groups(start_server, initgroups: bool) -> None:  # type: ignore[no-untyped-def]
    name, uid, gid, extra = _user_with_supplementary_groups()
    flags = ["--initgroups"] if initgroups else []
    _, (address,) = start_server("master_app:app", "-u", name, *flags)
    ids = get(address, "/ids").body.decode().split()
    assert ids[:4] == [str(uid), str(gid), str(uid), str(gid)]
    groups = sorted(int(g) for g in ids[4].split(","))
    assert groups == (sorted({gid, *extra}) if initgroups else [gid])
    assert ids[5] == "root-refused"


# -- enable_stdio_inheritance ------------------------------------------------------------------------

def _daemon_on_a_pipe(tmp_path: Path, *flags: str) -> tuple[Server, str, Path]:
    """``pronghorn -D`` with stdout and stderr on a pipe the test reads (the Server's), on a
    socket the test bound; returns (server, address, pidfile)."""
    pidfile = tmp_path / "daemon.pid"
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        fd = listener.fileno()
        address = "http://127.0.0.1:%d" % listener.getsockname()[1]
        server = Server(["-D", *flags, "--pid", str(pidfile), "-b", f"fd://{fd}", APP],
                        cwd=tmp_path, pass_fds=(fd,))
    assert server.proc.wait(timeout=60) == 0, server.output  # the launcher returns at once
    return server, address, pidfile


@pytest.mark.parametrize("inherit", [True, False], ids=["-R", "default"])
def test_a_daemon_keeps_its_stdio_pipe_with_R(tmp_path: Path, inherit: bool) -> None:
    with Subreaper() as reaper:
        server, address, pidfile = _daemon_on_a_pipe(tmp_path, *(["-R"] if inherit else []))
        daemon = poll(lambda: read_pid(pidfile), "the daemon's pidfile")
        reaper.adopt(daemon)
        wait_ready(address)
        assert get(address, "/print").body == b"printed"
        if inherit:  # the error log (stderr) and the app's output reach the launcher's pipe
            server.wait_for_line(r"\[INFO\] Listening at: ")
            server.wait_for_line(r"^app stdout$")
            server.wait_for_line(r"^app stderr$")
        else:  # the pipe was let go: it reaches its end while the daemon serves on
            server._reader.join(30)
            assert not server._reader.is_alive()
            assert not [line for line in server.lines if "app std" in line or "Listening" in line]
        os.kill(daemon, signal.SIGTERM)
        assert reaper.wait(daemon) == 0


# -- default_proc_name ---------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, expected", [
    ((), "shop"),                           # default_proc_name from the config file
    (("-n", "front"), "front"),             # proc_name wins over it
])
def test_default_proc_name_names_the_server_when_proc_name_is_unset(  # type: ignore[no-untyped-def]
        start_server, tmp_path: Path, udp: UDPReceiver, flags: tuple[str, ...],
        expected: str) -> None:
    conf = tmp_path / "conf.py"
    conf.write_text("default_proc_name = 'shop'\n")
    server, _ = start_server(APP, "-c", str(conf), "--log-syslog", "--log-syslog-to",
                             f"udp://127.0.0.1:{udp.port}", *flags)
    # The syslog program name is Gunicorn's gunicorn.PROC_NAME.error.
    udp.wait_for(lambda m: f"gunicorn.{expected}.error: " in m and "Booting worker" in m,
                 f"from gunicorn.{expected}.error")
    if importlib.util.find_spec("setproctitle") is not None:
        assert cmdline(server.proc.pid) == f"pronghorn: master [{expected}]"


def test_without_names_the_application_names_the_server(start_server, udp: UDPReceiver) -> None:  # type: ignore[no-untyped-def]
    start_server(APP, "--log-syslog", "--log-syslog-to", f"udp://127.0.0.1:{udp.port}")
    # As Gunicorn's default_proc_name, the application named on the command line (':' as '.').
    udp.wait_for(lambda m: "gunicorn.process_app.app.error: " in m, "named after the app")


def test_a_gunicorn_config_with_these_settings_runs(start_server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                    served_file: Path) -> None:
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(
        "sendfile = False\nspew = False\ninitgroups = False\nenable_backlog_metric = False\n"
        f"tmp_upload_dir = {str(tmp_path)!r}\nenable_stdio_inheritance = True\n"
        "default_proc_name = 'web'\n")
    server, (address,) = start_server(APP, "-c", str(conf))
    assert get(address, f"/file?path={served_file}").body == served_file.read_bytes()
    server.wait_for_line(rf"^file closed at {served_file.stat().st_size}$")

"""systemd, checked with its own tools and protocols: socket activation by systemd-socket-activate,
sd_notify messages on a real AF_UNIX datagram socket (a path and an abstract @name), and the units of
``pronghorn systemd-unit`` through ``systemd-analyze verify``.

``systemd-analyze verify`` needs no running systemd: it loads the unit files offline, checks every
setting, that ExecStart='s binary is executable and that the units they name exist (a unit in the same
directory counts). So it runs in a container whose PID 1 is not systemd; the tests only need the
``systemd`` package installed (.ci/run does that).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from conftest import APPS, ROOT, Server, free_port, systemd_analyze_verify, wait_ready
from master_util import Subreaper, count_lines, poll, wait_children
from wire import get

from pronghorn.master.systemd import Notifier, activation_sockets, monotonic_usec
from pronghorn.systemd_unit import exec_word, listen_stream, without_binds

PRONGHORN = Path(sys.executable).with_name("pronghorn")  # the venv's console script
SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")
ANALYZE = shutil.which("systemd-analyze")
needs_socket_activate = pytest.mark.skipif(SOCKET_ACTIVATE is None,
                                           reason="systemd-socket-activate is not installed")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


# -- helpers ---------------------------------------------------------------------------------------

def listening(pid: int) -> set[str]:
    """What process ``pid`` listens on, from /proc: "tcp:PORT" and "unix:PATH" entries."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.add(f"tcp:{int(fields[1].rsplit(':', 1)[1], 16)}")
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[3], 16) & 0x10000 and fields[6] in inodes:  # __SO_ACCEPTCON
            found.add(f"unix:{fields[7] if len(fields) > 7 else ''}")
    return found


class ActivatedServer(Server):
    """pronghorn exec'd by ``systemd-socket-activate`` (same pid: it execs), with its output read
    as Server reads it. The program starts at the first connection, as under a .socket unit."""

    def __init__(self, activate: list[str], args: list[str], env: dict[str, str]) -> None:
        # systemd-socket-activate gives the child only LISTEN_* and what -E names.
        setenv = [f"--setenv={key}={value}" for key, value in
                  {"PYTHONPATH": str(APPS), "PYTHONUNBUFFERED": "1", **env}.items()]
        self.proc = subprocess.Popen(
            [str(SOCKET_ACTIVATE), *activate, *setenv, str(PRONGHORN), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(ROOT))
        self.lines = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()


@pytest.fixture
def activated() -> Iterator:
    servers: list[Server] = []

    def start(activate: list[str], *args: str, env: dict[str, str] | None = None) -> Server:
        server = ActivatedServer(activate, list(args), env or {})
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class NotifyListener:
    """The service manager's end of sd_notify: a datagram socket that also learns each sender's
    pid (SO_PASSCRED), as systemd does to tell the main process from the others."""

    def __init__(self, address: str) -> None:
        self.address = address  # NOTIFY_SOCKET's value
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.seen: list[tuple[int, dict[str, str]]] = []

    def receive(self, timeout: float) -> tuple[int, dict[str, str]] | None:
        self.sock.settimeout(timeout)
        try:
            data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except (socket.timeout, BlockingIOError):
            return None
        pid = 0
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", payload[:12])[0]
        fields = dict(line.split("=", 1) for line in data.decode().split("\n") if line)
        self.seen.append((pid, fields))
        return pid, fields

    def pending(self) -> list[dict[str, str]]:
        """Every message already queued, without waiting."""
        found = []
        while (message := self.receive(0.0)) is not None:
            found.append(message[1])
        return found

    def wait_for(self, key: str, server: Server, timeout: float = 30.0) -> tuple[int, dict[str, str]]:
        """The next message that sets ``key`` (messages before it stay in ``seen``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.receive(min(0.5, max(0.01, deadline - time.monotonic())))
            if message is not None and key in message[1]:
                return message
            if message is None and server.proc.poll() is not None:
                break
        raise AssertionError(f"no {key} notification; got {self.seen}\n{server.output}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(params=["path", "abstract"])
def notify(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NotifyListener]:
    if request.param == "path":
        address = str(tmp_path / "notify")
    else:
        address = f"@pronghorn-test-{os.getpid()}-{id(request)}"
    listener = NotifyListener(address)
    yield listener
    listener.close()


def env_of_worker(address: str, name: str) -> str:
    return get(address, f"/env?name={name}").body.decode()


# -- socket activation -----------------------------------------------------------------------------

@needs_socket_activate
def test_serves_the_socket_systemd_passed_and_binds_nothing_else(activated) -> None:  # type: ignore[no-untyped-def]
    port, other = free_port(), free_port()
    # An explicit --bind loses to systemd's socket, and the log says so.
    server = activated(["--listen", f"127.0.0.1:{port}"], "-b", f"127.0.0.1:{other}",
                       "master_app:app")
    address = f"http://127.0.0.1:{port}"
    wait_ready(address, timeout=30)  # the first connection makes systemd-socket-activate exec us
    master = server.proc.pid
    server.wait_for_line(rf"Listening at: {address} \({master}\)")
    server.wait_for_line(r"Sockets from systemd take precedence over --bind 127\.0\.0\.1:")
    assert listening(master) == {f"tcp:{port}"}
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        assert env_of_worker(address, name) == "<unset>"
    assert count_lines(server, "Listening at:") == 1
    assert server.stop() == 0, server.output


@needs_socket_activate
def test_named_sockets_and_a_unix_socket_file_systemd_keeps(activated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    path = tmp_path / "web.sock"
    server = activated(["-l", f"127.0.0.1:{port}", "-l", str(path), "--fdname=web:admin"],
                       "--log-level", "debug", "master_app:app")
    tcp, unix = f"http://127.0.0.1:{port}", f"unix:{path}"
    wait_ready(tcp, timeout=30)
    wait_ready(unix)
    master = server.proc.pid
    server.wait_for_line(r"fd 3 from systemd \(web\)")
    server.wait_for_line(r"fd 4 from systemd \(admin\)")
    assert listening(master) == {f"tcp:{port}", f"unix:{path}"}
    assert env_of_worker(unix, "LISTEN_FDNAMES") == "<unset>"
    assert server.stop() == 0, server.output
    assert path.exists()  # the socket file belongs to systemd's .socket unit, not to us


@needs_socket_activate
def test_usr2_hands_the_systemd_socket_and_the_service_to_a_new_master(  # type: ignore[no-untyped-def]
        activated, tmp_path: Path) -> None:
    port = free_port()
    listener = NotifyListener(str(tmp_path / "notify"))
    address = f"http://127.0.0.1:{port}"
    with Subreaper() as reaper:
        server = activated(["-l", f"127.0.0.1:{port}"], "master_app:app",
                           env={"NOTIFY_SOCKET": listener.address})
        wait_ready(address, timeout=30)
        old = server.proc.pid
        assert listener.wait_for("READY", server)[0] == old
        os.kill(old, signal.SIGUSR2)
        line = server.wait_for_line(rf"Listening at: {re.escape(address)} \((\d+)\)"
                                    rf"(?<!\({old}\))")
        new = int(line.group(1))
        reaper.adopt(new)
        # The new master got the systemd socket through PRONGHORN_FD, not LISTEN_FDS, and bound
        # nothing else (the default --bind 127.0.0.1:8000 stays unbound).
        wait_children(server, new, 1)
        assert listening(new) == {f"tcp:{port}"}
        os.kill(old, signal.SIGTERM)
        # The old master passes the service on instead of saying STOPPING=1.
        pid, fields = listener.wait_for("MAINPID", server)
        assert (pid, fields["MAINPID"]) == (old, str(new))
        assert not any("STOPPING" in f for p, f in listener.seen if p == old)
        assert server.proc.wait(timeout=30) == 0, server.output
        wait_ready(address)
        assert int(get(address, "/ppid").body.split()[1]) == new
        os.kill(new, signal.SIGTERM)
        assert reaper.wait(new) == 0, server.output
        assert listener.wait_for("STOPPING", server)[0] == new
    listener.close()


def test_activation_variables_for_another_process_are_dropped_not_used() -> None:
    environ = {"LISTEN_PID": "1", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "x", "OTHER": "kept"}
    assert activation_sockets(environ, os.getpid()) is None
    assert environ == {"OTHER": "kept"}


# -- notifications ---------------------------------------------------------------------------------

def test_ready_after_the_workers_answer_then_reloading_ready_and_stopping(  # type: ignore[no-untyped-def]
        start_server, notify: NotifyListener, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    server, (address,) = start_server(
        "systemd_app:app", "-w", "2", ready=False,
        env={"NOTIFY_SOCKET": notify.address, "SYSTEMD_APP_GATE": str(gate)})
    master = server.proc.pid
    poll(lambda: count_lines(server, "Booting worker") >= 2, "both workers to boot", server=server)
    # The workers are importing the app and cannot answer: no READY=1 may have been sent.
    assert not any("READY" in fields for fields in notify.pending()), notify.seen
    gate.touch()
    pid, fields = notify.wait_for("READY", server)
    assert pid == master
    assert fields == {"READY": "1", "STATUS": "Serving with 2 workers"}
    # Ready means ready: both workers answer at once.
    for _ in range(4):
        assert get(address, "/pid").status == 200
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        assert env_of_worker(address, name) == "<unset>"

    before = monotonic_usec()
    server.proc.send_signal(signal.SIGHUP)
    pid, fields = notify.wait_for("RELOADING", server)
    after = monotonic_usec()
    assert pid == master and fields["RELOADING"] == "1"
    assert before <= int(fields["MONOTONIC_USEC"]) <= after  # CLOCK_MONOTONIC, in µs
    pid, fields = notify.wait_for("READY", server)
    assert pid == master and fields["STATUS"] == "Serving with 2 workers"
    assert count_lines(server, "Booting worker") == 4  # READY=1 came for the new generation
    assert get(address, "/pid").status == 200

    server.proc.send_signal(signal.SIGTERM)
    pid, fields = notify.wait_for("STOPPING", server)
    assert pid == master and fields["STOPPING"] == "1"
    assert server.stop() == 0, server.output
    assert all(pid == master for pid, _ in notify.seen), notify.seen  # workers never speak


def test_status_follows_the_number_of_workers(  # type: ignore[no-untyped-def]
        start_server, tmp_path: Path) -> None:
    notify = NotifyListener(str(tmp_path / "notify"))
    server, (address,) = start_server("master_app:app", env={"NOTIFY_SOCKET": notify.address})
    assert notify.wait_for("READY", server)[1]["STATUS"] == "Serving with 1 worker"
    server.proc.send_signal(signal.SIGTTIN)
    poll(lambda: notify.receive(0.5) and notify.seen[-1][1].get("STATUS") == "Serving with 2 workers",
         "STATUS with 2 workers", server=server)
    notify.close()


def test_watchdog_is_fed_at_half_its_interval(start_server, notify: NotifyListener) -> None:  # type: ignore[no-untyped-def]
    # 400 ms, shorter than the once-a-second wake-up of the master's loop: it must wake for the
    # watchdog. (How often is not asserted: a loaded machine may be late; systemd is the judge.)
    server, _ = start_server("master_app:app",
                             env={"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "400000"})
    master = server.proc.pid
    for _ in range(5):
        pid, fields = notify.wait_for("WATCHDOG", server)
        assert (pid, fields) == (master, {"WATCHDOG": "1"})
    assert server.stop() == 0, server.output


def test_watchdog_for_another_pid_is_not_ours() -> None:
    import logging

    log = logging.getLogger("test")
    environ = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "400000", "WATCHDOG_PID": "1"}
    notifier = Notifier.from_environ(environ, os.getpid(), log)
    assert notifier is not None and notifier.watchdog_wait() is None
    assert environ == {}
    notifier.close()
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "400000"},
                                     os.getpid(), log)
    assert notifier is not None and notifier.watchdog_interval == 0.2
    assert notifier.environment(42) == {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "400000",
                                        "WATCHDOG_PID": "42"}
    notifier.close()


# -- pronghorn systemd-unit ------------------------------------------------------------------------

def run_unit(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {key: value for key, value in os.environ.items()
                if key not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")}
    full_env.update(env or {})
    return subprocess.run([str(PRONGHORN), "systemd-unit", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=60)


@needs_analyze
def test_service_unit_for_the_command_line_verifies(tmp_path: Path) -> None:
    user = pwd.getpwuid(os.getuid()).pw_name
    result = run_unit("--name", "mysite", "--user", user, "--group", "root", "--output-dir",
                      str(tmp_path), "-w", "3", "--graceful-timeout", "20", "-b", "127.0.0.1:8000",
                      "-b", "unix:/run/mysite/web.sock", "--env", "GREETING=hello world $HOME 100%",
                      "mysite.wsgi:application", cwd=tmp_path,
                      env={"PYTHONPATH": "/srv/mysite", "DJANGO_SETTINGS_MODULE": "mysite.settings"})
    assert result.returncode == 0, result.stderr
    service = tmp_path / "mysite.service"
    assert result.stdout == f"{service}\n" and result.stderr == ""
    lines = service.read_text().splitlines()
    for expected in ("[Unit]", "After=network.target", "[Service]", "Type=notify", f"User={user}",
                     "Group=root", "Environment=PYTHONPATH=/srv/mysite",
                     "Environment=DJANGO_SETTINGS_MODULE=mysite.settings",
                     f"WorkingDirectory={tmp_path}", "RuntimeDirectory=mysite",
                     "ExecReload=/bin/kill -s HUP $MAINPID", "KillMode=mixed",
                     "TimeoutStopSec=25", "Restart=on-failure", "[Install]",
                     "WantedBy=multi-user.target"):
        assert expected in lines
    assert f"ExecStart={PRONGHORN} -w 3 --graceful-timeout 20 -b 127.0.0.1:8000 -b " \
           f'unix:/run/mysite/web.sock --env "GREETING=hello world $$HOME 100%%" ' \
           "mysite.wsgi:application" in lines
    systemd_analyze_verify(service)


@needs_analyze
def test_socket_unit_matches_the_binds_and_verifies(tmp_path: Path) -> None:
    result = run_unit("--socket", "--name", "web", "--output-dir", str(tmp_path), "-w", "2",
                      "-b", "0.0.0.0:8000", "--bind=[::]:8000", "-b", "unix:run/web.sock",
                      "master_app:app", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    service, sock = tmp_path / "web.service", tmp_path / "web.socket"
    assert result.stdout.split() == [str(service), str(sock)]
    service_lines = service.read_text().splitlines()
    assert "Requires=web.socket" in service_lines
    assert f"ExecStart={PRONGHORN} -w 2 master_app:app" in service_lines  # systemd binds
    socket_lines = sock.read_text().splitlines()
    assert [line for line in socket_lines if line.startswith("ListenStream=")] == [
        "ListenStream=0.0.0.0:8000", "ListenStream=[::]:8000",
        f"ListenStream={tmp_path}/run/web.sock"]
    assert "BindIPv6Only=ipv6-only" in socket_lines
    assert "WantedBy=sockets.target" in socket_lines
    assert "SocketMode=0777" in socket_lines  # the default --umask, 0, as pronghorn's own socket
    systemd_analyze_verify(sock, service)


@needs_analyze
def test_a_unix_socket_unit_takes_the_umask_user_and_group(tmp_path: Path) -> None:
    """systemd creates the socket file, so what --umask/--user/--group would do must be said in
    the unit: else it is 0666, open to every local user."""
    user = pwd.getpwuid(os.getuid()).pw_name
    result = run_unit("--socket", "--name", "web", "--user", user, "--group", "root",
                      "--output-dir", str(tmp_path), "--umask", "007", "-b", "unix:run/web.sock",
                      "master_app:app", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    socket_lines = (tmp_path / "web.socket").read_text().splitlines()
    assert "SocketMode=0770" in socket_lines
    assert f"SocketUser={user}" in socket_lines and "SocketGroup=root" in socket_lines
    systemd_analyze_verify(tmp_path / "web.socket", tmp_path / "web.service")


def test_printed_units_and_errors(tmp_path: Path) -> None:
    result = run_unit("--socket", "master_app:app", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# pronghorn.service")
    assert "\n# pronghorn.socket" in result.stdout
    assert "ListenStream=127.0.0.1:8000" in result.stdout  # the default bind
    typo = run_unit("--wokers", "2", "master_app:app", cwd=tmp_path)
    assert typo.returncode == 2
    assert "unrecognized argument --wokers; did you mean --workers?" in typo.stderr
    named = run_unit("--socket", "-b", "localhost:8000", "master_app:app", cwd=tmp_path)
    assert named.returncode == 2 and "not a host name" in named.stderr
    daemon = run_unit("-D", "master_app:app", cwd=tmp_path)
    assert daemon.returncode == 2 and "foreground" in daemon.stderr


def test_exec_start_words_survive_systemd_unquoting() -> None:
    assert exec_word("plain:app") == "plain:app"
    assert exec_word("a b") == '"a b"'
    assert exec_word('say "hi"\\') == '"say \\"hi\\"\\\\"'
    assert exec_word("$HOME%") == "$$HOME%%"
    assert exec_word(";") == "\\;"
    assert exec_word("tab\there") == '"tab\\there"'
    assert without_binds(["-b", "x", "--bind=y", "-bz", "--bind", "w", "-w", "2", "app"]) == \
        ["-w", "2", "app"]
    assert listen_stream("[::1]:80", "/") == "[::1]:80"
    assert listen_stream("unix:a.sock", "/srv") == "/srv/a.sock"
    with pytest.raises(ValueError):
        listen_stream("fd://3", "/")


def test_an_abstract_socket_from_systemd_is_described_by_its_name() -> None:
    from pronghorn.master.listeners import describe

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(f"\0pronghorn-describe-{os.getpid()}")
        assert describe(sock) == f"unix:@pronghorn-describe-{os.getpid()}"


def test_shutdown_delay_says_not_ready_then_stopping(  # type: ignore[no-untyped-def]
        start_server, tmp_path: Path) -> None:
    """--shutdown-delay: TERM first sends STATUS= (not ready, still serving) and nothing else
    until the delay is over; then STOPPING=1 (issue 19)."""
    notify = NotifyListener(str(tmp_path / "notify"))
    server, (address,) = start_server("master_app:app", "--shutdown-delay", "1",
                                      env={"NOTIFY_SOCKET": notify.address})
    notify.wait_for("READY", server)
    server.proc.send_signal(signal.SIGTERM)
    _, fields = notify.wait_for("STATUS", server)
    assert fields == {"STATUS": "Shutting down in 1 s: not ready, still serving"}, notify.seen
    _, fields = notify.wait_for("STOPPING", server)
    assert fields["STOPPING"] == "1"
    assert server.stop() == 0, server.output
    notify.close()


@needs_analyze
@pytest.mark.parametrize("worker", [["-k", "asgi", "--asgi-lifespan", "on", "--root-path", "/api"],
                                    ["-k", "uvicorn.workers.UvicornWorker"]])
def test_an_asgi_unit_runs_its_options_unchanged_and_verifies(tmp_path: Path,
                                                              worker: list[str]) -> None:
    """-k asgi (and the uvicorn worker's name a unit written for Gunicorn has) go into ExecStart
    as given; the ASGI options are checked as the server checks them."""
    result = run_unit("--name", "mysite", "--output-dir", str(tmp_path), *worker,
                      "-b", "127.0.0.1:8000", "mysite.asgi:application", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    service = tmp_path / "mysite.service"
    assert f"ExecStart={PRONGHORN} {' '.join(worker)} -b 127.0.0.1:8000 mysite.asgi:application" \
        in service.read_text().splitlines()
    systemd_analyze_verify(service)
    wrong = run_unit("-k", "asgi", "--asgi-lifespan", "sometimes", "mysite.asgi:application",
                     cwd=tmp_path)
    assert wrong.returncode == 2 and "--asgi-lifespan" in wrong.stderr


def test_an_asgi_service_is_ready_only_after_its_lifespan_startup(  # type: ignore[no-untyped-def]
        start_server, notify: NotifyListener, tmp_path: Path) -> None:
    """Type=notify under -k asgi: READY=1 waits for the app's lifespan startup (the worker accepts
    only after it), then HUP and TERM as for WSGI."""
    gate = tmp_path / "gate"
    server, (address,) = start_server(
        "asgi_deploy_app:gated", "-k", "asgi", ready=False,
        env={"NOTIFY_SOCKET": notify.address, "ASGI_GATE": str(gate)})
    master = server.proc.pid
    poll(lambda: count_lines(server, "Booting worker") >= 1, "the worker to boot", server=server)
    assert not any("READY" in fields for fields in notify.pending()), notify.seen
    gate.touch()
    pid, fields = notify.wait_for("READY", server)
    assert (pid, fields) == (master, {"READY": "1", "STATUS": "Serving with 1 worker"})
    assert get(address, "/").status == 200  # ready means ready
    server.proc.send_signal(signal.SIGHUP)
    assert notify.wait_for("RELOADING", server)[0] == master
    assert notify.wait_for("READY", server)[0] == master
    assert get(address, "/").status == 200
    server.proc.send_signal(signal.SIGTERM)
    assert notify.wait_for("STOPPING", server)[0] == master
    assert server.stop() == 0, server.output

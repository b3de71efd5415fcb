"""The control socket (--control-socket), driven by Gunicorn 27's own ``gunicornc`` and by
``pronghorn ctl`` against a real pronghorn: show, worker add/remove/kill, reload, reopen, shutdown;
its file's mode; and that nothing is opened without the flag."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import ROOT, Server, wait_ready
from master_util import children, poll, quiet_server, wait_children, wait_gone
from wire import get

APP = "master_app:app"
GUNICORNC = os.environ.get("GUNICORNC", "/tmp/gvenv/bin/gunicornc")
_NO_GUNICORNC = (f"no gunicornc at {GUNICORNC} (python3 -m venv /tmp/gvenv && "
                 "/tmp/gvenv/bin/pip install gunicorn gevent, or set GUNICORNC)")

Client = Callable[[Path, str], Any]


def gunicornc(path: Path, command: str) -> Any:
    """Gunicorn's client, unchanged: its -j output is the reply's data."""
    done = subprocess.run([GUNICORNC, "-s", str(path), "-j", "-c", command],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return json.loads(done.stdout)


def pronghorn_ctl(path: Path, command: str) -> Any:
    done = subprocess.run([sys.executable, "-m", "pronghorn", "ctl", "-s", str(path), "-j",
                           *command.split()], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return json.loads(done.stdout)


@pytest.fixture(params=["gunicornc", "pronghorn-ctl"])
def client(request: pytest.FixtureRequest) -> Client:
    if request.param == "gunicornc":
        if not os.access(GUNICORNC, os.X_OK):
            pytest.skip(_NO_GUNICORNC)
        return gunicornc
    return pronghorn_ctl


def started(start_server, tmp_path: Path, *flags: str) -> tuple[Server, str, Path]:  # type: ignore[no-untyped-def]
    path = tmp_path / "app.ctl"
    server, (address,) = start_server(APP, "--control-socket", str(path), *flags)
    server.wait_for_line(r"Control socket listening at")
    return server, address, path


def test_show_workers_stats_listeners_config_all_and_help(start_server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                          client: Client) -> None:
    server, address, path = started(start_server, tmp_path, "-w", "2")
    master = server.proc.pid
    pids = wait_children(server, master, 2)
    shown = poll(lambda: (r := client(path, "show workers"))["count"] == 2
                 and all(w["booted"] for w in r["workers"]) and r, "two booted workers")
    assert {w["pid"] for w in shown["workers"]} == pids
    assert [w["age"] for w in shown["workers"]] == sorted(w["age"] for w in shown["workers"])
    stats = client(path, "show stats")
    assert stats["pid"] == master
    assert stats["workers_current"] == stats["workers_target"] == 2
    (listener,) = client(path, "show listeners")["listeners"]
    assert listener["address"] == address and listener["type"] == "tcp"
    config = client(path, "show config")
    assert config["workers"] == 2 and config["control_socket"] == str(path)
    everything = client(path, "show all")
    assert everything["arbiter"]["pid"] == master and everything["web_worker_count"] == 2
    assert "worker add [N]" in client(path, "help")["commands"]
    assert server.stop() == 0, server.output


def test_worker_add_then_remove_changes_the_worker_count(start_server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                         client: Client) -> None:
    server, _, path = started(start_server, tmp_path, "-w", "1")
    master = server.proc.pid
    wait_children(server, master, 1)
    assert client(path, "worker add 2") == {"added": 2, "previous": 1, "total": 3}
    wait_children(server, master, 3, "three workers after worker add 2")
    assert client(path, "worker remove") == {"removed": 1, "previous": 3, "total": 2}
    wait_children(server, master, 2, "two workers after worker remove")
    # Never below one worker, as gunicornc's server says.
    assert client(path, "worker remove 5") == {"removed": 1, "previous": 2, "total": 1}
    wait_children(server, master, 1, "one worker left")
    assert server.stop() == 0, server.output


def test_worker_kill_replaces_that_worker(start_server, tmp_path: Path, client: Client) -> None:  # type: ignore[no-untyped-def]
    server, address, path = started(start_server, tmp_path, "-w", "1")
    master = server.proc.pid
    (old,) = wait_children(server, master, 1)
    assert client(path, f"worker kill {old}") == {"success": True, "killed": old}
    wait_gone(old, server)
    (new,) = wait_children(server, master, 1)
    assert new != old
    wait_ready(address)
    assert "exited with code" not in server.output and "was sent" not in server.output
    assert client(path, "worker kill 1") == {"success": False, "error": "Worker 1 not found"}
    assert server.stop() == 0, server.output


def test_reload_starts_new_workers(start_server, tmp_path: Path, client: Client) -> None:  # type: ignore[no-untyped-def]
    server, address, path = started(start_server, tmp_path, "-w", "2")
    master = server.proc.pid
    old = wait_children(server, master, 2)
    assert client(path, "reload") == {"status": "reloading"}
    poll(lambda: (now := children(master)) and len(now) == 2 and not now & old,
         "two new workers after reload", server=server)
    assert int(get(address, "/pid").body) not in old
    assert client(path, "show stats")["reloads"] == 1
    assert server.stop() == 0, server.output


def test_reopen_reopens_the_log_files(tmp_path: Path, client: Client) -> None:
    log, rotated, path = tmp_path / "error.log", tmp_path / "error.log.1", tmp_path / "app.ctl"
    with quiet_server("--log-file", str(log), "--control-socket", str(path)) as (server, _):
        poll(lambda: "Control socket listening" in log.read_text(), "the control socket's line")
        log.rename(rotated)
        assert client(path, "reopen") == {"status": "reopening"}
        poll(log.exists, "a new error log file", server=server)
        client(path, "worker add")  # logged by the master, after the reopen
        poll(lambda: "Control socket: worker add" in log.read_text(), "a master line in the new log")
        assert "Handling signal: usr1" in rotated.read_text()


def test_shutdown_graceful_exits_0_and_removes_the_socket(start_server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                          client: Client) -> None:
    server, _, path = started(start_server, tmp_path, "-w", "2")
    assert client(path, "shutdown graceful") == {"status": "shutting_down", "mode": "graceful"}
    assert server.proc.wait(60) == 0, server.output
    assert not path.exists()


def test_shutdown_quick(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, _, path = started(start_server, tmp_path)
    assert pronghorn_ctl(path, "shutdown quick") == {"status": "shutting_down", "mode": "quick"}
    assert server.proc.wait(60) == 0, server.output
    server.wait_for_line(r"Handling signal: int")


def test_the_socket_is_owner_only_under_umask_022(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "umask.ctl"
    server, _ = start_server(APP, "--control-socket", str(path), umask=0o022)
    server.wait_for_line(r"Control socket listening at")
    info = os.stat(path)
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    wider = tmp_path / "group.ctl"
    server, _ = start_server(APP, "--control-socket", str(wider), "--control-socket-mode", "0660",
                             umask=0o022)
    server.wait_for_line(r"Control socket listening at")
    assert stat.S_IMODE(os.stat(wider).st_mode) == 0o660


def _unix_sockets_of(pid: int) -> list[str]:
    """The paths of the bound unix sockets ``pid`` holds (from /proc/net/unix by inode)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    paths = []
    for line in Path(f"/proc/{pid}/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[6] in inodes:
            paths.append(fields[7])
    return paths


@pytest.mark.parametrize("flags", [[], ["--no-control-socket"]])
def test_no_socket_without_control_socket(start_server, tmp_path: Path, flags: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Gunicorn 27 would make $XDG_RUNTIME_DIR/gunicorn.ctl or ~/.gunicorn/gunicorn.ctl: we make
    nothing (and --no-control-socket wins over --control-socket)."""
    runtime = tmp_path / "run"
    runtime.mkdir()
    given = tmp_path / "given.ctl"
    extra = ["--control-socket", str(given)] if flags else []
    server, _ = start_server(APP, *flags, *extra,
                             env={"HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(runtime)})
    master = server.proc.pid
    wait_children(server, master, 1)
    assert _unix_sockets_of(master) == []
    assert list(runtime.iterdir()) == [] and not (tmp_path / ".gunicorn").exists()
    assert not given.exists()
    assert "Control socket" not in server.output
    assert server.stop() == 0


def test_a_stalled_client_does_not_block_the_master(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Half a message, a client that never reads, garbage: the master's loop serves on."""
    server, address, path = started(start_server, tmp_path, "-w", "1")
    master = server.proc.pid
    half = socket.socket(socket.AF_UNIX)
    half.connect(str(path))
    half.sendall(struct.pack(">I", 100) + b'{"id": 1')
    garbage = socket.socket(socket.AF_UNIX)
    garbage.connect(str(path))
    garbage.sendall(struct.pack(">I", 2 ** 31) + b"x" * 10)
    try:
        assert pronghorn_ctl(path, "worker add")["total"] == 2
        wait_children(server, master, 2, "a worker added while the others wait")
        wait_ready(address)
        garbage.settimeout(30)
        assert garbage.recv(1) == b""  # a frame past the limit: dropped
    finally:
        half.close()
        garbage.close()
    assert server.stop() == 0, server.output


def test_errors_are_replies(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, _, path = started(start_server, tmp_path)
    done = subprocess.run([sys.executable, "-m", "pronghorn", "ctl", "-s", str(path), "frobnicate"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1
    assert "Unknown command: frobnicate" in done.stderr
    done = subprocess.run([sys.executable, "-m", "pronghorn", "ctl", "-s", str(tmp_path / "none"),
                           "help"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1 and "cannot talk to" in done.stderr


def test_after_usr2_the_socket_belongs_to_the_new_master(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The new master binds the path afresh; the old one, stopping, leaves it alone."""
    from master_util import Subreaper, read_pid

    pidfile = tmp_path / "app.pid"
    with Subreaper() as reaper:
        server, _, path = started(start_server, tmp_path, "--pid", str(pidfile))
        old = server.proc.pid
        assert pronghorn_ctl(path, "show stats")["pid"] == old
        os.kill(old, signal.SIGUSR2)
        new = poll(lambda: (lambda pid: pid if pid and pid != old else None)(read_pid(pidfile)),
                   "the new master's pid in the pidfile", server=server)
        reaper.adopt(new)
        server.wait_for_line(rf"\[{new}\] \[INFO\] Control socket listening at")
        assert pronghorn_ctl(path, "show stats")["pid"] == new
        os.kill(old, signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0, server.output
        assert pronghorn_ctl(path, "show stats")["pid"] == new
        assert pronghorn_ctl(path, "shutdown") == {"status": "shutting_down", "mode": "graceful"}
        assert reaper.wait(new) == 0, server.output
        assert not path.exists()


def test_worker_remove_after_winch_adds_none(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """WINCH leaves the master with no workers: "worker remove" does not bring one back."""
    server, _, path = started(start_server, tmp_path, "-w", "2")
    master = server.proc.pid
    wait_children(server, master, 2)
    os.kill(master, signal.SIGWINCH)
    wait_children(server, master, 0, "no workers after WINCH")
    assert pronghorn_ctl(path, "worker remove") == {"removed": 0, "previous": 0, "total": 0}
    assert pronghorn_ctl(path, "worker add") == {"added": 1, "previous": 0, "total": 1}
    wait_children(server, master, 1, "one worker after worker add")
    assert server.stop() == 0, server.output

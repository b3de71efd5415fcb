"""USR2: a new master from the same command line on the same listening sockets, while a client keeps
asking; the pidfile moves to PIDFILE.oldbin; TERM on the old master leaves the new one serving.

The new master is a child of the old one, not of the test: the test becomes a child subreaper
(Subreaper) so that, once the old master exits, the new one is re-parented to the test, which can then
read its exit status."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

from conftest import APPS, Server, wait_ready
from master_util import (LoadClient, Subreaper, alive, children, count_lines, poll, read_pid,
                         status_field, wait_children, wait_gone)
from wire import get

APP = "master_app:app"


def _new_master(pidfile: Path, old: int, server: Server) -> int:
    return poll(lambda: (lambda pid: pid if pid and pid != old else None)(read_pid(pidfile)),
                "the new master's pid in the pidfile", server=server)


def test_usr2_hands_the_sockets_to_a_new_master_without_a_refused_connection(  # type: ignore[no-untyped-def]
        start_server, tmp_path: Path) -> None:
    pidfile = tmp_path / "app.pid"
    oldbin = tmp_path / "app.pid.oldbin"
    unix_path = tmp_path / "app.sock"
    with Subreaper() as reaper:
        server, (tcp, unix) = start_server(APP, "-w", "2", "--pid", str(pidfile),
                                           "-b", "127.0.0.1:0", "-b", f"unix:{unix_path}")
        old = server.proc.pid
        assert read_pid(pidfile) == old
        old_workers = wait_children(server, old, 2)
        # A new connection per request: a refused connection during the switch would show.
        with LoadClient(tcp, 6, keepalive=False) as tcp_load, \
                LoadClient(unix, 2, keepalive=False) as unix_load, \
                LoadClient(tcp, 4, keepalive=True) as kept_load:
            poll(lambda: tcp_load.ok > 20 and unix_load.ok > 5 and kept_load.ok > 20,
                 "the clients to get going", server=server)
            os.kill(old, signal.SIGUSR2)
            new = _new_master(pidfile, old, server)
            reaper.adopt(new)
            assert read_pid(oldbin) == old
            # The new master reuses the sockets: same addresses, no "Cannot listen".
            server.wait_for_line(rf"Listening at: {tcp} \({new}\)")
            server.wait_for_line(rf"Listening at: unix:{unix_path} \({new}\)")
            new_workers = wait_children(server, new, 2)
            assert children(old) == old_workers | {new}
            # Both generations accept on the shared sockets until the operator chooses.
            poll(lambda: set(tcp_load.pids) & new_workers, "a request served by the new master",
                 server=server)
            os.kill(old, signal.SIGTERM)
            assert server.proc.wait(timeout=30) == 0, server.output
            for pid in old_workers:
                wait_gone(pid, server)
            assert not oldbin.exists()
            assert read_pid(pidfile) == new
            assert unix_path.exists()  # the old master left the socket file to the new one
            served = tcp_load.ok, unix_load.ok, kept_load.ok
            poll(lambda: tcp_load.ok > served[0] + 20 and unix_load.ok > served[1] + 5 and
                 kept_load.ok > served[2] + 20, "requests after the old master left",
                 server=server)
        for load in (tcp_load, unix_load, kept_load):
            assert load.failed == 0, load.report()
        for address in (tcp, unix):
            worker, parent = map(int, get(address, "/ppid").body.split())
            assert parent == new and worker in new_workers
        os.kill(new, signal.SIGTERM)
        assert reaper.wait(new) == 0, server.output
        assert not pidfile.exists()
        assert not unix_path.exists()
        assert count_lines(server, rf"\[{new}\] \[INFO\] Shutting down: Master") == 1


def test_a_new_master_that_cannot_start_leaves_the_old_one_in_charge(  # type: ignore[no-untyped-def]
        start_server, tmp_path: Path) -> None:
    value = tmp_path / "value"
    value.write_text("v1")
    pidfile = tmp_path / "app.pid"
    server, (address,) = start_server(APP, "--preload", "--pid", str(pidfile),
                                      env={"MASTER_APP_VALUE_FILE": str(value)})
    old = server.proc.pid
    (worker,) = wait_children(server, old, 1)
    value.unlink()  # the new master's --preload import fails
    os.kill(old, signal.SIGUSR2)
    server.wait_for_line(r"Started a new master \(pid (\d+)\)")
    server.wait_for_line(r"The new master \(pid \d+\) exited with code 3; this master carries on")
    poll(lambda: read_pid(pidfile) == old, "the pidfile back in place", server=server)
    assert not (tmp_path / "app.pid.oldbin").exists()
    assert get(address, "/value").body == b"v1"
    assert children(old) == {worker}
    # And a later USR2 can try again.
    value.write_text("v2")
    with Subreaper() as reaper:
        os.kill(old, signal.SIGUSR2)
        new = _new_master(pidfile, old, server)
        reaper.adopt(new)
        wait_children(server, new, 1)
        os.kill(old, signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0
        wait_gone(worker, server)
        assert get(address, "/value").body == b"v2"
        os.kill(new, signal.SIGTERM)
        assert reaper.wait(new) == 0, server.output


def test_usr2_ignored_while_a_new_master_runs(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pidfile = tmp_path / "app.pid"
    with Subreaper() as reaper:
        server, (address,) = start_server(APP, "--pid", str(pidfile))
        old = server.proc.pid
        os.kill(old, signal.SIGUSR2)
        new = _new_master(pidfile, old, server)
        reaper.adopt(new)
        wait_children(server, new, 1)
        os.kill(old, signal.SIGUSR2)
        server.wait_for_line(rf"USR2 ignored: a new master \(pid {new}\) is already running")
        assert read_pid(tmp_path / "app.pid.oldbin") == old
        assert read_pid(pidfile) == new
        assert len(children(old)) == 2  # its worker and the one new master
        # TERM on the new master: the old one carries on and takes its pidfile back.
        os.kill(new, signal.SIGTERM)
        server.wait_for_line(rf"The new master \(pid {new}\) exited with code 0")
        poll(lambda: read_pid(pidfile) == old, "the pidfile back with the old master",
             server=server)
        assert get(address, "/pid").status == 200
        assert server.stop() == 0


def test_usr2_with_a_relative_chdir(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The new master runs the same command line from the directory the first one started in, so
    relative paths (--chdir, -c) mean the same thing. (A relative --pid is taken after --chdir, as
    in Gunicorn.)"""
    site = tmp_path / "site"
    site.mkdir()
    (site / "relative_app.py").write_text(
        "import os\n"
        "def application(environ, start_response):\n"
        "    body = str(os.getppid()).encode()\n"
        "    start_response('200 OK', [('Content-Length', str(len(body)))])\n"
        "    return [body]\n")
    with Subreaper() as reaper:
        server, (address,) = start_server("relative_app", "--chdir", "site", "--pid", "app.pid",
                                          cwd=tmp_path)
        old = server.proc.pid
        assert read_pid(site / "app.pid") == old
        os.kill(old, signal.SIGUSR2)
        new = _new_master(site / "app.pid", old, server)
        reaper.adopt(new)
        wait_children(server, new, 1)
        os.kill(old, signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0
        poll(lambda: int(get(address, "/").body) == new, "the new master's worker answering",
             server=server)
        os.kill(new, signal.SIGTERM)
        assert reaper.wait(new) == 0, server.output


def test_a_new_master_starts_with_the_umask_the_first_one_inherited(  # type: ignore[no-untyped-def]
        start_server, tmp_path: Path) -> None:
    """--umask is in force only while a unix socket is bound, so the old master's umask, which the
    new one inherits across fork and exec, is still the one it was started with: the new
    generation writes its files 0644, not under --umask."""
    pidfile = tmp_path / "app.pid"
    unix_path = tmp_path / "app.sock"
    with Subreaper() as reaper:
        server, (address,) = start_server(APP, "--pid", str(pidfile), "-b", f"unix:{unix_path}",
                                          "--umask", "0o007", umask=0o022)
        old = server.proc.pid
        os.kill(old, signal.SIGUSR2)
        new = _new_master(pidfile, old, server)
        reaper.adopt(new)
        (worker,) = wait_children(server, new, 1)
        for pid in (new, worker):
            assert int(status_field(pid, "Umask"), 8) == 0o022
        os.kill(old, signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0, server.output
        written = tmp_path / "written.txt"
        assert get(address, f"/write?path={written}").body == b"written"  # the new worker, now
        assert oct(stat.S_IMODE(written.stat().st_mode)) == "0o644"
        assert oct(stat.S_IMODE(unix_path.stat().st_mode)) == "0o770"  # handed over, not rebound
        os.kill(new, signal.SIGTERM)
        assert reaper.wait(new) == 0, server.output


def test_usr2_under_daemon(tmp_path: Path) -> None:
    """-D: the new master must not detach again (its parent is already a daemon, and the old master
    would take its exit for a failure and put its own pidfile back over the new one)."""
    pidfile = tmp_path / "app.pid"
    log = tmp_path / "error.log"
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    fd = listener.fileno()
    address = "http://127.0.0.1:%d" % listener.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(APPS))
    with Subreaper() as reaper:
        with listener:
            launcher = subprocess.run(
                [sys.executable, "-m", "pronghorn", "-D", "--pid", str(pidfile), "--log-file",
                 str(log), "-b", f"fd://{fd}", APP], pass_fds=(fd,), env=env, timeout=60,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert launcher.returncode == 0
        old = poll(lambda: read_pid(pidfile), "the daemon's pidfile")
        reaper.adopt(old)
        wait_ready(address)
        os.kill(old, signal.SIGUSR2)
        new = poll(lambda: (lambda pid: pid if pid and pid != old else None)(read_pid(pidfile)),
                   "the new master's pidfile")
        reaper.adopt(new)
        poll(lambda: len(children(new)) == 1, "the new master's worker")
        assert read_pid(tmp_path / "app.pid.oldbin") == old
        assert alive(new) and alive(old)
        assert "this master carries on" not in log.read_text()
        os.kill(old, signal.SIGTERM)
        assert reaper.wait(old) == 0, log.read_text()
        assert read_pid(pidfile) == new
        poll(lambda: int(get(address, "/ppid").body.split()[1]) == new,
             "the new master's worker answering")
        os.kill(new, signal.SIGTERM)
        assert reaper.wait(new) == 0, log.read_text()
        assert not pidfile.exists()

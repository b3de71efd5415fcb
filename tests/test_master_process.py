"""Process options of the master: --pid, -D, -u/-g, -m, --chdir, --pythonpath, -e, --preload, -n,
--reuse-port, --worker-tmp-dir. Each is checked where the kernel shows it: /proc, stat, the socket."""

from __future__ import annotations

import grp
import importlib.util
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import APPS, Server, wait_ready
from master_util import (Subreaper, children, comm, cmdline, poll, proc_stat, read_pid,
                         status_field, wait_children)
from wire import get

APP = "master_app:app"
HAS_SETPROCTITLE = importlib.util.find_spec("setproctitle") is not None


def _module(directory: Path, name: str, body: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.py").write_text(body)


# -- pidfile ---------------------------------------------------------------------------------------------

def test_pidfile_names_the_master_and_is_removed_on_exit(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pidfile = tmp_path / "app.pid"
    pidfile.write_text("999999999\n")  # stale: no such process
    server, _ = start_server(APP, "--pid", str(pidfile))
    assert read_pid(pidfile) == server.proc.pid
    assert stat.S_IMODE(pidfile.stat().st_mode) == 0o644
    assert server.stop() == 0, server.output
    assert not pidfile.exists()


def test_a_pidfile_naming_a_running_process_stops_the_start(tmp_path: Path) -> None:
    pidfile = tmp_path / "app.pid"
    pidfile.write_text(f"{os.getpid()}\n")
    server = Server(["--pid", str(pidfile), "-b", "127.0.0.1:0", APP])
    try:
        assert server.proc.wait(timeout=30) != 0
    finally:
        server.stop()
    assert "Cannot write the pidfile" in server.output, server.output
    assert read_pid(pidfile) == os.getpid()  # left alone


# -- daemon ----------------------------------------------------------------------------------------------

def _daemon(tmp_path: Path, *flags: str, stderr: object = subprocess.PIPE
            ) -> tuple[subprocess.CompletedProcess, str]:  # type: ignore[type-arg]
    """Launch ``pronghorn -D`` on a socket the test bound; returns (the launcher's result, address).
    The launcher's output pipes must close when it exits: a daemon that kept them would hang a
    shell pipeline or an ssh session (run() would wait for them here, up to its timeout)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        fd = listener.fileno()
        address = "http://127.0.0.1:%d" % listener.getsockname()[1]
        env = dict(os.environ, PYTHONPATH=str(APPS))
        launched = subprocess.run(
            [sys.executable, "-m", "pronghorn", "-D", *flags, "-b", f"fd://{fd}", APP],
            pass_fds=(fd,), env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=stderr, timeout=60)
    return launched, address


def test_daemon_detaches_serves_and_stops_through_its_pidfile(tmp_path: Path) -> None:
    pidfile = tmp_path / "app.pid"
    with Subreaper() as reaper:
        launched, address = _daemon(tmp_path, "--pid", str(pidfile))
        assert launched.returncode == 0, launched
        assert launched.stdout == b"" and launched.stderr == b""
        daemon = poll(lambda: read_pid(pidfile), "the daemon's pidfile")
        reaper.adopt(daemon)
        # Detached: not in our session, and its parent (the launcher) is gone: it is ours now.
        assert os.getsid(daemon) != os.getsid(0)
        assert proc_stat(daemon)[1] == os.getpid()  # type: ignore[index]
        wait_ready(address)
        worker, parent = map(int, get(address, "/ppid").body.split())
        assert parent == daemon
        os.kill(read_pid(pidfile), signal.SIGTERM)  # type: ignore[arg-type]
        assert reaper.wait(daemon) == 0
        assert not pidfile.exists()
        assert proc_stat(worker) is None or proc_stat(worker)[0] == "Z"  # type: ignore[index]


def test_daemon_keeps_logging_to_a_file_given_as_stderr(tmp_path: Path) -> None:
    pidfile = tmp_path / "app.pid"
    log = tmp_path / "stderr.log"
    with Subreaper() as reaper, open(log, "wb") as stderr:
        launched, address = _daemon(tmp_path, "--pid", str(pidfile), stderr=stderr)
        assert launched.returncode == 0
        daemon = poll(lambda: read_pid(pidfile), "the daemon's pidfile")
        reaper.adopt(daemon)
        wait_ready(address)
        os.kill(daemon, signal.SIGTERM)
        assert reaper.wait(daemon) == 0
    text = log.read_text()
    assert f"[{daemon}] [INFO] Shutting down: Master" in text, text


# -- user, group, umask ----------------------------------------------------------------------------------

def _ids(user: str, group: str) -> tuple[int, int]:
    try:
        return pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid
    except KeyError:
        pytest.skip(f"this machine has no user {user} or group {group}")


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


@needs_root
def test_workers_run_as_user_and_group_and_cannot_become_root(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    uid, gid = _ids("nobody", "nogroup")
    unix_path = tmp_path / "app.sock"
    server, (tcp, unix) = start_server(APP, "-w", "2", "-u", "nobody", "-g", "nogroup",
                                       "-b", "127.0.0.1:0", "-b", f"unix:{unix_path}")
    master = server.proc.pid
    workers = wait_children(server, master, 2)
    for pid in workers:  # a worker switches after the fork, before it loads the app
        poll(lambda: status_field(pid, "Uid") != "0\t0\t0\t0", f"worker {pid} to switch",
             server=server)
        assert status_field(pid, "Uid").split() == [str(uid)] * 4
        assert status_field(pid, "Gid").split() == [str(gid)] * 4
        assert status_field(pid, "Groups").split() == [str(gid)]  # root's groups are gone
    assert status_field(master, "Uid").split()[0] == "0"  # the master keeps root (to fork, rebind)
    for address in (tcp, unix):
        assert get(address, "/ids").body.decode() == f"{uid} {gid} {uid} {gid} {gid} root-refused"
    # The unix socket belongs to the workers' user and group.
    assert (unix_path.stat().st_uid, unix_path.stat().st_gid) == (uid, gid)
    assert server.stop() == 0, server.output


@needs_root
def test_numeric_user_without_group_takes_the_users_primary_group(start_server) -> None:  # type: ignore[no-untyped-def]
    uid, gid = _ids("nobody", "nogroup")
    assert pwd.getpwuid(uid).pw_gid == gid
    server, (address,) = start_server(APP, "-u", str(uid))
    assert get(address, "/ids").body.decode().split()[:4] == [str(uid), str(gid)] * 2
    assert server.stop() == 0


@pytest.mark.parametrize("flags, mode", [((), 0o777), (("-m", "0o007"), 0o770),
                                         (("--umask", "23"), 0o750)])
def test_umask_shapes_the_unix_socket_not_the_processes(start_server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                        flags: tuple[str, ...], mode: int) -> None:
    unix_path = tmp_path / "app.sock"
    server, (address,) = start_server(APP, *flags, "-b", f"unix:{unix_path}", umask=0o022)
    assert stat.S_IMODE(unix_path.stat().st_mode) == mode
    (worker,) = wait_children(server, server.proc.pid, 1)
    for pid in (server.proc.pid, worker):  # the umask they were started with, whatever --umask
        assert int(status_field(pid, "Umask"), 8) == 0o022
    assert get(address, "/pid").status == 200
    assert server.stop() == 0


GUNICORN = os.environ.get("GUNICORN", "/tmp/gvenv/bin/gunicorn")


def _serve_files(peer: str, tmp_path: Path, umask: int, *flags: str
                 ) -> tuple[dict[str, Path], subprocess.Popen]:  # type: ignore[type-arg]
    """Start ``peer`` (pronghorn, or Gunicorn as the reference) under an inherited ``umask`` with
    ``flags``, a unix socket bound with --umask 0o007, a pidfile and both logs; have the app write
    a file. Returns every file the server or the app created, by name, and the launched process
    (the server itself, or with -D the launcher, which has exited)."""
    if peer == "gunicorn" and not os.access(GUNICORN, os.X_OK):
        pytest.skip(f"no Gunicorn at {GUNICORN} (python3 -m venv /tmp/gvenv && "
                    "/tmp/gvenv/bin/pip install gunicorn, or set GUNICORN)")
    files = {"socket": tmp_path / "app.sock", "pidfile": tmp_path / "app.pid",
             "error log": tmp_path / "error.log", "access log": tmp_path / "access.log",
             "app's file": tmp_path / "written.txt"}
    command = ([GUNICORN, "--no-control-socket"] if peer == "gunicorn"
               else [sys.executable, "-m", "pronghorn"])
    command += [*flags, "-w", "1", "-b", f"unix:{files['socket']}", "--umask", "0o007",
                "--pid", str(files["pidfile"]), "--error-logfile", str(files["error log"]),
                "--access-logfile", str(files["access log"]), APP]
    proc = subprocess.Popen(command, env=dict(os.environ, PYTHONPATH=str(APPS)), cwd=tmp_path,
                            umask=umask, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    address = f"unix:{files['socket']}"
    try:
        wait_ready(address, timeout=30)
        written = files["app's file"]
        assert get(address, f"/write?path={written}").body == b"written"
        poll(lambda: files["access log"].exists() and "/write" in files["access log"].read_text(),
             f"{peer}'s access log line")
    except BaseException:
        master = read_pid(files["pidfile"])
        if master is not None:  # a -D server is not ``proc``
            os.kill(master, signal.SIGKILL)
        proc.kill()
        proc.wait(30)
        raise
    return files, proc


def _modes(files: dict[str, Path]) -> dict[str, str]:
    return {name: oct(stat.S_IMODE(path.stat().st_mode)) for name, path in files.items()}


# What Gunicorn does: --umask is in force only while the unix socket is bound (sock.py,
# UnixSocket.bind: umask set, bind, chown, umask restored); the pidfile is chmod 0644
# (pidfile.py); everything else the master, the workers and the app create takes the umask the
# server inherited, or 022 when -D detaches (util.py, daemonize).
AS_GUNICORN = {"socket": "0o770", "pidfile": "0o644", "error log": "0o644", "access log": "0o644",
               "app's file": "0o644"}


@pytest.mark.parametrize("peer", ["pronghorn", "gunicorn"])
def test_files_follow_the_inherited_umask_and_umask_shapes_only_the_socket(  # type: ignore[no-untyped-def]
        tmp_path: Path, peer: str) -> None:
    files, proc = _serve_files(peer, tmp_path, 0o022)
    try:
        assert _modes(files) == AS_GUNICORN
        master = read_pid(files["pidfile"])
        assert master == proc.pid
        (worker,) = poll(lambda: children(master), f"{peer}'s worker")  # type: ignore[arg-type]
        for pid in (master, worker):
            assert int(status_field(pid, "Umask"), 8) == 0o022
    finally:
        proc.terminate()
        proc.wait(30)


def _is_group_leader(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


@pytest.mark.parametrize("peer", ["pronghorn", "gunicorn"])
def test_a_daemon_writes_its_files_under_umask_022(tmp_path: Path, peer: str) -> None:
    """-D from a shell whose umask is 077: detaching sets 022, as Gunicorn's daemon does, so the
    files come out 0644 (and the socket still follows --umask)."""
    with Subreaper() as reaper:
        files, launcher = _serve_files(peer, tmp_path, 0o077, "-D")
        daemon = read_pid(files["pidfile"])
        assert daemon is not None and daemon != launcher.pid
        try:
            reaper.adopt(daemon)
            assert launcher.wait(30) == 0
            assert _modes(files) == AS_GUNICORN
            assert int(status_field(daemon, "Umask"), 8) == 0o022
            os.kill(daemon, signal.SIGTERM)
            assert reaper.wait(daemon) == 0, files["error log"].read_text()
            daemon = None
        finally:
            if daemon is not None:  # a failed check must not leave the daemon behind
                os.killpg(daemon, signal.SIGKILL) if _is_group_leader(daemon) else \
                    os.kill(daemon, signal.SIGKILL)


# -- where the app comes from ----------------------------------------------------------------------------

def test_chdir_loads_the_app_from_that_directory(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    site = tmp_path / "site"
    _module(site, "chdir_app",
            "import os\n"
            "def application(environ, start_response):\n"
            "    body = os.getcwd().encode()\n"
            "    start_response('200 OK', [('Content-Length', str(len(body)))])\n"
            "    return [body]\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    server, (address,) = start_server("chdir_app", "--chdir", str(site), cwd=elsewhere)
    assert get(address, "/").body.decode() == str(site)
    assert server.stop() == 0


def test_pythonpath_puts_each_directory_first(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first, second = tmp_path / "a", tmp_path / "b"
    _module(first, "pp_app",
            "from pp_helper import WORD\n"
            "def application(environ, start_response):\n"
            "    start_response('200 OK', [('Content-Length', str(len(WORD)))])\n"
            "    return [WORD]\n")
    _module(second, "pp_helper", "WORD = b'from b'\n")
    # A decoy of the app elsewhere on the path: --pythonpath must come before it.
    _module(tmp_path / "decoy", "pp_app", "raise ImportError('the decoy was imported')\n")
    server, (address,) = start_server("pp_app", "--pythonpath", f"{first},{second}",
                                      env={"PYTHONPATH": f"{APPS}{os.pathsep}{tmp_path / 'decoy'}"})
    assert get(address, "/").body == b"from b"
    assert server.stop() == 0


def test_env_sets_variables_for_the_app(start_server) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP, "-e", "PH_ONE=1", "--env", "PH_TWO=x=y", "-e",
                                      "PH_EMPTY=")
    assert get(address, "/env?name=PH_ONE").body == b"1"
    assert get(address, "/env?name=PH_TWO").body == b"x=y"
    assert get(address, "/env?name=PH_EMPTY").body == b""
    assert get(address, "/env?name=PH_UNSET").body == b"<unset>"
    assert server.stop() == 0


@pytest.mark.parametrize("preload", [True, False])
def test_preload_imports_the_app_once_in_the_master(start_server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                    preload: bool) -> None:
    imports = tmp_path / "imports"
    flags = ("--preload",) if preload else ()
    server, (address,) = start_server(APP, "-w", "2", *flags,
                                      env={"MASTER_APP_IMPORT_LOG": str(imports)})
    master = server.proc.pid
    workers = wait_children(server, master, 2)
    if preload:
        assert imports.read_text().split() == [str(master)]
    else:  # each worker imports it, the master never does
        pids = poll(lambda: (lambda p: p if len(p) == 2 else None)(
            {int(x) for x in imports.read_text().split()}), "both workers' imports", server=server)
        assert pids == workers
    assert server.stop() == 0


# -- names, sockets, compatibility -----------------------------------------------------------------------

def test_name_shows_in_the_process_titles(start_server) -> None:  # type: ignore[no-untyped-def]
    server, _ = start_server(APP, "-w", "2", "-n", "shopfront")
    master = server.proc.pid
    workers = wait_children(server, master, 2)
    if HAS_SETPROCTITLE:
        assert cmdline(master).startswith("pronghorn: master [shopfront]")
        for pid in workers:
            assert cmdline(pid).startswith("pronghorn: worker [shopfront]")
    else:
        # Without setproctitle: the kernel's 15-character command name.
        assert comm(master) == "pronghorn-maste"
        for pid in workers:
            assert comm(pid) == "pronghorn-worke"
    assert server.stop() == 0


def test_reuse_port_lets_another_socket_share_the_port(start_server) -> None:  # type: ignore[no-untyped-def]
    for flags, shared in (((), False), (("--reuse-port",), True)):
        server, (address,) = start_server(APP, *flags)
        port = int(address.rsplit(":", 1)[1])
        other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            other.bind(("127.0.0.1", port))
        except OSError:
            bound = False
        else:
            bound = True
        finally:
            other.close()
        assert bound == shared, flags
        assert server.stop() == 0


def test_worker_tmp_dir_is_accepted(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP, "--worker-tmp-dir", str(tmp_path))
    assert get(address, "/pid").status == 200
    assert list(tmp_path.iterdir()) == []  # heartbeats are shared memory, not files
    assert server.stop() == 0

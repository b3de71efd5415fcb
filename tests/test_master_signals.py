"""The master's signal table, against real processes: TERM, INT, QUIT, HUP, TTIN, TTOU, USR1, WINCH.

Worker processes are found as the master's children in /proc; every wait is a poll with a guard."""

from __future__ import annotations

import os
import pty
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from conftest import APPS, ROOT, Server, connect, wait_ready
from master_util import (alive, children, count_lines, poll, quiet_server, wait_children,
                         wait_gone)
from wire import Reader, get

APP = "master_app:app"

# The same signal table under every worker class (sync, gthread, gevent).
pytestmark = pytest.mark.usefixtures("worker_class")


def _hold_request(server, address: str, release: Path):  # type: ignore[no-untyped-def]
    """A keep-alive request the app holds until ``release`` exists; returns (socket, Reader) once
    the app is running it."""
    sock = connect(address, timeout=30)
    sock.sendall(f"GET /wait?file={release} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    server.wait_for_line(f"waiting {release}")
    return sock, Reader(sock)


# -- TERM, INT, QUIT -------------------------------------------------------------------------------------

def test_term_finishes_the_request_in_flight_and_a_second_term_changes_nothing(  # type: ignore[no-untyped-def]
        start_server, tmp_path: Path, worker_class: str) -> None:
    server, (address,) = start_server(APP, "-w", "2")
    # Both workers booted (a TERM during its boot ends a worker silently, with no line to wait for).
    answered: set[int] = set()
    poll(lambda: answered.add(int(get(address, "/pid").body)) or len(answered) == 2,
         "both workers answering")
    release = tmp_path / "release"
    sock, reader = _hold_request(server, address, release)
    with sock:
        server.proc.send_signal(signal.SIGTERM)
        server.wait_for_line("Handling signal: term")
        # The idle worker exits at once; by then the master has signalled both (it logs "Handling
        # signal" before it signals, and a release sooner could let the app finish first).
        server.wait_for_line("Worker exiting")
        server.proc.send_signal(signal.SIGTERM)  # an impatient operator
        # The request is still held by the app, so the master is still waiting for its worker.
        assert server.proc.poll() is None, server.output
        release.touch()
        response = reader.read_response()
        assert response.status == 200 and response.body == b"released"
        if worker_class == "sync":
            # The handler runs in the app's own thread, at once: the head says close. In the other
            # classes the app can finish before the handler has run (another thread or greenlet);
            # then the head promised keep-alive, and the promise is kept until the idle close.
            assert response.closes, response.head
        assert reader.closed()
    assert server.proc.wait(timeout=30) == 0, server.output
    assert count_lines(server, "Handling signal: term") == 1, server.output
    assert _refused(address)


def _refused(address: str) -> bool:
    try:
        connect(address, timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_term_right_after_a_fork_reaches_the_new_worker(start_server) -> None:  # type: ignore[no-untyped-def]
    """A TERM that the master passes on while a worker is being forked must not be lost (it was,
    when it reached the child before the child dropped the master's handlers: the worker then ran
    on and the stop waited for the graceful timeout). The window is small (about one try in ten
    fell in it before the fix), so try a dozen times."""
    for _ in range(12):
        server, _ = start_server(APP, "--graceful-timeout", "120")
        master = server.proc.pid
        (worker,) = wait_children(server, master, 1)
        os.kill(worker, signal.SIGKILL)
        server.wait_for_line(rf"Worker \(pid:{worker}\) was sent SIGKILL")  # replacing it now
        server.proc.send_signal(signal.SIGTERM)
        try:
            code = server.proc.wait(timeout=20)  # far below --graceful-timeout
        except subprocess.TimeoutExpired:
            raise AssertionError(f"TERM lost in a new worker:\n{server.output}") from None
        assert code == 0, server.output


def test_term_closes_an_idle_keep_alive_connection_without_waiting_for_keep_alive(  # type: ignore[no-untyped-def]
        start_server) -> None:
    """A client idle on keep-alive holds nothing up: after TERM its connection is closed soon,
    not after --keep-alive (here far beyond the guard), and the stop ends with exit 0."""
    server, (address,) = start_server(APP, "--keep-alive", "300", "--graceful-timeout", "300")
    with connect(address, timeout=60) as sock:
        reader = Reader(sock)
        sock.sendall(b"GET /pid HTTP/1.1\r\nHost: t\r\n\r\n")
        response = reader.read_response()
        assert response.status == 200 and not response.closes
        server.proc.send_signal(signal.SIGTERM)
        assert reader.closed(), reader.received  # closed by the worker, with nothing more said
        assert server.proc.wait(timeout=30) == 0, server.output


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT])
def test_int_and_quit_stop_quickly_with_exit_zero(start_server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                  sig: signal.Signals) -> None:
    # A graceful timeout far beyond the guard: a quick stop must not wait for the held request.
    server, (address,) = start_server(APP, "-w", "2", "--graceful-timeout", "120")
    workers = children(server.proc.pid)
    assert len(workers) == 2
    sock, reader = _hold_request(server, address, tmp_path / "never")
    with sock:
        assert server.stop(sig, timeout=30) == 0, server.output
        # The held request is not finished: the connection ends without a response.
        try:
            assert reader.closed(), reader.received
        except ConnectionResetError:
            pass
    for pid in workers:
        assert not alive(pid)
    assert f"Handling signal: {sig.name[3:].lower()}" in server.output


# -- HUP ---------------------------------------------------------------------------------------------------

def test_hup_replaces_the_workers_and_reimports_the_app(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    value = tmp_path / "value"
    value.write_text("first")
    server, (address,) = start_server(APP, "-w", "2", env={"MASTER_APP_VALUE_FILE": str(value)})
    master = server.proc.pid
    old = wait_children(server, master, 2)
    assert get(address, "/value").body == b"first"
    value.write_text("second")
    os.kill(master, signal.SIGHUP)
    server.wait_for_line("Handling signal: hup")
    # New workers appear, the old ones exit, the count comes back to 2.
    new = poll(lambda: (lambda c: c if len(c) == 2 and not c & old else None)(children(master)),
               "two new workers and no old one", server=server)
    for pid in old:
        wait_gone(pid, server)
    assert count_lines(server, "Booting worker") == 4
    for _ in range(6):  # every worker now serves the re-imported app
        response = get(address, "/ppid")
        worker = int(response.body.split()[0])
        assert worker in new
        assert get(address, "/value").body == b"second"
    assert server.stop() == 0, server.output


def test_hup_with_an_app_that_no_longer_imports_keeps_the_old_workers(start_server,  # type: ignore[no-untyped-def]
                                                                      tmp_path: Path) -> None:
    value = tmp_path / "value"
    value.write_text("first")
    server, (address,) = start_server(APP, "-w", "2", env={"MASTER_APP_VALUE_FILE": str(value)})
    master = server.proc.pid
    old = wait_children(server, master, 2)
    # Both workers must have imported the app before the file goes: a worker still booting would
    # fail too, and be replaced, which is not what this test is about.
    answered: set[int] = set()
    poll(lambda: answered.add(int(get(address, "/pid").body)) or answered == old,
         "both workers to answer", server=server)
    value.unlink()  # the re-import raises FileNotFoundError
    os.kill(master, signal.SIGHUP)
    server.wait_for_line("The new workers failed to boot; the old ones keep serving")
    wait_children(server, master, 2)
    assert children(master) == old, server.output  # (the log says which worker went, and why)
    assert server.proc.poll() is None
    for _ in range(4):
        assert get(address, "/value").body == b"first"
    # Fixed: the next HUP goes through.
    value.write_text("second")
    os.kill(master, signal.SIGHUP)
    poll(lambda: (lambda c: len(c) == 2 and not c & old)(children(master)),
         "two new workers", server=server)
    for pid in old:
        wait_gone(pid, server)
    assert get(address, "/value").body == b"second"
    assert server.stop() == 0, server.output


def test_hup_with_preload_keeps_the_loaded_app(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    value = tmp_path / "value"
    value.write_text("first")
    server, (address,) = start_server(APP, "-w", "1", "--preload",
                                      env={"MASTER_APP_VALUE_FILE": str(value)})
    master = server.proc.pid
    (old,) = wait_children(server, master, 1)
    value.write_text("second")
    os.kill(master, signal.SIGHUP)
    poll(lambda: children(master) - {old}, "a new worker", server=server)
    wait_gone(old, server)
    assert get(address, "/value").body == b"first"  # --preload: imported once, in the master


# -- TTIN, TTOU ----------------------------------------------------------------------------------------------

def test_ttin_and_ttou_change_the_number_of_workers(start_server) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP, "-w", "1")
    master = server.proc.pid
    wait_children(server, master, 1)
    # One signal at a time: two identical signals sent back to back may reach the process as one
    # (UNIX merges a pending signal with a second of its kind).
    os.kill(master, signal.SIGTTIN)
    wait_children(server, master, 2)
    os.kill(master, signal.SIGTTIN)
    wait_children(server, master, 3)
    os.kill(master, signal.SIGTTOU)
    wait_children(server, master, 2)
    os.kill(master, signal.SIGTTOU)
    wait_children(server, master, 1)
    # TTOU never goes below one worker: after it, one TTIN makes two (from zero it would make one).
    os.kill(master, signal.SIGTTOU)
    poll(lambda: count_lines(server, "Handling signal: ttou") == 3, "the third TTOU handled",
         server=server)
    os.kill(master, signal.SIGTTIN)
    wait_children(server, master, 2)
    assert get(address, "/pid").status == 200
    assert server.stop() == 0, server.output


# -- USR1 ----------------------------------------------------------------------------------------------------

def test_usr1_reopens_the_error_log_in_master_and_workers(tmp_path: Path) -> None:
    log = tmp_path / "error.log"
    rotated = tmp_path / "error.log.1"
    with quiet_server("-w", "1", "--log-file", str(log)) as (server, address):
        _usr1_scenario(server, address, log, rotated)


def _usr1_scenario(server: Server, address: str, log: Path, rotated: Path) -> None:
    master = server.proc.pid
    (worker,) = wait_children(server, master, 1)
    get(address, "/log?marker=before")
    poll(lambda: "marker before" in log.read_text(), "the first marker in the log")
    log.rename(rotated)
    os.kill(master, signal.SIGUSR1)
    poll(log.exists, "a new error log file", server=server)
    # The worker reopens from its loop, soon: keep logging until a line lands in the new file.
    sent: list[str] = []

    def worker_wrote_to_new_file() -> bool:
        marker = uuid.uuid4().hex[:8]
        sent.append(marker)
        assert int(get(address, f"/log?marker={marker}").body) == worker
        return f"marker {marker}" in log.read_text()

    poll(worker_wrote_to_new_file, "a worker line in the new log file")
    os.kill(master, signal.SIGTTIN)  # the master logs "Handling signal: ttin" after reopening
    poll(lambda: f"[{master}] [INFO] Handling signal: ttin" in log.read_text(),
         "a master line in the new log file")
    old_text, new_text = rotated.read_text(), log.read_text()
    assert "Handling signal: usr1" in old_text
    assert "Handling signal: usr1" not in new_text
    assert f"[{worker}]" in new_text
    for marker in sent:  # every line is in one of the files, none lost in the switch
        assert (f"marker {marker}" in old_text) != (f"marker {marker}" in new_text), marker
    assert server.stop() == 0


# -- WINCH ---------------------------------------------------------------------------------------------------

def test_winch_stops_the_workers_and_ttin_or_hup_bring_them_back(start_server) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server(APP, "-w", "2")
    master = server.proc.pid
    first = wait_children(server, master, 2)
    os.kill(master, signal.SIGWINCH)
    wait_children(server, master, 0)
    for pid in first:
        wait_gone(pid, server)
    assert alive(master)
    # The listener stays open: a request waits in the backlog, and TTIN's worker answers it.
    with connect(address, timeout=30) as sock:
        sock.sendall(b"GET /pid HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        os.kill(master, signal.SIGTTIN)
        response = Reader(sock).read_response()
    assert response.status == 200
    (revived,) = wait_children(server, master, 1)
    assert int(response.body) == revived
    os.kill(master, signal.SIGWINCH)
    wait_children(server, master, 0)
    os.kill(master, signal.SIGHUP)  # back to the configured -w 2
    wait_children(server, master, 2)
    assert get(address, "/pid").status == 200
    assert server.stop() == 0, server.output


class TerminalServer(Server):
    """pronghorn with a terminal (a pty) as its controlling terminal, as when run in a window."""

    def __init__(self, args: list[str]) -> None:
        self.terminal, slave = pty.openpty()
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(APPS))
        self.proc = subprocess.Popen(
            ["setsid", "--ctty", sys.executable, "-m", "pronghorn", *args],
            stdin=slave, stdout=slave, stderr=slave, env=env, cwd=str(ROOT))
        os.close(slave)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read_terminal, daemon=True)
        self._reader.start()

    def _read_terminal(self) -> None:
        pending = b""
        while True:
            try:
                data = os.read(self.terminal, 65536)
            except OSError:  # EIO: the other side is closed
                data = b""
            if not data:
                break
            *complete, pending = (pending + data).split(b"\n")
            with self._changed:
                self.lines.extend(line.decode("utf-8", "replace").rstrip("\r") for line in complete)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()


@pytest.mark.skipif(shutil.which("setsid") is None, reason="needs util-linux setsid")
def test_winch_is_ignored_in_a_terminal() -> None:
    """A terminal sends WINCH on every window resize: resizing must not stop the workers."""
    server = TerminalServer(["-w", "2", "-b", "127.0.0.1:0", APP])
    try:
        (address,) = server.addresses(1)
        wait_ready(address)
        master = server.proc.pid
        workers = wait_children(server, master, 2)
        os.kill(master, signal.SIGWINCH)
        server.wait_for_line("WINCH ignored: the master runs in a terminal")
        os.kill(master, signal.SIGTTIN)  # handled after the WINCH: by then WINCH did its all
        server.wait_for_line("Handling signal: ttin")
        assert workers <= wait_children(server, master, 3)
        assert get(address, "/pid").status == 200
        assert server.stop() == 0, server.output
    finally:
        server.stop()
        os.close(server.terminal)

"""Helpers for the master tests: processes seen through /proc, polling with a guard, a subreaper for
masters the test did not start itself, and a load client that counts every failed request."""

from __future__ import annotations

import contextlib
import json
import ctypes
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from conftest import Server, connect, wait_ready
from wire import Reader

T = TypeVar("T")

POLL_INTERVAL = 0.05  # how often a condition is looked at; never a wait for an outcome


def poll(predicate: Callable[[], T], what: str, timeout: float = 30.0,
         interval: float = POLL_INTERVAL, server: Server | None = None) -> T:
    """Call ``predicate`` until it returns something truthy; return that. ``timeout`` is a guard
    against a hang, not a timing assertion. The failure shows ``server``'s output if given."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            detail = f"\n{server.output}" if server is not None else ""
            raise AssertionError(f"timed out waiting for {what}{detail}")
        time.sleep(interval)


# -- processes -----------------------------------------------------------------------------------------

def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of ``pid``, or None if there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    """Running (a zombie is not: it has exited and only waits to be reaped)."""
    stat = proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def children(pid: int) -> set[int]:
    """The live (non-zombie) children of ``pid``."""
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = proc_stat(int(entry))
        if stat is not None and stat[1] == pid and stat[0] not in ("Z", "X"):
            found.add(int(entry))
    return found


def wait_children(server: Server, master: int, count: int, what: str = "",
                  timeout: float = 30.0) -> set[int]:
    """Poll until ``master`` has exactly ``count`` live children; return their pids."""
    def check() -> set[int] | None:
        found = children(master)
        return found if len(found) == count else None

    if count == 0:
        poll(lambda: not children(master), what or f"{master} to have no children", timeout,
             server=server)
        return set()
    return poll(check, what or f"{master} to have {count} children", timeout, server=server)


def wait_gone(pid: int, server: Server | None = None, timeout: float = 30.0) -> None:
    poll(lambda: not alive(pid), f"process {pid} to exit", timeout, server=server)


def status_field(pid: int, name: str) -> str:
    """A line of /proc/PID/status, e.g. status_field(pid, "Uid") → "65534 65534 65534 65534"."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    raise KeyError(name)


def comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def unshare_works() -> bool:
    """Whether this process can run a command as PID 1 of a new PID namespace with its own /proc
    (``unshare --pid --fork --mount-proc``), as a container runs its CMD: it needs root and an
    unshare(1) that the kernel lets through, so it is tried once rather than assumed."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def count_lines(server: Server, pattern: str) -> int:
    regex = re.compile(pattern)
    return sum(1 for line in list(server.lines) if regex.search(line))


class Subreaper:
    """While active, orphans of our descendants (a daemon, a USR2 master whose parent exited) are
    re-parented to this test process instead of PID 1, so the test can wait for them and read their
    exit status. Processes passed to ``adopt`` that are still there on exit are killed and reaped."""

    PR_SET_CHILD_SUBREAPER = 36

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.adopted: set[int] = set()

    def _set(self, on: int) -> None:
        if self._libc.prctl(self.PR_SET_CHILD_SUBREAPER, on, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")

    def __enter__(self) -> "Subreaper":
        self._set(1)
        return self

    def adopt(self, pid: int) -> None:
        """``pid`` will be (or is) our child: clean it up on exit if the test does not."""
        self.adopted.add(pid)

    def wait(self, pid: int, timeout: float = 30.0) -> int:
        """The exit code of an adopted process (-N for a signal), once it exits."""
        self.adopted.add(pid)

        def reaped() -> tuple[int, int] | None:
            found, status = os.waitpid(pid, os.WNOHANG)
            return (found, status) if found else None

        _, status = poll(reaped, f"adopted process {pid} to exit", timeout)
        self.adopted.discard(pid)
        return os.waitstatus_to_exitcode(status)

    def __exit__(self, *exc: Any) -> None:
        self._set(0)
        for pid in self.adopted:
            stat = proc_stat(pid)
            if stat is None or stat[1] != os.getpid():
                continue
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


@contextlib.contextmanager
def quiet_server(*flags: str, app: str = "master_app:app", env: dict[str, str] | None = None,
                 cwd: str | Path | None = None) -> Iterator[tuple[Server, str]]:
    """A server whose log does not come to its output (--log-file, --daemon), so "Listening at"
    cannot be read there: the test binds the listening socket and hands it over as fd://N. Yields
    (server, address) once a worker answers; stops the server after."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.set_inheritable(True)
    fd = listener.fileno()
    address = "http://127.0.0.1:%d" % listener.getsockname()[1]
    try:
        server = Server([*flags, "-b", f"fd://{fd}", app], env=env, cwd=cwd, pass_fds=(fd,))
    finally:
        listener.close()
    try:
        wait_ready(address)
        yield server, address
    finally:
        server.stop()


# -- load ------------------------------------------------------------------------------------------------

class LoadClient:
    """``connections`` threads, each sending GET /pid in a loop, on keep-alive connections (a new one
    when the server announces a close) or on a new connection per request. Every failure is counted
    by kind: a refused or reset connection, a close before a complete response, a non-200."""

    def __init__(self, address: str, connections: int = 20, keepalive: bool = True,
                 path: str = "/pid") -> None:
        self.address = address
        self.keepalive = keepalive
        self.path = path
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.closes = 0  # responses that announced Connection: close
        self.failures: Counter[str] = Counter()
        self.examples: list[str] = []
        self.pids: Counter[int] = Counter()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(connections)]

    def __enter__(self) -> "LoadClient":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(30)

    def _fail(self, kind: str, detail: str) -> None:
        with self.lock:
            self.failures[kind] += 1
            if len(self.examples) < 10:
                self.examples.append(f"{kind}: {detail}")

    def _run(self) -> None:
        connection = b"" if self.keepalive else b"Connection: close\r\n"
        raw = f"GET {self.path} HTTP/1.1\r\nHost: load\r\n".encode() + connection + b"\r\n"
        sock: socket.socket | None = None
        reader: Reader | None = None
        used = 0  # requests answered on this connection so far (shown with a failure)
        while not self.stop_event.is_set():
            try:
                if sock is None:
                    sock = connect(self.address, timeout=20)
                    reader = Reader(sock)
                    used = 0
                assert reader is not None
                sock.sendall(raw)
                response = reader.read_response()
            except ConnectionRefusedError as exc:
                self._fail("refused", f"{exc!r} after {used} requests on the connection")
                sock = _close(sock)
                continue
            except (ConnectionResetError, BrokenPipeError) as exc:
                self._fail("reset", f"{exc!r} after {used} requests on the connection")
                sock = _close(sock)
                continue
            except socket.timeout as exc:
                self._fail("timeout", f"{exc!r} after {used} requests on the connection")
                sock = _close(sock)
                continue
            except (OSError, AssertionError, ValueError) as exc:  # Incomplete is an AssertionError
                self._fail("incomplete", f"{exc!r} after {used} requests on the connection")
                sock = _close(sock)
                continue
            used += 1
            if response.status != 200:
                self._fail(f"status {response.status}", repr(response.head))
            else:
                with self.lock:
                    self.ok += 1
                    self.pids[int(response.body)] += 1
            if response.closes or not self.keepalive:
                if response.closes and self.keepalive:
                    with self.lock:
                        self.closes += 1
                sock = _close(sock)
        _close(sock)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def report(self) -> str:
        return (f"{self.ok} ok, failures {dict(self.failures)}, closes {self.closes}, "
                f"served by {len(self.pids)} pids; e.g. {self.examples}")


def _close(sock: socket.socket | None) -> None:
    if sock is not None:
        sock.close()
    return None


def modules_hook(call: str, report: Path, names: tuple[str, ...]) -> str:
    """Config-file source for a hook (``call`` is its def line's name and arguments) that records
    which of these modules its process has imported, in ``report``: written whole, then renamed,
    so a test may read it as soon as it exists. The config must import json, os and sys."""
    partial = str(report) + ".tmp"
    return (f"def {call}:\n"
            f"    with open({partial!r}, 'w') as out:\n"
            f"        json.dump({{name: name in sys.modules for name in {names!r}}}, out)\n"
            f"    os.replace({partial!r}, {str(report)!r})\n")


def master_modules_config(tmp_path: Path, names: tuple[str, ...],
                          worker_report: Path | None = None) -> tuple[Path, Callable[[], dict[str, bool]]]:
    """A config file whose when_ready hook (run in the master once it serves) records which of
    these modules the master has imported; and how to read that record. With ``worker_report``,
    its post_request hook records the same of the worker that answered, there."""
    report = tmp_path / "master-modules.json"
    conf = tmp_path / "modules_conf.py"
    source = "import json, os, sys\n" + modules_hook("when_ready(server)", report, names)
    if worker_report is not None:
        source += modules_hook("post_request(worker, req, environ, resp)", worker_report, names)
    conf.write_text(source)
    return conf, lambda: json.loads(report.read_text())

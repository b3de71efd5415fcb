"""As PID 1 (a container's init), the master reaps every child, including orphans re-parented to it,
but acts only on its own workers. Run in a new PID namespace with `unshare` (needs root)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from conftest import APPS, ROOT, Server, wait_ready
from master_util import children, count_lines, poll, status_field, unshare_works, wait_children
from wire import get

APP = "master_app:app"


pytestmark = pytest.mark.skipif(not unshare_works(),
                                reason="needs root and a working `unshare --pid --mount-proc`")


class PidOneServer(Server):
    """pronghorn as PID 1 of a new PID namespace (with its own /proc). ``proc`` is `unshare`, which
    exits with the master's status."""

    def __init__(self, args: list[str]) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join([str(APPS)] + ([env["PYTHONPATH"]]
                                                           if env.get("PYTHONPATH") else []))
        self.proc = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
             sys.executable, "-m", "pronghorn", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT), text=True)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()


def test_pid_1_reaps_orphans_and_keeps_serving() -> None:
    server = PidOneServer(["-w", "2", "-b", "127.0.0.1:0", APP])
    try:
        (address,) = server.addresses(1)
        wait_ready(address)
        server.wait_for_line(r"Listening at: \S+ \(1\)")  # the master is PID 1 in there
        (master,) = poll(lambda: children(server.proc.pid), "the master under unshare",
                         server=server)
        assert status_field(master, "NSpid").split()[-1] == "1"
        workers = wait_children(server, master, 2)
        for _ in range(3):
            # A double fork: the grandchild outlives its parent, is re-parented to PID 1 (the
            # master) and exits there. Unless the master reaps it, it stays a zombie.
            orphan = int(get(address, "/orphan").body)
            poll(lambda: get(address, f"/state?pid={orphan}").body == b"gone",
                 f"orphan {orphan} to be reaped", server=server)
        assert get(address, "/zombies").body == b"-"
        # Not a worker: nothing logged about it, nothing replaced.
        assert count_lines(server, r"Worker \(pid:") == 0, server.output
        assert count_lines(server, "Booting worker") == 2, server.output
        assert children(master) == workers
        os.kill(master, signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0, server.output
    finally:
        server.stop(signal.SIGKILL)

"""What --preload shares: the memory of 4 workers of a Django project, from /proc/PID/smaps_rollup.

    python bench/preload_memory.py [--source DIR] [--requests N] [--workers N]

Makes a fresh Django project (django-admin startproject), serves it with
``pronghorn --preload -w 4``, sends N requests (the admin's login page: templates, forms, the
session and CSRF machinery, so each worker has run and collected garbage), then sums each worker's
Shared_Clean+Shared_Dirty (pages it still shares, mostly with the master) and Private_Clean+
Private_Dirty (pages it copied or made), and Pss. ``--source DIR`` runs pronghorn from another
checkout (``git archive COMMIT | tar -x -C DIR``), to measure before a change.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIELDS = ("Rss", "Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty")


def rollup(pid: int) -> dict[str, int]:
    """The smaps_rollup fields, in KiB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        if name in FIELDS:
            values[name] = int(rest.split()[0])
    return values


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return sorted(found)


def get(port: int, path: str) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", help="run pronghorn from this directory (default: installed)")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "site"
        project.mkdir()
        subprocess.run([sys.executable, "-m", "django", "startproject", "project", str(project)],
                       check=True)
        (project / "host_settings.py").write_text(
            "from project.settings import *\nDEBUG = False\nALLOWED_HOSTS = ['localhost']\n")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="host_settings",
                   PYTHONPATH=os.pathsep.join(filter(None, [args.source, str(project)])))
        master = subprocess.Popen(
            [sys.executable, "-m", "pronghorn", "--preload", "-w", str(args.workers), "-b",
             f"127.0.0.1:{port}", "--log-level", "warning", "project.wsgi:application"],
            cwd=args.source or project, env=env)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    get(port, "/admin/login/")
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            statuses = {get(port, "/admin/login/") for _ in range(args.requests)}
            workers = children(master.pid)
            totals = dict.fromkeys(FIELDS, 0)
            for pid in workers:
                for name, kib in rollup(pid).items():
                    totals[name] += kib
            shared = totals["Shared_Clean"] + totals["Shared_Dirty"]
            private = totals["Private_Clean"] + totals["Private_Dirty"]
            print(f"{len(workers)} workers, {args.requests} requests (statuses {sorted(statuses)}), "
                  f"Python {sys.version.split()[0]}")
            print(f"shared {shared / 1024:.1f} MiB, private {private / 1024:.1f} MiB, "
                  f"Pss {totals['Pss'] / 1024:.1f} MiB, Rss {totals['Rss'] / 1024:.1f} MiB "
                  f"(sums over the workers)")
        finally:
            master.terminate()
            master.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())

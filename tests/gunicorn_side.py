"""Gunicorn 27 as a side-by-side peer: start it from its side venv on the same app and config as a
pronghorn under test, and ask both the same bytes. Tests that use it skip (naming the install
command) when Gunicorn is not installed."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import APPS, connect, wait_ready
from wire import Reader, Response

GUNICORN = os.environ.get("GUNICORN", "/tmp/gvenv/bin/gunicorn")
SKIP_REASON = (f"no Gunicorn at {GUNICORN} (python3 -m venv /tmp/gvenv && /tmp/gvenv/bin/pip "
               "install gunicorn, or set GUNICORN)")
needs_gunicorn = pytest.mark.skipif(not os.access(GUNICORN, os.X_OK), reason=SKIP_REASON)


def ask(address: str, raw: bytes) -> Response:
    """One request's bytes to ``address``; the response."""
    with connect(address) as sock:
        sock.sendall(raw)
        return Reader(sock).read_response()


def environ_of(response: Response) -> dict[str, Any]:
    """The str/bool/int values of behaviours.py's /environ dump."""
    assert response.status == 200, (response.status, response.body[:300])
    return {key: entry.get("value") for key, entry in response.json()["environ"].items()}


@pytest.fixture
def start_gunicorn(tmp_path: Path) -> Iterator[Any]:
    """start_gunicorn(app, *flags) → its address; every Gunicorn started is stopped after."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(app: str, *flags: str) -> str:
        errors = tmp_path / f"gunicorn-{len(procs)}.log"
        proc = subprocess.Popen(
            [GUNICORN, "-b", "127.0.0.1:0", "-w", "1", "--error-logfile", str(errors),
             "--no-control-socket", *flags, app],
            cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=str(APPS)),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        deadline = time.monotonic() + 30
        while True:
            text = errors.read_text() if errors.exists() else ""
            match = re.search(r"Listening at: (http://\S+) \(", text)
            if match:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"gunicorn did not start:\n{text}")
            time.sleep(0.05)  # polling interval while Gunicorn boots
        wait_ready(match.group(1))
        return match.group(1)

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(30)

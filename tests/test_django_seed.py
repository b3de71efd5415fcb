"""The seed's command line, exactly as written, against a real Django project (issue 5):

    PYTHONPATH=/etc/opt/proj:/opt/proj DJANGO_SETTINGS_MODULE=settings \\
    pronghorn --worker-class=gevent --workers=1 --log-file=LOG \\
        --bind=127.0.0.1:PORT --bind=[::1]:PORT project.wsgi:application

with one PORT for both addresses, as the seed has it (tests/test_deploying_guide.py runs the guide's
variant with a port of 0 per address). The host's settings module lives in a directory of its own
and builds on the project's, as in the seed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Server, connect, free_port_on_both_loopbacks, has_ipv6_loopback, wait_ready
from master_util import poll
from wire import Reader

pytest.importorskip("gevent", reason="the seed runs the gevent worker (pip install -e '.[test]')")
pytest.importorskip("django", reason="needs Django (pip install -e '.[test]')")

HOST_SETTINGS = """\
from project.settings import *  # noqa: F401,F403 (the project's defaults, then the host's)

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "[::1]", "localhost"]
"""


def _ask(address: str, target: str, host: str) -> tuple[int, bytes]:
    with connect(address) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        response = Reader(sock).read_response()
    return response.status, response.body


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1): "
                                                      "the seed binds [::1] too")
def test_the_seed_command_serves_django_on_both_addresses(tmp_path: Path) -> None:
    code, etc = tmp_path / "opt-proj", tmp_path / "etc-opt-proj"
    code.mkdir()
    etc.mkdir()
    django_admin = Path(sys.executable).with_name("django-admin")
    command = [str(django_admin)] if django_admin.exists() else [sys.executable, "-m", "django"]
    subprocess.run([*command, "startproject", "project", str(code)], check=True,
                   capture_output=True, timeout=120)
    (etc / "settings.py").write_text(HOST_SETTINGS)
    log = tmp_path / "pronghorn.log"
    port = free_port_on_both_loopbacks()  # the seed binds the same one twice
    server = Server(["--worker-class=gevent", "--workers=1", f"--log-file={log}",
                     f"--bind=127.0.0.1:{port}", f"--bind=[::1]:{port}", "project.wsgi:application"],
                    env={"PYTHONPATH": f"{etc}:{code}", "DJANGO_SETTINGS_MODULE": "settings"},
                    cwd=code)
    try:
        def booted() -> bool | None:
            assert server.proc.poll() is None, f"{server.output}\n{log.read_text()}"
            text = log.read_text() if log.exists() else ""
            return True if "Booting worker" in text and text.count("Listening at:") == 2 else None

        poll(booted, "the log file's Listening at and Booting worker lines", server=server)
        text = log.read_text()
        assert re.search(rf"Listening at: http://127\.0\.0\.1:{port} ", text), text
        assert re.search(rf"Listening at: http://\[::1\]:{port} ", text), text
        assert "Using worker: gevent" in text, text
        for address, host in ((f"http://127.0.0.1:{port}", "127.0.0.1"),
                              (f"http://[::1]:{port}", "[::1]")):
            wait_ready(address)
            status, body = _ask(address, "/admin/login/", host)  # Django's own page
            assert status == 200 and b"csrfmiddlewaretoken" in body, body[:500]
            assert _ask(address, "/admin/login/", "evil.example")[0] == 400  # ALLOWED_HOSTS
        assert server.stop() == 0, f"{server.output}\n{log.read_text()}"
    finally:
        server.stop()
    assert "Shutting down: Master" in log.read_text()

"""PasteDeploy: --paste INI (with --paste-global and the ini's logging) and the paste.server_runner
entry point (``use = egg:pronghorn#main``) that pserve uses, served over real sockets."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Server, free_port, wait_ready
from master_util import wait_children
from wire import get

pytest.importorskip("paste.deploy", reason="PasteDeploy is in the test extra: "
                                           "pip install -e '.[test]'")

FACTORY = '''
import logging
import os


def make_app(global_conf, greeting="hi", **local):
    where = global_conf.get("where", "-")

    def app(environ, start_response):
        logging.getLogger("pasteapp").warning("request for %s", environ["PATH_INFO"])
        body = f"{greeting} {where} {os.getppid()}".encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    return app
'''

LOGGING = '''
[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = INFO
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stdout,)
level = NOTSET
formatter = generic

[formatter_generic]
format = FROM-INI %(levelname)s [%(name)s] %(message)s
'''


def _project(tmp_path: Path, server_section: str = "") -> Path:
    (tmp_path / "pasteapp.py").write_text(FACTORY)
    ini = tmp_path / "app.ini"
    ini.write_text("[app:main]\nuse = call:pasteapp:make_app\ngreeting = hello\n\n"
                   + server_section + LOGGING)
    return ini


def test_paste_serves_the_ini_app_with_global_conf_and_the_ini_logging(tmp_path: Path) -> None:
    _project(tmp_path)
    bind = f"127.0.0.1:{free_port()}"
    server = Server(["--paste", "app.ini", "--paste-global", "where=there", "-b", bind],
                    cwd=tmp_path)
    try:
        wait_ready(f"http://{bind}")
        greeting, where, master = get(f"http://{bind}", "/x").body.decode().split()
        assert (greeting, where, master) == ("hello", "there", str(server.proc.pid))
        # The ini's [loggers] configure logging, as under Gunicorn: the app's log line has its format.
        server.wait_for_line(r"^FROM-INI WARNING \[pasteapp\] request for /x$")
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.output


def test_paste_names_a_missing_file_and_a_missing_app_section(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pronghorn", "--paste", "nope.ini"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "nope.ini' does not exist" in result.stderr
    _project(tmp_path)
    result = subprocess.run([sys.executable, "-m", "pronghorn", "--check-config", "--paste",
                             "app.ini#other"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1 and "LookupError" in result.stderr, result.stderr


SERVER_SECTION = "[server:main]\nuse = egg:pronghorn#main\nhost = 127.0.0.1\nport = {port}\n" \
                 "workers = 2\n\n"

# What pserve does with an ini file (pyramid's pserve, through plaster-pastedeploy): load the app
# and the server runner named by [server:main], and call one with the other.
PSERVE_LIKE = '''
import sys
from paste.deploy import loadapp, loadserver

uri = "config:" + sys.argv[1]
loadserver(uri, relative_to=".")(loadapp(uri, relative_to="."))
'''


def test_egg_pronghorn_main_serves_an_ini_as_pserve_starts_it(tmp_path: Path) -> None:
    port = free_port()
    _project(tmp_path, SERVER_SECTION.format(port=port))
    script = tmp_path / "pserve_like.py"
    script.write_text(PSERVE_LIKE)
    server = Server([str(tmp_path / "app.ini")], script=script, cwd=tmp_path)
    try:
        wait_ready(f"http://127.0.0.1:{port}")
        wait_children(server, server.proc.pid, 2)  # workers = 2 from [server:main]
        assert get(f"http://127.0.0.1:{port}", "/").body.decode().split()[:2] == ["hello", "-"]
        server.wait_for_line(r"^FROM-INI WARNING \[pasteapp\] request for /$")
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.output


@pytest.mark.skipif(shutil.which("pserve") is None,
                    reason="pserve comes with pyramid: pip install pyramid")
def test_pserve_serves_an_ini_with_egg_pronghorn_main(tmp_path: Path) -> None:
    port = free_port()
    _project(tmp_path, SERVER_SECTION.format(port=port))
    pserve = Path(str(shutil.which("pserve")))
    # The project's package is importable, as a pyramid project's is once installed (pserve, unlike
    # pronghorn, does not import from the current directory).
    server = Server([str(tmp_path / "app.ini")], script=pserve, cwd=tmp_path,
                    env={"PYTHONPATH": str(tmp_path)})
    try:
        wait_ready(f"http://127.0.0.1:{port}")
        assert get(f"http://127.0.0.1:{port}", "/").body.decode().startswith("hello")
    finally:
        server.stop()

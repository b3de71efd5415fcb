"""Gunicorn's embedding API under pronghorn's name: scripts written as people write them for
``gunicorn.app.base`` / ``gunicorn.app.wsgiapp``, with only the import changed, run as processes
and served over sockets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import APPS, Server, free_port, wait_ready
from master_util import Subreaper, poll, wait_children
from wire import get

# The "StandaloneApplication" found in countless projects' run scripts (Gunicorn's documentation
# has it too), with the import changed: options set only when cfg.settings knows the name, a hook
# given as an option, the app given as an object.
STANDALONE = '''
import os
import sys

from pronghorn.app.base import BaseApplication


def handler_app(environ, start_response):
    body = f"{os.environ.get('FORKED_BY_HOOK', '-')} {os.getpid()} {os.getppid()}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def post_fork(server, worker):
    os.environ["FORKED_BY_HOOK"] = f"hooked-{worker.age}"


class StandaloneApplication(BaseApplication):
    def __init__(self, app, options=None):
        self.options = options or {}
        self.application = app
        super().__init__()

    def load_config(self):
        config = {key: value for key, value in self.options.items()
                  if key in self.cfg.settings and value is not None}
        for key, value in config.items():
            self.cfg.set(key.lower(), value)

    def load(self):
        return self.application


if __name__ == "__main__":
    options = {
        "bind": sys.argv[1],
        "workers": 2,
        "worker_class": sys.argv[2],
        "post_fork": post_fork,
        "timeout": 30,
        "accesslog": None,           # None: left unset, as options dicts often say it
        "not_a_setting": "ignored",  # dropped by the cfg.settings check above
    }
    StandaloneApplication(handler_app, options).run()
'''

WSGI_APPLICATION = '''
from pronghorn.app.wsgiapp import WSGIApplication

if __name__ == "__main__":
    WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").run()
'''

WSGIAPP_RUN = '''
import sys
from pronghorn.app.wsgiapp import run

if __name__ == "__main__":
    sys.exit(run())
'''


def _script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("worker_class", ["sync", "gthread", "gevent"])
def test_a_standalone_application_script_serves_with_its_options_and_hook(
        tmp_path: Path, worker_class: str) -> None:
    if worker_class == "gevent":
        pytest.importorskip("gevent", reason="the gevent worker needs gevent (the test extra)")
    script = _script(tmp_path, "serve.py", STANDALONE)
    bind = f"127.0.0.1:{free_port()}"
    address = f"http://{bind}"
    server = Server([bind, worker_class], script=script, cwd=tmp_path)
    try:
        server.wait_for_line(rf"Listening at: {address} \({server.proc.pid}\)")
        server.wait_for_line(f"Using worker: {worker_class}")
        wait_ready(address)
        workers = wait_children(server, server.proc.pid, 2)  # workers = 2, from cfg.set
        hooked, pid, parent = get(address, "/").body.decode().split()
        assert hooked.startswith("hooked-")  # post_fork, set with cfg.set, ran in the worker
        assert int(pid) in workers and int(parent) == server.proc.pid
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.output


def test_standalone_cfg_reads_back_what_was_set_as_gunicorns_cfg_does() -> None:
    from pronghorn.app.base import BaseApplication

    seen: dict[str, object] = {}

    class Reader(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("workers", 3)
            self.cfg.set("bind", "127.0.0.1:9999")
            self.cfg.set("keepalive", "7")
            self.cfg.set("sendfile", False)  # a Gunicorn setting accepted with a harmless value
            seen["workers"] = self.cfg.workers
            seen["settings"] = self.cfg.settings["workers"].value
            seen["get"] = self.cfg.settings["bind"].get()
            seen["keepalive"] = self.cfg.keepalive
            seen["timeout"] = self.cfg.timeout  # a default
            seen["hook"] = "post_fork" in self.cfg.settings and "wsgi_app" in self.cfg.settings
            seen["class"] = self.cfg.worker_class_str
            try:
                self.cfg.set("no_such_setting", 1)
            except AttributeError as exc:
                seen["unknown"] = str(exc)

        def load(self) -> object:
            return None

    cfg = Reader().build_config()
    assert seen == {"workers": 3, "settings": 3, "get": ["127.0.0.1:9999"], "keepalive": 7.0,
                    "timeout": 30.0, "hook": True, "class": "sync",
                    "unknown": "No configuration setting for: no_such_setting"}
    assert cfg.workers == 3 and cfg.bind == ["127.0.0.1:9999"]
    assert cfg.sources["workers"] == "application (cfg.set)"


def test_embedding_cfg_is_the_hooks_view_and_none_unsets_to_the_environments_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from pronghorn.app.base import BaseApplication
    from pronghorn.config import GunicornConfig

    monkeypatch.setenv("WEB_CONCURRENCY", "5")
    seen: dict[str, object] = {}

    class Setter(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("workers", 3)
            self.cfg.set("workers", None)  # unset: WEB_CONCURRENCY's default again
            seen["workers"] = (self.cfg.workers, self.cfg.sources["workers"])
            self.cfg.set("raw_paste_global_conf", ["where=there"])
            seen["paste"] = self.cfg.paste_global_conf
            try:
                self.cfg.set("dirty_workers", 2)
            except ValueError as exc:
                seen["unsupported"] = "not support yet" in str(exc)

        def load(self) -> object:
            return None

    app = Setter("usage text", "myprog")
    assert isinstance(app.cfg, GunicornConfig)
    assert (app.cfg.usage, app.cfg.prog) == ("usage text", "myprog")
    assert seen == {"workers": (5, "WEB_CONCURRENCY"), "paste": {"where": "there"},
                    "unsupported": True}
    assert app.build_config() is app.cfg.pronghorn_config


def test_a_bad_option_stops_the_script_with_gunicorns_error_and_status_1(tmp_path: Path) -> None:
    script = _script(tmp_path, "serve.py", STANDALONE.replace('"workers": 2', '"workers": "two"'))
    result = subprocess.run([sys.executable, str(script), "127.0.0.1:0", "sync"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "Error: workers: 'two' is not an integer" in result.stderr


@pytest.mark.parametrize("text", [WSGI_APPLICATION, WSGIAPP_RUN], ids=["WSGIApplication", "run"])
def test_wsgiapplication_reads_the_command_line_and_config_file_as_pronghorn_does(
        tmp_path: Path, text: str) -> None:
    script = _script(tmp_path, "main.py", text)
    (tmp_path / "gunicorn.conf.py").write_text(
        "workers = 2\n"
        "def post_fork(server, worker):\n"
        "    import os\n"
        "    os.environ['FORKED_BY_HOOK'] = 'from-config-file'\n")
    bind = f"127.0.0.1:{free_port()}"
    address = f"http://{bind}"
    server = Server(["-b", bind, "master_app:app"], script=script, cwd=tmp_path,
                    env={"PYTHONPATH": str(APPS)})
    try:
        wait_ready(address)
        wait_children(server, server.proc.pid, 2)
        assert get(address, "/ppid").body.split()[1] == str(server.proc.pid).encode()
    finally:
        server.stop()
    assert server.proc.returncode == 0, server.output


def test_wsgiapplication_without_an_app_says_so(tmp_path: Path) -> None:
    script = _script(tmp_path, "main.py", WSGI_APPLICATION)
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "MODULE[:CALLABLE]" in result.stderr


def test_usr2_starts_the_embedding_script_again_on_the_same_socket(tmp_path: Path) -> None:
    script = _script(tmp_path, "serve.py", STANDALONE)
    bind = f"127.0.0.1:{free_port()}"
    address = f"http://{bind}"
    with Subreaper() as reaper:
        server = Server([bind, "sync"], script=script, cwd=tmp_path)
        try:
            wait_ready(address)
            old = server.proc.pid
            wait_children(server, old, 2)
            os.kill(old, signal.SIGUSR2)
            new = int(server.wait_for_line(r"Started a new master \(pid (\d+)\)").group(1))
            reaper.adopt(new)
            # The new master is this script again (not "python -m pronghorn"), on the same socket.
            server.wait_for_line(rf"Listening at: {address} \({new}\)")
            cmdline = Path(f"/proc/{new}/cmdline").read_bytes().split(b"\0")
            assert cmdline[1] == str(script).encode(), cmdline
            new_workers = wait_children(server, new, 2)
            os.kill(old, signal.SIGTERM)
            assert server.proc.wait(timeout=30) == 0, server.output
            served_by = poll(lambda: (lambda pid: pid if pid in new_workers else None)(
                int(get(address, "/").body.split()[1])), "a request served by the new master",
                server=server)
            assert served_by in new_workers
            os.kill(new, signal.SIGTERM)
            assert reaper.wait(new) == 0, server.output
        finally:
            server.stop()

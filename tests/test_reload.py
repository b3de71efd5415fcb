"""--reload: the master watches the application's files and replaces the workers on a change.

Real servers run in a temporary directory that holds the app; the tests edit its files and poll the
server until the answers change (a guard timeout, never a sleep for the outcome). Every edit moves the
file's mtime on by two seconds, so that neither the poll engine nor Python's bytecode cache can miss
an edit made within the same second. Both engines run: poll always, watchfiles when it is installed.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Server
from wire import Incomplete, Response, get

from pronghorn.master.reloader import (
    FileWatcher, engine_problem, error_app, failure_files, iter_sources, watch_roots,
)

try:
    import watchfiles  # noqa: F401
except ImportError:
    HAVE_WATCHFILES = False
else:
    HAVE_WATCHFILES = True

ENGINES = ["poll", pytest.param("watchfiles", marks=pytest.mark.skipif(
    not HAVE_WATCHFILES, reason="watchfiles is not installed"))]

APP = '''\
import os

MESSAGE = {message!r}


def application(environ, start_response):
    body = f"{{MESSAGE}} pid={{os.getpid()}}".encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
'''


def edit(path: Path, text: str) -> None:
    """Write ``text`` and move the mtime at least two seconds past the previous one."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    later = max(before + 2_000_000_000, path.stat().st_mtime_ns)
    os.utime(path, ns=(later, later))


def write_app(directory: Path, message: str) -> Path:
    path = directory / "app.py"
    edit(path, APP.format(message=message))
    return path


def poll(address: str, check, timeout: float = 30.0) -> Response:  # type: ignore[no-untyped-def]
    """GET / until ``check(response)`` holds; the timeout is a guard, not a wait."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = get(address, "/")
        except (OSError, Incomplete) as exc:
            last = exc
        else:
            if check(last):
                return last  # type: ignore[return-value]
        time.sleep(0.05)  # polling interval, not a wait for an outcome
    raise AssertionError(f"no matching answer in {timeout} s; the last was {last!r}")


def says(text: str):  # type: ignore[no-untyped-def]
    return lambda r: r.status == 200 and r.body.startswith(text.encode() + b" ")


def pid_of(response: Response) -> int:
    match = re.search(rb"pid=(\d+)", response.body)
    assert match, response.body
    return int(match.group(1))


def start_reloading(start_server, cwd: Path, engine: str, *flags: str,  # type: ignore[no-untyped-def]
                    app: str = "app:application", env: dict[str, str] | None = None
                    ) -> tuple[Server, str]:
    server, (address,) = start_server(app, "--reload", "--reload-engine", engine, *flags,
                                      cwd=cwd, env=env)
    # Edits made before the watcher is in place would be missed: wait until it says it is.
    server.wait_for_line(rf"Reloader \({engine}\) watching")
    return server, address


# -- servers ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_an_edit_reloads_the_app(start_server, tmp_path: Path, engine: str) -> None:  # type: ignore[no-untyped-def]
    app = write_app(tmp_path, "first")
    server, address = start_reloading(start_server, tmp_path, engine, "-w", "2")
    assert says("first")(get(address, "/"))
    write_app(tmp_path, "second")
    poll(address, says("second"))
    server.wait_for_line(rf"Reloading: {re.escape(str(app))} changed")
    assert server.proc.poll() is None
    # Only the app's code was reloaded: the configuration (two workers) is the one it started with.
    assert "Handling signal: hup" not in server.output
    assert server.stop() == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_a_syntax_error_serves_the_traceback_until_fixed(start_server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                         engine: str) -> None:
    app = write_app(tmp_path, "first")
    server, address = start_reloading(start_server, tmp_path, engine)
    # The page is text/plain (and nosniff): markup in the traceback is shown as it is, never run.
    edit(app, APP.format(message="broken") + "\ndef oops(<b>):\n    pass\n")
    broken = poll(address, lambda r: r.status == 500)
    body = broken.body.decode()
    assert "SyntaxError" in body
    assert str(app) in body
    assert "def oops(<b>):" in body
    assert broken.header("content-type") == "text/plain; charset=utf-8"
    assert broken.header("x-content-type-options") == "nosniff"
    # Every request gets the page, and the server keeps running.
    for _ in range(3):
        assert get(address, "/anything").status == 500
    assert server.proc.poll() is None
    server.wait_for_line(r"Serving the traceback as a 500 page")
    write_app(tmp_path, "fixed")
    poll(address, says("fixed"))
    assert server.proc.poll() is None
    assert server.stop() == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_an_extra_file_reloads(start_server, tmp_path: Path, engine: str) -> None:  # type: ignore[no-untyped-def]
    template = tmp_path / "page.tmpl"
    edit(template, "hello")
    edit(tmp_path / "app.py", APP.replace(
        "MESSAGE = {message!r}", "MESSAGE = open('page.tmpl').read()").format())
    server, address = start_reloading(start_server, tmp_path, engine,
                                      "--reload-extra-file", "page.tmpl")
    first = get(address, "/")
    assert says("hello")(first)
    boots = server.output.count("Booting worker")
    edit(template, "goodbye")
    second = poll(address, says("goodbye"))
    assert pid_of(second) != pid_of(first)
    server.wait_for_line(rf"Reloading: {re.escape(str(template))} changed")
    assert server.output.count("Booting worker") > boots
    assert server.stop() == 0


def test_an_extra_file_glob_matches_files_created_later(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_app(tmp_path, "first")
    server, address = start_reloading(start_server, tmp_path, "poll",
                                      "--reload-extra-file", "templates/**/*.html")
    server.wait_for_line(r"--reload-extra-file .*templates/\*\*/\*\.html matches nothing yet")
    first = get(address, "/")
    (tmp_path / "templates" / "blog").mkdir(parents=True)
    edit(tmp_path / "templates" / "blog" / "post.html", "<p>new</p>")
    server.wait_for_line(r"Reloading: .*post\.html changed")
    poll(address, lambda r: r.status == 200 and pid_of(r) != pid_of(first))
    assert server.stop() == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_a_broken_app_at_start_serves_the_traceback(start_server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                    engine: str) -> None:
    app = tmp_path / "app.py"
    edit(app, "BROKEN = 1 / 0\n")
    server, address = start_reloading(start_server, tmp_path, engine)
    page = poll(address, lambda r: r.status == 500)
    assert b"ZeroDivisionError: division by zero" in page.body
    assert b'app.py", line 1' in page.body
    assert "Worker failed to boot" not in server.output
    write_app(tmp_path, "working")
    poll(address, says("working"))
    assert server.proc.poll() is None
    assert server.stop() == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_a_broken_module_outside_the_roots_is_watched(start_server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                      engine: str) -> None:
    """The worker names the failing file to the master, which watches it although it is not under
    the current directory (it is found through the PYTHONPATH variable)."""
    project, lib = tmp_path / "project", tmp_path / "lib"
    project.mkdir()
    lib.mkdir()
    edit(project / "app.py", APP.replace("MESSAGE = {message!r}", "from helper import MESSAGE")
         .format())
    helper = lib / "helper.py"
    edit(helper, "MESSAGE = (\n")
    server, address = start_reloading(start_server, project, engine, env={"PYTHONPATH": str(lib)})
    page = poll(address, lambda r: r.status == 500)
    assert b"SyntaxError" in page.body and b"helper.py" in page.body
    server.wait_for_line(rf"Reloader: also watching {re.escape(str(helper))}")
    edit(helper, "MESSAGE = 'helped'\n")
    poll(address, says("helped"))
    assert server.stop() == 0


def test_hup_keeps_reloading_and_preload_is_ignored(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_app(tmp_path, "first")
    server, address = start_reloading(start_server, tmp_path, "poll", "--preload")
    server.wait_for_line(r"--preload is ignored with --reload")
    first = get(address, "/")
    server.proc.send_signal(signal.SIGHUP)
    poll(address, lambda r: says("first")(r) and pid_of(r) != pid_of(first))
    assert server.output.count("Reloader (poll) watching") == 1  # the same watcher carries on
    write_app(tmp_path, "after hup")
    poll(address, says("after hup"))
    assert server.stop() == 0


def test_without_reload_a_broken_app_stops_the_server(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    edit(tmp_path / "app.py", "def broken(:\n")
    server, _ = start_server("app:application", cwd=tmp_path, ready=False)
    assert server.proc.wait(timeout=30) == 3  # the guard: it must stop by itself


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None
         ) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "pronghorn", *args], capture_output=True,
                          text=True, timeout=30, env=full_env, cwd=cwd)


@pytest.fixture
def no_watchfiles(tmp_path: Path) -> dict[str, str]:
    """An environment in which ``import watchfiles`` fails, installed or not."""
    shim = tmp_path / "shim" / "watchfiles"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('No module named watchfiles')\n")
    return {"PYTHONPATH": str(tmp_path / "shim")}


def test_watchfiles_engine_without_watchfiles_is_a_one_line_error(tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                  no_watchfiles) -> None:
    write_app(tmp_path, "first")
    result = _run("--reload", "--reload-engine", "watchfiles", "-b", "127.0.0.1:0",
                  "app:application", env=no_watchfiles, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "pip install watchfiles" in lines[0]


def test_auto_engine_without_watchfiles_polls(start_server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                              no_watchfiles) -> None:
    write_app(tmp_path, "first")
    server, (address,) = start_server("app:application", "--reload", cwd=tmp_path,
                                      env=no_watchfiles)
    server.wait_for_line(r"Reloader \(poll\) watching")
    write_app(tmp_path, "second")
    poll(address, says("second"))


def test_an_unknown_engine_is_a_usage_error(tmp_path: Path) -> None:
    result = _run("--reload", "--reload-engine", "fsevents", "app:application", cwd=tmp_path)
    assert result.returncode == 2
    assert "--reload-engine" in result.stderr and "'fsevents'" in result.stderr


# -- the watcher, in process -----------------------------------------------------------------------------

def _tree(root: Path) -> None:
    for name in ("app.py", "pkg/__init__.py", "pkg/deep/mod.py", ".hidden/x.py", "pkg/.dot.py",
                 "__pycache__/c.py", "venv/lib/v.py", "node_modules/n.py", "lib/site-packages/s.py",
                 "notes.txt", "pkg/data.json"):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n")
    (root / "venv" / "pyvenv.cfg").write_text("home = /usr\n")


def test_what_is_watched(tmp_path: Path) -> None:
    _tree(tmp_path)
    found = {os.path.relpath(path, tmp_path) for path, _ in iter_sources(str(tmp_path))}
    assert found == {"app.py", "pkg/__init__.py", "pkg/deep/mod.py"}
    watcher = FileWatcher([str(tmp_path)], [], "poll", logging.getLogger("test"))
    try:
        for path in tmp_path.rglob("*"):
            if path.is_file():
                assert watcher.covers(str(path)) == (os.path.relpath(path, tmp_path) in found), path
    finally:
        watcher.stop()


def test_poll_engine_changes(tmp_path: Path) -> None:
    _tree(tmp_path)
    extra = tmp_path / "settings.toml"
    watcher = FileWatcher([str(tmp_path)], [str(extra)], "poll", logging.getLogger("test"),
                          poll_interval=0)
    try:
        watcher.start()
        assert watcher.changed() == []
        edit(tmp_path / "pkg" / "deep" / "mod.py", "x = 2\n")
        edit(tmp_path / "venv" / "lib" / "v.py", "x = 2\n")  # skipped
        edit(tmp_path / "notes.txt", "not python\n")  # skipped
        assert watcher.changed() == [str(tmp_path / "pkg" / "deep" / "mod.py")]
        assert watcher.changed() == []
        edit(tmp_path / "new.py", "")
        (tmp_path / "app.py").unlink()
        assert watcher.changed() == sorted([str(tmp_path / "new.py"), str(tmp_path / "app.py")])
        edit(extra, "appeared = true\n")  # an extra file that did not exist at first
        assert watcher.changed() == [str(extra)]
    finally:
        watcher.stop()


def test_watch_roots_are_the_directory_and_pythonpath(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "src").mkdir()
    monkeypatch.chdir(tmp_path)

    class Cfg:
        pythonpath = "src,missing,src"

    assert watch_roots(Cfg()) == [str(tmp_path), str(tmp_path / "src")]


def test_engine_names() -> None:
    assert engine_problem("poll", True) is None
    assert engine_problem("auto", True) is None
    assert engine_problem("nope", False) == ("name", "'nope' is not one of auto, poll, watchfiles")
    # Gunicorn's name for its native engine is accepted.
    assert engine_problem("inotify", False) is None


def test_failure_files_and_error_page(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n")
    try:
        compile(broken.read_text(), str(broken), "exec")
    except SyntaxError as exc:
        # The SyntaxError's file first, then the traceback's own (this test's file).
        assert failure_files(exc) == [str(broken), __file__]
    app = error_app("Traceback: <script>")
    seen = {}

    def start_response(status, headers):  # type: ignore[no-untyped-def]
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app({}, start_response))
    assert seen["status"] == "500 Internal Server Error"
    assert seen["headers"]["Content-Type"] == "text/plain; charset=utf-8"
    assert int(seen["headers"]["Content-Length"]) == len(body)
    assert b"Traceback: <script>" in body

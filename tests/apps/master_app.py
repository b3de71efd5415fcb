"""The app the master tests drive: one route per thing a test needs to see from inside a worker.

Import-time behaviour is chosen by environment variables, so that re-importing (HUP), importing once
(--preload) and crashing right after boot can be observed:

- MASTER_APP_VALUE_FILE: read once at import; /value answers with what it held then.
- MASTER_APP_IMPORT_LOG: the importing process appends its pid to this file.
- MASTER_APP_CRASH: a timer thread started at import kills the process with exit code 7.

Only modules a worker has loaded anyway are imported here (os, time, threading): the tests that
run workers as ``nobody`` need an app that does not read the Python installation after the switch.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Iterable

StartResponse = Callable[..., Any]

_value_file = os.environ.get("MASTER_APP_VALUE_FILE")
VALUE = open(_value_file).read().strip() if _value_file else ""

_import_log = os.environ.get("MASTER_APP_IMPORT_LOG")
if _import_log:
    with open(_import_log, "a") as _handle:
        _handle.write(f"{os.getpid()}\n")

if os.environ.get("MASTER_APP_CRASH"):
    threading.Timer(0.05, os._exit, (7,)).start()


def _query(environ: dict[str, Any]) -> dict[str, str]:
    pairs = (item.partition("=") for item in environ.get("QUERY_STRING", "").split("&") if item)
    return {key: value for key, _, value in pairs}


def _text(start_response: StartResponse, text: str, status: str = "200 OK") -> Iterable[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _wait_for_file(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """?file=PATH: log "waiting PATH", then answer once PATH exists (a request held in flight
    until the test lets it go; gives up after 60 s)."""
    path = _query(environ)["file"]
    environ["wsgi.errors"].write(f"waiting {path}\n")
    environ["wsgi.errors"].flush()
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return _text(start_response, "released")


def _block(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """A request stuck for a minute: the heartbeat stops, the master must kill us."""
    time.sleep(60)
    return _text(start_response, "woke up")


def _log(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """?marker=M: one line "marker M" in the error log, from this worker."""
    environ["wsgi.errors"].write(f"marker {_query(environ).get('marker', '')}\n")
    environ["wsgi.errors"].flush()
    return _text(start_response, str(os.getpid()))


def _write(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """?path=P: create the file P the way an app usually does (open(P, "w"): the mode is left to
    the process umask)."""
    with open(_query(environ)["path"], "w") as handle:
        handle.write("written by the app\n")
    return _text(start_response, "written")


def _ids(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """uid gid euid egid groups(comma-separated) and whether setuid(0) was refused."""
    try:
        os.setuid(0)
        regained = "root-regained"
    except PermissionError:
        regained = "root-refused"
    groups = ",".join(str(g) for g in sorted(os.getgroups()))
    text = (f"{os.getuid()} {os.getgid()} {os.geteuid()} {os.getegid()} {groups or '-'} "
            f"{regained}")
    return _text(start_response, text)


def _env(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    name = _query(environ)["name"]
    return _text(start_response, os.environ.get(name, "<unset>"))


def _orphan(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Double fork: the grandchild outlives its parent and is re-parented to PID 1 (or the nearest
    subreaper), where it exits and stays a zombie unless that process reaps it. Answers with the
    grandchild's pid."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        grandchild = os.fork()
        if grandchild == 0:
            os.close(write_end)
            time.sleep(0.2)  # exit after the parent: an orphan by then
            os._exit(0)
        os.write(write_end, str(grandchild).encode())
        os._exit(0)
    os.close(write_end)
    text = b""
    while True:
        piece = os.read(read_end, 64)
        if not piece:
            break
        text += piece
    os.close(read_end)
    os.waitpid(child, 0)
    return _text(start_response, text.decode())


def _zombies(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The pids in state Z in this /proc (this PID namespace when /proc was mounted for it)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state == "Z":
            found.append(name)
    return _text(start_response, ",".join(sorted(found)) or "-")


def _state(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """?pid=N: the state letter of process N in this /proc (Z for a zombie), or "gone"."""
    try:
        with open(f"/proc/{int(_query(environ)['pid'])}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        state = "gone"
    return _text(start_response, state)


ROUTES: dict[str, Callable[[dict[str, Any], StartResponse], Iterable[bytes]]] = {
    "/pid": lambda environ, start_response: _text(start_response, str(os.getpid())),
    "/ppid": lambda environ, start_response: _text(start_response,
                                                   f"{os.getpid()} {os.getppid()}"),
    "/value": lambda environ, start_response: _text(start_response, VALUE),
    "/cwd": lambda environ, start_response: _text(start_response, os.getcwd()),
    "/wait": _wait_for_file,
    "/block": _block,
    "/log": _log,
    "/ids": _ids,
    "/write": _write,
    "/env": _env,
    "/orphan": _orphan,
    "/zombies": _zombies,
    "/state": _state,
    "/raise": lambda environ, start_response: 1 / 0,  # type: ignore[dict-item]
}


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    handler = ROUTES.get(environ["PATH_INFO"])
    if handler is None:
        return _text(start_response, "ok " + environ["PATH_INFO"])
    return handler(environ, start_response)


application = app

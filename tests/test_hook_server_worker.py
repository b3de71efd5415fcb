"""The ``server`` and ``worker`` objects hooks receive, and ``server.cfg``: Gunicorn's attributes and
methods with Gunicorn's meaning.

One config file's every hook describes what it was given (each attribute's kind) into a file; it runs
under pronghorn and, when installed, under Gunicorn, and the two descriptions must agree. Then hooks
act on the master: kill_worker, reload, stop, halt and setting num_workers, from inside the master's
loop (the nworkers_changed hook, run by TTIN); and worker_tmp_dir puts the heartbeat file where
Gunicorn puts it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import APPS, exchange, wait_ready
from master_util import children, poll, wait_gone

GUNICORN = os.environ.get("GUNICORN", "/tmp/gvenv/bin/gunicorn")
NEEDS_GUNICORN = pytest.mark.skipif(
    not os.access(GUNICORN, os.X_OK),
    reason=f"no Gunicorn at {GUNICORN} (python3 -m venv /tmp/gvenv && /tmp/gvenv/bin/pip install "
           "gunicorn, or set GUNICORN)")

# What real hooks read and call (issue 16), and the rest of Gunicorn's Arbiter and Worker.
SERVER_ATTRS = ("address", "cfg", "app", "pid", "master_pid", "reexec_pid", "num_workers", "WORKERS",
                "LISTENERS", "timeout", "proc_name", "log", "pidfile", "worker_class",
                "kill_worker", "reload", "reexec", "stop", "halt", "wakeup")
WORKER_ATTRS = ("age", "pid", "ppid", "sockets", "app", "wsgi", "cfg", "log", "timeout", "booted",
                "aborted", "alive", "nr", "max_requests", "tmp", "notify")
CFG_ATTRS = ("settings", "set", "env", "env_orig", "worker_class_str", "worker_class", "address",
             "uid", "gid", "is_ssl", "ssl_options", "proc_name", "sendfile", "bind", "workers",
             "timeout", "raw_env", "reuse_port", "post_fork")

CONF = '''
import collections.abc
import json
import os
import signal

_RECORD = {record!r}
_ACTION = {action!r}
workers = 2
timeout = 30
graceful_timeout = 5
raw_env = ["HOOKS_TEST=yes"]


def _kind(value):
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, collections.abc.Mapping):
        return "mapping"
    if isinstance(value, type):
        return "class"
    if callable(value):
        return "callable"
    return "object"


def _describe(obj, names):
    return {{name: _kind(getattr(obj, name, None)) for name in names}}


def _write(hook, **fields):
    fields.update(hook=hook, process=os.getpid())
    with open(_RECORD, "a") as handle:
        handle.write(json.dumps(fields, sort_keys=True) + "\\n")


def _server(server):
    cfg = server.cfg
    return {{
        "server": _describe(server, {server_attrs!r}),
        "cfg": _describe(cfg, {cfg_attrs!r}),
        "settings": {{name: _kind(setting.value) for name, setting in cfg.settings.items()}},
        "setting_get": cfg.settings["workers"].get(),
        "env": cfg.env,
        "env_orig_has_test": "HOOKS_TEST" in cfg.env_orig,
        "worker_class_str": cfg.worker_class_str,
        "address_is_cfg": server.address == cfg.address,
        "workers_known": sorted(server.WORKERS),
        "listener_fds": [sock.fileno() for sock in server.LISTENERS],
        "app_cfg": _kind(server.app.cfg), "app_wsgi": _kind(server.app.wsgi),
    }}


def _worker(worker, beat=True):
    found = {{"worker": _describe(worker, {worker_attrs!r}), "id": id(worker),
              "worker_pid": worker.pid, "booted": worker.booted, "alive": worker.alive,
              "timeout": worker.timeout, "cfg_workers": worker.cfg.workers,
              "tmp": _describe(worker.tmp, ("notify", "last_update", "fileno", "close")),
              "sockets": [hasattr(sock, "fileno") for sock in worker.sockets]}}
    if beat and isinstance(worker.pid, int) and worker.pid == os.getpid():
        worker.notify()
        found["silent"] = 0 <= __import__("time").monotonic() - worker.tmp.last_update() < 5
    return found


def on_starting(server):
    _write("on_starting", **_server(server))


def when_ready(server):
    _write("when_ready", **_server(server))


def pre_fork(server, worker):
    _write("pre_fork", **_server(server), **_worker(worker))


def post_fork(server, worker):
    _write("post_fork", **_server(server), **_worker(worker))


def post_worker_init(worker):
    _write("post_worker_init", **_worker(worker), wsgi=_kind(worker.wsgi),
           same_app=worker.wsgi is worker.app.wsgi())


def pre_request(worker, req):
    _write("pre_request", **_worker(worker))


def post_request(worker, req, environ, resp):
    _write("post_request", **_worker(worker), nr=worker.nr)


def worker_exit(server, worker):
    # (worker.tmp is closed by then, as in Gunicorn: no notify())
    _write("worker_exit", **_server(server), **_worker(worker, beat=False))


def child_exit(server, worker):
    _write("child_exit", **_worker(worker))


def on_reload(server):
    _write("on_reload", workers_known=sorted(server.WORKERS))


def nworkers_changed(server, new_value, old_value):
    _write("nworkers_changed", new=new_value, old=old_value)
    if old_value is None or not os.path.exists(_ACTION):
        return
    with open(_ACTION) as handle:
        action = handle.read().split()
    if action[0] == "kill":
        for pid in sorted(server.WORKERS):
            server.kill_worker(pid, signal.SIGTERM)
        _write("killed", pids=sorted(server.WORKERS))
    elif action[0] == "reload":
        server.reload()
    elif action[0] == "stop":
        server.stop()
    elif action[0] == "halt":
        server.halt("a hook halted it", int(action[1]))
    elif action[0] == "num_workers" and new_value != int(action[1]):
        server.num_workers = int(action[1])
    os.unlink(_ACTION)


def on_exit(server):
    _write("on_exit", num_workers=server.num_workers)
'''


def _conf(tmp_path: Path) -> tuple[Path, Path, Path]:
    record, action = tmp_path / "record.jsonl", tmp_path / "action"
    conf = tmp_path / "hooks.conf.py"
    conf.write_text(CONF.format(record=str(record), action=str(action),
                                server_attrs=SERVER_ATTRS, worker_attrs=WORKER_ATTRS,
                                cfg_attrs=CFG_ATTRS))
    return conf, record, action


def _records(record: Path, hook: str | None = None) -> list[dict[str, Any]]:
    if not record.exists():
        return []
    lines = [json.loads(line) for line in record.read_text().splitlines() if line.strip()]
    return [line for line in lines if hook is None or line["hook"] == hook]


def _start(command: list[str], conf: Path, sock: Path, *flags: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(APPS), PYTHONUNBUFFERED="1")
    env.pop("HOOKS_TEST", None)
    return subprocess.Popen([*command, "-c", str(conf), "-b", f"unix:{sock}", *flags,
                             "master_app:app"], env=env, cwd=str(conf.parent),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _serve_once(proc: subprocess.Popen[bytes], sock: Path, record: Path) -> None:
    poll(lambda: len(_records(record, "post_worker_init")) >= 2 or proc.poll() is not None,
         "two workers booted")
    assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
    address = f"unix:{sock}"
    wait_ready(address)
    reply = exchange(address, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200"), reply
    poll(lambda: _records(record, "post_request"), "post_request")


def _run(command: list[str], tmp_path: Path, tag: str) -> dict[str, list[dict[str, Any]]]:
    directory = tmp_path / tag
    directory.mkdir()
    conf, record, _ = _conf(directory)
    sock = directory / "s.sock"
    proc = _start(command, conf, sock)
    try:
        _serve_once(proc, sock, record)
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
    assert _records(record, "on_exit"), output
    by_hook: dict[str, list[dict[str, Any]]] = {}
    for line in _records(record):
        by_hook.setdefault(line["hook"], []).append(line)
    return by_hook


PRONGHORN = [sys.executable, "-m", "pronghorn"]


def test_hooks_see_gunicorns_server_and_worker(tmp_path: Path) -> None:
    seen = _run(PRONGHORN, tmp_path, "pronghorn")
    every = {"on_starting", "when_ready", "pre_fork", "post_fork", "post_worker_init",
             "pre_request", "post_request", "worker_exit", "child_exit", "on_exit"}
    assert every <= set(seen), sorted(seen)
    for hook in ("on_starting", "when_ready", "pre_fork", "post_fork", "worker_exit"):
        for line in seen[hook]:
            assert "none" not in {kind for name, kind in line["server"].items()
                                  if name not in ("pidfile",)}, (hook, line["server"])
            assert line["env"] == {"HOOKS_TEST": "yes"}
            assert not line["env_orig_has_test"]
            assert line["worker_class_str"] == "sync"
            assert line["address_is_cfg"]
            assert line["setting_get"] == 2
    # pre_fork: the worker exists, its pid does not yet; post_fork and the worker's own hooks see
    # that same object (its address survives the fork), and the master's child_exit its copy.
    pre_fork = seen["pre_fork"]
    assert all(line["worker_pid"] == "[booting]" and line["booted"] is False for line in pre_fork)
    ids = {line["id"] for line in pre_fork}
    for hook in ("post_fork", "post_worker_init", "pre_request", "post_request", "worker_exit",
                 "child_exit"):
        assert {line["id"] for line in seen[hook]} <= ids, hook
    for line in seen["post_worker_init"]:
        assert line["worker_pid"] == line["process"] and line["booted"] is False
        assert line["wsgi"] == "callable" and line["same_app"]
        assert line["silent"] and line["sockets"] == [True] and line["timeout"] == 15
    assert seen["pre_request"][0]["booted"] is True and seen["post_request"][0]["nr"] == 0
    assert all(line["alive"] is False for line in seen["worker_exit"])  # they were sent TERM
    assert seen["when_ready"][0]["listener_fds"]


@NEEDS_GUNICORN
def test_hook_objects_have_gunicorns_attribute_kinds(tmp_path: Path) -> None:
    ours = _run(PRONGHORN, tmp_path, "pronghorn")
    theirs = _run([GUNICORN], tmp_path, "gunicorn")
    for hook in ("on_starting", "when_ready", "pre_fork", "post_fork", "post_worker_init",
                 "pre_request", "post_request", "worker_exit", "child_exit"):
        mine, gunicorns = ours[hook][0], theirs[hook][0]
        for part in ("server", "cfg", "worker", "tmp"):
            if part in gunicorns:
                assert mine[part] == gunicorns[part], (hook, part)
        if "settings" in gunicorns:
            # Every Gunicorn setting is there, as the same kind of value.
            missing = set(gunicorns["settings"]) - set(mine["settings"])
            assert not missing, sorted(missing)
            # control_socket: None, pronghorn's default (Gunicorn's is a path).
            differ = {name: (mine["settings"][name], kind)
                      for name, kind in gunicorns["settings"].items()
                      if mine["settings"][name] != kind and name != "control_socket"}
            assert not differ, (hook, differ)
        for key in ("env", "env_orig_has_test", "worker_class_str", "address_is_cfg",
                    "setting_get", "worker_pid", "booted", "alive", "timeout", "cfg_workers"):
            if key in gunicorns and key != "worker_pid":
                assert mine[key] == gunicorns[key], (hook, key)
        if hook == "pre_fork":
            assert mine["worker_pid"] == gunicorns["worker_pid"]


# -- hooks acting on the master, from inside its loop ---------------------------------------------

def _serving(tmp_path: Path, *flags: str) -> tuple[subprocess.Popen[bytes], Path, Path, Path]:
    conf, record, action = _conf(tmp_path)
    sock = tmp_path / "s.sock"
    proc = _start(PRONGHORN, conf, sock, *flags)
    _serve_once(proc, sock, record)
    return proc, sock, record, action


def _act(proc: subprocess.Popen[bytes], action: Path, what: str) -> None:
    action.write_text(what)
    os.kill(proc.pid, signal.SIGTTIN)  # runs nworkers_changed, which does what the file says
    poll(lambda: not action.exists() or proc.poll() is not None, f"the hook to {what}")


def _stop(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=30)[0].decode()


def test_a_hook_kills_workers_and_they_are_replaced(tmp_path: Path) -> None:
    proc, sock, record, action = _serving(tmp_path)
    try:
        _act(proc, action, "kill")
        killed = _records(record, "killed")[0]["pids"]
        assert len(killed) == 2  # the hook runs as TTIN raises the count, before the third forks
        for pid in killed:
            wait_gone(pid)
        poll(lambda: len(children(proc.pid) - set(killed)) == 3, "three new workers")
        wait_ready(f"unix:{sock}")
        assert exchange(f"unix:{sock}", b"GET / HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200")
        assert proc.poll() is None
    finally:
        output = _stop(proc)
    assert "exited with code" not in output and "keep dying" not in output, output


def test_a_hook_reloads(tmp_path: Path) -> None:
    proc, sock, record, action = _serving(tmp_path)
    try:
        before = children(proc.pid)
        _act(proc, action, "reload")
        poll(lambda: _records(record, "on_reload"), "on_reload")
        poll(lambda: not (children(proc.pid) & before) and len(children(proc.pid)) == 2,
             "the workers replaced by two new ones")
    finally:
        _stop(proc)


def test_a_hook_sets_num_workers(tmp_path: Path) -> None:
    proc, sock, record, action = _serving(tmp_path)
    try:
        _act(proc, action, "num_workers 4")
        poll(lambda: len(children(proc.pid)) == 4, "four workers")
        changes = [(line["new"], line["old"]) for line in _records(record, "nworkers_changed")]
        assert changes == [(2, None), (3, 2), (4, 3)]
    finally:
        _stop(proc)


def test_a_hook_stops_the_server(tmp_path: Path) -> None:
    proc, sock, record, action = _serving(tmp_path)
    action.write_text("stop")
    os.kill(proc.pid, signal.SIGTTIN)
    assert proc.wait(30) == 0
    assert _records(record, "on_exit")
    assert not sock.exists()


def test_a_hook_halts_the_server_with_its_status(tmp_path: Path) -> None:
    proc, sock, record, action = _serving(tmp_path)
    action.write_text("halt 7")
    os.kill(proc.pid, signal.SIGTTIN)
    assert proc.wait(30) == 7
    output = proc.communicate(timeout=5)[0].decode()
    assert "a hook halted it" in output
    assert _records(record, "on_exit")


# -- worker_tmp_dir -------------------------------------------------------------------------------

WORKER_TMP_CONF = '''
import os, time
def post_worker_init(worker):
    fd = worker.tmp.fileno()
    worker.notify()  # as Gunicorn's: the file's times become the monotonic clock's now
    touched = abs(os.fstat(fd).st_mtime - time.monotonic()) < 5
    with open({record!r}, "a") as handle:
        handle.write(os.readlink(f"/proc/self/fd/{{fd}}") + " " + str(touched) + "\\n")
'''


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc (Linux)")
def test_worker_tmp_dir_holds_the_heartbeat_file(tmp_path: Path) -> None:
    tmp_dir = tmp_path / "heartbeats"
    tmp_dir.mkdir()
    record = tmp_path / "record"
    conf = tmp_path / "conf.py"
    conf.write_text(WORKER_TMP_CONF.format(record=str(record)))
    sock = tmp_path / "s.sock"
    proc = _start(PRONGHORN, conf, sock, "--worker-tmp-dir", str(tmp_dir))
    try:
        poll(lambda: record.exists() and record.read_text().endswith("\n"), "post_worker_init")
        path, deleted, touched = record.read_text().split("\n")[0].split()
        # Gunicorn's file: in that directory, already unlinked (nothing is left behind), and the
        # heartbeat touches it.
        assert path.startswith(str(tmp_dir) + "/wpronghorn-") and deleted == "(deleted)", path
        assert touched == "True"
        assert list(tmp_dir.iterdir()) == []
    finally:
        _stop(proc)


def test_a_missing_worker_tmp_dir_stops_the_start(tmp_path: Path) -> None:
    conf = tmp_path / "conf.py"
    conf.write_text("")
    proc = _start(PRONGHORN, conf, tmp_path / "s.sock", "--worker-tmp-dir", str(tmp_path / "no"))
    output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 1, output
    assert f"{tmp_path / 'no'} doesn't exist" in output

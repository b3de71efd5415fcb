"""Real-style Gunicorn config files (tests/gunicorn_configs/), each run unchanged under pronghorn
and beside it under Gunicorn 27 (from /tmp/gvenv): both must start and serve, and agree on the
status, the body and the environ the app sees (tests/apps/environ_app.py), on what the hooks saw of
their arguments (tests/apps/hook_record.py) and, where a file asks for them, on log lines and
metrics.

Each server runs in a directory of its own named ``site`` (the file is copied there; that is its
working directory), so that relative paths, ``chdir`` and ``-c python:MODULE`` mean the same for
both. Ports are chosen here and given through the environment ($PORT, $BIND, ...) because some
files silence the log the address would be read from (``errorlog = None`` under Gunicorn).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import APPS, Server, free_port, wait_ready
from wire import request

CONFIGS = Path(__file__).resolve().parent / "gunicorn_configs"
GUNICORN = os.environ.get("GUNICORN", "/tmp/gvenv/bin/gunicorn")
INSTALL = "python3 -m venv /tmp/gvenv && /tmp/gvenv/bin/pip install 'gunicorn[gevent]'"
APP = "environ_app:app"

#: environ keys whose values legitimately differ between the two servers (the keys must still be
#: there in both).
VARYING_KEYS = {
    "REMOTE_PORT": "the client's ephemeral port, new for each connection",
    "SERVER_SOFTWARE": "names the server and its version",
}
#: A server may add keys in its own namespace (PEP 3333); the other's are not asked of it.
OWN_NAMESPACES = {"pronghorn": "pronghorn.", "gunicorn": "gunicorn.__never__"}


@dataclass
class Case:
    """How the test runs one config file (the file itself is never edited for the test)."""

    # Added to the environment; "{PORT}" and "{BIND}" are replaced by the TCP port chosen and
    # 127.0.0.1:PORT, which $PORT and $BIND always hold.
    env: dict[str, str] = field(default_factory=dict)
    app: str | None = APP           # None: the file names it (wsgi_app)
    module: bool = False            # -c python:STEM instead of -c FILE
    unix: str | None = None         # a unix socket it also listens on (relative to its directory)
    statsd: bool = False            # $STATSD_HOST points at a UDP receiver; metrics are compared
    syslog: bool = False            # $SYSLOG_ADDR points at a UDP receiver; programs are compared
    output: tuple[str, ...] = ()    # patterns both servers' output must match (stdout and stderr)
    gevent: bool = False            # Gunicorn's half needs its gevent extra
    absent: tuple[str, ...] = ()    # patterns no line of either server's output may match
    # The file imports Gunicorn (a Logger subclass): pronghorn's half finds Gunicorn's package
    # too, as in a project that has both installed while it moves.
    imports_gunicorn: bool = False
    # Signals sent to the master after the requests, each with the hook whose call (one more
    # than before) says it was handled: HUP → on_reload, TTIN → nworkers_changed.
    signals: tuple[tuple[signal.Signals, str], ...] = ()


CASES: dict[str, Case] = {
    "container_template.py": Case(env={"HOST": "127.0.0.1", "MAX_WORKERS": "1",
                                       "KEEP_ALIVE": "2"},
                                  output=(r'^\{"loglevel": "info", "workers": 1, ',
                                          r'"GET /cfg/path\?x=1&y=%20z HTTP/1\.1" 200 ')),
    "dev_reload.py": Case(env={"DEBUG": "1"}),
    "django_project.py": Case(env={"GUNICORN_BIND": "{BIND}", "GUNICORN_WORKERS": "1"},
                              app=None),
    "flask_threads.py": Case(output=(r'"GET /cfg/path\?x=1&y=%20z HTTP/1\.1" 200 \d+ "-" '
                                     r'"cfgtest/1\.0" \d+$',)),
    "example_config.py": Case(output=(r"Server is ready\. Spawning workers",
                                      r"Worker spawned \(pid: \d+\)")),
    "all_hooks.py": Case(env={"WORKERS": "2"}, signals=((signal.SIGHUP, "on_reload"),
                                                         (signal.SIGTTIN, "nworkers_changed"))),
    "glogging_subclass.py": Case(imports_gunicorn=True,
                                 output=(r'^127\.0\.0\.1 "GET /cfg/path\?x=1&y=%20z HTTP/1\.1" '
                                         r'200 \d+ "cfgtest/1\.0"$',),
                                 absent=(r"/__ready",)),
    "gthread_pool.py": Case(env={"PYTHON_MAX_THREADS": "4"}),
    "gevent_workers.py": Case(gevent=True,
                              output=(r"gevent worker \d+ ready for 1000 connections",)),
    "statsd_metrics.py": Case(statsd=True),
    "logconfig_dict_json.py": Case(output=(r'^ACCESS 127\.0\.0\.1 - - \[.*\] "GET /cfg/path',
                                           r'^\{"time": ".*", "logger": "gunicorn\.error", '
                                           r'"level": "INFO", "message": "Booting worker')),
    "custom_logger.py": Case(output=(r"^JSONACCESS \{",)),
    "settings_module.py": Case(module=True),
    "raw_env_list.py": Case(env={"APP_EXTRA_ENV": "CFGTEST_EXTRA=1, CFGTEST_OTHER=two"}),
    "proxy_env_unset.py": Case(),
    "behind_proxy_mixed_case.py": Case(env={"GUNICORN_THREADS": "2"}),
    "behind_nginx.py": Case(output=(r'^203\.0\.113\.7 - - \[.*\] "GET /cfg/path',)),
    "max_requests_recycle.py": Case(env={"MAX_REQUESTS": "2", "MAX_REQUESTS_JITTER": "1"}),
    "preload_app.py": Case(output=(r"preloading the application",)),
    "unix_and_tcp.py": Case(env={"HEALTH_PORT": "{PORT}"}, unix="run/app.sock"),
    "env_none.py": Case(),
    "syslog_local0.py": Case(syslog=True),
    "tuned_mechanics.py": Case(),
    "heroku_style.py": Case(env={"WEB_CONCURRENCY": "1"}),
}

#: The requests made to each address, the same to both servers.
REQUESTS: list[bytes] = [
    b"GET /cfg/path?x=1&y=%20z HTTP/1.1\r\nHost: example.test\r\nUser-Agent: cfgtest/1.0\r\n"
    b"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nAccept: */*\r\n"
    b"Connection: close\r\n\r\n",
    b"POST /cfg/form HTTP/1.1\r\nHost: example.test:8080\r\nUser-Agent: cfgtest/1.0\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n"
    b"Connection: close\r\n\r\nhello=world",
    b"GET /cfg/old HTTP/1.0\r\nHost: example.test\r\nUser-Agent: cfgtest/1.0\r\n\r\n",
]


def test_every_config_file_has_a_case() -> None:
    files = {path.name for path in CONFIGS.glob("*.py")}
    assert files == set(CASES)
    assert len(files) >= 15


# -- running one server ----------------------------------------------------------------------------

@dataclass
class Run:
    """One server run with a config file: what it answered, logged, sent and recorded."""

    server: Server
    site: Path
    addresses: list[str]
    port: int
    responses: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    hooks: dict[str, dict[str, dict[str, set[str]]]] = field(default_factory=dict)
    metrics: list[str] = field(default_factory=list)
    failure: str | None = None      # why it did not serve
    signals: tuple[tuple[signal.Signals, str], ...] = ()


class Receiver:
    """A UDP socket that collects the statsd or syslog datagrams a server sends it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.received: list[str] = []

    def drain(self) -> None:
        while True:
            try:
                self.received.append(self.sock.recv(65536).decode("utf-8", "replace"))
            except (socket.timeout, BlockingIOError):
                return

    def wait_for(self, prefix: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(m.startswith(prefix) for m in self.received):
            assert time.monotonic() < deadline, f"no {prefix!r} datagram in {self.received}"
            try:
                self.received.append(self.sock.recv(65536).decode("utf-8", "replace"))
            except socket.timeout:
                pass

    def close(self) -> None:
        self.sock.close()


def _start(kind: str, name: str, case: Case, root: Path, udp: Receiver | None) -> Run:
    site = root / kind / "site"
    site.mkdir(parents=True)
    shutil.copy(CONFIGS / name, site / name)
    port = free_port()
    values = {"PORT": str(port), "BIND": f"127.0.0.1:{port}"}
    env = {"PORT": values["PORT"], "BIND": values["BIND"],
           "HOOK_RECORD_PATH": str(site / "hooks.jsonl"),
           # the apps, then whatever the test run was given
           "PYTHONPATH": os.pathsep.join(filter(None, [str(APPS), os.environ.get("PYTHONPATH")]))}
    env.update({key: value.format(**values) for key, value in case.env.items()})
    if udp is not None and case.statsd:
        env["STATSD_HOST"] = udp.address
    if udp is not None and case.syslog:
        env["SYSLOG_ADDR"] = f"udp://{udp.address}"
    config = f"python:{Path(name).stem}" if case.module else str(site / name)
    args = ["-c", config] + ([case.app] if case.app else [])
    if kind == "gunicorn":
        # Gunicorn 25+ opens a control socket in ~/.gunicorn: one per run would collide.
        server = Server(["--no-control-socket", *args], env=env, cwd=site, command=[GUNICORN])
    else:
        if case.imports_gunicorn:
            shim = root / "gunicorn_only"
            shim.mkdir(exist_ok=True)
            (shim / "gunicorn").symlink_to(_gunicorn_package())
            env["PYTHONPATH"] += os.pathsep + str(shim)
        server = Server(args, env=env, cwd=site)
    addresses = [f"http://127.0.0.1:{port}"]
    if case.unix:
        addresses.append(f"unix:{site / case.unix}")
    return Run(server, site, addresses, port, signals=case.signals)


def _wait_ready(run: Run, timeout: float = 30.0) -> None:
    """Poll each address until a worker answers; stop at once if the server exits."""
    deadline = time.monotonic() + timeout
    for address in run.addresses:
        while True:
            if run.server.proc.poll() is not None:
                raise AssertionError(f"exited with {run.server.proc.returncode} before serving")
            try:
                wait_ready(address, timeout=0.5)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"never answered on {address}") from None


def _calls(run: Run, hook: str) -> int:
    record = run.site / "hooks.jsonl"
    text = record.read_text() if record.exists() else ""
    return text.count(f'"hook": "{hook}"')


def _serve(run: Run) -> None:
    """Wait until it answers, make the requests, stop it and read what its hooks recorded; a
    server that does not serve is noted in ``run.failure``."""
    try:
        _wait_ready(run)
        for address in run.addresses:
            for raw in REQUESTS:
                response = request(address, raw)
                body = json.loads(response.body) if response.status == 200 else {
                    "error": response.body.decode("latin-1")}
                run.responses.append((response.status, body))
        for sig, hook in run.signals:
            before = _calls(run, hook)
            run.server.proc.send_signal(sig)
            deadline = time.monotonic() + 15
            while _calls(run, hook) == before:
                if time.monotonic() > deadline or run.server.proc.poll() is not None:
                    raise AssertionError(f"{sig.name}: no {hook} hook call")
                time.sleep(0.02)  # polling the record file, not waiting for an outcome
    except (AssertionError, OSError, ValueError) as exc:
        run.failure = f"{type(exc).__name__}: {exc}"
    finally:
        run.server.stop()
    record = run.site / "hooks.jsonl"
    hooks: dict[str, dict[str, dict[str, set[str]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(set)))
    if record.exists():
        for line in record.read_text().splitlines():
            entry = json.loads(line)
            for arg, attrs in entry["seen"].items():
                hooks[entry["hook"]][arg]  # an argument with nothing to look at still counts
                for attr, kind in attrs.items():
                    hooks[entry["hook"]][arg][attr].add(kind)
    run.hooks = hooks


def _run_all(name: str, case: Case, root: Path, kinds: list[str]) -> dict[str, Run]:
    receivers = {kind: Receiver() for kind in kinds} if case.statsd or case.syslog else {}
    runs = {kind: _start(kind, name, case, root, receivers.get(kind)) for kind in kinds}
    try:
        with ThreadPoolExecutor(len(runs)) as pool:  # both boot at once: half the wall time
            for future in [pool.submit(_serve, run) for run in runs.values()]:
                future.result()
        for kind, receiver in receivers.items():
            if runs[kind].failure is None and case.statsd:
                for metric in ("requests:", "request.status.200:", "request.duration:"):
                    receiver.wait_for(f"shop.web.gunicorn.{metric}")
            if runs[kind].failure is None and case.syslog:
                receiver.wait_for("<134>gunicorn.shop.access: ")
            receiver.drain()
            runs[kind].metrics = receiver.received
    finally:
        for run in runs.values():
            run.server.stop()
        for receiver in receivers.values():
            receiver.close()
    return runs


# -- comparing -------------------------------------------------------------------------------------

def _comparable(kind: str, body: dict[str, Any], port: int) -> dict[str, Any]:
    """The body without the keys that vary; the server's own TCP port (each has its own) is
    written "{PORT}" wherever it is a value (SERVER_PORT, as Gunicorn sets it)."""
    if "environ" not in body:
        return body
    environ = {key: "{PORT}" if value == str(port) else value
               for key, value in body["environ"].items()
               if key not in VARYING_KEYS and not key.startswith(OWN_NAMESPACES[kind])}
    return {**body, "environ": environ}


def _gunicorn_package() -> str:
    """The directory of the Gunicorn package the peer runs."""
    python = Path(GUNICORN).with_name("python")
    return subprocess.run([str(python), "-c", "import gunicorn, os; print(os.path.dirname("
                           "gunicorn.__file__))"], capture_output=True, text=True, check=True,
                          timeout=60).stdout.strip()


def _gunicorn_has_gevent() -> bool:
    python = Path(GUNICORN).with_name("python")
    return subprocess.run([str(python), "-c", "import gunicorn.workers.ggevent"],
                          capture_output=True, timeout=60).returncode == 0


def _differences(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """key → (pronghorn's, Gunicorn's) for every key that differs, environ keys one by one."""
    missing = "<missing>"
    found: dict[str, Any] = {}
    for key in sorted(set(ours) | set(theirs)):
        a, b = ours.get(key, missing), theirs.get(key, missing)
        if isinstance(a, dict) and isinstance(b, dict):
            found.update({f"{key}.{k}": v for k, v in _differences(a, b).items()})
        elif a != b:
            found[key] = (a, b)
    return found


def _output_matches(run: Run, pattern: str) -> bool:
    regex = re.compile(pattern)
    return any(regex.search(line) for line in run.server.lines)


def _serving_problem(kind: str, run: Run) -> str | None:
    """Why ``run`` did not serve every request with a 200 and the app's JSON, if it did not."""
    statuses = [status for status, _ in run.responses]
    if run.failure is None and statuses == [200] * len(REQUESTS) * len(run.addresses):
        return None
    tail = "\n".join(run.server.lines[-25:])
    return f"{kind} did not serve ({run.failure or statuses}); its output ends:\n{tail}"


def _json_access(run: Run) -> list[dict[str, Any]]:
    return [json.loads(line.split(" ", 1)[1]) for line in run.server.lines
            if line.startswith("JSONACCESS ") and "/__ready" not in line]


def _metric_names(run: Run) -> set[str]:
    """statsd: the request metrics' names; syslog: each message's priority and program."""
    return {m.split(":", 1)[0] for m in run.metrics if "request" in m or m.startswith("<")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_config_file_serves_as_under_gunicorn(name: str, tmp_path: Path) -> None:
    """Every difference found is listed, not only the first: the message is the to-do list."""
    case = CASES[name]
    has_gunicorn = os.access(GUNICORN, os.X_OK) and (not case.gevent or _gunicorn_has_gevent())
    if case.imports_gunicorn and not has_gunicorn:
        pytest.skip(f"the file imports Gunicorn, which is not installed: {INSTALL}")
    runs = _run_all(name, case, tmp_path, ["pronghorn", "gunicorn"] if has_gunicorn
                    else ["pronghorn"])
    if has_gunicorn:  # first: a file Gunicorn does not serve is the file's fault
        problem = _serving_problem("gunicorn", runs["gunicorn"])
        assert problem is None, problem
    ours = runs["pronghorn"]
    problem = _serving_problem("pronghorn", ours)
    assert problem is None, problem
    if not has_gunicorn:
        pytest.skip(f"Gunicorn is not installed to compare with: {INSTALL}")
    theirs = runs["gunicorn"]
    problems: list[str] = []

    # The same answers, and the same environ (the keys that may vary are named above).
    for index, ((our_status, our_body), (their_status, their_body)) in enumerate(
            zip(ours.responses, theirs.responses)):
        differences = _differences(_comparable("pronghorn", our_body, ours.port),
                                   _comparable("gunicorn", their_body, theirs.port))
        if our_status != their_status:
            differences["status"] = (our_status, their_status)
        problems += [f"request {index}: {key}: pronghorn {a!r}, gunicorn {b!r}"
                     for key, (a, b) in differences.items()]

    # Every hook Gunicorn called was called, and saw every attribute Gunicorn's objects have,
    # of the same kind (pronghorn may have more: where Gunicorn lacks one, it is not compared).
    for hook, args in sorted(theirs.hooks.items()):
        if hook not in ours.hooks:
            problems.append(f"hook {hook}: not called (or it failed before recording)")
            continue
        for arg, attrs in sorted(args.items()):
            for attr, kinds in sorted(attrs.items()):
                mine = ours.hooks[hook][arg][attr]
                # "missing" in Gunicorn's kinds: not there on some calls (the arbiter's pid
                # before it is set, at the first nworkers_changed); pronghorn may have it then.
                if kinds != {"missing"} and (mine - {"missing"} != kinds - {"missing"} or (
                        "missing" in mine and "missing" not in kinds)):
                    problems.append(f"hook {hook}: {arg}.{attr}: pronghorn {sorted(mine)}, "
                                    f"gunicorn {sorted(kinds)}")

    for pattern in case.output:
        assert _output_matches(theirs, pattern), \
            f"gunicorn: no {pattern!r}:\n{theirs.server.output}"
        if not _output_matches(ours, pattern):
            problems.append(f"output: no line matches {pattern!r}")
    for pattern in case.absent:
        assert not _output_matches(theirs, pattern), f"gunicorn: {pattern!r} in its output"
        if _output_matches(ours, pattern):
            problems.append(f"output: a line matches {pattern!r}")
    if _json_access(ours) != _json_access(theirs):
        problems.append(f"logger_class access lines: pronghorn {_json_access(ours)}, "
                        f"gunicorn {_json_access(theirs)}")
    if _metric_names(ours) != _metric_names(theirs):
        problems.append(f"statsd or syslog: pronghorn {sorted(_metric_names(ours))}, "
                        f"gunicorn {sorted(_metric_names(theirs))}")
    assert not problems, "\n".join(problems) + "\n\npronghorn's output:\n" + ours.server.output

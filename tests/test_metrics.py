"""--metrics-bind (issue 19): the master's /metrics, /livez and /readyz, over real sockets.

/metrics is read with prometheus_client's own parser, so the exposition is what Prometheus reads.
The counts are compared with the requests the test sent, across worker recycling: the workers count
into pages shared with the master, which keeps a reaped worker's counts."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Server, connect, free_port
from master_util import Subreaper, poll, read_pid, wait_children
from wire import Response, get, post, request

parser = pytest.importorskip(
    "prometheus_client.parser",
    reason="the exposition is checked with prometheus_client's parser: pip install prometheus_client "
           "(the test extra)")

APP = "metrics_app:app"
SYNC = ("-k", "sync")  # the tests of the master alone: one worker class is enough

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def metrics_address(server: Any) -> str:
    match = server.wait_for_line(r"Metrics and health at: (\S+) \(")
    return str(match.group(1))


def scrape(address: str) -> Samples:
    response = get(address, "/metrics")
    assert response.status == 200, response
    assert response.header("content-type") == "text/plain; version=0.0.4; charset=utf-8"
    samples: Samples = {}
    for family in parser.text_string_to_metric_families(response.body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def requests_of(samples: Samples) -> dict[tuple[str, str], int]:
    """The non-zero pronghorn_requests_total samples, by (method, status class)."""
    found = {}
    for (name, labels), count in samples.items():
        if name == "pronghorn_requests_total" and count:
            label = dict(labels)
            found[(label["method"], label["status"])] = int(count)
    return found


class Mix:
    """Requests sent, and what the metrics must say about them."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], int] = {}
        self.body_in = 0
        self.body_out = 0

    def add(self, method: str, response: Response, sent: int = 0, app_body: bool = True) -> None:
        key = (method, f"{response.status // 100}xx")
        self.requests[key] = self.requests.get(key, 0) + 1
        self.body_in += sent
        if app_body and method != "HEAD":
            self.body_out += len(response.body)

    def send(self, address: str, rounds: int) -> None:
        for i in range(rounds):
            self.add("GET", get(address, "/"))
            self.add("GET", get(address, "/missing"))
            body = b"x" * (i + 1)
            self.add("POST", post(address, "/echo", body), sent=len(body))
            self.add("HEAD", get(address, "/", method="HEAD"))
        # Our own 500 page (the app raised) is not the app's body: not counted as body bytes.
        self.add("GET", get(address, "/fail"), app_body=False)
        self.add("DELETE", get(address, "/", method="DELETE"))
        self.add("other", get(address, "/", method="BREW"))

    @property
    def total(self) -> int:
        return sum(self.requests.values())


def test_counters_equal_the_requests_sent_across_a_recycle(start_server: Any,
                                                            worker_class: str) -> None:
    # (ready=False: readiness from /readyz, so that no probe request adds to the counts.)
    server, (address,) = start_server(APP, "-w", "2", "--max-requests", "7",
                                      "--metrics-bind", "127.0.0.1:0", ready=False)
    metrics = metrics_address(server)
    poll(lambda: get(metrics, "/readyz").status == 200, "/readyz 200", server=server)
    master = server.proc.pid
    first = wait_children(server, master, 2)
    mix = Mix()
    mix.send(address, 3)  # 15 requests: both workers pass --max-requests 7 (given an even share)
    # A recycle: the master counts the restart, and reaps a worker it replaced (its counts are
    # then the master's).
    poll(lambda: value(scrape(metrics), "pronghorn_worker_restarts_total",
                       reason="max-requests") >= 1, "a --max-requests restart", server=server)
    poll(lambda: any(not os.path.exists(f"/proc/{pid}") for pid in first),
         "a recycled worker reaped", server=server)
    mix.send(address, 2)

    def counted() -> Samples | None:
        samples = scrape(metrics)
        return samples if requests_of(samples) == mix.requests else None

    # (A response reaches the client just before its worker counts it: poll until it has.)
    samples = poll(counted, f"the counters to reach {mix.requests}", timeout=15, server=server)
    assert value(samples, "pronghorn_request_duration_seconds_count") == mix.total
    assert value(samples, "pronghorn_request_duration_seconds_bucket", le="+Inf") == mix.total
    assert 0 < value(samples, "pronghorn_request_duration_seconds_sum") < mix.total * 5
    assert value(samples, "pronghorn_request_body_bytes_total") == mix.body_in
    assert value(samples, "pronghorn_response_body_bytes_total") == mix.body_out
    assert value(samples, "pronghorn_requests_in_flight") == 0
    assert value(samples, "pronghorn_worker_restarts_total", reason="crash") == 0
    assert value(samples, "pronghorn_worker_restarts_total", reason="timeout") == 0
    # Listen backlog per TCP listener, each worker's RSS by pid.
    port = address.rsplit(":", 1)[1]
    assert value(samples, "pronghorn_listen_backlog", listener=f"127.0.0.1:{port}") == 0
    rss = {dict(labels)["pid"]: v for (name, labels), v in samples.items()
           if name == "pronghorn_worker_resident_memory_bytes"}
    assert len(rss) == value(samples, "pronghorn_workers") >= 2
    assert all(v > 1 << 20 for v in rss.values()), rss
    assert server.stop() == 0, server.output


def test_a_worker_that_exits_keeps_its_last_counts(start_server: Any, worker_class: str) -> None:
    """A worker counts into its own memory and copies into the shared page at each heartbeat (once
    a second) and at exit: one that stops right after a request (here TERMed by its app, so within
    a few milliseconds) must still hand that request to the master."""
    server, (address,) = start_server(APP, "-w", "1", "--metrics-bind", "127.0.0.1:0",
                                      ready=False)
    metrics = metrics_address(server)
    poll(lambda: get(metrics, "/readyz").status == 200, "/readyz 200", server=server)
    (first,) = wait_children(server, server.proc.pid, 1)
    response = get(address, "/quit")
    assert (response.status, response.body) == (200, b"bye")
    poll(lambda: not os.path.exists(f"/proc/{first}"), "the worker reaped", server=server)
    poll(lambda: requests_of(scrape(metrics)) == {("GET", "2xx"): 1},
         "the last request of the worker that exited counted", server=server)
    samples = scrape(metrics)
    assert value(samples, "pronghorn_response_body_bytes_total") == 3
    assert value(samples, "pronghorn_request_duration_seconds_count") == 1
    assert server.stop() == 0, server.output


def test_in_flight_requests_and_open_connections(start_server: Any, tmp_path: Path,
                                                  worker_class: str) -> None:
    server, (address,) = start_server(APP, "-w", "1", "--metrics-bind", "127.0.0.1:0")
    metrics = metrics_address(server)
    idle = [connect(address) for _ in range(3)]
    poll(lambda: value(scrape(metrics), "pronghorn_connections_open") == 3,
         "three open connections counted", server=server)
    for sock in idle:
        sock.close()
    poll(lambda: value(scrape(metrics), "pronghorn_connections_open") == 0,
         "the closed connections gone", server=server)
    flag = tmp_path / "release"
    held = connect(address, timeout=30)
    held.sendall(f"GET /hold?{flag} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    poll(lambda: value(scrape(metrics), "pronghorn_requests_in_flight") == 1,
         "one request in flight", server=server)
    flag.touch()
    assert held.recv(65536).startswith(b"HTTP/1.1 200")
    held.close()
    poll(lambda: value(scrape(metrics), "pronghorn_requests_in_flight") == 0,
         "no request in flight", server=server)
    assert server.stop() == 0, server.output


def test_health_endpoints_and_the_shutdown_delay(start_server: Any) -> None:
    server, (address,) = start_server(APP, *SYNC, "-w", "2", "--shutdown-delay", "30",
                                      "--metrics-bind", "127.0.0.1:0")
    metrics = metrics_address(server)
    wait_children(server, server.proc.pid, 2)
    poll(lambda: get(metrics, "/readyz").status == 200, "/readyz 200", server=server)
    live = get(metrics, "/livez")
    assert (live.status, live.body) == (200, b"ok\n")
    head = get(metrics, "/readyz", method="HEAD")
    assert head.status == 200 and head.header("content-length") == "6" and head.body == b""
    assert get(metrics, "/readyz?verbose").status == 200  # (a query is ignored)
    assert get(metrics, "/").status == 404
    assert get(metrics, "/metrics/more").status == 404
    refused = post(metrics, "/readyz", b"x")
    assert refused.status == 405 and refused.header("allow") == "GET, HEAD"
    assert request(metrics, b"nonsense\r\n\r\n").status == 400
    server.proc.send_signal(signal.SIGTERM)
    server.wait_for_line("Shutdown delay")
    # Not ready (load balancers stop sending), but alive and still serving.
    not_ready = get(metrics, "/readyz")
    assert (not_ready.status, not_ready.body) == (503, b"not ready\n")
    assert get(metrics, "/livez").status == 200
    assert get(address, "/").status == 200
    assert scrape(metrics)  # /metrics too
    server.proc.send_signal(signal.SIGTERM)  # a second TERM ends the delay
    assert server.proc.wait(30) == 0, server.output
    with pytest.raises(OSError):
        get(metrics, "/livez")


def test_readyz_waits_for_a_booted_worker(start_server: Any, tmp_path: Path) -> None:
    """No worker ready yet (its app is still importing): 503; 200 once it is."""
    flag = tmp_path / "booted"
    server, _ = start_server(APP, *SYNC, "-w", "1", "--metrics-bind", "127.0.0.1:0",
                             env={"METRICS_APP_BOOT_FLAG": str(flag)}, ready=False)
    metrics = metrics_address(server)
    server.wait_for_line("Booting worker")
    assert get(metrics, "/readyz").status == 503
    assert get(metrics, "/livez").status == 200
    flag.touch()
    poll(lambda: get(metrics, "/readyz").status == 200, "/readyz 200 once booted", server=server)
    assert server.stop() == 0, server.output


def test_restarts_by_reason(start_server: Any, tmp_path: Path) -> None:
    """A worker killed (crash) and one stuck past --timeout (timeout) are counted by reason."""
    server, (address,) = start_server(APP, *SYNC, "-w", "1", "--timeout", "1",
                                      "--metrics-bind", "127.0.0.1:0")
    metrics = metrics_address(server)
    master = server.proc.pid
    (worker,) = wait_children(server, master, 1)
    os.kill(worker, signal.SIGKILL)
    poll(lambda: value(scrape(metrics), "pronghorn_worker_restarts_total", reason="crash") == 1,
         "a crash counted", server=server)
    (worker,) = wait_children(server, master, 1)
    stuck = connect(address, timeout=30)
    stuck.sendall(f"GET /hold?{tmp_path / 'never'} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    poll(lambda: value(scrape(metrics), "pronghorn_worker_restarts_total",
                       reason="timeout") == 1, "a timeout counted", server=server)
    stuck.close()
    samples = scrape(metrics)
    assert value(samples, "pronghorn_worker_restarts_total", reason="crash") == 1  # not twice
    assert value(samples, "pronghorn_worker_restarts_total", reason="max-requests") == 0
    assert server.stop() == 0, server.output


def test_memory_restarts_are_counted(start_server: Any) -> None:
    """--max-worker-memory 1: every worker is over it (a Python process is ~20 MiB), so each is
    replaced soon after it is ready, and counted as "memory"."""
    server, _ = start_server(APP, *SYNC, "-w", "1", "--max-worker-memory", "1",
                             "--metrics-bind", "127.0.0.1:0")
    metrics = metrics_address(server)
    poll(lambda: value(scrape(metrics), "pronghorn_worker_restarts_total", reason="memory") >= 1,
         "a memory restart counted", server=server)
    samples = scrape(metrics)
    assert value(samples, "pronghorn_worker_restarts_total", reason="max-requests") == 0
    assert server.stop() == 0, server.output


def test_on_a_unix_socket(start_server: Any, tmp_path: Path) -> None:
    path = tmp_path / "metrics.sock"
    server, (address,) = start_server(APP, *SYNC, "--metrics-bind", f"unix:{path}", ready=False)
    metrics = metrics_address(server)
    assert metrics == f"unix:{path}"
    poll(lambda: get(metrics, "/readyz").status == 200, "/readyz 200", server=server)
    assert get(address, "/").status == 200
    poll(lambda: requests_of(scrape(metrics)).get(("GET", "2xx")) == 1, "the request counted",
         server=server)
    assert server.stop() == 0, server.output
    assert not path.exists()


def test_off_by_default_and_fd_refused(start_server: Any) -> None:
    server, _ = start_server(APP, *SYNC)
    assert "Metrics and health" not in server.output
    assert server.stop() == 0
    refused = Server(["--metrics-bind", "fd://3", APP])
    assert refused.proc.wait(30) != 0
    refused.stop()
    assert "the metrics address is bound by the master" in refused.output, refused.output


def test_asgi_requests_are_counted(start_server: Any) -> None:
    server, (address,) = start_server("asgi_app:app", "-k", "asgi", "--metrics-bind",
                                      "127.0.0.1:0", ready=False)
    metrics = metrics_address(server)
    poll(lambda: get(metrics, "/readyz").status == 200, "/readyz 200", server=server)
    assert get(address, "/").status == 200
    poll(lambda: requests_of(scrape(metrics)) == {("GET", "2xx"): 1},
         "the ASGI request counted", server=server)
    poll(lambda: value(scrape(metrics), "pronghorn_requests_in_flight") == 0,
         "no ASGI request in flight", server=server)
    assert server.stop() == 0, server.output


def test_asgi_websocket_sessions_are_counted(start_server: Any) -> None:
    """A WebSocket session is a request in flight while it is open, then a GET answered 101."""
    websockets = pytest.importorskip("websockets.asyncio.client",
                                     reason="needs websockets (pip install -e '.[test]')")
    server, (address,) = start_server("asgi_ws_app:app", "-k", "asgi", "--metrics-bind",
                                      "127.0.0.1:0", ready=False)
    metrics = metrics_address(server)
    poll(lambda: get(metrics, "/readyz").status == 200, "/readyz 200", server=server)

    async def talk() -> None:
        url = "ws://" + address.split("://", 1)[-1] + "/echo"
        async with websockets.connect(url) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            # (A blocking poll inside the coroutine: the session is open meanwhile.)
            poll(lambda: value(scrape(metrics), "pronghorn_requests_in_flight") == 1,
                 "the open session in flight", server=server)

    asyncio.run(asyncio.wait_for(talk(), 30))
    poll(lambda: requests_of(scrape(metrics)) == {("GET", "1xx"): 1},
         "the session counted as a GET answered 101", server=server)
    poll(lambda: value(scrape(metrics), "pronghorn_requests_in_flight") == 0,
         "no session in flight", server=server)
    assert server.stop() == 0, server.output


def test_readyz_stays_ready_while_a_single_worker_is_recycled(start_server: Any) -> None:
    """A worker at --max-requests keeps accepting until its replacement is ready: /readyz must not
    flap to 503 meanwhile (a load balancer would take the host out)."""
    server, (address,) = start_server(APP, *SYNC, "-w", "1", "--max-requests", "3",
                                      "--metrics-bind", "127.0.0.1:0")
    metrics = metrics_address(server)
    answers = []
    deadline = time.monotonic() + 60  # (a guard against a hang, not a timing assertion)
    while value(scrape(metrics), "pronghorn_worker_restarts_total", reason="max-requests") < 2:
        assert get(address, "/").status == 200
        answers.append(get(metrics, "/readyz").status)
        assert time.monotonic() < deadline, server.output
    assert set(answers) == {200}, answers
    assert server.stop() == 0, server.output


def test_usr2_the_new_master_serves_the_same_address(start_server: Any, tmp_path: Path) -> None:
    """USR2: the new master binds the metrics address beside the old one (SO_REUSEPORT), and once
    the old one is gone every connection is answered (none lands on a copy nobody serves)."""
    port = free_port()
    pidfile = tmp_path / "app.pid"
    metrics = f"http://127.0.0.1:{port}"
    with Subreaper() as reaper:
        server, _ = start_server(APP, *SYNC, "--pid", str(pidfile),
                                 "--metrics-bind", f"127.0.0.1:{port}")
        old = server.proc.pid
        os.kill(old, signal.SIGUSR2)
        new = poll(lambda: (lambda pid: pid if pid and pid != old else None)(read_pid(pidfile)),
                   "the new master's pid in the pidfile", server=server)
        reaper.adopt(new)
        server.wait_for_line(rf"\[{new}\] \[INFO\] Metrics and health at: {metrics} ")
        os.kill(old, signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0, server.output
        poll(lambda: get(metrics, "/readyz").status == 200, "the new master ready", server=server)
        for _ in range(40):  # a new connection each: SO_REUSEPORT spreads them over the sockets
            assert get(metrics, "/livez").status == 200
        os.kill(new, signal.SIGTERM)
        assert reaper.wait(new) == 0, server.output

"""docs/deploying.md's "Running a fleet", run for real: three hosts behind HAProxy, none failing a request.

Each host is a network namespace of its own (``ip netns``, a veth pair to this one), running the
guide's fleet command line (``fleet-host``) with a test app. A real HAProxy runs the guide's
configuration (``haproxy``), with the hosts' addresses put in and its health-check timings scaled
down with ``--shutdown-delay`` so that the guide's rule (the delay outlasts ``inter`` × ``fall``)
still holds. wrk keeps load on HAProxy while every host in turn is stopped with TERM and started
again, and one is then upgraded with USR2 and TERM to its old master, as section 3 says. wrk must
see no error and no non-2xx answer: HAProxy answers 503 only when it has nowhere to send a request,
and 502 when a server fails one.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from conftest import Server, free_port
from master_util import children, poll, wait_gone
from test_deploying_guide import Invocation, block, runnable

HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy")
                                       else None)
WRK = shutil.which("wrk")
IP = shutil.which("ip")
DELAY = 1.0  # --shutdown-delay here; the guide's 5 s goes with its 1 s checks, these are 0.2 s
SUBNET = 213  # the hosts are 10.213.N.2, this side of their veth 10.213.N.1


def netns_works() -> bool:
    if os.geteuid() != 0 or IP is None:
        return False
    name = f"ph-probe-{os.getpid()}"
    made = subprocess.run([IP, "netns", "add", name], capture_output=True).returncode == 0
    if made:
        subprocess.run([IP, "netns", "del", name], capture_output=True)
    return made


pytestmark = [
    pytest.mark.skipif(HAPROXY is None, reason="needs haproxy (apt-get install haproxy)"),
    pytest.mark.skipif(WRK is None, reason="needs wrk (apt-get install wrk)"),
    pytest.mark.skipif(not netns_works(), reason="needs root and ip netns (iproute2)"),
]


def ip(*args: str) -> None:
    assert IP is not None
    subprocess.run([IP, *args], check=True, capture_output=True)


class Host:
    """A machine of the fleet: a network namespace reached over a veth pair, running pronghorn."""

    def __init__(self, index: int, tag: str) -> None:
        self.index = index
        self.ns = f"ph-fleet-{tag}-{index}"
        self.outside = f"phf{tag}{index}"[:15]  # interface names are at most 15 bytes
        self.address = f"10.{SUBNET}.{index}.2"
        ip("netns", "add", self.ns)
        ip("link", "add", self.outside, "type", "veth", "peer", "name", "eth0", "netns", self.ns)
        ip("addr", "add", f"10.{SUBNET}.{index}.1/24", "dev", self.outside)
        ip("link", "set", self.outside, "up")
        ip("-n", self.ns, "addr", "add", f"{self.address}/24", "dev", "eth0")
        ip("-n", self.ns, "link", "set", "eth0", "up")
        ip("-n", self.ns, "link", "set", "lo", "up")
        self.server: Server | None = None
        self.extra_masters: list[int] = []

    def start(self) -> Server:
        """The guide's fleet command line, in this host's namespace, with the test app."""
        invocation = Invocation(block("fleet-host"))
        args = []
        for arg in runnable(invocation.args):
            if arg == "proj.wsgi:application":
                arg = "stop_app:app"
            elif arg.startswith("--metrics-bind="):
                arg = f"--metrics-bind={self.address}:9100"
            elif arg.startswith("--shutdown-delay="):
                arg = f"--shutdown-delay={DELAY}"
            args.append(arg)
        assert IP is not None
        self.server = Server(args, command=[IP, "netns", "exec", self.ns, sys.executable, "-m",
                                            "pronghorn"])
        self.server.wait_for_line(r"Booting worker")
        return self.server

    def ready(self) -> int:
        try:
            with urllib.request.urlopen(f"http://{self.address}:9100/readyz", timeout=2) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return 0

    def close(self) -> None:
        if self.server is not None:
            self.server.stop(signal.SIGQUIT, timeout=10)
        for pid in self.extra_masters:
            try:
                os.kill(pid, signal.SIGQUIT)
            except ProcessLookupError:
                continue
            wait_gone(pid, timeout=10)
        subprocess.run([IP or "ip", "netns", "del", self.ns], capture_output=True)
        subprocess.run([IP or "ip", "link", "del", self.outside], capture_output=True)


class HAProxy:
    """The guide's HAProxy configuration, pointed at the hosts, with a stats socket to ask it."""

    def __init__(self, directory: Path, hosts: list[Host]) -> None:
        config = block("haproxy")
        for index, host in enumerate(hosts, 1):
            config = config.replace(f"10.0.0.1{index}:8000", f"{host.address}:8000")
        assert "10.0.0." not in config, config
        self.port = free_port()
        config = config.replace("bind :80", f"bind 127.0.0.1:{self.port}")
        scaled = config.replace("inter 1s fall 2 rise 2", "inter 200ms fall 2 rise 2")
        assert scaled != config, "the guide's health-check timings changed: scale them here too"
        self.stats = directory / "haproxy.sock"
        self.log = directory / "haproxy.log"
        conf = directory / "haproxy.cfg"
        conf.write_text(f"global\n    stats socket {self.stats} level admin\n"
                        f"    log stdout format raw local0 info\n\n{scaled}")
        assert HAPROXY is not None
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([HAPROXY, "-f", str(conf), "-db"], stdout=out,
                                         stderr=subprocess.STDOUT)

    def servers(self) -> dict[str, dict[str, str]]:
        """``show stat`` for the backend's servers: name → the CSV's fields."""
        with socket.socket(socket.AF_UNIX) as sock:
            try:
                sock.connect(str(self.stats))
            except (FileNotFoundError, ConnectionRefusedError):  # HAProxy is still starting
                return {}
            sock.sendall(b"show stat\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","))) for line in lines[1:] if line]
        return {row["svname"]: row for row in rows
                if row.get("pxname") == "proj" and row["svname"] not in ("FRONTEND", "BACKEND")}

    def wait_status(self, name: str, status: str) -> None:
        def seen() -> bool:
            assert self.proc.poll() is None, self.log.read_text()
            row = self.servers().get(name, {})
            # UP only once a check has passed: HAProxy starts its servers UP before any check.
            return (row.get("status", "").startswith(status)
                    and (status != "UP" or row.get("check_status") == "L7OK"))
        poll(seen, f"HAProxy to see {name} {status}: {self.log.read_text()}", timeout=30)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[list[Host], HAProxy]]:
    tag = str(os.getpid() % 100000)
    hosts: list[Host] = []
    haproxy: HAProxy | None = None
    try:
        for index in (1, 2, 3):
            hosts.append(Host(index, tag))
        for host in hosts:
            host.start()
        for host in hosts:
            poll(lambda: host.ready() == 200, f"{host.ns}'s /readyz to say 200", timeout=60)
        haproxy = HAProxy(tmp_path, hosts)
        for index in (1, 2, 3):
            haproxy.wait_status(f"app{index}", "UP")
        yield hosts, haproxy
    finally:
        if haproxy is not None:
            haproxy.stop()
        for host in hosts:
            host.close()


def test_restarts_and_an_upgrade_behind_haproxy_fail_no_request(fleet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hosts, haproxy = fleet
    assert WRK is not None
    load = subprocess.Popen([WRK, "-t2", "-c32", "-d300s", f"http://127.0.0.1:{haproxy.port}/"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # Every host in turn: TERM (not ready, then drained and stopped), started again, back in.
        for host in hosts:
            server = host.server
            assert server is not None
            server.proc.send_signal(signal.SIGTERM)
            poll(lambda: host.ready() == 503, "/readyz to say 503 during the shutdown delay",
                 timeout=10)
            haproxy.wait_status(f"app{host.index}", "DOWN")
            assert server.stop(timeout=30) == 0, server.output
            host.start()
            haproxy.wait_status(f"app{host.index}", "UP")
        # One host upgraded in place: USR2, the new master's workers answer, TERM to the old one.
        host = hosts[0]
        server = host.server
        assert server is not None
        old = server.proc.pid
        booted = len(re.findall(r"Booting worker", server.output))
        server.proc.send_signal(signal.SIGUSR2)
        new = poll(lambda: next(iter(children(old) - set(server_workers(server, old))), None),
                   "the new master")
        host.extra_masters.append(new)
        poll(lambda: len(re.findall(r"Booting worker", server.output)) > booted,
             "the new master's worker")
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(30) == 0, server.output
        poll(lambda: host.ready() == 200, "the new master to answer /readyz")
        haproxy.wait_status("app1", "UP")
        # A little more load on the upgraded fleet, then wrk's count.
        seen = haproxy.servers()["app1"]["stot"]
        poll(lambda: int(haproxy.servers()["app1"]["stot"]) > int(seen) + 100,
             "requests to the upgraded host")
    finally:
        load.send_signal(signal.SIGINT)
        report, _ = load.communicate(timeout=30)
    totals = re.search(r"(\d+) requests in", report)
    assert totals and int(totals.group(1)) > 1000, report
    assert "Socket errors" not in report, report
    assert "Non-2xx" not in report, report + haproxy.log.read_text()


def server_workers(server: Server, master: int) -> list[int]:
    """The pids the master booted as workers, from its log."""
    return [int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", server.output)]


def test_the_prometheus_targets_are_the_hosts_metrics_addresses() -> None:
    """The scrape config names each host's --metrics-bind address, one target per host."""
    metrics = Invocation(block("fleet-host")).option("--metrics-bind")
    assert metrics is not None
    targets = re.findall(r'"([\d.]+:\d+)"', block("prometheus"))
    assert metrics in targets and len(targets) == 3
    assert {target.split(":")[1] for target in targets} == {metrics.split(":")[1]}
    servers = re.findall(r"server app\d ([\d.]+):\d+", block("haproxy"))
    assert [target.split(":")[0] for target in targets] == servers

"""pronghorn's benchmark harness: pronghorn against its peers, scenario by scenario, in one run.

Run it through ``bench/run``, which makes the benchmark's own virtualenv first; this file
expects to be running inside it (the servers and ``django-admin`` are found next to
``sys.executable``). ``bench/run --help`` lists the options; docs/performance.md explains
the scenarios and what the numbers mean.

How a measurement is taken, and why:

* One server at a time, started in a new session (its own process group) so that the whole
  group -- master and workers -- can be stopped together and nothing outlives its run.
* The server is pinned to CPU 0 and wrk to CPU 1 with taskset, so that the load generator
  never steals the server's core and every server gets exactly one core's worth of time.
  Scenarios with two workers are the exception: there the server and wrk share both cores
  unpinned, as they would on a real two-core host.
* Readiness is polled, not slept for: the harness sends the scenario's own request until
  a correct answer comes back (which also proves the server serves this scenario right),
  then gives wrk a one-second warm-up that is not measured.
* Servers are interleaved round by round (round 1 runs every server of every scenario once,
  then round 2, ...), so that a slow minute on a shared machine lands on every server rather
  than on one. The report keeps each cell's best round: interference from other work only
  ever lowers a server's rate, so the best round is the closest to what the server can do.
  The spread column shows how far apart the rounds were.
* The h2 scenarios (h2-hello, asgi-h2-hello) run h2load (nghttp2) instead of wrk, in cleartext
  HTTP/2 with prior knowledge (bench/h2load_driver.py); a run with any failed request is invalid.
* Most scenarios run wrk at full speed. Two run it otherwise, and docs/performance.md says
  how and with which limits: fixed-rate paces it (bench/paced.lua) at a fraction of the
  server's peak hello rate in this run, and keeps the round with the shortest p99; idle-10k
  first has bench/idle_clients.py open 10,000 keep-alive connections that then sit idle.
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import importlib.metadata
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h2load_driver  # (bench/, this script's directory)

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
APPS = BENCH / "apps"
LOGS = BENCH / ".logs"
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
SERVER_CPU = "0"
CLIENT_CPU = "1"
READY_TIMEOUT = 30.0  # seconds for a server to answer its first request (Django imports take a while)
STOP_TIMEOUT = 5.0  # seconds of grace after SIGTERM before the group gets SIGKILL
FILE_SIZE = 1024 * 1024
UPLOAD_SIZE = 64 * 1024

FAMILIES = ("pronghorn", "gunicorn", "granian", "bjoern", "fastpysgi", "waitress", "uwsgi", "uvicorn", "hypercorn")
#: nginx, for the scenarios behind it (uwsgi_pass); Debian's nginx-light puts it in /usr/sbin.
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
IDLE_CONNECTIONS = 10_000
# The headers nginx forwards with the proxied scenarios' requests, as the probe sends them
# (bench/proxied.lua sends the same set, with a new X-Request-Id and visitor per request).
PROXIED_HEADERS = {
    "Host": "www.example.com",
    "X-Real-IP": "198.51.100.7",
    "X-Forwarded-For": "198.51.100.7",
    "X-Forwarded-Proto": "https",
    "X-Request-Id": "5f0e3c1a-9b2d-4c7e-a1f3-000000000001",
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
    "Safari/537.36",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,"
    "application/signed-exchange;v=b3;q=0.7",
    "Accept-Language": "en-US,en;q=0.9,fr;q=0.8",
    "Accept-Encoding": "gzip, deflate, br, zstd",
    "Cookie": "sessionid=3f9a1c0e5b7d2f4a6c8e0b1d3f5a7c9e; csrftoken=Xq3v9JrLw2TzKc8pNf5GmYh7Ud4Es6Ba",
}


# --------------------------------------------------------------------------------------
# What is measured: servers (variants) and scenarios
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One way of running one server: its family, worker model and logging."""

    label: str  # the name in the table, unique within a scenario
    family: str  # one of FAMILIES; what --servers selects
    mode: str = "sync"  # "sync", "gthread", "gevent" or "asgi" (pronghorn's and Gunicorn 27's -k)
    workers: int = 1
    threads: int = 1
    access_log: str | None = None  # None: off; "/dev/null"; or "file": a file in the run's temp dir
    # fixed-rate only: the pace, a fraction of the peak hello rate of ``rate_of`` (None: its own family).
    rate_fraction: float = 0.0
    rate_of: str | None = None


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    measures: str  # one line for --list and the docs
    app: str  # MODULE:CALLABLE, or "django" for the generated project
    variants: tuple[Variant, ...]
    method: str = "GET"
    path: str = "/"
    connections: int = 50
    wrk_headers: tuple[str, ...] = ()
    wrk_script: str | None = None
    pinned: bool = True
    expect_body: bytes | None = None  # the exact body, when it is small
    expect_length: int | None = None  # else the body's length, when known
    # "load": wrk at full speed; "paced": wrk at a fixed rate; "idle": with idle connections;
    # "ws": bench/ws_echo.py's WebSocket echo load instead of wrk (req/s is then messages/s);
    # "h2": h2load's HTTP/2 load in cleartext with prior knowledge (h2c) instead of wrk.
    kind: str = "load"
    probe_headers: tuple[tuple[str, str], ...] = ()
    # Other requests of a mixed scenario that must be answered right too: (path, body length).
    more_probes: tuple[tuple[str, int], ...] = ()
    forwarded: bool = False  # pronghorn and Gunicorn trust the client's X-Forwarded-* (--forwarded-allow-ips)
    # Behind nginx's uwsgi_pass: the server speaks uwsgi on its port, wrk talks HTTP to nginx.
    uwsgi: bool = False
    interface: str = "wsgi"  # or "asgi": the app is an ASGI 3 callable (bench/apps/asgi_apps.py)
    # Events per response (SSE): the notes give events/s, req/s times this.
    events_per_response: int = 0
    # kind "h2" only: the streams h2load keeps in flight on each of ``connections`` (h2load -m),
    # and whether over TLS (HTTP/2 chosen by ALPN) rather than h2c.
    streams: int = 1
    tls: bool = False


@dataclass(frozen=True)
class Target:
    """A goal from an issue, met when the measured ratio is at least ``minimum``.

    ``metric`` "rps": the numerator's req/s over the denominator's (the denominator's row may be
    in another scenario, ``denominator_scenario``); "p99": the denominator's p99 over the
    numerator's (above 1.0 the numerator's tail is shorter); "rss": ``minimum`` MiB over the
    numerator's worker RSS.
    """

    scenario: str
    numerator: str
    denominator: str
    minimum: float
    text: str
    issue: int = 7
    metric: str = "rps"
    denominator_scenario: str | None = None


def _one_worker_peers(mode: str = "sync", threads: int = 1) -> tuple[Variant, ...]:
    """pronghorn and every peer, one worker process each, for a plain one-worker scenario."""
    return (
        Variant("pronghorn", "pronghorn", mode, threads=threads),
        Variant("gunicorn", "gunicorn", mode, threads=threads),
        Variant("granian", "granian", threads=threads),
        Variant("bjoern", "bjoern"),
        Variant("fastpysgi", "fastpysgi"),
        # waitress has no worker processes, only threads; one thread calls the app one
        # request at a time, which is the sync worker's contract.
        Variant("waitress", "waitress", threads=threads),
    )


def _asgi_peers() -> tuple[Variant, ...]:
    """pronghorn -k asgi and every ASGI peer, one worker process each (uvicorn: its one process)."""
    return (
        Variant("pronghorn", "pronghorn", "asgi"),
        Variant("gunicorn", "gunicorn", "asgi"),
        Variant("uvicorn", "uvicorn"),
        Variant("granian", "granian"),
        Variant("hypercorn", "hypercorn"),
    )


def _sse_body_length() -> int:
    """The SSE scenario's body, as bench/apps/asgi_apps.py makes it (one definition of the events)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("asgi_apps", APPS / "asgi_apps.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return int(module.SSE_BODY_LENGTH)


SSE_EVENTS = 16

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "hello",
        "hello world, keep-alive",
        "the fixed cost of a request: parsing, environ, start_response, one small write",
        "bench_apps:hello",
        _one_worker_peers(),
        expect_body=b"Hello, World!",
    ),
    Scenario(
        "close",
        "hello world, Connection: close",
        "a new connection per request, as nginx proxies by default: accept and close dominate",
        "bench_apps:hello",
        _one_worker_peers(),
        wrk_headers=("Connection: close",),
        expect_body=b"Hello, World!",
    ),
    Scenario(
        "django",
        "Django templated page",
        "a real Django project (startproject, default middleware) rendering a template with a loop",
        "django",
        _one_worker_peers(),
    ),
    Scenario(
        "big",
        "100 KB response",
        "writing a body larger than the socket buffer, with backpressure",
        "bench_apps:big",
        _one_worker_peers(),
        expect_length=100 * 1024,
    ),
    Scenario(
        "upload",
        "64 KB POST, echoed as its length",
        "reading a request body through wsgi.input",
        "bench_apps:upload",
        _one_worker_peers(),
        method="POST",
        wrk_script="post64k.lua",
        expect_body=str(UPLOAD_SIZE).encode(),
    ),
    Scenario(
        "stream",
        "streamed generator, no Content-Length",
        "16 x 1 KB yielded by a generator: the server frames it (chunked) and writes per chunk",
        "bench_apps:stream",
        _one_worker_peers(),
        expect_length=16 * 1024,
    ),
    Scenario(
        "file",
        "1 MB file via wsgi.file_wrapper",
        "sending a file (sendfile where the server uses it)",
        "bench_apps:file",
        _one_worker_peers(),
        expect_length=FILE_SIZE,
    ),
    Scenario(
        "gthread-sleep",
        "gthread, 4 threads, app sleeps 10 ms",
        "a thread pool under an app that waits: bound by 4 threads x 10 ms (at most ~400 req/s)",
        "bench_apps:sleep",
        (
            Variant("pronghorn gthread", "pronghorn", "gthread", threads=4),
            Variant("gunicorn gthread", "gunicorn", "gthread", threads=4),
            Variant("waitress 4 threads", "waitress", threads=4),
            Variant("granian 4 threads", "granian", threads=4),
        ),
        expect_body=b"Hello, World!",
    ),
    Scenario(
        "gthread-hello",
        "gthread, 4 threads, hello world",
        "the cost of handing each request to a pool thread and back",
        "bench_apps:hello",
        (
            Variant("pronghorn gthread", "pronghorn", "gthread", threads=4),
            Variant("gunicorn gthread", "gunicorn", "gthread", threads=4),
        ),
        expect_body=b"Hello, World!",
    ),
    Scenario(
        "gevent-sleep",
        "gevent, app sleeps 10 ms",
        "a greenlet per connection under an app that waits (time.sleep is patched to yield)",
        "bench_apps:sleep",
        (
            Variant("pronghorn gevent", "pronghorn", "gevent"),
            Variant("gunicorn gevent", "gunicorn", "gevent"),
        ),
        expect_body=b"Hello, World!",
    ),
    Scenario(
        "gevent-hello",
        "gevent, hello world",
        "the gevent worker's own cost per request",
        "bench_apps:hello",
        (
            Variant("pronghorn gevent", "pronghorn", "gevent"),
            Variant("gunicorn gevent", "gunicorn", "gevent"),
        ),
        expect_body=b"Hello, World!",
    ),
    Scenario(
        "access-log",
        "hello world, access log on",
        "the default worker writing Gunicorn's access-log line for every request (to /dev/null)",
        "bench_apps:hello",
        (
            Variant("pronghorn + log", "pronghorn", access_log="/dev/null"),
            Variant("pronghorn", "pronghorn"),
            Variant("gunicorn + log", "gunicorn", access_log="/dev/null"),
        ),
        expect_body=b"Hello, World!",
    ),
    Scenario(
        "two-workers",
        "hello world, 2 workers, unpinned",
        "two worker processes sharing the listener, server and wrk unpinned on both cores",
        "bench_apps:hello",
        (
            Variant("pronghorn -w 2", "pronghorn", workers=2),
            Variant("gunicorn -w 2", "gunicorn", workers=2),
            Variant("granian --workers 2", "granian", workers=2),
        ),
        pinned=False,
        expect_body=b"Hello, World!",
    ),
    Scenario(
        "proxied",
        "hello world as nginx forwards it, keep-alive",
        "a browser's request through a proxy: 10 headers, a unique X-Request-Id and a visitor's cookie each time",
        "bench_apps:hello",
        _one_worker_peers(),
        wrk_script="proxied.lua",
        expect_body=b"Hello, World!",
        probe_headers=tuple(PROXIED_HEADERS.items()),
        forwarded=True,
    ),
    Scenario(
        "proxied-log",
        "proxied, access log on (to a file)",
        "the proxied requests with each server's access log in its default format, written to a file",
        "bench_apps:hello",
        (
            # bjoern, FastPySGI and waitress have no access log of their own.
            Variant("pronghorn + log", "pronghorn", access_log="file"),
            Variant("gunicorn + log", "gunicorn", access_log="file"),
            Variant("granian + log", "granian", access_log="file"),
        ),
        wrk_script="proxied.lua",
        expect_body=b"Hello, World!",
        probe_headers=tuple(PROXIED_HEADERS.items()),
        forwarded=True,
    ),
    Scenario(
        "flask",
        "Flask app: jsonify with a path parameter, and a stream",
        "a small Flask app, GET /users/<id> (jsonify) and GET /stream (16 NDJSON lines) alternately",
        "flask_app:app",
        _one_worker_peers(),
        path="/users/42",
        more_probes=(("/stream", 1010),),
        wrk_script="flask.lua",
        expect_body=b'{"active":true,"id":42,"name":"user 42","roles":["reader","editor"]}\n',
    ),
    Scenario(
        "fixed-rate",
        "hello world at 50 % and 90 % of each server's peak",
        "latency (p50, p99, p99.9) at a fixed rate, a fraction of the server's peak hello rate in this run",
        "bench_apps:hello",
        (
            Variant("pronghorn 50 %", "pronghorn", rate_fraction=0.5),
            Variant("pronghorn 90 %", "pronghorn", rate_fraction=0.9),
            Variant("granian 50 %", "granian", rate_fraction=0.5),
            Variant("granian 90 %", "granian", rate_fraction=0.9),
            # After Granian's rows, so that Granian's peak is known when hello is not in the run.
            Variant("pronghorn at granian's 90 %", "pronghorn", rate_fraction=0.9, rate_of="granian"),
            *(
                Variant(f"{family} {percent} %", family, rate_fraction=percent / 100)
                for family in ("gunicorn", "bjoern", "fastpysgi", "waitress")
                for percent in (50, 90)
            ),
        ),
        wrk_script="paced.lua",
        expect_body=b"Hello, World!",
        kind="paced",
    ),
    Scenario(
        "idle-10k",
        "hello world beside 10,000 idle keep-alive connections",
        "50 active connections served while 10,000 served keep-alive connections sit idle",
        "bench_apps:hello",
        (
            Variant("pronghorn", "pronghorn"),
            # Gunicorn's sync worker closes every connection after its response; gevent is its
            # worker for many connections. waitress serves at most 100 connections by default.
            Variant("gunicorn gevent", "gunicorn", "gevent"),
            Variant("granian", "granian"),
            Variant("bjoern", "bjoern"),
            Variant("fastpysgi", "fastpysgi"),
        ),
        wrk_script="latency.lua",
        expect_body=b"Hello, World!",
        kind="idle",
    ),
    Scenario(
        "uwsgi-hello",
        "hello world through nginx's uwsgi_pass, keep-alive to nginx",
        "the uwsgi protocol: nginx (one worker, on wrk's CPU) passes each request in a new uwsgi "
        "connection to the server",
        "bench_apps:hello",
        (
            Variant("pronghorn --protocol uwsgi", "pronghorn"),
            Variant("gunicorn --protocol uwsgi", "gunicorn"),
            Variant("uWSGI", "uwsgi"),
        ),
        expect_body=b"Hello, World!",
        uwsgi=True,
    ),
    # -- HTTP/2 (issue 20): h2load, 50 streams over 10 connections, h2c (no TLS in the measurement) ---
    Scenario(
        "h2-hello",
        "WSGI hello world over HTTP/2 (h2c), 50 streams on 10 connections",
        "HTTP/2's cost per request (HPACK, frames, flow control, streams multiplexed on a connection) "
        "with one app call at a time",
        "bench_apps:hello",
        (
            Variant("pronghorn", "pronghorn"),
            # Gunicorn's sync worker has no HTTP/2 (it warns and serves HTTP/1.1); gthread with one
            # thread is its worker that speaks h2 and still calls the app one request at a time.
            Variant("gunicorn gthread 1 thread", "gunicorn", "gthread", threads=1),
            Variant("granian", "granian"),
        ),
        connections=10,
        streams=5,
        expect_body=b"Hello, World!",
        kind="h2",
    ),
    Scenario(
        "asgi-h2-hello",
        "ASGI hello world over HTTP/2 (h2c), 50 streams on 10 connections",
        "HTTP/2 with a task per stream on one event loop: the 50 streams run concurrently",
        "asgi_apps:hello",
        (
            Variant("pronghorn", "pronghorn", "asgi"),
            Variant("gunicorn", "gunicorn", "asgi"),
            Variant("granian", "granian"),
        ),
        connections=10,
        streams=5,
        expect_body=b"Hello, World!",
        interface="asgi",
        kind="h2",
    ),
    Scenario(
        "h2-tls-hello",
        "WSGI hello world over HTTP/2 with TLS (ALPN), 50 streams on 10 connections",
        "h2-hello with each server's own TLS (a self-signed P-256 certificate): the record layer's cost added",
        "bench_apps:hello",
        (
            Variant("pronghorn", "pronghorn"),
            Variant("gunicorn gthread 1 thread", "gunicorn", "gthread", threads=1),
            Variant("granian", "granian"),
        ),
        connections=10,
        streams=5,
        expect_body=b"Hello, World!",
        kind="h2",
        tls=True,
    ),
    # -- ASGI (issue 18): the same loads against ASGI 3 apps (bench/apps/asgi_apps.py) -------------
    Scenario(
        "asgi-hello",
        "ASGI hello world, keep-alive",
        "the fixed cost of an ASGI request: parsing, the scope, a task, receive/send, one small write",
        "asgi_apps:hello",
        _asgi_peers(),
        expect_body=b"Hello, World!",
        interface="asgi",
    ),
    Scenario(
        "asgi-post64k",
        "ASGI 64 KB POST, read by the app",
        "the body handed to the app as http.request messages, read to its end, answered with its length",
        "asgi_apps:upload",
        _asgi_peers(),
        method="POST",
        wrk_script="post64k.lua",
        expect_body=str(UPLOAD_SIZE).encode(),
        interface="asgi",
    ),
    Scenario(
        "asgi-100k",
        "ASGI 100 KB response",
        "one http.response.body larger than the socket buffer, written with backpressure",
        "asgi_apps:big",
        _asgi_peers(),
        expect_length=100 * 1024,
        interface="asgi",
    ),
    Scenario(
        "asgi-sse",
        "ASGI Server-Sent Events, a short stream of 16 events",
        "16 events of 81 bytes, one http.response.body (more_body) each, chunked: the cost per streamed event",
        "asgi_apps:sse",
        _asgi_peers(),
        expect_length=_sse_body_length(),
        interface="asgi",
        events_per_response=SSE_EVENTS,
    ),
    Scenario(
        "asgi-ws-echo",
        "ASGI WebSocket echo, 50 connections",
        "64-byte text messages echoed, one at a time per connection (bench/ws_echo.py): req/s is messages/s",
        "asgi_apps:echo",
        _asgi_peers(),
        interface="asgi",
        kind="ws",
    ),
)

TARGETS: tuple[Target, ...] = (
    Target("hello", "pronghorn", "granian", 1.25, "hello, keep-alive: >= 1.25 x Granian"),
    Target("hello", "pronghorn", "gunicorn", 10.0, "hello, keep-alive: >= 10 x Gunicorn sync"),
    Target("close", "pronghorn", "granian", 1.0, "hello, Connection: close: >= 1.0 x Granian"),
    Target("django", "pronghorn", "bjoern", 1.0, "Django page: >= 1.0 x bjoern"),
    Target("big", "pronghorn", "granian", 1.0, "100 KB response: >= 1.0 x Granian"),
    Target("upload", "pronghorn", "granian", 1.0, "64 KB upload: >= 1.0 x Granian"),
    Target("gthread-sleep", "pronghorn gthread", "gunicorn gthread", 1.0,
           "gthread, 10 ms sleep: >= 1.0 x Gunicorn gthread"),
    Target("gthread-hello", "pronghorn gthread", "gunicorn gthread", 5.0, "gthread, hello: >= 5 x Gunicorn gthread"),
    Target("gevent-hello", "pronghorn gevent", "gunicorn gevent", 4.0, "gevent, hello: >= 4 x Gunicorn gevent"),
    Target("access-log", "pronghorn + log", "pronghorn", 0.75, "access log costs <= 25 % of the hello rate"),
    Target("proxied", "pronghorn", "granian", 1.25, "proxied: >= 1.25 x Granian", 17),
    Target("proxied", "pronghorn", "bjoern", 0.9, "proxied: >= 0.9 x bjoern", 17),
    Target("proxied-log", "pronghorn + log", "pronghorn", 0.85, "proxied-log costs <= 15 % of proxied", 17,
           denominator_scenario="proxied"),
    Target("hello", "pronghorn", "bjoern", 0.9, "hello: >= 0.9 x bjoern", 17),
    Target("uwsgi-hello", "pronghorn --protocol uwsgi", "uWSGI", 1.0,
           "uwsgi through nginx: >= 1.0 x uWSGI", 20),
    Target("h2-hello", "pronghorn", "granian", 1.0, "h2 hello (h2c, WSGI): >= 1.0 x Granian --http 2", 20),
    Target("asgi-h2-hello", "pronghorn", "granian", 1.0,
           "h2 hello (h2c, ASGI): >= 1.0 x Granian ASGI --http 2", 20),
    Target("hello", "pronghorn", "fastpysgi", 0.8, "hello: >= 0.8 x FastPySGI", 17),
    Target("close", "pronghorn", "bjoern", 1.0, "close: >= 1.0 x bjoern", 17),
    Target("stream", "pronghorn", "granian", 1.2, "stream: >= 1.2 x Granian", 17),
    Target("flask", "pronghorn", "bjoern", 1.1, "flask: >= 1.1 x bjoern", 17),
    Target("fixed-rate", "pronghorn at granian's 90 %", "granian 90 %", 1.0,
           "fixed-rate at 90 % of Granian's peak: p99 <= Granian's (Granian's p99 / ours)", 17, metric="p99"),
    Target("idle-10k", "pronghorn", "pronghorn", 0.9, "idle-10k: active rate >= 0.9 x plain hello", 17,
           denominator_scenario="hello"),
    Target("idle-10k", "pronghorn", "", 64.0, "idle-10k: worker RSS <= 64 MiB (64 MiB / measured)", 17,
           metric="rss"),
    Target("asgi-hello", "pronghorn", "uvicorn", 2.0, "ASGI hello: >= 2 x uvicorn", 18),
    Target("asgi-hello", "pronghorn", "granian", 1.0, "ASGI hello: >= 1.0 x Granian ASGI", 18),
    Target("asgi-ws-echo", "pronghorn", "uvicorn", 1.5, "WebSocket echo: >= 1.5 x uvicorn", 18),
)


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


@dataclass
class Measurement:
    """One wrk run against one server."""

    rps: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    non_2xx: int
    rss_kib: int | None
    p999_ms: float | None = None  # from the scripts that print it (wrk --latency stops at p99)
    note: str = ""  # what else a scenario reports: the pace, the idle connections left, the log's size


@dataclass
class Cell:
    """Everything measured for one variant in one scenario, over all rounds."""

    runs: list[Measurement] = field(default_factory=list)
    unavailable: str | None = None  # why, when the server could not serve this scenario

    by_latency: bool = False  # paced runs: the best round is the one with the shortest p99, not the fastest

    def best(self) -> Measurement | None:
        if not self.runs:
            return None
        if self.by_latency:
            # Interference lengthens a paced run's tail; it never shortens it.
            return min(self.runs, key=lambda m: m.p99_ms)
        return max(self.runs, key=lambda m: m.rps)

    def errors(self) -> int:
        # Summed over every round, not taken from the best one: an error is never averaged away.
        return sum(m.socket_errors + m.non_2xx for m in self.runs)

    def peak_rss_kib(self) -> int | None:
        values = [m.rss_kib for m in self.runs if m.rss_kib is not None]
        return max(values) if values else None

    def spread(self) -> float | None:
        """How far the worst round fell below the best, as a fraction of the best."""
        if len(self.runs) < 2:
            return None
        rates = [m.rps for m in self.runs]
        return (max(rates) - min(rates)) / max(rates) if max(rates) else None


class Unavailable(Exception):
    """The server cannot run this scenario (not installed, failed to start, wrong answer)."""


# --------------------------------------------------------------------------------------
# Starting, probing and stopping servers
# --------------------------------------------------------------------------------------


@dataclass
class RunContext:
    """What the measurements of one run share."""

    workdir: Path  # the run's temp dir (fixtures, access logs)
    upload: bytes  # the upload scenario's body, as post64k.lua sends it
    peaks: dict[str, float] = field(default_factory=dict)  # family -> best hello req/s so far


@dataclass(frozen=True)
class AppLocation:
    """Where a scenario's app is imported from: its MODULE:CALLABLE and its directory."""

    target: str
    directory: Path


def access_log_path(scenario: Scenario, variant: Variant, workdir: Path) -> Path | None:
    """Where ``variant`` writes its access log in ``scenario``, or None when it writes none."""
    if variant.access_log is None:
        return None
    if variant.access_log == "file":
        return workdir / f"access--{scenario.key}--{variant.label.replace(' ', '_')}.log"
    return Path(variant.access_log)


def granian_log_config(path: Path, workdir: Path) -> Path:
    """A --log-config for Granian that sends its access log, in its default format, to ``path``.

    Granian's default configuration writes the access log to stdout; this keeps its formats
    and loggers and only points the access handler at a file, like the others' logs.
    """
    config = {
        "handlers": {
            "console": {"formatter": "generic", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
            "access": {"formatter": "access", "class": "logging.FileHandler", "filename": str(path)},
        },
    }
    target = workdir / f"granian-log-{path.stem}.json"
    target.write_text(json.dumps(config))
    return target


def server_argv(scenario: Scenario, variant: Variant, app: str, port: int, workdir: Path) -> list[str]:
    """The command line that starts ``variant`` serving ``app`` on HOST:port for ``scenario``."""
    bind = f"{HOST}:{port}"
    access_log = access_log_path(scenario, variant, workdir)
    if variant.family in ("pronghorn", "gunicorn"):
        # pronghorn takes Gunicorn's flags, so both are started by the same command line.
        argv = [str(VENV_BIN / variant.family), "-w", str(variant.workers), "-b", bind, "-k", variant.mode]
        if variant.mode == "gthread":
            argv += ["--threads", str(variant.threads)]
        if access_log is not None:
            argv += ["--access-logfile", str(access_log)]
        if scenario.forwarded:
            # The proxy is the client here: trust its X-Forwarded-* as behind nginx on the same host.
            argv += ["--forwarded-allow-ips", HOST]
        if scenario.uwsgi:
            argv += ["--protocol", "uwsgi"]
        if scenario.kind == "h2" and scenario.tls:
            cert, key = h2load_driver.make_certificate(workdir)
            argv += ["--http-protocols", "h2,h1", "--certfile", str(cert), "--keyfile", str(key)]
        elif scenario.kind == "h2":
            # Gunicorn 27's flags, which pronghorn shares. h2c is only for peers in
            # --forwarded-allow-ips, whose default (127.0.0.1) is the load's address.
            argv += ["--http-protocols", "h2,h1", "--http2-cleartext", "prior-knowledge"]
        if scenario.kind == "idle":
            # nginx's keepalive_timeout (75 s), so the idle connections outlive the run; and
            # room for them all in the gevent worker (the sync worker has no such limit).
            argv += ["--keep-alive", "75", "--worker-connections", str(IDLE_CONNECTIONS * 2)]
        return [*argv, app]
    if variant.family == "granian":
        argv = [
            str(VENV_BIN / "granian"), "--interface", scenario.interface, "--host", HOST, "--port", str(port),
            "--workers", str(variant.workers), "--blocking-threads", str(variant.threads),
            # Plain HTTP/1.1 like every other server here; in the h2 scenarios HTTP/2 only, which
            # without TLS is h2c with prior knowledge.
            "--http", "2" if scenario.kind == "h2" else "1",
        ]
        if scenario.tls:
            cert, key = h2load_driver.make_certificate(workdir)
            argv += ["--ssl-certificate", str(cert), "--ssl-keyfile", str(key)]
        if access_log is not None:
            argv += ["--access-log", "--log-config", str(granian_log_config(access_log, workdir))]
        else:
            argv += ["--no-access-log"]
        if scenario.kind == "idle":
            # Granian's backpressure (default: the backlog, 1024) bounds the connections a worker
            # serves at once; idle keep-alive ones count, so it is raised as Gunicorn's
            # worker_connections is.
            argv += ["--backpressure", str(IDLE_CONNECTIONS * 2)]
        return [*argv, app]
    if variant.family == "bjoern":
        return [sys.executable, str(BENCH / "runners" / "bjoern_run.py"), app, HOST, str(port)]
    if variant.family == "fastpysgi":
        # FastPySGI's own command line: one process, its defaults (no access log; it has none).
        return [str(VENV_BIN / "fastpysgi"), "--host", HOST, "--port", str(port), app]
    if variant.family == "waitress":
        return [str(VENV_BIN / "waitress-serve"), f"--listen={bind}", f"--threads={variant.threads}", app]
    if variant.family == "uwsgi":
        # uWSGI speaking its own protocol (--socket), one worker under its master, no request
        # log (as the others run without an access log); TERM stops it (uWSGI 2.0 reloads on it
        # otherwise).
        return [str(VENV_BIN / "uwsgi"), "--socket", bind, "--master", "--processes", str(variant.workers),
                "--module", app, "--need-app", "--disable-logging", "--die-on-term", "--pythonpath", str(APPS)]
    if variant.family == "uvicorn":
        # One process (uvicorn forks no worker for --workers 1), its fast pieces named rather than
        # left to "auto": httptools' parser, uvloop's loop. WebSockets: its default, the websockets
        # library. --log-level warning: no line per WebSocket connection (the others log none).
        return [str(VENV_BIN / "uvicorn"), "--host", HOST, "--port", str(port), "--loop", "uvloop",
                "--http", "httptools", "--no-access-log", "--log-level", "warning", app]
    if variant.family == "hypercorn":
        # One worker process on uvloop (its fastest loop); no access log unless asked for.
        return [str(VENV_BIN / "hypercorn"), "--bind", bind, "--workers", str(variant.workers),
                "--worker-class", "uvloop", app]
    raise ValueError(f"unknown server family {variant.family!r}")


def family_available(family: str) -> str | None:
    """None when the family's server is installed in this virtualenv, else why it is not."""
    if family == "bjoern":
        try:
            import bjoern  # noqa: F401  (only whether it imports matters)
        except ImportError:
            return "bjoern is not installed (it needs libev-dev to build: apt-get install -y libev-dev)"
        return None
    executable = {"waitress": "waitress-serve"}.get(family, family)
    if not (VENV_BIN / executable).exists():
        return f"{executable} is not installed in {VENV_BIN.parent}"
    return None


NGINX_UWSGI_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    uwsgi_temp_path {dir}/uwsgi;
    server {{
        listen {host}:{port};
        location / {{
            include /etc/nginx/uwsgi_params;
            uwsgi_pass {host}:{upstream};
        }}
    }}
}}
"""


def start_nginx(port: int, upstream: int, workdir: Path) -> subprocess.Popen[bytes]:
    """nginx on ``port`` passing every request to the uwsgi server on ``upstream``, pinned to
    wrk's CPU (the server under test keeps its own)."""
    if NGINX is None:
        raise Unavailable("nginx is not installed (apt-get install -y nginx-light)")
    where = workdir / f"nginx-{port}"
    where.mkdir()
    conf = where / "nginx.conf"
    conf.write_text(NGINX_UWSGI_CONF.format(dir=where, host=HOST, port=port, upstream=upstream))
    # (As root, nginx's workers run as nobody: they must reach nothing in the private temp dir but
    # what they never write to, since bodies stay in memory.)
    return subprocess.Popen(["taskset", "-c", CLIENT_CPU, NGINX, "-c", str(conf), "-p", str(where)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def free_port() -> int:
    # A fresh port per run: no server ever meets its predecessor's TIME_WAIT sockets.
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def server_env(app: AppLocation) -> dict[str, str]:
    env = dict(os.environ)
    # Settings the servers read from the environment would change what is measured.
    for name in ("WEB_CONCURRENCY", "PORT", "GUNICORN_CMD_ARGS", "PRONGHORN_CMD_ARGS", "DJANGO_SETTINGS_MODULE"):
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(app.directory), env.get("PYTHONPATH", "")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def probe(scenario: Scenario, port: int, upload: bytes) -> None:
    """Send the scenario's requests once; raise Unavailable unless every answer is right."""
    if scenario.kind == "ws":
        import ws_echo  # (bench/, this script's directory)

        try:
            ws_echo.probe(HOST, port, scenario.path)
        except ValueError as exc:
            raise Unavailable(f"WebSocket echo: {exc}") from exc
        return
    if scenario.kind == "h2":
        try:
            status, data = h2load_driver.probe(HOST, port, scenario.path, tls=scenario.tls)
        except ValueError as exc:
            raise Unavailable(f"HTTP/2 probe: {exc}") from exc
        if status != 200 or (scenario.expect_body is not None and data != scenario.expect_body):
            raise Unavailable(f"answered {status} with {data[:60]!r} over HTTP/2")
        return
    body = upload if scenario.method == "POST" else None
    status, data = fetch(port, scenario.method, scenario.path, body, dict(scenario.probe_headers))
    if status == 502 and scenario.uwsgi:  # nginx is up, the server behind it not yet: poll on
        raise ConnectionRefusedError("nginx answered 502: the uwsgi server is not answering yet")
    if status != 200:
        raise Unavailable(f"answered {status} to the scenario's request")
    if scenario.expect_body is not None and data != scenario.expect_body:
        raise Unavailable(f"wrong body: {data[:60]!r}")
    if scenario.expect_length is not None and len(data) != scenario.expect_length:
        raise Unavailable(f"wrong body length {len(data)}, expected {scenario.expect_length}")
    for path, length in scenario.more_probes:
        status, data = fetch(port, "GET", path, None, dict(scenario.probe_headers))
        if status != 200 or len(data) != length:
            raise Unavailable(f"answered {status} with {len(data)} bytes to GET {path}, expected 200 and {length}")


def fetch(port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_ready(proc: subprocess.Popen[bytes], scenario: Scenario, port: int, upload: bytes, log: Path) -> None:
    """Poll until the server answers the scenario's request correctly, or say why it never will."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise Unavailable(f"exited with status {proc.returncode}: {last_line(log)}")
        try:
            probe(scenario, port, upload)
            return
        except (http.client.HTTPException, OSError) as exc:  # refused, reset, timed out
            if time.monotonic() > deadline:
                raise Unavailable(f"not ready after {READY_TIMEOUT:.0f} s ({exc}): {last_line(log)}") from exc
        # Not a wait for readiness but the polling interval; it also notices an early exit.
        try:
            proc.wait(timeout=0.02)
        except subprocess.TimeoutExpired:
            pass


def last_line(log: Path) -> str:
    """The line of a server's log most likely to say why it stopped: its last error, else its last line."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    if not lines:
        return "(empty log)"
    # A traceback ends in "SomeError: why", but a master may log more after its worker's traceback.
    errors = [line for line in lines if re.match(r"^[\w.]*(Error|Exception)\b.*:", line)]
    return (errors or lines)[-1][:200]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, read from /proc (there is no portable call for it)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name sits in parentheses and may hold spaces; the fields after it are fixed.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def peak_rss_kib(pid: int) -> int | None:
    """The largest VmHWM (peak resident set) among the server's workers.

    A worker is any process below the one started; a server that does not fork (bjoern,
    waitress) is its own worker. A master's memory is not counted: it serves no request.
    """
    workers = descendants(pid) or [pid]
    peaks: list[int] = []
    for worker in workers:
        try:
            status = Path(f"/proc/{worker}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            peaks.append(int(match.group(1)))
    return max(peaks) if peaks else None


def worker_cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time so far of the server's workers (as peak_rss_kib finds them).

    Unlike req/s, CPU time per request hardly moves when other work shares the machine: a server
    that waits for its core is not charged for the wait. The split says where a request's time
    goes: the server's own code (user) or the kernel's side of its system calls (system).
    """
    ticks = os.sysconf("SC_CLK_TCK")
    user = system = 0
    for worker in descendants(pid) or [pid]:
        try:
            stat = Path(f"/proc/{worker}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        user += int(fields[11])  # utime, stime: fields 14 and 15 of proc(5)
        system += int(fields[12])
    return user / ticks, system / ticks


def cpu_note(before: tuple[float, float], after: tuple[float, float], count: int, unit: str) -> str:
    """The workers' CPU time per request (or message) between two readings, and its split."""
    user, system = ((b - a) / count * 1e6 for a, b in zip(before, after))
    return f"worker CPU {user + system:.1f} µs/{unit} (user {user:.1f}, system {system:.1f})"


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server's whole process group: TERM, then KILL whatever is left after the grace."""
    pgid = proc.pid  # start_new_session made the server the leader of its own group
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pass
    # Workers can outlive a master that died first; the group is not done until all are gone.
    deadline = time.monotonic() + STOP_TIMEOUT
    while True:
        try:
            os.killpg(pgid, signal.SIGKILL if time.monotonic() > deadline else 0)
        except ProcessLookupError:
            break
        if time.monotonic() > deadline + STOP_TIMEOUT:
            break
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------------------


def wrk_argv(scenario: Scenario, port: int, seconds: float, rate: float | None = None) -> list[str]:
    """wrk's command line for ``scenario``; ``rate``: paced at this many req/s (paced.lua), else full speed."""
    argv = [
        "wrk", "--latency", "-t", "1" if scenario.pinned else "2", "-c", str(scenario.connections),
        "-d", f"{max(1, round(seconds))}s",
    ]
    for header in scenario.wrk_headers:
        argv += ["-H", header]
    script = scenario.wrk_script
    if scenario.kind == "paced" and rate is None:
        script = None  # the warm-up and the peak run go at full speed
    if script:
        argv += ["-s", str(BENCH / script)]
    argv.append(f"http://{HOST}:{port}{scenario.path}")
    if script and rate is not None:
        argv += ["--", f"{rate:.0f}"]
    if scenario.pinned:
        argv = ["taskset", "-c", CLIENT_CPU, *argv]
    return argv


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _latency_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_p999(output: str) -> float | None:
    """The 99.9th percentile in ms, printed by the scripts' done() (wrk --latency stops at 99 %)."""
    match = re.search(r"^pronghorn-bench p99.9 (\d+) us$", output, re.MULTILINE)
    return int(match.group(1)) / 1000 if match else None


def parse_wrk(output: str) -> tuple[float, float, float, int, int]:
    """requests/s, p50 ms, p99 ms, socket errors, non-2xx/3xx responses from wrk --latency."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    if not (rps and p50 and p99):
        raise ValueError(f"could not read wrk's output:\n{output}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    socket_errors = sum(int(n) for n in errors.groups()) if errors else 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return (
        float(rps.group(1)), _latency_ms(p50.group(1)), _latency_ms(p99.group(1)),
        socket_errors, int(non_2xx.group(1)) if non_2xx else 0,
    )


def run_wrk(scenario: Scenario, port: int, seconds: float, rate: float | None = None) -> str:
    done = subprocess.run(
        wrk_argv(scenario, port, seconds, rate), capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    if done.returncode != 0:
        raise Unavailable(f"wrk failed ({done.returncode}): {done.stderr.strip()[:200]}")
    return done.stdout


# --------------------------------------------------------------------------------------
# One measurement
# --------------------------------------------------------------------------------------


def measure(
    scenario: Scenario, variant: Variant, app: AppLocation, seconds: float, warmup: float, context: RunContext,
    log: Path,
) -> Measurement:
    port = free_port()
    nginx: subprocess.Popen[bytes] | None = None
    if scenario.tls:
        try:
            h2load_driver.make_certificate(context.workdir)  # once per run; server_argv then finds it
        except h2load_driver.InvalidRun as exc:
            raise Unavailable(str(exc)) from exc
    if scenario.uwsgi:
        # The server listens on a port of its own; wrk and the probe talk to nginx on ``port``.
        upstream = free_port()
        argv = server_argv(scenario, variant, app.target, upstream, context.workdir)
        nginx = start_nginx(port, upstream, context.workdir)
    else:
        argv = server_argv(scenario, variant, app.target, port, context.workdir)
    if scenario.pinned:
        argv = ["taskset", "-c", SERVER_CPU, *argv]  # the master and every worker it forks
    access_log = access_log_path(scenario, variant, context.workdir)
    if access_log is not None and access_log.is_file():
        access_log.unlink()  # each round's log is its own: its size is reported
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            argv, cwd=app.directory, env=server_env(app), stdin=subprocess.DEVNULL,
            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
            # Only the idle scenario needs more descriptors than the default soft limit.
            preexec_fn=raise_descriptor_limit if scenario.kind == "idle" else None,
        )
        idle: IdleClients | None = None
        try:
            wait_ready(proc, scenario, port, context.upload, log)
            if scenario.kind == "idle":
                idle = IdleClients.start(port, IDLE_CONNECTIONS)
            if scenario.kind == "ws":
                # The echo client warms up on its own connections, then measures.
                cpu_before = worker_cpu_seconds(proc.pid)
                result, echoed = run_ws_echo(scenario, port, seconds, warmup)
                cpu_after = worker_cpu_seconds(proc.pid)
                result.rss_kib = peak_rss_kib(proc.pid)
                if echoed:
                    result.note += "; " + cpu_note(cpu_before, cpu_after, echoed, "message")
                if proc.poll() is not None:
                    raise Unavailable(f"died during the run: {last_line(log)}")
                return result
            if scenario.kind == "h2":
                result = run_h2load(scenario, proc.pid, port, seconds, warmup, context.workdir)
                if proc.poll() is not None:
                    raise Unavailable(f"died during the run: {last_line(log)}")
                return result
            if warmup > 0:
                # Not measured: lets every worker boot, lazy imports happen and caches fill.
                run_wrk(scenario, port, warmup)
            rate = None
            note = ""
            if scenario.kind == "paced":
                rate, note = paced_rate(scenario, variant, port, seconds, context)
            cpu_before = worker_cpu_seconds(proc.pid)
            output = run_wrk(scenario, port, seconds, rate)
            cpu_after = worker_cpu_seconds(proc.pid)
            # Read before stopping: VmHWM is gone with the process.
            rss = peak_rss_kib(proc.pid)
            if idle is not None:
                note = f"{idle.still_open():,} of {IDLE_CONNECTIONS:,} idle connections open after the run"
            if proc.poll() is not None:
                raise Unavailable(f"died during the run: {last_line(log)}")
        finally:
            if idle is not None:
                idle.stop()
            stop(proc)
            if nginx is not None:
                stop(nginx)
    rps, p50, p99, socket_errors, non_2xx = parse_wrk(output)
    if rate is not None and rps < rate * 0.95:
        # Its latencies then describe a saturated server, not one at this rate: say so beside them.
        note += f"; FELL BEHIND: {rps / rate * 100:.0f} % of the rate achieved"
    if scenario.key == "hello" and variant.workers == 1 and variant.mode == "sync":
        context.peaks[variant.family] = max(rps, context.peaks.get(variant.family, 0.0))
    if access_log is not None and access_log.is_file():
        size = access_log.stat().st_size
        if size == 0:
            raise Unavailable(f"its access log {access_log.name} stayed empty")
        note = f"access log: {size / 1024 / 1024:.1f} MiB"
    if scenario.events_per_response:
        note = f"{rps * scenario.events_per_response:,.0f} events/s"
    requests = parse_total_requests(output)
    if requests:
        note += f"{'; ' if note else ''}{cpu_note(cpu_before, cpu_after, requests, 'request')}"
    return Measurement(rps, p50, p99, socket_errors, non_2xx, rss, parse_p999(output), note)


def parse_total_requests(output: str) -> int:
    """How many requests wrk completed in the run ("N requests in 5.00s")."""
    match = re.search(r"^\s*(\d+) requests in ", output, re.MULTILINE)
    return int(match.group(1)) if match else 0


def run_h2load(scenario: Scenario, pid: int, port: int, seconds: float, warmup: float, workdir: Path) -> Measurement:
    """h2load against the server (pinned to the client's CPU, as wrk is): a warm-up run, then the
    measured one, whose every request must have succeeded (else the cell is unavailable, and says why)."""
    def command(duration: float, log_file: Path | None) -> list[str]:
        argv = h2load_driver.argv(HOST, port, scenario.path, scenario.connections, scenario.streams, duration,
                                  log_file, scenario.tls)
        return ["taskset", "-c", CLIENT_CPU, *argv] if scenario.pinned else argv

    log_file = workdir / "h2load-requests.tsv"
    protocol = "h2" if scenario.tls else "h2c"  # as h2load names what it spoke
    try:
        if warmup > 0:
            # Not measured, as wrk's warm-up; but a failed request here invalidates the run too.
            h2load_driver.parse(h2load_driver.run(command(warmup, None), warmup + 20), protocol)
        cpu_before = worker_cpu_seconds(pid)
        client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = h2load_driver.measure(command(seconds, log_file), log_file, seconds + 20, protocol)
        cpu_after = worker_cpu_seconds(pid)
        client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    except h2load_driver.InvalidRun as exc:
        raise Unavailable(str(exc)) from exc
    finally:
        log_file.unlink(missing_ok=True)
    # CPU time per request hardly moves with the machine's other work, unlike req/s.
    # and h2load's own CPU use (a client near a whole core would be measuring itself), as ws_echo's.
    client = (client_after.ru_utime - client_before.ru_utime) + (client_after.ru_stime - client_before.ru_stime)
    note = (f"{scenario.connections * scenario.streams} streams; "
            f"{cpu_note(cpu_before, cpu_after, max(1, result.done), 'request')}; "
            f"client CPU {client / max(1, round(seconds)) * 100:.0f} %")
    return Measurement(result.rps, result.p50_ms, result.p99_ms, 0, 0, peak_rss_kib(pid), result.p999_ms, note)


def run_ws_echo(scenario: Scenario, port: int, seconds: float, warmup: float) -> tuple[Measurement, int]:
    """bench/ws_echo.py against the server (pinned to the client's CPU, as wrk is): messages/s as req/s;
    and every message echoed, warm-up included (for the CPU per message)."""
    argv = [sys.executable, str(BENCH / "ws_echo.py"), "--host", HOST, "--port", str(port), "--path", scenario.path,
            "--connections", str(scenario.connections), "--duration", str(seconds), "--warmup", str(warmup)]
    if scenario.pinned:
        argv = ["taskset", "-c", CLIENT_CPU, *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + warmup + 60, check=False)
    if done.returncode != 0:
        raise Unavailable(f"ws_echo.py failed ({done.returncode}): {done.stderr.strip()[-200:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # A client near a whole core would be measuring itself: the note says how busy it was.
    note = f"messages/s; client CPU {result['client_cpu'] * 100:.0f} %"
    return (Measurement(result["rate"], result["p50_ms"], result["p99_ms"], result["errors"], 0, None,
                        result["p999_ms"], note), int(result["echoed"]))


def paced_rate(
    scenario: Scenario, variant: Variant, port: int, seconds: float, context: RunContext
) -> tuple[float, str]:
    """The rate a fixed-rate run paces at, and the note that says how it was chosen.

    It is a fraction of a peak hello rate of this run: the hello scenario's best so far, or, when
    hello is not in the run, a full-speed run of this same server now (then recorded for the
    rows that follow).
    """
    family = variant.rate_of or variant.family
    peak = context.peaks.get(family)
    if peak is None:
        if variant.rate_of is not None:
            raise Unavailable(f"{family}'s peak hello rate was not measured in this run (add {family} to --servers)")
        peak = parse_wrk(run_wrk(scenario, port, seconds))[0]
        context.peaks[family] = peak
    rate = peak * variant.rate_fraction
    return rate, f"paced at {rate:,.0f} req/s, {variant.rate_fraction * 100:.0f} % of {family}'s {peak:,.0f}"


def raise_descriptor_limit() -> None:
    """In the server's process, before exec: as many descriptors as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def descriptor_limit_problem() -> str | None:
    """Why the idle scenario cannot run here (the hard limit on descriptors is too low), or None."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = IDLE_CONNECTIONS + 1000
    if hard != resource.RLIM_INFINITY and hard < needed:
        return f"RLIMIT_NOFILE's hard limit is {hard}, below the {needed} descriptors this needs (ulimit -Hn)"
    return None


@dataclass
class IdleClients:
    """bench/idle_clients.py, holding the idle keep-alive connections, pinned beside wrk."""

    proc: subprocess.Popen[str]

    @classmethod
    def start(cls, port: int, count: int) -> IdleClients:
        argv = ["taskset", "-c", CLIENT_CPU, sys.executable, str(BENCH / "idle_clients.py"), HOST, str(port),
                str(count)]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                preexec_fn=raise_descriptor_limit)
        idle = cls(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline().split()  # the helper has its own deadline for this
        if len(line) != 2 or line[0] != "ready":
            idle.stop()
            raise Unavailable(f"the idle connections could not be opened ({' '.join(line) or 'helper failed'})")
        if int(line[1]) < count:
            idle.stop()
            raise Unavailable(f"served only {int(line[1]):,} of {count:,} idle connections")
        return idle

    def still_open(self) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline().split()[1])

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the helper closes its connections and exits
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --------------------------------------------------------------------------------------
# Fixtures made at run time: the Django project and the 1 MB file
# --------------------------------------------------------------------------------------

DJANGO_VIEW = '''\
from django.shortcuts import render

ITEMS = [{"name": f"item {i}", "price": i * 1.5, "tags": ["a", "b", "c"][: i % 3 + 1]} for i in range(20)]


def page(request):
    return render(request, "page.html", {"title": "pronghorn benchmark", "items": ITEMS})
'''

DJANGO_TEMPLATE = """\
<!doctype html>
<html><head><title>{{ title }}</title></head>
<body>
<h1>{{ title|upper }}</h1>
<table>
{% for item in items %}
<tr class="{% cycle 'odd' 'even' %}"><td>{{ forloop.counter }}</td><td>{{ item.name|title }}</td>
<td>{{ item.price|floatformat:2 }}</td><td>{{ item.tags|join:", " }}</td></tr>
{% endfor %}
</table>
</body></html>
"""


def make_django_project(workdir: Path) -> AppLocation:
    """A project as ``django-admin startproject`` makes it, plus one templated view at ``/``."""
    directory = workdir / "django"
    directory.mkdir()
    subprocess.run([str(VENV_BIN / "django-admin"), "startproject", "benchsite", str(directory)], check=True)
    package = directory / "benchsite"
    (package / "templates").mkdir()
    (package / "templates" / "page.html").write_text(DJANGO_TEMPLATE)
    (package / "views.py").write_text(DJANGO_VIEW)
    settings = (package / "settings.py").read_text()
    settings = settings.replace("DEBUG = True", "DEBUG = False")
    settings = settings.replace("ALLOWED_HOSTS = []", "ALLOWED_HOSTS = ['*']")
    settings = settings.replace("'DIRS': [],", "'DIRS': [BASE_DIR / 'benchsite' / 'templates'],")
    settings = settings.replace('"DIRS": [],', '"DIRS": [BASE_DIR / "benchsite" / "templates"],')
    if "DEBUG = False" not in settings or "benchsite' / 'templates'" not in settings.replace('"', "'"):
        raise RuntimeError("this Django's settings.py template changed; update make_django_project")
    (package / "settings.py").write_text(settings)
    urls = (package / "urls.py").read_text()
    urls = urls.replace("from django.urls import path", "from django.urls import path\n\nfrom . import views")
    urls = urls.replace("urlpatterns = [", "urlpatterns = [\n    path('', views.page),", 1)
    (package / "urls.py").write_text(urls)
    return AppLocation("benchsite.wsgi:application", directory)


# --------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    found: dict[str, str] = {"Python": platform.python_version()}
    for dist in ("pronghorn", "gunicorn", "granian", "bjoern", "fastpysgi", "waitress", "uvicorn", "hypercorn",
                 "Django", "Flask", "gevent", "uvloop", "httptools", "wsproto", "websockets", "h2"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = "not installed"
    # The commit measured, and whether the tree had changes on top of it (the install is editable).
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "pronghorn"],
                           capture_output=True, text=True, check=False).stdout.strip()
    if head:
        found["pronghorn"] += f" (commit {head}{', with uncommitted changes to pronghorn/' if dirty else ''})"
    # Whether the per-request modules ran compiled (bench/run builds them into the tree).
    described = subprocess.run([sys.executable, "-c", "from pronghorn.compiled import describe; print(describe())"],
                               capture_output=True, text=True, check=False, cwd=str(ROOT)).stdout.strip()
    found["pronghorn"] += f" ({described or 'unknown build'})"
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    found["wrk"] = ((wrk.stdout or wrk.stderr).split() or ["?", "?"])[1]
    if h2load_driver.H2LOAD is not None:
        h2load = subprocess.run([h2load_driver.H2LOAD, "--version"], capture_output=True, text=True, check=False)
        found["h2load"] = (h2load.stdout.split() or ["?"])[-1]  # "h2load nghttp2/1.52.0"
    return found


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, Linux {platform.release()}"


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def fmt_ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def table_rows(scenarios: Sequence[Scenario], cells: dict[tuple[str, str], Cell]) -> list[list[str]]:
    rows: list[list[str]] = []
    for scenario in scenarios:
        baseline = cells.get((scenario.key, scenario.variants[0].label))
        base = baseline.best() if baseline else None
        for variant in scenario.variants:
            cell = cells.get((scenario.key, variant.label))
            if cell is None:
                continue
            best = cell.best()
            if best is None:
                reason = cell.unavailable or "no result"
                rows.append([scenario.key, variant.label, "unavailable", "", "", "", "", "", "", "", reason])
                continue
            rss = cell.peak_rss_kib()
            spread = cell.spread()
            if scenario.kind == "paced":
                ratio = ""  # the rate is set, not measured: compare the latencies
            elif variant is scenario.variants[0]:
                ratio = "(base)"
            elif base is not None and best.rps > 0:
                ratio = f"{base.rps / best.rps:.2f}"
            else:
                ratio = "n/a"
            rows.append([
                scenario.key, variant.label, fmt_rate(best.rps), fmt_ms(best.p50_ms), fmt_ms(best.p99_ms),
                fmt_ms(best.p999_ms) if best.p999_ms is not None else "", str(cell.errors()),
                f"{rss / 1024:.1f}" if rss is not None else "?", ratio,
                f"{spread * 100:.0f} %" if spread is not None else "", best.note,
            ])
    return rows


HEADERS = ["scenario", "server", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "errors", "worker RSS MiB",
           "pronghorn ÷ this", "spread", "notes"]
NUMERIC = {2, 3, 4, 5, 6, 7, 8}
NOTES = 10


def render_text(rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [HEADERS, *rows]) for i in range(len(HEADERS))]
    lines = []
    previous = None
    for row in [HEADERS, *rows]:
        if previous is not None and row[0] != previous and row is not HEADERS:
            lines.append("")
        cells = []
        for i, value in enumerate(row):
            if row is not HEADERS and row[2] == "unavailable" and i == NOTES:
                cells.append(f"({value})")
            elif i in NUMERIC:
                cells.append(str(value).rjust(widths[i]))
            else:
                cells.append(str(value).ljust(widths[i]))
        lines.append("  ".join(cells).rstrip())
        previous = row[0] if row is not HEADERS else None
    return "\n".join(lines)


def render_markdown_table(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(HEADERS) + " |", "|" + "|".join("---:" if i in NUMERIC else "---"
                                                             for i in range(len(HEADERS))) + "|"]
    for row in rows:
        out.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return "\n".join(out)


def target_rows(cells: dict[tuple[str, str], Cell], scenario_keys: set[str]) -> list[list[str]]:
    rows: list[list[str]] = []
    for target in TARGETS:
        denominator_scenario = target.denominator_scenario or target.scenario
        if target.scenario not in scenario_keys or denominator_scenario not in scenario_keys:
            continue
        text = f"issue {target.issue}: {target.text}"
        top = cells.get((target.scenario, target.numerator))
        top_best = top.best() if top else None
        if target.metric == "rss":
            rss = top.peak_rss_kib() if top else None
            if not rss:
                rows.append([text, "n/a", "not measured"])
                continue
            ratio = target.minimum * 1024 / rss
            rows.append([f"{text} ({rss / 1024:.1f} MiB)", f"{ratio:.2f}", "met" if ratio >= 1.0 else "NOT met"])
            continue
        bottom = cells.get((denominator_scenario, target.denominator))
        bottom_best = bottom.best() if bottom else None
        if top_best is None or bottom_best is None:
            rows.append([text, "n/a", "not measured"])
            continue
        if target.metric == "p99":
            ratio = bottom_best.p99_ms / top_best.p99_ms if top_best.p99_ms else 0.0
        elif bottom_best.rps:
            ratio = top_best.rps / bottom_best.rps
        else:
            rows.append([text, "n/a", "not measured"])
            continue
        rows.append([text, f"{ratio:.2f}", "met" if ratio >= target.minimum else "NOT met"])
    # Worker memory: pronghorn's worker against Gunicorn sync's, in the plain hello scenario.
    if "hello" in scenario_keys:
        ours = cells.get(("hello", "pronghorn"))
        theirs = cells.get(("hello", "gunicorn"))
        ours_rss = ours.peak_rss_kib() if ours else None
        theirs_rss = theirs.peak_rss_kib() if theirs else None
        if ours_rss and theirs_rss:
            ratio = ours_rss / theirs_rss
            rows.append([
                f"issue 7: worker RSS <= Gunicorn sync's ({ours_rss / 1024:.1f} vs {theirs_rss / 1024:.1f} MiB)",
                f"{ratio:.2f}", "met" if ratio <= 1.0 else "NOT met",
            ])
        else:
            rows.append(["issue 7: worker RSS <= Gunicorn sync's", "n/a", "not measured"])
    return rows


def render_markdown(
    rows: list[list[str]], targets: list[list[str]], header: dict[str, str], scenarios: Sequence[Scenario]
) -> str:
    parts = [f"Taken {header['date']} with `{header['command']}`.", ""]
    parts += [f"- Machine: {header['machine']}", f"- Load average before the run: {header['load']}",
              f"- Versions: {header['versions']}", f"- {header['method']}"]
    if header.get("note"):
        parts.append(f"- Note: {header['note']}")
    parts += ["", render_markdown_table(rows), ""]
    if targets:
        parts += ["Targets (issues 7, 17, 18 and 20), as measured in this run:", "",
                  "| target | measured ratio | |", "|---|---:|---|"]
        parts += ["| " + " | ".join(row) + " |" for row in targets]
        parts.append("")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------


def pick(all_items: Iterable[str], wanted: str | None, what: str) -> list[str]:
    names = list(all_items)
    if not wanted:
        return names
    chosen = [name.strip() for name in wanted.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in names]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (choose from {', '.join(names)})")
    return chosen


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run",
        description="Benchmark pronghorn against Gunicorn, Granian, bjoern, FastPySGI and waitress (WSGI) and "
        "Gunicorn -k asgi, uvicorn, Granian and hypercorn (ASGI) with wrk, "
        "one worker pinned to CPU 0 and wrk pinned to CPU 1. See docs/performance.md.",
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of measurement per run (default 5)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over every server and scenario (default 2)")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="unmeasured seconds of wrk before each run (default 1)")
    parser.add_argument("--scenarios", help="comma-separated scenario keys (default: all; see --list)")
    parser.add_argument("--servers", help=f"comma-separated server families (default: all of {', '.join(FAMILIES)})")
    parser.add_argument("--markdown", type=Path, help="also write the report as markdown to this file")
    parser.add_argument("--note", help="a sentence to put in the markdown report (e.g. what else ran)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if args.list:
        for scenario in SCENARIOS:
            servers = ", ".join(v.label for v in scenario.variants)
            print(f"{scenario.key:14} {scenario.title}")
            print(f"{'':14} measures {scenario.measures}\n{'':14} servers: {servers}")
        return 0
    if args.rounds < 1 or args.duration <= 0:
        raise SystemExit("--rounds must be at least 1 and --duration positive")
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install -y {'wrk' if tool == 'wrk' else 'util-linux'})")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("the harness pins the server to CPU 0 and wrk to CPU 1: it needs two CPUs")

    keys = pick((s.key for s in SCENARIOS), args.scenarios, "scenario")
    families = set(pick(FAMILIES, args.servers, "server"))
    families.add("pronghorn")  # every ratio is pronghorn's; it always runs
    scenarios = [s for s in SCENARIOS if s.key in keys]
    plan = [(s, [v for v in s.variants if v.family in families]) for s in scenarios]
    runs_per_round = sum(len(variants) for _, variants in plan)
    estimate = runs_per_round * args.rounds * (args.duration + args.warmup + 1.5)
    print(f"bench: {len(scenarios)} scenarios, {runs_per_round} servers per round, {args.rounds} rounds: "
          f"about {estimate / 60:.1f} min", file=sys.stderr)

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    started = datetime.datetime.now().astimezone()
    LOGS.mkdir(exist_ok=True)
    cells: dict[tuple[str, str], Cell] = {}

    with tempfile.TemporaryDirectory(prefix="pronghorn-bench-") as tmp:
        workdir = Path(tmp)
        context = RunContext(workdir, b"u" * UPLOAD_SIZE)  # the same body as post64k.lua sends
        bench_file = workdir / "1mb.bin"
        bench_file.write_bytes(os.urandom(FILE_SIZE))
        os.environ["BENCH_FILE"] = str(bench_file)
        apps: dict[str, AppLocation] = {}
        for scenario in scenarios:
            if scenario.app == "django" and "django" not in apps:
                apps["django"] = make_django_project(workdir)
            elif scenario.app != "django":
                apps[scenario.app] = AppLocation(scenario.app, APPS)

        for round_number in range(1, args.rounds + 1):
            for scenario, variants in plan:
                for variant in variants:
                    cell = cells.setdefault((scenario.key, variant.label), Cell(by_latency=scenario.kind == "paced"))
                    if cell.unavailable is not None:
                        continue  # it failed in an earlier round and would only fail again
                    missing = family_available(variant.family)
                    if missing is None and scenario.kind == "idle":
                        missing = descriptor_limit_problem()
                    if missing:
                        cell.unavailable = missing
                        continue
                    log = LOGS / f"{scenario.key}--{variant.label.replace(' ', '_')}.log"
                    try:
                        result = measure(scenario, variant, apps[scenario.app], args.duration, args.warmup,
                                         context, log)
                    except Unavailable as exc:
                        cell.unavailable = str(exc)
                        print(f"  round {round_number} {scenario.key:14} {variant.label:22} unavailable: {exc}",
                              file=sys.stderr)
                        continue
                    cell.runs.append(result)
                    print(f"  round {round_number} {scenario.key:14} {variant.label:22} {result.rps:>10,.0f} req/s"
                          f"  p99 {fmt_ms(result.p99_ms)} ms  errors {result.socket_errors + result.non_2xx}"
                          f"{'  ' + result.note if result.note else ''}", file=sys.stderr)

    rows = table_rows(scenarios, cells)
    targets = target_rows(cells, set(keys))
    method = (f"{args.rounds} rounds of {args.duration:g} s (after {args.warmup:g} s of warm-up), interleaved; "
              "each cell is its best round (errors: summed over all rounds; RSS: peak VmHWM of a worker process). "
              "\"pronghorn ÷ this\" is the req/s of the scenario's first row (pronghorn) divided by this row's.")
    print()
    print(render_text(rows))
    if targets:
        print()
        width = max(len(row[0]) for row in targets)
        for row in targets:
            print(f"{row[0]:{width}}  {row[1]:>6}  {row[2]}")
    print()
    print(method)
    print(f"Server logs of the last run of each cell: {LOGS}")

    if args.markdown:
        header = {
            "date": started.strftime("%Y-%m-%d %H:%M %Z"),
            "command": shlex.join(["bench/run", *argv]),
            "machine": machine(),
            "load": load,
            "versions": ", ".join(f"{name} {version}" for name, version in versions().items()),
            "method": method,
            "note": args.note or "",
        }
        args.markdown.write_text(render_markdown(rows, targets, header, scenarios))
        print(f"Markdown report written to {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""HTTP/2 (issue 20): curl over TLS (ALPN) and in cleartext with prior knowledge, h2load with many
streams, and python-hyper's h2 as a raw client for RFC 9113 §8's refusals, flow control, and the
known attacks (rapid reset, CONTINUATION flood, HPACK bomb, SETTINGS and PING floods).

Every server is a real pronghorn process, under the sync, gthread and asgi worker classes."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import ROOT, Server, connect
from gunicorn_side import start_gunicorn  # noqa: F401  (a fixture)
from master_util import poll

h2 = pytest.importorskip("h2", reason="HTTP/2 needs h2: pip install 'pronghorn[http2]'")
import h2.config  # noqa: E402
import h2.connection  # noqa: E402
import h2.events  # noqa: E402
import h2.settings  # noqa: E402
from hyperframe.frame import ContinuationFrame, HeadersFrame  # noqa: E402

from test_tls import _openssl, pki  # noqa: E402,F401  (the certificates fixture)

KINDS = ("sync", "gthread", "asgi", "gevent")
H2C = ("--http-protocols", "h2,h1", "--http2-cleartext", "prior-knowledge")
ENHANCE_YOUR_CALM = 11


def app_for(kind: str) -> list[str]:
    if kind == "asgi":
        return ["-k", "asgi", "h2_app:asgi"]
    if kind == "gthread":
        return ["-k", "gthread", "--threads", "4", "h2_app:app"]
    if kind == "gevent":
        return ["-k", "gevent", "h2_app:app"]
    return ["h2_app:app"]


def start(kind: str, *flags: str, calls: Path | None = None,
          bind: str = "127.0.0.1:0") -> tuple[Server, str]:
    *options, app = app_for(kind)
    env = {"H2_CALLS": str(calls)} if calls is not None else None
    server = Server(["-b", bind, *options, *flags, app], env=env)
    (address,) = server.addresses(1)
    poll(lambda: _answers(address), "the worker to answer", server=server)
    return server, address


def _answers(address: str) -> bool:
    try:
        with connect(address, timeout=2) as raw:
            sock = raw
            if address.startswith("https:"):
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                sock = context.wrap_socket(raw)
            sock.sendall(b"GET /__ready HTTP/1.1\r\nHost: ready\r\nConnection: close\r\n\r\n")
            return bool(sock.recv(1))
    except OSError:
        return False


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "gevent":
        pytest.importorskip("gevent", reason="the gevent worker needs gevent (the test extra)")
    return str(request.param)


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


class Client:
    """A raw HTTP/2 client over a plain socket (prior knowledge), h2's validation off so that it
    can send what a hostile client sends."""

    def __init__(self, address: str, **settings: int) -> None:
        self.sock = connect(address, timeout=10)
        config = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                           validate_outbound_headers=False,
                                           normalize_outbound_headers=False,
                                           validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings({getattr(h2.settings.SettingCodes, k.upper()): v
                                       for k, v in settings.items()})
        self.flush()
        self.responses: dict[int, dict[str, Any]] = {}
        self.terminated: int | None = None  # the GOAWAY's error code
        self.eof = False

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path: str = "/", method: str = "GET", body: bytes | None = None,
                extra: list[tuple[bytes, bytes]] | None = None, authority: bytes | None = b"t",
                end: bool = True) -> int:
        sid = self.conn.get_next_available_stream_id()
        headers = [(b":method", method.encode()), (b":scheme", b"http"),
                   (b":path", path.encode())]
        if authority is not None:
            headers.append((b":authority", authority))
        headers += extra or []
        self.conn.send_headers(sid, headers, end_stream=body is None and end)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=end)
        self.flush()
        self.responses[sid] = {"status": None, "headers": {}, "data": b"", "ended": False,
                               "reset": None}
        return sid

    def pump(self, done: Any, timeout: float = 10.0, ack: bool = True) -> None:
        """Read until done() or the connection ends; ``ack``: give the server its window back."""
        deadline = time.monotonic() + timeout
        while not done() and not self.eof:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            except socket.timeout:
                raise AssertionError(f"timed out: {self.responses} {self.terminated}") from None
            if not data:
                self.eof = True
                break
            for event in self.conn.receive_data(data):
                self._event(event, ack)
            try:
                self.flush()
            except OSError:
                self.eof = True

    def _event(self, event: Any, ack: bool) -> None:
        sid = getattr(event, "stream_id", None)
        response = self.responses.get(sid) if sid else None
        if isinstance(event, (h2.events.ResponseReceived, h2.events.InformationalResponseReceived)):
            assert response is not None
            headers = dict(event.headers)
            response.setdefault("interim", [])
            if isinstance(event, h2.events.InformationalResponseReceived):
                response["interim"].append(headers)
            else:
                response["status"] = int(headers[b":status"])
                response["headers"] = headers
        elif isinstance(event, h2.events.DataReceived) and response is not None:
            response["data"] += event.data
            if ack:
                self.conn.acknowledge_received_data(event.flow_controlled_length, sid)
            elif event.flow_controlled_length:  # the connection's window only: the stream stalls
                self.conn.increment_flow_control_window(event.flow_controlled_length)
        elif isinstance(event, h2.events.StreamEnded) and response is not None:
            response["ended"] = True
        elif isinstance(event, h2.events.StreamReset) and response is not None:
            response["reset"] = event.error_code
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.terminated = event.error_code

    def get(self, sid: int) -> dict[str, Any]:
        response = self.responses[sid]
        self.pump(lambda: response["ended"] or response["reset"] is not None)
        return response

    def close(self) -> None:
        self.sock.close()


def calls_of(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


# -- curl: TLS with ALPN, and cleartext with prior knowledge ----------------------------------------


needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")


@needs_curl
def test_curl_http2_over_tls_and_http11_alongside(kind: str, pki: dict[str, Path]) -> None:  # noqa: F811
    server, address = start(kind, "--certfile", str(pki["server.pem"]), "--keyfile",
                            str(pki["server.key"]), "--http-protocols", "h2,h1")
    try:
        url = address.replace("127.0.0.1", "localhost") + "/echo?q=1"
        resolve = f"localhost:{address.rsplit(':', 1)[1]}:127.0.0.1"
        common = ["curl", "-s", "--cacert", str(pki["ca.pem"]), "--resolve", resolve,
                  "-w", "\n%{http_version}"]
        out = subprocess.run([*common, "--http2", "-d", "hello", url], capture_output=True,
                             text=True, timeout=30).stdout
        body, version = out.rsplit("\n", 1)
        assert version == "2"
        echoed = json.loads(body)
        assert echoed["protocol"] == ("HTTP/2" if kind == "asgi" else "HTTP/2.0")
        assert (echoed["method"], echoed["body"], echoed["scheme"]) == ("POST", "hello", "https")
        out = subprocess.run([*common, "--http1.1", url], capture_output=True, text=True,
                             timeout=30).stdout
        assert out.rsplit("\n", 1)[1] == "1.1"
    finally:
        server.stop()


@needs_curl
def test_curl_prior_knowledge_in_cleartext(kind: str) -> None:
    server, address = start(kind, *H2C, "--access-logfile", "-")
    try:
        base = ["curl", "-s", "--http2-prior-knowledge", "-w", "\n%{http_version}"]
        out = subprocess.run([*base, "-H", "Cookie: a=1", "-H", "Cookie: b=2",
                              address + "/echo?x=y"], capture_output=True, text=True,
                             timeout=30).stdout
        body, version = out.rsplit("\n", 1)
        echoed = json.loads(body)
        assert version == "2"
        assert echoed["host"] == address.split("//")[1]  # :authority became Host
        assert echoed["query"] == "x=y" and echoed["cookie"] == "a=1; b=2"
        head = subprocess.run(["curl", "-s", "-I", "--http2-prior-knowledge", address + "/big?n=10"],
                              capture_output=True, text=True, timeout=30).stdout
        assert head.startswith("HTTP/2 200") and "content-length: 10" in head.lower()
        assert "connection:" not in head.lower()
        # The access log shows the protocol as Gunicorn's does for an h2 request.
        line = poll(lambda: next((ln for ln in server.output.splitlines()
                                  if "/echo?x=y" in ln), None), "the access line", server=server)
        assert (' HTTP/2" ' if kind == "asgi" else ' HTTP/2.0" ') in line, line
    finally:
        server.stop()


@needs_curl
def test_curl_upgrade_to_h2c(kind: str) -> None:
    """--http2-cleartext upgrade: an HTTP/1.1 request with Upgrade: h2c gets a 101 and its
    response as stream 1; the connection goes on in HTTP/2. An untrusted peer's Upgrade is
    ignored (HTTP/1.1, as if off)."""
    for trusted, expected in (("127.0.0.1", "2"), ("10.9.9.9", "1.1")):
        server, address = start(kind, "--http-protocols", "h2,h1", "--http2-cleartext", "upgrade",
                                "--forwarded-allow-ips", trusted)
        try:
            out = subprocess.run(["curl", "-s", "--http2", "-w", "\n%{http_version}\n", "-d",
                                  "abc", address + "/echo", address + "/big?n=100000"],
                                 capture_output=True, text=True, timeout=30).stdout
            first, version, big, version2 = out.splitlines()
            assert version == version2 == expected
            assert json.loads(first)["body"] == "abc"
            assert big == "x" * 100000
        finally:
            server.stop()


def test_prior_knowledge_is_for_trusted_peers_only(tmp_path: Path) -> None:
    """A trusted peer that does not open with the preface is refused (400), as in Gunicorn 27; an
    untrusted one is served HTTP/1.1 as if h2c were off; with "both" a trusted HTTP/1.1 client is
    served too."""
    request = b"GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    server, address = start("sync", *H2C)
    try:
        with connect(address) as sock:
            sock.sendall(request)
            assert sock.recv(100).startswith(b"HTTP/1.1 400")
    finally:
        server.stop()
    server, address = start("sync", *H2C, "--forwarded-allow-ips", "10.9.9.9")
    try:
        with connect(address) as sock:
            sock.sendall(request)
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        server.stop()
    server, address = start("sync", "--http-protocols", "h2,h1", "--http2-cleartext", "both")
    try:
        with connect(address) as sock:
            sock.sendall(request)
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
        client = Client(address)
        assert client.get(client.request("/echo"))["status"] == 200
        client.close()
    finally:
        server.stop()


def test_h2_without_the_library_is_a_clear_start_up_error(tmp_path: Path) -> None:
    # (sys.modules["h2"] = None: the import system's way to say a module is not there)
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['h2'] = None\n")
    result = subprocess.run(
        [sys.executable, "-m", "pronghorn", "--http-protocols", "h2,h1",
         "--check-config", "h2_app:app"], capture_output=True, text=True, timeout=60,
        cwd=ROOT / "tests" / "apps", env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode != 0
    assert "pip install 'pronghorn[http2]'" in result.stderr, result.stderr


# -- many streams ------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("h2load") is None, reason="needs h2load (apt-get install nghttp2-client)")
def test_h2load_many_streams_all_succeed(kind: str) -> None:
    server, address = start(kind, *H2C)
    try:
        result = subprocess.run(["h2load", "-n", "2000", "-c", "10", "-m", "5", address + "/"],
                                capture_output=True, text=True, timeout=120)
        assert "2000 succeeded, 0 failed, 0 errored" in result.stdout, result.stdout
        assert "2000 2xx" in result.stdout
    finally:
        server.stop()


def test_each_worker_class_keeps_its_concurrency_for_streams(kind: str) -> None:
    """Four streams at once on one connection: the sync worker runs them one at a time (they
    queue, as its requests do); gthread on its threads, asgi as tasks, gevent as greenlets."""
    server, address = start(kind, *H2C)
    client = Client(address)
    try:
        sids = [client.request("/overlap") for _ in range(4)]
        overlap = max(int(client.get(sid)["data"]) for sid in sids)
        assert overlap == 1 if kind == "sync" else overlap > 1, overlap
    finally:
        client.close()
        server.stop()


# -- requests: RFC 9113 §8 and the HTTP/1.1 limits ---------------------------------------------------


def test_requests_become_what_the_http11_path_gives(kind: str) -> None:
    server, address = start(kind, *H2C)
    client = Client(address)
    try:
        sid = client.request("/echo?a=b", "POST", b"0123456789",
                             extra=[(b"content-type", b"text/plain")])
        response = client.get(sid)
        echoed = json.loads(response["data"])
        assert response["status"] == 200
        assert (echoed["body"], echoed["length"], echoed["host"]) == ("0123456789", "10", "t")
        assert b"connection" not in response["headers"]
        assert b"date" in response["headers"] and b"server" in response["headers"]
        # A body without content-length: its length is what arrived.
        sid = client.request("/echo", "PUT", b"abc")
        assert json.loads(client.get(sid)["data"])["length"] == "3"
        if kind != "asgi":  # 103 Early Hints go out as an interim HEADERS frame
            response = client.get(client.request("/hints"))
            assert response["interim"][0][b":status"] == b"103"
            assert response["status"] == 200
    finally:
        client.close()
        server.stop()


@pytest.mark.parametrize("case", ["connection-header", "host-differs", "no-authority",
                                  "length-mismatch", "too-many-fields", "body-too-large",
                                  "uppercase-name", "bad-path"])
def test_malformed_requests_are_refused_before_the_app(case: str, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    server, address = start("sync", *H2C, "--limit-request-body", "100", calls=calls)
    client = Client(address)
    try:
        extra: list[tuple[bytes, bytes]] = []
        body = None
        authority: bytes | None = b"t"
        path = "/bad"
        if case == "connection-header":
            extra = [(b"connection", b"keep-alive")]
        elif case == "host-differs":
            extra = [(b"host", b"other")]
        elif case == "no-authority":
            authority = None
        elif case == "length-mismatch":
            extra, body = [(b"content-length", b"5")], b"0123456789"
        elif case == "too-many-fields":
            extra = [(b"x-f%d" % i, b"v") for i in range(150)]
        elif case == "body-too-large":
            body = b"z" * 500
        elif case == "uppercase-name":
            extra = [(b"X-Upper", b"v")]
        elif case == "bad-path":
            path = "no-slash"
        sid = client.request(path, "POST" if body else "GET", body, extra, authority)
        response = client.get(sid)
        assert response["status"] in (400, 413, 431, None), response
        if response["status"] is None:  # refused by a reset or a GOAWAY
            assert response["reset"] is not None or client.terminated is not None or client.eof
        # The connection (or a new one) still serves a good request; the app never saw /bad.
        if client.terminated is not None or client.eof:
            client.close()
            client = Client(address)
        assert client.get(client.request("/good"))["status"] == 200
        assert "/bad" not in calls_of(calls) and "no-slash" not in calls_of(calls)
    finally:
        client.close()
        server.stop()


# -- flow control ------------------------------------------------------------------------------------


def test_one_streams_slow_reader_never_stalls_the_others(kind: str) -> None:
    """Stream 1's large response waits for a window the client never opens; stream 3 is answered
    meanwhile, and stream 1 completes once the client reads."""
    server, address = start(kind, *H2C)
    client = Client(address)
    try:
        big = client.request("/big?n=1000000")
        small = client.request("/echo")
        client.pump(lambda: client.responses[small]["ended"], ack=False)
        assert client.responses[small]["status"] == 200
        assert not client.responses[big]["ended"]
        assert len(client.responses[big]["data"]) <= 65535
        # Opening the stream's window now lets the rest come.
        client.conn.increment_flow_control_window(2 ** 30, big)
        client.flush()
        response = client.get(big)
        assert len(response["data"]) == 1000000
        if kind != "sync":  # a streamed body waits for its own window, never the loop's
            streamed = client.request("/stream?n=300000")
            assert len(client.get(streamed)["data"]) == (300000 // 1024) * 1024
    finally:
        client.close()
        server.stop()


# -- defences ----------------------------------------------------------------------------------------


def test_rapid_reset_gets_a_goaway(kind: str) -> None:
    """CVE-2023-44487: streams opened and reset at once, over and over, end in GOAWAY
    ENHANCE_YOUR_CALM rather than unbounded work."""
    server, address = start(kind, *H2C)
    client = Client(address)
    try:
        for _ in range(500):
            sid = client.conn.get_next_available_stream_id()
            client.conn.send_headers(sid, [(b":method", b"GET"), (b":scheme", b"http"),
                                           (b":path", b"/echo"), (b":authority", b"t")])
            client.conn.reset_stream(sid)
            try:
                client.flush()
            except OSError:
                break
        client.pump(lambda: client.terminated is not None)
        assert client.terminated == ENHANCE_YOUR_CALM
    finally:
        client.close()
        server.stop()


def test_continuation_flood_is_cut_off() -> None:
    """A header block that never ends (CONTINUATION after CONTINUATION) is refused once it passes
    the cap, long before h2's 64-frame backlog would have buffered it."""
    server, address = start("sync", *H2C)
    client = Client(address, max_frame_size=16384)
    try:
        block = client.conn.encoder.encode([(b":method", b"GET"), (b":scheme", b"http"),
                                            (b":path", b"/"), (b":authority", b"t")])
        headers = HeadersFrame(1, data=block)  # (no END_HEADERS)
        client.sock.sendall(headers.serialize())
        sent = 0
        try:
            for _ in range(60):
                client.sock.sendall(ContinuationFrame(1, data=b"\x00" * 16000).serialize())
                sent += 1
        except OSError:
            pass
        client.pump(lambda: client.terminated is not None)
        # (h2 alone would take all 60: its own cap is 64 frames)
        assert client.terminated == ENHANCE_YOUR_CALM, (sent, client.eof)
    finally:
        client.close()
        server.stop()


def test_hpack_bomb_is_refused() -> None:
    """One large field put in the dynamic table, then referenced over and over: a small header
    block that decodes to far more than --http2-max-header-list-size."""
    server, address = start("sync", *H2C, "--http2-max-header-list-size", "16384")
    client = Client(address)
    try:
        bomb = [(b"x-bomb", b"a" * 4000)] * 50  # 200 KB decoded, ~4 KB encoded
        client.request("/", extra=bomb)
        client.pump(lambda: client.terminated is not None)
        assert client.terminated == ENHANCE_YOUR_CALM
    finally:
        client.close()
        server.stop()


@pytest.mark.parametrize("frame", ["ping", "settings"])
def test_control_frame_floods_get_a_goaway(frame: str) -> None:
    server, address = start("sync", *H2C)
    client = Client(address)
    try:
        client.pump(lambda: client.conn.remote_settings.max_concurrent_streams == 100)
        for number in range(2000):
            if frame == "ping":
                client.conn.ping(number.to_bytes(8, "big"))
            else:
                client.conn.update_settings({h2.settings.SettingCodes.ENABLE_PUSH: 0})
            try:
                client.flush()
            except OSError:
                break
        client.pump(lambda: client.terminated is not None, ack=False)
        assert client.terminated == ENHANCE_YOUR_CALM
    finally:
        client.close()
        server.stop()


def test_settings_are_applied() -> None:
    server, address = start("sync", *H2C, "--http2-max-concurrent-streams", "7",
                            "--http2-initial-window-size", "100000", "--http2-max-frame-size",
                            "32768", "--http2-max-header-list-size", "20000")
    client = Client(address)
    try:
        client.pump(lambda: client.conn.remote_settings.max_concurrent_streams == 7)
        remote = client.conn.remote_settings
        assert (remote.initial_window_size, remote.max_frame_size,
                remote.max_header_list_size) == (100000, 32768, 20000)
    finally:
        client.close()
        server.stop()


# -- the deployment guide's h2c section ----------------------------------------------------------------


@needs_curl
def test_the_deploying_guides_h2c_command_serves_h2c() -> None:
    from test_deploying_guide import Invocation, block

    invocation = Invocation(block("h2c"))
    args = [arg for arg in invocation.args if not arg.startswith(("--bind=", "--workers="))]
    assert args[0] == "proj.wsgi:application"
    server = Server(["--bind=127.0.0.1:0", "--workers=1", *args[1:], "h2_app:app"])
    try:
        (address,) = server.addresses(1)
        poll(lambda: _answers(address), "the worker to answer", server=server)
        out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-w", "\n%{http_version}",
                              address + "/echo"], capture_output=True, text=True, timeout=30).stdout
        body, version = out.rsplit("\n", 1)
        assert version == "2" and json.loads(body)["protocol"] == "HTTP/2.0"
    finally:
        server.stop()


# -- side by side with Gunicorn 27 -----------------------------------------------------------------


def _gunicorn_has_h2() -> bool:
    from gunicorn_side import GUNICORN

    python = Path(GUNICORN).parent / "python"
    return python.exists() and subprocess.run(
        [str(python), "-c", "import h2"], capture_output=True, timeout=60).returncode == 0


@pytest.mark.skipif(not _gunicorn_has_h2(), reason="needs Gunicorn 27 with h2 (python3 -m venv "
                    "/tmp/gvenv && /tmp/gvenv/bin/pip install 'gunicorn[http2]')")
@pytest.mark.parametrize("worker", ["gthread", "asgi"])
def test_what_the_app_and_the_access_log_see_matches_gunicorn(worker: str, tmp_path: Path,
                                                                start_gunicorn: Any) -> None:
    flags = [*H2C, "--access-logformat", "%(r)s %(s)s %(H)s"]
    app = "h2_app:asgi" if worker == "asgi" else "h2_app:app"
    their_log = tmp_path / "gunicorn-access.log"
    theirs = start_gunicorn(app, "-k", worker, *flags, "--access-logfile", str(their_log))
    server, ours = start(worker, *flags, "--access-logfile", "-")
    try:
        seen = {}
        for name, address in (("gunicorn", theirs), ("pronghorn", ours)):
            client = Client(address)
            sid = client.request("/echo?k=v", "POST", b"body",
                                 extra=[(b"cookie", b"a=1"), (b"cookie", b"b=2")])
            response = client.get(sid)
            client.close()
            assert response["status"] == 200, (name, response)
            echoed = json.loads(response["data"])
            seen[name] = {key: echoed[key] for key in ("protocol", "method", "path", "query",
                                                       "body", "scheme")}
        assert seen["pronghorn"] == seen["gunicorn"]
        their_line = poll(lambda: next((ln for ln in their_log.read_text().splitlines()
                                        if "/echo?k=v" in ln), None) if their_log.exists() else None,
                          "Gunicorn's access line")
        our_line = poll(lambda: next((ln for ln in server.output.splitlines()
                                      if "/echo?k=v" in ln), None), "our access line", server=server)
        assert our_line.endswith(their_line), (our_line, their_line)
    finally:
        server.stop()


def test_term_lets_a_response_waiting_for_its_window_finish(kind: str) -> None:
    """TERM while a response waits for the client's window: the connection stays until it is
    delivered (then GOAWAY and close), within --graceful-timeout."""
    server, address = start(kind, *H2C)
    client = Client(address)
    try:
        big = client.request("/big?n=300000")
        client.pump(lambda: len(client.responses[big]["data"]) >= 65535, ack=False)
        server.proc.send_signal(signal.SIGTERM)
        server.wait_for_line(r"Worker exiting|Handling signal: term")
        client.conn.increment_flow_control_window(2 ** 20, big)
        client.flush()
        response = client.get(big)
        assert response["ended"] and len(response["data"]) == 300000
        client.pump(lambda: client.terminated is not None)
        assert client.terminated == 0  # GOAWAY NO_ERROR once everything is out
        assert server.proc.wait(30) == 0
    finally:
        client.close()
        server.stop()

"""Behind real proxies: nginx (Debian's nginx-light) over TCP and over a unix socket, and HAProxy
sending the PROXY protocol (v2 and v1); and what an untrusted peer may not claim.

The client connects from 127.0.0.2, an address no proxy list trusts, so the address the app sees
proves which hop it came from. Every proxy runs in the foreground on a free port and is polled until
it answers.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import NGINX, connect, free_port, nginx_conf
from wire import Reader, Response

APP = "behaviours:app"
CLIENT = "127.0.0.2"

pytestmark = pytest.mark.usefixtures("worker_class")


def ask(host: str, port: int, raw: bytes, source: str = CLIENT, timeout: float = 10.0) -> Response:
    sock = socket.socket()
    sock.settimeout(timeout)
    try:
        sock.bind((source, 0))
        sock.connect((host, port))
        sock.sendall(raw)
        return Reader(sock).read_response()
    finally:
        sock.close()


def environ_via(host: str, port: int, *headers: str, source: str = CLIENT) -> dict[str, Any]:
    lines = ["GET /environ HTTP/1.1", "Host: example.com", "Connection: close", *headers]
    response = ask(host, port, ("\r\n".join(lines) + "\r\n\r\n").encode(), source)
    assert response.status == 200, response.body
    return {key: entry.get("value") for key, entry in response.json()["environ"].items()}


def poll_answers(host: str, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        if proc.poll() is not None:
            raise AssertionError(
                f"the proxy exited: {log.read_text()[-3000:] if log.exists() else ''}")
        try:
            if ask(host, port, b"GET /pid HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                   timeout=2).status == 200:
                return
        except (OSError, AssertionError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no answer through the proxy: {log.read_text()[-3000:]}")
        time.sleep(0.05)  # polling interval while the proxy starts


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- nginx ----------------------------------------------------------------------------------------------

NGINX_HTTP = """\
    upstream app {{ server {upstream} fail_timeout=0; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://app;
        }}
    }}"""


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Any]:
    binary = NGINX
    if binary is None:
        pytest.skip("needs nginx (apt-get install nginx-light; .ci/run installs it)")
    procs: list[subprocess.Popen[bytes]] = []

    def start(upstream: str) -> int:
        port = free_port()
        where = tmp_path / f"nginx-{port}"
        where.mkdir()
        # As root, nginx's workers run as nobody:nogroup, as on a real host: the unix socket must
        # let them in.
        conf = where / "nginx.conf"
        conf.write_text(nginx_conf(where, NGINX_HTTP.format(upstream=upstream, port=port)))
        os.chmod(where, 0o755)
        proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(where)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        poll_answers("127.0.0.1", port, proc, where / "error.log")
        return port

    yield start
    for proc in procs:
        stop(proc)


def test_nginx_over_tcp_sets_the_scheme_as_under_gunicorn(start_server, nginx) -> None:  # type: ignore[no-untyped-def]
    _, (address,) = start_server(APP)
    port = nginx(address.removeprefix("http://"))
    env = environ_via("127.0.0.1", port, "X-Forwarded-For: 6.6.6.6")
    # Gunicorn's default: the scheme from the trusted proxy, REMOTE_ADDR the socket's peer (nginx),
    # SERVER_PORT the listener's, and X-Forwarded-For passed on for the app to read.
    assert env["REMOTE_ADDR"] == "127.0.0.1" and env["REMOTE_PORT"] != "0"
    assert env["wsgi.url_scheme"] == "https"
    assert env["SERVER_PORT"] == address.rsplit(":", 1)[1]
    assert env["HTTP_X_FORWARDED_FOR"] == f"6.6.6.6, {CLIENT}"


def test_nginx_over_tcp_with_forwarded_client_address(start_server, nginx) -> None:  # type: ignore[no-untyped-def]
    _, (address,) = start_server(APP, "--forwarded-client-address")
    port = nginx(address.removeprefix("http://"))
    env = environ_via("127.0.0.1", port, "X-Forwarded-For: 6.6.6.6")
    # nginx appended the address it saw (127.0.0.2) after the one the client claimed: the client is
    # the right-most hop that is not a trusted proxy.
    assert env["REMOTE_ADDR"] == CLIENT
    assert env["wsgi.url_scheme"] == "https"


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory nginx's user can reach (pytest's own tmp_path is private to root)."""
    where = Path(tempfile.mkdtemp(prefix="pronghorn-sock-"))
    os.chmod(where, 0o755)
    yield where
    shutil.rmtree(where, ignore_errors=True)


def test_nginx_over_a_unix_socket(start_server, nginx, public_dir: Path) -> None:  # type: ignore[no-untyped-def]
    path = public_dir / "app.sock"
    start_server(APP, "-b", f"unix:{path}")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode & 0o006 == 0o006  # the default umask (0) lets nginx's user (nobody) in
    port = nginx(f"unix:{path}")
    env = environ_via("127.0.0.1", port)
    # A unix-socket peer is trusted: the scheme is nginx's; REMOTE_ADDR is the (nameless) peer.
    assert env["REMOTE_ADDR"] == "" and env["wsgi.url_scheme"] == "https"
    assert "REMOTE_PORT" not in env and env["HTTP_X_FORWARDED_FOR"] == CLIENT
    # Gunicorn's SERVER_NAME/PORT on a unix socket: the Host's, the scheme's default port.
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("example.com", "443")


def test_a_unix_socket_under_a_strict_umask_keeps_others_out(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "strict.sock"
    start_server(APP, "-b", f"unix:{path}", "--umask", "0o007")
    assert stat.S_IMODE(os.stat(path).st_mode) & 0o007 == 0


# -- HAProxy and the PROXY protocol ---------------------------------------------------------------------

HAPROXY_CONF = """
global
    log stdout format raw local0 warning
defaults
    mode {mode}
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend front
    bind 127.0.0.1:{port}
    default_backend app
backend app
    server app {upstream} {send}
"""


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[Any]:
    binary = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if binary is None:
        pytest.skip("needs haproxy (apt-get install haproxy; .ci/run installs it)")
    procs: list[subprocess.Popen[bytes]] = []

    def start(upstream: str, send: str, mode: str = "tcp") -> int:
        port = free_port()
        conf = tmp_path / f"haproxy-{port}.cfg"
        log = tmp_path / f"haproxy-{port}.log"
        conf.write_text(HAPROXY_CONF.format(port=port, upstream=upstream, send=send, mode=mode))
        with open(log, "wb") as out:
            proc = subprocess.Popen([binary, "-f", str(conf), "-db"], stdout=out, stderr=out)
        procs.append(proc)
        poll_answers("127.0.0.1", port, proc, log)
        return port

    yield start
    for proc in procs:
        stop(proc)


@pytest.mark.parametrize("send, mode", [("send-proxy-v2", "tcp"), ("send-proxy", "tcp"),
                                        ("send-proxy-v2", "http")])
def test_haproxy_proxy_protocol_gives_the_client_address(start_server, haproxy, send: str,  # type: ignore[no-untyped-def]
                                                         mode: str) -> None:
    _, (address,) = start_server(APP, "--proxy-protocol")
    port = haproxy(address.removeprefix("http://"), send, mode)
    env = environ_via("127.0.0.1", port, "X-Forwarded-For: 6.6.6.6")
    assert env["REMOTE_ADDR"] == CLIENT
    # The client (not a trusted proxy) cannot claim another address by header: its header reaches
    # the app as it was sent, as under Gunicorn.
    assert env["HTTP_X_FORWARDED_FOR"] == "6.6.6.6"


def test_proxy_protocol_is_required_and_only_from_allowed_peers(start_server) -> None:  # type: ignore[no-untyped-def]
    _, (address,) = start_server(APP, "--proxy-protocol", "v1", "--proxy-allow-from", "127.0.0.1")
    host, port = address.removeprefix("http://").split(":")
    line = b"PROXY TCP4 198.51.100.7 127.0.0.1 4711 80\r\n"
    request = b"GET /environ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    env = ask(host, int(port), line + request, source="127.0.0.1").json()["environ"]
    assert env["REMOTE_ADDR"]["value"] == "198.51.100.7" and env["REMOTE_PORT"]["value"] == "4711"
    # Without the header: refused, closed.
    response = ask(host, int(port), request, source="127.0.0.1")
    assert response.status == 400 and response.closes
    # From a peer not in --proxy-allow-from: closed before anything is read.
    sock = socket.socket()
    sock.settimeout(10)
    sock.bind((CLIENT, 0))
    sock.connect((host, int(port)))
    try:
        sock.sendall(line + request)
    except OSError:
        pass
    try:
        assert sock.recv(100) == b""
    except ConnectionResetError:
        pass
    sock.close()


# -- forwarded headers without a proxy ------------------------------------------------------------------

@pytest.mark.parametrize("client_address", [False, True])
def test_an_untrusted_client_cannot_claim_an_address_or_scheme(start_server,  # type: ignore[no-untyped-def]
                                                               client_address: bool) -> None:
    _, (address,) = start_server(APP, *(["--forwarded-client-address"] if client_address else []))
    host, port = address.removeprefix("http://").split(":")
    env = environ_via(host, int(port), "X-Forwarded-For: 6.6.6.6", "X-Forwarded-Proto: https",
                      "Forwarded: for=6.6.6.6;proto=https")
    assert env["REMOTE_ADDR"] == CLIENT and env["wsgi.url_scheme"] == "http"
    assert env["HTTP_X_FORWARDED_PROTO"] == "https"  # passed on, as by Gunicorn
    if client_address:  # the address headers are removed from an untrusted peer
        assert not {"HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED"} & env.keys()
    else:  # Gunicorn's default: passed on
        assert (env["HTTP_X_FORWARDED_FOR"], env["HTTP_FORWARDED"]) == (
            "6.6.6.6", "for=6.6.6.6;proto=https")


def test_a_trusted_peer_with_contradictory_scheme_headers_gets_400(start_server) -> None:  # type: ignore[no-untyped-def]
    _, (address,) = start_server(APP, "--forwarded-allow-ips", "*")
    with connect(address) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\n"
                     b"X-Forwarded-Ssl: off\r\n\r\n")
        response = Reader(sock).read_response()
    assert response.status == 400 and response.closes


def test_forwarded_allow_ips_from_the_environment(start_server) -> None:  # type: ignore[no-untyped-def]
    _, (address,) = start_server(APP, env={"FORWARDED_ALLOW_IPS": "127.0.0.0/8"})
    host, port = address.removeprefix("http://").split(":")
    env = environ_via(host, int(port), "X-Forwarded-Proto: https")
    assert env["wsgi.url_scheme"] == "https"  # 127.0.0.2 is in 127.0.0.0/8: trusted


def test_a_mixed_case_scheme_header_key_never_matches_as_under_gunicorn(  # type: ignore[no-untyped-def]
        start_server, tmp_path: Path) -> None:
    """Gunicorn compares secure_scheme_headers keys with upper-case header names, so a key written
    "X-Forwarded-Proto" never matches there: a config written for it serves the same scheme here,
    and the log says why."""
    conf = tmp_path / "scheme.conf.py"
    conf.write_text("secure_scheme_headers = {'X-Forwarded-Proto': 'https'}\n"
                    "forwarded_allow_ips = '*'\n")
    server, (address,) = start_server(APP, "-c", str(conf))
    host, port = address.removeprefix("http://").split(":")
    env = environ_via(host, int(port), "X-Forwarded-Proto: https")
    assert env["wsgi.url_scheme"] == "http"
    assert "secure_scheme_headers: 'X-Forwarded-Proto' never matches a header" in server.output

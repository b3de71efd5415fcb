"""HTTPS: Gunicorn's TLS settings, against certificates made here with openssl, and curl as a client.

Every server is started with port 0 and polled until it answers over TLS."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, Server, connect
from master_util import poll
from wire import Reader, Response

APP = "behaviours:app"

pytestmark = [
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
    pytest.mark.usefixtures("worker_class"),
]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, a server certificate for localhost/127.0.0.1 signed by it, and a client certificate."""
    where = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Test CA",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=where)
    for name, extra in (("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
                        ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=where)
        (where / f"{name}.ext").write_text(extra + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
                 cwd=where)
    return {name: where / name for name in ("ca.pem", "server.pem", "server.key", "client.pem",
                                            "client.key")}


def _client_context(pki: dict[str, Path], **options: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["ca.pem"]))
    for name, value in options.items():
        setattr(context, name, value)
    return context


def tls_connect(address: str, context: ssl.SSLContext, timeout: float = 10.0) -> ssl.SSLSocket:
    return context.wrap_socket(connect(address, timeout), server_hostname="localhost")


def tls_get(address: str, context: ssl.SSLContext, target: str = "/",
            headers: tuple[str, ...] = ()) -> Response:
    with tls_connect(address, context) as sock:
        lines = [f"GET {target} HTTP/1.1", "Host: localhost", "Connection: close", *headers]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return Reader(sock).read_response()  # type: ignore[arg-type]


def start_tls(start_server, pki: dict[str, Path], *flags: str,  # type: ignore[no-untyped-def]
              context: ssl.SSLContext | None = None) -> tuple[Server, str]:
    server, (address,) = start_server(
        APP, "--certfile", str(pki["server.pem"]), "--keyfile", str(pki["server.key"]), *flags,
        ready=False)
    context = context or _client_context(pki)
    deadline = time.monotonic() + 15
    while True:  # poll: the worker may still be booting
        try:
            tls_get(address, context, "/__ready")
            return server, address
        except (OSError, AssertionError):
            if time.monotonic() > deadline:
                raise AssertionError(f"no TLS answer at {address}:\n{server.output}") from None
            time.sleep(0.05)  # polling interval while the worker boots


def test_https_serves_with_url_scheme_https(start_server, pki: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    server, address = start_tls(start_server, pki)
    assert address.startswith("https://127.0.0.1:")
    environ = tls_get(address, _client_context(pki), "/environ").json()["environ"]
    assert environ["wsgi.url_scheme"]["value"] == "https"
    # The listener's port on TCP, whatever the Host says, as in Gunicorn.
    assert environ["SERVER_PORT"]["value"] == address.rsplit(":", 1)[1]


def test_curl_talks_https_with_the_ca(start_server, pki: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    if shutil.which("curl") is None:
        pytest.skip("needs curl")
    _, address = start_tls(start_server, pki)
    port = address.rsplit(":", 1)[1]
    url = f"https://localhost:{port}"
    result = subprocess.run(
        ["curl", "-sS", "--cacert", str(pki["ca.pem"]), "--resolve", f"localhost:{port}:127.0.0.1",
         "-H", "Expect: 100-continue", "--data-binary", "x" * 5000, f"{url}/digest"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["size"] == 5000
    result = subprocess.run(
        ["curl", "-sS", "--cacert", str(pki["ca.pem"]), "--resolve", f"localhost:{port}:127.0.0.1",
         "-o", "/dev/null", "-w", "%{http_code} %{ssl_verify_result}", f"{url}/stream"],
        capture_output=True, text=True, timeout=30)
    assert result.stdout == "200 0", result.stderr


def test_tls_1_2_is_the_floor_and_1_3_can_be_required(start_server, pki: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    _, address = start_tls(start_server, pki)
    with tls_connect(address, _client_context(pki, maximum_version=ssl.TLSVersion.TLSv1_2)) as sock:
        assert sock.version() == "TLSv1.2"
    with tls_connect(address, _client_context(pki)) as sock:
        assert sock.version() == "TLSv1.3"

    _, strict = start_tls(start_server, pki, "--ssl-version", "TLSv1_3")
    with pytest.raises(ssl.SSLError):
        tls_connect(strict, _client_context(pki, maximum_version=ssl.TLSVersion.TLSv1_2))


def test_plain_http_to_a_tls_port_is_closed_and_the_port_serves_on(start_server, pki: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    server, address = start_tls(start_server, pki)
    with connect(address) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        received = b""
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            received += data
    assert not received.startswith(b"HTTP/")  # at most a TLS alert, never an HTTP answer
    assert tls_get(address, _client_context(pki), "/pid").status == 200
    assert "Traceback" not in server.output


def test_a_client_that_never_handshakes_is_cut_off(start_server, pki: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    _, address = start_tls(start_server, pki, "--header-timeout", "1")
    with connect(address, timeout=30) as idle:
        assert idle.recv(1) == b""  # closed by the server's handshake deadline, not by the guard


def test_a_tls_client_that_stops_reading_is_dropped_and_others_are_served(  # type: ignore[no-untyped-def]
        start_server, pki: dict[str, Path]) -> None:
    """--write-timeout holds through TLS too: the response's bytes wait in the TLS layer (or, for
    gevent, in its SSL socket's sendall), and a client that takes none of them is dropped."""
    server, address = start_tls(start_server, pki, "--write-timeout", "1")
    context = _client_context(pki)
    stalled = context.wrap_socket(connect(address, timeout=10, rcvbuf=4096),
                                  server_hostname="localhost")
    with stalled:
        # 64 MiB in 64 KiB pieces, streamed; this client reads a little of it, then nothing.
        stalled.sendall(b"GET /stream?count=1024&size=65536 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert stalled.recv(10)
        assert tls_get(address, context, "/after-stall").status == 200
        poll(lambda: "no write progress" in server.output, "the stalled connection to be dropped",
             server=server)


def test_client_certificates_required(start_server, pki: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    with_cert = _client_context(pki)
    with_cert.load_cert_chain(str(pki["client.pem"]), str(pki["client.key"]))
    _, address = start_tls(start_server, pki, "--ca-certs", str(pki["ca.pem"]), "--cert-reqs", "2",
                           context=with_cert)
    assert tls_get(address, with_cert, "/pid").status == 200
    with pytest.raises((ssl.SSLError, ConnectionResetError, AssertionError)):
        # TLS 1.3 reports a missing client certificate after the handshake, on the first read.
        tls_get(address, _client_context(pki), "/pid")


def test_file_wrapper_goes_through_tls(start_server, pki: dict[str, Path], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    content = bytes(range(256)) * 4000
    path = tmp_path / "f.bin"
    path.write_bytes(content)
    _, address = start_tls(start_server, pki)
    response = tls_get(address, _client_context(pki), f"/file?path={path}")
    assert response.status == 200 and response.body == content


def test_ssl_context_hook_from_the_config_file(start_server, pki: dict[str, Path], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "tls.conf.py"
    conf.write_text(
        "import ssl\n"
        "def ssl_context(config, default_ssl_context_factory):\n"
        "    context = default_ssl_context_factory()\n"
        "    context.maximum_version = ssl.TLSVersion.TLSv1_2\n"
        "    return context\n")
    _, address = start_tls(start_server, pki, "-c", str(conf))
    with tls_connect(address, _client_context(pki)) as sock:
        assert sock.version() == "TLSv1.2"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pronghorn", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)


def test_a_missing_certificate_is_a_usage_error(tmp_path: Path) -> None:
    result = _run("--certfile", str(tmp_path / "absent.pem"), APP)
    assert result.returncode == 2 and "--certfile: cannot read" in result.stderr, result.stderr


def test_an_insecure_ssl_version_is_refused() -> None:
    result = _run("--certfile", "x.pem", "--ssl-version", "TLSv1", APP)
    assert result.returncode == 2 and "--ssl-version" in result.stderr
    assert "TLS 1.2 is the minimum" in result.stderr


def test_a_certificate_that_is_not_one_stops_the_server(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    check = _run("--check-config", "--certfile", str(bogus), APP)
    assert check.returncode == 1 and "cannot use the TLS certificate" in check.stderr
    result = _run("-b", "127.0.0.1:0", "--certfile", str(bogus), APP)
    assert result.returncode != 0
    assert "Cannot use the TLS certificate or key" in result.stderr

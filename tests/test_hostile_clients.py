"""What a client's bytes must not be able to do to a worker, against a real server under every worker
class: pin its memory through a cache it fills (issue 15, defect 4), or hold a connection for the
head's whole deadline with bytes that can never be HTTP (defect 6).
"""

from __future__ import annotations

import socket
import ssl
import time
import warnings
from typing import Iterator

import pytest

from conftest import connect
from wire import Reader, serve

APP = "behaviours:app"

pytestmark = pytest.mark.usefixtures("worker_class")


@pytest.fixture(scope="module")
def address(worker_class: str) -> Iterator[str]:
    # One worker, so that every request below reaches the process whose memory is measured.
    with serve("-b", "127.0.0.1:0", "-w", "1", APP) as (_, addresses):
        yield addresses[0]


# -- a cache the client fills ------------------------------------------------------------------------

def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


def _junk_name(serial: int) -> bytes:
    # ~8 KB and unique; the whole field line stays within --limit-request-field_size (8190).
    return b"X-Junk-%08d-" % serial + b"j" * 8000


def test_unique_header_names_do_not_pin_worker_memory(address: str) -> None:
    """1,000 requests, each with a header name never seen before (~8 KB): every cache on the way
    (the parser's, the environ's header-name mapping) is bounded in bytes, so the worker's RSS
    grows by less than 5 MiB. Unbounded, the names alone would pin ~16 MiB."""
    with connect(address) as sock:
        reader = Reader(sock)

        def get_pid(serial: int) -> int:
            sock.sendall(b"GET /pid HTTP/1.1\r\nHost: t\r\n" + _junk_name(serial) + b": v\r\n\r\n")
            response = reader.read_response()
            assert response.status == 200, response
            return int(response.body)

        # Warm up first, so that what is measured is growth, not the first requests' buffers.
        pid = get_pid(0)
        for serial in range(1, 200):
            assert get_pid(serial) == pid
        before = _rss_kib(pid)
        for serial in range(200, 1200):
            assert get_pid(serial) == pid  # the same worker throughout
        grown = _rss_kib(pid) - before
    assert grown < 5 * 1024, f"the worker's RSS grew by {grown} KiB"


# -- bytes that cannot begin a request ----------------------------------------------------------------

def _client_hello(context: ssl.SSLContext) -> bytes:
    """The first flight of a real TLS client: the bytes its ClientHello record takes on the wire."""
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=False, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16"  # a handshake record
    return hello


def _legacy_client_hello() -> bytes:
    """The ClientHello of a minimal legacy client (TLS 1.0, offering only AES128-SHA, the cipher every
    TLS 1.0-1.2 stack must have; old devices and probes), one whose random field holds no CR or LF.
    Such a hello has no CR or LF at all, so no rule but the first byte's can refuse it: before that
    rule it waited for --header-timeout. (A default client's hello holds a CR or LF in its fixed
    parts, a cipher suite or an extension type such as signature_algorithms' 0x000d, and the
    bare-CR/LF rule of the request line refused it at once already.)"""
    for _ in range(50):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            with warnings.catch_warnings():  # (TLS 1.0 is deprecated: that is the point)
                warnings.simplefilter("ignore", DeprecationWarning)
                context.set_ciphers("AES128-SHA:@SECLEVEL=0")
                context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1
            hello = _client_hello(context)
        except (ssl.SSLError, ValueError) as exc:
            pytest.skip(f"this OpenSSL cannot make a TLS 1.0 ClientHello: {exc}")
        if b"\r" not in hello and b"\n" not in hello:
            return hello
    raise AssertionError("no TLS 1.0 ClientHello without CR or LF in 50 tries")


def _answer_and_close(address: str, data: bytes) -> bytes:
    """Send ``data`` and return everything the server says until it closes, with one second for all
    of it (socket.timeout fails the test: the server kept waiting)."""
    deadline = time.monotonic() + 1.0
    with connect(address, timeout=1.0) as sock:
        sock.sendall(data)
        received = b""
        while True:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
    return received


@pytest.mark.parametrize("client", ["default", "legacy"])
def test_tls_client_hello_on_the_plain_port_gets_400_at_once(address: str, client: str) -> None:
    hello = (_client_hello(ssl.create_default_context()) if client == "default"
             else _legacy_client_hello())
    received = _answer_and_close(address, hello)
    assert received.startswith(b"HTTP/1.1 400 "), received[:200]
    assert b"\r\nConnection: close\r\n" in received


@pytest.mark.parametrize("data", [b"\x00", b"\x80\x01\x02", b"\r\n\r\n\x16\x03\x01", b"{\"json\": 1}",
                                  b" GET / HTTP/1.1\r\n"])
def test_a_byte_that_cannot_start_a_method_gets_400_at_once(address: str, data: bytes) -> None:
    received = _answer_and_close(address, data)
    assert received.startswith(b"HTTP/1.1 400 "), received[:200]


def test_leading_empty_lines_still_lead_to_a_request(address: str) -> None:
    with connect(address, timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"\r\n\r\n")  # (the unit tests split them at every byte)
        sock.sendall(b"GET /pid HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert Reader(sock).read_response().status == 200

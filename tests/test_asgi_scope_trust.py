"""The ASGI scope's scheme, client and server against the WSGI environ's, for the same bytes from the
same peers: the trusted-proxy policy (--forwarded-allow-ips, X-Forwarded-Proto) and the PROXY
header's client are decided once, by the environ builder, for both interfaces. The asgi worker
makes the scope without an environ when nothing after the app needs one (no access log, no hooks)
and with one otherwise: both ways are compared. Each head is sent several times on one connection,
so that the repeated-head path (a shared Request, remembered by identity) is the one compared."""

from __future__ import annotations

import json
import socket

import pytest

from conftest import connect

# (PROXY header or b"", the request head): an untrusted and a trusted PROXY client, each with a
# scheme claim; a direct (trusted) client with and without one, and with claims that disagree.
TRUSTED_PROXIED = "127.0.0.1,::1,198.51.100.2"
CASES = {
    "direct-claims-https": (b"", b"X-Forwarded-Proto: https\r\n"),
    "direct-no-claim": (b"", b""),
    "direct-conflict": (b"", b"X-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n"),
    "proxy-untrusted": (b"PROXY TCP4 203.0.113.7 127.0.0.1 4711 80\r\n",
                        b"X-Forwarded-Proto: https\r\n"),
    "proxy-trusted": (b"PROXY TCP4 198.51.100.2 127.0.0.1 4712 80\r\n",
                      b"X-Forwarded-Proto: https\r\n"),
}
REPEATS = 3


def _responses(address: str, proxy: bytes,
               fields: bytes) -> tuple[int, list[tuple[int, bytes]]]:
    """REPEATS identical keep-alive requests, then one that closes: the client's own port and
    each response's (status, body)."""
    head = b"GET /scope HTTP/1.1\r\nHost: example.test\r\n" + fields
    raw = proxy + (head + b"\r\n") * REPEATS + head + b"Connection: close\r\n\r\n"
    with connect(address) as sock:
        port = sock.getsockname()[1]
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    out = []
    while data:
        head_bytes, _, rest = data.partition(b"\r\n\r\n")
        status = int(head_bytes.split(b" ", 2)[1])
        length = 0
        for line in head_bytes.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        out.append((status, rest[:length]))
        data = rest[length:]
    return port, out


@pytest.mark.parametrize("access_log", [False, True], ids=["no-environ", "environ"])
@pytest.mark.parametrize("proxy_protocol", [False, True], ids=["direct", "proxy-protocol"])
def test_scope_trusts_exactly_as_the_environ(start_server, proxy_protocol: bool,
                                             access_log: bool) -> None:
    flags = ["--forwarded-allow-ips", TRUSTED_PROXIED]
    if proxy_protocol:
        flags += ["--proxy-protocol", "v1"]
    _, (wsgi,) = start_server("environ_app:app", *flags)
    asgi_flags = flags + (["--access-logfile", "/dev/null"] if access_log else [])
    _, (asgi,) = start_server("asgi_app:app", "-k", "asgi", *asgi_flags)
    compared = 0
    for name, (proxy, fields) in CASES.items():
        if bool(proxy) != proxy_protocol:
            continue
        wsgi_port, environs = _responses(wsgi, proxy, fields)
        asgi_port, scopes = _responses(asgi, proxy, fields)
        assert [s for s, _ in scopes] == [s for s, _ in environs], name
        for (status, environ_body), (_, scope_body) in zip(environs, scopes):
            if status != 200:
                continue
            environ = json.loads(environ_body)["environ"]
            scope = json.loads(scope_body)
            assert scope["scheme"] == environ["wsgi.url_scheme"], name
            # (a direct client's port is its own connection's, which differs between the two)
            assert scope["client"][0] == environ["REMOTE_ADDR"], name
            if proxy:
                assert scope["client"][1] == int(environ["REMOTE_PORT"]), name
            else:
                assert scope["client"][1] == asgi_port, name
                assert int(environ["REMOTE_PORT"]) == wsgi_port, name
            # (each its own listener's address)
            assert scope["server"] == [asgi.rsplit(":", 1)[0].split("://")[-1],
                                       int(asgi.rsplit(":", 1)[1])], name
            assert [environ["SERVER_NAME"], environ["SERVER_PORT"]] == [
                wsgi.rsplit(":", 1)[0].split("://")[-1], wsgi.rsplit(":", 1)[1]], name
            compared += 1
    # (every case of this kind but the conflict, a 400 from both, compared on every request)
    assert compared >= 2 * (REPEATS + 1)

"""The asgi worker's response extensions: http.response.trailers, http.response.pathsend (and
Starlette's FileResponse, which uses it) and http.response.zerocopysend, with sendfile and
without (--no-sendfile); a real pronghorn -k asgi process, raw sockets and httpx as clients."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from conftest import connect, exchange

httpx = pytest.importorskip("httpx", reason="needs httpx (pip install -e '.[test]')")


def _url(address: str) -> str:
    return "http://" + address.split("://", 1)[-1]


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 11))
    return path


def test_the_extensions_are_offered(start_server) -> None:
    server, (address,) = start_server("asgi_send_app:app", "-k", "asgi")
    assert httpx.get(_url(address) + "/extensions").json() == [
        "http.response.pathsend", "http.response.trailers", "http.response.zerocopysend"]


def test_trailers_end_a_chunked_body_and_forbidden_fields_are_dropped(start_server) -> None:
    server, (address,) = start_server("asgi_send_app:app", "-k", "asgi")
    raw = exchange(address, b"GET /trailers HTTP/1.1\r\nHost: t\r\nTE: trailers\r\n"
                            b"Connection: close\r\n\r\n")
    head, body = raw.split(b"\r\n\r\n", 1)
    assert b"Transfer-Encoding: chunked" in head and b"Content-Length" not in head
    assert b"trailer: x-checksum, x-count" in head.lower()
    assert body == (b"9\r\npart one \r\n8\r\npart two\r\n0\r\n"
                    b"x-checksum: abc123\r\nx-count: 2\r\n\r\n")


def test_trailers_on_a_keep_alive_connection_then_the_next_request(start_server) -> None:
    server, (address,) = start_server("asgi_send_app:app", "-k", "asgi")
    with connect(address) as sock:
        sock.sendall(b"GET /trailers HTTP/1.1\r\nHost: t\r\n\r\n")
        data = b""
        while not data.endswith(b"x-count: 2\r\n\r\n"):
            piece = sock.recv(4096)
            assert piece, data
            data += piece
        sock.sendall(b"GET /extensions HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        rest = b""
        while piece := sock.recv(4096):
            rest += piece
    assert rest.startswith(b"HTTP/1.1 200 ")


def test_announced_trailers_that_never_come_end_the_body_cleanly(start_server) -> None:
    server, (address,) = start_server("asgi_send_app:app", "-k", "asgi")
    response = httpx.get(_url(address) + "/trailers-forgotten")
    assert response.status_code == 200 and response.text == "no trailers came"


@pytest.mark.parametrize("flags", [(), ("--no-sendfile",)], ids=["sendfile", "no-sendfile"])
def test_pathsend_and_zerocopysend(start_server, data_file: Path, flags: tuple[str, ...]) -> None:
    server, (address,) = start_server("asgi_send_app:app", "-k", "asgi", *flags,
                                      env={"ASGI_SEND_FILE": str(data_file)})
    expected = data_file.read_bytes()
    with httpx.Client() as client:
        response = client.get(_url(address) + "/pathsend")
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(expected))
        assert response.content == expected
        response = client.get(_url(address) + "/zerocopysend")
        assert response.status_code == 200
        assert response.content == expected[5:15] + expected[15:]
        # (the same keep-alive connection goes on)
        assert client.get(_url(address) + "/extensions").status_code == 200


def test_starlette_file_response_uses_pathsend(start_server, data_file: Path) -> None:
    pytest.importorskip("starlette", reason="needs starlette (pip install -e '.[test]')")
    server, (address,) = start_server("asgi_send_app:starlette_app", "-k", "asgi",
                                      env={"ASGI_SEND_FILE": str(data_file)})
    response = httpx.get(_url(address) + "/file")
    assert response.status_code == 200
    assert response.content == data_file.read_bytes()
    assert response.headers["content-length"] == str(data_file.stat().st_size)


def test_pathsend_to_a_head_request_sends_no_body(start_server, data_file: Path) -> None:
    server, (address,) = start_server("asgi_send_app:app", "-k", "asgi",
                                      env={"ASGI_SEND_FILE": str(data_file)})
    raw = exchange(address, b"HEAD /pathsend HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200") and body == b""


@pytest.mark.parametrize("path", ["/sse-blind", "/sse-blind-raise"])
def test_send_raises_once_an_sse_client_has_gone(start_server, tmp_path: Path, path: str) -> None:
    """ASGI 2.4: send() on a closed connection raises an OSError, so a stream that never asks
    receive() stops at once (and costs no CPU) rather than at the grace period's cancel; the
    error is the client's leaving, not the app's, and is not logged as one."""
    events = tmp_path / "events.txt"
    server, (address,) = start_server("asgi_send_app:app", "-k", "asgi", "--log-level", "debug",
                                      "--asgi-disconnect-grace-period", "60",
                                      env={"ASGI_EVENTS_FILE": str(events)})
    with httpx.stream("GET", _url(address) + path) as response:
        for line in response.iter_lines():
            if line == "data: tick":
                break
    deadline = time.monotonic() + 10
    while not (events.exists() and "send raised ClientDisconnected" in events.read_text()):
        assert time.monotonic() < deadline, "send() never raised"
        time.sleep(0.01)
    if path == "/sse-blind-raise":
        server.wait_for_line(r"Client gone during ASGI response " + path + "$")
    assert "Exception in ASGI application" not in server.output


@pytest.mark.parametrize("grace", [0, 1])
def test_the_disconnect_grace_period_then_the_task_is_cancelled(start_server, tmp_path: Path,
                                                                 grace: int) -> None:
    """Gunicorn 27's --asgi-disconnect-grace-period: once the client has gone the app hears
    http.disconnect and has that long to end by itself; then its task is cancelled (0: at once)."""
    events = tmp_path / "events.txt"
    server, (address,) = start_server("asgi_send_app:app", "-k", "asgi",
                                      "--asgi-disconnect-grace-period", str(grace),
                                      env={"ASGI_EVENTS_FILE": str(events)})
    with httpx.stream("GET", _url(address) + "/linger") as response:
        for line in response.iter_lines():
            if line == "first":
                break
    deadline = time.monotonic() + 15
    while not (events.exists() and "cancelled" in events.read_text()):
        assert time.monotonic() < deadline, "the task was never cancelled"
        time.sleep(0.01)
    when = {line.split()[0]: float(line.split()[1]) for line in events.read_text().splitlines()}
    if grace:
        assert "disconnect" in when
        assert when["cancelled"] - when["disconnect"] >= grace * 0.9, when

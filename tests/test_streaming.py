"""Streamed response bodies (an iterable of pieces with no Content-Length, chunked on HTTP/1.1), in
every worker class: every piece arrives, in order, framed exactly; and no piece waits for the app
to make the next one (PEP 3333), although the sync worker gathers pieces into fewer writes
(workers/held_output.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from apps.stream_app import piece
from conftest import connect
from wire import Reader

APP = "stream_app:app"

pytestmark = pytest.mark.usefixtures("worker_class")


def expected(count: int, size: int) -> bytes:
    return b"".join(piece(number, size) for number in range(count))


@pytest.mark.parametrize("count,size", [(16, 1024), (1, 5), (300, 1000), (40, 70000)])
def test_every_piece_arrives_in_order_on_a_kept_connection(start_server, count: int,  # type: ignore[no-untyped-def]
                                                           size: int) -> None:
    _, (address,) = start_server(APP)
    with connect(address, timeout=30) as sock:
        reader = Reader(sock)
        for _ in range(3):  # the connection carries the next response after each
            sock.sendall(f"GET /pieces?count={count}&size={size} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            response = reader.read_response()
            assert response.status == 200
            assert response.header("transfer-encoding") == "chunked"
            assert response.body == expected(count, size)
        assert not reader.buf  # nothing past the last chunk's end


def test_pipelined_streams_keep_their_order(start_server) -> None:  # type: ignore[no-untyped-def]
    _, (address,) = start_server(APP)
    with connect(address, timeout=30) as sock:
        sock.sendall(b"".join(f"GET /pieces?count={n}&size=100 HTTP/1.1\r\nHost: t\r\n\r\n".encode()
                              for n in (5, 17, 2)))
        reader = Reader(sock)
        assert [reader.read_response().body for _ in range(3)] == [
            expected(n, 100) for n in (5, 17, 2)]


def test_write_between_pieces_keeps_the_order(start_server) -> None:  # type: ignore[no-untyped-def]
    _, (address,) = start_server(APP)
    with connect(address, timeout=30) as sock:
        sock.sendall(b"GET /mixed?count=20 HTTP/1.1\r\nHost: t\r\n\r\n")
        response = Reader(sock).read_response()
    assert response.body == b"".join(b"w%d;y%d;" % (n, n) for n in range(20))


def test_an_http_1_0_stream_ends_with_the_close(start_server) -> None:  # type: ignore[no-untyped-def]
    _, (address,) = start_server(APP)
    with connect(address, timeout=30) as sock:
        sock.sendall(b"GET /pieces?count=50&size=1000 HTTP/1.0\r\n\r\n")
        reader = Reader(sock)
        response = reader.read_response()
    assert response.header("transfer-encoding") is None
    assert response.body == expected(50, 1000)


@pytest.mark.parametrize("mode", ["sleep", "spin"])
def test_a_piece_goes_out_while_the_app_makes_the_next(start_server, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                       mode: str) -> None:
    # The app yields its first piece, then makes the second only once the client has read the
    # first (the test creates the marker then): a server that held the first piece until the
    # second came would have the app wait 20 s and this read time out. "spin" waits in Python
    # code, "sleep" outside it.
    _, (address,) = start_server(APP)
    marker = tmp_path / "seen"
    with connect(address, timeout=15) as sock:
        sock.sendall(f"GET /wait?marker={marker}&mode={mode} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        received = b""
        while b"first;" not in received:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                raise AssertionError(f"the first piece did not come: {received!r}") from None
            assert data, received
            received += data
        marker.touch()
        while not received.endswith(b"0\r\n\r\n"):
            data = sock.recv(65536)
            assert data, received
            received += data
    assert b"second;" in received and b"timed-out" not in received

"""The asgi worker hands a request body to the app as it arrives, with bounded buffering: a
real pronghorn -k asgi process, raw sockets as clients."""

from __future__ import annotations

import select
import socket
import time
from pathlib import Path

from conftest import connect


def _read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One Content-Length response: (head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, data
        data += piece
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
    while len(body) < length:
        piece = sock.recv(65536)
        assert piece, data
        body += piece
    return head, body


def test_a_large_upload_read_slowly_pauses_the_client_and_keeps_memory_low(
        start_server, tmp_path: Path) -> None:
    server, (address,) = start_server("asgi_body_app:app", "-k", "asgi", "-w", "1")
    gate = tmp_path / "go"
    size = 50 * 1024 * 1024
    chunk = b"u" * (1024 * 1024)
    with connect(address, timeout=30) as sock:
        sock.sendall(b"POST /held?" + str(gate).encode() + b" HTTP/1.1\r\nHost: t\r\n"
                     b"Content-Length: %d\r\n\r\n" % size)
        # The app has taken one piece and reads nothing more: the server must stop reading, so
        # the client's sends block once the kernel buffers on both sides are full.
        sock.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 20
        while True:
            try:
                sent += sock.send(chunk)
                continue
            except BlockingIOError:
                pass
            # Blocked: does the server take more within half a second? It must not.
            _, writable, _ = select.select([], [sock], [], 0.5)
            if not writable:
                break
            assert time.monotonic() < deadline, f"the server kept reading ({sent} bytes)"
        assert sent < 24 * 1024 * 1024, sent  # (kernel buffers; far from the 50 MB)
        gate.touch()
        sock.setblocking(True)
        rest = size - sent
        while rest:
            rest -= sock.send(chunk[:min(rest, len(chunk))])
        head, body = _read_response(sock)
    assert head.startswith(b"HTTP/1.1 200"), head
    import json
    answer = json.loads(body)
    assert answer["total"] == size
    assert answer["growth"] < 8 * 1024 * 1024, answer


def test_the_app_gets_the_first_piece_before_the_rest_is_sent(start_server) -> None:
    server, (address,) = start_server("asgi_body_app:app", "-k", "asgi")
    with connect(address) as sock:
        sock.sendall(b"POST /first HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nfirst\r\n")
        head, body = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 200") and body == b"first"
        # The rest of the body never came: the connection cannot serve another request.
        assert sock.recv(100) == b""


def test_an_unread_body_that_came_whole_leaves_the_connection_usable(start_server) -> None:
    server, (address,) = start_server("asgi_body_app:app", "-k", "asgi")
    with connect(address) as sock:
        sock.sendall(b"POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789")
        head, body = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 200") and body == b"ignored"
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        head, body = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 200") and body == b"hello"


def test_an_unread_body_still_on_its_way_closes_the_connection(start_server) -> None:
    server, (address,) = start_server("asgi_body_app:app", "-k", "asgi")
    with connect(address) as sock:
        sock.sendall(b"POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n"
                     + b"x" * 100_000)
        head, body = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 200") and body == b"ignored"
        # Whatever else comes would be the body's, never a request: the server closes.
        while True:
            try:
                piece = sock.recv(65536)
            except ConnectionResetError:
                break
            if not piece:
                break


def test_a_chunked_body_streamed_in_parts_arrives_whole(start_server) -> None:
    server, (address,) = start_server("asgi_app:app", "-k", "asgi")
    with connect(address) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(20):
            sock.sendall(b"1000\r\n" + b"c" * 4096 + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
        head, body = _read_response(sock)
    assert head.startswith(b"HTTP/1.1 200")
    import json
    assert json.loads(body)["total"] == 20 * 4096


def test_limit_request_body_still_refuses_a_large_length(start_server) -> None:
    server, (address,) = start_server("asgi_body_app:app", "-k", "asgi",
                                      "--limit-request-body", "1000")
    with connect(address) as sock:
        sock.sendall(b"POST /first HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n")
        answer = sock.recv(1000)
    assert answer.startswith(b"HTTP/1.1 413"), answer


def test_a_small_unread_rest_is_dropped_and_the_connection_goes_on(start_server) -> None:
    """The app answers before the body is all in, and little of it is left: the server reads and
    drops the rest, then serves the next request on the same connection (a Content-Length body;
    the bytes of the rest never count as a request)."""
    server, (address,) = start_server("asgi_body_app:app", "-k", "asgi")
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"
    rest = smuggled + b"r" * (20_000 - len(smuggled))
    with connect(address) as sock:
        sock.sendall(b"POST /ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 20100\r\n\r\n"
                     + b"x" * 100)
        head, body = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 200") and body == b"ignored"
        sock.sendall(rest + b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        head, body = _read_response(sock)
        assert head.startswith(b"HTTP/1.1 200") and body == b"hello", (head, body)


def test_a_chunked_body_past_the_limit_is_413_even_once_the_app_runs(start_server) -> None:
    """--limit-request-body is the HTTP core's: a chunked body that passes it while streaming
    (the app already reading) still gets the one 413 and the close."""
    server, (address,) = start_server("asgi_app:app", "-k", "asgi", "--limit-request-body", "64")
    with connect(address) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"20\r\n" + b"c" * 32 + b"\r\n")
        sock.sendall(b"".join(b"20\r\n%b\r\n" % (b"c" * 32) for _ in range(3)) + b"0\r\n\r\n")
        data = b""
        while True:
            try:
                piece = sock.recv(65536)
            except ConnectionResetError:
                break
            if not piece:
                break
            data += piece
    assert data.startswith(b"HTTP/1.1 413 "), data
    assert data.count(b"HTTP/1.1") == 1 and b"Connection: close" in data

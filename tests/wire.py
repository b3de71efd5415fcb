"""A small, strict HTTP/1.1 response reader for the integration tests.

The tests talk raw bytes so that they see exactly what the server put on the wire: interim 100
responses, framing, a connection cut short. This reader parses responses one at a time from a socket,
keeping whatever follows for the next response, and says so loudly when a response is incomplete.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
from dataclasses import dataclass, field
from typing import Any, Iterator

from conftest import Server, connect, wait_ready


class Incomplete(AssertionError):
    """The server closed the connection in the middle of a response."""

    def __init__(self, message: str, data: bytes) -> None:
        super().__init__(f"{message}: {data[:300]!r}")
        self.data = data


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    head: bytes = b""
    chunked: bool = False
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        lname = name.lower()
        return [v for n, v in self.headers if n.lower() == lname]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def closes(self) -> bool:
        return any("close" in v.lower() for v in self.all("connection"))


class Reader:
    """Reads responses from one connection, in order."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.eof = False
        self.received = bytearray()  # everything read from the connection, for assertions

    def _fill(self) -> None:
        if self.eof:
            raise Incomplete("connection already closed", bytes(self.buf))
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
        self.buf += data
        self.received += data

    def _need(self, count: int) -> None:
        while len(self.buf) < count:
            if self.eof:
                raise Incomplete(f"closed with {len(self.buf)} of {count} bytes", bytes(self.buf))
            self._fill()

    def _line(self) -> bytes:
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[:end + 2]
                return line
            if self.eof:
                raise Incomplete("closed in the middle of a line", bytes(self.buf))
            self._fill()

    def read_head(self) -> Response:
        while b"\r\n\r\n" not in self.buf:
            if self.eof:
                raise Incomplete("closed before a complete response head", bytes(self.buf))
            self._fill()
        end = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:end + 4])
        del self.buf[:end + 4]
        lines = head[:-4].split(b"\r\n")
        version, _, rest = lines[0].decode("latin-1").partition(" ")
        code, _, reason = rest.partition(" ")
        assert version.startswith("HTTP/1."), head
        assert len(code) == 3 and code.isdigit(), head
        headers = []
        for line in lines[1:]:
            assert b"\n" not in line and b"\r" not in line and b"\0" not in line, head
            name, sep, value = line.decode("latin-1").partition(":")
            assert sep and name and name == name.strip(), f"malformed header line {line!r}"
            headers.append((name, value.strip()))
        return Response(version, int(code), reason, headers, head=head)

    def read_response(self, method: str = "GET", interim: bool = False) -> Response:
        """The next response; 1xx responses are skipped unless ``interim``."""
        while True:
            response = self.read_head()
            if 100 <= response.status < 200 and response.status != 101:
                if interim:
                    return response
                continue
            break
        self._read_body(response, method)
        return response

    def _read_body(self, response: Response, method: str) -> None:
        if method == "HEAD" or response.status in (204, 304):
            return
        te = response.header("transfer-encoding")
        if te is not None:
            assert te.lower() == "chunked", te
            assert response.header("content-length") is None, response.head
            response.chunked = True
            pieces = []
            while True:
                size_line = self._line()
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    break
                self._need(size + 2)
                pieces.append(bytes(self.buf[:size]))
                assert self.buf[size:size + 2] == b"\r\n", "chunk not followed by CRLF"
                del self.buf[:size + 2]
            while True:
                line = self._line()
                if not line:
                    break
                name, _, value = line.decode("latin-1").partition(":")
                response.trailers.append((name, value.strip()))
            response.body = b"".join(pieces)
            return
        length = response.header("content-length")
        if length is not None:
            count = int(length)
            self._need(count)
            response.body = bytes(self.buf[:count])
            del self.buf[:count]
            return
        # Close-delimited.
        while not self.eof:
            self._fill()
        response.body = bytes(self.buf)
        self.buf.clear()

    def closed(self) -> bool:
        """True when the server has closed the connection and sent nothing more (waits for it; the
        socket timeout is the guard)."""
        if self.buf:
            return False
        if not self.eof:
            self._fill()
        return self.eof and not self.buf


def request(address: str, raw: bytes, method: str = "GET", timeout: float = 10.0) -> Response:
    """Send one request on a new connection, read one response."""
    with connect(address, timeout) as sock:
        sock.sendall(raw)
        return Reader(sock).read_response(method)


def get(address: str, target: str, *headers: str, version: str = "1.1",
        method: str = "GET") -> Response:
    """A simple request with Connection: close (HTTP/1.1) on a new connection."""
    lines = [f"{method} {target} HTTP/{version}", "Host: test.example"]
    lines += list(headers)
    if version == "1.1":
        lines.append("Connection: close")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return request(address, raw, method)


def post(address: str, target: str, body: bytes, *headers: str) -> Response:
    head = (f"POST {target} HTTP/1.1\r\nHost: test.example\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n")
    return request(address, head.encode("latin-1") + body)


def check_worker_connections(address: str, limit: int) -> None:
    """Against a single worker run with ``--worker-connections limit``: ``limit`` connections are
    served and held open; one more waits unanswered until one of them closes, then is served."""
    held = [connect(address, timeout=30) for _ in range(limit)]
    try:
        for sock in held:  # all accepted and served, and kept alive
            sock.sendall(b"GET /pid HTTP/1.1\r\nHost: t\r\n\r\n")
            assert Reader(sock).read_response().status == 200
        with connect(address, timeout=30) as waiting:
            # The kernel completes the handshake (the listen queue), the worker does not accept.
            waiting.sendall(b"GET /pid HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            readable, _, _ = select.select([waiting], [], [], 1.0)
            assert not readable, \
                f"connection {limit + 1} was served past --worker-connections {limit}"
            held.pop().close()  # room for one more: the waiting client is taken and answered
            assert Reader(waiting).read_response().status == 200
    finally:
        for sock in held:
            sock.close()


@contextlib.contextmanager
def serve(*args: str) -> Iterator[tuple[Server, list[str]]]:
    """A server for a whole test module (the start_server fixture is per test): ``args`` are the
    command line, binds included; yields (server, addresses) once every address answers."""
    server = Server(list(args))
    try:
        binds = sum(1 for a in args if a in ("-b", "--bind") or a.startswith("--bind="))
        addresses = server.addresses(max(binds, 1))
        for address in addresses:
            wait_ready(address)
        yield server, addresses
    finally:
        server.stop()

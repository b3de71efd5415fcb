"""PEP 3333 as the application sees it, through a real server: the environ, wsgi.input, wsgi.errors,
wsgi.file_wrapper, start_response and write(), close(), errors, and wsgiref's validator."""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from conftest import Server, connect
from wire import Incomplete, Reader, Response, get, request, serve

APP = "behaviours:app"

# The same tests under every worker class (sync, gthread, gevent).
pytestmark = pytest.mark.usefixtures("worker_class")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory,
           worker_class: str) -> Iterator[tuple[Server, str, str]]:
    """(server, TCP address, unix address) of one server for the whole module."""
    sock_path = tmp_path_factory.mktemp("wsgi") / "s.sock"
    with serve("-b", "127.0.0.1:0", "-b", f"unix:{sock_path}", APP) as (server, addresses):
        tcp = next(a for a in addresses if a.startswith("http://"))
        unix = next(a for a in addresses if a.startswith("unix:"))
        yield server, tcp, unix


@pytest.fixture
def server(served: tuple[Server, str, str]) -> Server:
    return served[0]


@pytest.fixture
def address(served: tuple[Server, str, str]) -> str:
    return served[1]


def marker() -> str:
    return uuid.uuid4().hex[:12]


def req(target: str, *headers: str, method: str = "GET", body: bytes = b"",
        version: str = "1.1") -> bytes:
    lines = [f"{method} {target} HTTP/{version}", "Host: test.example", *headers]
    if body and not any(h.lower().startswith("transfer-encoding") for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# -- environ ------------------------------------------------------------------------------------------

def test_environ_has_every_pep3333_key_with_native_strings(address: str, worker_class: str) -> None:
    with connect(address) as sock:
        client_port = sock.getsockname()[1]
        sock.sendall(req("/environ?a=1&b=%20two", "Content-Type: text/plain", "X-Custom: yes",
                         "Connection: close", method="POST", body=b"abc"))
        response = Reader(sock).read_response()
    data = response.json()
    env = data["environ"]
    assert data["environ_type"] == "dict"
    assert all(entry["key_type"] == "str" for entry in env.values())
    # Every CGI-style key holds a native str (PEP 3333: "native strings").
    for key, entry in env.items():
        if "." not in key:
            assert entry["type"] == "str", (key, entry)

    def value(key: str) -> object:
        return env[key]["value"]

    assert value("REQUEST_METHOD") == "POST"
    assert value("SCRIPT_NAME") == ""
    assert value("PATH_INFO") == "/environ"
    assert value("QUERY_STRING") == "a=1&b=%20two"
    assert value("CONTENT_TYPE") == "text/plain"
    assert value("CONTENT_LENGTH") == "3"
    # The listener's address on TCP, whatever the Host says, as in Gunicorn.
    host, port = address.removeprefix("http://").rsplit(":", 1)
    assert value("SERVER_NAME") == host
    assert value("SERVER_PORT") == port
    assert value("SERVER_PROTOCOL") == "HTTP/1.1"
    assert value("HTTP_HOST") == "test.example"
    assert value("HTTP_X_CUSTOM") == "yes"
    assert value("REMOTE_ADDR") == "127.0.0.1"
    assert value("REMOTE_PORT") == str(client_port)
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert value("wsgi.version") == [1, 0] and env["wsgi.version"]["type"] == "tuple"
    assert value("wsgi.url_scheme") == "http"
    # True where the app may run on several threads of one process at once; greenlets are the
    # gevent worker's own call (see workers/ggevent.py).
    if worker_class != "gevent":
        assert value("wsgi.multithread") is (worker_class == "gthread")
    assert value("wsgi.multiprocess") is False  # one worker
    assert value("wsgi.run_once") is False
    assert {"wsgi.input", "wsgi.errors", "wsgi.file_wrapper"} <= set(env)
    assert data["streams"]["input"] == ["read", "readline", "readlines", "__iter__"]
    assert data["streams"]["errors"] == ["write", "writelines", "flush"]
    assert data["file_wrapper_callable"] is True


def test_path_info_is_decoded_as_latin1_and_query_is_left_alone(address: str) -> None:
    data = get(address, "/a%20b/caf%C3%A9/%2F?x=%20y&z=%C3%A9").json()
    assert data["path"] == "/a b/caf\u00c3\u00a9//"  # the UTF-8 bytes, each as a latin-1 character
    assert data["query"] == "x=%20y&z=%C3%A9"
    assert data["raw_uri"] == "/a%20b/caf%C3%A9/%2F?x=%20y&z=%C3%A9"


def test_repeated_headers_are_joined(address: str) -> None:
    headers = dict(get(address, "/multi", "X-Multi: a", "X-Multi: b", "Cookie: c=1",
                       "Cookie: d=2").json()["headers"])
    assert headers["HTTP_X_MULTI"] == "a,b"
    assert headers["HTTP_COOKIE"] == "c=1; d=2"


def test_server_name_and_port_come_from_the_listener_with_or_without_host(address: str) -> None:
    """On TCP, as in Gunicorn: the listener's address, whatever the Host says."""
    data = request(address, b"GET /nohost HTTP/1.0\r\n\r\n").json()
    assert data["server_name"] == "127.0.0.1"
    assert data["server_port"] == address.rsplit(":", 1)[1]
    ported = get(address, "/ported", "X-Ignored: 1", version="1.0").json()
    assert (ported["server_name"], ported["server_port"]) == (data["server_name"],
                                                              data["server_port"])


# -- wsgi.input --------------------------------------------------------------------------------------

BODY = b"line one\nline two\nthird line, no newline"


@pytest.mark.parametrize("ops, expected", [
    ("read:4,read:5,read,read,read:10", ["line", " one\n", "line two\nthird line, no newline", "", ""]),
    ("readline,readline:4,readline,readline,readline,read",
     ["line one\n", "line", " two\n", "third line, no newline", "", ""]),
    ("readlines,read,readline", [["line one\n", "line two\n", "third line, no newline"], "", ""]),
    ("iter,read", [["line one\n", "line two\n", "third line, no newline"], ""]),
    ("read:0,read:100,read:1", ["", BODY.decode(), ""]),
])
@pytest.mark.parametrize("chunked", [False, True])
def test_wsgi_input_reading_methods(address: str, ops: str, expected: list[object],
                                    chunked: bool) -> None:
    if chunked:
        body = b"7\r\n%b\r\n%x\r\n%b\r\n0\r\n\r\n" % (BODY[:7], len(BODY) - 7, BODY[7:])
        raw = req(f"/input?ops={ops}", "Transfer-Encoding: chunked", "Connection: close",
                  method="POST", body=body)
    else:
        raw = req(f"/input?ops={ops}", "Connection: close", method="POST", body=BODY)
    assert request(address, raw).json() == expected


def test_wsgi_input_is_empty_without_a_body(address: str) -> None:
    assert get(address, "/input?ops=read,readline,readlines,iter,read:5").json() == [
        "", "", [], [], ""]


@pytest.mark.parametrize("chunked", [False, True])
def test_large_body_reaches_the_app_intact(address: str, chunked: bool) -> None:
    payload = os.urandom(2_500_000)  # past the in-memory limit: the body is spooled to disk
    if chunked:
        step = 300_000
        body = b"".join(b"%x\r\n%b\r\n" % (len(payload[i:i + step]), payload[i:i + step])
                        for i in range(0, len(payload), step)) + b"0\r\n\r\n"
        raw = req("/digest", "Transfer-Encoding: chunked", "Connection: close", method="POST",
                  body=body)
    else:
        raw = req("/digest", "Connection: close", method="POST", body=payload)
    data = request(address, raw, timeout=30).json()
    assert data["size"] == len(payload)
    assert data["sha256"] == hashlib.sha256(payload).hexdigest()
    assert data["content_length"] == str(len(payload))


def test_large_body_lines(address: str) -> None:
    lines = [b"%07d line\n" % i for i in range(150_000)]  # 1.8 MB, spooled
    data = request(address, req("/input?ops=readline,readline:3,readlines", "Connection: close",
                                method="POST", body=b"".join(lines)), timeout=30).json()
    assert data[0] == lines[0].decode()
    assert data[1] == lines[1][:3].decode()
    assert data[2][0] == lines[1][3:].decode()
    assert len(data[2]) == len(lines) - 1
    assert data[2][-1] == lines[-1].decode()


# -- wsgi.errors -------------------------------------------------------------------------------------

def test_wsgi_errors_goes_to_the_error_log(address: str, server: Server) -> None:
    tag = marker()
    assert get(address, f"/errors?marker={tag}").body == b"logged"
    server.wait_for_line(f"errors-write {tag}")
    server.wait_for_line(f"errors-writelines {tag}")


# -- wsgi.file_wrapper ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    content = os.urandom(3_000_000)
    path = tmp_path_factory.mktemp("files") / "data.bin"
    path.write_bytes(content)
    return path, content


@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_file_wrapper_sends_the_file(served: tuple[Server, str, str], data_file: tuple[Path, bytes],
                                     transport: str) -> None:
    path, content = data_file
    address = served[1] if transport == "tcp" else served[2]
    with connect(address, timeout=30) as sock:
        reader = Reader(sock)
        for _ in range(2):  # twice on one connection: the framing leaves it usable
            sock.sendall(req(f"/file?path={path}"))
            response = reader.read_response()
            assert response.status == 200
            assert response.header("content-length") == str(len(content))
            assert response.body == content
        sock.sendall(req("/after-file", "Connection: close"))
        assert reader.read_response().json()["path"] == "/after-file"
        assert reader.closed()


def test_file_wrapper_from_the_current_position(address: str, data_file: tuple[Path, bytes]) -> None:
    path, content = data_file
    response = request(address, req(f"/file?path={path}&offset=1000", "Connection: close"),
                       timeout=30)
    assert response.header("content-length") == str(len(content) - 1000)
    assert response.body == content[1000:]


def test_file_wrapper_respects_the_apps_content_length(address: str,
                                                       data_file: tuple[Path, bytes]) -> None:
    path, content = data_file
    with connect(address, timeout=30) as sock:
        sock.sendall(req(f"/file?path={path}&cl=100") + req("/after-file", "Connection: close"))
        reader = Reader(sock)
        assert reader.read_response().body == content[:100]
        assert reader.read_response().json()["path"] == "/after-file"


def test_file_wrapper_of_a_non_file(address: str, data_file: tuple[Path, bytes]) -> None:
    path, content = data_file
    response = request(address, req(f"/file?path={path}&bytesio=1", "Connection: close"),
                       timeout=30)
    assert response.body == content


def test_file_wrapper_head_and_http10(address: str, data_file: tuple[Path, bytes]) -> None:
    path, content = data_file
    with connect(address, timeout=30) as sock:
        sock.sendall(req(f"/file?path={path}", method="HEAD") + req("/after-head", "Connection: close"))
        reader = Reader(sock)
        head = reader.read_response("HEAD")
        assert head.status == 200
        # A Content-Length on HEAD is optional (RFC 9110 9.3.2), but if sent it must be the GET's.
        assert head.header("content-length") in (None, str(len(content)))
        assert reader.read_response().json()["path"] == "/after-head"
    old = request(address, req(f"/file?path={path}", version="1.0"), timeout=30)
    assert old.body == content


# -- start_response and write() -------------------------------------------------------------------

def test_exc_info_before_headers_are_sent_replaces_the_response(address: str) -> None:
    response = get(address, "/exc-info-before")
    assert response.status == 503
    assert response.reason == "Changed Mind"
    assert response.header("x-first") is None
    assert response.body == b"replaced response"


def test_exc_info_after_headers_are_sent_reraises_and_cuts_the_connection(address: str,
                                                                          server: Server) -> None:
    tag = marker()
    with connect(address) as sock:
        sock.sendall(req(f"/exc-info-after?marker={tag}"))
        reader = Reader(sock)
        with pytest.raises(Incomplete):
            reader.read_response()
    sent = bytes(reader.received)
    assert sent.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"already sent;" in sent
    assert b"500 Oops" not in sent and b"never be reached" not in sent
    server.wait_for_line(f"ValueError: too late {tag}")


@pytest.mark.parametrize("path", ["/start-twice", "/no-start"])
def test_start_response_misuse_is_a_500(address: str, path: str) -> None:
    response = get(address, path)
    assert response.status == 500
    assert b"must not be sent" not in response.body


@pytest.mark.parametrize("query, framing", [
    ("", "chunked"), ("generator=1", "chunked"), ("cl=18", "length"), ("cl=18&generator=1", "length"),
])
def test_write_callable(address: str, query: str, framing: str) -> None:
    with connect(address) as sock:
        sock.sendall(req(f"/write?{query}") + req("/after-write", "Connection: close"))
        reader = Reader(sock)
        response = reader.read_response()
        assert response.body == b"one,two,three,four"
        assert response.chunked == (framing == "chunked")
        assert reader.read_response().json()["path"] == "/after-write"


def test_write_callable_on_http10_is_close_delimited(address: str) -> None:
    response = request(address, req("/write", version="1.0"))
    assert response.body == b"one,two,three,four"
    assert response.closes


# -- close() ---------------------------------------------------------------------------------------

def test_close_is_called_after_a_normal_response(address: str, server: Server) -> None:
    tags = [marker(), marker()]
    with connect(address) as sock:
        sock.sendall(req(f"/closing?marker={tags[0]}")
                     + req(f"/closing?marker={tags[1]}", "Connection: close", method="HEAD"))
        reader = Reader(sock)
        assert reader.read_response().body == b"piece1;piece2;piece3;"
        assert reader.read_response("HEAD").body == b""
    for tag in tags:
        server.wait_for_line(f"iterable closed {tag}")


def test_a_response_object_over_a_list_goes_out_whole_and_is_closed(address: str,
                                                                   server: Server) -> None:
    """An iterable whose iterator walks a list (Django's HttpResponse) has its body in memory: it is
    sent whole with its length, as a list would be, and still closed."""
    tag = marker()
    response = request(address, req(f"/closing?marker={tag}&mode=list"))
    assert response.status == 200 and response.body == b"piece1;piece2;"
    assert response.header("Content-Length") == "14" and not response.chunked
    server.wait_for_line(f"iterable closed {tag}")


def test_an_iterable_that_cannot_be_iterated_is_a_500_and_is_closed(address: str,
                                                                   server: Server) -> None:
    tag = marker()
    response = request(address, req(f"/closing?marker={tag}&mode=iter-raises"))
    assert response.status == 500
    server.wait_for_line(f"RuntimeError: no iterator {tag}")
    server.wait_for_line(f"iterable closed {tag}")


def test_a_long_streamed_body_outpacing_its_client_arrives_whole(address: str) -> None:
    """16 MiB from a generator to a client with a small receive buffer: the server's buffers fill,
    the transport pushes back mid-body (the sync worker then carries on from a task instead of
    inline), and every piece still arrives once, in order, with the connection fit for the next
    request."""
    count, size = 256, 65536
    with connect(address, rcvbuf=4096) as sock:
        sock.sendall(req(f"/stream?count={count}&size={size}") + req("/stream?pieces=after"))
        reader = Reader(sock)
        response = reader.read_response()
        assert response.status == 200
        assert len(response.body) == count * size
        expected = hashlib.sha256(b"".join((b"%08d" % i) * (size // 8) for i in range(count)))
        assert hashlib.sha256(response.body).hexdigest() == expected.hexdigest()
        assert reader.read_response().body == b"after"


def test_close_is_called_when_iteration_raises(address: str, server: Server) -> None:
    tag = marker()
    with connect(address) as sock:
        sock.sendall(req(f"/closing?marker={tag}&mode=raise"))
        with pytest.raises(Incomplete):
            Reader(sock).read_response()
    server.wait_for_line(f"RuntimeError: iteration failed {tag}")
    server.wait_for_line(f"iterable closed {tag}")


def test_close_is_called_when_the_client_goes_away(address: str, server: Server) -> None:
    tag = marker()
    sock = connect(address)
    sock.sendall(req(f"/closing?marker={tag}&mode=infinite"))
    assert Reader(sock).read_head().status == 200
    server.wait_for_line(f"streaming started {tag}")
    # Vanish with a reset, mid-body, the way a killed client does.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    server.wait_for_line(f"iterable closed {tag}")
    # The worker is still serving.
    assert get(address, "/still-alive").status == 200


# -- app errors --------------------------------------------------------------------------------------

def test_app_exception_is_a_500_with_the_traceback_in_the_log(address: str, server: Server) -> None:
    tag = marker()
    with connect(address) as sock:
        sock.sendall(req(f"/raise?marker={tag}"))
        reader = Reader(sock)
        response = reader.read_response()
        assert response.status == 500
        assert tag.encode() not in response.body  # no traceback for the client
        assert response.closes
        assert reader.closed()
    server.wait_for_line(f"RuntimeError: boom {tag}")
    index = next(i for i, line in enumerate(server.lines) if f"boom {tag}" in line)
    assert any("Traceback (most recent call last)" in line for line in server.lines[:index])
    assert get(address, "/still-serving").status == 200


@pytest.mark.parametrize("cl", ["", "100"])
def test_app_exception_after_headers_closes_the_connection(address: str, server: Server,
                                                           cl: str) -> None:
    tag = marker()
    with connect(address) as sock:
        sock.sendall(req(f"/raise-after-headers?marker={tag}&cl={cl}") + req("/never-answered"))
        reader = Reader(sock)
        with pytest.raises(Incomplete):
            reader.read_response()
    sent = bytes(reader.received)
    assert sent.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"first piece;" in sent
    assert b"never-answered" not in sent and sent.count(b"HTTP/1.1") == 1
    server.wait_for_line(f"RuntimeError: late boom {tag}")


# -- wsgiref.validate -------------------------------------------------------------------------------

def test_wsgiref_validator_finds_no_fault(start_server) -> None:  # type: ignore[no-untyped-def]
    server, (address,) = start_server("validated:application")
    body = b"first line\nsecond line\nthird"
    chunked = b"5\r\nfirst\r\n6\r\n line\n\r\n0\r\n\r\n"
    with connect(address) as sock:
        reader = Reader(sock)

        def ask(raw: bytes, method: str = "GET") -> Response:
            sock.sendall(raw)
            return reader.read_response(method)

        assert ask(req("/plain")).body == b"body="
        assert ask(req("/read", method="POST", body=body)).body == b"body=" + body
        assert ask(req("/lines", method="POST", body=body)).body == b"body=" + body
        assert ask(req("/iterate", method="POST", body=body)).body == b"body=" + body
        assert ask(req("/read", "Transfer-Encoding: chunked", method="POST",
                       body=chunked)).body == b"body=first line\n"
        assert ask(req("/write", method="POST", body=b"w")).body == b"body=w"
        assert ask(req("/generator", method="POST", body=b"g")).body == b"body=g"
        assert ask(req("/no-content")).status == 204
        assert ask(req("/plain", method="HEAD"), "HEAD").body == b""
        assert ask(b"OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n").status == 200
        assert ask(req("/q?x=1&y", "X_Dropped: 1", "Cookie: a=1")).status == 200
        assert ask(req("/old", "Connection: keep-alive", version="1.0")).status == 200
        # Pipelined, and the last one closes.
        sock.sendall(req("/p1") + req("/p2", method="POST", body=b"p2") + req("/p3", "Connection: close"))
        assert [reader.read_response().body for _ in range(3)] == [b"body=", b"body=p2", b"body="]
        assert reader.closed()
    server.wait_for_line("validated GET /p3")
    assert server.stop() == 0
    output = server.output
    for fault in ("AssertionError", "WSGIWarning", "Traceback", "garbage collected", "Error"):
        assert fault not in output, output
    assert len([line for line in server.lines
                if "validated " in line and "/__ready" not in line]) == 15

"""environ["gunicorn.socket"]: WSGI websocket libraries take the connection over through it, under
every worker class. Real flask-sock and simple-websocket apps (tests/apps/websocket_app.py), real
websocket clients (the websockets library's sync client, and raw bytes made with wsproto for a first
frame sent right behind the handshake); after each session the worker serves other clients."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

pytest.importorskip("flask_sock", reason="flask-sock is in the test extra (pip install -e '.[test]')")
pytest.importorskip("websockets", reason="websockets is in the test extra (pip install -e '.[test]')")

from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402
from websockets.sync.client import connect as ws_connect  # noqa: E402
from wsproto import ConnectionType, WSConnection  # noqa: E402
from wsproto.frame_protocol import FrameProtocol  # noqa: E402
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, Message,  # noqa: E402
                            Request, TextMessage)

from conftest import connect  # noqa: E402
from master_util import poll  # noqa: E402
from wire import Reader, get, serve  # noqa: E402

pytestmark = pytest.mark.usefixtures("worker_class")


@pytest.fixture(scope="module")
def flask_address(worker_class: str) -> Iterator[str]:
    with serve("-b", "127.0.0.1:0", "--threads", "2", "websocket_app:flask_app") as (_, addresses):
        yield addresses[0]


@pytest.fixture(scope="module")
def raw_address(worker_class: str) -> Iterator[str]:
    with serve("-b", "127.0.0.1:0", "--threads", "2", "websocket_app:raw_app") as (_, addresses):
        yield addresses[0]


def ws_url(address: str, path: str) -> str:
    return address.replace("http://", "ws://") + path


def echo_session(url: str, messages: list[str | bytes]) -> list[str | bytes]:
    """Send each message, collect each answer, say "bye", and see the server close."""
    answers: list[str | bytes] = []
    with ws_connect(url, open_timeout=10, close_timeout=10) as ws:
        for message in messages:
            ws.send(message)
            answers.append(ws.recv(timeout=10))
        ws.send("bye")
        try:
            answers.append(ws.recv(timeout=10))  # flask_app says farewell
            ws.recv(timeout=10)
        except ConnectionClosed:
            pass
    return answers


def test_flask_sock_echoes_and_the_worker_serves_on(flask_address: str) -> None:
    messages: list[str | bytes] = ["one", "two", b"\x00\x01binary", "é" * 5000]
    for _ in range(2):  # a second session on the same worker
        assert echo_session(ws_url(flask_address, "/echo"), messages) == messages + ["farewell"]
        response = get(flask_address, "/plain")
        assert (response.status, response.body) == (200, b"plain")


def test_keep_alive_requests_before_the_upgrade_on_the_same_connection(flask_address: str) -> None:
    """The connection a client takes over may have served ordinary requests first."""
    with connect(flask_address) as sock:
        reader = Reader(sock)
        sock.sendall(b"GET /plain HTTP/1.1\r\nHost: t\r\n\r\n")
        assert reader.read_response().body == b"plain"
        client = WSConnection(ConnectionType.CLIENT)
        sock.sendall(client.send(Request(host="t", target="/echo")))
        head = reader.read_head()
        assert head.status == 101
        client.receive_data(head.head + bytes(reader.buf))
        assert isinstance(next(client.events()), AcceptConnection)
        sock.sendall(client.send(Message(data="hello")))
        assert receive_messages(sock, client, 1) == ["hello"]


def receive_messages(sock: socket.socket, client: WSConnection, count: int) -> list[str | bytes]:
    found: list[str | bytes] = []
    while len(found) < count:
        data = sock.recv(65536)
        client.receive_data(data or None)
        for event in client.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                found.append(event.data)
            elif isinstance(event, CloseConnection):
                return found
        if not data:
            break
    return found


def test_a_first_frame_sent_behind_the_handshake_reaches_the_app(raw_address: str) -> None:
    """Bytes the server read past the request head are the app's: delivered before the socket's."""
    client = WSConnection(ConnectionType.CLIENT)
    frames = FrameProtocol(client=True, extensions=[])  # (wsproto's client waits for the 101)
    with connect(raw_address) as sock:
        # All in one write: the server reads the frames with the head, before the app runs.
        sock.sendall(client.send(Request(host="t", target="/ws"))
                     + frames.send_data("early") + frames.send_data("bird"))
        reader = Reader(sock)
        assert reader.read_head().status == 101
        answers: list[object] = []
        frames.receive_bytes(bytes(reader.buf))
        while len(answers) < 2:
            answers += [frame.payload for frame in frames.received_frames()]
            if len(answers) < 2:
                data = sock.recv(65536)
                assert data, "closed before the answers"
                frames.receive_bytes(data)
        assert answers == ["ylrae", "drib"]


def test_simple_websocket_from_a_bare_wsgi_app(raw_address: str) -> None:
    assert echo_session(ws_url(raw_address, "/ws"), ["abc", b"xyz", "last"]) == \
        ["cba", b"xyz", "tsal"]
    response = get(raw_address, "/")
    assert response.body == b"'ClientSocket'"  # every request has the key


def test_a_response_made_after_the_takeover_goes_out_on_the_apps_socket(raw_address: str) -> None:
    with connect(raw_address) as sock:
        sock.sendall(b"GET /raw-response HTTP/1.1\r\nHost: t\r\n\r\n")
        reader = Reader(sock)
        response = reader.read_response()
        assert (response.status, response.body) == (200, b"taken")
        assert reader.closed()  # the connection was the app's: it carries no next request
    assert get(raw_address, "/").status == 200


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_over_tls_gevent_hands_over_its_tls_socket_and_the_loop_workers_say_they_cannot(
        worker_class: str, start_server, tmp_path_factory: pytest.TempPathFactory) -> None:  # type: ignore[no-untyped-def]
    where = tmp_path_factory.mktemp("pki")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", "key.pem", "-out", "cert.pem"], cwd=where, check=True,
                   capture_output=True, timeout=60)
    server, (address,) = start_server(
        "websocket_app:flask_app", "--certfile", str(where / "cert.pem"), "--keyfile",
        str(where / "key.pem"), ready=False)
    context = ssl.create_default_context(cafile=str(where / "cert.pem"))
    url = address.replace("https://", "wss://") + "/echo"
    deadline = time.monotonic() + 15
    while True:  # poll: the worker may still be booting
        try:
            host, port = address.removeprefix("https://").rsplit(":", 1)
            socket.create_connection((host, int(port)), 1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, server.output
            time.sleep(0.05)  # polling interval while the worker boots
    if worker_class == "gevent":
        with ws_connect(url, ssl=context, open_timeout=10) as ws:
            ws.send("secret")
            assert ws.recv(timeout=10) == "secret"
        return
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(url, ssl=context, open_timeout=10)
    assert refused.value.response.status_code == 500
    server.wait_for_line("cannot take over a TLS connection")


def test_a_session_ended_by_stop_iteration_runs_post_request_without_an_access_line(
        worker_class: str, tmp_path: Path) -> None:
    """flask-sock ends a session by raising StopIteration: as under Gunicorn, post_request still
    runs for it, and no access line is written (there was no HTTP response)."""
    seen, access = tmp_path / "seen", tmp_path / "access.log"
    config = tmp_path / "hooks.conf.py"
    config.write_text(f"def post_request(worker, req, environ, resp):\n"
                      f"    with open({str(seen)!r}, 'a') as out:\n"
                      f"        out.write(req.path + '\\n')\n")
    with serve("-b", "127.0.0.1:0", "--threads", "2", "-c", str(config), "--access-logfile",
               str(access), "websocket_app:flask_app") as (_, addresses):
        assert echo_session(ws_url(addresses[0], "/echo"), ["x"]) == ["x", "farewell"]
        assert get(addresses[0], "/plain").status == 200
        poll(lambda: seen.exists() and seen.read_text().split()[-2:] == ["/echo", "/plain"],
             "post_request for the session, then for /plain")
        poll(lambda: access.exists() and "/plain" in access.read_text(), "the /plain access line")
    assert "/echo" not in access.read_text()

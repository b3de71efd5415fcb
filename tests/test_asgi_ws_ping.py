"""--websocket-ping-interval / --websocket-ping-timeout: the asgi worker pings every open
WebSocket and closes (1011) a peer that does not answer. A raw client (a socket and wsproto's
client side) chooses whether to answer."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import connect

wsproto = pytest.importorskip("wsproto", reason="needs wsproto (pip install -e '.[test]')")
from wsproto import ConnectionType, WSConnection  # noqa: E402
from wsproto.events import (AcceptConnection, CloseConnection, Ping, Request,  # noqa: E402
                            TextMessage)


def _poll(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


class RawClient:
    def __init__(self, address: str, path: str) -> None:
        self.sock = connect(address, timeout=10)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host="t", target=path)))
        assert isinstance(self.next_event(), AcceptConnection)

    def next_event(self) -> Any:
        """The next event from the server; None once it closed the connection."""
        while True:
            for event in self.ws.events():
                return event
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)
            if not data:
                for event in self.ws.events():
                    return event
                return None


def test_a_peer_that_never_pongs_is_closed_1011(start_server, tmp_path: Path) -> None:
    events = tmp_path / "events.txt"
    server, (address,) = start_server("asgi_ws_app:app", "-k", "asgi",
                                      "--websocket-ping-interval", "0.2",
                                      "--websocket-ping-timeout", "0.3",
                                      env={"WS_EVENTS_FILE": str(events)})
    client = RawClient(address, "/echo")
    seen = []
    start = time.monotonic()
    while True:
        event = client.next_event()
        seen.append(type(event).__name__)
        if isinstance(event, CloseConnection) or event is None:
            break
    assert "Ping" in seen, seen
    assert isinstance(event, CloseConnection) and event.code == 1011, seen
    assert time.monotonic() - start < 5
    assert client.sock.recv(100) == b""  # and the connection is closed
    client.sock.close()
    _poll(lambda: "disconnect 1011" in events.read_text().splitlines()
          if events.exists() else False)
    server.wait_for_line(r"no pong within 0\.3 s")


def test_a_peer_that_answers_stays_open(start_server) -> None:
    server, (address,) = start_server("asgi_ws_app:app", "-k", "asgi",
                                      "--websocket-ping-interval", "0.1",
                                      "--websocket-ping-timeout", "0.3")
    client = RawClient(address, "/echo")
    pings = 0
    while pings < 6:  # well past several timeouts, every ping answered
        event = client.next_event()
        assert isinstance(event, Ping), event
        client.sock.sendall(client.ws.send(event.response()))
        pings += 1
    client.sock.sendall(client.ws.send(TextMessage(data="still here")))
    while True:
        event = client.next_event()
        if isinstance(event, TextMessage):
            break
        assert isinstance(event, Ping), event
        client.sock.sendall(client.ws.send(event.response()))
    assert event.data == "still here"
    client.sock.close()


def test_no_pings_with_interval_zero(start_server) -> None:
    server, (address,) = start_server("asgi_ws_app:app", "-k", "asgi",
                                      "--websocket-ping-interval", "0")
    client = RawClient(address, "/echo")
    client.sock.settimeout(0.5)
    with pytest.raises(socket.timeout):
        client.next_event()  # (nothing comes: no ping)
    client.sock.close()


def test_an_app_that_only_sends_learns_from_send_that_the_peer_left(start_server,
                                                                    tmp_path: Path) -> None:
    """ASGI 2.4: send() on a closed WebSocket raises an OSError; the app that lets it out is not
    logged as failing (the peer left, nothing went wrong in the app)."""
    events = tmp_path / "events.txt"
    server, (address,) = start_server("asgi_ws_sender:app", "-k", "asgi",
                                      env={"WS_EVENTS_FILE": str(events)})
    client = RawClient(address, "/")
    event = client.next_event()
    assert isinstance(event, TextMessage) and event.data == "tick"
    client.sock.sendall(client.ws.send(CloseConnection(code=1000)))
    client.sock.close()
    _poll(lambda: events.exists()
          and "send raised ClientDisconnected" in events.read_text().splitlines())
    assert "Exception in ASGI application" not in server.output

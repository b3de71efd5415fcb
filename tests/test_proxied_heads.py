"""The heads a proxy forwards, each with its own X-Request-Id and cookie, over a real keep-alive
connection to a real pronghorn, under every worker class: once the worker knows their shape (see
HeadCache's ``shapes``), each request still reaches the app with its own values, and a value the
parser refuses is still a 400 that closes the connection."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import connect
from wire import Reader

APP = "environ_app:app"

pytestmark = pytest.mark.usefixtures("worker_class")


def proxied(request_id: bytes, session: bytes, proto: bytes = b"https") -> bytes:
    return (b"GET /items?page=2 HTTP/1.1\r\nHost: app.example.com\r\nX-Real-IP: 203.0.113.7\r\n"
            b"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: " + proto + b"\r\n"
            b"X-Request-Id: " + request_id + b"\r\nUser-Agent: Mozilla/5.0 Firefox/133.0\r\n"
            b"Accept: text/html\r\nCookie: sessionid=" + session + b"; theme=dark\r\n\r\n")


def environ_of(reader: Reader) -> dict[str, Any]:
    response = reader.read_response()
    assert response.status == 200, response.body
    environ: dict[str, Any] = response.json()["environ"]
    return environ


def test_each_request_of_a_shape_gets_its_own_values(start_server) -> None:  # type: ignore[no-untyped-def]
    _, (address,) = start_server(APP, "--forwarded-allow-ips", "127.0.0.1")
    with connect(address) as sock:
        reader = Reader(sock)
        for number in range(12):
            sock.sendall(proxied(b"req-%04d" % number, b"s%d" % (number % 3)))
            environ = environ_of(reader)
            assert environ["HTTP_X_REQUEST_ID"] == "req-%04d" % number
            assert environ["HTTP_COOKIE"] == "sessionid=s%d; theme=dark" % (number % 3)
            assert environ["wsgi.url_scheme"] == "https"
            assert (environ["PATH_INFO"], environ["QUERY_STRING"]) == ("/items", "page=2")
            assert environ["HTTP_HOST"] == "app.example.com"
        # The scheme header varies too: judged for each request.
        sock.sendall(proxied(b"plain", b"s", proto=b"http"))
        assert environ_of(reader)["wsgi.url_scheme"] == "http"
        # Two at once (pipelined), then a refused value: served, served, 400 and closed.
        sock.sendall(proxied(b"a", b"1") + proxied(b"b", b"2")
                     + proxied(b"bad\x01value", b"3"))
        assert environ_of(reader)["HTTP_X_REQUEST_ID"] == "a"
        assert environ_of(reader)["HTTP_X_REQUEST_ID"] == "b"
        refused = reader.read_response()
        assert refused.status == 400
        assert sock.recv(1) == b""

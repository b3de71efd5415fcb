"""Apps that take their connection over through environ["gunicorn.socket"] (websockets), and one
that sends 103 Early Hints.

- ``flask_app``: flask-sock, as its documentation shows it: /echo echoes each message until the
  client says "bye"; /plain answers a plain HTTP request (the worker keeps serving).
- ``raw_app``: simple-websocket used from a bare WSGI callable, returning [] without a response,
  and /raw-response: takes the socket, then returns an ordinary response the server must write on it.
- ``hints_app``: environ["wsgi.early_hints"] called before the response (twice on /twice; after the
  head on /late; a bad value on /bad).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import simple_websocket
from flask import Flask
from flask_sock import Sock

flask_app = Flask(__name__)
sock = Sock(flask_app)


@sock.route("/echo")
def echo(ws: Any) -> None:
    while True:
        data = ws.receive()
        if data == "bye":
            ws.send("farewell")
            break
        ws.send(data)


@flask_app.route("/plain")
def plain() -> str:
    return "plain"


def raw_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    if environ["PATH_INFO"] == "/raw-response":
        client = environ["gunicorn.socket"]
        client.fileno()  # takes the connection over; the response below goes out on it
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"taken"]
    if environ["PATH_INFO"] != "/ws":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [repr(type(environ.get("gunicorn.socket")).__name__).encode()]
    ws = simple_websocket.Server(environ)
    try:
        while True:
            data = ws.receive()
            if data == "bye":
                break
            ws.send(data[::-1] if isinstance(data, str) else data)
    except simple_websocket.ConnectionClosed:
        pass
    ws.close()
    return []


def hints_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes] | list[bytes]:
    hints = environ["wsgi.early_hints"]
    path = environ["PATH_INFO"]
    if path == "/bad":
        hints([("Link", "</a.css>\r\nX-Injected: 1")])
    hints([("Link", "</style.css>; rel=preload; as=style")])
    if path == "/twice":
        hints([(b"Link", b"</app.js>; rel=preload; as=script"), ("X-Hint", "  two \t")])
    start_response("200 OK", [("Content-Type", "text/plain")])
    if path == "/late":
        def body() -> Iterator[bytes]:
            yield b"first"
            hints([("Link", "</late.css>; rel=preload")])  # after the head: nothing is sent
            yield b"-second"
        return body()
    return [b"final"]

"""Apps that take their connection over through environ["gunicorn.socket"] (websockets).

- ``flask_app``: flask-sock, as its documentation shows it: /echo echoes each message until the
  client says "bye"; /plain answers a plain HTTP request (the worker keeps serving).
- ``raw_app``: simple-websocket used from a bare WSGI callable, returning [] without a response,
  and /raw-response: takes the socket, then returns an ordinary response the server must write on it.
"""

from __future__ import annotations

from typing import Any, Callable

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

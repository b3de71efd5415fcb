"""The flask scenario's app: a small Flask application, as a Flask user would write it.

Two routes, requested alternately by bench/flask.lua: a JSON answer built from a path
parameter (routing, the converter, ``jsonify``), and a streamed response (a generator of
NDJSON lines, which Flask hands to the server with no Content-Length). Flask's own cost
dominates here; what the server adds is the request and the framing of both kinds of answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from flask import Flask, Response, jsonify

app = Flask(__name__)

ROWS = [{"row": i, "name": f"item {i}", "price": round(i * 1.25, 2), "in_stock": i % 3 != 0} for i in range(16)]


@app.get("/users/<int:user_id>")
def user(user_id: int) -> Response:
    return jsonify(id=user_id, name=f"user {user_id}", roles=["reader", "editor"], active=True)


@app.get("/stream")
def stream() -> Response:
    def rows() -> Iterator[str]:
        for row in ROWS:
            yield json.dumps(row) + "\n"

    return Response(rows(), mimetype="application/x-ndjson")

"""The ``req`` and ``resp`` of pre_request/post_request hooks carry Gunicorn 27's attributes with
its meanings: the same values, for the same requests, as Gunicorn gives its own hooks (compared side
by side when Gunicorn is installed in a side venv), and one ``req`` per request."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import APPS, Server, exchange, parse_address, wait_ready
from master_util import poll

pytestmark = pytest.mark.usefixtures("worker_class")

APP = "hook_objects_app:app"
GUNICORN = os.environ.get("GUNICORN", "/tmp/gvenv/bin/gunicorn")
NO_GUNICORN = (f"no Gunicorn at {GUNICORN} (python3 -m venv /tmp/gvenv && /tmp/gvenv/bin/pip "
               "install gunicorn, or set GUNICORN)")

# A config file both servers run unchanged: each hook writes what it sees as one JSON line.
HOOKS_CONF = '''
import json, os

_out = os.environ["HOOK_OUT"]


def _write(kind, data):
    with open(_out, "a") as handle:
        handle.write(json.dumps([kind, data], default=repr) + "\\n")


def _req(req):
    return {
        "method": req.method, "uri": req.uri, "path": req.path, "query": req.query,
        "fragment": req.fragment, "version": list(req.version), "headers": req.headers,
        "scheme": req.scheme, "peer_host": req.peer_addr[0],
        "peer_port_is_int": isinstance(req.peer_addr[1], int),
        "remote_is_peer": req.remote_addr == req.peer_addr,
        "proxy_protocol_info": req.proxy_protocol_info, "must_close": req.must_close,
        "should_close": req.should_close(), "req_number": req.req_number,
        "body_readable": callable(getattr(req.body, "read", None)),
    }


def pre_request(worker, req):
    req.seen_in_pre = req.uri  # the same object reaches post_request
    _write("pre", _req(req))


def post_request(worker, req, environ, resp):
    data = _req(req)
    data["seen_in_pre"] = getattr(req, "seen_in_pre", None)
    data["trailers"] = req.trailers
    data["resp"] = {
        "status": resp.status, "status_code": resp.status_code, "headers": resp.headers,
        "chunked": resp.chunked, "sent": resp.sent, "response_length": resp.response_length,
        "should_close": resp.should_close(), "server": resp.version.split("/")[0],
        "req_is_req": resp.req is req,
    }
    _write("post", data)
'''



def records(path: Path) -> list[list[Any]]:
    if not path.exists():
        return []
    found = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in found if r[1]["path"] != "/__ready"]


def send_requests(address: str) -> list[bytes]:
    """Three requests on one keep-alive connection (the last says close), then an HTTP/1.0 one."""
    family, where = parse_address(address)
    assert isinstance(where, tuple)
    conn = http.client.HTTPConnection(where[0], where[1], timeout=10)
    bodies = []
    conn.request("GET", "/a/b%20c?x=1&y=2#frag", headers={"User-Agent": "hooks/1", "X-Multi": "one"})
    bodies.append(conn.getresponse().read())
    conn.request("POST", "/post", body=b"hello", headers={"Content-Type": "text/plain"})
    bodies.append(conn.getresponse().read())
    conn.request("GET", "/stream", headers={"Connection": "close"})
    bodies.append(conn.getresponse().read())
    conn.close()
    bodies.append(exchange(address, b"GET /old HTTP/1.0\r\nHost: h\r\n\r\n"))
    return bodies


def run_and_record(command: list[str], out: Path, cwd: Path, env: dict[str, str],
                   address: str | None, server: Server | None) -> list[list[Any]]:
    if address is None:
        assert server is not None
        (address,) = server.addresses()
    wait_ready(address)
    send_requests(address)
    return poll(lambda: len(records(out)) >= 8 and records(out), f"8 hook records in {out}")


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "gunicorn.conf.py"
    path.write_text(HOOKS_CONF)
    return path


def ours(conf: Path, tmp_path: Path) -> list[list[Any]]:
    out = tmp_path / "pronghorn-hooks.jsonl"
    server = Server(["-c", str(conf), "-b", "127.0.0.1:0", "--threads", "1", APP],
                    env={"HOOK_OUT": str(out)})
    try:
        return run_and_record([], out, tmp_path, {}, None, server)
    finally:
        server.stop()


def test_req_and_resp_have_gunicorns_attributes(conf: Path, tmp_path: Path) -> None:
    got = ours(conf, tmp_path)
    pre = [r[1] for r in got if r[0] == "pre"]
    order = ["/a/b%20c?x=1&y=2#frag", "/post", "/stream", "/old"]
    post = sorted((r[1] for r in got if r[0] == "post"), key=lambda p: order.index(p["uri"]))
    assert [p["req_number"] for p in post] == [1, 2, 3, 1]
    first = post[0]
    assert first["method"] == "GET" and first["uri"] == "/a/b%20c?x=1&y=2#frag"
    assert (first["path"], first["query"], first["fragment"]) == ("/a/b%20c", "x=1&y=2", "frag")
    assert first["version"] == [1, 1] and first["scheme"] == "http"
    assert ["USER-AGENT", "hooks/1"] in first["headers"] and ["X-MULTI", "one"] in first["headers"]
    assert first["peer_host"] == "127.0.0.1" and first["peer_port_is_int"]
    assert first["remote_is_peer"] and first["proxy_protocol_info"] is None
    assert first["seen_in_pre"] == first["uri"] and first["resp"]["req_is_req"]
    assert first["body_readable"] and not first["should_close"]
    assert first["resp"] == {
        "status": "200 OK", "status_code": 200, "server": "pronghorn", "req_is_req": True,
        # hop-by-hop Keep-Alive left out, values stripped, as Gunicorn keeps them
        "headers": [["Content-Type", "text/plain"], ["Content-Length", "14"], ["X-Out", "padded"]],
        "chunked": False, "sent": 14, "response_length": 14, "should_close": False}
    assert post[1]["resp"]["status_code"] == 201 and post[1]["resp"]["sent"] == len(b"got hello at /post")
    stream = post[2]["resp"]
    assert stream["chunked"] and stream["sent"] == 12 and stream["response_length"] is None
    assert stream["should_close"] and post[2]["should_close"]
    assert post[3]["version"] == [1, 0] and post[3]["should_close"] and not post[3]["resp"]["chunked"]
    # pre_request saw the same request
    assert sorted(p["uri"] for p in pre) == sorted(p["uri"] for p in post)


@pytest.mark.skipif(not os.access(GUNICORN, os.X_OK), reason=NO_GUNICORN)
def test_hooks_see_what_they_see_under_gunicorn(conf: Path, tmp_path: Path) -> None:
    mine = ours(conf, tmp_path)
    out = tmp_path / "gunicorn-hooks.jsonl"
    errors = tmp_path / "gunicorn-error.log"
    help_text = subprocess.run([GUNICORN, "--help"], capture_output=True, text=True, timeout=60).stdout
    extra = ["--no-control-socket"] if "--no-control-socket" in help_text else []
    # gthread: Gunicorn's sync worker closes every connection, so keep-alive needs threads.
    proc = subprocess.Popen(
        [GUNICORN, "-c", str(conf), "-b", "127.0.0.1:0", "-k", "gthread", "--threads", "2",
         "--error-logfile", str(errors), *extra, APP],
        cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=str(APPS), HOOK_OUT=str(out)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def listening() -> str | None:
            assert proc.poll() is None, errors.read_text() if errors.exists() else ""
            match = re.search(r"Listening at: (http://\S+) \(",
                              errors.read_text() if errors.exists() else "")
            return match.group(1) if match else None

        address = poll(listening, "gunicorn to listen", timeout=30)
        theirs = run_and_record([], out, tmp_path, {}, address, None)
    finally:
        proc.terminate()
        proc.wait(30)
    for record in (*mine, *theirs):
        # (the Host names each server's own port; the Server header names each server)
        record[1]["headers"] = [h for h in record[1]["headers"] if h[0] != "HOST"]
        if record[0] == "post":
            record[1]["resp"].pop("server")
    # (post_request runs after the response is out: the next request's pre_request may come first)
    mine.sort(key=lambda r: (r[1]["uri"], r[0]))
    theirs.sort(key=lambda r: (r[1]["uri"], r[0]))
    for mine_one, theirs_one in zip(mine, theirs):
        assert mine_one == theirs_one
    assert len(mine) == len(theirs)


PROXIED = (b"PROXY TCP4 192.0.2.1 192.0.2.2 1111 80\r\n"
           b"GET /p1 HTTP/1.1\r\nHost: h\r\n\r\n"
           b"GET /p2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")


def proxied_records(address: str, out: Path) -> list[dict[str, Any]]:
    wait_ready(address)
    exchange(address, PROXIED)
    found = poll(lambda: len([r for r in records(out) if r[0] == "post"]) >= 2 and records(out),
                 "the proxied requests' hooks")
    posts = sorted((r[1] for r in found if r[0] == "post"), key=lambda p: p["uri"])
    return [{key: post[key] for key in ("uri", "peer_host", "remote_is_peer", "req_number",
                                        "proxy_protocol_info")} for post in posts]


def test_proxy_protocol_facts_are_on_the_first_request(conf: Path, tmp_path: Path) -> None:
    """As Gunicorn: peer_addr stays the socket's peer (the proxy), the PROXY header's facts are in
    proxy_protocol_info, on the connection's first request only."""
    out = tmp_path / "pronghorn-hooks.jsonl"
    server = Server(["-c", str(conf), "-b", "127.0.0.1:0", "--proxy-protocol", "v1", APP],
                    env={"HOOK_OUT": str(out)})
    try:
        (address,) = server.addresses()
        mine = proxied_records(address, out)
    finally:
        server.stop()
    assert mine == [
        {"uri": "/p1", "peer_host": "127.0.0.1", "remote_is_peer": True, "req_number": 1,
         "proxy_protocol_info": {"proxy_protocol": "TCP4", "client_addr": "192.0.2.1",
                                 "client_port": 1111, "proxy_addr": "192.0.2.2",
                                 "proxy_port": 80}},
        {"uri": "/p2", "peer_host": "127.0.0.1", "remote_is_peer": True, "req_number": 2,
         "proxy_protocol_info": None}]
    if not os.access(GUNICORN, os.X_OK):
        return
    theirs_out = tmp_path / "gunicorn-hooks.jsonl"
    errors = tmp_path / "gunicorn-error.log"
    proc = subprocess.Popen(
        [GUNICORN, "-c", str(conf), "-b", "127.0.0.1:0", "-k", "gthread", "--threads", "2",
         "--proxy-protocol", "v1", "--error-logfile", str(errors), "--no-control-socket", APP],
        cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=str(APPS), HOOK_OUT=str(theirs_out)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def listening() -> str | None:
            assert proc.poll() is None, errors.read_text() if errors.exists() else ""
            match = re.search(r"Listening at: (http://\S+) \(",
                              errors.read_text() if errors.exists() else "")
            return match.group(1) if match else None

        address = poll(listening, "gunicorn to listen", timeout=30)
        # (Gunicorn's readiness probe needs a PROXY header too)
        deadline = time.monotonic() + 15
        while True:
            try:
                if exchange(address, b"PROXY UNKNOWN\r\nGET /__ready HTTP/1.1\r\nHost: r\r\n"
                                     b"Connection: close\r\n\r\n").startswith(b"HTTP/1.1"):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn never answered"
            time.sleep(0.05)  # polling interval while the worker boots
        exchange(address, PROXIED)
        found = poll(lambda: len([r for r in records(theirs_out) if r[0] == "post"]) >= 2
                     and records(theirs_out), "gunicorn's hooks")
    finally:
        proc.terminate()
        proc.wait(30)
    posts = sorted((r[1] for r in found if r[0] == "post"), key=lambda p: p["uri"])
    theirs = [{key: post[key] for key in mine[0]} for post in posts]
    assert mine == theirs

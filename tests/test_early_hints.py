"""environ["wsgi.early_hints"]: a 103 Early Hints before the final response, as Gunicorn 27 sends it
(not to HTTP/1.0 clients, nothing once the head is out, fields checked), under every worker class,
and beside Gunicorn when it is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Iterator

import pytest

from conftest import APPS, connect, free_port, wait_ready
from wire import Reader, Response, serve

pytestmark = pytest.mark.usefixtures("worker_class")

GUNICORN = os.environ.get("GUNICORN", "/tmp/gvenv/bin/gunicorn")


@pytest.fixture(scope="module")
def address(worker_class: str) -> Iterator[str]:
    with serve("-b", "127.0.0.1:0", "hints_app:app") as (_, addresses):
        yield addresses[0]


def responses(address: str, target: str, version: str = "1.1") -> list[Response]:
    """Every response to one request, interim ones included, in order."""
    with connect(address) as sock:
        sock.sendall(f"GET {target} HTTP/{version}\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        reader = Reader(sock)
        found = []
        while True:
            response = reader.read_response(interim=True)
            found.append(response)
            if response.status >= 200:
                return found


def test_a_103_precedes_the_response(address: str) -> None:
    hint, final = responses(address, "/")
    assert hint.head == (b"HTTP/1.1 103 Early Hints\r\n"
                         b"Link: </style.css>; rel=preload; as=style\r\n\r\n")
    assert (final.status, final.body) == (200, b"final")


def test_each_call_sends_one_and_bytes_and_padding_are_taken_as_gunicorn_takes_them(
        address: str) -> None:
    first, second, final = responses(address, "/twice")
    assert first.status == second.status == 103
    assert second.head == (b"HTTP/1.1 103 Early Hints\r\n"
                           b"Link: </app.js>; rel=preload; as=script\r\nX-Hint: two\r\n\r\n")
    assert final.body == b"final"


def test_http10_clients_get_none(address: str) -> None:
    (final,) = responses(address, "/", version="1.0")
    assert (final.status, final.body) == (200, b"final")


def test_none_once_the_head_is_out(address: str) -> None:
    hint, final = responses(address, "/late")
    assert hint.status == 103 and b"late.css" not in hint.head
    assert (final.status, final.body) == (200, b"first-second")


def test_a_field_that_would_split_the_response_is_the_apps_error(address: str) -> None:
    (final,) = responses(address, "/bad")
    assert final.status == 500
    assert b"X-Injected" not in final.head


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (apt-get install curl)")
def test_curl_sees_the_103(address: str) -> None:
    result = subprocess.run(["curl", "-sv", f"{address}/"], capture_output=True, text=True,
                            timeout=30)
    assert "< HTTP/1.1 103 Early Hints" in result.stderr
    assert "< HTTP/1.1 200 OK" in result.stderr
    assert result.stdout == "final"


@pytest.mark.skipif(not os.access(GUNICORN, os.X_OK),
                    reason=f"no Gunicorn at {GUNICORN} (python3 -m venv /tmp/gvenv && "
                           "/tmp/gvenv/bin/pip install gunicorn, or set GUNICORN)")
@pytest.mark.parametrize("target, version", [("/", "1.1"), ("/twice", "1.1"), ("/late", "1.1"),
                                             ("/", "1.0")])
def test_the_interim_responses_are_gunicorns(address: str, worker_class: str, target: str,
                                             version: str) -> None:
    if worker_class != "sync":
        pytest.skip("compared once, with the default worker class")
    port = free_port()
    gunicorn = subprocess.Popen([GUNICORN, "-b", f"127.0.0.1:{port}", "--chdir", str(APPS),
                                 "hints_app:app"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        wait_ready(f"http://127.0.0.1:{port}")
        theirs = responses(f"http://127.0.0.1:{port}", target, version)
    finally:
        gunicorn.terminate()
        gunicorn.wait(30)
    ours = responses(address, target, version)
    assert [r.head for r in ours if r.status == 103] == [r.head for r in theirs if r.status == 103]
    assert [(r.status, r.body) for r in ours] == [(r.status, r.body) for r in theirs]

"""The asgi worker (`-k asgi`), served by a real pronghorn process and asked by httpx: a raw ASGI
app, Starlette, FastAPI and Django's asgi.py; lifespan, streaming both ways, disconnects."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from conftest import Server, connect, exchange

httpx = pytest.importorskip("httpx", reason="needs httpx (pip install -e '.[test]')")


def _poll(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def _url(address: str) -> str:
    return "http://" + address.split("://", 1)[-1]


@pytest.fixture
def events(tmp_path: Path) -> Path:
    return tmp_path / "events.txt"


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_raw_app_get_scope_and_lifespan_state(start_server, events: Path) -> None:
    server, (address,) = start_server("asgi_app:app", "-k", "asgi", "--root-path", "/api",
                                      env={"ASGI_EVENTS_FILE": str(events)})
    response = httpx.get(_url(address) + "/scope?x=%C3%A9", headers={"X-Thing": "1"})
    assert response.status_code == 200
    assert response.reason_phrase == "OK"
    scope = response.json()
    assert scope["type"] == "http" and scope["asgi"]["version"] == "3.0"
    assert scope["method"] == "GET" and scope["scheme"] == "http"
    assert scope["http_version"] == "1.1"
    assert scope["path"] == "/scope" and scope["query_string"] == "x=%C3%A9"
    assert scope["root_path"] == "/api"
    assert ["x-thing", "1"] in scope["headers"]
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"] == ["127.0.0.1", int(address.rsplit(":", 1)[1])]
    assert scope["state"] == "hello from lifespan"
    assert _lines(events) == ["startup"]
    assert server.stop() == 0
    assert _lines(events) == ["startup", "shutdown"]


def test_percent_decoded_path_and_forwarded_scheme_from_a_trusted_proxy(start_server) -> None:
    server, (address,) = start_server("asgi_app:app", "-k", "asgi",
                                      "--forwarded-allow-ips", "127.0.0.1")
    raw = exchange(address, b"GET /sc%6Fpe HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\n"
                            b"Connection: close\r\n\r\n")
    scope = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    assert scope["path"] == "/scope" and scope["raw_path"] == "/sc%6Fpe"
    assert scope["scheme"] == "https"


def test_post_body_read_in_pieces_and_100_continue(start_server) -> None:
    server, (address,) = start_server("asgi_app:app", "-k", "asgi")
    body = b"x" * (300 * 1024 + 7)
    response = httpx.post(_url(address) + "/echo", content=body)
    # Streamed as it arrives: pieces of at most 64 KiB, whatever the reads made of them.
    seen = response.json()
    assert seen["total"] == len(body) and max(seen["pieces"]) == 65536
    assert all(0 < n <= 65536 for n in seen["pieces"][:-1])
    # Expect: 100-continue: the 100 goes out when the app first receives, then the body is read.
    with connect(address) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"hello")
        answer = b""
        while b'"total": 5}' not in answer:
            piece = sock.recv(4096)
            assert piece, answer
            answer += piece
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


def test_streamed_response_is_chunked(start_server) -> None:
    server, (address,) = start_server("asgi_app:app", "-k", "asgi")
    with httpx.stream("GET", _url(address) + "/stream") as response:
        assert response.headers["transfer-encoding"] == "chunked"
        assert b"".join(response.iter_bytes()) == b"".join(b"piece %d\n" % i for i in range(5))


def test_app_errors_are_500_and_bad_headers_never_split(start_server) -> None:
    server, (address,) = start_server("asgi_app:app", "-k", "asgi")
    assert httpx.get(_url(address) + "/raise").status_code == 500
    raw = exchange(address, b"GET /bad-header HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 500 ") and b"x-injected" not in raw
    server.wait_for_line(r"Exception in ASGI application /raise")
    assert httpx.get(_url(address) + "/").text == "Hello, ASGI!"  # (the worker lives on)


def test_sse_client_that_leaves_gets_http_disconnect(start_server, events: Path) -> None:
    server, (address,) = start_server("asgi_app:app", "-k", "asgi",
                                      env={"ASGI_EVENTS_FILE": str(events)})
    with httpx.stream("GET", _url(address) + "/sse") as response:
        for line in response.iter_lines():
            if line == "data: tick":
                break
    _poll(lambda: "disconnect http.disconnect" in _lines(events))


def test_lifespan_startup_failure_fails_the_boot_with_the_apps_message(tmp_path: Path) -> None:
    server = Server(["-k", "asgi", "-b", "127.0.0.1:0", "asgi_app:failing_startup"])
    assert server.proc.wait(30) == 3
    server.wait_for_line(r"ASGI lifespan startup failed: database unreachable")
    assert server.output.count("Booting worker") == 1  # no fork loop


def test_auto_lifespan_is_quiet_for_an_app_without_it_and_on_refuses_it(start_server) -> None:
    server, (address,) = start_server("asgi_app:no_lifespan", "-k", "asgi")
    assert httpx.get(_url(address) + "/").text == "Hello, ASGI!"
    assert "lifespan" not in server.output.lower()
    refused = Server(["-k", "asgi", "--asgi-lifespan", "on", "-b", "127.0.0.1:0",
                      "asgi_app:no_lifespan"])
    assert refused.proc.wait(30) == 3
    refused.wait_for_line(r"ASGI lifespan startup failed: unsupported scope type lifespan")


@pytest.mark.parametrize("flag", ["asgi_app:asgi2_app"])
def test_asgi2_double_callable(start_server, flag: str) -> None:
    server, (address,) = start_server(flag, "-k", "asgi")
    assert httpx.get(_url(address) + "/").text == "asgi2"


@pytest.mark.parametrize("name", ["uvicorn.workers.UvicornWorker", "uvicorn_worker.UvicornWorker",
                                  "uvicorn.workers.UvicornH11Worker"])
def test_uvicorn_worker_names_run_the_asgi_worker(start_server, name: str) -> None:
    server, (address,) = start_server("asgi_app:app", "-k", name, "--asgi-loop", "asyncio")
    assert httpx.get(_url(address) + "/").text == "Hello, ASGI!"
    assert server.output.count(f"{name} is served by pronghorn's 'asgi' worker") == 1


def test_access_log_for_asgi_requests(start_server) -> None:
    server, (address,) = start_server("asgi_app:app", "-k", "asgi", "--access-logfile", "-")
    httpx.get(_url(address) + "/stream?a=1")
    server.wait_for_line(r'"GET /stream\?a=1 HTTP/1.1" 200 ')


pytest.importorskip("starlette", reason="needs starlette (pip install -e '.[test]')")


def test_starlette_app(start_server, events: Path) -> None:
    server, (address,) = start_server("asgi_frameworks:starlette_app", "-k", "asgi",
                                      env={"ASGI_EVENTS_FILE": str(events)})
    base = _url(address)
    assert httpx.get(base + "/").text == "Hello, Starlette! from the lifespan"
    body = b"y" * (200 * 1024)
    answer = httpx.post(base + "/upload", content=body).json()
    assert answer["total"] == len(body) and answer["pieces"] > 1
    with httpx.stream("GET", base + "/stream") as response:
        assert response.read() == b"".join(f"{i}\n".encode() for i in range(10))
    with httpx.stream("GET", base + "/sse") as response:
        for line in response.iter_lines():
            if line == "data: tick":
                break
    _poll(lambda: "sse client gone" in _lines(events))
    assert server.stop() == 0
    assert _lines(events)[0] == "startup" and _lines(events)[-1] == "shutdown"


def test_fastapi_app(start_server) -> None:
    pytest.importorskip("fastapi", reason="needs fastapi (pip install -e '.[test]')")
    server, (address,) = start_server("asgi_frameworks:fastapi_app", "-k", "asgi")
    base = _url(address)
    assert httpx.get(base + "/items/5?q=x").json() == {"item_id": 5, "q": "x"}
    assert httpx.post(base + "/items", json={"name": "a", "price": 2.5}).json() == {
        "name": "a", "double": 5.0}
    assert httpx.post(base + "/items", json={"name": "a"}).status_code == 422


ASYNC_VIEW = """\
from django.http import HttpResponse
from django.urls import path
from django.contrib import admin


async def hello(request):
    return HttpResponse(f"async hello {request.path} {request.scheme}")

urlpatterns = [path("hello/", hello), path("admin/", admin.site.urls)]
"""


def test_django_asgi_py_with_an_async_view(tmp_path: Path) -> None:
    pytest.importorskip("django", reason="needs Django (pip install -e '.[test]')")
    django_admin = Path(sys.executable).with_name("django-admin")
    command = [str(django_admin)] if django_admin.exists() else [sys.executable, "-m", "django"]
    subprocess.run([*command, "startproject", "mysite", str(tmp_path)], check=True,
                   capture_output=True, timeout=120)
    (tmp_path / "mysite" / "urls.py").write_text(ASYNC_VIEW)
    server = Server(["-k", "asgi", "-b", "127.0.0.1:0", "mysite.asgi:application"], cwd=tmp_path)
    try:
        (address,) = server.addresses()
        base = _url(address)
        _poll(lambda: _answers(base + "/hello/"))
        response = httpx.get(base + "/hello/")
        assert response.status_code == 200 and response.text == "async hello /hello/ http"
        assert httpx.get(base + "/admin/login/").status_code == 200
        # Django does not support lifespan: auto mode says nothing of it.
        assert "lifespan" not in server.output.lower()
    finally:
        server.stop()


def _answers(url: str) -> bool:
    try:
        httpx.get(url)
    except httpx.TransportError:
        return False
    return True

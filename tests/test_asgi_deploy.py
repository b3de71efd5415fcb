"""`-k asgi` as it is deployed (issue 18): the seed's Django project through its asgi.py (an async
view, the admin's login with CSRF, a Channels consumer over a WebSocket), the access log and statsd
for ASGI requests and WebSocket sessions, and nginx in front with the WebSocket upgrade headers.

Real pronghorn processes; httpx and the `websockets` library as clients; real nginx.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from conftest import NGINX, Server, free_port, nginx_conf, wait_ready

httpx = pytest.importorskip("httpx", reason="needs httpx (pip install -e '.[test]')")
websockets = pytest.importorskip("websockets", reason="needs websockets (pip install -e '.[test]')")
from websockets.asyncio.client import connect as ws_connect  # noqa: E402
from websockets.exceptions import InvalidStatus  # noqa: E402
from websockets.typing import Origin  # noqa: E402

CLIENT = "127.0.0.2"  # an address no proxy list trusts: what the app sees proves the hop


def _url(address: str) -> str:
    return "http://" + address.split("://", 1)[-1]


def _ws(address: str) -> str:
    return "ws://" + address.split("://", 1)[-1]


def _run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 20))


def _poll(condition: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not in time")
        time.sleep(0.01)
    return result


# -- the Django project, through asgi.py -----------------------------------------------------------

@pytest.fixture(scope="module")
def django_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    pytest.importorskip("django", reason="needs Django (pip install -e '.[test]')")
    pytest.importorskip("channels", reason="needs Django Channels (pip install -e '.[test]')")
    from django_asgi_project import make_asgi_project

    code, env = make_asgi_project(tmp_path_factory.mktemp("django-asgi"))
    server = Server(["-k", "asgi", "--workers=1", "-b", "127.0.0.1:0", "--access-logfile", "-",
                     "proj.asgi:application"], env=env, cwd=code)
    try:
        (address,) = server.addresses()
        wait_ready(address)
        yield server, address
    finally:
        assert server.stop() == 0, server.output


def _csrf_token(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, html[:1000]
    return match.group(1)


def _log_in(client: Any) -> None:
    from django_asgi_project import ADMIN_PASSWORD, ADMIN_USER

    page = client.get("/admin/login/?next=/admin/")
    assert page.status_code == 200
    answer = client.post("/admin/login/?next=/admin/", data={
        "csrfmiddlewaretoken": _csrf_token(page.text), "username": ADMIN_USER,
        "password": ADMIN_PASSWORD, "next": "/admin/"})
    assert answer.status_code == 302 and answer.headers["location"] == "/admin/", answer.text[:500]


def test_django_async_view_and_the_admin_login_with_csrf(django_server) -> None:  # type: ignore[no-untyped-def]
    server, address = django_server
    with httpx.Client(base_url=_url(address)) as client:
        hello = client.get("/hello/")
        assert hello.status_code == 200 and hello.text == "async hello /hello/ http 127.0.0.1"
        assert client.get("/hello/", headers={"Host": "evil.example"}).status_code == 400
        # A POST without the CSRF token is refused by Django's middleware, under ASGI as under WSGI.
        client.get("/admin/login/")
        refused = client.post("/admin/login/", data={"username": "admin", "password": "x"})
        assert refused.status_code == 403 and "CSRF" in refused.text
        _log_in(client)
        index = client.get("/admin/")
        assert index.status_code == 200 and "Site administration" in index.text
    server.wait_for_line(r'"POST /admin/login/\?next=/admin/ HTTP/1\.1" 302 ')
    # Django has no lifespan: auto mode says nothing of it.
    assert "lifespan" not in server.output.lower()


def test_a_channels_consumer_echoes_over_a_websocket(django_server) -> None:  # type: ignore[no-untyped-def]
    server, address = django_server
    with httpx.Client(base_url=_url(address)) as client:
        _log_in(client)
        session = client.cookies["sessionid"]

    async def talk() -> None:
        origin = Origin("http://localhost")
        async with ws_connect(_ws(address) + "/ws/echo/", origin=origin) as ws:
            assert await ws.recv() == "hello anonymous"
            await ws.send("héllo")
            assert await ws.recv() == "echo: héllo"
            await ws.send(b"\x00\x01")
            assert await ws.recv() == b"\x00\x01"
        # Channels' AuthMiddlewareStack finds the admin's session from the handshake's cookie.
        async with ws_connect(_ws(address) + "/ws/echo/", origin=origin,
                              additional_headers={"Cookie": f"sessionid={session}"}) as ws:
            assert await ws.recv() == "hello admin"
        # AllowedHostsOriginValidator: an origin not in ALLOWED_HOSTS is denied (403).
        with pytest.raises(InvalidStatus) as denied:
            async with ws_connect(_ws(address) + "/ws/echo/",
                                  origin=Origin("http://evil.example")):
                pass
        assert denied.value.response.status_code == 403

    _run(talk())
    server.wait_for_line(r'"GET /ws/echo/ HTTP/1\.1" 101 ')
    server.wait_for_line(r'"GET /ws/echo/ HTTP/1\.1" 403 ')


# -- nginx in front: HTTP and a WebSocket through it, with the forwarded headers ------------------

NGINX_SITE = """\
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      '';
    }}
    upstream app {{
        server {upstream} fail_timeout=0;
        keepalive 8;
        keepalive_timeout 4s;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
        }}
    }}"""


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Callable[[str], int]]:
    """nginx(upstream) → the port of an nginx proxying to it, answering already."""
    if NGINX is None:
        pytest.skip("needs nginx (apt-get install nginx-light)")
    procs: list[subprocess.Popen[bytes]] = []

    def start(upstream: str) -> int:
        port = free_port()
        where = tmp_path / f"nginx-{port}"
        where.mkdir()
        where.chmod(0o755)
        conf = where / "nginx.conf"
        conf.write_text(nginx_conf(where, NGINX_SITE.format(upstream=upstream, port=port)))
        assert NGINX is not None
        proc = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(where)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)

        def answers() -> bool:
            assert proc.poll() is None, (where / "error.log").read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
            except httpx.TransportError:
                return False

        _poll(answers, "an answer through nginx")
        return port

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(15)


def _through(port: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The scope of an HTTP request and of a WebSocket (whose echo works) through nginx, from
    CLIENT."""
    transport = httpx.HTTPTransport(local_address=CLIENT)
    with httpx.Client(transport=transport) as client:
        response = client.get(f"http://127.0.0.1:{port}/scope",
                              headers={"Host": "proj.example.com", "X-Forwarded-For": "6.6.6.6"})
    assert response.status_code == 200, response.text

    async def talk() -> dict[str, Any]:
        # (the URI names the site; the connection goes to nginx on 127.0.0.1)
        async with ws_connect(f"ws://proj.example.com:{port}/chat", host="127.0.0.1",
                              local_addr=(CLIENT, 0)) as ws:
            scope = json.loads(await ws.recv())
            for message in ("one", b"\x02" * 70_000, "three"):
                await ws.send(message)
                assert await ws.recv() == message
            return scope  # type: ignore[no-any-return]

    return response.json(), _run(talk())


def test_http_and_a_websocket_through_nginx_with_the_forwarded_headers(start_server,  # type: ignore[no-untyped-def]
                                                                       nginx) -> None:
    server, (address,) = start_server("asgi_deploy_app:app", "-k", "asgi",
                                      "--access-logfile", "-")
    port = nginx(address.removeprefix("http://"))
    http, ws = _through(port)
    # nginx is a trusted peer (the default --forwarded-allow-ips): its X-Forwarded-Proto makes the
    # scheme https (wss); the client is nginx, as REMOTE_ADDR is under Gunicorn, and the address
    # nginx saw is in X-Forwarded-For for the app to read.
    assert http["scheme"] == "https" and ws["scheme"] == "wss"
    for scope in (http, ws):
        assert scope["client"][0] == "127.0.0.1"
        assert scope["server"] == ["127.0.0.1", int(address.rsplit(":", 1)[1])]
        assert scope["headers"]["host"] == "proj.example.com"  # nginx's $host
    assert http["headers"]["x-forwarded-for"] == f"6.6.6.6, {CLIENT}"
    assert ws["headers"]["x-forwarded-for"] == CLIENT
    assert ws["headers"]["upgrade"] == "websocket"
    server.wait_for_line(r'"GET /chat HTTP/1\.1" 101 ')


def test_the_client_address_through_nginx_and_an_untrusted_proxy(start_server,  # type: ignore[no-untyped-def]
                                                                 nginx) -> None:
    _, (trusting,) = start_server("asgi_deploy_app:app", "-k", "asgi",
                                  "--forwarded-client-address")
    http, ws = _through(nginx(trusting.removeprefix("http://")))
    # The right-most address that is not a trusted proxy: the one nginx saw, not the one claimed.
    assert http["client"][0] == CLIENT and ws["client"][0] == CLIENT
    assert (http["scheme"], ws["scheme"]) == ("https", "wss")
    _, (wary,) = start_server("asgi_deploy_app:app", "-k", "asgi",
                              "--forwarded-allow-ips", "10.9.9.9")
    http, ws = _through(nginx(wary.removeprefix("http://")))
    # nginx is not trusted: its X-Forwarded-Proto is not believed.
    assert (http["scheme"], ws["scheme"]) == ("http", "ws")
    assert http["client"][0] == "127.0.0.1"

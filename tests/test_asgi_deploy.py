"""`-k asgi` as it is deployed (issue 18): the seed's Django project through its asgi.py (an async
view, the admin's login with CSRF, a Channels consumer over a WebSocket), the access log and statsd
for ASGI requests and WebSocket sessions, and nginx in front with the WebSocket upgrade headers.

Real pronghorn processes; httpx and the `websockets` library as clients; real nginx.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from conftest import APPS, NGINX, Server, free_port, nginx_conf, wait_ready

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
                # (any answer of the app's: 502 is nginx's while the upstream is not there)
                return httpx.get(f"http://127.0.0.1:{port}/").status_code != 502
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


def test_nginx_over_a_unix_socket_to_the_asgi_worker(start_server, nginx) -> None:  # type: ignore[no-untyped-def]
    where = Path(tempfile.mkdtemp(prefix="pronghorn-asgi-"))
    try:
        where.chmod(0o755)  # (nginx's workers, as nobody, must reach the socket)
        path = where / "app.sock"
        start_server("asgi_deploy_app:app", "-k", "asgi", "-b", f"unix:{path}")
        http, ws = _through(nginx(f"unix:{path}"))
        # A unix-socket peer is trusted (as under Gunicorn): the scheme is nginx's word; there is
        # no client address, and no server address, on a unix socket.
        assert (http["scheme"], ws["scheme"]) == ("https", "wss")
        assert http["client"] is None and ws["client"] is None
        assert http["server"] is None and ws["server"] is None
        assert ws["headers"]["x-forwarded-for"] == CLIENT
    finally:
        shutil.rmtree(where, ignore_errors=True)


def test_django_behind_nginx_sees_https_and_its_csrf_origin_check_passes(django_server,  # type: ignore[no-untyped-def]
                                                                        nginx) -> None:
    """nginx says X-Forwarded-Proto https: Django (request.is_secure(), through the scope's scheme)
    takes the browser's https Origin as its own, so the admin's login POST passes CSRF; and the
    Channels consumer's origin check passes through nginx's Upgrade."""
    from django_asgi_project import ADMIN_PASSWORD, ADMIN_USER

    _, address = django_server
    port = nginx(address.removeprefix("http://"))
    origin = "https://proj.example.com"
    with httpx.Client(base_url=f"http://127.0.0.1:{port}",
                      headers={"Host": "proj.example.com"}) as client:
        page = client.get("/admin/login/")
        assert page.status_code == 200
        login = {"csrfmiddlewaretoken": _csrf_token(page.text), "username": ADMIN_USER,
                 "password": ADMIN_PASSWORD, "next": "/admin/"}
        # (an Origin of another scheme is another origin: refused, which proves the scheme came)
        refused = client.post("/admin/login/", data=login,
                              headers={"Origin": "http://proj.example.com"})
        assert refused.status_code == 403 and "CSRF verification failed" in refused.text
        answer = client.post("/admin/login/", data=login, headers={"Origin": origin})
        assert answer.status_code == 302 and answer.headers["location"] == "/admin/"

    async def talk() -> None:
        async with ws_connect(f"ws://proj.example.com:{port}/ws/echo/", host="127.0.0.1",
                              origin=Origin(origin)) as ws:
            assert await ws.recv() == "hello anonymous"
            await ws.send("through nginx")
            assert await ws.recv() == "echo: through nginx"

    _run(talk())


# -- the access log and statsd for ASGI requests and WebSocket sessions ---------------------------

ATOMS = ('%(h)s "%(r)s" %(s)s %(b)s %(B)s %(H)s %(m)s %(U)s %(q)s %({x-thing}i)s %({x-app}o)s '
         '%({content-length}o)s "%(a)s" %(f)s %(u)s %(l)s')
TIMED = ATOMS + " %(D)s %(T)s %(M)s %(L)s"


def _lines(path: Path, count: int) -> list[str]:
    """The first ``count`` access lines, but the readiness probes' (``/__ready``)."""
    def read() -> list[str] | None:
        lines = [line for line in (path.read_text().splitlines() if path.exists() else [])
                 if "/__ready" not in line]
        return lines[:count] if len(lines) >= count else None

    return _poll(read, f"{count} access lines in {path}")  # type: ignore[no-any-return]


def _requests(address: str) -> None:
    """The same requests for every server: a 100 KB response with the headers atoms read, an app
    that fails, a HEAD, a streamed response, a header that is not ASCII."""
    with httpx.Client(base_url=_url(address), headers={"User-Agent": "deploy-agent"}) as client:
        assert client.get("/big?q=%41", headers={"X-Thing": "t", "Referer": "http://r/"},
                          auth=("jo", "pw")).status_code == 200
        assert client.get("/raise").status_code == 500
        assert client.head("/").status_code == 200
        assert client.get("/stream").content == b"one two three"
        assert client.get("/nowhere", headers={"X-Thing": "é".encode()}).status_code == 200


def _session(address: str, messages: list[str | bytes]) -> int:
    """A WebSocket session that sends and gets back ``messages``; the bytes the server sent."""
    async def talk() -> int:
        async with ws_connect(_ws(address) + "/chat?room=1",
                              additional_headers={"X-Thing": "ws"}) as ws:
            sent = len((await ws.recv()).encode())
            for message in messages:
                await ws.send(message)
                assert await ws.recv() == message
                sent += len(message.encode() if isinstance(message, str) else message)
            return sent

    return _run(talk())  # type: ignore[no-any-return]


def test_access_log_atoms_for_asgi_as_gunicorn_writes_them(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from gunicorn_side import GUNICORN, SKIP_REASON

    ours = tmp_path / "ours.log"
    server, (address,) = start_server("asgi_deploy_app:app", "-k", "asgi", "--access-logfile",
                                      str(ours), "--access-logformat", TIMED)
    _requests(address)
    lines = _lines(ours, 5)
    timed = re.compile(r" (\d+) (\d+) (\d+) (\d+\.\d+)$")
    for line in lines:  # %(D)s µs, %(T)s s, %(M)s ms, %(L)s s (decimal)
        assert timed.search(line), line
    untimed = [timed.sub("", line) for line in lines]
    assert untimed == [
        '127.0.0.1 "GET /big?q=%41 HTTP/1.1" 200 100000 100000 HTTP/1.1 GET /big q=%41 t deploy '
        '100000 "deploy-agent" http://r/ jo -',
        '127.0.0.1 "GET /raise HTTP/1.1" 500 0 0 HTTP/1.1 GET /raise  - - - "deploy-agent" - - -',
        '127.0.0.1 "HEAD / HTTP/1.1" 200 0 0 HTTP/1.1 HEAD /  - deploy 5 "deploy-agent" - - -',
        '127.0.0.1 "GET /stream HTTP/1.1" 200 13 13 HTTP/1.1 GET /stream  - deploy - '
        '"deploy-agent" - - -',
        '127.0.0.1 "GET /nowhere HTTP/1.1" 200 5 5 HTTP/1.1 GET /nowhere  \xc3\xa9 deploy 5 '
        '"deploy-agent" - - -']
    # A WebSocket session: one line when it ends, status 101, the bytes of the messages sent
    # (UTF-8 for text), the duration of the whole session.
    sent = _session(address, ["é" * 10, b"\x00" * 1000, "three"])
    line = _lines(ours, 6)[5]
    assert timed.search(line), line
    assert re.fullmatch(rf'127\.0\.0\.1 "GET /chat\?room=1 HTTP/1\.1" 101 {sent} {sent} '
                        r'HTTP/1\.1 GET /chat room=1 ws - - "[^"]*websockets[^"]*" - - -',
                        timed.sub("", line)), line
    if not Path(GUNICORN).exists():
        pytest.skip(SKIP_REASON)
    # Gunicorn 27's -k asgi, the same app and requests: the same lines (it logs no line for a
    # WebSocket session).
    theirs = tmp_path / "theirs.log"
    gunicorn = Server(["-k", "asgi", "-w", "1", "-b", "127.0.0.1:0", "--no-control-socket",
                       "--access-logfile", str(theirs), "--access-logformat", ATOMS,
                       "asgi_deploy_app:app"], command=[GUNICORN])
    try:
        (their_address,) = gunicorn.addresses()
        wait_ready(their_address)
        _requests(their_address)
        assert _lines(theirs, 5) == untimed
    finally:
        gunicorn.stop()


def test_json_access_log_and_statsd_for_asgi_requests_and_websockets(start_server,  # type: ignore[no-untyped-def]
                                                                     tmp_path: Path) -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(10)
    log = tmp_path / "access.json"
    try:
        server, (address,) = start_server(
            "asgi_deploy_app:app", "-k", "asgi", "--access-logfile", str(log), "--access-log-json",
            "--statsd-host", f"127.0.0.1:{udp.getsockname()[1]}", "--statsd-prefix", "web")
        _requests(address)
        sent = _session(address, ["hello", "wörld"])
        big, failed, head, _, _, session = (json.loads(line) for line in _lines(log, 6))
        assert big["method"] == "GET" and big["uri"] == "/big?q=%41" and big["path"] == "/big"
        assert big["query"] == "q=%41" and big["status"] == 200 and big["bytes"] == 100_000
        assert big["user"] == "jo" and big["referer"] == "http://r/"
        assert big["user_agent"] == "deploy-agent" and big["remote_addr"] == "127.0.0.1"
        assert isinstance(big["duration_ms"], float) and big["pid"] != server.proc.pid
        assert (failed["status"], failed["bytes"]) == (500, 0)
        assert (head["method"], head["status"], head["bytes"]) == ("HEAD", 200, 0)
        assert session["status"] == 101 and session["bytes"] == sent
        assert session["uri"] == "/chat?room=1" and session["protocol"] == "HTTP/1.1"
        wanted = {"web.gunicorn.request.status.200:1|c|@1.0": 4,
                  "web.gunicorn.request.status.500:1|c|@1.0": 1,
                  "web.gunicorn.request.status.101:1|c|@1.0": 1,
                  "web.gunicorn.requests:1|c|@1.0": 6, "web.gunicorn.log.exception:1|c|@1.0": 1}
        seen: dict[str, int] = {}
        timers = 0
        while any(seen.get(name, 0) < count for name, count in wanted.items()) or timers < 6:
            message = udp.recv(65536).decode()
            seen[message] = seen.get(message, 0) + 1
            if re.fullmatch(r"web\.gunicorn\.request\.duration:\d+(\.\d+)?\|ms", message):
                timers += 1
    finally:
        udp.close()


# -- FastAPI (over Starlette) as deployed apps use it --------------------------------------------

def test_fastapi_file_stream_sse_background_task_and_websocket(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("fastapi", reason="needs fastapi (pip install -e '.[test]')")
    events = tmp_path / "events.txt"

    def recorded() -> list[str]:
        return events.read_text().splitlines() if events.exists() else []

    server, (address,) = start_server("asgi_frameworks:fastapi_app", "-k", "asgi",
                                      env={"ASGI_EVENTS_FILE": str(events)})
    source = (APPS / "asgi_frameworks.py").read_bytes()  # what /download serves
    with httpx.Client(base_url=_url(address)) as client:
        # FileResponse: the whole file with its length, a range of it, and HEAD.
        whole = client.get("/download")
        assert whole.status_code == 200 and whole.content == source
        assert whole.headers["content-length"] == str(len(source))
        assert 'filename="frameworks.py"' in whole.headers["content-disposition"]
        part = client.get("/download", headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == source[10:20]
        head = client.head("/download")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(source))
        # StreamingResponse: chunked, every piece.
        with client.stream("GET", "/numbers?count=200") as stream:
            assert stream.headers["transfer-encoding"] == "chunked"
            assert stream.read() == b"".join(f"{i}\n".encode() for i in range(200))
        # Server-sent events: ticks arrive as they are made; a client that leaves is noticed.
        with client.stream("GET", "/events") as sse:
            assert sse.headers["content-type"].startswith("text/event-stream")
            seen = []
            for line in sse.iter_lines():
                if line.startswith("data: "):
                    seen.append(line)
                    if len(seen) == 3:
                        break
            assert seen == ["data: tick 0", "data: tick 1", "data: tick 2"]
        _poll(lambda: "fastapi sse client gone" in recorded(), "the SSE app seeing its client go")
        # A background task runs after the response.
        answer = client.post("/signup", json={"name": "ada", "price": 1})
        assert answer.json() == {"queued": "ada"}
        _poll(lambda: "background: welcome ada" in recorded(), "the background task")

    async def talk() -> None:
        async with ws_connect(_ws(address) + "/ws/lobby") as ws:
            assert json.loads(await ws.recv()) == {"room": "lobby", "scheme": "ws"}
            await ws.send(json.dumps({"n": 1, "s": "é"}))
            assert json.loads(await ws.recv()) == {"echo": {"n": 1, "s": "é"}}
            await ws.close(code=4001)

    _run(talk())
    _poll(lambda: "fastapi ws disconnect 4001" in recorded(), "the WebSocket route's disconnect")
    assert server.stop() == 0, server.output


def test_access_lines_for_websocket_denials_and_a_session_ended_by_term(start_server) -> None:  # type: ignore[no-untyped-def]
    from websockets.exceptions import ConnectionClosed

    server, (address,) = start_server(
        "asgi_ws_app:app", "-k", "asgi", "--access-logfile", "-",
        "--access-logformat", '"%(r)s" %(s)s %(b)s %({x-scope-scheme}o)s %({content-type}o)s')

    async def talk() -> None:
        for path, status in (("/teapot", 418), ("/deny", 403)):
            with pytest.raises(InvalidStatus) as denied:
                async with ws_connect(_ws(address) + path):
                    pass
            assert denied.value.response.status_code == status
        async with ws_connect(_ws(address) + "/echo") as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            server.proc.terminate()
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001

    _run(talk())
    # A denial with a response of the app's is logged as that response (its status, its bytes);
    # a session, when it ends (here on TERM), with the headers of its 101.
    server.wait_for_line(r'^"GET /teapot HTTP/1\.1" 418 18 - text/plain$')
    server.wait_for_line(r'^"GET /deny HTTP/1\.1" 403 0 - -$')
    server.wait_for_line(r'^"GET /echo HTTP/1\.1" 101 5 ws -$')
    assert server.stop() == 0, server.output

"""--protocol uwsgi: nginx's uwsgi_pass, from raw packets (built with struct, as nginx builds them)
and through a real nginx with ``include uwsgi_params``; the environ compared with Gunicorn 27's for
the same packet.

A refused packet or peer is closed without a byte and logged, and the app never sees it: the
access log (on in these servers) has a line for every request the app answered, and none for those.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import APPS, NGINX, Server, free_port, nginx_conf
from gunicorn_side import GUNICORN, needs_gunicorn

ENVIRON_APP = "environ_app:app"

#: What nginx's uwsgi_params sends for "POST /p%2520x?a=1 HTTP/1.1" with a 5-byte body.
NGINX_VARS = {
    "QUERY_STRING": "a=1&b=%20", "REQUEST_METHOD": "POST", "CONTENT_TYPE": "text/plain",
    "CONTENT_LENGTH": "5", "REQUEST_URI": "/p%2520x?a=1&b=%20", "PATH_INFO": "/p%20x",
    "DOCUMENT_ROOT": "/usr/share/nginx/html", "SERVER_PROTOCOL": "HTTP/1.1",
    "REQUEST_SCHEME": "http", "REMOTE_ADDR": "10.0.0.9", "REMOTE_PORT": "5555",
    "SERVER_PORT": "80", "SERVER_NAME": "example.com", "HTTP_HOST": "example.com",
    "HTTP_USER_AGENT": "curl/8", "HTTP_X_FOO": "bar", "HTTP_ACCEPT": "*/*",
}
GET_VARS = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "", "CONTENT_LENGTH": "",
            "CONTENT_TYPE": "", "HTTP_HOST": "h"}


def packet(variables: dict[str, str], modifier1: int = 0) -> bytes:
    """A uwsgi request packet: the 4-byte header, then each var as 2-byte sizes (LE) and bytes."""
    block = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
                     for k, v in ((k.encode("latin-1"), v.encode("latin-1"))
                                  for k, v in variables.items()))
    return struct.pack("<BHB", modifier1, len(block), 0) + block


def send(port: int, data: bytes, half_close: bool = True, pieces: int = 1) -> bytes:
    """``data`` to 127.0.0.1:port (in ``pieces`` writes); everything the server sends until it
    closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        step = max(1, len(data) // pieces)
        for start in range(0, len(data), step):
            sock.sendall(data[start:start + step])
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def split(response: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, body


def environ_of(response: bytes) -> dict[str, Any]:
    status, _, body = split(response)
    assert status == "HTTP/1.1 200 OK", response[:300]
    return json.loads(body)  # type: ignore[no-any-return]


def wait_uwsgi(port: int, proc: subprocess.Popen[str] | None = None) -> None:
    """Poll until a worker answers a uwsgi packet on the port."""
    deadline = time.monotonic() + 30
    while True:
        try:
            if send(port, packet(GET_VARS)).startswith(b"HTTP/1.1 "):
                return
        except OSError:
            pass
        if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
            raise AssertionError(f"nothing answered uwsgi on port {port}")
        time.sleep(0.05)  # polling interval while the worker boots


@pytest.fixture
def uwsgi_server() -> Iterator[Any]:
    """uwsgi_server(app, *flags) → (Server, port): pronghorn --protocol uwsgi with an access log."""
    servers: list[Server] = []

    def start(app: str, *flags: str, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> tuple[Server, int]:
        port = free_port()
        server = Server(["-b", f"127.0.0.1:{port}", "--protocol", "uwsgi", "--access-logfile", "-",
                         *flags, app], env=env, cwd=cwd)
        servers.append(server)
        server.wait_for_line(r"Booting worker")
        wait_uwsgi(port, server.proc)
        server.wait_for_line(r'"GET / HTTP/1.1" \d')  # (the access line of that first answer)
        return server, port

    yield start
    for server in servers:
        server.stop()


def access_lines(server: Server) -> list[str]:
    return [line for line in server.lines if '"' in line and "HTTP/1.1" in line]


# -- raw packets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "gthread", "gevent"])
def test_a_packet_and_its_body_become_the_request(uwsgi_server, kind: str) -> None:  # type: ignore[no-untyped-def]
    if kind == "gevent":
        pytest.importorskip("gevent")
    _, port = uwsgi_server(ENVIRON_APP, "-k", kind)
    # The packet and its body in seven writes: every split is buffered until the body is whole.
    seen = environ_of(send(port, packet(NGINX_VARS) + b"hello", pieces=7))
    environ = seen["environ"]
    assert seen["body"] == "hello"
    assert (environ["REQUEST_METHOD"], environ["PATH_INFO"], environ["QUERY_STRING"],
            environ["RAW_URI"]) == ("POST", "/p%20x", "a=1&b=%20", "/p%20x?a=1&b=%20")
    assert (environ["CONTENT_TYPE"], environ["CONTENT_LENGTH"]) == ("text/plain", "5")
    assert (environ["HTTP_HOST"], environ["HTTP_X_FOO"], environ["HTTP_USER_AGENT"]) == (
        "example.com", "bar", "curl/8")
    # As Gunicorn: the vars that are not header fields stay out; the socket says who and where.
    assert "REQUEST_URI" not in environ and "DOCUMENT_ROOT" not in environ
    assert environ["REMOTE_ADDR"] == "127.0.0.1" and environ["SERVER_PORT"] == str(port)
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1" and environ["wsgi.url_scheme"] == "http"


def test_the_https_var_makes_the_scheme(uwsgi_server) -> None:  # type: ignore[no-untyped-def]
    _, port = uwsgi_server(ENVIRON_APP)
    assert environ_of(send(port, packet(dict(GET_VARS, HTTPS="on"))))["environ"][
        "wsgi.url_scheme"] == "https"
    # The next request on the same worker without it is the listener's scheme again.
    assert environ_of(send(port, packet(GET_VARS)))["environ"]["wsgi.url_scheme"] == "http"
    # A header cannot claim it (no forwarded policy on uwsgi, as under Gunicorn).
    forged = dict(GET_VARS, HTTP_X_FORWARDED_PROTO="https")
    assert environ_of(send(port, packet(forged)))["environ"]["wsgi.url_scheme"] == "http"


def test_two_packets_on_one_connection_get_two_responses(uwsgi_server) -> None:  # type: ignore[no-untyped-def]
    _, port = uwsgi_server(ENVIRON_APP)
    out = send(port, packet(GET_VARS) + packet(dict(GET_VARS, HTTP_CONNECTION="close")))
    assert out.count(b"HTTP/1.1 200 OK") == 2


def test_a_streamed_response_is_never_chunked(uwsgi_server) -> None:  # type: ignore[no-untyped-def]
    _, port = uwsgi_server("stream_app:app")
    status, headers, body = split(send(port, packet(dict(GET_VARS, PATH_INFO="/pieces",
                                                   QUERY_STRING="count=3&size=10")),
                                       half_close=False))
    assert status.startswith("HTTP/1.1 200")
    assert "transfer-encoding" not in headers and headers.get("connection") == "close"
    assert body and b"\r\n0\r\n" not in body


REFUSED = [
    ("modifier1", packet(GET_VARS, modifier1=5), "uwsgi modifier1 5 is not supported"),
    ("truncated vars", packet(GET_VARS)[:-3], "incomplete uwsgi vars block"),
    ("a var cut short", b"\x00\x03\x00\x00\x05\x00a", "key is cut short"),
    ("bad length", packet(dict(GET_VARS, CONTENT_LENGTH="5x")), "invalid uwsgi CONTENT_LENGTH"),
    ("body cut short", packet(dict(GET_VARS, CONTENT_LENGTH="10")) + b"abc",
     "incomplete request body"),
    ("an HTTP request", b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", "modifier1 71 is not supported"),
    ("a NUL in a var", packet(dict(GET_VARS, HTTP_X="a\x00b")), "CR, LF or NUL"),
    ("a method that is not a token", packet(dict(GET_VARS, REQUEST_METHOD="GE T")),
     "REQUEST_METHOD is not a token"),
]


@pytest.mark.parametrize("name,data,logged", REFUSED, ids=[case[0] for case in REFUSED])
def test_a_malformed_packet_is_closed_and_logged_never_answered(  # type: ignore[no-untyped-def]
        uwsgi_server, name: str, data: bytes, logged: str) -> None:
    server, port = uwsgi_server(ENVIRON_APP)
    before = len(access_lines(server))
    assert send(port, data) == b""
    server.wait_for_line(r"\[WARNING\] Closed a uwsgi connection from .*" + re.escape(logged))
    assert environ_of(send(port, packet(dict(GET_VARS, PATH_INFO="/after"))))  # (it serves on)
    server.wait_for_line(r'"GET /after HTTP/1.1" 200')
    assert len(access_lines(server)) == before + 1  # only the good packet reached the app


@pytest.mark.parametrize("flag,variables", [
    ("--limit-request-fields=3", dict(GET_VARS, HTTP_A="1", HTTP_B="2")),
    ("--limit-request-field-size=40", dict(GET_VARS, HTTP_X_LONG="x" * 40)),
    ("--limit-request-line=20", dict(GET_VARS, PATH_INFO="/" + "p" * 20)),
    ("--limit-request-body=4", dict(GET_VARS, CONTENT_LENGTH="5")),
])
def test_the_request_limits_hold_for_vars(uwsgi_server, flag: str,  # type: ignore[no-untyped-def]
                                          variables: dict[str, str]) -> None:
    server, port = uwsgi_server(ENVIRON_APP, flag)
    assert send(port, packet(variables) + b"hello"[:int(variables["CONTENT_LENGTH"] or 0)]) == b""
    server.wait_for_line(r"Closed a uwsgi connection from .*(too large|too long|too many)")


def test_a_peer_not_allowed_is_closed_and_logged(uwsgi_server) -> None:  # type: ignore[no-untyped-def]
    server, port = uwsgi_server(ENVIRON_APP, "--uwsgi-allow-from", "127.0.0.1")
    with socket.socket() as sock:
        sock.settimeout(10)
        sock.bind(("127.0.0.2", 0))
        sock.connect(("127.0.0.1", port))
        try:
            sock.sendall(packet(GET_VARS))
            answer = sock.recv(100)
        except ConnectionResetError:  # (closed with the packet unread: a reset, or not yet)
            answer = b""
        assert answer == b""
    server.wait_for_line(r"\[WARNING\] Closed a uwsgi connection from \('127\.0\.0\.2', \d+\): "
                         r"not in --uwsgi-allow-from")


def test_a_unix_socket_peer_is_always_allowed(tmp_path: Path) -> None:
    path = tmp_path / "uwsgi.sock"
    server = Server(["-b", f"unix:{path}", "--protocol", "uwsgi", "--uwsgi-allow-from", "",
                     ENVIRON_APP])
    try:
        server.wait_for_line(r"Booting worker")
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as sock:
                    sock.settimeout(10)
                    sock.connect(str(path))
                    sock.sendall(packet(GET_VARS))
                    sock.shutdown(socket.SHUT_WR)
                    data = b""
                    while chunk := sock.recv(65536):
                        data += chunk
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # polling interval while the worker boots
        assert environ_of(data)["environ"]["REMOTE_ADDR"] == ""
    finally:
        server.stop()


# -- side by side with Gunicorn 27 -----------------------------------------------------------------

#: The environ keys that differ on purpose (the lead's list of differences from Gunicorn), or by
#: nature (another process, another port).
EXPECTED_DIFFERENCES = {
    "SERVER_SOFTWARE", "REMOTE_PORT", "SERVER_PORT",
    # nginx's PATH_INFO is decoded already; Gunicorn decodes it again ("/p%20x" → "/p x").
    "PATH_INFO",
}


@needs_gunicorn
def test_the_environ_is_gunicorns_for_the_same_packet(uwsgi_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, port = uwsgi_server(ENVIRON_APP)
    gport = free_port()
    proc = subprocess.Popen(
        [GUNICORN, "-b", f"127.0.0.1:{gport}", "-w", "1", "--protocol", "uwsgi",
         "--no-control-socket", ENVIRON_APP],
        cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=str(APPS)), text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_uwsgi(gport, proc)
        for variables, body in ((NGINX_VARS, b"hello"), (dict(GET_VARS, HTTPS="on"), b""),
                                (dict(GET_VARS, HTTP_COOKIE="a=1", HTTP_X_A_B="c"), b"")):
            ours = environ_of(send(port, packet(variables) + body))
            theirs = environ_of(send(gport, packet(variables) + body))
            assert ours["body"] == theirs["body"]
            mine, gunicorn = ours["environ"], theirs["environ"]
            differ = {key for key in mine.keys() | gunicorn.keys()
                      if mine.get(key) != gunicorn.get(key)}
            unexpected = differ - EXPECTED_DIFFERENCES
            assert not unexpected, {k: (mine.get(k), gunicorn.get(k)) for k in unexpected}
        assert mine["PATH_INFO"] == "/" == gunicorn["PATH_INFO"]
    finally:
        proc.terminate()
        proc.wait(30)


# -- through nginx ---------------------------------------------------------------------------------

NGINX_UWSGI = """\
    client_body_buffer_size 16m;  # (in memory: its temp directory is private to root here)
    client_max_body_size 10m;
    uwsgi_temp_path {dir}/uwsgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            include /etc/nginx/uwsgi_params;
            uwsgi_pass 127.0.0.1:{upstream};
        }}
    }}"""


@pytest.fixture
def nginx_uwsgi(tmp_path: Path) -> Iterator[Any]:
    """nginx_uwsgi(upstream_port) → nginx's port, passing every request to the upstream."""
    if NGINX is None:
        pytest.skip("needs nginx (apt-get install nginx-light; .ci/run installs it)")
    procs: list[subprocess.Popen[bytes]] = []

    def start(upstream: int) -> int:
        port = free_port()
        where = tmp_path / f"nginx-{port}"
        where.mkdir()
        conf = where / "nginx.conf"
        conf.write_text(nginx_conf(where, NGINX_UWSGI.format(dir=where, port=port,
                                                             upstream=upstream)))
        os.chmod(where, 0o755)
        proc = subprocess.Popen([str(NGINX), "-c", str(conf), "-p", str(where)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        deadline = time.monotonic() + 20
        while True:
            try:
                if http(port, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")[0]:
                    return port
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("nginx did not answer: " + (where / "error.log").read_text())
            time.sleep(0.05)  # polling interval while nginx starts

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(15)


def http(port: int, raw: bytes) -> tuple[str, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status, headers, body = split(data)
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return status, headers, body


def dechunk(body: bytes) -> bytes:
    out = b""
    while True:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if not size:
            return out
        out += rest[:size]
        body = rest[size + 2:]


def multipart(boundary: str, filename: str, content: bytes) -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode() + content + f"\r\n--{boundary}--\r\n".encode()


@pytest.mark.parametrize("kind", ["sync", "gthread", "gevent"])
def test_nginx_uwsgi_pass_get_post_and_upload(uwsgi_server, nginx_uwsgi, kind: str) -> None:  # type: ignore[no-untyped-def]
    if kind == "gevent":
        pytest.importorskip("gevent")
    server, upstream = uwsgi_server(ENVIRON_APP, "-k", kind)
    port = nginx_uwsgi(upstream)

    status, _, body = http(port, b"GET /a%20b/c?x=1 HTTP/1.1\r\nHost: shop.example\r\n"
                                 b"X-Trace: 7\r\nConnection: close\r\n\r\n")
    environ = json.loads(body)["environ"]
    assert status == "HTTP/1.1 200 OK"
    assert (environ["REQUEST_METHOD"], environ["PATH_INFO"], environ["QUERY_STRING"]) == (
        "GET", "/a b/c", "x=1")
    assert (environ["HTTP_HOST"], environ["HTTP_X_TRACE"]) == ("shop.example", "7")

    form = b"name=pronghorn&kind=uwsgi"
    status, _, body = http(port, b"POST /form HTTP/1.1\r\nHost: shop.example\r\nContent-Type: "
                                 b"application/x-www-form-urlencoded\r\nContent-Length: %d\r\n"
                                 b"Connection: close\r\n\r\n%b" % (len(form), form))
    seen = json.loads(body)
    assert status == "HTTP/1.1 200 OK" and seen["body"] == form.decode()
    assert seen["environ"]["CONTENT_LENGTH"] == str(len(form))

    # A chunked body: nginx buffers it and sends its length in CONTENT_LENGTH.
    status, _, body = http(port, b"POST /chunked HTTP/1.1\r\nHost: shop.example\r\nTransfer-"
                                 b"Encoding: chunked\r\nConnection: close\r\n\r\n"
                                 b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    seen = json.loads(body)
    assert status == "HTTP/1.1 200 OK" and seen["body"] == "hello world"
    assert seen["environ"]["CONTENT_LENGTH"] == "11"

    content = bytes(range(256)) * 1024  # 256 KiB of every byte value
    upload = multipart("XyZ", "data.bin", content)
    status, _, body = http(port, b"POST /upload HTTP/1.1\r\nHost: shop.example\r\nContent-Type: "
                                 b"multipart/form-data; boundary=XyZ\r\nContent-Length: %d\r\n"
                                 b"Connection: close\r\n\r\n%b" % (len(upload), upload))
    seen = json.loads(body)
    assert status == "HTTP/1.1 200 OK"
    assert seen["body"].encode("latin-1") == upload
    assert seen["environ"]["CONTENT_TYPE"] == "multipart/form-data; boundary=XyZ"
    server.wait_for_line(r'"POST /upload HTTP/1.1" 200')


def test_nginx_uwsgi_pass_to_the_asgi_worker(uwsgi_server, nginx_uwsgi) -> None:  # type: ignore[no-untyped-def]
    _, upstream = uwsgi_server("asgi_app:app", "-k", "asgi")
    port = nginx_uwsgi(upstream)
    status, _, body = http(port, b"GET /scope?q=1 HTTP/1.1\r\nHost: shop.example\r\n"
                                 b"Connection: close\r\n\r\n")
    scope = json.loads(body)
    assert status == "HTTP/1.1 200 OK"
    assert (scope["method"], scope["path"], scope["query_string"], scope["scheme"]) == (
        "GET", "/scope", "q=1", "http")
    data = b"z" * 100_000
    status, _, body = http(port, b"POST /echo HTTP/1.1\r\nHost: shop.example\r\nContent-Length: "
                                 b"%d\r\nConnection: close\r\n\r\n%b" % (len(data), data))
    assert status == "HTTP/1.1 200 OK" and json.loads(body)["total"] == len(data)
    # A streamed response: no length, no chunks from us; nginx frames it for its client.
    status, _, body = http(port, b"GET /stream HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n")
    assert status == "HTTP/1.1 200 OK" and body == b"".join(b"piece %d\n" % i for i in range(5))


# -- the Django project through nginx's uwsgi_pass -------------------------------------------------

DJANGO_HOST_SETTINGS = """\
from project.settings import *  # noqa: F401,F403 (the project's defaults, then the host's)

DEBUG = False
ALLOWED_HOSTS = ["localhost"]
ROOT_URLCONF = "upload_urls"
DATABASES["default"]["NAME"] = {db!r}
"""

DJANGO_UPLOAD_URLS = """\
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from project.urls import urlpatterns as project_urls


@csrf_exempt
def upload(request):
    received = request.FILES["file"]
    return JsonResponse({"name": received.name, "size": received.size,
                         "first": received.read(4).hex(), "note": request.POST.get("note")})


urlpatterns = project_urls + [path("upload/", upload)]
"""


def test_the_django_project_through_nginx_uwsgi_pass(uwsgi_server, nginx_uwsgi,  # type: ignore[no-untyped-def]
                                                      tmp_path: Path) -> None:
    pytest.importorskip("django", reason="needs Django (pip install -e '.[test]')")
    pytest.importorskip("gevent", reason="the seed runs the gevent worker (pip install -e '.[test]')")
    code, etc = tmp_path / "opt-proj", tmp_path / "etc-opt-proj"
    code.mkdir()
    etc.mkdir()
    subprocess.run([sys.executable, "-m", "django", "startproject", "project", str(code)],
                   check=True, capture_output=True, timeout=120)
    (etc / "settings.py").write_text(DJANGO_HOST_SETTINGS.format(db=str(tmp_path / "db.sqlite3")))
    (etc / "upload_urls.py").write_text(DJANGO_UPLOAD_URLS)
    env = {"PYTHONPATH": f"{etc}:{code}", "DJANGO_SETTINGS_MODULE": "settings"}
    subprocess.run([sys.executable, str(code / "manage.py"), "migrate", "-v0"], check=True,
                   capture_output=True, timeout=300, env=dict(os.environ, **env))
    server, upstream = uwsgi_server("project.wsgi:application", "--worker-class=gevent",
                                    env=env, cwd=code)
    port = nginx_uwsgi(upstream)

    status, headers, body = http(port, b"GET /admin/login/ HTTP/1.1\r\nHost: localhost\r\n"
                                       b"Connection: close\r\n\r\n")
    assert status == "HTTP/1.1 200 OK", body[:500]
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    cookie = re.search(r"csrftoken=([^;]+)", headers.get("set-cookie", ""))
    assert token and cookie, (headers, body[:500])

    # A POST: the login form with CSRF token and cookie; wrong credentials, so the form again.
    form = b"csrfmiddlewaretoken=%b&username=nobody&password=wrong&next=/admin/" % token.group(1)
    status, _, body = http(port, b"POST /admin/login/ HTTP/1.1\r\nHost: localhost\r\n"
                                 b"Cookie: csrftoken=%b\r\nContent-Type: application/x-www-form-"
                                 b"urlencoded\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%b"
                                 % (cookie.group(1).encode(), len(form), form))
    assert status == "HTTP/1.1 200 OK", body[:800]
    assert b"Please enter the correct username and password" in body

    # A file upload (multipart), 3 MiB: past Django's memory limit and our spool threshold.
    content = b"\x89PNG" + os.urandom(3 * 1024 * 1024)
    upload = multipart("Bnd42", "big.png", content)
    status, _, body = http(port, b"POST /upload/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                                 b"multipart/form-data; boundary=Bnd42\r\nContent-Length: %d\r\n"
                                 b"Connection: close\r\n\r\n%b" % (len(upload), upload))
    assert status == "HTTP/1.1 200 OK", body[:800]
    assert json.loads(body) == {"name": "big.png", "size": len(content), "first": "89504e47",
                                "note": "hi"}
    server.wait_for_line(r'"POST /upload/ HTTP/1.1" 200')


def test_hooks_see_the_request_as_gunicorns_req(uwsgi_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "hooks.conf.py"
    config.write_text("def pre_request(worker, req):\n"
                      "    worker.log.info('HOOK %s %s %s', req.method, req.path, req.uri)\n")
    server, port = uwsgi_server(ENVIRON_APP, "-c", str(config))
    environ_of(send(port, packet(dict(GET_VARS, PATH_INFO="/p%20x", QUERY_STRING="q=1"))))
    server.wait_for_line(r"HOOK GET /p%20x /p%20x\?q=1$")

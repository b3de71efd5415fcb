"""The environ behind a proxy, beside Gunicorn 27: the same request headers from 127.0.0.1 (trusted
by the default --forwarded-allow-ips) to both servers under the same config file, and the keys an app
reads about its client and itself must agree: wsgi.url_scheme, REMOTE_ADDR/REMOTE_PORT (the socket's
peer), SERVER_NAME/SERVER_PORT (the listener's), SCRIPT_NAME/PATH_INFO and every HTTP_* key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gunicorn_side import ask, environ_of, needs_gunicorn, start_gunicorn  # noqa: F401 (fixture)

APP = "behaviours:app"

FORWARDING = ("X-Forwarded-For: 198.51.100.7, 10.0.0.1", "X-Forwarded-Proto: https",
              "Forwarded: for=198.51.100.7;proto=https", "X-Real-IP: 198.51.100.7")

# (config file, request headers, path): each case is served by both servers.
CASES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "defaults": ("", FORWARDING, "/environ"),
    "no forwarding headers": ("", (), "/environ"),
    "a proxy that says http": ("", ("X-Forwarded-Proto: http", "X-Forwarded-Ssl: off"),
                               "/environ"),
    "a value in another case": ("", ("X-Forwarded-Proto: HTTPS",), "/environ"),
    "mixed-case key, everyone trusted": (
        "forwarded_allow_ips = '*'\n"
        "secure_scheme_headers = {'X-Forwarded-Proto': 'https', 'X-FORWARDED-SSL': 'on'}\n",
        FORWARDING, "/environ"),
    "mixed-case key only": (
        "forwarded_allow_ips = '*'\nsecure_scheme_headers = {'X-Forwarded-Proto': 'https'}\n",
        FORWARDING, "/environ"),
    "an untrusted peer": ("forwarded_allow_ips = '10.0.0.1'\n", FORWARDING, "/environ"),
    "forwarder headers": ("", ("Script_Name: /app", "Path_Info: /p", "X_Custom: 1",
                               "X-Forwarded-Proto: https"), "/app/environ"),
    "forwarder headers, any": ("forwarder_headers = '*'\n", ("X_Custom: 1", "Remote_User: dora"),
                               "/environ"),
    "forwarder headers from an untrusted peer": (
        "forwarded_allow_ips = '10.0.0.1'\n", ("Script_Name: /app", "X_Custom: 1"), "/environ"),
}


def _projection(env: dict[str, Any], own_port: str) -> dict[str, Any]:
    seen = {key: value for key, value in env.items() if key.startswith("HTTP_")}
    for key in ("wsgi.url_scheme", "REMOTE_ADDR", "SERVER_NAME", "SCRIPT_NAME", "PATH_INFO"):
        seen[key] = env.get(key)
    # Each server's own listener and the client's own socket port: compared by what they are.
    seen["SERVER_PORT is the listener's"] = env.get("SERVER_PORT") == own_port
    port = env.get("REMOTE_PORT")
    seen["REMOTE_PORT is the peer's"] = isinstance(port, str) and port.isdigit() and port != "0"
    return seen


def _request(headers: tuple[str, ...], path: str) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: example.com:8443", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@needs_gunicorn
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_environ_behind_a_proxy_is_gunicorns(start_server, start_gunicorn,  # type: ignore[no-untyped-def]
                                                 tmp_path: Path, case: str) -> None:
    conf_text, headers, path = CASES[case]
    conf = tmp_path / "forwarding.conf.py"
    conf.write_text(conf_text)
    _, (ours,) = start_server(APP, "-c", str(conf))
    theirs = start_gunicorn(APP, "-c", str(conf))
    raw = _request(headers, path)
    seen = {name: _projection(environ_of(ask(address, raw)), address.rsplit(":", 1)[1])
            for name, address in (("pronghorn", ours), ("gunicorn", theirs))}
    assert seen["pronghorn"] == seen["gunicorn"]
    assert seen["pronghorn"]["REMOTE_ADDR"] == "127.0.0.1"


@needs_gunicorn
@pytest.mark.parametrize("headers", [("X-Forwarded-Proto: https", "X-Forwarded-Ssl: off"),
                                     ("X-Forwarded-Proto: https", "X-Forwarded-Proto: http")])
def test_contradictory_scheme_headers_are_a_400_in_both(start_server, start_gunicorn,  # type: ignore[no-untyped-def]
                                                        headers: tuple[str, ...]) -> None:
    _, (ours,) = start_server(APP)
    theirs = start_gunicorn(APP)
    raw = _request(headers, "/environ")
    assert ask(ours, raw).status == ask(theirs, raw).status == 400


@needs_gunicorn
def test_a_proxy_script_name_the_path_lacks_is_a_500_in_both(start_server, start_gunicorn) -> None:  # type: ignore[no-untyped-def]
    _, (ours,) = start_server(APP)
    theirs = start_gunicorn(APP)
    raw = _request(("Script_Name: /app",), "/elsewhere")
    assert ask(ours, raw).status == ask(theirs, raw).status == 500


def test_forwarded_client_address_takes_the_client_from_a_trusted_proxy(start_server) -> None:  # type: ignore[no-untyped-def]
    """pronghorn's opt-in: REMOTE_ADDR from the right-most untrusted hop (10.0.0.1 is not trusted
    under the default list), and the access log's %(h)s says the same."""
    server, (ours,) = start_server(APP, "--forwarded-client-address", "--access-logfile", "-",
                                   "--access-logformat", "h=%(h)s")
    env = environ_of(ask(ours, _request(FORWARDING, "/environ")))
    assert (env["REMOTE_ADDR"], env["wsgi.url_scheme"]) == ("198.51.100.7", "https")
    server.wait_for_line(r"^h=198\.51\.100\.7$")

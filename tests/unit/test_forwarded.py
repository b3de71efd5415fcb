"""Trusted-proxy headers (pronghorn/wsgi/forwarded.py): who may set them and what they set.
Gunicorn's rules by default (the scheme only); --forwarded-client-address adds the client's address."""

from __future__ import annotations

from typing import Any

import pytest

from pronghorn.http import HTTPError
from pronghorn.wsgi.forwarded import DEFAULT_SECURE_SCHEME_HEADERS, ForwardedPolicy, parse_forwarded

PROXY = ("127.0.0.1", 40000)
STRANGER = ("203.0.113.9", 40000)


def apply(headers: dict[str, str] | list[tuple[str, str]], peer: Any = PROXY,
          allow: str = "127.0.0.1,::1,10.0.0.0/8", scheme_headers: dict[str, str] | None = None,
          client_address: bool = True, **options: Any) -> dict[str, Any]:
    environ: dict[str, Any] = {"wsgi.url_scheme": "http", "REMOTE_ADDR": str(peer[0]) if peer else "",
                               "REMOTE_PORT": "40000", "SERVER_PORT": "80", "HTTP_HOST": "example.com"}
    fields = list(headers.items()) if isinstance(headers, dict) else headers
    underscored = []
    for name, value in fields:
        if "_" in name:
            underscored.append((name.upper(), value))
            continue
        key = "HTTP_" + name.upper().replace("-", "_")
        environ[key] = environ[key] + "," + value if key in environ else value
    policy = ForwardedPolicy(allow, DEFAULT_SECURE_SCHEME_HEADERS if scheme_headers is None
                             else scheme_headers, client_address, **options)
    said = policy.said(environ, tuple((n.encode(), v.encode()) for n, v in fields),
                       tuple(underscored))
    if said is not None:
        for name, value in policy.apply(environ, peer, said):
            environ["HTTP_" + name.replace("-", "_")] = value
    return environ


def test_by_default_a_trusted_proxy_sets_only_the_scheme() -> None:
    """Gunicorn's default: REMOTE_ADDR stays the peer, the headers pass through."""
    env = apply({"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"},
                client_address=False)
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"], env["wsgi.url_scheme"]) == (
        "127.0.0.1", "40000", "https")
    assert env["HTTP_X_FORWARDED_FOR"] == "198.51.100.7" and env["SERVER_PORT"] == "80"


def test_by_default_a_stranger_keeps_its_headers_and_its_scheme() -> None:
    env = apply({"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https",
                 "Forwarded": "for=1.2.3.4;proto=https"}, peer=STRANGER, client_address=False)
    assert env["REMOTE_ADDR"] == STRANGER[0] and env["wsgi.url_scheme"] == "http"
    assert (env["HTTP_X_FORWARDED_FOR"], env["HTTP_FORWARDED"]) == (
        "1.2.3.4", "for=1.2.3.4;proto=https")


def test_by_default_forwarded_proto_is_not_a_scheme_header() -> None:
    env = apply({"Forwarded": "proto=https"}, client_address=False)
    assert env["wsgi.url_scheme"] == "http"


def test_a_scheme_header_that_does_not_match_means_http() -> None:
    """Gunicorn: a trusted secure-scheme header with another value says http (a TLS listener
    behind a proxy that says http is http)."""
    environ = apply({"X-Forwarded-Proto": "http"})
    assert environ["wsgi.url_scheme"] == "http"


def test_repeated_scheme_headers_are_judged_one_by_one() -> None:
    assert apply([("X-Forwarded-Proto", "https"), ("X-Forwarded-Proto", "https")])[
        "wsgi.url_scheme"] == "https"
    with pytest.raises(HTTPError):
        apply([("X-Forwarded-Proto", "https"), ("X-Forwarded-Proto", "http")])


def test_underscored_headers_reach_the_environ_only_from_a_trusted_forwarder() -> None:
    headers = {"Script_Name": "/app", "X_Custom": "1"}
    env = apply(headers)
    assert env["HTTP_SCRIPT_NAME"] == "/app" and "HTTP_X_CUSTOM" not in env
    env = apply(headers, peer=STRANGER)
    assert "HTTP_SCRIPT_NAME" not in env and "HTTP_X_CUSTOM" not in env
    env = apply(headers, forwarder_headers="*")
    assert env["HTTP_X_CUSTOM"] == "1"
    with pytest.raises(HTTPError) as caught:
        apply(headers, header_map="refuse")
    assert caught.value.status == 400
    assert apply({"Script_Name": "/app"}, header_map="refuse")["HTTP_SCRIPT_NAME"] == "/app"


# -- --forwarded-client-address ----------------------------------------------------------------------

def test_a_trusted_proxy_sets_address_and_scheme() -> None:
    env = apply({"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"})
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"], env["wsgi.url_scheme"]) == (
        "198.51.100.7", "0", "https")
    assert env["SERVER_PORT"] == "80"  # the listener's (environ.py), whatever the scheme


def test_the_client_is_the_rightmost_untrusted_hop() -> None:
    env = apply({"X-Forwarded-For": "1.2.3.4, 198.51.100.7, 10.0.0.5"})
    assert env["REMOTE_ADDR"] == "198.51.100.7"  # 1.2.3.4 is whatever the client claimed


def test_everyone_trusted_takes_the_first_hop() -> None:
    env = apply({"X-Forwarded-For": "1.2.3.4, 198.51.100.7"}, allow="*")
    assert env["REMOTE_ADDR"] == "1.2.3.4"


def test_an_untrusted_peer_loses_the_address_headers() -> None:
    env = apply({"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https",
                 "Forwarded": "for=1.2.3.4;proto=https", "X-Forwarded-Ssl": "on"}, peer=STRANGER)
    assert env["REMOTE_ADDR"] == STRANGER[0] and env["wsgi.url_scheme"] == "http"
    assert not any(key in env for key in ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED"))
    assert env["HTTP_X_FORWARDED_PROTO"] == "https"  # not an address: passed on, as by Gunicorn


def test_a_unix_socket_peer_is_trusted() -> None:
    env = apply({"X-Forwarded-For": "198.51.100.7"}, peer="")
    assert env["REMOTE_ADDR"] == "198.51.100.7"


def test_rfc7239_forwarded_wins_and_is_parsed() -> None:
    env = apply({"Forwarded": 'for="[2001:db8::7]:4711";proto=https;by=_proxy',
                 "X-Forwarded-For": "192.0.2.1"})
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"], env["wsgi.url_scheme"]) == (
        "2001:db8::7", "4711", "https")
    assert parse_forwarded('for=192.0.2.60;proto=http;by=203.0.113.43, for="unknown"') == [
        {"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}, {"for": "unknown"}]


def test_an_obfuscated_hop_stops_the_search() -> None:
    env = apply({"Forwarded": "for=198.51.100.7, for=_hidden"})
    assert env["REMOTE_ADDR"] == "127.0.0.1"


@pytest.mark.parametrize("headers", [
    {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "off"},
    {"X-Forwarded-Proto": "http", "Forwarded": "proto=https"},
])
def test_contradictory_scheme_headers_are_a_400(headers: dict[str, str]) -> None:
    with pytest.raises(HTTPError) as caught:
        apply(headers)
    assert caught.value.status == 400


def test_custom_scheme_headers() -> None:
    env = apply({"X-Scheme": "https"}, scheme_headers={"X-SCHEME": "https"})
    assert env["wsgi.url_scheme"] == "https"
    env = apply({"X-Scheme": "HTTPS"}, scheme_headers={"X-SCHEME": "https"})
    assert env["wsgi.url_scheme"] == "http"  # values compare exactly, as in Gunicorn
    env = apply({"X-Forwarded-Proto": "https"}, scheme_headers={"X-SCHEME": "https"})
    assert env["wsgi.url_scheme"] == "http"  # not a scheme header in this configuration


def test_nothing_to_do_leaves_the_environ_alone() -> None:
    env = apply({})
    assert env["REMOTE_ADDR"] == "127.0.0.1" and env["wsgi.url_scheme"] == "http"


def test_scheme_header_keys_match_as_gunicorn_matches_them() -> None:
    """Gunicorn compares each key with the header's upper-cased name: a key in mixed case never
    matches there, so a config written for it gets the same url_scheme here."""
    env = apply({"X-Forwarded-Proto": "https"}, scheme_headers={"X-Forwarded-Proto": "https"})
    assert env["wsgi.url_scheme"] == "http"
    env = apply({"X-Forwarded-Proto": "https"}, scheme_headers={"X-FORWARDED-PROTO": "https"})
    assert env["wsgi.url_scheme"] == "https"

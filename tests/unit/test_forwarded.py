"""Trusted-proxy headers (pronghorn/wsgi/forwarded.py): who may set them and what they set."""

from __future__ import annotations

from typing import Any

import pytest

from pronghorn.http import HTTPError
from pronghorn.wsgi.forwarded import DEFAULT_SECURE_SCHEME_HEADERS, ForwardedPolicy, parse_forwarded

PROXY = ("127.0.0.1", 40000)
STRANGER = ("203.0.113.9", 40000)


def apply(headers: dict[str, str], peer: Any = PROXY, allow: str = "127.0.0.1,::1,10.0.0.0/8",
          scheme_headers: dict[str, str] | None = None) -> dict[str, Any]:
    environ: dict[str, Any] = {"wsgi.url_scheme": "http", "REMOTE_ADDR": str(peer[0]) if peer else "",
                               "REMOTE_PORT": "40000", "SERVER_PORT": "80", "HTTP_HOST": "example.com"}
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    ForwardedPolicy(allow, DEFAULT_SECURE_SCHEME_HEADERS if scheme_headers is None
                    else scheme_headers).apply(environ, peer)
    return environ


def test_a_trusted_proxy_sets_address_and_scheme() -> None:
    env = apply({"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"})
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"], env["wsgi.url_scheme"]) == (
        "198.51.100.7", "0", "https")
    assert env["SERVER_PORT"] == "443"


def test_the_client_is_the_rightmost_untrusted_hop() -> None:
    env = apply({"X-Forwarded-For": "1.2.3.4, 198.51.100.7, 10.0.0.5"})
    assert env["REMOTE_ADDR"] == "198.51.100.7"  # 1.2.3.4 is whatever the client claimed


def test_everyone_trusted_takes_the_first_hop() -> None:
    env = apply({"X-Forwarded-For": "1.2.3.4, 198.51.100.7"}, allow="*")
    assert env["REMOTE_ADDR"] == "1.2.3.4"


def test_an_untrusted_peer_loses_the_headers() -> None:
    env = apply({"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https",
                 "Forwarded": "for=1.2.3.4;proto=https", "X-Forwarded-Ssl": "on"}, peer=STRANGER)
    assert env["REMOTE_ADDR"] == STRANGER[0] and env["wsgi.url_scheme"] == "http"
    assert not any(key in env for key in ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO",
                                          "HTTP_FORWARDED", "HTTP_X_FORWARDED_SSL"))


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
    env = apply({"X-Scheme": "HTTPS"}, scheme_headers={"X-SCHEME": "https"})
    assert env["wsgi.url_scheme"] == "https"
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

"""Gunicorn's HTTP leniency switches, on a real pronghorn beside Gunicorn 27 where both answer the
same: each off by default (400), each applied as Gunicorn applies it when asked, and the two that
would weaken parsing against request smuggling (strip_header_spaces, header_map = 'dangerous')
accepted, not applied, and named once in the log at start, as is a non-default http_parser."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest

from conftest import APPS, exchange
from gunicorn_side import needs_gunicorn, start_gunicorn  # noqa: F401 (fixture)

APP = "behaviours:app"

pytestmark = pytest.mark.usefixtures("worker_class")

FOLDED = (b"GET /environ HTTP/1.1\r\nHost: t\r\nX-Folded: one\r\n  two\r\n\tthree\r\n"
          b"Connection: close\r\n\r\n")


def _line(method: str = "GET", version: str = "1.1", *headers: str) -> bytes:
    lines = [f"{method} /environ HTTP/{version}", "Host: t", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answer(address: str, raw: bytes) -> tuple[int, Any]:
    """(status, the environ's method and X-* headers when served). Read by hand: Gunicorn answers
    an HTTP/2.0 request with an "HTTP/2.0 200 OK" status line."""
    response = exchange(address, raw)
    head, _, body = response.partition(b"\r\n\r\n")
    match = re.match(rb"HTTP/\d\.\d (\d{3}) ", head)
    assert match, response[:200]
    if match.group(1) != b"200":
        return int(match.group(1)), None
    env = {key: entry.get("value") for key, entry in json.loads(body)["environ"].items()}
    return 200, {key: value for key, value in env.items()
                 if key in ("REQUEST_METHOD", "HTTP_X_FOLDED", "HTTP_X_CUSTOM")}


# (flags, request, what both servers answer)
BOTH: dict[str, tuple[tuple[str, ...], bytes, tuple[int, Any]]] = {
    "folding refused": ((), FOLDED, (400, None)),
    "folding permitted": (("--permit-obsolete-folding",), FOLDED,
                          (200, {"REQUEST_METHOD": "GET", "HTTP_X_FOLDED": "one two three"})),
    "lowercase method refused": ((), _line("get"), (400, None)),
    "short method refused": ((), _line("GE"), (400, None)),
    "lowercase method permitted": (("--permit-unconventional-http-method",), _line("get"),
                                   (200, {"REQUEST_METHOD": "get"})),
    "method with # permitted": (("--permit-unconventional-http-method",), _line("G#T"),
                                (200, {"REQUEST_METHOD": "G#T"})),
    "lowercase method casefolded": (("--permit-unconventional-http-method",
                                     "--casefold-http-method"), _line("get"),
                                    (200, {"REQUEST_METHOD": "GET"})),
    "casefold alone refuses lowercase first": (("--casefold-http-method",), _line("get"),
                                               (400, None)),
    "HTTP/2.0 permitted": (("--permit-unconventional-http-version",), _line(version="2.0"),
                           (200, {"REQUEST_METHOD": "GET"})),
    "HTTP/0.9 permitted": (("--permit-unconventional-http-version",), _line(version="0.9"),
                           (200, {"REQUEST_METHOD": "GET"})),
    "underscore dropped": ((), _line("GET", "1.1", "X_Custom: 1"), (200, {"REQUEST_METHOD": "GET"})),
    "underscore dropped, said": (("--header-map", "drop"), _line("GET", "1.1", "X_Custom: 1"),
                                 (200, {"REQUEST_METHOD": "GET"})),
    "underscore refused": (("--header-map", "REFUSE"), _line("GET", "1.1", "X_Custom: 1"),
                           (400, None)),
    "space before colon refused": ((), _line("GET", "1.1", "X-Custom : 1"), (400, None)),
}


@pytest.mark.parametrize("case", sorted(BOTH))
def test_pronghorn_answers_as_expected(start_server, case: str) -> None:  # type: ignore[no-untyped-def]
    flags, raw, expected = BOTH[case]
    _, (ours,) = start_server(APP, *flags)
    assert _answer(ours, raw) == expected


@needs_gunicorn
@pytest.mark.parametrize("case", sorted(BOTH))
def test_gunicorn_answers_the_same(start_gunicorn, worker_class: str, case: str) -> None:  # type: ignore[no-untyped-def]
    """The expectations above are Gunicorn's: it answers each the same way."""
    if worker_class != "sync":
        pytest.skip("Gunicorn's answer does not depend on our worker class")
    flags, raw, expected = BOTH[case]
    assert _answer(start_gunicorn(APP, *flags), raw) == expected


def test_an_unconventional_version_is_505_by_default(start_server) -> None:  # type: ignore[no-untyped-def]
    """Gunicorn answers 400; pronghorn 505 (RFC 9110 15.6.6: the version is not supported)."""
    _, (ours,) = start_server(APP)
    assert _answer(ours, _line(version="2.0"))[0] == 505


@pytest.mark.parametrize("flags, named", [
    (("--strip-header-spaces",), "strip_header_spaces is accepted but not applied"),
    (("--header-map", "dangerous"), "header_map = 'dangerous' is accepted but not applied"),
])
def test_smuggling_leniencies_are_accepted_logged_once_and_not_applied(  # type: ignore[no-untyped-def]
        start_server, flags: tuple[str, ...], named: str) -> None:
    server, (ours,) = start_server(APP, *flags)
    assert _answer(ours, _line("GET", "1.1", "X-Custom : 1"))[0] == 400
    assert _answer(ours, _line("GET", "1.1", "X_Custom: 1")) == (200, {"REQUEST_METHOD": "GET"})
    server.wait_for_line(named)
    assert server.output.count(named) == 1


def test_a_config_file_sets_them_as_gunicorn_reads_them(start_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "lenient.conf.py"
    conf.write_text("permit_obsolete_folding = True\nheader_map = 'refuse'\n"
                    "strip_header_spaces = False\nhttp_parser = 'auto'\n")
    server, (ours,) = start_server(APP, "-c", str(conf))
    assert _answer(ours, FOLDED)[0] == 200
    assert _answer(ours, _line("GET", "1.1", "X_Custom: 1"))[0] == 400
    assert "accepted" not in server.output  # nothing asked for that is not applied


@pytest.mark.parametrize("value", ["python", "fast"])
def test_http_parser_is_accepted_and_said_to_be_ours(start_server, value: str) -> None:  # type: ignore[no-untyped-def]
    server, (ours,) = start_server(APP, "--http-parser", value)
    assert _answer(ours, _line())[0] == 200
    server.wait_for_line(f"http_parser = '{value}' is accepted and ignored")


def test_http_parser_refuses_what_gunicorn_refuses() -> None:
    result = subprocess.run([sys.executable, "-m", "pronghorn", "--http-parser", "llhttp", APP],
                            capture_output=True, text=True, timeout=60, cwd=str(APPS))
    assert result.returncode != 0
    assert "--http-parser: 'llhttp' is not one of auto, fast, python" in result.stderr

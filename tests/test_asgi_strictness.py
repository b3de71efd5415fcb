"""The strictness suites against the asgi worker: Gunicorn's request corpus (test_conformance.py's
cases and expectations, unchanged) and the smuggling requests of test_http_wire.py, with an ASGI
echo app (tests/apps/asgi_echo.py) in place of the WSGI one. The HTTP core is the same, so the
answers must be too; what differs is that the app is called at the head and a body streams in,
so a body that breaks its framing after the head must still get one error response and a close."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from conftest import Server, exchange, wait_ready
import test_conformance
from test_conformance import (BY_NAME, CASES, CORPUS, STRICTER, STRICTER_WITH_HOST, check_invalid,
                              check_valid, needs_host, server_flags, with_host_in_invalid,
                              with_host_in_valid)
from test_http_wire import BAD_REQUESTS, one_error_response


@pytest.fixture(scope="module")
def asgi_server_for() -> Iterator[Callable[[tuple[str, ...]], str]]:
    """flags → the address of a running asgi echo server; one process per combination."""
    servers: list[Server] = []
    addresses: dict[tuple[str, ...], str] = {}

    def get(flags: tuple[str, ...]) -> str:
        if flags not in addresses:
            server = Server(["-k", "asgi", "-b", "127.0.0.1:0", "-w", "1", *flags,
                             "asgi_echo:app"])
            servers.append(server)
            address = server.addresses(1)[0]
            wait_ready(address)
            addresses[flags] = address
        return addresses[flags]

    yield get
    for server in servers:
        server.stop()


def _asgi_target(target: str) -> str:
    """What an ASGI app can know of a request target: raw_path and query_string, so no fragment
    and, for an absolute-form target, no scheme and authority (the scope's Host says that)."""
    target = target.split("#", 1)[0]
    for scheme in ("http://", "https://"):
        if target.lower().startswith(scheme):
            rest = target[len(scheme):]
            slash = rest.find("/")
            target = rest[slash:] if slash >= 0 else "/"
    return target


@pytest.fixture(autouse=True)
def _scope_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    """test_conformance's check of a served request, with the target as an ASGI app sees it."""
    served = test_conformance.check_served

    def check(response: Any, request: dict[str, Any], case: str) -> None:
        served(response, dict(request, target=_asgi_target(request["target"])), case)

    monkeypatch.setattr(test_conformance, "check_served", check)


def _cases() -> list[Any]:
    if not CASES:
        return [pytest.param(None, id="corpus-missing")]
    return [pytest.param(case, id=case["name"]) for case in CASES]


@pytest.mark.parametrize("case", _cases())
def test_corpus_case_under_asgi(case: dict[str, Any] | None,
                                asgi_server_for: Callable[[tuple[str, ...]], str]) -> None:
    if case is None:
        pytest.skip(f"conformance corpus not found at {CORPUS}")
    address = asgi_server_for(server_flags(case))
    name = case["name"]
    raw = case["raw"].encode("latin-1")
    if case["kind"] == "invalid":
        check_invalid(address, name, raw, case["error"])
        hosted = with_host_in_invalid(case)
        if hosted is not None:
            check_invalid(address, f"{name} with Host", hosted, case["error"])
        return
    requests = case["requests"]
    check_valid(address, name, raw, requests, STRICTER.get(name))
    if any(needs_host(request) for request in requests):
        hosted, hosted_requests = with_host_in_valid(case)
        check_valid(address, f"{name} with Host", hosted, hosted_requests,
                    STRICTER_WITH_HOST.get(name))
    assert BY_NAME[name] is case


@pytest.fixture(scope="module")
def asgi_address() -> Iterator[str]:
    server = Server(["-k", "asgi", "-b", "127.0.0.1:0", "-w", "1", "asgi_echo:app"])
    address = server.addresses(1)[0]
    wait_ready(address)
    yield address
    server.stop()


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_bad_framing_under_asgi_gets_one_error_response_and_a_close(asgi_address: str,
                                                                   name: str) -> None:
    status, raw = BAD_REQUESTS[name]
    data = exchange(asgi_address, raw + b"GET /must-not-be-served HTTP/1.1\r\nHost: t\r\n\r\n")
    assert one_error_response(data).status == status, data
    assert b"must-not-be-served" not in data


def test_a_chunked_body_broken_after_the_head_is_refused_once(asgi_address: str) -> None:
    """The app already runs (the body streams) when the bad chunk comes: still one 400 and the
    close, and the request after it is never parsed."""
    from conftest import connect

    with connect(asgi_address) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n")
        sock.sendall(b"zz\r\nabc\r\n0\r\n\r\nGET /must-not-be-served HTTP/1.1\r\nHost: t\r\n\r\n")
        data = b""
        while True:
            try:
                piece = sock.recv(65536)
            except ConnectionResetError:
                break
            if not piece:
                break
            data += piece
    assert one_error_response(data).status == 400, data
    assert b"must-not-be-served" not in data

"""Replay Gunicorn's request corpus (tests/conformance/gunicorn-requests.json, vendored from ../shared/conformance) against a real server.

Every case is sent as raw bytes on a fresh TCP connection to a real `pronghorn` process running the echo
app; the write side is then shut (so an incomplete request ends) and everything the server sends until
it closes is read back and parsed.

- valid cases: one 200 per expected request, in order, whose JSON says the app saw exactly the method,
  target, protocol, headers and body the corpus expects.
- invalid cases: exactly one error response, announcing ``Connection: close``, then the close.
- Where pronghorn is deliberately stricter than Gunicorn (RFC 9110/9112), the stricter answer is asserted
  explicitly: see STRICTER and STRICTER_WITH_HOST below.
- Gunicorn's leniency switches (permit_obsolete_folding, header_map, casefold_http_method, ...) are
  passed as the case asks; the two pronghorn accepts but does not apply (strip_header_spaces,
  header_map = 'dangerous') are listed like any other deliberate difference.
- Cases that need a feature that comes later are skipped with why (LATER; none today).

One server process is started per distinct settings combination and reused by every case that needs it.
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from conftest import Server, connect, wait_ready

# Vendored beside this file (with its license, conformance/NOTICE.md), so a fresh clone runs it.
CORPUS = Path(__file__).resolve().parent / "conformance" / "gunicorn-requests.json"
TIMEOUT = 10.0  # a failure guard on every socket operation, never a wait for an outcome

# The same tests under every worker class (sync, gthread, gevent).
pytestmark = pytest.mark.usefixtures("worker_class")

# -- the corpus ------------------------------------------------------------------------------------------


def _load_cases() -> list[dict[str, Any]]:
    if not CORPUS.is_file():
        return []
    return json.loads(CORPUS.read_text(encoding="utf-8"))["cases"]


CASES = _load_cases()
BY_NAME = {case["name"]: case for case in CASES}

# -- settings --------------------------------------------------------------------------------------------

# Gunicorn settings a case may assume, and the pronghorn flag that sets each one.
FLAGS = {
    "limit_request_line": "--limit-request-line",
    "limit_request_fields": "--limit-request-fields",
    "limit_request_field_size": "--limit-request-field_size",
    "proxy_protocol": "--proxy-protocol",
    "forwarded_allow_ips": "--forwarded-allow-ips",
    # Gunicorn's leniencies: each off by default, as in Gunicorn.
    "permit_obsolete_folding": "--permit-obsolete-folding",
    "permit_unconventional_http_method": "--permit-unconventional-http-method",
    "permit_unconventional_http_version": "--permit-unconventional-http-version",
    "casefold_http_method": "--casefold-http-method",
    "header_map": "--header-map",
    "strip_header_spaces": "--strip-header-spaces",  # accepted, not applied: see STRICTER_WITH_HOST
}
# The settings among FLAGS whose flag is a switch (given alone when on) rather than "--flag=value".
SWITCHES = {
    "permit_obsolete_folding", "permit_unconventional_http_method",
    "permit_unconventional_http_version", "casefold_http_method", "strip_header_spaces",
}
# Features that are real but belong to a later issue.
LATER: dict[str, str] = {}


def server_flags(case: dict[str, Any]) -> tuple[str, ...]:
    """The command-line flags a case needs; skips the case when it needs something pronghorn lacks."""
    settings = case["settings"]
    for name, reason in LATER.items():
        if name in settings:
            pytest.skip(reason)
    unknown = settings.keys() - FLAGS.keys()
    assert not unknown, f"the corpus uses settings this test does not know: {sorted(unknown)}"
    flags = []
    for name in sorted(settings):
        value = settings[name]
        if name in SWITCHES:
            flags += [FLAGS[name]] if value else []
        else:
            flags.append(f"{FLAGS[name]}={value}")
    return tuple(flags)


# -- deliberately stricter than Gunicorn -----------------------------------------------------------------

_NO_HOST = ("RFC 9112 3.2: a server MUST answer an HTTP/1.1 request that lacks Host with 400 "
            "(replayed with Host inserted, too)")
_GZIP = ("we do not decode gzip request bodies and will not hand the app a still-encoded body as if it "
         "were plain; RFC 9112 6.1: 501 for a transfer coding the server does not understand")
_CONTENT_TYPE_TRAILER = ("RFC 9110 6.5.1: Content-Type says how to process the content, so its definition "
                         "does not permit it in a trailer and a sender MUST NOT put it there; pronghorn "
                         "refuses a request with such a trailer field rather than silently dropping it")
_STRIP_HEADER_SPACES = ("strip_header_spaces is accepted but not applied: whitespace between a field "
                        "name and ':' is a request-smuggling vector (RFC 9112 5.1: a server MUST "
                        "answer 400)")
_DANGEROUS_HEADER_MAP = ("header_map = 'dangerous' acts as 'drop': a name with '_' would share its "
                         "environ key with its '-' twin (Content_Length posing as Content-Length), so "
                         "the app never sees it")

# The valid cases pronghorn answers differently on purpose: case name → (status, why). The status is
# the answer to the first request that trips the rule (any requests before it are served normally);
# the connection is then closed.
STRICTER: dict[str, tuple[int, str]] = {
    # HTTP/1.1 without Host.
    "valid/004.http": (400, _NO_HOST),
    "valid/005.http": (400, _NO_HOST),
    "valid/006.http": (400, _NO_HOST),
    "valid/007.http": (400, _NO_HOST),
    "valid/009.http": (400, _NO_HOST),   # also Content-Length with Transfer-Encoding: see below
    "valid/010.http": (400, _NO_HOST),
    "valid/011.http": (400, _NO_HOST),
    "valid/012.http": (400, _NO_HOST),
    "valid/013.http": (400, _NO_HOST),
    "valid/014.http": (400, _NO_HOST),
    "valid/018.http": (400, _NO_HOST),
    "valid/021.http": (400, _NO_HOST),
    "valid/022.http": (400, _NO_HOST),   # the HTTP/1.0 keep-alive request is served; /second is refused
    "valid/023.http": (400, _NO_HOST),
    "valid/025.http": (400, _NO_HOST),
    "valid/025_line.http": (400, _NO_HOST),
    "valid/029.http": (400, _NO_HOST),
    "valid/030.http": (400, _NO_HOST),
    "valid/031.http": (400, _NO_HOST),
    "valid/100.http": (400, _NO_HOST),
    "valid/pp_02.http": (400, _NO_HOST),
    "valid/028.http": (400, _NO_HOST),   # also whitespace before ':': see below
    "valid/031compat.http": (400, _NO_HOST),
    "valid/031compat2.http": (400, _NO_HOST),
    "valid/compat_obs_fold_huge.http": (400, _NO_HOST),
    # A transfer coding we do not implement.
    "valid/rfc9112_smuggle_gzip_chunked_01.http": (501, _GZIP),
    # --proxy-protocol makes the header required: Gunicorn lets a connection without one through,
    # which lets any client that reaches the port skip the proxy and keep its own address.
    "valid/pp_03.http": (400, "with --proxy-protocol every connection must start with a PROXY "
                              "header; one that does not is refused and closed"),
    # The connection is half-closed before the body reaches its Content-Length.
    "valid/099.http": (400, "RFC 9112 8: a body shorter than its Content-Length is an incomplete "
                            "message; the app never sees a truncated body"),
}

# The same, for the replay of a Host-less case with "Host:" inserted: a second rule it still trips.
STRICTER_WITH_HOST: dict[str, tuple[int, str]] = {
    # Transfer-Encoding together with Content-Length.
    "valid/009.http": (400, "RFC 9112 6.1: Transfer-Encoding with Content-Length is how requests are "
                            "smuggled; we refuse the pair rather than guess which one frames the body"),
    "valid/025.http": (501, _GZIP),
    "valid/025_line.http": (501, _GZIP),
    "valid/012.http": (400, _CONTENT_TYPE_TRAILER),
    # "Content-Length : 3" with --strip-header-spaces.
    "valid/028.http": (400, _STRIP_HEADER_SPACES),
}

# Valid cases served, but with less in the environ than Gunicorn would give the app, on purpose:
# case name → why. What the app sees is what expected_headers() says (names with '_' dropped).
ENVIRON_DIFFERS: dict[str, str] = {
    "valid/040_compat.http": _DANGEROUS_HEADER_MAP,   # header_map = 'dangerous'
}

# -- what an invalid case may be answered with -----------------------------------------------------------

# Gunicorn's error name → the statuses that say the same thing.
ERROR_STATUSES: dict[str, frozenset[int]] = {
    "LimitRequestLine": frozenset({414}),
    # 400 when the field is refused for its syntax before its size is counted.
    "LimitRequestHeaders": frozenset({431, 400}),
    "InvalidHTTPVersion": frozenset({400, 505}),
    "InvalidRequestLine": frozenset({400}),
    "InvalidRequestMethod": frozenset({400}),
    "InvalidHeader": frozenset({400}),
    "InvalidHeaderName": frozenset({400}),
    "InvalidChunkSize": frozenset({400}),
    "InvalidChunkExtension": frozenset({400}),
    "ChunkMissingTerminator": frozenset({400}),
    "NoMoreData": frozenset({400}),
    "ObsoleteFolding": frozenset({400}),
    "InvalidProxyLine": frozenset({400}),
    "InvalidSchemeHeaders": frozenset({400}),
}
# Unsupported transfer codings (RFC 9112 6.1) are a 501, not a 400.
TRANSFER_CODING_STATUSES = frozenset({400, 501})
_UNSUPPORTED_CODING = re.compile(rb"\r\ntransfer-encoding:[^\r\n]*\b(?:gzip|deflate|compress|br)\b",
                                 re.IGNORECASE)

# -- known bugs ------------------------------------------------------------------------------------------

# Cases where pronghorn is wrong today. Strict xfail: the day the bug is fixed the case passes, the run
# fails, and the entry goes.
KNOWN_BUGS: dict[str, str] = {}

# -- talking to the server -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_for(worker_class: str) -> Iterator[Callable[[tuple[str, ...]], str]]:
    """flags → the address of a running echo server started with them; one process per combination."""
    servers: list[Server] = []
    addresses: dict[tuple[str, ...], str | BaseException] = {}

    def get(flags: tuple[str, ...]) -> str:
        if flags not in addresses:
            server = Server(["-b", "127.0.0.1:0", "-w", "1", *flags, "echo:app"])
            servers.append(server)
            try:
                address = server.addresses(1)[0]
                wait_ready(address)
            except BaseException as exc:  # remembered, so the next case does not start another
                addresses[flags] = exc
                raise
            addresses[flags] = address
        found = addresses[flags]
        if isinstance(found, BaseException):
            raise AssertionError(f"the server with {flags} did not start") from found
        return found

    yield get
    for server in servers:
        server.stop()


def replay(address: str, raw: bytes) -> bytes:
    """Send raw on a fresh connection, shut the write side, read until the server closes."""
    chunks = []
    with connect(address, TIMEOUT) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break  # closed with our input unread; whatever arrived before is what we check
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]  # names lower-cased
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for n, v in self.headers if n == name]
        return ",".join(values) if values else None

    def json(self) -> dict[str, Any]:
        assert self.status == 200, f"{self.status}: {self.body!r}"
        return json.loads(self.body)


def parse_responses(data: bytes) -> list[Response]:
    """Split what the server sent into responses. Every final response here carries Content-Length
    (the echo app sets it, error responses have it); 1xx interim responses have no body."""
    responses = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        assert end >= 0, f"truncated response head: {data[pos:]!r}"
        status_line, *lines = data[pos:end].decode("latin-1").split("\r\n")
        match = re.fullmatch(r"HTTP/1\.[01] (\d{3})(?: .*)?", status_line)
        assert match, f"bad status line: {status_line!r}"
        status = int(match.group(1))
        headers = []
        for line in lines:
            name, colon, value = line.partition(":")
            assert colon and name == name.strip(), f"bad response header line: {line!r}"
            headers.append((name.lower(), value.strip(" \t")))
        pos = end + 4
        if 100 <= status < 200:
            continue
        response = Response(status, headers, b"")
        length = response.header("content-length")
        assert length is not None and length.isdigit(), f"response without Content-Length: {headers}"
        response.body = data[pos:pos + int(length)]
        assert len(response.body) == int(length), f"truncated response body: {data[pos:]!r}"
        pos += int(length)
        responses.append(response)
    return responses


# -- expectations ----------------------------------------------------------------------------------------


def is_chunked(request: dict[str, Any]) -> bool:
    codings = [c.strip().lower() for name, value in request["headers"] if name == "TRANSFER-ENCODING"
               for c in value.split(",")]
    return bool(codings) and codings[-1] == "chunked"


def has_host(request: dict[str, Any]) -> bool:
    return any(name == "HOST" for name, _ in request["headers"])


def needs_host(request: dict[str, Any]) -> bool:
    return request["version"] == [1, 1] and not has_host(request)


def expected_headers(request: dict[str, Any]) -> list[list[str]]:
    """The corpus's header list in environ form, as the echo app reports it (sorted [key, value])."""
    environ: dict[str, str] = {}
    for name, value in request["headers"]:
        if "_" in name:
            # by design: X_Foo would pose as X-Foo once mapped, so it is dropped (also with
            # header_map = 'dangerous': see ENVIRON_DIFFERS)
            continue
        key = name.replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        if key in environ:
            # repeated fields are one list (RFC 9110 5.3); Cookie's own list separator is "; "
            environ[key] += ("; " if key == "HTTP_COOKIE" else ",") + value
        else:
            environ[key] = value
    if is_chunked(request):
        # The body is complete before the app runs, so the server tells it the decoded length.
        environ["CONTENT_LENGTH"] = str(len(request["body"]))
    return sorted([key, value] for key, value in environ.items())


def check_served(response: Response, request: dict[str, Any], case: str) -> None:
    seen = response.json()
    want = {
        "method": request["method"],
        "raw_uri": request["target"],
        "protocol": "HTTP/%d.%d" % tuple(request["version"]),
        "headers": expected_headers(request),
        "body": request["body"],
    }
    got = {key: seen[key] for key in want}
    assert got == want, f"{case}: the app saw something else"


def check_refused(response: Response, status: int | frozenset[int], case: str) -> None:
    allowed = {status} if isinstance(status, int) else status
    assert response.status in allowed, (
        f"{case}: answered {response.status} ({response.body!r}), expected {sorted(allowed)}")
    connection = (response.header("connection") or "").lower()
    assert "close" in [token.strip() for token in connection.split(",")], (
        f"{case}: an error response must announce Connection: close, got {response.headers}")


def host_line(case: dict[str, Any]) -> bytes:
    """The Host field we insert; short when the case's field-size limit would refuse the usual one."""
    limit = case["settings"].get("limit_request_field_size")
    if limit and limit < 32:
        return b"Host: t\r\n"
    return b"Host: conformance.test\r\n"


def with_host_in_valid(case: dict[str, Any]) -> tuple[bytes, list[dict[str, Any]]]:
    """The case's bytes with a Host field after the request line of each HTTP/1.1 request lacking one,
    and the expected requests to match. Request lines are found in order from the corpus's own
    description of the requests, so a body that happens to contain one is never touched."""
    raw = case["raw"].encode("latin-1")
    # The corpus gives a casefolded method as the app sees it; the bytes have it as sent.
    casefold = case["settings"].get("casefold_http_method", False)
    haystack = raw.upper() if casefold else raw  # (same length: latin-1 bytes, ASCII case only)
    line_to_add = host_line(case)
    host = line_to_add[len(b"Host: "):-2].decode("latin-1")
    out = bytearray()
    cursor = 0
    requests = []
    for request in case["requests"]:
        line = ("%s %s HTTP/%d.%d\r\n" % (request["method"], request["target"],
                                          *request["version"])).encode("latin-1")
        at = haystack.find(line.upper() if casefold else line, cursor)
        assert at >= 0, f"request line {line!r} not found in {case['name']}"
        end = at + len(line)
        out += raw[cursor:end]
        cursor = end
        if needs_host(request):
            out += line_to_add
            request = dict(request, headers=[["HOST", host]] + request["headers"])
        requests.append(request)
    out += raw[cursor:]
    return bytes(out), requests


def with_host_in_invalid(case: dict[str, Any]) -> bytes | None:
    """For an HTTP/1.1 request without Host: its bytes with Host after the first line; else None."""
    raw = case["raw"].encode("latin-1")
    first_end = raw.find(b"\r\n")
    if first_end < 0 or not raw[:first_end].endswith(b" HTTP/1.1"):
        return None
    head_end = raw.find(b"\r\n\r\n")
    head = raw[:head_end if head_end >= 0 else len(raw)]
    if re.search(rb"\r\nhost[ \t]*:", head, re.IGNORECASE):
        return None
    return raw[:first_end + 2] + host_line(case) + raw[first_end + 2:]


# -- checks ----------------------------------------------------------------------------------------------


def check_valid(address: str, name: str, raw: bytes, requests: list[dict[str, Any]],
                stricter: tuple[int, str] | None) -> None:
    responses = parse_responses(replay(address, raw))
    if stricter is None:
        assert len(responses) == len(requests), (
            f"{name}: {len(responses)} responses for {len(requests)} requests: "
            f"{[(r.status, r.body[:200]) for r in responses]}")
        for response, request in zip(responses, requests):
            check_served(response, request, name)
        return
    status, why = stricter
    assert responses, f"{name}: no response at all, expected {status} ({why})"
    *served, refused = responses
    for response, request in zip(served, requests):
        check_served(response, request, name)
    if status == 400 and why is _NO_HOST:
        first = next(i for i, request in enumerate(requests) if needs_host(request))
        assert len(served) == first, f"{name}: {len(served)} served before the request without Host"
    check_refused(refused, status, f"{name} ({why})")


def check_invalid(address: str, name: str, raw: bytes, error: str) -> None:
    allowed = ERROR_STATUSES.get(error)
    assert allowed is not None, f"{name}: no status mapping for Gunicorn's {error}"
    if _UNSUPPORTED_CODING.search(raw):
        allowed = allowed | TRANSFER_CODING_STATUSES
    responses = parse_responses(replay(address, raw))
    assert len(responses) == 1, (
        f"{name}: expected exactly one error response, got "
        f"{[(r.status, r.body[:200]) for r in responses]}")
    # replay() returned, so the server closed the connection after this one response.
    check_refused(responses[0], allowed, f"{name} ({error})")


# -- the tests -------------------------------------------------------------------------------------------


def _params() -> list[Any]:
    if not CASES:
        return [pytest.param(None, id="corpus-missing")]
    return [
        pytest.param(case, id=case["name"], marks=[pytest.mark.xfail(
            reason=KNOWN_BUGS[case["name"]], strict=True)] if case["name"] in KNOWN_BUGS else [])
        for case in CASES
    ]


@pytest.mark.parametrize("case", _params())
def test_corpus_case(case: dict[str, Any] | None, server_for: Callable[[tuple[str, ...]], str]) -> None:
    if case is None:
        pytest.skip(f"conformance corpus not found at {CORPUS}")
    flags = server_flags(case)
    address = server_for(flags)
    name = case["name"]
    raw = case["raw"].encode("latin-1")

    if case["kind"] == "invalid":
        check_invalid(address, name, raw, case["error"])
        hosted = with_host_in_invalid(case)
        if hosted is not None:
            # Refused for its own fault, not merely for lacking Host.
            check_invalid(address, f"{name} with Host", hosted, case["error"])
        return

    assert case["kind"] == "valid", case["kind"]
    requests = case["requests"]
    check_valid(address, name, raw, requests, STRICTER.get(name))
    if any(needs_host(request) for request in requests):
        hosted, hosted_requests = with_host_in_valid(case)
        check_valid(address, f"{name} with Host", hosted, hosted_requests, STRICTER_WITH_HOST.get(name))


def test_stricter_table_matches_corpus() -> None:
    """The tables name exactly the corpus's Host-less HTTP/1.1 cases, and no case that is not there;
    every case with a leniency pronghorn accepts but does not apply is in a table."""
    if not CASES:
        pytest.skip(f"conformance corpus not found at {CORPUS}")
    runnable = {
        case["name"] for case in CASES
        if case["kind"] == "valid" and not (case["settings"].keys() & LATER.keys())
    }
    host_less = {name for name in runnable if any(needs_host(r) for r in BY_NAME[name]["requests"])}
    listed = {name for name, (_, why) in STRICTER.items() if why is _NO_HOST}
    assert listed == host_less
    assert set(STRICTER) <= runnable
    assert set(STRICTER_WITH_HOST) <= host_less
    unapplied = {name for name in runnable if BY_NAME[name]["settings"].get("strip_header_spaces")}
    assert unapplied <= {name for name, (_, why) in STRICTER_WITH_HOST.items()
                         if why is _STRIP_HEADER_SPACES}
    dangerous = {name for name in runnable
                 if BY_NAME[name]["settings"].get("header_map") == "dangerous"}
    assert set(ENVIRON_DIFFERS) == dangerous

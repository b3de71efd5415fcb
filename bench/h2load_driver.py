"""The HTTP/2 load of the h2 scenarios: h2load (nghttp2) for the load, python-hyper's h2 for the probe.

wrk speaks HTTP/1.1 only, so the h2 scenarios (h2-hello, asgi-h2-hello, h2-tls-hello) are driven by
h2load (Debian's ``nghttp2-client``) instead: N connections, each keeping M streams in flight, in
cleartext with prior knowledge (h2c) so that TLS is not part of what is measured, or, for
h2-tls-hello, over TLS with HTTP/2 chosen by ALPN (as a browser or a TLS proxy connects). This module
builds its command line and reads its output; the harness (bench/harness.py) does the rest as
it does for wrk. It imports nothing from pronghorn: the servers are measured from the outside.

h2load prints no percentiles, only mean, sd and max per request; ``--log-file`` writes one row
per request (start, status, microseconds to the end of the response), from which p50, p99 and
p99.9 are taken here, so the columns mean what wrk's do.

A run in which any request failed, errored or timed out, or was answered other than 2xx/3xx,
is invalid (``InvalidRun``): a rate earned by dropping streams is not a rate.
"""

from __future__ import annotations

import math
import re
import shutil
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

H2LOAD = shutil.which("h2load") or ("/usr/bin/h2load" if Path("/usr/bin/h2load").exists() else None)
INSTALL_HINT = "apt-get install -y nghttp2-client"


class InvalidRun(Exception):
    """h2load could not run, or its run dropped, failed or refused requests."""


@dataclass(frozen=True)
class H2loadResult:
    rps: float
    done: int  # requests completed in the measured run
    p50_ms: float
    p99_ms: float
    p999_ms: float


def argv(host: str, port: int, path: str, connections: int, streams: int, seconds: float,
         log_file: Path | None = None, tls: bool = False) -> list[str]:
    """h2load's command line: ``connections`` h2c connections, ``streams`` in flight on each, for
    ``seconds`` (whole seconds, at least one, as wrk's -d), one client thread (it is pinned to one CPU)."""
    command = [H2LOAD or "h2load", "-t", "1", "-c", str(connections), "-m", str(streams),
               "-D", str(max(1, round(seconds)))]
    if log_file is not None:
        command += ["--log-file", str(log_file)]
    # An http:// URI is h2c with prior knowledge: h2load sends the connection preface at once;
    # an https:// one is TLS, HTTP/2 offered by ALPN (h2load does not check the certificate).
    return [*command, f"{'https' if tls else 'http'}://{host}:{port}{path}"]


_FINISHED = re.compile(r"^finished in [\d.]+\w*, ([\d.]+) req/s", re.MULTILINE)
_REQUESTS = re.compile(
    r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, "
    r"(\d+) timeout", re.MULTILINE)
_STATUS = re.compile(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", re.MULTILINE)
_PROTOCOL = re.compile(r"^Application protocol: (\S+)", re.MULTILINE)


def parse(output: str, protocol_wanted: str = "h2c") -> tuple[float, int]:
    """req/s and requests done, from h2load's summary; InvalidRun unless every request succeeded in
    ``protocol_wanted`` (h2c; h2 over TLS)."""
    finished = _FINISHED.search(output)
    requests = _REQUESTS.search(output)
    status = _STATUS.search(output)
    if not (finished and requests and status):
        raise InvalidRun(f"could not read h2load's output: {output.strip()[-300:]!r}")
    protocol = _PROTOCOL.search(output)
    if protocol is None or protocol.group(1) != protocol_wanted:
        # Over TLS h2load falls back to HTTP/1.1 when the server's ALPN does not choose h2: not this scenario.
        raise InvalidRun(f"h2load did not speak {protocol_wanted} "
                         f"(application protocol: {protocol.group(1) if protocol else '?'})")
    _total, _started, done, succeeded, failed, errored, timeout = (int(n) for n in requests.groups())
    _ok2, _ok3, client_errors, server_errors = (int(n) for n in status.groups())
    if failed or errored or timeout or client_errors or server_errors or done == 0:
        raise InvalidRun(
            f"invalid run: {done} done, {succeeded} succeeded, {failed} failed, {errored} errored, {timeout} timeout, "
            f"{client_errors} 4xx, {server_errors} 5xx")
    return float(finished.group(1)), done


def percentiles(log_file: Path) -> tuple[float, float, float]:
    """p50, p99 and p99.9 in ms of the per-request times in h2load's --log-file (nearest rank)."""
    times: list[int] = []
    for line in log_file.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 3:
            times.append(int(fields[2]))
    if not times:
        raise InvalidRun("h2load's log file has no requests")
    times.sort()

    def rank(fraction: float) -> float:
        index = min(len(times) - 1, max(0, math.ceil(len(times) * fraction) - 1))
        return times[index] / 1000

    return rank(0.50), rank(0.99), rank(0.999)


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate and its key (PKCS#8, which Granian requires) for 127.0.0.1, made
    once per run with the openssl command; InvalidRun when it cannot be made."""
    cert, key = directory / "tls-cert.pem", directory / "tls-key.pem"
    if not cert.exists():
        try:
            done = subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1"],
                capture_output=True, text=True, check=False)
        except OSError as exc:
            raise InvalidRun(f"could not run openssl to make a TLS certificate ({exc})") from exc
        if done.returncode != 0 or not cert.exists():
            raise InvalidRun(f"could not make a TLS certificate with openssl: {done.stderr.strip()[-200:]}")
    return cert, key


def run(command: list[str], timeout: float) -> str:
    """Run h2load (``command`` as argv() makes it, maybe behind taskset); its stdout."""
    if H2LOAD is None:
        raise InvalidRun(f"h2load is not installed ({INSTALL_HINT})")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InvalidRun(f"h2load did not finish within {timeout:.0f} s (its streams or its connections' close stalled)") from exc
    if done.returncode != 0:
        raise InvalidRun(f"h2load failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-200:]}")
    return done.stdout


def measure(command: list[str], log_file: Path, timeout: float, protocol_wanted: str = "h2c") -> H2loadResult:
    """One measured run: its rate from h2load's summary, its latencies from its log file."""
    rps, done = parse(run(command, timeout), protocol_wanted)
    p50, p99, p999 = percentiles(log_file)
    return H2loadResult(rps, done, p50, p99, p999)


def probe(host: str, port: int, path: str, timeout: float = 10.0, tls: bool = False) -> tuple[int, bytes]:
    """One GET over a new h2c (prior knowledge) connection, or with ``tls`` over TLS with h2 chosen
    by ALPN: the status and body of the answer.

    OSError while the server is not up yet (the harness polls on it); ValueError when it answers
    but not in HTTP/2, or resets the stream.
    """
    import h2.config
    import h2.connection
    import h2.events
    import h2.exceptions

    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock = raw
        if tls:
            # The benchmark's own self-signed certificate: nothing to verify it against.
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["h2"])
            sock = context.wrap_socket(raw)
            if sock.selected_alpn_protocol() != "h2":
                raise ValueError(f"ALPN chose {sock.selected_alpn_protocol()!r}, not h2")
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        conn.initiate_connection()
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [(b":method", b"GET"), (b":scheme", b"https" if tls else b"http"),
                                   (b":authority", f"{host}:{port}".encode()), (b":path", path.encode())],
                          end_stream=True)
        sock.sendall(conn.data_to_send())
        status = 0
        body = bytearray()
        while True:
            data = sock.recv(65536)
            if not data:
                raise ConnectionResetError("the server closed the connection before its answer ended")
            try:
                events = conn.receive_data(data)
            except h2.exceptions.ProtocolError as exc:
                raise ValueError(f"did not answer in HTTP/2 ({type(exc).__name__}: {data[:40]!r})") from exc
            for event in events:
                if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream:
                    status = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream:
                    body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream:
                    return status, bytes(body)
                elif isinstance(event, h2.events.StreamReset):
                    raise ValueError(f"reset the stream (error code {event.error_code})")
                elif isinstance(event, h2.events.ConnectionTerminated):
                    raise ValueError(f"ended the connection (GOAWAY, error code {event.error_code})")
            pending = conn.data_to_send()
            if pending:
                sock.sendall(pending)

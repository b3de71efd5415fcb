"""What a client's bytes must not be able to do to a worker, against a real server under every worker
class: pin its memory through a cache it fills (issue 15, defect 4).
"""

from __future__ import annotations

from typing import Iterator

import pytest

from conftest import connect
from wire import Reader, serve

APP = "behaviours:app"

pytestmark = pytest.mark.usefixtures("worker_class")


@pytest.fixture(scope="module")
def address(worker_class: str) -> Iterator[str]:
    # One worker, so that every request below reaches the process whose memory is measured.
    with serve("-b", "127.0.0.1:0", "-w", "1", APP) as (_, addresses):
        yield addresses[0]


# -- a cache the client fills ------------------------------------------------------------------------

def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


def _junk_name(serial: int) -> bytes:
    # ~8 KB and unique; the whole field line stays within --limit-request-field_size (8190).
    return b"X-Junk-%08d-" % serial + b"j" * 8000


def test_unique_header_names_do_not_pin_worker_memory(address: str) -> None:
    """1,000 requests, each with a header name never seen before (~8 KB): every cache on the way
    (the parser's, the environ's header-name mapping) is bounded in bytes, so the worker's RSS
    grows by less than 5 MiB. Unbounded, the names alone would pin ~16 MiB."""
    with connect(address) as sock:
        reader = Reader(sock)

        def get_pid(serial: int) -> int:
            sock.sendall(b"GET /pid HTTP/1.1\r\nHost: t\r\n" + _junk_name(serial) + b": v\r\n\r\n")
            response = reader.read_response()
            assert response.status == 200, response
            return int(response.body)

        # Warm up first, so that what is measured is growth, not the first requests' buffers.
        pid = get_pid(0)
        for serial in range(1, 200):
            assert get_pid(serial) == pid
        before = _rss_kib(pid)
        for serial in range(200, 1200):
            assert get_pid(serial) == pid  # the same worker throughout
        grown = _rss_kib(pid) - before
    assert grown < 5 * 1024, f"the worker's RSS grew by {grown} KiB"

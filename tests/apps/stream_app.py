"""Streamed bodies for tests/test_streaming.py: many pieces whose order shows, pieces mixed with
write(), and a generator that waits for the client to have seen its first piece."""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import parse_qs

StartResponse = Callable[..., Callable[[bytes], None]]


def piece(number: int, size: int) -> bytes:
    """Piece ``number`` of a body: its number first, so that a lost or reordered piece shows."""
    head = b"<%d>" % number
    return head + b"." * max(0, size - len(head))


def pieces(count: int, size: int) -> Iterator[bytes]:
    for number in range(count):
        yield piece(number, size)
        if number % 7 == 3:
            yield b""  # an empty piece must not end a chunked body early


def _waited(marker: str, mode: str) -> bool:
    """Wait until the file ``marker`` exists (the client read the first piece), for 20 s at most:
    sleeping (the app blocks outside Python) or spinning (the app computes in Python)."""
    deadline = time.monotonic() + 20
    while not os.path.exists(marker):
        if time.monotonic() > deadline:
            return False
        if mode == "sleep":
            time.sleep(0.005)
    return True


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    path = environ["PATH_INFO"]
    if path == "/pieces":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return pieces(int(query["count"]), int(query["size"]))
    if path == "/mixed":  # write() between yielded pieces: the bytes keep their order
        write = start_response("200 OK", [("Content-Type", "text/plain")])

        def mixed() -> Iterator[bytes]:
            for number in range(int(query["count"])):
                write(b"w%d;" % number)
                yield b"y%d;" % number

        return mixed()
    if path == "/wait":
        marker, mode = query["marker"], query["mode"]
        start_response("200 OK", [("Content-Type", "text/plain")])

        def waiting() -> Iterator[bytes]:
            yield b"first;"
            yield b"second;" if _waited(marker, mode) else b"timed-out;"

        return waiting()
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]

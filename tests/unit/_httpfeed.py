"""A tiny driver for HTTPConnection used by the unit tests: bytes in (in any pieces), outcome out.

It behaves as a real worker would: after every piece it drains events until NEED_DATA, answers each
request at PAUSED (start_next_cycle() when the request is keep-alive, else it stops as if closing),
and stops at the first HTTPError. The outcome records only what must not depend on how the bytes were
split: each finished message as (Request, body, trailers), the head of a message cut short by an error,
and the error status. Given a HeadCache (shared between feeds, as a worker shares it between its
connections), it must not change the outcome either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

from pronghorn.http import (
    END_OF_MESSAGE, NEED_DATA, PAUSED, Data, EndOfMessage, HeadCache, HTTPConnection, HTTPError, Limits,
    Request,
)


@dataclass
class Outcome:
    messages: list[tuple[Request, bytes, tuple[tuple[bytes, bytes], ...]]] = field(default_factory=list)
    unfinished: Request | None = None   # a Request whose body was cut short by an error
    error: int | None = None            # the HTTPError status, if any
    closed: bool = False                # stopped after a request that was not keep-alive
    events: list[object] = field(default_factory=list)  # every event, in order (for order checks)


def feed(pieces: Iterable[bytes], limits: Limits | None = None, eof: bool = True,
         cache: HeadCache | None = None) -> Outcome:
    conn = HTTPConnection(limits, cache)
    out = Outcome()
    current: Request | None = None
    body = bytearray()
    stream = list(pieces)
    if eof:
        stream.append(b"")
    for piece in stream:
        if piece == b"" and not eof:
            continue
        whole = conn.receive_repeated_request(piece) if piece and cache is not None else None
        if whole is not None:
            # As a worker does: a read that is a head the cache knows (and its whole body) is taken
            # at once; it must come out as the events would have.
            request, taken = whole
            assert current is None and request.shared
            out.events += [request] + ([Data(taken)] if taken else []) + [END_OF_MESSAGE, PAUSED]
            out.messages.append((request, taken, ()))
            if not request.keep_alive:
                out.closed = True
                return out
            conn.start_next_cycle()
            continue
        conn.receive_data(piece)
        while True:
            try:
                event = conn.next_event()
            except HTTPError as exc:
                out.error = exc.status
                out.unfinished = current
                _assert_dead(conn)
                return out
            out.events.append(event)
            if event is NEED_DATA:
                break
            if isinstance(event, Request):
                assert current is None, "a Request before the previous message ended"
                current = event
                body = bytearray()
            elif isinstance(event, Data):
                assert current is not None, "Data outside a message"
                assert event.data, "an empty Data event"
                body += event.data
            elif type(event) is EndOfMessage:
                assert current is not None, "EndOfMessage outside a message"
                if current.content_length is not None:
                    assert len(body) == current.content_length
                assert not event.trailers or current.chunked, "trailers on a body that was not chunked"
                out.messages.append((current, bytes(body), event.trailers))
            elif event is PAUSED:
                assert out.messages and out.messages[-1][0] is current, "PAUSED before END_OF_MESSAGE"
                assert current is not None
                if not current.keep_alive:
                    out.closed = True
                    return out
                current = None
                conn.start_next_cycle()
            else:  # pragma: no cover - an unknown event is a test failure
                raise AssertionError(f"unexpected event {event!r}")
    return out


def _assert_dead(conn: HTTPConnection) -> None:
    """After an HTTPError nothing is parsed again, whatever arrives next."""
    conn.receive_data(b"GET /after HTTP/1.1\r\nHost: a\r\n\r\n")
    for _ in range(3):
        try:
            event = conn.next_event()
        except HTTPError:
            continue
        assert event is NEED_DATA, f"the connection produced {event!r} after an error"


def split_at(data: bytes, points: Sequence[int]) -> list[bytes]:
    """Cut ``data`` at the given offsets (any order, duplicates allowed: empty pieces are skipped)."""
    cuts = sorted({p for p in points if 0 < p < len(data)})
    pieces, last = [], 0
    for cut in cuts:
        pieces.append(data[last:cut])
        last = cut
    pieces.append(data[last:])
    return [p for p in pieces if p]


def summary(outcome: Outcome) -> tuple[object, ...]:
    """What every split of the same bytes must agree on."""
    return (outcome.messages, outcome.unfinished, outcome.error, outcome.closed)

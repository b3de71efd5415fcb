"""http/ws_frames.py's fast path gives the same results as wsproto alone, on valid and invalid frames.

The reference is wsproto fed every byte (what the WebSocket session did before the fast path); the
candidate is ``ClientFrames.split`` with wsproto fed only what it passes, as the session drives them.
Both are reduced to what the session acts on: whole messages (reassembled as the session does, with
its size limit), pings, pongs, and the first close (the client's, or wsproto's protocol error: 1002,
1007...), after which nothing is read. Frames are made at random (any opcode, RSV bits, mask or
not, minimal or not lengths, valid or invalid UTF-8, fragments, control frames too long or
fragmented) and the bytes split at random points.
"""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import HealthCheck, example, given, settings, strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import (BytesMessage, CloseConnection, Message, Ping, Pong, TextMessage)
from wsproto.frame_protocol import FrameProtocol, XorMaskerSimple

from pronghorn.http.ws_frames import BINARY, PASS, TEXT, ClientFrames, server_frame, unmask


def frame(first: int, payload: bytes, key: bytes | None, length_form: int = 0) -> bytes:
    """A client frame; ``length_form`` 0: minimal length, 2 or 8: that many length bytes anyway."""
    size = len(payload)
    mask_bit = 0x80 if key is not None else 0
    if length_form == 0:
        length_form = 0 if size < 126 else 2 if size < 0x10000 else 8
    if length_form == 2 and size < 0x10000:
        head = bytes((first, mask_bit | 126)) + struct.pack("!H", size)
    elif length_form:
        head = bytes((first, mask_bit | 127)) + struct.pack("!Q", size)
    else:
        head = bytes((first, mask_bit | size))
    if key is None:
        return head + payload
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class Outcome:
    """What the session would act on, collected from wsproto's events (and the fast path's)."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.seen: list[Any] = []
        self.parts: list[Any] = []
        self.size = 0
        self.over = False

    def event(self, event: Any) -> None:
        if isinstance(event, (TextMessage, BytesMessage)):
            self.parts.append(event.data)
            self.size += len(event.data)
            if self.max_size and self.size > self.max_size:
                self.seen.append(("too big",))
                self.over = True
            elif event.message_finished:
                joined = "".join(self.parts) if isinstance(event, TextMessage) else b"".join(self.parts)
                self.seen.append(("message", joined))
                self.parts, self.size = [], 0
        elif isinstance(event, (Ping, Pong)):
            self.seen.append((type(event).__name__, bytes(event.payload)))
        elif isinstance(event, CloseConnection):
            self.seen.append(("close", event.code, event.reason))
            self.over = True


def reference(chunks: list[bytes], max_size: int) -> list[Any]:
    ws = Connection(ConnectionType.SERVER)
    outcome = Outcome(max_size)
    for chunk in chunks:
        ws.receive_data(chunk)
        for event in ws.events():
            outcome.event(event)
            if outcome.over:
                return outcome.seen
    return outcome.seen


def fast(chunks: list[bytes], max_size: int) -> list[Any]:
    ws = Connection(ConnectionType.SERVER)
    outcome = Outcome(max_size)
    frames = ClientFrames(min(max_size or 0xFFFF, 0xFFFF))
    for chunk in chunks:
        for kind, payload in frames.split(chunk):
            if kind == PASS:
                assert isinstance(payload, bytes)
                ws.receive_data(payload)
                for event in ws.events():
                    outcome.event(event)
                    if outcome.over:
                        return outcome.seen
            else:
                assert kind in (TEXT, BINARY)
                assert not outcome.parts  # (never inside a fragmented message)
                assert isinstance(payload, str if kind == TEXT else bytes)
                assert not max_size or len(payload) <= max_size
                outcome.seen.append(("message", payload))
    return outcome.seen


KEYS = st.binary(min_size=4, max_size=4)
TEXTS = st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass"))
INVALID_UTF8 = st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"ok\xe2\x82", b"\xf4\x90\x80\x80"])
PAYLOADS = st.one_of(st.binary(max_size=300), TEXTS, INVALID_UTF8,
                     st.builds(lambda a, b: a + b, TEXTS, INVALID_UTF8),
                     st.integers(120, 70000).map(lambda n: b"a" * n))
CLOSE_PAYLOADS = st.one_of(
    st.just(b""), st.just(b"\x03"),
    st.builds(lambda code, reason: struct.pack("!H", code) + reason,
              st.sampled_from([1000, 1001, 1002, 1005, 1006, 1011, 1015, 999, 3000, 4999, 5000]),
              st.one_of(TEXTS.map(lambda b: b[:100]), INVALID_UTF8)))


@st.composite
def frames_strategy(draw: Any) -> bytes:
    common = draw(st.booleans())
    if common:  # the fast path's kind: a masked, final text or binary frame
        opcode = draw(st.sampled_from([1, 2]))
        return frame(0x80 | opcode, draw(PAYLOADS), draw(KEYS))
    opcode = draw(st.sampled_from([0, 1, 2, 8, 9, 10, 3, 7, 11, 15]))
    fin = draw(st.booleans())
    rsv = draw(st.sampled_from([0, 0, 0, 0x40, 0x20, 0x10]))
    if opcode == 8:
        payload = draw(CLOSE_PAYLOADS)
    elif opcode >= 8:
        payload = draw(st.one_of(st.binary(max_size=125), st.binary(min_size=126, max_size=200)))
    else:
        payload = draw(PAYLOADS)
    key = draw(st.one_of(KEYS, KEYS, KEYS, st.none()))
    form = draw(st.sampled_from([0, 0, 0, 2, 8]))
    return frame((0x80 if fin else 0) | rsv | opcode, payload, key, form)


@st.composite
def streams(draw: Any) -> list[bytes]:
    data = b"".join(draw(st.lists(frames_strategy(), min_size=1, max_size=8)))
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    chunks, start = [], 0
    for cut in cuts + [len(data)]:
        if cut > start:
            chunks.append(data[start:cut])
            start = cut
    return chunks


K = b"\x01\x02\x03\x04"


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(streams(), st.sampled_from([0, 16 * 1024 * 1024, 100, 5]))
# A whole final text frame inside a fragmented message is wsproto's error (1002), not a message.
@example([frame(0x01, b"part", K) + frame(0x81, b"x", K)], 0)
@example([frame(0x01, b"part", K) + frame(0x89, b"", K) + frame(0x82, b"x", K)], 0)
# ... and once the message is over (a final continuation), the next one is a message again.
@example([frame(0x01, b"pa", K) + frame(0x80, b"rt", K) + frame(0x81, b"x", K)], 0)
# A 16- or 64-bit length that 7 bits would hold: 1002.
@example([frame(0x81, b"x" * 10, K, 2)], 0)
@example([frame(0x82, b"x" * 200, K, 8)], 0)
# Invalid UTF-8 (1007), an unmasked frame, RSV1 without an extension, a reserved opcode (1002).
@example([frame(0x81, b"ok\xff", K)], 0)
@example([frame(0x81, b"ok", None)], 0)
@example([frame(0xC1, b"ok", K)], 0)
@example([frame(0x83, b"ok", K)], 0)
# Over the size limit: 1009, by wsproto's path.
@example([frame(0x82, b"x" * 101, K)], 100)
@example([frame(0x81, b"x" * 300, K)], 100)
def test_same_outcome_as_wsproto(chunks: list[bytes], max_size: int) -> None:
    assert fast(chunks, max_size) == reference(chunks, max_size)


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from([1, 2]), st.binary(max_size=200), KEYS), min_size=1, max_size=5),
       st.integers(1, 7))
def test_whole_small_frames_never_reach_wsproto(messages: list[tuple[int, bytes, bytes]],
                                                step: int) -> None:
    """Whole small final masked frames come out unmasked, none passed; cut anywhere, every message
    comes out once, fast or through wsproto (test_same_outcome_as_wsproto checks the order)."""
    messages = [(op, p.decode("latin-1").encode() if op == 1 else p, k) for op, p, k in messages]
    data = b"".join(frame(0x80 | op, p, k) for op, p, k in messages)
    wanted = [("message", p.decode() if op == 1 else p) for op, p, _ in messages]
    assert [("message", payload) for _, payload in ClientFrames(0xFFFF).split(data)] == wanted
    chunks = [data[start:start + step] for start in range(0, len(data), step)]
    assert fast(chunks, 0) == wanted


def test_a_partial_frame_is_passed_at_once_and_a_partial_header_held() -> None:
    data = frame(0x81, b"hello world", b"abcd")
    router = ClientFrames(0xFFFF)
    assert router.split(data[:1]) == []  # (wsproto cannot act on one byte either)
    assert router.split(data[1:5]) == []  # an incomplete header of a frame that may be fast
    assert router.split(data[5:9]) == [(PASS, data[:9])]  # not whole: wsproto streams it
    assert router.split(data[9:]) == [(PASS, data[9:])]
    assert router.split(data) == [(TEXT, "hello world")]  # the next frame starts at a boundary


def test_a_bad_first_byte_is_passed_at_once() -> None:
    router = ClientFrames(0xFFFF)
    assert router.split(b"\x83\x85ab") == [(PASS, b"\x83\x85ab")]  # reserved opcode: wsproto's 1002
    assert ClientFrames(0xFFFF).split(b"\x01\x85") == [(PASS, b"\x01\x85")]  # unmasked-frame errors too


@given(st.one_of(st.text(max_size=70000), st.binary(max_size=70000),
                 st.sampled_from([0, 125, 126, 127, 0xFFFF, 0x10000]).map(lambda n: b"x" * n)))
@settings(max_examples=200, suppress_health_check=[HealthCheck.data_too_large])
def test_server_frames_are_wsprotos(data: str | bytes) -> None:
    ws = Connection(ConnectionType.SERVER)
    assert server_frame(data) == ws.send(Message(data=data))


@given(st.binary(max_size=600), KEYS)
def test_unmask_is_wsprotos(payload: bytes, key: bytes) -> None:
    assert unmask(key, payload) == bytes(XorMaskerSimple(key).process(bytearray(payload)))


def test_surrogates_are_refused_as_wsproto_refuses_them() -> None:
    import pytest

    with pytest.raises(UnicodeEncodeError):
        server_frame("\ud800")
    with pytest.raises(UnicodeEncodeError):
        FrameProtocol(client=False, extensions=[]).send_data("\ud800")

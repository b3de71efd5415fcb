"""A fast path for the WebSocket frames that make most of a session: small, whole, final data frames.

Theory of operation
-------------------
wsproto (RFC 6455 in Python) is the WebSocket protocol of record; this module only spares it the
frames it would spend most of its time on. ``ClientFrames.split`` reads a client's bytes frame by
frame and sorts them:

- a frame that is final (FIN), has no RSV bit, is text or binary, is masked, has a minimal 7- or
  16-bit length no larger than ``limit``, starts no fragmented message's continuation (no message
  is in progress) and is wholly in hand is unmasked here: ``(TEXT, str)`` or ``(BINARY, bytes)``.
  A text payload that is not valid UTF-8 (Python's strict codec, the one wsproto uses) is not taken:
  the frame goes to wsproto, which closes with 1007 as it always did.
- every other byte is ``(PASS, bytes)``: the driver gives it to wsproto unchanged and in order, and
  wsproto sees every frame it sees whole, so its state (a fragmented message, a close, an error) is
  never out of step. A frame that is passed is passed to its last byte (its header says how long it
  is), so the next frame starts at a boundary both agree on.

Nothing is held back that wsproto would have acted on: bytes are held only while they are the start
of a header that could still become a fast frame (at most 7 bytes), which wsproto could not parse
either; a frame not yet whole is passed at once (wsproto streams it, as before).

Server frames (never masked) are built by ``server_frame`` when no extension is in use; with
permessage-deflate the driver uses wsproto for both directions.
"""

from __future__ import annotations

from typing import Final

TEXT: Final = 1
BINARY: Final = 2
PASS: Final = 0

_from_bytes = int.from_bytes


def unmask(key: bytes, payload: bytes) -> bytes:
    """RFC 6455 5.3: the payload XORed with the 4-byte key repeated (one big-int XOR: done in C)."""
    size = len(payload)
    if not size:
        return b""
    keys = (key * (size // 4 + 1))[:size]
    return (_from_bytes(payload, "little") ^ _from_bytes(keys, "little")).to_bytes(size, "little")


def server_frame(data: str | bytes | bytearray | memoryview) -> bytes:
    """One final, unmasked frame carrying a whole message: text for a str, binary otherwise (as
    wsproto's ``Message`` sends it, byte for byte)."""
    if isinstance(data, str):
        first, payload = 0x81, data.encode("utf-8")
    elif isinstance(data, (bytes, bytearray, memoryview)):
        first, payload = 0x82, bytes(data)
    else:
        raise ValueError("Must provide bytes or text")
    size = len(payload)
    if size < 126:
        return bytes((first, size)) + payload
    if size < 0x10000:
        return bytes((first, 126)) + size.to_bytes(2, "big") + payload
    return bytes((first, 127)) + size.to_bytes(8, "big") + payload


class ClientFrames:
    """Splits a client's bytes into fast messages and bytes for wsproto (see the module's docstring)."""

    __slots__ = ("limit", "held", "head", "passing", "in_message")

    def __init__(self, limit: int) -> None:
        self.limit = limit  # the largest payload taken here (the message size limit at most)
        self.held = b""  # the start of a header that may still become a fast frame
        self.head = b""  # the start of a passed frame's header, until its length is known
        self.passing = 0  # bytes of the passed frame still to pass
        self.in_message = False  # a fragmented data message is in progress (wsproto's)

    def split(self, data: bytes) -> list[tuple[int, str | bytes]]:
        if self.held:
            data = self.held + data
            self.held = b""
        out: list[tuple[int, str | bytes]] = []
        pos = 0
        end = len(data)
        while pos < end:
            if self.passing:
                take = min(self.passing, end - pos)
                out.append((PASS, data[pos:pos + take]))
                self.passing -= take
                pos += take
                continue
            if self.head:  # a passed frame's header, still incomplete
                head = self.head
                take = min(_header_size(head[1]) - len(head), end - pos)
                out.append((PASS, data[pos:pos + take]))
                head += data[pos:pos + take]
                pos += take
                if len(head) == _header_size(head[1]):
                    self.head = b""
                    self.passing = _payload_size(head)
                else:
                    self.head = head
                continue
            # A frame starts at pos.
            if end - pos < 2:
                self.held = data[pos:]
                break
            first = data[pos]
            second = data[pos + 1]
            size = second & 0x7F
            eligible = (first == 0x81 or first == 0x82) and second & 0x80 and not self.in_message
            start = pos + 6
            if eligible:
                if size == 126:
                    if end - pos < 4:
                        self.held = data[pos:]
                        break
                    size = (data[pos + 2] << 8) | data[pos + 3]
                    eligible = size >= 126  # (a longer length than needed: wsproto's error)
                    start = pos + 8
                elif size == 127:
                    eligible = False
            if eligible:
                if end < start:
                    self.held = data[pos:]
                    break
                stop = start + size
                if stop <= end and size <= self.limit:
                    payload = unmask(data[start - 4:start], data[start:stop])
                    if first == 0x82:
                        out.append((BINARY, payload))
                        pos = stop
                        continue
                    try:
                        out.append((TEXT, payload.decode("utf-8")))
                    except UnicodeDecodeError:
                        pass  # (wsproto closes with 1007)
                    else:
                        pos = stop
                        continue
            # Passed whole to wsproto, from its first byte.
            if first & 0x0F < 3:  # continuation, text, binary: FIN ends the message
                self.in_message = not first & 0x80
            header = _header_size(second)
            if end - pos >= header:
                self.passing = header + _payload_size(data[pos:pos + header])
            else:
                self.head = data[pos:]
                out.append((PASS, self.head))
                pos = end
        return out

    def take_held(self) -> bytes:
        """What is held (the start of a header), for wsproto when the fast path stops."""
        held, self.held = self.held, b""
        return held


def _header_size(second: int) -> int:
    size = second & 0x7F
    return 2 + (2 if size == 126 else 8 if size == 127 else 0) + (4 if second & 0x80 else 0)


def _payload_size(header: bytes) -> int:
    size = header[1] & 0x7F
    if size == 126:
        return _from_bytes(header[2:4], "big")
    if size == 127:
        return _from_bytes(header[2:10], "big")
    return size

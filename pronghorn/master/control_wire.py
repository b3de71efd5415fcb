"""The control socket's framing, Gunicorn 27's: a 4-byte big-endian length, then that many bytes of
UTF-8 JSON. Shared by the master's side (control.py) and our client (pronghorn ctl), and importing
nothing else of pronghorn, so that the client loads no more than it needs."""

from __future__ import annotations

import json
import struct
from typing import Any, Mapping

#: Gunicorn's limit on one message.
MAX_MESSAGE = 16 * 1024 * 1024
_LENGTH = struct.Struct(">I")


def encode(message: Mapping[str, Any]) -> bytes:
    payload = json.dumps(message).encode()
    return _LENGTH.pack(len(payload)) + payload


def take_messages(buffer: bytearray) -> list[Any]:
    """The complete messages at the front of ``buffer``, removed from it; ValueError when a length
    is past MAX_MESSAGE or a payload is not JSON."""
    messages = []
    while len(buffer) >= _LENGTH.size:
        (length,) = _LENGTH.unpack_from(buffer)
        if length > MAX_MESSAGE:
            raise ValueError(f"message too large: {length} bytes")
        end = _LENGTH.size + length
        if len(buffer) < end:
            break
        payload = bytes(buffer[_LENGTH.size:end])
        del buffer[:end]
        messages.append(json.loads(payload.decode()))
    return messages

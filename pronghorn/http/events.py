"""What the connection hands its driver: a request head, body data, the end of a message.

Header names and values stay bytes exactly as received (values with surrounding whitespace removed);
mapping them to a WSGI environ is the wsgi layer's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Request:
    method: str                               # a token, case preserved ("GET", "-BLARGH")
    target: bytes                             # the request-target as sent
    path: bytes                               # still percent-encoded; b"" for "*" and authority-form
    query: bytes                              # without the "?"; fragments are dropped
    version: tuple[int, int]                  # (1, 0) or (1, 1); 1.2+ is served as 1.1
    headers: list[tuple[bytes, bytes]]        # in order, names as sent
    keep_alive: bool                          # what the client asked for (version and Connection)
    expect_continue: bool                     # "Expect: 100-continue" on an HTTP/1.1 request with a body
    content_length: int | None                # None when chunked; 0 when there is no body
    chunked: bool
    host: bytes | None                        # the Host, or the authority of an absolute-form target
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    # True when the connection keeps this object as the parse of its exact head bytes and hands
    # it out again for every identical head (see HTTPConnection): it is shared, never mutate it.
    shared: bool = field(default=False, compare=False)

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)


@dataclass(slots=True)
class Data:
    data: bytes


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


# The message's body is complete; a Request's trailers (if any) are filled in by now.
END_OF_MESSAGE = _Marker("END_OF_MESSAGE")
# More bytes are needed before anything else can happen.
NEED_DATA = _Marker("NEED_DATA")
# The current request is complete and the connection waits for its response before parsing the next.
PAUSED = _Marker("PAUSED")

Event = Request | Data | _Marker

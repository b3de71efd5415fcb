"""What the connection hands its driver: a request head, body data, the end of a message.

Every event is immutable. A Request may be handed to many connections (the same head bytes give the
same object, see HTTPConnection's "Repeated heads") and to several threads, and a driver may keep
events after the connection has moved on, so no field ever changes once an event exists. What is only
known later travels on a later event: a chunked body's trailer fields come on its EndOfMessage, as in
h11.

Header names and values stay bytes exactly as received (values with surrounding whitespace removed);
mapping them to a WSGI environ is the wsgi layer's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

Fields = tuple[tuple[bytes, bytes], ...]

# True where mypyc compiled this module (pronghorn/compiled.py): its classes are then native.
_COMPILED = not __file__.endswith(".py")


@dataclass(frozen=True, slots=True)
class Request:
    method: str                               # a token, case preserved ("GET", "-BLARGH")
    target: bytes                             # the request-target as sent
    path: bytes                               # still percent-encoded; b"" for "*" and authority-form
    query: bytes                              # without the "?"; fragments are dropped
    version: tuple[int, int]                  # (1, 0) or (1, 1); 1.2+ is served as 1.1
    headers: Fields                           # in order, names as sent
    keep_alive: bool                          # what the client asked for (version and Connection)
    expect_continue: bool                     # "Expect: 100-continue" on an HTTP/1.1 request with a body
    content_length: int | None                # None when chunked; 0 when there is no body
    chunked: bool
    host: bytes | None                        # the Host, or the authority of an absolute-form target
    # True when a HeadCache keeps this object as the parse of its exact head bytes and hands it out
    # again for every identical head: a consumer may then remember what it derives from the request
    # alone by the object's identity (the environ builder does). It says nothing about the request.
    shared: bool = field(default=False, compare=False)
    # Set when the head matched a HeadShape (see cache.py): its request line and every field but the
    # shape's varying ones are byte for byte the shape's template's. A consumer may remember what it
    # derives from the template by the shape's identity and fill in the varying values (the
    # environ builder does). Like ``shared``, it says nothing about the request.
    shape: HeadShape | None = field(default=None, compare=False)

    def __init__(self, method: str, target: bytes, path: bytes, query: bytes,
                 version: tuple[int, int], headers: Fields, keep_alive: bool,
                 expect_continue: bool, content_length: int | None, chunked: bool,
                 host: bytes | None, shared: bool = False, shape: HeadShape | None = None) -> None:
        # The dataclass's own __init__ would store each field through object.__setattr__ (the
        # frozen class refuses plain stores), ~1,600 instructions a field in CPython 3.11, and
        # mypyc keeps that __init__ as Python: 17,700 of a proxied request's 57,000. Compiled,
        # these are stores into the native object's fields, which the frozen __setattr__ guards
        # from Python code only. Interpreted, they would be refused: object.__setattr__ it is
        # (make_request is the interpreted hot path).
        if not _COMPILED:
            for name, value in zip(_FIELDS, (method, target, path, query, version, headers,
                                             keep_alive, expect_continue, content_length, chunked,
                                             host, shared, shape)):
                object.__setattr__(self, name, value)
            return
        self.method = method  # type: ignore[misc]
        self.target = target  # type: ignore[misc]
        self.path = path  # type: ignore[misc]
        self.query = query  # type: ignore[misc]
        self.version = version  # type: ignore[misc]
        self.headers = headers  # type: ignore[misc]
        self.keep_alive = keep_alive  # type: ignore[misc]
        self.expect_continue = expect_continue  # type: ignore[misc]
        self.content_length = content_length  # type: ignore[misc]
        self.chunked = chunked  # type: ignore[misc]
        self.host = host  # type: ignore[misc]
        self.shared = shared  # type: ignore[misc]
        self.shape = shape  # type: ignore[misc]

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)


class _Unfrozen:
    """Request's slots without its frozen ``__setattr__``: where a Request is made per head (see
    ``make_request``)."""

    __slots__ = ("method", "target", "path", "query", "version", "headers", "keep_alive",
                 "expect_continue", "content_length", "chunked", "host", "shared", "shape")
    method: str
    target: bytes
    path: bytes
    query: bytes
    version: tuple[int, int]
    headers: Fields
    keep_alive: bool
    expect_continue: bool
    content_length: int | None
    chunked: bool
    host: bytes | None
    shared: bool
    shape: HeadShape | None


_new_object = object.__new__
# Request's fields in order (its __init__'s interpreted path).
_FIELDS = tuple(each.name for each in fields(Request))


def make_request(method: str, target: bytes, path: bytes, query: bytes, version: tuple[int, int],
                 headers: Fields, keep_alive: bool, expect_continue: bool,
                 content_length: int | None, chunked: bool, host: bytes | None,
                 shared: bool = False, shape: HeadShape | None = None) -> Request:
    """``Request(...)`` (positional, in its fields' order), made at a fraction of the cost: a frozen
    dataclass's ``__init__`` stores each field through ``object.__setattr__``, a call that costs
    CPython ~1,600 instructions, 21,000 per Request, more than the rest of a head of a known
    shape. This stores the fields into an object of the same slots with plain slot stores (5,600
    in all, with this call) and then gives it Request's class (CPython allows that between classes
    of the same layout), so the object is a Request, frozen, before anyone else sees it."""
    if _COMPILED:  # a native class: its own __init__ is the fast one, and __class__ is fixed
        return Request(method, target, path, query, version, headers, keep_alive, expect_continue,
                       content_length, chunked, host, shared, shape)
    made = _new_object(_Unfrozen)
    made.method = method
    made.target = target
    made.path = path
    made.query = query
    made.version = version
    made.headers = headers
    made.keep_alive = keep_alive
    made.expect_continue = expect_continue
    made.content_length = content_length
    made.chunked = chunked
    made.host = host
    made.shared = shared
    made.shape = shape
    made.__class__ = Request  # type: ignore[assignment]
    return made  # type: ignore[return-value]


@dataclass(frozen=True, slots=True, eq=False)
class HeadShape:
    """What heads of one shape share: ``template``, the Request of a head of this shape, and the
    indexes of its fields whose values differ from head to head (``varying``, in order). Every
    other field, its name and its value, and the request line are the template's exactly; the
    varying fields' names are the template's, and their values any that passed every check."""

    template: Request
    varying: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Data:
    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfMessage:
    """The message's body is complete. ``trailers``: the trailer fields of a chunked body, in order,
    names as sent (empty for any other body). Test for it with ``type(event) is EndOfMessage``:
    END_OF_MESSAGE is only the one without trailers."""

    trailers: Fields = ()


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


# The end of every message without trailers (the commonest event there is: made once).
END_OF_MESSAGE = EndOfMessage(())
# More bytes are needed before anything else can happen.
NEED_DATA = _Marker("NEED_DATA")
# The current request is complete and the connection waits for its response before parsing the next.
PAUSED = _Marker("PAUSED")

Event = Request | Data | EndOfMessage | _Marker

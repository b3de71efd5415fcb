"""Caches a worker owns: validated results, bounded in bytes.

Theory of operation
-------------------
Clients and apps repeat themselves (the same head from a keep-alive client, the same few header names,
the same status and headers from a view), so the HTTP core remembers what it has already checked. A
cache that a client's bytes fill is also a way for a client to fill the worker's memory, so every cache
here is an object the worker creates and hands to the connections and framers that use it (nothing at
module level), and every one is bounded in bytes, not in entries: 256 entries of 8 KB names are 2 MiB,
256 of 8-byte ones are 2 KiB, and only a byte bound says what the worker may lose to it.

``BoundedCache`` is generational. New entries go into the young generation; when the young one would
pass half the bound its entries become the old generation (the previous old one is dropped whole) and
the young one starts empty. A hit in the old generation moves the entry back into the young one, so
what is used survives and what is not is gone after two turnovers. Each generation holds at most half
the bound, so both together hold at most the bound. A hit in the young generation, the steady state of
a worker serving the same few requests, costs one dict lookup: the young generation is one dict for
the cache's whole life (a turnover copies it out and empties it), so a hot path may keep a reference
to it, look there, and call ``get`` only when that misses. An LRU would reorder on every hit.

Sizes are estimates the caller makes when it puts an entry: the bytes of the key and value objects it
pins, with a generous per-object overhead (see ``OBJECT_OVERHEAD``), so the estimate errs high. An entry
larger than half the bound is not kept at all.

Threads (the gthread worker shares its caches between the app's threads): every operation leaves the
dicts consistent under the GIL, and the worst a race does is lose an entry or a count of bytes. A lost
count lets the young generation hold at most the entries being put at that moment (one per thread)
beyond its half, until the next turnover forgets it.
"""

from __future__ import annotations

from typing import Final, Generic, TypeVar

from .errors import HTTPError
from .events import HeadShape, Request, make_request
from .limits import Limits
from .request_line import RequestLine, host_is_valid, parse_request_line

K = TypeVar("K")
V = TypeVar("V")

# Bytes an estimate adds for each Python object an entry pins (its header, its slot in a dict or
# tuple, allocator rounding). CPython's empty bytes object is 33 bytes, an empty str 49, a two-item
# tuple 56, a small slots object ~100: 64 per object plus the payload errs high for everything kept
# here.
OBJECT_OVERHEAD = 64


class BoundedCache(Generic[K, V]):
    """A mapping that forgets, holding at most ``max_bytes`` by its callers' estimates (see above).

    ``young`` is public for the hot paths, and the same dict for the cache's life:
    ``young.get(key)`` is a hit, or a miss to be asked again with ``get``, which also looks in the old
    generation. Values must not be None (None is a miss)."""

    __slots__ = ("young", "_young_sizes", "_young_bytes", "_old", "_old_sizes", "generation_bytes")

    def __init__(self, max_bytes: int) -> None:
        self.generation_bytes = max(max_bytes, 0) // 2
        self.young: dict[K, V] = {}
        self._young_sizes: dict[K, int] = {}
        self._young_bytes = 0
        self._old: dict[K, V] = {}
        self._old_sizes: dict[K, int] = {}

    def get(self, key: K) -> V | None:
        value = self.young.get(key)
        if value is not None:
            return value
        value = self._old.pop(key, None)
        if value is not None:  # in use again: back into the young generation
            self.put(key, value, self._old_sizes.pop(key, 0))
        return value

    def admits(self, size: int) -> bool:
        """Whether an entry of ``size`` bytes would be kept (too large, or a cache of 0 bytes)."""
        return 0 < size <= self.generation_bytes

    def put(self, key: K, value: V, size: int) -> bool:
        """Keep ``value`` under ``key``; False when it is too large to keep (nothing changed)."""
        if not 0 < size <= self.generation_bytes:
            return False
        young = self.young
        if key in young:
            return True
        if self._young_bytes + size > self.generation_bytes:
            # Turn over: the young generation's entries become the old one (the old one is dropped),
            # in a copy, so that ``young`` stays the dict that hot paths hold.
            self._old, self._old_sizes = young.copy(), self._young_sizes
            young.clear()
            self._young_sizes = {}
            self._young_bytes = 0
        young[key] = value
        self._young_sizes[key] = size
        self._young_bytes += size
        return True

    def replace(self, key: K, value: V, size: int) -> bool:
        """Keep ``value`` under ``key`` in place of what it held (put keeps the first value)."""
        if not 0 < size <= self.generation_bytes:
            return False
        if key in self.young:
            del self.young[key]
            self._young_bytes -= self._young_sizes.pop(key, 0)
        elif self._old.pop(key, None) is not None:
            self._old_sizes.pop(key, None)
        return self.put(key, value, size)

    @property
    def size(self) -> int:
        """The bytes held now, by the estimates given to put."""
        return sum(self._young_sizes.values()) + sum(self._old_sizes.values())

    @property
    def entries(self) -> int:
        """How many entries it holds now. (Not __len__: an empty cache is still a cache, and
        ``cache or default`` must not ask.)"""
        return len(self.young) + len(self._old)


# Heads at most this long are kept (a head is hashed whole to be looked up, and the heads that repeat,
# a keep-alive client's, a health check's, a load generator's, are short).
HEAD_MAX: Final = 1024

# How a HeadCache's bytes are shared: most go to whole heads and shapes, which save the most.
_HEADS_SHARE, _SHAPES_SHARE, _LINES_SHARE = 9, 3, 3  # sixteenths; the hosts get the rest

# Fields whose values decide the request's framing or routing, to us or to llhttp: a shape never lets
# one of them vary (a head that differs there is another shape), so what the template's decided holds.
FIXED_FIELDS = frozenset((b"host", b"content-length", b"transfer-encoding", b"connection",
                          b"proxy-connection", b"upgrade", b"expect", b"content-type"))
# The bytes llhttp refuses in a field value (it takes HTAB, SP, VCHAR and obs-text): what a varying
# value of a shape is checked against, in place of llhttp (see HeadCache). A CR or LF is among them,
# so a varying value never holds a line break. tests/unit/test_head_shapes.py holds llhttp to it.
_REFUSED_IN_VALUE = frozenset((*range(0x00, 0x09), *range(0x0a, 0x20), 0x7f))
# A translation that changes exactly those bytes: a value it leaves equal holds none of them (a
# translate with a table and no deletions is one pass, where deletions set up a table every call).
_MARK_REFUSED = bytes(byte ^ 0x80 if byte in _REFUSED_IN_VALUE else byte for byte in range(256))
# How many times a shape may be rebuilt with more varying fields before it stops learning.
_SHAPE_REBUILDS = 8


class HeadCache:
    """One worker's memory of the request heads it has validated, shared by its connections
    (``HTTPConnection(limits, cache)``); the worker creates it with the limits it gives them.

    What each table may hold, and why a hit is correct for every request that produces it:

    ``heads``: the exact bytes of a whole request head (request line to blank line, at most
    HEAD_MAX bytes) → (its Request, b""). Only heads that passed every check under ``limits`` are
    put. Every check the connection makes on a head is a function of its bytes and the limits, so
    the same bytes under the same limits would get the same Request again; the Request is
    immutable, so handing out the same object is the same as parsing again. Not put: a chunked
    head, whose body's length its head does not fix (receive_repeated_request takes a kept head
    with a Content-Length body, or none, whole; the environ builder copies what it derived from a
    shared Request, CONTENT_LENGTH included); and a head llhttp stopped at as an Upgrade, which
    stays on the parsing path that knows its parser is spent.

    ``lines``: a request line (without its CRLF) → its parse, for lines that parsed. The parse is a
    function of the line's bytes alone: the one limit on a line (its length) is checked before the
    lookup.

    ``hosts``: a Host value (or absolute-form authority) that is a valid authority → True. Validity
    is a function of the bytes alone.

    ``shapes``: a request line → a ``ShapeMatcher``, for heads that differ from one another only in
    the values of some fields (a proxy's X-Request-Id, a session cookie), which ``heads`` never
    matches twice. It is learnt from heads that passed every check (see ``learn``) and holds their
    bytes. A head matches when its request line is the key and its header section is the
    template's byte for byte except inside the varying fields' values; each varying value must
    then be within the field size limit, and the section within the head size limit, or the head is
    parsed as usual (which gives the 431, or llhttp's 400 first). Why a match gets exactly the
    verdict and the Request that parsing would give: every byte outside the varying values is a
    byte that llhttp and our policy accepted, in the same place among the same fields; a varying
    field is never one whose value llhttp or our policy reads (FIXED_FIELDS), so llhttp's verdict on
    the section is a verdict on each varying value's bytes alone, and those are checked here, every
    byte, against the bytes llhttp refuses in a value (``_REFUSED_IN_VALUE``, CR and LF among them,
    so no value hides a line break; a refused byte is llhttp's 400). The request line's parse is a
    function of its bytes; everything our policy decides from the fields (framing, Host,
    expectations, keep-alive) is read from fixed fields, so it is the template's; the number of
    fields and every fixed field's size are the template's. So the Request is the template's with
    the varying values in place, split out as llhttp splits them (SP and HTAB around them dropped).

    Bounded by ``max_bytes`` in all (see BoundedCache), by the estimates of ``head_entry_size``
    and ``line_entry_size`` below.
    """

    __slots__ = ("limits", "given", "heads", "lines", "hosts", "shapes", "head_size")

    def __init__(self, limits: Limits | None = None, max_bytes: int = 1024 * 1024) -> None:
        self.given = limits  # as given, so a connection given the same object knows it at once
        self.limits = (limits or Limits()).normalized()
        self.head_size = self.limits.head_size  # (a property: worked out once, not per connection)
        self.heads: BoundedCache[bytes, tuple[Request, bytes]] = BoundedCache(
            max_bytes * _HEADS_SHARE // 16)
        self.lines: BoundedCache[bytes, RequestLine] = BoundedCache(max_bytes * _LINES_SHARE // 16)
        self.hosts: BoundedCache[bytes, bool] = BoundedCache(
            max_bytes * (16 - _HEADS_SHARE - _SHAPES_SHARE - _LINES_SHARE) // 16)
        # (None with --permit-obsolete-folding: a folded section is unfolded before llhttp sees it,
        # so its bytes are not what llhttp judged.)
        self.shapes: BoundedCache[bytes, ShapeMatcher] = BoundedCache(
            0 if self.limits.permit_obsolete_folding else max_bytes * _SHAPES_SHARE // 16)

    def serves(self, limits: Limits | None) -> bool:
        """Whether this cache's verdicts hold for a connection with ``limits``."""
        return limits is self.given or (limits or Limits()).normalized() == self.limits

    def request_line(self, line: bytes) -> RequestLine:
        """``parse_request_line(line)``, remembered."""
        lines = self.lines
        parsed = lines.young.get(line) or lines.get(line)
        if parsed is None:
            parsed = parse_request_line(line, self.limits)  # raises HTTPError: nothing is kept
            lines.put(line, parsed, line_entry_size(line))
        return parsed

    def host_is_valid(self, host: bytes) -> bool:
        """``host_is_valid(host)``, valid ones remembered."""
        hosts = self.hosts
        if hosts.young.get(host) or hosts.get(host):
            return True
        if not host_is_valid(host):
            return False
        hosts.put(host, True, len(host) + 2 * OBJECT_OVERHEAD)
        return True


    def learn(self, line: bytes, section: bytes, request: Request) -> None:
        """A head that passed every check, not chunked and not taken for an Upgrade (``line`` its
        request line, ``section`` its header section to the blank line inclusive): note its shape,
        or, when the line's shape has the same fields with other values in some that may vary, let
        those vary too."""
        shapes = self.shapes
        if not shapes.generation_bytes:
            return
        known = shapes.young.get(line) or shapes.get(line)
        headers = request.headers
        if known is not None:
            shape = known.shape
            old = shape.template.headers
            if len(old) == len(headers):
                varying = list(shape.varying)
                for index, (was, now) in enumerate(zip(old, headers)):
                    if was != now and index not in varying:
                        if was[0] != now[0] or was[0].lower() in FIXED_FIELDS:
                            break  # another shape
                        varying.append(index)
                else:
                    if len(varying) > len(shape.varying) and known.rebuilds < _SHAPE_REBUILDS:
                        try:
                            matcher = ShapeMatcher(section, request, tuple(sorted(varying)),
                                                   known.rebuilds + 1)
                        except ValueError:
                            return
                        shapes.replace(line, matcher, matcher.size(line))
                    return
        try:
            matcher = ShapeMatcher(section, request, (), 0)
        except ValueError:
            return
        shapes.replace(line, matcher, matcher.size(line))


class ShapeMatcher:
    """One shape (see HeadCache) and how to recognise a header section of it: the constant bytes
    before each varying value (from the end of the previous one, its CRLF included, to the colon
    after the field's name) and after the last one."""

    __slots__ = ("shape", "fields", "parts", "tail", "tail_size", "rebuilds", "section_size",
                 "has_body")

    def __init__(self, section: bytes, template: Request, varying: tuple[int, ...],
                 rebuilds: int) -> None:
        self.shape = HeadShape(template, varying)
        self.fields = template.headers
        self.rebuilds = rebuilds
        self.has_body = template.has_body
        self.section_size = len(section)
        # The section is lines "name:value\r\n" in the fields' order, then "\r\n" (llhttp took it
        # so, unfolded); anything else is not a section to learn from.
        lines = section.split(b"\r\n")
        if len(lines) != len(self.fields) + 2 or any(
                not line.startswith(field[0] + b":") for line, field in zip(lines, self.fields)):
            raise ValueError("not a plain header section")
        parts: list[tuple[bytes, int, int, bytes, int]] = []
        start = 0  # where the constant bytes before the next varying value begin
        offset = 0  # where lines[index] begins
        for index, line in enumerate(lines[:len(self.fields)]):
            if index in varying:
                name = self.fields[index][0]
                colon = offset + len(name) + 1
                parts.append((section[start:colon], colon - start, index, name, len(name) + 4))
                start = offset + len(line)  # (the CRLF after the value starts the next part)
            offset += len(line) + 2
        self.parts = tuple(parts)
        self.tail = section[start:]
        self.tail_size = len(self.tail)

    def request_of(self, head: bytes, start: int, field_size: int) -> Request | None:
        """The Request of ``head`` (a whole head whose request line is the shape's and whose
        header section is ``head[start:]``) if its section is of this shape, its varying fields
        no larger than ``field_size`` (counted as the collector counts them); else None. Raises
        HTTPError(400), as llhttp refuses it, for a varying value with a byte llhttp refuses."""
        fields = list(self.fields)
        at = start
        for constant, length, index, name, overhead in self.parts:
            if not head.startswith(constant, at):
                return None
            at += length
            end = head.find(b"\r\n", at)
            if end < 0:
                return None
            value = head[at:end]
            if len(value) + overhead > field_size:  # (leading whitespace counted: errs towards None)
                return None
            if value.translate(_MARK_REFUSED) != value:
                raise HTTPError(400, "malformed header section: Invalid header value char")
            fields[index] = (name, value.strip(b" \t"))
            at = end
        if len(head) - at != self.tail_size or not head.endswith(self.tail):
            return None
        template = self.shape.template
        # (positional: Request's field order; keywords would cost a dict per request)
        return make_request(template.method, template.target, template.path, template.query,
                            template.version, tuple(fields), template.keep_alive,
                            template.expect_continue, template.content_length, False,
                            template.host, False, self.shape)

    def size(self, line: bytes) -> int:
        """The bytes an entry pins: the line and the template's Request (see head_entry_size, whose
        key would be the line and the section), the constant pieces (together at most the section),
        and a tuple and four objects per part, and the matcher and its shape."""
        return (3 * (len(line) + self.section_size) + self.section_size
                + OBJECT_OVERHEAD * (3 * len(self.fields) + 12 + 5 * len(self.parts) + 8))


def head_entry_size(key: bytes, fields: int) -> int:
    """The bytes a ``heads`` entry pins, payloads and objects. Payloads: the key; its Request's
    header names and values and its target, which are disjoint pieces of the key (at most its length
    together); path, query and an absolute-form authority, disjoint pieces of the target (at most its
    length). Objects: three per field (name, value, pair) and a dozen for the Request, its tuples, its
    method and the rest."""
    return 3 * len(key) + OBJECT_OVERHEAD * (3 * fields + 12)


def line_entry_size(line: bytes) -> int:
    """The bytes a ``lines`` entry pins: the line, its target (a piece of it), path, query and
    authority (pieces of the target), in eight objects."""
    return 3 * len(line) + 8 * OBJECT_OVERHEAD

"""make_request: a Request made by slot stores then given Request's class (see events.py) is the
Request that Request(...) makes, and as frozen."""

from __future__ import annotations

import dataclasses

import pytest

from pronghorn.http.events import _COMPILED, HeadShape, Request, _Unfrozen, make_request

ARGS = ("GET", b"/a?b", b"/a", b"b", (1, 1), ((b"Host", b"h"),), True, False, 0, False, b"h")


@pytest.mark.skipif(_COMPILED, reason="compiled by mypyc, make_request calls Request(...) itself")
def test_the_unfrozen_twin_has_requests_slots_in_order() -> None:
    # (a field added to Request and not to _Unfrozen would make the class assignment fail)
    assert _Unfrozen.__slots__ == Request.__slots__
    assert tuple(f.name for f in dataclasses.fields(Request)) == Request.__slots__


def test_a_made_request_is_the_request_and_frozen() -> None:
    shape = HeadShape(Request(*ARGS), (0,))
    made = make_request(*ARGS, True, shape)
    assert type(made) is Request and made.__class__ is Request
    assert made == Request(*ARGS, True, shape)
    assert (made.shared, made.shape, made.has_body) == (True, shape, False)
    assert hash(made) == hash(Request(*ARGS))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.method = "POST"  # type: ignore[misc]
    assert make_request(*ARGS) == Request(*ARGS) and make_request(*ARGS).shape is None

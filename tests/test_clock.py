"""The Date header's value: IMF-fixdate (RFC 9110 5.6.7), English names whatever the locale."""

from __future__ import annotations

import random
from email.utils import formatdate

from pronghorn.cycle.clock import DateCache, http_date


def test_http_date_matches_the_standard_library() -> None:
    rng = random.Random(7)
    moments = [0, 784111777, 951782400, 2**31 - 1, 4102444800]
    moments += [rng.randrange(0, 2**34) for _ in range(20000)]
    for seconds in moments:
        assert http_date(seconds).decode("ascii") == formatdate(seconds, usegmt=True), seconds


def test_the_cache_gives_the_current_second() -> None:
    value = DateCache().get()
    assert value.endswith(b" GMT") and len(value) == 29


def test_the_cache_follows_the_wall_clock_forward_and_back(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pronghorn.cycle.clock as clock

    now = [784111777.2]
    monkeypatch.setattr(clock.time, "time", lambda: now[0])
    cache = DateCache()
    first = cache.get()
    assert first == http_date(784111777)
    now[0] = 784111777.999
    assert cache.get() is first  # the same second: made once
    for moment in (784111778.0, 784111776.5, 784111777.0):  # the next second; the clock set back
        now[0] = moment
        assert cache.get() == http_date(int(moment)), moment

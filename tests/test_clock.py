"""The Date header's value: IMF-fixdate (RFC 9110 5.6.7), English names whatever the locale."""

from __future__ import annotations

import random
from email.utils import formatdate

from pronghorn.workers.clock import DateCache, http_date


def test_http_date_matches_the_standard_library() -> None:
    rng = random.Random(7)
    moments = [0, 784111777, 951782400, 2**31 - 1, 4102444800]
    moments += [rng.randrange(0, 2**34) for _ in range(20000)]
    for seconds in moments:
        assert http_date(seconds).decode("ascii") == formatdate(seconds, usegmt=True), seconds


def test_the_cache_gives_the_current_second() -> None:
    value = DateCache().get()
    assert value.endswith(b" GMT") and len(value) == 29

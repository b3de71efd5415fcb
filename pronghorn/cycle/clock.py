"""The per-second work a worker does once, not per request: the Date header value."""

from __future__ import annotations

import time

# RFC 9110 5.6.7's IMF-fixdate names, always English (strftime's %a and %b follow the locale).
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(seconds: int) -> bytes:
    """``seconds`` since the epoch as an HTTP date: b"Sun, 06 Nov 1994 08:49:37 GMT". (Formatted
    here rather than with email.utils, whose import costs a worker ~2 MiB of memory.)"""
    t = time.gmtime(seconds)
    return b"%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _DAYS[t.tm_wday].encode(), t.tm_mday, _MONTHS[t.tm_mon - 1].encode(), t.tm_year,
        t.tm_hour, t.tm_min, t.tm_sec)


class DateCache:
    """The Date header's value, made once per second of the wall clock."""

    __slots__ = ("_since", "_until", "_value")

    def __init__(self) -> None:
        self._since = self._until = 0.0  # the second _value stands for, as [since, until)
        self._value = b""

    def get(self) -> bytes:
        now = time.time()
        if self._since <= now < self._until:  # (a clock set back is a new second too)
            return self._value
        second = int(now)
        self._since, self._until = float(second), float(second + 1)
        self._value = http_date(second)
        return self._value

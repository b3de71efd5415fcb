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
    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def get(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = http_date(now)
        return self._value

"""Sans-IO HTTP/1.1: bytes in, events out; response parts in, bytes out.

No sockets, no clocks, no logging, no configuration, and no state at module level: the driver owns all
of those. What the core remembers between requests lives in caches the worker creates and passes in
(HeadCache to each HTTPConnection, ResponseHeadCache to each ResponseFramer), bounded in bytes.
"""

from .cache import BoundedCache, HeadCache
from .connection import HTTPConnection
from .errors import HTTPError
from .events import END_OF_MESSAGE, NEED_DATA, PAUSED, Data, EndOfMessage, Event, Request
from .limits import Limits
from .response import (CONTINUE, ResponseFramer, ResponseHeadCache, early_hints, error_response,
                       reason_phrase)

__all__ = (
    "CONTINUE", "END_OF_MESSAGE", "NEED_DATA", "PAUSED", "BoundedCache", "Data", "EndOfMessage",
    "Event", "HTTPConnection", "HTTPError", "HeadCache", "Limits", "Request", "ResponseFramer",
    "ResponseHeadCache", "early_hints", "error_response", "reason_phrase",
)

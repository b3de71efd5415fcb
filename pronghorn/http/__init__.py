"""Sans-IO HTTP/1.1: bytes in, events out; response parts in, bytes out.

No sockets, no clocks, no logging, no configuration: the driver owns all of those.
"""

from .connection import HTTPConnection
from .errors import HTTPError
from .events import END_OF_MESSAGE, NEED_DATA, PAUSED, Data, Request
from .limits import Limits
from .response import CONTINUE, ResponseFramer, error_response, reason_phrase

__all__ = [
    "CONTINUE", "END_OF_MESSAGE", "NEED_DATA", "PAUSED", "Data", "HTTPConnection", "HTTPError",
    "Limits", "Request", "ResponseFramer", "error_response", "reason_phrase",
]

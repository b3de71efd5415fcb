"""The one exception the HTTP core raises: a request it refuses, with the status that says why."""

from __future__ import annotations


class HTTPError(Exception):
    """A request that must be refused. The connection is unusable afterwards: the server sends one
    response with ``status`` and ``Connection: close`` and stops reading."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason

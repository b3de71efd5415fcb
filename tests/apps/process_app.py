"""An app for tests/test_process_settings.py: what the process settings change, as the app sees it.

- /file?path=P: P through wsgi.file_wrapper, from a file object whose close() prints where its
  position was ("file closed at N" on stdout): os.sendfile leaves the position alone, reading the
  file through Python moves it to the end, so the line says which way the bytes went;
- POST /spool: reads wsgi.input and answers where it was: the path of the (unlinked) temporary file
  holding it, from /proc/self/fd, or "memory";
- /print: writes "app stdout" and "app stderr" to its stdout and stderr;
- /spew-marker: runs a line no other code has, for --spew to show;
- anything else: "ok".
"""

from __future__ import annotations

import io
import os
import sys
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

StartResponse = Callable[..., Any]


class ReportingFile(io.FileIO):
    """A file that says, when the server closes it, how far it was read through Python."""

    def close(self) -> None:
        if not self.closed:
            print(f"file closed at {self.tell()}", flush=True)
        super().close()


def _text(start_response: StartResponse, text: str) -> list[bytes]:
    body = text.encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/file":
        name = parse_qs(environ["QUERY_STRING"])["path"][0]
        handle = ReportingFile(name, "rb")
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(os.path.getsize(name)))])
        wrapped: Iterable[bytes] = environ["wsgi.file_wrapper"](handle, 8192)
        return wrapped
    if path == "/spool":
        body = environ["wsgi.input"]
        size = len(body.read())
        try:
            where = os.readlink(f"/proc/self/fd/{body.fileno()}")
        except (AttributeError, OSError, io.UnsupportedOperation):
            where = "memory"
        return _text(start_response, f"{size} {where}")
    if path == "/print":
        print("app stdout", flush=True)
        print("app stderr", file=sys.stderr, flush=True)
        return _text(start_response, "printed")
    if path == "/spew-marker":
        marker = "the spew marker line"  # --spew prints this line
        return _text(start_response, marker)
    return _text(start_response, "ok")

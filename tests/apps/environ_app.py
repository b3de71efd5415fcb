"""Test app for tests/test_gunicorn_configs.py: answers with a JSON of what the app sees, so that
pronghorn and Gunicorn, run with the same config file, can be compared key by key.

- ``environ``: every key of the WSGI environ, with its value when it is plain data (text, a
  number, a bool, a tuple like wsgi.version) and the kind of object otherwise ("object",
  "callable"): a server's own classes (its wsgi.input, its socket) differ by name, not by role;
- ``body``: the request body as read through wsgi.input;
- ``os_environ``: the process environment's ``CFGTEST_*`` variables and DJANGO_SETTINGS_MODULE
  (what ``raw_env`` sets);
- ``cwd_name``: the last part of the working directory (what ``chdir`` sets).
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Iterable


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, tuple) and all(isinstance(item, (str, int)) for item in value):
        return list(value)
    return "callable" if callable(value) else "object"


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = environ["wsgi.input"].read()
    payload = {
        "environ": {key: _plain(value) for key, value in environ.items()},
        "body": body.decode("latin-1"),
        "os_environ": {k: v for k, v in os.environ.items() 
                       if k.startswith("CFGTEST_") or k == "DJANGO_SETTINGS_MODULE"},
        "cwd_name": os.path.basename(os.getcwd()),
    }
    data = json.dumps(payload, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(data)))])
    return [data]


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Django's name for the callable (``wsgi_app = "environ_app:application"``)."""
    return app(environ, start_response)

"""The bundled demo: a page that shows what the server handed the application.

    pronghorn pronghorn.demo:app
"""

from __future__ import annotations

import html
from typing import Any, Callable, Iterable


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body_size = len(environ["wsgi.input"].read())
    headers = sorted((k[5:].replace("_", "-").title(), v) for k, v in environ.items()
                     if k.startswith("HTTP_"))
    keys = sorted(k for k in environ if not k.startswith("HTTP_"))
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in headers)
    env_rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(repr(environ[k]))}</td></tr>"
                       for k in keys)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>pronghorn demo</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}th{{text-align:left;padding-right:1em;
vertical-align:top}}td{{font-family:monospace}}</style></head>
<body><h1>pronghorn is serving</h1>
<p><b>{html.escape(environ["REQUEST_METHOD"])}</b> <code>{html.escape(environ["PATH_INFO"])}</code>
{'?' + html.escape(environ["QUERY_STRING"]) if environ["QUERY_STRING"] else ''}
({html.escape(environ["SERVER_PROTOCOL"])}, {body_size} body bytes)</p>
<h2>Request headers</h2><table>{rows}</table>
<h2>Environ</h2><table>{env_rows}</table>
</body></html>
""".encode("utf-8")
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                              ("Content-Length", str(len(page)))])
    return [page]


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The smallest app, for benchmarks."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]

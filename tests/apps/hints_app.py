"""environ["wsgi.early_hints"] (103 Early Hints), as Gunicorn 27 gives it: called before the
response (twice on /twice, with bytes and padded values); after the head on /late (nothing is
sent); with a value that would split the response on /bad. Runs under Gunicorn too (no imports
beyond the standard library), for the side-by-side test."""

from __future__ import annotations

from typing import Any, Callable, Iterator


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes] | list[bytes]:
    hints = environ["wsgi.early_hints"]
    path = environ["PATH_INFO"]
    if path == "/bad":
        hints([("Link", "</a.css>\r\nX-Injected: 1")])
    hints([("Link", "</style.css>; rel=preload; as=style")])
    if path == "/twice":
        hints([(b"Link", b"</app.js>; rel=preload; as=script"), ("X-Hint", "  two \t")])
    if path == "/late":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def body() -> Iterator[bytes]:
            yield b"first"
            hints([("Link", "</late.css>; rel=preload")])  # after the head: nothing is sent
            yield b"-second"
        return body()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"final"]

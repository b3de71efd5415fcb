"""The exception an ASGI app's ``send()`` raises once its client has gone.

A module of its own because the compiled modules (pronghorn/compiled.py) cannot define it: mypyc
compiles no subclass of OSError."""

from __future__ import annotations


class ClientDisconnected(OSError):
    """What ``send()`` raises once the client has gone (ASGI 2.4: an OSError), so that an app
    streaming to it (SSE) stops at its next send rather than making bytes nobody takes."""

"""pronghorn: a fast, strict WSGI HTTP server for UNIX."""

__version__ = "0.1.0"
SERVER_SOFTWARE = f"pronghorn/{__version__}"

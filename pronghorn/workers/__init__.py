"""Worker classes: thin I/O drivers between sockets, the HTTP core and the WSGI application."""

"""ASGI 3: the scope of an HTTP request, the lifespan protocol, and which calling convention an
application uses. The request's messages are driven by the request cycle (cycle/asgi_request.py);
this package knows nothing of connections, sockets or the WSGI side beside it."""

"""The request cycle and the connection policy every worker class shares.

Theory of operation
-------------------
A worker class is an I/O driver. It owns sockets and decides who calls the application; everything
else about serving HTTP lives here, once:

- ``connection.ConnectionPolicy`` is one client connection's rules, without I/O: the PROXY header,
  parsing through the HTTP core, the repeated-head shortcut, buffering a body, ``Expect:
  100-continue``, keep-alive, and the deadlines (head, body, idle, and a write that makes no
  progress). The driver feeds it the bytes it reads and the time; it answers with what to do next.
- ``request.RequestCycle`` is one request's life, the same whoever calls it: the environ, the
  pre_request hook, the app, the response's framing, the error page, and afterwards the access log,
  statsd and the post_request hook. A response whose body is in memory is written in one call; a
  streamed one is a generator that yields when the driver must wait for the client (``DRAIN``) or
  for a socket to become writable (sendfile), so each driver waits in its own way: the sync worker
  from its event loop, gthread's threads by blocking on the loop, gevent's greenlets never yield
  because their writes block.
- ``request.Channel`` is what the cycle asks of a connection: write, end the response, refuse,
  abort. Each driver implements it once.

An ASGI worker reuses ``ConnectionPolicy`` as it is (it needs bytes in, requests out, the same
deadlines and limits) and the after-request half of ``RequestCycle`` (access log, statsd, hooks);
only the app call differs.
"""

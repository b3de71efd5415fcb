"""Every deliberate difference from Gunicorn 27 that is left, with its reason: the "Differences from
Gunicorn" section of docs/settings.md (:mod:`pronghorn.config.docs` renders it).

A difference that is not here is a bug. Each entry is (topic, what differs, why); keep them short.
"""

from __future__ import annotations

#: (topic, difference, reason), in the order a user meets them.
DIFFERENCES: tuple[tuple[str, str, str], ...] = (
    # -- not yet, or not at all --------------------------------------------------------------------
    ("Not yet", "HTTP/2 (`http_protocols`), the uwsgi protocol: a start-up error that says so",
     "they come in later releases, each built on the same request cycle; until then a config "
     "that asks for one must not silently get something else"),
    ("Control socket", "none is opened unless `--control-socket PATH` is given (Gunicorn 27 opens "
     "one by default in `$XDG_RUNTIME_DIR` or `~/.gunicorn`)",
     "nothing is written to disk or opened that was not configured"),
    ("Not supported", "dirty arbiters (`dirty_*`); the eventlet and tornado worker classes",
     "eventlet is deprecated upstream and gevent serves the same apps; tornado apps have their "
     "own server; long background work belongs in its own service"),
    # -- HTTP ----------------------------------------------------------------------------------------
    ("HTTP", "HTTP/1.1 without `Host`, `Transfer-Encoding` with `Content-Length`, an unknown "
     "transfer coding, a body cut short: 400 or 501 (docs/http.md lists them)",
     "each is a request-smuggling shape or a body the app would misread (RFC 9112)"),
    ("HTTP", "`strip_header_spaces` is accepted and logged, not applied; `header_map = "
     "'dangerous'` acts as `drop`",
     "whitespace before ':' and a '_' header posing as its '-' twin are smuggling vectors"),
    ("HTTP", "`http_parser` is accepted and ignored", "there is one parser, llhttp under our rules"),
    ("HTTP", "an unconventional HTTP version is 505, not 400; when permitted it is served as 1.0 "
     "or 1.1 and `SERVER_PROTOCOL` says which",
     "505 is RFC 9110's status for it; the app should see the version its response is framed in"),
    ("HTTP", "`permit_obsolete_folding` does not cover chunked trailers",
     "trailers are rare and folding in them has no legitimate client"),
    ("Responses", "the sync worker gathers a streamed body's pieces into one write; while the app "
     "makes its next piece, a small thread (`pronghorn-held-output`) sends what is held within "
     "about 1 ms (plus the GIL's switch interval if the app computes in Python)",
     "one system call per response instead of one per piece, whose kernel side dominated "
     "streamed responses; PEP 3333 allows it (transmission goes on while the app works)"),
    # -- what the app sees ---------------------------------------------------------------------------
    ("environ", "`gunicorn.socket` is a socket-like object, not a `socket.socket`; bytes the "
     "server read past the request come first, and `makefile()` refuses while they wait",
     "the server reads ahead; the kernel cannot be handed those bytes back"),
    ("environ", "`gunicorn.socket` over TLS with sync or gthread raises OSError (gevent hands its "
     "TLS socket over)", "TLS ends inside the event loop there: there is no socket to give"),
    ("environ", "after an app took its connection over, an exception sends no 500 page and a "
     "return without `start_response` closes quietly",
     "the app may already have written its own protocol on the wire"),
    ("environ", "the early-hints callable refuses a field that could split the response with "
     "our 500 error, not Gunicorn's InvalidResponseHeader exceptions",
     "every response-header check raises the same error; uncaught, both are a 500"),
    ("Process", "`tmp_upload_dir` is used (large request bodies wait there); Gunicorn 27 ignores it",
     "it is what the setting says"),
    ("ASGI", "the request body is read whole before the app runs (spooled past 1 MiB) and handed "
     "out in 64 KiB `http.request` messages; `http.response.trailers` is not sent yet",
     "it reuses the one connection policy's body handling; streaming it is planned"),
    ("ASGI", "WebSockets accept permessage-deflate when the client offers it; a close we send waits "
     "5 s for the client's answer", "it saves bandwidth at no cost to clients that do not offer "
     "it; a peer that never answers must not hold a connection"),
    ("ASGI", "a client's half-close during a request is an `http.disconnect`",
     "as uvicorn: SSE apps stop promptly"),
    # -- hooks and the objects they get --------------------------------------------------------------
    ("Hooks", "an exception in a hook other than `on_starting`, `when_ready`, `post_fork`, "
     "`post_worker_init` and `pre_request` is logged and the server goes on (Gunicorn's master "
     "dies of one in `pre_fork`, `on_reload`, `child_exit`, `nworkers_changed`)",
     "a faulty hook must not take a running server down"),
    ("Hooks", "`server.stop()`, `halt()` and `reload()` act at the master loop's next turn; "
     "`server.stop()` stops the master",
     "the master acts only in its main loop; stopping the workers and looping on is never what "
     "a hook means"),
    ("Hooks", "`server.WORKERS` is a copy; `worker.sockets` are plain `socket.socket` objects; "
     "`cfg.worker_class` is a stand-in with Gunicorn's class name; `cfg.settings['ssl_version']` "
     "reads 2",
     "the config layer imports nothing of the runtime (nor `ssl`), and hooks cannot edit the "
     "master's records"),
    ("Hooks", "`worker.tmp` is the shared-memory heartbeat; its file (`wpronghorn-*`) exists only "
     "with `--worker-tmp-dir` or once `fileno()` is asked for",
     "nothing is written to disk unless configured"),
    ("Hooks", "`resp.version` is pronghorn's Server header; `worker.log` is the `pronghorn.error` "
     "logger (which forwards to a `logger_class`)", "they describe this server"),
    ("Logging", "a `logger_class`'s `access()` also sees a request whose app raised (status 500); "
     "statsd stays on with a custom class; a `setup()` failing on HUP keeps the class as it was",
     "the access log records every response; metrics should not vanish with a logging change"),
    # -- process -------------------------------------------------------------------------------------
    ("Process", "without `--initgroups` a worker's only group is the user's primary one (Gunicorn "
     "keeps the master's, root's); with it, `setgid` is also called",
     "a worker must not keep root's groups"),
    ("Process", "`sendfile = True` in a config file means on (any value turns it off in Gunicorn "
     "27); `-e SENDFILE=...` does not change it",
     "Gunicorn's is a bug; the configuration is resolved before `-e` applies"),
    ("Process", "`--spew` traces the workers, not the master", "the master's loop is noise, and "
     "the master imports little"),
    ("Process", "`--enable-backlog-metric` counts TCP listeners only and warns when none can be "
     "counted (Gunicorn adds -1 per unix socket)", "a unix socket's backlog cannot be read"),
    ("Process", "on TERM each worker accepts every connection already waiting in the listen "
     "queue and serves it (with `Connection: close`) before closing the listener; Gunicorn "
     "stops accepting at once and the queued clients are reset when the last descriptor closes",
     "a queued client has done its handshake and often sent its request: a reset drops it"),
    ("Process", "`--shutdown-delay` (pronghorn's): after TERM the master keeps serving, not "
     "ready, for the delay before the graceful stop; a second TERM ends the delay",
     "load balancers and Kubernetes endpoints need time to stop sending to a stopping host"),
    ("Process", "without `proc_name` the titles name the app, also when it comes from `wsgi_app`",
     "a title should say what runs"),
    ("Config", "a setting set to None (an `os.getenv()` of an unset variable) is not set, also "
     "where Gunicorn crashes on it (numbers, hooks, `loglevel`, `bind`) or does something else: "
     "`errorlog = None` still logs to stderr, `access_log_format = None` is the default format",
     "an unset variable should neither bring the server down nor silence its log"),
    ("Config", "a name in a config file that looks like a misspelt setting it does not set is "
     "one warning listing them (`--strict-config` makes it an error); `timeout = 30.0` is "
     "accepted", "it catches `worker = 4` without refusing files Gunicorn runs"),
    ("Process", "a worker aborted on `--timeout` logs its stacks (every thread's under gthread) at "
     "CRITICAL; one that ignores SIGABRT gets SIGRTMIN (a faulthandler dump to stderr) 2 s later, then "
     "SIGKILL", "the evidence of where it was stuck (Gunicorn #185, #521)"),
    ("Process", "with `--preload` the master runs `gc.collect()` and `gc.freeze()` before forking",
     "the workers keep the preloaded pages shared (Gunicorn #1640; docs/performance.md measures it)"),
    ("Config", "`--print-config` shows unset hooks as None, leaves out the Gunicorn settings "
     "pronghorn lacks, and shows some values in its own form (`forwarded_allow_ips` as text)",
     "it prints what this server will do"),
    ("Config", "a HUP whose embedded `load_config()` fails keeps the running configuration (the "
     "master goes on)", "a reload must not take a serving server down"),
)

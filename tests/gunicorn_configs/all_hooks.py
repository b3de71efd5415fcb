# Every server hook Gunicorn 27 calls, each reading what real hooks read from its arguments.
import logging
import os
import time

from hook_record import record

bind = os.getenv("BIND", "127.0.0.1:8000")
workers = int(os.getenv("WORKERS", "2"))
loglevel = "debug"

log = logging.getLogger("deploy.hooks")


def on_starting(server):
    server.log.info("starting %s with %s workers", server.cfg.proc_name, server.cfg.workers)
    record("on_starting", server=server)


def on_reload(server):
    server.log.info("reloading; settings: %d", len(server.cfg.settings))
    record("on_reload", server=server)


def when_ready(server):
    for address in server.address:
        server.log.info("ready on %s", address)
    server.log.info("worker class %s", server.cfg.worker_class_str)
    record("when_ready", server=server)


def pre_fork(server, worker):
    record("pre_fork", server=server, worker=worker)


def post_fork(server, worker):
    server.log.info("worker %s forked (age %s)", worker.pid, worker.age)
    record("post_fork", server=server, worker=worker)


def post_worker_init(worker):
    # The app is loaded now: warm it up, say the worker is fine.
    worker.notify()
    worker.log.info("worker %s ready, %d sockets, timeout %s, app %r",
                    worker.pid, len(worker.sockets), worker.timeout, worker.wsgi)
    record("post_worker_init", worker=worker)


def worker_int(worker):
    worker.log.info("worker %s interrupted (alive=%s)", worker.pid, worker.alive)
    record("worker_int", worker=worker)


def worker_abort(worker):
    worker.log.warning("worker %s aborted", worker.pid)
    record("worker_abort", worker=worker)


def pre_exec(server):
    record("pre_exec", server=server)


def pre_request(worker, req):
    req.start_time = time.monotonic()  # a real habit: timing kept on the request object
    worker.log.debug("%s %s %s from %s", req.method, req.path, req.scheme, req.peer_addr)
    record("pre_request", worker=worker, req=req)


def post_request(worker, req, environ, resp):
    took = time.monotonic() - getattr(req, "start_time", time.monotonic())
    worker.log.debug("%s %s -> %s in %.3fs (%s)", req.method, req.path, resp.status, took,
                     environ.get("REQUEST_METHOD"))
    record("post_request", worker=worker, req=req, resp=resp, environ=environ)


def child_exit(server, worker):
    server.log.info("child %s exited", worker.pid)
    record("child_exit", server=server, worker=worker)


def worker_exit(server, worker):
    server.log.info("worker %s exiting", worker.pid)
    record("worker_exit", server=server, worker=worker)


def nworkers_changed(server, new_value, old_value):
    server.log.info("workers %s -> %s", old_value, new_value)
    record("nworkers_changed", server=server)


def on_exit(server):
    server.log.info("bye")
    record("on_exit", server=server)


def ssl_context(config, default_ssl_context_factory):
    # Only called with certfile set; kept as real configs keep it.
    context = default_ssl_context_factory()
    return context

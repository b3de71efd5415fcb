# Load the app once in the master (copy-on-write memory), then fork.
import os

from hook_record import record

bind = os.getenv("BIND", "0.0.0.0:8000")
workers = 2
preload_app = True


def on_starting(server):
    server.log.info("preloading the application")
    record("on_starting", server=server)


def when_ready(server):
    record("when_ready", server=server)


def post_fork(server, worker):
    # Connections opened at import time must not be shared across processes: the app would
    # reconnect here (e.g. db.engine.dispose()).
    worker.log.info("worker %s: reset connections", worker.pid)
    record("post_fork", server=server, worker=worker)

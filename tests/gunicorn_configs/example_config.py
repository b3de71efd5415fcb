# Sample Gunicorn configuration file, sectioned the way Gunicorn's own example is.
import os
import sys
import threading
import traceback

from hook_record import record

#
# Server socket
#
#   bind - The socket to bind.
#   backlog - The number of pending connections.
#
bind = os.environ["BIND"]
backlog = 2048

#
# Worker processes
#
workers = 1
worker_class = "sync"
worker_connections = 1000
timeout = 30
keepalive = 2

#
#   spew - Install a trace function that spews every line of Python executed.
#
spew = False

#
# Server mechanics
#
daemon = False
raw_env = [
    "CFGTEST_FROM_RAW_ENV=example",
]
pidfile = None
umask = 0
user = None
group = None
tmp_upload_dir = None

#
# Logging
#
errorlog = "-"
loglevel = "info"
accesslog = "-"
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'

#
# Process naming
#
proc_name = None


#
# Server hooks
#
def post_fork(server, worker):
    server.log.info("Worker spawned (pid: %s)", worker.pid)
    record("post_fork", server=server, worker=worker)


def pre_fork(server, worker):
    record("pre_fork", server=server, worker=worker)


def pre_exec(server):
    server.log.info("Forked child, re-executing.")
    record("pre_exec", server=server)


def when_ready(server):
    server.log.info("Server is ready. Spawning workers")
    record("when_ready", server=server)


def worker_int(worker):
    worker.log.info("worker received INT or QUIT signal")
    # Dump every thread's stack: where was it stuck?
    id2name = {th.ident: th.name for th in threading.enumerate()}
    code = []
    for thread_id, stack in sys._current_frames().items():
        code.append("\n# Thread: %s(%d)" % (id2name.get(thread_id, ""), thread_id))
        for filename, lineno, name, line in traceback.extract_stack(stack):
            code.append('File: "%s", line %d, in %s' % (filename, lineno, name))
            if line:
                code.append("  %s" % (line.strip()))
    worker.log.debug("\n".join(code))
    record("worker_int", worker=worker)


def worker_abort(worker):
    worker.log.info("worker received SIGABRT signal")
    record("worker_abort", worker=worker)

# Gunicorn with gevent workers, for an app that spends its time waiting on other services.
import os

bind = os.getenv("BIND", "0.0.0.0:8000")
workers = int(os.getenv("WEB_CONCURRENCY", "1"))
worker_class = "gevent"
worker_connections = int(os.getenv("WORKER_CONNECTIONS", "1000"))
timeout = 60
keepalive = 75  # longer than the load balancer's idle timeout

accesslog = "-"
loglevel = "info"


def post_fork(server, worker):
    server.log.info("gevent worker %s ready for %s connections", worker.pid,
                    server.cfg.worker_connections)

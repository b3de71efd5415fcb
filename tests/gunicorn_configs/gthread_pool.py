# Gunicorn with a thread pool per worker (I/O-bound views).
import multiprocessing
import os

bind = os.getenv("BIND", "0.0.0.0:8000")
workers = int(os.getenv("GUNICORN_WORKERS", "1"))
worker_class = "gthread"
threads = int(os.getenv("PYTHON_MAX_THREADS", multiprocessing.cpu_count() * 4))
worker_connections = 100
keepalive = 5
timeout = 120
graceful_timeout = 30

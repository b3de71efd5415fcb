# Docker image defaults: processes and threads from the environment, any proxy trusted (the
# container is only reachable through the ingress).
import os

bind = os.getenv("BIND", "0.0.0.0:8080")
workers = int(os.environ.get("GUNICORN_PROCESSES", "1"))
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
forwarded_allow_ips = "*"
secure_scheme_headers = {"X-Forwarded-Proto": "https"}

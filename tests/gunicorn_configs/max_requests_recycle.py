# Workers are recycled often: the app leaks memory through a C extension.
import os

bind = os.getenv("BIND", "0.0.0.0:8000")
workers = 2
max_requests = int(os.getenv("MAX_REQUESTS", "500"))
max_requests_jitter = int(os.getenv("MAX_REQUESTS_JITTER", "50"))
graceful_timeout = 5

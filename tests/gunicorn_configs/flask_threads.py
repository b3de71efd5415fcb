# gunicorn.conf.py for the Flask API
import os

PORT = int(os.environ.get("PORT", 5000))

bind = "127.0.0.1:" + str(PORT)
workers = 2
# More than one thread makes Gunicorn use its gthread worker.
worker_class = "sync"
threads = 2
timeout = 30

accesslog = "-"
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(D)s'
proc_name = "flask-api"

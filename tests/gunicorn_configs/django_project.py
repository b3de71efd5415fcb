"""Gunicorn configuration for the shop project (production).

Started by systemd as: gunicorn -c deploy/gunicorn.conf.py
"""
import multiprocessing
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

wsgi_app = "environ_app:application"
chdir = str(BASE_DIR)

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))

raw_env = [
    "DJANGO_SETTINGS_MODULE=shop.settings.production",
    "CFGTEST_SITE=shop",
]

# Logging: systemd's journal collects stdout and stderr.
accesslog = "-"
errorlog = "-"
capture_output = True
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

# Recycle workers now and then, to contain slow leaks in third-party code.
max_requests = 1000
max_requests_jitter = 100

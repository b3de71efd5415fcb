"""Server settings, importable as a module: gunicorn -c python:settings_module app:app

Kept beside the project's other settings modules, so that it is found in the working directory.
"""
import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = 1
threads = 1
timeout = 30
graceful_timeout = 10
loglevel = "info"
accesslog = "-"

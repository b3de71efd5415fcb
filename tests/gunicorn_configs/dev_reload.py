# Development: one worker, reload on code and template changes, everything logged.
import glob
import os

DEBUG = os.environ.get("DEBUG", "0") == "1"

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = 1
reload = DEBUG
reload_extra_files = glob.glob("templates/**/*.html", recursive=True) if DEBUG else []
loglevel = "debug" if DEBUG else "info"
accesslog = "-"
errorlog = "-"
timeout = 0 if DEBUG else 30  # no worker timeout while sitting in a debugger

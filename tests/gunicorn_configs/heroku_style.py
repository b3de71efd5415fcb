# Procfile: web: gunicorn -c heroku_style.py app:app
import os

bind = ":" + os.environ.get("PORT", "5000")
workers = int(os.environ.get("WEB_CONCURRENCY", 2))
preload_app = True
timeout = 25  # the router gives up after 30 s
accesslog = "-"
forwarded_allow_ips = "*"

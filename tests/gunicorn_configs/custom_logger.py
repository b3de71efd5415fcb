# Gunicorn with the team's JSON logger instead of its own.
import os

bind = os.getenv("BIND", "0.0.0.0:8000")
workers = 1
loglevel = "info"
logger_class = "json_logger.JsonLogger"

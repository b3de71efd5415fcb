# Structured logs for the log shipper: Gunicorn's loggers configured with dictConfig.
import os

bind = os.getenv("BIND", "0.0.0.0:8000")
workers = 1
accesslog = "-"
loglevel = os.getenv("LOG_LEVEL", "info")

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "format": '{"time": "%(asctime)s", "logger": "%(name)s", "level": "%(levelname)s", '
                      '"message": "%(message)s"}',
        },
        "access": {
            "format": "ACCESS %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        },
        "access_console": {
            "class": "logging.StreamHandler",
            "formatter": "access",
            "stream": "ext://sys.stdout",
        },
    },
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["access_console"], "propagate": False},
    },
}

"""The error log, in Gunicorn's format, so that log scrapers written for it keep working."""

from __future__ import annotations

import logging
import sys

LOGGER_NAME = "pronghorn.error"
_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
_DATEFMT = "%Y-%m-%d %H:%M:%S %z"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL}


def setup_error_log(target: str, level: str) -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers.clear()
    logger.propagate = False
    if level.lower() not in _LEVELS:
        raise ValueError(f"--log-level: {level!r} is not one of {', '.join(_LEVELS)}")
    logger.setLevel(_LEVELS[level.lower()])
    handler: logging.Handler
    if target == "-":
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = logging.FileHandler(target)
    handler.setFormatter(logging.Formatter(_FORMAT, _DATEFMT))
    logger.addHandler(handler)
    return logger


def error_log() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


def reopen_logs() -> None:
    """USR1 (logrotate): reopen every log file so writes go to the new file, losing no line."""
    for handler in logging.getLogger(LOGGER_NAME).handlers:
        if isinstance(handler, logging.FileHandler):
            handler.acquire()
            try:
                if handler.stream is not None:
                    handler.stream.flush()
                    handler.stream.close()
                handler.stream = handler._open()
            finally:
                handler.release()

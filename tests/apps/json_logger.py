"""A logger_class with Gunicorn's Logger interface, written without Gunicorn (as projects that
ship JSON logs write one): the methods Gunicorn's arbiter and workers call, and the access line as
one JSON object per request on stdout, prefixed "JSONACCESS ", so that the test can compare what
pronghorn and Gunicorn hand it."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any


class JsonLogger:
    def __init__(self, cfg: Any) -> None:
        self.error_log = logging.getLogger("app.server")
        self.error_log.propagate = False
        self.access_log = logging.getLogger("app.access")
        self.access_log.propagate = False
        self.cfg = cfg
        self.setup(cfg)

    def setup(self, cfg: Any) -> None:
        self.error_log.handlers[:] = []
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("JSONERROR %(levelname)s %(message)s"))
        self.error_log.addHandler(handler)
        self.error_log.setLevel(getattr(logging, str(cfg.loglevel).upper(), logging.INFO))

    def critical(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.error_log.critical(msg, *args, **kwargs)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.error_log.error(msg, *args, **kwargs)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.error_log.warning(msg, *args, **kwargs)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.error_log.info(msg, *args, **kwargs)

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.error_log.debug(msg, *args, **kwargs)

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.error_log.exception(msg, *args, **kwargs)

    def log(self, lvl: int | str, msg: str, *args: Any, **kwargs: Any) -> None:
        if isinstance(lvl, str):
            lvl = getattr(logging, lvl.upper(), logging.INFO)
        self.error_log.log(lvl, msg, *args, **kwargs)

    def now(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S")

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        line = {
            "status": resp.status,
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "version": list(req.version),
            "path_info": environ.get("PATH_INFO"),
            "user_agent": environ.get("HTTP_USER_AGENT"),
            "took_is_timedelta": hasattr(request_time, "total_seconds"),
        }
        sys.stdout.write("JSONACCESS " + json.dumps(line, sort_keys=True) + "\n")
        sys.stdout.flush()

    def reopen_files(self) -> None:
        pass

    def close_on_exec(self) -> None:
        pass

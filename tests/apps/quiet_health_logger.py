"""The most copied logger_class: Gunicorn's own Logger, minus the access lines of health checks
(the load balancer's probes flood the log). It needs Gunicorn importable, as it is in a project
that moves from Gunicorn to pronghorn with both installed."""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

HEALTH_PATHS = ("/__ready", "/health", "/healthz")


class HealthCheckFilterLogger(Logger):  # type: ignore[misc]
    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if req.path in HEALTH_PATHS:
            return
        super().access(resp, req, environ, request_time)

"""Config file for tests/test_zero_drop.py: hands the worker to stop_app, so that its /hold
request can wait until the worker has seen TERM."""

from typing import Any


def post_worker_init(worker: Any) -> None:
    import stop_app

    stop_app.WORKER = worker

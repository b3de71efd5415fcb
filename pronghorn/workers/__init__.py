"""Worker classes: which names exist, what Gunicorn's names map to, and loading one in a worker.

A worker class is a module with ``run_worker(app, cfg, listeners, log, ctx)`` and, optionally,
``prepare_process()``, which the forked worker calls before it imports anything else of the app
(gevent's monkey-patching must come first). The master resolves names here and never imports a
worker class module. For the classes that run on uvloop it does import the loop's native
libraries before the first fork (:func:`preload_in_master`); for gevent it imports nothing that
gevent patches.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

#: Our worker classes and the modules that implement them.
WORKER_CLASSES: dict[str, str] = {
    "sync": "pronghorn.workers.sync",
    "gthread": "pronghorn.workers.gthread",
    "gevent": "pronghorn.workers.ggevent",
    "asgi": "pronghorn.workers.asgi",
}

#: Every other spelling that names one of ours: Gunicorn's class paths and "egg:" URIs, and our own
#: class paths, so that a config file written for Gunicorn keeps working.
_ALIASES: dict[str, str] = {
    "gunicorn.workers.sync.syncworker": "sync",
    "gunicorn.workers.gthread.threadworker": "gthread",
    "gunicorn.workers.ggevent.geventworker": "gevent",
    "gunicorn.workers.ggevent.geventpywsgiworker": "gevent",
    "pronghorn.workers.sync.syncworker": "sync",
    "pronghorn.workers.gthread.threadworker": "gthread",
    "pronghorn.workers.ggevent.geventworker": "gevent",
    "pronghorn.workers.asgi.asgiworker": "asgi",
    "gunicorn.workers.gasgi.asgiworker": "asgi",
}

#: The uvicorn worker classes, which Gunicorn deployments of ASGI apps name: served by ours (the
#: master says once, at start, what they map to).
UVICORN_ALIASES: dict[str, str] = {
    "uvicorn.workers.uvicornworker": "asgi",
    "uvicorn.workers.uvicornh11worker": "asgi",
    "uvicorn_worker.uvicornworker": "asgi",
    "uvicorn_worker.uvicornh11worker": "asgi",
}

#: Gunicorn worker classes with no pronghorn counterpart, and what to use instead.
_OTHERS: dict[str, str] = {
    "eventlet": "eventlet is deprecated upstream; 'gevent' serves the same apps",
    "gunicorn.workers.geventlet.eventletworker": "eventlet is deprecated upstream; 'gevent' serves "
                                                 "the same apps",
    "tornado": "pronghorn serves WSGI apps; run a Tornado app with Tornado's own server",
    "gunicorn.workers.gtornado.tornadoworker": "pronghorn serves WSGI apps; run a Tornado app with "
                                               "Tornado's own server",
}

GEVENT_MISSING = ("the gevent worker class needs gevent, which is not installed: "
                  "pip install 'pronghorn[gevent]'")


class WorkerClassError(ValueError):
    """The worker class cannot be used; the message says why and what to use."""


def resolve_worker_class(name: str, threads: int = 1) -> str:
    """The canonical name ('sync', 'gthread', 'gevent' or 'asgi') for what the user wrote.

    As in Gunicorn, the sync class with more than one thread is the threaded class. A gevent that
    is not installed is reported here, in the master, without importing it (importing gevent in the
    master would defeat patching it first in the workers).
    """
    key = name.strip()
    lowered = key.lower()
    if lowered.startswith("egg:gunicorn#") or lowered.startswith("egg:pronghorn#"):
        lowered = lowered.split("#", 1)[1]
    canonical = (lowered if lowered in WORKER_CLASSES
                 else _ALIASES.get(lowered) or UVICORN_ALIASES.get(lowered))
    if canonical is None:
        ours = ", ".join(repr(n) for n in WORKER_CLASSES)
        reason = _OTHERS.get(lowered)
        if reason is None:
            reason = ("not a pronghorn worker class; a worker class written for Gunicorn's "
                      "internals cannot run here")
        raise WorkerClassError(f"{key!r}: {reason}. pronghorn's worker classes are {ours}")
    if canonical == "sync" and threads > 1:
        canonical = "gthread"
    if canonical == "gevent" and importlib.util.find_spec("gevent") is None:
        raise WorkerClassError(GEVENT_MISSING)
    return canonical


def runs_on_uvloop(canonical: str) -> bool:
    """Whether the workers of this class run on uvloop (asyncio's own loop without it): sync and
    gthread and asgi (workers/aio.py); gevent runs on its hub. Asked by the master (what to preload) and
    by nothing else: the worker classes' modules say it themselves by what they import."""
    return canonical in ("sync", "gthread", "asgi")


def preload_in_master(canonical: str) -> None:
    """Import, in the master, the libraries the workers of this class will import anyway.
    Importing uvloop (and asyncio) loads and initialises OpenSSL through ``ssl``: done once in the
    master, every worker shares those pages instead of touching them again, about 5 MiB of each
    worker's resident set on Linux. Not for gevent, which has to patch ``ssl`` and ``socket`` in
    the worker before they are imported. uvloop is optional: without it the workers run on
    asyncio."""
    if not runs_on_uvloop(canonical):
        return
    for name in ("asyncio", "uvloop"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # the worker falls back to asyncio after the fork


def mapped_alias(name: str) -> str | None:
    """What a uvicorn worker class name was mapped to, to say once at start; None for others."""
    canonical = UVICORN_ALIASES.get(name.strip().lower())
    return None if canonical is None else f"{name.strip()} is served by pronghorn's {canonical!r} worker"


def load_worker_class(canonical: str) -> ModuleType:
    """Import a worker class module, in the worker process."""
    return importlib.import_module(WORKER_CLASSES[canonical])

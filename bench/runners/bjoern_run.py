"""Serve a WSGI app with bjoern: ``python bjoern_run.py MODULE:CALLABLE HOST PORT``.

bjoern has no command line of its own, so the benchmark starts it through this. bjoern is
one process with one thread and writes no access log, which is what the harness wants.
"""

from __future__ import annotations

import importlib
import os
import sys

import bjoern


def main(argv: list[str]) -> None:
    target, host, port = argv
    module_name, _, attribute = target.partition(":")
    # Like the other servers, import from the working directory (and PYTHONPATH).
    sys.path.insert(0, os.getcwd())
    app = getattr(importlib.import_module(module_name), attribute or "application")
    bjoern.run(app, host, int(port))


if __name__ == "__main__":
    main(sys.argv[1:])

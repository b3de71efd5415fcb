"""Builds pronghorn, with its per-request modules compiled by mypyc where this machine can.

The modules (pronghorn/compiled.py's MODULES) are ordinary typed Python and stay the source of
truth: mypyc compiles them as mypy checks them, into extensions beside the ``.py`` files, which
Python imports first. Where mypyc or a C compiler is missing, or the build fails, nothing is
compiled, with a warning, and the pure-Python modules run: ``pip install .`` works either way.
docs/performance.md ("Compiled per-request modules") has what it buys, docs/architecture.md how to
work with it.

- A wheel (``pip install .``) is compiled; ``PRONGHORN_PURE=1`` makes it pure Python.
- An editable install (``pip install -e .``, README's test command) is pure Python: extensions in
  the checkout would shadow every later edit of their ``.py`` until rebuilt. ``PRONGHORN_COMPILE=1
  python setup.py build_ext --inplace`` builds them there (.ci/run tests both ways); tests/conftest.py
  refuses to run over one older than its source.
"""

from __future__ import annotations

import os
import runpy
import sys
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

# The compiled modules share one library of mypyc's, inside the package.
GROUP = "pronghorn._compiled"


def _wanted() -> bool:
    if os.environ.get("PRONGHORN_PURE"):
        return False
    if os.environ.get("PRONGHORN_COMPILE"):
        return True
    # Only a wheel is compiled by default: an editable install runs "editable_wheel", and pip's
    # metadata steps ("dist_info", "egg_info") build nothing.
    return "bdist_wheel" in sys.argv


def _extensions() -> list[Any]:
    if not _wanted():
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("pronghorn: mypyc is not installed, built as pure Python", file=sys.stderr)
        return []
    modules = runpy.run_path(os.path.join("pronghorn", "compiled.py"))["MODULES"]
    paths = [os.path.join("pronghorn", module) for module in modules]
    try:
        # The type check that matters is CI's (pyproject.toml's strict settings); here mypy only
        # gives mypyc the types, with no config file, and what the build environment lacks
        # (httptools, h2: not build requirements) as Any.
        extensions = mypycify(["--config-file=", "--ignore-missing-imports", *paths],
                              opt_level="3", group_name=GROUP)
    except (Exception, SystemExit) as error:  # mypy's errors end in SystemExit
        print(f"pronghorn: mypyc failed ({error}), built as pure Python", file=sys.stderr)
        return []
    return extensions


class AllOrNothingBuildExt(build_ext):
    """Builds every extension or none: a module's extension imports the group's library, so one
    without the other would fail to import. A failure (no C compiler) leaves pure Python."""

    def build_extensions(self) -> None:
        built: list[str] = []
        try:
            # The group's library first: where it cannot build, nothing else is tried.
            for extension in sorted(self.extensions, key=lambda e: not e.name.startswith(GROUP)):
                self.build_extension(extension)
                built.append(self.get_ext_fullpath(extension.name))
            # Every output dated now, built or found up to date: mypyc leaves a library whose C did
            # not change, and a module's stub never changes, so their dates would say nothing of
            # the sources they were checked against (pronghorn/compiled.py's stale()).
            for path in built:
                os.utime(path)
        except Exception as error:  # CompileError, LinkError, a missing compiler's exec error
            self.warn(f"pronghorn: compiling failed ({error}); it runs as pure Python")
            for path in built:
                if os.path.exists(path):
                    os.remove(path)
            self.extensions = []


setup(ext_modules=_extensions(), cmdclass={"build_ext": AllOrNothingBuildExt})

"""``pip install .`` from this checkout: a wheel with the per-request modules compiled by mypyc where
a C compiler works, and a pure-Python wheel, with a warning, where none does (setup.py). Each wheel
is built as pip builds it (an isolated build environment from pyproject.toml's build requirements),
unpacked, and run: ``--version`` says which it is, and the demo app answers a real request."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, exchange

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("cc") is None,
                                reason="needs a C compiler for the compiled wheel")


def build_wheel(tmp_path: Path, env: dict[str, str]) -> tuple[Path, list[str], str]:
    """A copy of the source, so the build writes nothing into the checkout; returns the unpacked
    wheel, its names and the build's output."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "pronghorn", source / "pronghorn",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(wheels), str(source)],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("pronghorn-*.whl")
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(unpacked)
    return unpacked, names, built.stdout + built.stderr


def served_by(unpacked: Path, start_server) -> str:  # type: ignore[no-untyped-def]
    """What ``pronghorn --version`` says, from the unpacked wheel, once its demo app has answered."""
    version = subprocess.run([sys.executable, "-m", "pronghorn", "--version"], cwd=unpacked,
                             capture_output=True, text=True, check=True).stdout
    _, (address,) = start_server("pronghorn.demo:app", env={"PYTHONPATH": str(unpacked)},
                                 cwd=unpacked)
    reply = exchange(address, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n"), reply
    return version


def test_a_wheel_is_compiled(tmp_path: Path, start_server) -> None:  # type: ignore[no-untyped-def]
    unpacked, names, _ = build_wheel(tmp_path, {})
    from pronghorn.compiled import MODULES
    for module in MODULES:
        assert any(name.startswith("pronghorn/" + module[:-3] + ".") and name.endswith(".so")
                   for name in names), module
    assert any(name.startswith("pronghorn/_compiled__mypyc") for name in names)
    assert "compiled: " in served_by(unpacked, start_server)


def test_without_a_c_compiler_the_wheel_is_pure_python(tmp_path: Path, start_server) -> None:  # type: ignore[no-untyped-def]
    unpacked, names, output = build_wheel(tmp_path, {"CC": "false"})
    assert not [name for name in names if name.endswith(".so")]
    assert "compiling failed" in output
    assert "pure Python" in served_by(unpacked, start_server)

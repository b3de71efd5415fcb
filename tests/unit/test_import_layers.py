"""Imports flow down the layers only, no two pronghorn modules import each other, and the configuration
loads nothing of the runtime.

The rank table below is the one statement of the layering (docs point here). A module may import its
own layer and any layer of a lower rank; two different layers of the same rank are independent and
import neither each other nor anything above. The table names layers that do not exist yet
(``pronghorn.cycle``, ``pronghorn.asgi``) so that they are placed before their first line is written.

Everything is checked on the source with ``ast`` (module-level and function-level imports, relative
and absolute, ``if TYPE_CHECKING:`` ones too: a type that must come from above is a layering problem
as well), so a lazy import inside a function is caught and nothing is imported to check it.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "pronghorn"

#: layer (a module or package) → rank. Lower ranks are lower layers.
RANKS: dict[str, int] = {
    # The package root: the version and SERVER_SOFTWARE, read by every layer; it imports nothing.
    "pronghorn": 0,
    # The registry of settings: values, converters, the command line, config files, docs. Standard
    # library only, so that reading a configuration never loads the HTTP core, asyncio or ssl.
    "pronghorn.config": 1,
    # The sans-IO protocol cores: the standard library and httptools (tests/unit/test_http_imports.py
    # narrows that further).
    "pronghorn.http": 1,
    # Small services the layers above share, each interpreting settings it reads from config:
    # which peers are trusted proxies, the TLS context, the error/access logs and statsd.
    "pronghorn.trust": 2,
    "pronghorn.tls": 2,
    "pronghorn.logs": 2,
    # The application interfaces, side by side: what they share goes below them.
    "pronghorn.wsgi": 3,
    "pronghorn.asgi": 3,
    # The one request cycle and connection policy every worker class drives.
    "pronghorn.cycle": 4,
    # I/O drivers, the worker's heartbeat slot among them (the master reads it).
    "pronghorn.workers": 5,
    # The arbiter: listeners, fork, signals, reload, systemd.
    "pronghorn.master": 6,
    # The command line: the server's (cli), the systemd-unit subcommand built on it, and the entry
    # point that chooses between them.
    "pronghorn.cli": 7,
    "pronghorn.systemd_unit": 8,
    # `pronghorn ctl`: the control socket's client, on the master's framing (master/control_wire.py).
    "pronghorn.ctl": 8,
    # Gunicorn's embedding API (pronghorn.app.base.BaseApplication, wsgiapp, the PasteDeploy
    # server runner): the command line's steps, driven from an application's own code.
    "pronghorn.app": 8,
    "pronghorn.__main__": 9,
    # An application, loaded by name like any other; nothing in the server imports it.
    "pronghorn.demo": 10,
}

#: (importing file relative to pronghorn/, imported layer) pairs tolerated for now. Only for files
#: another change is rewriting; that change removes its entries.
KNOWN_EXCEPTIONS: frozenset[tuple[str, str]] = frozenset()

#: What ``import pronghorn.config`` must not load.
CONFIG_MUST_NOT_LOAD = ("httptools", "asyncio", "ssl", "uvloop", "gevent")


def layer_of(module: str) -> str | None:
    """The longest layer name that is ``module`` or a package holding it."""
    best = None
    for layer in RANKS:
        inside = module == layer or module.startswith(layer + ".")
        if inside and (best is None or len(layer) > len(best)):
            best = layer
    return best


@dataclass(frozen=True)
class Import:
    source: str   # the importing module
    target: str   # the pronghorn module imported
    path: Path
    line: int


def module_name(path: Path, package_dir: Path = PACKAGE_DIR) -> str:
    parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str, known: set[str]) -> bool:
    """Whether ``name`` is a pronghorn module: one of the files, or a layer to come."""
    return name in known or name in RANKS


def imports_in(source: str, module: str, is_package: bool, known: set[str],
               path: Path = Path("<source>")) -> list[Import]:
    """Every pronghorn module ``source`` (the text of ``module``) imports, with its line."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []

    def add(target: str, line: int) -> None:
        edge = Import(module, target, path, line)
        if (target == "pronghorn" or target.startswith("pronghorn.")) and edge not in found:
            found.append(edge)

    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                parent = ".".join(base + ([node.module] if node.module else []))
            else:
                parent = node.module or ""
            for alias in node.names:
                # "from .. import config" imports a module; "from ..config import Config" a name
                child = f"{parent}.{alias.name}"
                add(child if _is_module(child, known) else parent, node.lineno)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Name) and node.func.id == "__import__")
                   or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"))):
            add(node.args[0].value, node.lineno)
    return found


def all_imports(package_dir: Path = PACKAGE_DIR) -> tuple[set[str], list[Import]]:
    paths = sorted(package_dir.rglob("*.py"))
    known = {module_name(path, package_dir) for path in paths}
    edges: list[Import] = []
    for path in paths:
        edges += imports_in(path.read_text(), module_name(path, package_dir),
                            path.name == "__init__.py", known, path)
    return known, edges


def layer_violations(edges: list[Import], package_dir: Path = PACKAGE_DIR) -> list[str]:
    problems = []
    for edge in edges:
        source_layer, target_layer = layer_of(edge.source), layer_of(edge.target)
        assert source_layer is not None and target_layer is not None  # test_every_module_has_a_layer
        if source_layer == target_layer:
            continue
        source_rank, target_rank = RANKS[source_layer], RANKS[target_layer]
        if target_rank < source_rank:
            continue
        where = edge.path.relative_to(package_dir) if edge.path.is_absolute() else edge.path
        if (str(where), target_layer) in KNOWN_EXCEPTIONS:
            continue
        why = "a higher layer" if target_rank > source_rank else "a layer of the same rank"
        problems.append(f"pronghorn/{where}:{edge.line}: {edge.source} (layer {source_layer}, "
                        f"rank {source_rank}) imports {edge.target}, {why} ({target_layer}, "
                        f"rank {target_rank})")
    return problems


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a list of modules, the first repeated at the end) per strongly connected group of
    modules, found with Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph.get(node, ()):
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_cycle_through(group, graph) for group in groups]


def _cycle_through(group: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest cycle from the group's first module back to itself, inside the group."""
    members, start = set(group), group[0]
    paths: dict[str, list[str]] = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph.get(node, ()) & members):
            if nxt == start:
                return paths[node] + [start]
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    raise AssertionError(f"no cycle through {group}")  # a strongly connected group has one


def import_graph(known: set[str], edges: list[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in known}
    for edge in edges:
        if edge.target in known:
            graph[edge.source].add(edge.target)
    return graph


# -- the rules, on pronghorn's own source -----------------------------------------------------------

def test_sources_found() -> None:
    known, edges = all_imports()
    assert {"pronghorn.cli", "pronghorn.config.settings", "pronghorn.http.connection"} <= known
    assert len(edges) > 50


def test_every_module_has_a_layer() -> None:
    known, _ = all_imports()
    assert sorted(module for module in known if layer_of(module) is None) == [], \
        "add these modules to RANKS"


def test_imports_flow_down() -> None:
    _, edges = all_imports()
    problems = layer_violations(edges)
    assert not problems, "imports from a higher layer (or a sibling):\n" + "\n".join(problems)


def test_no_import_cycles() -> None:
    known, edges = all_imports()
    cycles = find_cycles(import_graph(known, edges))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_known_exceptions_still_needed() -> None:
    """An exception whose import is gone is removed from the list, so the list never hides a new one."""
    _, edges = all_imports()
    present = {(str(edge.path.relative_to(PACKAGE_DIR)), layer_of(edge.target)) for edge in edges}
    assert sorted(KNOWN_EXCEPTIONS - present) == []


@pytest.mark.parametrize("statement", ["import pronghorn.config", "import pronghorn.config.settings",
                                       "import pronghorn.config.docs"])
def test_config_loads_nothing_of_the_runtime(statement: str) -> None:
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True,
                                       capture_output=True, text=True).stdout)
    bad = [name for name in loaded
           if name.split(".")[0] in CONFIG_MUST_NOT_LOAD
           or (name.startswith("pronghorn.") and not name.startswith("pronghorn.config"))]
    assert bad == [], f"{statement} loads {bad}"


# -- the checker itself ----------------------------------------------------------------------------

KNOWN = {"pronghorn", "pronghorn.config", "pronghorn.config.settings", "pronghorn.workers",
         "pronghorn.workers.base", "pronghorn.master", "pronghorn.master.heartbeat", "pronghorn.logs"}


def _targets(source: str, module: str = "pronghorn.workers.base", is_package: bool = False) -> list[str]:
    return [edge.target for edge in imports_in(source, module, is_package, KNOWN)]


@pytest.mark.parametrize(("source", "target"), [
    ("from ..master.heartbeat import READY", "pronghorn.master.heartbeat"),
    ("def f():\n    from ..master import heartbeat\n", "pronghorn.master.heartbeat"),
    ("import pronghorn.master.heartbeat as hb", "pronghorn.master.heartbeat"),
    ("from pronghorn import logs", "pronghorn.logs"),
    ("from .. import SERVER_SOFTWARE", "pronghorn"),
    ("from . import runs_on_uvloop", "pronghorn.workers"),
    ("from ..cycle import Cycle", "pronghorn.cycle"),
    ("if TYPE_CHECKING:\n    from ..master.arbiter import Arbiter\n", "pronghorn.master.arbiter"),
    ("importlib.import_module('pronghorn.master')", "pronghorn.master"),
])
def test_checker_resolves(source: str, target: str) -> None:
    assert _targets(source) == [target]


def test_checker_resolves_from_a_package() -> None:
    assert _targets("from .settings import Config", "pronghorn.config", True) == \
        ["pronghorn.config.settings"]


def test_checker_flags_upward_and_sibling_imports() -> None:
    def problems(source: str, module: str) -> list[str]:
        return layer_violations(imports_in(source, module, False, KNOWN, Path("x.py")))

    assert problems("from ..master.heartbeat import READY", "pronghorn.workers.base")
    assert problems("from .logs import setup_logging", "pronghorn.trust")  # siblings, rank 2
    assert problems("from ..wsgi.forwarded import X", "pronghorn.config.settings")
    assert not problems("from ..http import Limits", "pronghorn.workers.base")
    assert not problems("from .settings import Config", "pronghorn.config.file")
    assert "x.py:1: pronghorn.workers.base (layer pronghorn.workers, rank 5) imports " \
           "pronghorn.master.heartbeat, a higher layer (pronghorn.master, rank 6)" in \
           problems("from ..master.heartbeat import READY", "pronghorn.workers.base")[0]


def test_checker_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": set()}
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["e", "e"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_layers_to_come_are_placed() -> None:
    assert RANKS["pronghorn.wsgi"] < RANKS["pronghorn.cycle"] < RANKS["pronghorn.workers"]
    assert RANKS["pronghorn.asgi"] == RANKS["pronghorn.wsgi"]

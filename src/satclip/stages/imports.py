"""Static import graph of the ``satclip`` package: which source files a stage runs.

A stage runs its notebook, its stage module and the runner, and everything they import,
transitively (imports inside functions included: the graph is read from the source with
``ast``, nothing is imported). The check stage hashes these files into each stage's fingerprint
(``satclip.stages.check``), so editing a module re-runs exactly the stages that import it; the
architecture tests use the same graph (no import cycle, layering).

Modules are dotted names (``satclip.io``); files are paths relative to the repository root.
"""

from __future__ import annotations

import ast
import json
from functools import cache
from pathlib import Path

PACKAGE = "satclip"
SRC = Path(__file__).resolve().parents[2]   # the folder that holds the package (src/)


def module_file(module: str) -> Path | None:
    """The file of a ``satclip`` module or package (its ``__init__.py``), or None."""
    base = SRC / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def all_modules() -> list[str]:
    """Every module of the package, sorted by file path."""
    out = []
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out.append(".".join(parts))
    return out


def imports_of_source(source: str) -> set[str]:
    """``satclip`` modules imported anywhere in ``source`` (submodules resolved, parent packages included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name.split(".")[0] != PACKAGE or module_file(name) is None:
                continue
            parts = name.split(".")
            found.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))  # packages run __init__
    return found


@cache
def direct_imports(module: str) -> frozenset[str]:
    """The ``satclip`` modules that ``module`` imports (itself excluded)."""
    path = module_file(module)
    return frozenset(imports_of_source(path.read_text()) - {module}) if path else frozenset()


def closure(modules: set[str]) -> set[str]:
    """``modules`` and everything they import, transitively."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(direct_imports(m))
    return seen


def notebook_imports(path: Path) -> set[str]:
    """``satclip`` modules imported by the code cells of a notebook."""
    cells = json.loads(Path(path).read_text())["cells"]
    return set().union(*(imports_of_source("".join(c["source"])) for c in cells if c["cell_type"] == "code"))


def stage_modules(stage: str, notebook: Path) -> set[str]:
    """What a pipeline stage runs: the runner, its stage module, its notebook's imports, transitively."""
    return closure({"satclip.stages.runner", f"satclip.stages.{stage}"} | notebook_imports(notebook))


def stage_files(stage: str, notebook: Path) -> list[Path]:
    """The source files of :func:`stage_modules` (absolute paths, sorted)."""
    return sorted(f for f in map(module_file, stage_modules(stage, notebook)) if f is not None)

"""Static import graph of the ``satclip`` package (imports inside functions included).

Used by the architecture tests (no import cycle) and the dvc.yaml tests (every stage's deps
cover the modules its notebook and runner import). Modules are dotted names; files are
``src/satclip/...`` paths relative to the repository root.
"""

from __future__ import annotations

import ast
import json
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = "satclip"


def module_file(module: str) -> Path | None:
    """The file of a ``satclip`` module or package (``__init__.py``), or None."""
    base = SRC / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def all_modules() -> list[str]:
    """Every module of the package."""
    out = []
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out.append(".".join(parts))
    return out


def imports_of_source(source: str) -> set[str]:
    """``satclip`` modules imported anywhere in ``source`` (submodules resolved, parents included)."""
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
    cells = json.loads(path.read_text())["cells"]
    return set().union(*(imports_of_source("".join(c["source"])) for c in cells if c["cell_type"] == "code"))


def files_of(modules: set[str]) -> set[str]:
    """Repository-relative files of modules."""
    return {module_file(m).relative_to(REPO).as_posix() for m in modules if module_file(m)}


def stage_modules(stage: str, notebook: Path | None) -> set[str]:
    """What a dvc.yaml stage runs: its notebook's imports, its stage module and the runner."""
    roots = {"satclip.stages.runner", f"satclip.stages.{stage}"} if notebook else {"satclip.config"}
    if notebook is not None:
        roots |= notebook_imports(notebook)
    return closure(roots)


def compact_deps(files: set[str]) -> list[str]:
    """``files`` with every package folder whose modules are all listed replaced by the folder."""
    out = set(files)
    for folder in sorted({str(Path(f).parent) for f in files}, key=len):
        members = {p.relative_to(REPO).as_posix() for p in (REPO / folder).glob("*.py")}
        if folder != f"src/{PACKAGE}" and members and members <= files:
            out = {f for f in out if Path(f).parent.as_posix() != folder} | {folder}
    return sorted(out)


STAGES = ("check", "download", "pretrain", "extract", "evaluate", "tables", "figures")


def expected_src_deps(stage: str) -> list[str]:
    """The ``src/`` deps dvc.yaml must list for ``stage`` (the import closure, compacted)."""
    import sys

    sys.path.insert(0, str(SRC))
    from satclip.paths import notebook_template

    notebook = REPO / notebook_template(stage) if stage != "check" else None
    return compact_deps(files_of(stage_modules(stage, notebook)))


def write_dvc_yaml_deps(path: Path = REPO / "dvc.yaml") -> None:
    """Rewrite the ``- src/...`` dep lines of every stage in ``dvc.yaml`` (the rest is kept as written)."""
    import re

    lines, out, stage = path.read_text().splitlines(keepends=True), [], None
    i = 0
    while i < len(lines):
        line = lines[i]
        match = re.match(r"^  ([a-z_]+):\s*$", line)
        if match:
            stage = match.group(1)
        dep = re.match(r"^(\s*)- src/", line)
        if dep and stage in STAGES:
            while i < len(lines) and re.match(r"^\s*- src/", lines[i]):
                i += 1
            out += [f"{dep.group(1)}- {d}\n" for d in expected_src_deps(stage)]
            continue
        out.append(line)
        i += 1
    path.write_text("".join(out))


if __name__ == "__main__":  # python tests/imports.py: rewrite dvc.yaml's src deps from the imports
    write_dvc_yaml_deps()

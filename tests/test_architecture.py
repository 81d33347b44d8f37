"""The shape of the package.

No import cycle, small modules, stages that only run stages, reporting that never imports a
stage, citations a reader of a clone can follow, a true README.
"""

from __future__ import annotations

import ast
import re
import subprocess

import pytest

from imports import REPO, SRC, all_modules, direct_imports, module_file

MAX_LINES = 500


def _cycle() -> list[str] | None:
    """One import cycle among the package's modules (imports inside functions included), or None."""
    graph = {m: sorted(direct_imports(m)) for m in all_modules()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in graph.get(m, []):
            if n == m or n.startswith(m + "."):  # a package importing its own submodule is no cycle
                continue
            if state.get(n) == 1:
                if not m.startswith(n + "."):  # a submodule importing its package's name is fine too
                    return stack[stack.index(n):] + [n]
            elif n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in graph:
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_no_import_cycle():
    assert _cycle() is None, " -> ".join(_cycle() or [])


def test_no_module_is_over_500_lines():
    long = {m: n for m in all_modules() if (n := len(module_file(m).read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_reporting_never_imports_a_stage():
    for m in all_modules():
        if m.startswith(("satclip.reporting", "satclip.evaluation", "satclip.pretraining", "satclip.data",
                         "satclip.encoders", "satclip.extraction", "satclip.sweeps")):
            assert not [n for n in direct_imports(m) if n.startswith("satclip.stages")], m


@pytest.mark.parametrize("stage", ["download", "pretrain", "extract", "evaluate", "tables", "figures"])
def test_a_stage_module_is_its_run_function_and_entry_point(stage):
    tree = ast.parse((SRC / "satclip" / "stages" / f"{stage}.py").read_text())
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert functions == {f"run_{stage}", "main"}, functions


def test_no_tracked_file_cites_a_document_outside_the_repository():
    names = ["DESIGN" + ".md", "SATCLIP" + "_FACTS"]  # spelled apart: this file does not cite them
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    citing = [f for f in files if (REPO / f).is_file() and not f.endswith((".png", ".pdf"))
              and any(n in (REPO / f).read_text(errors="replace") for n in names)]
    assert not citing, citing


def _readme_layout() -> set[str]:
    """Paths of the ``.py`` files in the README's Layout tree (two spaces of indent per level)."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1]
    paths, stack = set(), []
    for line in block.splitlines():
        m = re.match(r"^(\s*)(\S+)", line)
        if not m or not m.group(2).endswith((".py", "/")):
            continue
        depth = len(m.group(1)) // 2
        stack[depth:] = [m.group(2).rstrip("/")]
        if m.group(2).endswith(".py"):
            paths.add("/".join(stack))
    return paths


def test_readme_layout_matches_the_tree():
    tree = {p.relative_to(REPO).as_posix() for p in (SRC / "satclip").rglob("*.py")}
    listed = {p for p in _readme_layout() if p.startswith("src/")}
    assert listed == tree, sorted(listed ^ tree)

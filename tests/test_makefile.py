"""The Makefile passes user values to commands quoted (no shell globbing or word splitting)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
@pytest.mark.parametrize(("target", "var"), [("repro", "EXP"), ("sweep", "NAME"), ("compare", "NAME")])
def test_user_values_reach_commands_quoted(target, var, tmp_path):
    value = "experiments/*.yaml; echo x"
    out = subprocess.run(["make", "-n", "-W", "pyproject.toml", "-o", ".venv/.installed", target, f"{var}={value}"],
                         cwd=REPO, capture_output=True, text=True, check=True).stdout
    lines = [line for line in out.splitlines() if "satclip " in line]
    assert lines and all(f'"{value}"' in line for line in lines), out

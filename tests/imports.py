"""The package's static import graph for the tests, with the repository's folders.

The graph is ``satclip.stages.imports``, which the check stage uses to fingerprint each stage's code.
"""

from __future__ import annotations

from pathlib import Path

from satclip.stages.imports import (  # noqa: F401  (re-exported for the tests)
    PACKAGE,
    SRC,
    all_modules,
    closure,
    direct_imports,
    imports_of_source,
    module_file,
    notebook_imports,
    stage_files,
    stage_modules,
)

REPO = Path(__file__).resolve().parents[1]

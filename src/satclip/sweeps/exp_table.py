"""The experiments at a glance: ``dvc exp show`` cut to what fits a terminal (``satclip exp``).

Plain ``dvc exp show`` has a column for every key of params.yaml (DVC lists the whole default
params file, ~120 keys) and for every file a stage depends on, so a terminal shows little but
"…". ``satclip exp`` runs it with:

- ``--keep`` (``KEEP``): the experiment, every headline metric (``results/metrics/headline.json``:
  flat names without a dot) and ``seed`` are always shown;
- ``--only-changed``: of the other columns, only params whose value differs between the rows
  (the key a sweep varies, an edited param);
- ``--drop`` (``DROP``): no dependency hashes (their names are paths), no queue state columns, no
  ``Created`` date (``dvc exp show`` has it), so that the swept params fit beside the headline.

Any other argument goes to ``dvc exp show`` (``-n 5``, ``--sort-by top1``, ``--csv``, ``--no-pager``...).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

# DVC's own bookkeeping columns (merged into Experiment or dropped when empty) are not protected
KEEP = r"^(Experiment|(?!(rev|typ|parent|State|Executor|Created)$)[^./]+)$"
DROP = r"(.*/|State$|Executor$|Created$)"   # dependency hashes (paths); the queue's bookkeeping; the date


def exp_show_command(extra: list[str], dvc: str = "dvc") -> list[str]:
    """The ``dvc exp show`` command line of ``satclip exp`` with ``extra`` arguments appended."""
    return [dvc, "exp", "show", "--only-changed", "--keep", KEEP, "--drop", DROP, *extra]


def main(argv: list[str] | None = None) -> int:
    """``satclip exp [dvc exp show arguments]``: the headline table of the experiments."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    beside = Path(sys.executable).parent / "dvc"   # the environment's dvc, also when it is not on PATH
    dvc = shutil.which("dvc") or (str(beside) if beside.exists() else "dvc")
    try:
        return subprocess.call(exp_show_command(argv, dvc))
    except FileNotFoundError:
        print("error: dvc is not on the PATH (run inside the project's environment: .venv/bin)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

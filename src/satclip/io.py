"""Atomic file output: write under a temporary name in the same folder, then rename.

A reader (or a killed run) never sees a half-written file: the target holds either its old
content or the complete new one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``, else delete it.

    Parent folders are created. Use it with any writer that takes a path::

        with atomic_path("out.parquet") as tmp:
            df.to_parquet(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(obj: object, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented, key-sorted JSON atomically; return the path."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")

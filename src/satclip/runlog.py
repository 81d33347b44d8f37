"""The run log: what a stage prints while it runs goes to a file and to the console, not the report.

The runner sets ``SATCLIP_LOG_FILE`` (``Layout.run_log(stage)``, untracked) before papermill
starts the kernel; ``params_from_namespace`` then calls ``to_run_log()`` inside the kernel, which
sends the ``satclip``, ``lightning`` and ``py.warnings`` loggers (Python warnings included) to that
file instead of the notebook's outputs. The runner follows the file (``follow``) and echoes each
new line to its own stderr, so a long pretraining run shows one line per epoch on the console.
Child processes (pretraining runs trained side by side) inherit the variable and append to the
same file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ENV = "SATCLIP_LOG_FILE"
FORMAT = "%(asctime)s %(name)s %(levelname)s: %(message)s"
LOGGERS = ("satclip", "lightning", "lightning.pytorch", "py.warnings")


def to_run_log(path: str | os.PathLike | None = None) -> Path | None:
    """Send the suite's logs and Python warnings to ``path`` (default ``$SATCLIP_LOG_FILE``); None: no log."""
    path = path or os.environ.get(ENV)
    if not path:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%H:%M:%S"))
    logging.captureWarnings(True)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [h for h in logger.handlers if not getattr(h, "_satclip_run_log", False)]
        handler._satclip_run_log = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(logging.INFO if name == "satclip" else logging.WARNING)
        logger.propagate = False
    return path


@contextlib.contextmanager
def follow(path: Path, prefix: str, stream=None) -> Iterator[None]:
    """Echo the lines appended to ``path`` to ``stream`` (stderr) while the block runs."""
    stream = stream or sys.stderr
    stop = threading.Event()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("")  # one log per stage run

    def pump() -> None:
        with open(path, encoding="utf-8", errors="replace") as f:
            while True:
                stopping = stop.is_set()  # read before the line: what was written before the stop is drained
                where = f.tell()
                line = f.readline()
                if line.endswith("\n") or (line and stopping):
                    if line.strip():  # a warning's trailing newline is no line of its own
                        stream.write(f"[{prefix}] {line.rstrip()}\n")
                        stream.flush()
                elif stopping:
                    return
                else:  # nothing new, or half a line: wait for the rest
                    f.seek(where)
                    time.sleep(0.2)

    thread = threading.Thread(target=pump, name="satclip-run-log", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)

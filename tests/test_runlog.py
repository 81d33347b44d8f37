"""The run log: the kernel's logs and warnings go to a file that the runner echoes to stderr."""

from __future__ import annotations

import io
import logging
import warnings

from satclip.runlog import follow, to_run_log


def test_logs_and_warnings_reach_the_file_and_the_console(tmp_path):
    log_file = tmp_path / "logs" / "stage.log"
    console = io.StringIO()
    with follow(log_file, "stage", console):
        assert to_run_log(log_file) == log_file
        logging.getLogger("satclip.test").info("epoch 1/2: loss 3.2")
        warnings.warn("a deprecation nobody reads", UserWarning, stacklevel=1)
    text = log_file.read_text()
    assert "epoch 1/2: loss 3.2" in text and "a deprecation nobody reads" in text
    assert "[stage] " in console.getvalue() and "epoch 1/2" in console.getvalue()
    assert not [line for line in console.getvalue().splitlines() if not line.removeprefix("[stage]").strip()]
    for name in ("satclip", "py.warnings", "lightning", "lightning.pytorch"):  # leave logging as the other tests expect it
        logger = logging.getLogger(name)
        logger.handlers = [h for h in logger.handlers if not getattr(h, "_satclip_run_log", False)]
        logger.propagate = True
    logging.captureWarnings(False)

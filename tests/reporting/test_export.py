"""Stage reports: code hidden, parameters cells and stderr left out, nothing loaded from the network."""

from __future__ import annotations

import re

import nbformat

from satclip.reporting.export import render_report


def _executed(tmp_path):
    nb = nbformat.v4.new_notebook()
    title = nbformat.v4.new_markdown_cell("# Stage 99: a report")
    params = nbformat.v4.new_code_cell("seed = 0\npretrain = {}", metadata={"tags": ["parameters"]})
    injected = nbformat.v4.new_code_cell("pretrain = {'SECRET_INJECTED': 1}", metadata={"tags": ["injected-parameters"]})
    work = nbformat.v4.new_code_cell("import warnings\nVISIBLE_CODE = 1")
    work.outputs = [nbformat.v4.new_output("stream", name="stderr", text="UserWarning: noisy warning\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="the result is 42\n")]
    nb.cells = [title, params, injected, work]
    path = tmp_path / "99_report.ipynb"
    nbformat.write(nb, path)
    return path


def test_report_hides_code_parameters_and_stderr_and_loads_nothing_remote(tmp_path):
    html = render_report(_executed(tmp_path))
    assert "the result is 42" in html and "Stage 99: a report" in html
    assert "VISIBLE_CODE" not in html and "SECRET_INJECTED" not in html and "noisy warning" not in html
    assert 'href="99_report.ipynb"' in html  # the code is one click away
    assert not re.findall(r"<script[^>]+src=", html)
    assert not re.findall(r"<link[^>]+href=[\"']https?:", html) and not re.findall(r"<img[^>]+src=[\"']https?:", html)

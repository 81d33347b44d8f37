"""Render an executed stage notebook as a report: outputs only, nothing loaded from the network.

``render_report(ipynb)`` returns the HTML of an executed notebook with

- the code hidden (input cells and prompts left out; the executed ``.ipynb`` beside the report
  holds the code, linked at the top);
- papermill's parameters cells (the template's and the injected copy of ``params.yaml``) left
  out: each notebook shows a compact table of the parameters its stage reads instead;
- warnings, tracebacks and progress output (stderr streams) left out: they are in the run log;
- JupyterLab's template without require.js, MathJax and mermaid (``templates/report``): no
  report needs them, and a page must render with the network off.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

TEMPLATES = Path(__file__).parent / "templates"
HIDDEN_TAGS = ("parameters", "injected-parameters")


def clean_notebook(nb: nbformat.NotebookNode, code_link: str | None = None) -> nbformat.NotebookNode:
    """A copy of ``nb`` without parameters cells and stderr outputs, a link to the code on top."""
    nb = nbformat.from_dict(nb)
    cells = []
    for cell in nb.cells:
        if set(cell.get("metadata", {}).get("tags", [])) & set(HIDDEN_TAGS):
            continue
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
        cells.append(cell)
    if code_link:
        note = nbformat.v4.new_markdown_cell(
            f"<small>Code hidden: the executed notebook [{code_link}]({code_link}) holds every cell; "
            "warnings and progress went to the run log.</small>")
        cells.insert(1 if cells and cells[0].cell_type == "markdown" else 0, note)
    nb.cells = cells
    return nb


def render_report(ipynb: str | Path) -> str:
    """The HTML report of the executed notebook ``ipynb`` (see the module docstring)."""
    from nbconvert import HTMLExporter

    ipynb = Path(ipynb)
    nb = clean_notebook(nbformat.read(ipynb, as_version=4), code_link=ipynb.name)
    exporter = HTMLExporter(template_name="report", extra_template_basedirs=[str(TEMPLATES)],
                            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": ipynb.stem}})
    return body

"""The report helpers: versions, wall times, index entries, provenance."""

from __future__ import annotations

import json

from satclip.reporting.index import git_commit, index_entries, package_versions, stage_times


def test_package_versions_take_the_first_installed_alias():
    versions = package_versions(["pytest", "no-such-dist|pytest", "no-such-dist"])
    assert list(versions)[0] == "python" and versions["pytest"] != "not installed"
    assert versions["no-such-dist"] == "not installed"


def test_stage_times_read_papermill_durations_and_skip_unreadable_notebooks(tmp_path):
    nb = tmp_path / "notebooks"
    nb.mkdir()
    (nb / "10_download.ipynb").write_text(json.dumps({"metadata": {"papermill": {"duration": 12.34}}}))
    (nb / "20_pretrain.ipynb").write_text(json.dumps({"metadata": {"papermill": {"duration": None}}}))
    (nb / "30_extract.ipynb").write_text("{not json")
    assert stage_times(tmp_path) == {"10_download": 12.3}


def test_index_lists_known_files_with_one_line_and_pending_reports(tmp_path):
    for rel in ("notebooks/10_download.html", "notebooks/40_evaluate_biomes.html", "tables/downstream.csv",
                "tables/tasks/biomes.csv", "metrics/pretrain.json", "compare/legendre.md", "figures/tasks/biomes_bars.png",
                "notebooks/10_download.ipynb", "figures/summary/.headline.png.tmp"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    entries = index_entries(tmp_path, pending=["notebooks/90_figures.html"])
    listed = {e.path: e.text for section in entries.values() for e in section}
    assert set(listed) == {"notebooks/10_download.html", "notebooks/40_evaluate_biomes.html",
                           "notebooks/90_figures.html", "tables/downstream.csv", "tables/tasks/biomes.csv",
                           "metrics/pretrain.json", "compare/legendre.md", "figures/tasks/biomes_bars.png"}
    assert "biomes" in listed["notebooks/40_evaluate_biomes.html"] and all(listed.values())
    assert list(entries) == ["Reports", "Figures", "Tables", "Comparisons", "Metrics and model"]


def test_git_commit_outside_a_repository_is_unknown(tmp_path):
    assert git_commit(tmp_path) == "unknown"

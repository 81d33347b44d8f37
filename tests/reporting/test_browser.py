"""The headless-Chromium check of the reports catches remote requests, console errors, broken images."""

from __future__ import annotations

import pytest

from satclip.reporting.browser import check_pages, find_chromium

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed")


def test_clean_and_broken_pages(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))   # the throw-away profile goes here
    good = tmp_path / "good.html"
    good.write_text('<html><body><h1>ok</h1><img src="data:image/gif;base64,'
                    'R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"></body></html>')
    bad = tmp_path / "bad.html"
    bad.write_text('<html><head><script src="https://cdn.example.com/require.js"></script></head>'
                   '<body><img src="missing.png"><script>console.error("boom")</script></body></html>')
    results = check_pages([good, bad], timeout=60)
    assert results[str(good)] == []
    problems = " | ".join(results[str(bad)])
    assert "request leaves the machine: https://cdn.example.com/require.js" in problems
    assert "console error: boom" in problems and "image does not load" in problems
    assert not list(tmp_path.glob("satclip-chromium-*"))   # the profile is gone with the browser

"""The registry of remote files against the mirror's SHA256SUMS."""

from __future__ import annotations

import pytest

from satclip.data.download import sha256sum
from satclip.data.sources import SOURCES, fetch


def test_registry_matches_mirror_hashes(geodata):
    sums = {}
    for line in (geodata / "SHA256SUMS").read_text().splitlines():
        digest, path = line.split(maxsplit=1)
        sums[path.removeprefix("./")] = digest
    for source in SOURCES.values():
        assert sums[source.mirror_path] == source.sha256, source.name
        assert (geodata / source.mirror_path).stat().st_size == source.size, source.name
        assert source.url.startswith("https://") and source.licence and source.attribution


def test_fetch_from_mirror(geodata, tmp_path):
    path = fetch("air_temperature", tmp_path, mirror=geodata, progress=False)
    assert path == tmp_path / "air_temperature" / "stationDataAll.csv"
    assert sha256sum(path) == SOURCES["air_temperature"].sha256


def test_unknown_source_is_named():
    with pytest.raises(KeyError, match="unknown data source 'nope'"):
        fetch("nope")

"""Hub downloads through huggingface_hub against a loopback hub: cache, pins, the lock, offline mode."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from satclip.data.download import ChecksumError, DownloadError
from satclip.data.hub import hub_file
from satclip.data.lock import DownloadLock, LockError

REPO = "someone/data"
BODY = bytes(range(256)) * 2000  # ~0.5 MB
SHA = hashlib.sha256(BODY).hexdigest()


def lock_entries(path: Path) -> dict:
    return json.loads(path.read_text())


def test_first_download_is_verified_cached_and_recorded(hub, tmp_path):
    hub.add(REPO, "data/a.bin", BODY)
    lock = DownloadLock(tmp_path / "downloads.lock")
    path = hub_file(REPO, "data/a.bin", lock=lock, progress=False)
    assert path.read_bytes() == BODY
    assert (tmp_path / "hf-cache") in path.parents  # huggingface_hub's cache, not the project
    recorded = lock_entries(lock.path)
    assert recorded["revisions"] == {f"datasets/{REPO}": {"main": hub.commit}}
    assert recorded["files"] == {f"datasets/{REPO}@{hub.commit}/data/a.bin": {"sha256": SHA, "size": len(BODY)}}
    # second call: the lock names the commit, the cache holds the file: no request at all
    n = len(hub.requests)
    assert hub_file(REPO, "data/a.bin", lock=lock, progress=False) == path
    assert len(hub.requests) == n


def test_lock_refuses_a_changed_file_and_keeps_it(hub, tmp_path):
    hub.add(REPO, "a.bin", BODY)
    lock = DownloadLock(tmp_path / "downloads.lock")
    lock.record_commit(f"datasets/{REPO}", "main", hub.commit)
    lock.record_file(f"datasets/{REPO}", hub.commit, "a.bin", "1" * 64, len(BODY))  # recorded earlier
    before = lock.path.read_bytes()
    with pytest.raises(ChecksumError, match="sha256 mismatch.*other bytes"):
        hub_file(REPO, "a.bin", lock=lock, progress=False)
    assert lock.path.read_bytes() == before  # a refused file never rewrites the lock


def test_pinned_hash_is_checked_and_a_corrupt_blob_removed(hub, tmp_path):
    hub.add(REPO, "a.bin", BODY)
    hub.corrupt["a.bin"] = BODY[:-1] + b"x"  # bytes that match neither the pin nor the blob name
    lock = DownloadLock(tmp_path / "downloads.lock")
    with pytest.raises(ChecksumError, match="corrupt and is removed"):
        hub_file(REPO, "a.bin", sha256=SHA, lock=lock, progress=False)
    assert not [p for p in (tmp_path / "hf-cache").rglob("*") if p.is_file() and p.stat().st_size > 1000]
    assert not lock.path.exists() or "a.bin" not in lock.path.read_text()
    hub.corrupt.clear()
    assert hub_file(REPO, "a.bin", sha256=SHA, lock=lock, progress=False).read_bytes() == BODY


def test_bytes_that_contradict_the_advertised_hash_on_first_use(hub, tmp_path):
    hub.add(REPO, "a.bin", BODY)
    hub.corrupt["a.bin"] = b"y" * len(BODY)
    lock = DownloadLock(tmp_path / "downloads.lock")
    with pytest.raises(ChecksumError, match="do not match the hash the hub advertised"):
        hub_file(REPO, "a.bin", lock=lock, progress=False)
    assert not lock.path.exists() or "a.bin" not in lock.path.read_text()  # nothing recorded


def test_non_lfs_file_is_checked_against_its_git_blob_id(hub, tmp_path):
    hub.add(REPO, "index.csv", b"fn,lon,lat\nx.tif,1,2\n", lfs=False)
    lock = DownloadLock(tmp_path / "downloads.lock")
    assert hub_file(REPO, "index.csv", lock=lock, progress=False).read_bytes().startswith(b"fn,")
    hub2 = "index2.csv"
    hub.add(REPO, hub2, b"abc", lfs=False)
    hub.corrupt[hub2] = b"abd"
    with pytest.raises(ChecksumError):
        hub_file(REPO, hub2, lock=lock, progress=False)


def test_a_branch_that_moves_is_refused(hub, tmp_path):
    hub.add(REPO, "a.bin", BODY)
    lock = DownloadLock(tmp_path / "downloads.lock")
    lock.record_commit(f"datasets/{REPO}", "main", "ab" * 20)  # main resolved elsewhere before
    with pytest.raises(DownloadError, match="cannot fetch"):  # the hub has no such commit
        hub_file(REPO, "a.bin", lock=lock, progress=False)
    with pytest.raises(LockError, match="now resolves"):
        lock.record_commit(f"datasets/{REPO}", "main", hub.commit)


def test_offline_mode_uses_the_cache_only(hub, tmp_path, monkeypatch):
    hub.add(REPO, "a.bin", BODY)
    lock = DownloadLock(tmp_path / "downloads.lock")
    path = hub_file(REPO, "a.bin", lock=lock, progress=False)
    hub.online = False
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    n = len(hub.requests)
    assert hub_file(REPO, "a.bin", lock=lock, progress=False) == path
    assert len(hub.requests) == n
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE"):
        hub_file(REPO, "b.bin", lock=lock, progress=False)


def test_dropped_connection_is_resumed_within_the_call(hub, tmp_path):
    big = BODY * 48  # ~24 MB: the cut (half way) falls after huggingface_hub's first 10 MB chunk
    hub.add(REPO, "a.bin", big)
    hub.cut_once.add("a.bin")
    path = hub_file(REPO, "a.bin", lock=DownloadLock(tmp_path / "downloads.lock"), progress=False)
    assert path.read_bytes() == big
    ranges = hub.gets("a.bin")
    assert ranges[0] is None and ranges[-1] is not None and ranges[-1].startswith("bytes=")


def test_unreadable_lock_is_named(tmp_path):
    bad = tmp_path / "downloads.lock"
    bad.write_text("{not json")
    with pytest.raises(LockError, match="unreadable download lock"):
        DownloadLock(bad).commit("datasets/x/y", "main")

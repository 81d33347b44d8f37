"""The download primitive: mirror, sha256, resume, truncation, advertised hashes."""

from __future__ import annotations

import hashlib

import pytest

from satclip.data.download import ChecksumError, DownloadError, download, sha256sum

BODY = bytes(range(256)) * 4000  # ~1 MB, above one read chunk
SHA = hashlib.sha256(BODY).hexdigest()


def test_fetches_and_verifies(file_server, tmp_path):
    file_server.files["/f.bin"] = BODY
    dest = download(f"{file_server.url}/f.bin", tmp_path / "sub" / "f.bin", SHA, progress=False)
    assert dest.read_bytes() == BODY
    assert not (tmp_path / "sub" / "f.bin.part").exists()
    # a second call finds the verified file and does not ask the server again
    n = len(file_server.requests)
    download(f"{file_server.url}/f.bin", dest, SHA, progress=False)
    assert len(file_server.requests) == n


def test_wrong_hash_fails_and_leaves_nothing(file_server, tmp_path):
    file_server.files["/f.bin"] = BODY
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        download(f"{file_server.url}/f.bin", tmp_path / "f.bin", "0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_resumes_with_range(file_server, tmp_path):
    file_server.files["/f.bin"] = BODY
    file_server.cut_after["/f.bin"] = 300_000
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match="truncated|connection lost"):
        download(f"{file_server.url}/f.bin", dest, SHA, progress=False)
    assert not dest.exists()
    assert (tmp_path / "f.bin.part").stat().st_size == 300_000
    download(f"{file_server.url}/f.bin", dest, SHA, progress=False)
    assert sha256sum(dest) == SHA
    assert file_server.requests[-1] == ("/f.bin", "bytes=300000-")


def test_restarts_when_server_ignores_range(file_server, tmp_path):
    file_server.files["/f.bin"] = BODY
    file_server.ranges = False
    (tmp_path / "f.bin.part").write_bytes(BODY[:1000])
    dest = download(f"{file_server.url}/f.bin", tmp_path / "f.bin", SHA, progress=False)
    assert dest.read_bytes() == BODY


def test_complete_part_file_is_finished(file_server, tmp_path):
    file_server.files["/f.bin"] = BODY
    (tmp_path / "f.bin.part").write_bytes(BODY)  # killed after the last byte, before the rename
    dest = download(f"{file_server.url}/f.bin", tmp_path / "f.bin", SHA, progress=False)
    assert dest.read_bytes() == BODY


def test_advertised_lfs_hash_is_checked(file_server, tmp_path):
    file_server.files["/ok.bin"] = BODY
    file_server.headers["/ok.bin"] = {"X-Linked-Etag": f'"{SHA}"'}
    assert download(f"{file_server.url}/ok.bin", tmp_path / "ok.bin", progress=False).exists()
    file_server.files["/bad.bin"] = BODY
    file_server.headers["/bad.bin"] = {"X-Linked-Etag": f'"{"1" * 64}"'}
    with pytest.raises(ChecksumError):
        download(f"{file_server.url}/bad.bin", tmp_path / "bad.bin", progress=False)
    assert not (tmp_path / "bad.bin").exists()


def test_http_errors_name_the_url(file_server, tmp_path):
    with pytest.raises(DownloadError, match=r"missing\.bin: HTTP 404"):
        download(f"{file_server.url}/missing.bin", tmp_path / "m.bin", progress=False)
    with pytest.raises(DownloadError, match="cannot connect"):
        download("http://127.0.0.1:9/none", tmp_path / "n.bin", progress=False, timeout=2)


def test_mirror_is_used_first_and_verified(file_server, tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "a").mkdir(parents=True)
    (mirror / "a" / "f.bin").write_bytes(BODY)
    dest = download(f"{file_server.url}/f.bin", tmp_path / "out" / "f.bin", SHA, mirror=mirror,
                    mirror_relpath="a/f.bin", progress=False)
    assert dest.read_bytes() == BODY
    assert file_server.requests == []  # never touched the network
    (mirror / "a" / "f.bin").write_bytes(BODY[:-1])  # a truncated mirror copy is refused
    with pytest.raises(ChecksumError, match="mirror copy"):
        download(f"{file_server.url}/f.bin", tmp_path / "out2" / "f.bin", SHA, mirror=mirror,
                 mirror_relpath="a/f.bin", progress=False)
    assert not (tmp_path / "out2" / "f.bin").exists()


def test_corrupt_cached_file_is_replaced(file_server, tmp_path):
    file_server.files["/f.bin"] = BODY
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"garbage")
    download(f"{file_server.url}/f.bin", dest, SHA, progress=False)
    assert dest.read_bytes() == BODY


def test_a_part_file_without_a_known_hash_is_not_resumed(file_server, tmp_path, caplog):
    """No sha256 given or advertised: a leftover .part (stale, foreign) is discarded, not resumed."""
    file_server.files["/f.bin"] = BODY
    (tmp_path / "f.bin.part").write_bytes(b"junk from another file" * 100)
    with caplog.at_level("WARNING"):
        dest = download(f"{file_server.url}/f.bin", tmp_path / "f.bin", None, progress=False)
    assert dest.read_bytes() == BODY
    assert file_server.requests == [("/f.bin", None)]  # one GET, from byte 0: no Range
    assert not (tmp_path / "f.bin.part").exists()
    assert "f.bin.part: no sha256 known" in caplog.text and "cannot be checked; starting over" in caplog.text


def test_a_cut_transfer_without_a_known_hash_restarts_from_zero(file_server, tmp_path, caplog):
    """The .part a dropped connection leaves is resumed with a hash (see above), restarted without."""
    file_server.files["/f.bin"] = BODY
    file_server.cut_after["/f.bin"] = 300_000
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match="truncated|connection lost"):
        download(f"{file_server.url}/f.bin", dest, None, progress=False)
    assert (tmp_path / "f.bin.part").stat().st_size == 300_000
    with caplog.at_level("WARNING"):
        download(f"{file_server.url}/f.bin", dest, None, progress=False)
    assert dest.read_bytes() == BODY
    assert file_server.requests == [("/f.bin", None), ("/f.bin", None)]
    assert "cannot be checked; starting over" in caplog.text

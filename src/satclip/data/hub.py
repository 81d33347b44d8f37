"""Files from the Hugging Face Hub, through ``huggingface_hub``, pinned and verified.

:func:`hub_file` is how the project fetches S2-100K (``torchgeo/s2-100k``) and the official
checkpoints (``microsoft/SatCLIP-*``). ``huggingface_hub.hf_hub_download`` gives what the
hand-written HTTP code did not:

- its shared cache (``$HF_HUB_CACHE``, ``~/.cache/huggingface/hub``; content-addressed blobs,
  one snapshot folder per commit), outside every DVC output, shared by runs, sweeps and other tools;
- revision pinning: a file is fetched at a commit; a branch (``main``) is resolved once and the
  commit recorded in the download lock (:mod:`satclip.data.lock`), so later runs stay on it;
- offline mode (``HF_HUB_OFFLINE=1``): files come from the cache only;
- ``$HF_ENDPOINT`` for a mirror of the hub (the tests use a loopback stand-in).

On top of it, every file is checked against a sha256: one pinned in code (given by the caller),
else the one recorded in the lock, else, on first use, the hash the hub advertises for an LFS file
(its blob name), after which the computed hash is recorded. A file whose bytes contradict its
expected hash is refused (and removed from the cache when its bytes also contradict its blob name,
i.e. it is corrupt); one whose hash the lock contradicts is refused and kept.

Resuming: a finished file is never fetched again (the cache keeps it across interruptions and
re-runs, so an interrupted 100-shard download restarts at the first missing shard); within one
call, huggingface_hub resumes a dropped connection with a ``Range`` request. huggingface_hub
(>= 1.0) writes each transfer to a file unique to the process and removes it when the process
fails, so a partial file is never resumed by a later process without its final hash being checked.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

from tqdm.auto import tqdm

from satclip.data.cache import hub_cache
from satclip.data.download import CHUNK, ChecksumError, DownloadError, sha256sum
from satclip.data.lock import COMMIT_RE, SHA256_RE, DownloadLock, LockError, repo_key

HF_ENDPOINT_ENV = "HF_ENDPOINT"
HF_OFFLINE_ENV = "HF_HUB_OFFLINE"
_SNAPSHOT_RE = re.compile(r"/snapshots/([0-9a-f]{40})/")
log = logging.getLogger(__name__)


class _QuietTqdm(tqdm):
    """A tqdm that shows nothing (``progress=False``)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)


def offline() -> bool:
    """``$HF_HUB_OFFLINE`` (read at call time): only cached files may be used."""
    return os.environ.get(HF_OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def git_blob_sha1(path: Path) -> str:
    """The git object id of a file's bytes: what the hub advertises as the etag of a non-LFS file."""
    h = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())  # noqa: S324 (git's object id, not security)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _blob_matches_its_name(path: Path, sha256: str) -> bool | None:
    """Whether a cached file's bytes match its blob name (sha256 for LFS, git sha1 otherwise).

    None when the blob name is neither (nothing to compare with).
    """
    name = path.resolve().name
    if SHA256_RE.match(name):
        return name == sha256
    if COMMIT_RE.match(name):  # 40 hex digits: a git blob id
        return name == git_blob_sha1(path)
    return None


def _discard(path: Path) -> None:
    """Remove a corrupt cached file: the snapshot's link and the blob it points to."""
    blob = path.resolve()
    for p in (path, blob):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def _commit_of(path: Path) -> str | None:
    match = _SNAPSHOT_RE.search(path.as_posix())
    return match.group(1) if match else None


def hub_file(repo_id: str, filename: str, *, repo_type: str = "dataset", revision: str = "main",
             sha256: str | None = None, endpoint: str | None = None, lock: DownloadLock | None = None,
             progress: bool = True) -> Path:
    """A verified local copy of ``filename`` of a hub repository, fetched into the hub cache if needed.

    Args:
        repo_id: ``owner/name`` on the hub.
        filename: the file's path inside the repository.
        repo_type: ``dataset`` or ``model``.
        revision: a 40-hex commit, or a branch or tag (resolved once, then pinned by the lock).
        sha256: the expected sha256, when one is published (pinned in code); else the lock's.
        endpoint: hub address (default ``$HF_ENDPOINT`` or huggingface_hub's default).
        lock: where hashes and revisions are recorded (default :func:`lock.default_lock_path`).
        progress: show a progress bar.

    Returns:
        The path of the file in the hub cache (a snapshot link to its blob).

    Raises:
        DownloadError: the file cannot be fetched (offline and not cached, not found, no network).
        ChecksumError: its bytes do not match the pinned or recorded sha256, or its own blob name.
        LockError: the hub now resolves the revision to another commit than the lock records.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, HFValidationError

    lock = lock if lock is not None else DownloadLock()
    repo = repo_key(repo_id, repo_type)
    endpoint = endpoint or os.environ.get(HF_ENDPOINT_ENV) or None
    commit = lock.commit(repo, revision)
    locked = lock.file(repo, commit, filename) if commit else None
    if sha256 is not None and locked is not None and locked.sha256 != sha256.lower():
        raise LockError(f"{lock.file_key(repo, commit, filename)}: {lock.path} records sha256 "
                        f"{locked.sha256}, but the pinned one is {sha256}")
    expected = sha256.lower() if sha256 else (locked.sha256 if locked else None)
    what = f"{repo}@{commit or revision}/{filename}"
    try:
        local = Path(hf_hub_download(repo_id, filename, repo_type=repo_type, revision=commit or revision,
                                     cache_dir=hub_cache(), endpoint=endpoint, local_files_only=offline(),
                                     tqdm_class=None if progress else _QuietTqdm))
    except (HfHubHTTPError, EntryNotFoundError, HFValidationError, OSError, ValueError) as err:
        hint = " (HF_HUB_OFFLINE is set and the file is not in the cache)" if offline() else ""
        raise DownloadError(f"{what}: cannot fetch from the hub{hint}: {err}") from err
    actual = sha256sum(local)
    if expected is not None and actual != expected:
        corrupt = _blob_matches_its_name(local, actual) is False
        if corrupt:
            _discard(local)
        raise ChecksumError(f"{what}: sha256 mismatch (expected {expected}, got {actual}); "
                            + ("the cached file was corrupt and is removed: run again"
                               if corrupt else f"the hub serves other bytes than {lock.path} or the pin records"))
    if expected is None and _blob_matches_its_name(local, actual) is False:
        _discard(local)
        raise ChecksumError(f"{what}: the downloaded bytes (sha256 {actual}) do not match the hash the hub "
                            f"advertised for them; the file is removed: run again")
    resolved = commit or _commit_of(local)
    if resolved is None:
        raise DownloadError(f"{what}: huggingface_hub returned {local}, outside a snapshot folder")
    if commit is None:
        lock.record_commit(repo, revision, resolved)
    lock.record_file(repo, resolved, filename, actual, local.stat().st_size)
    return local

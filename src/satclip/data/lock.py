"""The download lock: hashes and revisions recorded on the first verified download (trust on first use).

Some remote files have no published sha256 (the S2-100K shards, five of the six official
checkpoints) and some revisions are branches (``main``). The first verified download records, in
a committed JSON file, the commit a branch resolved to and the sha256 and size of every file
fetched at that commit; every later download uses the recorded commit and refuses a file whose
hash differs. This is what pip's hash-checking mode and ``dvc.lock`` do with hashes, and what
SSH's ``known_hosts`` does on first contact. A hash is only ever written after it was computed
from the downloaded file itself.

Where the lock lives: ``$SATCLIP_LOCK``, else ``downloads.lock`` in the working directory when
it is a project (holds ``params.yaml``: the stages run there), else ``<cache>/downloads.lock``.
To move to a newer upstream revision on purpose, delete its entries (or the file) and run again.

Format (keys sorted, so a diff shows what a download added)::

    {"revisions": {"datasets/torchgeo/s2-100k": {"main": "<40-hex commit>"}},
     "files": {"datasets/torchgeo/s2-100k@<commit>/index.csv": {"sha256": "...", "size": 123}}}
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from satclip.data.cache import cache_root

LOCK_ENV = "SATCLIP_LOCK"
LOCK_NAME = "downloads.lock"
PROJECT_MARKER = "params.yaml"
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
log = logging.getLogger(__name__)


class LockError(RuntimeError):
    """The lock file is unreadable, or a download contradicts what it recorded."""


def default_lock_path() -> Path:
    """``$SATCLIP_LOCK``, else ``./downloads.lock`` in a project, else ``<cache>/downloads.lock``."""
    if os.environ.get(LOCK_ENV):
        return Path(os.environ[LOCK_ENV]).expanduser()
    if Path(PROJECT_MARKER).is_file():
        return Path(LOCK_NAME)
    return cache_root() / LOCK_NAME


def repo_key(repo_id: str, repo_type: str) -> str:
    """``datasets/<repo>`` or ``models/<repo>``: a repository as the lock names it."""
    return f"{repo_type}s/{repo_id}"


@dataclass(frozen=True)
class LockedFile:
    """A file's recorded hash and size."""

    sha256: str
    size: int


class DownloadLock:
    """Read and extend one lock file. Entries are only added, never changed."""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else default_lock_path()

    def _read(self) -> dict:
        if not self.path.is_file():
            return {"revisions": {}, "files": {}}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as err:
            raise LockError(f"{self.path}: unreadable download lock ({err}); restore it from git "
                            f"(`git checkout {self.path}`) or delete it to record hashes again") from err
        if not (isinstance(data, dict) and isinstance(data.get("revisions", {}), dict)
                and isinstance(data.get("files", {}), dict)):
            raise LockError(f"{self.path}: not a download lock (expected 'revisions' and 'files' objects)")
        data.setdefault("revisions", {})
        data.setdefault("files", {})
        return data

    def _write(self, data: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)

    # -- revisions ---------------------------------------------------------------------------
    def commit(self, repo: str, revision: str) -> str | None:
        """The commit ``revision`` of ``repo`` resolved to when first used (itself if a commit)."""
        if COMMIT_RE.match(revision):
            return revision
        return self._read()["revisions"].get(repo, {}).get(revision)

    def record_commit(self, repo: str, revision: str, commit: str) -> None:
        """Record that ``revision`` of ``repo`` is ``commit``; refuse a different one later.

        Raises:
            LockError: the lock already names another commit for this revision.
        """
        if COMMIT_RE.match(revision):
            return
        if not COMMIT_RE.match(commit):
            raise LockError(f"{repo}: the hub answered revision {revision!r} with {commit!r}, not a commit hash")
        data = self._read()
        known = data["revisions"].setdefault(repo, {}).get(revision)
        if known == commit:
            return
        if known is not None:
            raise LockError(f"{repo}: {self.path} pins revision {revision!r} to {known}, but it now resolves "
                            f"to {commit}; delete that entry to move on deliberately")
        data["revisions"][repo][revision] = commit
        self._write(data)
        log.info("%s: recorded %s@%s = %s in %s", repo, repo, revision, commit, self.path)

    # -- files -------------------------------------------------------------------------------
    @staticmethod
    def file_key(repo: str, commit: str, filename: str) -> str:
        """``<repo>@<commit>/<filename>``."""
        return f"{repo}@{commit}/{filename}"

    def file(self, repo: str, commit: str, filename: str) -> LockedFile | None:
        """The recorded hash and size of a file at a commit, if any."""
        entry = self._read()["files"].get(self.file_key(repo, commit, filename))
        if entry is None:
            return None
        if not (isinstance(entry, dict) and SHA256_RE.match(str(entry.get("sha256", "")))
                and isinstance(entry.get("size"), int)):
            raise LockError(f"{self.path}: malformed entry for {self.file_key(repo, commit, filename)}: {entry!r}")
        return LockedFile(entry["sha256"], entry["size"])

    def record_file(self, repo: str, commit: str, filename: str, sha256: str, size: int) -> None:
        """Record a verified file's sha256 and size (computed from the file); refuse a change.

        Raises:
            LockError: another hash is already recorded for this file at this commit.
        """
        if not SHA256_RE.match(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        key = self.file_key(repo, commit, filename)
        data = self._read()
        known = data["files"].get(key)
        if known is not None:
            if known.get("sha256") != sha256:
                raise LockError(f"{key}: {self.path} records sha256 {known.get('sha256')}, the file has {sha256}")
            return
        data["files"][key] = {"sha256": sha256, "size": int(size)}
        self._write(data)
        log.info("%s: recorded sha256 %s in %s", key, sha256, self.path)

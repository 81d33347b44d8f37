"""Resumable, checksum-verified downloads with an optional local mirror.

`download(url, dest, sha256)` is the one primitive every remote file in the project goes through:

- a local mirror directory (``SATCLIP_DATA_MIRROR`` or an explicit argument) is consulted first;
- otherwise the file is fetched over HTTP(S) into ``<dest>.part``; an interrupted transfer resumes
  with an HTTP ``Range`` request (or restarts when the server ignores ranges);
- the sha256 is checked before the file is renamed into place, so ``dest`` either holds the
  verified bytes or does not exist;
- a ``tqdm`` progress bar shows the transfer.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

MIRROR_ENV = "SATCLIP_DATA_MIRROR"
CHUNK = 1 << 20  # 1 MiB read size
_SHA256_RE = re.compile(r'^(W/)?"?([0-9a-f]{64})"?$')
RETRY_PAUSE_S = 2.0
log = logging.getLogger(__name__)


class DownloadError(RuntimeError):
    """A remote file could not be fetched or did not verify."""


class ChecksumError(DownloadError):
    """The bytes of a file do not match the expected sha256."""


def sha256sum(path: Path) -> str:
    """Return the hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def mirror_dir(mirror: str | os.PathLike | None = None) -> Path | None:
    """The local mirror directory: the argument, else ``$SATCLIP_DATA_MIRROR``, else None."""
    value = mirror if mirror is not None else os.environ.get(MIRROR_ENV)
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_dir() else None


def _verify(path: Path, sha256: str | None, what: str) -> None:
    if sha256 is None:
        return
    actual = sha256sum(path)
    if actual != sha256.lower():
        raise ChecksumError(f"{what}: sha256 mismatch (expected {sha256}, got {actual}); "
                            f"the file is corrupt or truncated")


def _copy_from_mirror(src: Path, dest: Path, sha256: str | None) -> Path:
    part = dest.with_name(dest.name + ".part")
    shutil.copyfile(src, part)
    try:
        _verify(part, sha256, f"{src} (mirror copy of {dest.name})")
    except ChecksumError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return dest


def _server_sha256(headers) -> str | None:
    """The sha256 a server advertises for an LFS file (Hugging Face's ``X-Linked-Etag``)."""
    for key in ("X-Linked-Etag", "ETag"):
        value = headers.get(key) if headers is not None else None
        match = _SHA256_RE.match(value.strip()) if value else None
        if match:
            return match.group(2)
    return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Turn redirects into HTTPError, so the headers of the first answer can be read."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        """Follow no redirect."""
        return None


def advertised_sha256(url: str, timeout: float = 60.0) -> str | None:
    """Ask a server (HEAD, redirects not followed) for the sha256 it advertises for ``url``.

    Hugging Face answers an LFS file with a redirect to its CDN that carries ``X-Linked-Etag``;
    the CDN's answer does not, so the header must be read before any redirect. Returns None when
    nothing is advertised or the server cannot be asked (the GET then reports the error).
    """
    if not url.startswith(("http://", "https://")):
        return None
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, method="HEAD",
                                     headers={"User-Agent": "satclip", "Accept-Encoding": "identity"})
    try:
        with opener.open(request, timeout=timeout) as response:
            return _server_sha256(response.headers)
    except urllib.error.HTTPError as err:
        return _server_sha256(err.headers) if 300 <= err.code < 400 else None
    except (urllib.error.URLError, TimeoutError, OSError):
        return None


def _http_fetch(url: str, part: Path, progress: bool, timeout: float) -> str | None:
    """Fetch ``url`` into ``part``, resuming from its current size. Return an advertised sha256."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "satclip"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # requested range not satisfiable: the .part is complete
            return _server_sha256(err.headers)
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        raise DownloadError(f"{url}: cannot connect ({err})") from err
    with response:
        if offset and (response.status != 206 or not response.headers.get(
                "Content-Range", "").startswith(f"bytes {offset}-")):
            offset = 0  # the server ignored the Range or answered another one: start over
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        mode = "ab" if offset else "wb"
        with open(part, mode) as f, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                         desc=part.name.removesuffix(".part"),
                                         disable=not progress) as bar:
            received = 0
            while True:
                try:
                    block = response.read(CHUNK)
                except (TimeoutError, OSError, http.client.HTTPException) as err:
                    raise DownloadError(f"{url}: connection lost after {offset + received} bytes "
                                        f"({err}); run again to resume") from err
                if not block:
                    break
                f.write(block)
                received += len(block)
                bar.update(len(block))
        if length is not None and received != int(length):
            raise DownloadError(f"{url}: truncated transfer ({offset + received} of {total} bytes); "
                                f"run again to resume")
        return _server_sha256(response.headers)


def download(url: str, dest: str | os.PathLike, sha256: str | None = None, *,
             mirror: str | os.PathLike | None = None, mirror_relpath: str | None = None,
             progress: bool = True, timeout: float = 60.0, retries: int = 0) -> Path:
    """Fetch ``url`` to ``dest`` (atomically), verifying ``sha256`` when given.

    Args:
        url: upstream address (http, https or file).
        dest: final path; parents are created. An existing file with the right hash is kept.
        sha256: expected hex digest; when None, a sha256 advertised by the server (Hugging Face
            ``X-Linked-Etag``, read before redirects) is checked instead, if any.
        mirror: local mirror directory (default ``$SATCLIP_DATA_MIRROR``), consulted first.
        mirror_relpath: the file's path inside the mirror (default: none, mirror not used).
        progress: show a progress bar.
        timeout: socket timeout in seconds.
        retries: extra attempts after a lost connection, each resuming the ``.part`` file.
            A ``.part`` left by an earlier call is resumed only when a sha256 is known (given, or
            advertised by the server), so the finished file can be checked; otherwise it is
            discarded and the transfer starts from byte 0.

    Returns:
        ``dest`` as a Path.

    Raises:
        ChecksumError: the bytes do not match (the bad file is removed).
        DownloadError: the file cannot be fetched; a partial ``.part`` is kept for resuming.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        if sha256 is None or sha256sum(dest) == sha256.lower():
            return dest  # without a known hash: verified when it was renamed into place
        dest.unlink()  # stale or corrupt copy: fetch again
    root = mirror_dir(mirror)
    if root is not None and mirror_relpath is not None and (root / mirror_relpath).is_file():
        return _copy_from_mirror(root / mirror_relpath, dest, sha256)
    expected = sha256 or advertised_sha256(url, timeout)
    part = dest.with_name(dest.name + ".part")
    if expected is None and part.exists():  # nothing could tell a stale or foreign .part from ours
        log.warning("%s: no sha256 known for %s, so the partial file cannot be checked; starting over",
                    part, url)
        part.unlink()
    for attempt in range(retries + 1):
        try:
            advertised = _http_fetch(url, part, progress, timeout)
            break
        except DownloadError as err:
            if attempt == retries:
                raise
            log.warning("%s; retrying (%d of %d)", err, attempt + 1, retries)
            time.sleep(RETRY_PAUSE_S)
    expected = expected or advertised
    try:
        _verify(part, expected, f"{url} -> {dest}")
    except ChecksumError:
        part.unlink(missing_ok=True)  # a wrong file cannot be resumed into a right one
        raise
    os.replace(part, dest)
    return dest

"""Shared fixtures: the local data mirror, a loopback HTTP server and a loopback Hugging Face hub."""

from __future__ import annotations

import hashlib
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from satclip.config import Params, from_dict
from satclip.stages.download import run_download

REPO = Path(__file__).resolve().parents[1]

torch.set_num_threads(1)


def mirror_path() -> Path | None:
    """The geodata mirror: $SATCLIP_DATA_MIRROR, else ../shared/geodata beside the checkout."""
    for candidate in (os.environ.get("SATCLIP_DATA_MIRROR"), REPO.parent / "shared" / "geodata"):
        if candidate and (Path(candidate) / "SHA256SUMS").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def geodata() -> Path:
    """Path of the byte-exact mirror of the upstream files; skips the test when there is none."""
    path = mirror_path()
    if path is None:
        pytest.skip("no data mirror (set SATCLIP_DATA_MIRROR or place shared/geodata beside the repo)")
    return path


class FileServer:
    """A loopback HTTP server over a dict ``path -> bytes`` that honours Range requests.

    ``cut_after[path] = n`` makes the next response for ``path`` stop after n body bytes
    (a dropped connection); ``headers[path]`` adds response headers; ``ranges=False`` ignores
    Range; ``requests`` records (path, Range header) of every GET.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.headers: dict[str, dict[str, str]] = {}
        self.cut_after: dict[str, int] = {}
        self.ranges = True
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                path = self.path.split("?")[0]
                rng = self.headers.get("Range")
                server.requests.append((path, rng))
                if path not in server.files:
                    self.send_error(404)
                    return
                body = server.files[path]
                start, status = 0, 200
                if rng and server.ranges:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    status = 206
                chunk = body[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(chunk)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                for key, value in server.headers.get(path, {}).items():
                    self.send_header(key, value)
                self.end_headers()
                cut = server.cut_after.pop(path, None)
                self.wfile.write(chunk if cut is None else chunk[:cut])
                if cut is not None:
                    self.wfile.flush()
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def file_server():
    """A running ``FileServer`` on 127.0.0.1 (shut down after the test)."""
    server = FileServer()
    yield server
    server.close()


@pytest.fixture(autouse=True, scope="session")
def _private_download_cache(tmp_path_factory):
    """Every test downloads into a cache and lock of the test session, never ~/.cache or the repo."""
    root = tmp_path_factory.mktemp("download-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SATCLIP_CACHE", str(root / "satclip"))
        mp.setenv("HF_HUB_CACHE", str(root / "huggingface"))
        mp.setenv("SATCLIP_LOCK", str(root / "downloads.lock"))
        mp.delenv("HF_HUB_OFFLINE", raising=False)
        mp.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        mp.setenv("no_proxy", "127.0.0.1,localhost")
        yield root


def git_blob_sha1(data: bytes) -> str:
    """The id git (and the hub, as the ETag of a non-LFS file) gives a file's bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324


class FakeHub:
    """A loopback stand-in for the Hugging Face Hub's ``resolve`` endpoint.

    ``add(repo, path, data)`` serves ``data`` at ``/<datasets/>repo/resolve/<rev>/path`` for
    ``rev`` = ``main`` or :attr:`commit`, with the headers huggingface_hub reads: ``X-Repo-Commit``,
    for LFS files ``X-Linked-Etag`` (the sha256) and ``X-Linked-Size``, else an ``ETag`` (the git
    blob id). ``advertise[path]`` overrides the advertised sha256; ``corrupt[path]`` serves other
    bytes than the ones advertised; ``cut_once`` drops the connection halfway through the next GET
    of a path; ``stall`` sends half of a path's body, then waits for :attr:`release` (a download
    to interrupt); ``requests`` records (method, path, Range).
    """

    commit = "c0ffee" + "0" * 34

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, bool]] = {}  # url path after resolve/<rev>/ -> (data, lfs)
        self.advertise: dict[str, str] = {}
        self.corrupt: dict[str, bytes] = {}
        self.cut_once: set[str] = set()
        self.stall: set[str] = set()
        self.release = threading.Event()
        self.requests: list[tuple[str, str, str | None]] = []
        self.online = True
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _find(self) -> tuple[str, bytes, bool] | None:
                path = self.path.split("?")[0]
                for key, (data, lfs) in hub.files.items():
                    repo, rel = key.split("::", 1)
                    for rev in ("main", hub.commit):
                        if path == f"/{repo}/resolve/{rev}/{rel}":
                            return rel, data, lfs
                return None

            def _answer(self, body: bool) -> None:
                hub.requests.append((self.command, self.path, self.headers.get("Range")))
                found = self._find() if hub.online else None
                if found is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                rel, data, lfs = found
                advertised = hub.advertise.get(rel, hashlib.sha256(data).hexdigest())
                git_id = git_blob_sha1(data)  # of the real bytes, even when other bytes are served
                data = hub.corrupt.get(rel, data)
                start = 0
                rng = self.headers.get("Range")
                if rng and body:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("X-Repo-Commit", hub.commit)
                if lfs:
                    self.send_header("X-Linked-Etag", f'"{advertised}"')
                    self.send_header("X-Linked-Size", str(len(data)))
                    self.send_header("ETag", f'"{advertised}"')
                else:
                    self.send_header("ETag", f'"{git_id}"')
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                if not body:
                    return
                if rel in hub.stall:
                    self.wfile.write(data[start:start + (len(data) - start) // 2])
                    self.wfile.flush()
                    hub.release.wait(120)
                    self.close_connection = True
                    return
                if rel in hub.cut_once:
                    hub.cut_once.discard(rel)
                    self.wfile.write(data[start:start + (len(data) - start) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data[start:])

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                self._answer(body=True)

            def do_HEAD(self) -> None:  # noqa: N802
                self._answer(body=False)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def add(self, repo: str, path: str, data: bytes, *, repo_type: str = "dataset", lfs: bool = True) -> None:
        """Serve ``data`` as ``path`` of ``repo`` (a dataset or a model repository)."""
        prefix = "datasets/" if repo_type == "dataset" else ""
        self.files[f"{prefix}{repo}::{path}"] = (data, lfs)

    def gets(self, path: str) -> list[str | None]:
        """The Range headers of the GETs for repository path ``path``."""
        return [rng for method, p, rng in self.requests if method == "GET" and p.endswith("/" + path)]

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A running :class:`FakeHub`, with ``$HF_ENDPOINT``, the hub cache and the lock in ``tmp_path``."""
    server = FakeHub()
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("SATCLIP_LOCK", str(tmp_path / "downloads.lock"))
    yield server
    server.close()


# Stage tests (tests/stages): tiny real data from the mirror, two tasks.
STAGE_TASKS = ["biomes", "air_temperature"]


def tiny_stage_params(tmp_path_factory, geodata) -> Params:
    """Params of the extract/evaluate/figures stage tests: two tasks of tiny real data, downloaded."""
    root = tmp_path_factory.mktemp("stages")
    p = from_dict(Params, {
        "paths": {"data": str(root / "data"), "results": str(root / "results"), "mirror": str(geodata)},
        "download": {"labels": {"tasks": STAGE_TASKS, "n_points": 400}, "bluemarble": {"n_points": 20, "patch_px": 8}},
        "pretrain": {"location": {"legendre_polys": 4, "hidden_dim": 16, "embed_dim": 8}},
        # satclip has no checkpoint here: it must be reported unavailable, not crash the run
        "extract": {"encoders": ["satclip", "satclip-random", "sh", "raw"]},
        "evaluate": {"seeds": [0, 1], "probes": ["linear"], "splits": ["random", "checkerboard"],
                     "max_train_points": 300},
    }, "")
    run_download(p)
    return p

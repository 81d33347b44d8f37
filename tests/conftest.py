"""Shared fixtures: the local data mirror and a loopback HTTP server."""

from __future__ import annotations

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

"""The download cache: one folder per user, outside every DVC output, shared by runs and sweeps.

::

    <cache>/raw/<mirror path>     registered upstream files (label sources, the S2-100K sample)
    <cache>/downloads.lock        hashes recorded on first use outside a project (see ``lock``)
    $HF_HUB_CACHE                 Hugging Face files (S2-100K shards, official checkpoints):
                                  huggingface_hub's own shared cache (``~/.cache/huggingface/hub``)

``<cache>`` is ``paths.cache`` of params.yaml, else ``$SATCLIP_CACHE``, else ``~/.cache/satclip``.
DVC never deletes it (it is no stage's output), so an interrupted or re-parameterized download
stage finds what was already fetched, and the experiments of a sweep (each in DVC's temporary
copy of the repository) share one copy instead of copying it.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "SATCLIP_CACHE"
HF_HUB_CACHE_ENV = "HF_HUB_CACHE"
HF_HOME_ENV = "HF_HOME"
RAW_DIR = "raw"


def cache_root(path: str | os.PathLike | None = None) -> Path:
    """The satclip download cache: ``path``, else ``$SATCLIP_CACHE``, else ``~/.cache/satclip``."""
    value = path if path is not None else os.environ.get(CACHE_ENV)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "satclip"


def raw_dir(path: str | os.PathLike | None = None) -> Path:
    """Where registered upstream files are kept: ``<cache>/raw``."""
    return cache_root(path) / RAW_DIR


def hub_cache() -> Path:
    """huggingface_hub's cache folder, read from the environment at call time.

    ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else huggingface_hub's default
    (``huggingface_hub.constants.HF_HUB_CACHE``, ``~/.cache/huggingface/hub``). huggingface_hub
    reads the variables once, at import; reading them here lets a caller (or a test) set them later.
    """
    if os.environ.get(HF_HUB_CACHE_ENV):
        return Path(os.environ[HF_HUB_CACHE_ENV]).expanduser()
    if os.environ.get(HF_HOME_ENV):
        return Path(os.environ[HF_HOME_ENV]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)

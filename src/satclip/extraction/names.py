"""Names in ``extract.encoders``: which ones are valid and the folder each one writes to.

A name is one of

- ``satclip`` (this suite's pretrained checkpoint), ``satclip-random`` (the same architecture,
  untrained), ``sh`` (spherical-harmonic features at the pretrain stage's L), ``geoclip``;
- a coordinate baseline: ``raw``, ``direct``, ``cartesian3d``, ``wrap``, ``sh:L``, ``sh:L:<convention>``;
- an official checkpoint name (``satclip-resnet18-l10`` ... ``satclip-vit16-l40``);
- a path to a ``.ckpt`` file (relative or absolute; it is only read).

Every name maps to one folder directly below ``Layout.embeddings``: the name itself when it is a
plain word (letters, digits, ``.``, ``-``, ``_``, ``:``), else ``ckpt-<stem>-<hash>``. A name can
never make the extract stage write or delete anything outside that folder.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePath

OURS = ("satclip", "satclip-random", "sh", "geoclip")
BASELINES = ("raw", "direct", "cartesian3d", "wrap")
_SH_SPEC = re.compile(r"^sh:(\d+)(?::(satclip|orthonormal))?$")
_PLAIN = re.compile(r"^[a-z0-9][a-z0-9._:-]*$")


class EncoderNameError(ValueError):
    """An ``extract.encoders`` entry is not a known encoder name nor a ``.ckpt`` path."""


def is_checkpoint_path(name: str) -> bool:
    """Whether ``name`` is meant as a checkpoint file (it ends in ``.ckpt``)."""
    return name.lower().endswith(".ckpt")


def check_encoder_name(name: str) -> None:
    """Raise ``EncoderNameError`` naming the problem unless ``name`` is a valid encoder name."""
    from satclip.encoders.pretrained import OFFICIAL_CHECKPOINTS

    if not isinstance(name, str) or not name.strip():
        raise EncoderNameError(f"extract.encoders: empty encoder name {name!r}")
    if is_checkpoint_path(name):
        if PurePath(name).name in ("", ".ckpt"):
            raise EncoderNameError(f"extract.encoders: {name!r} is not a checkpoint file name")
        return
    lowered = name.lower()
    if lowered in OURS or lowered in BASELINES or lowered in OFFICIAL_CHECKPOINTS or _SH_SPEC.match(lowered):
        return
    known = ", ".join([*OURS, *BASELINES, "sh:L", "sh:L:orthonormal", *sorted(OFFICIAL_CHECKPOINTS)])
    raise EncoderNameError(f"extract.encoders: unknown encoder {name!r}: expected one of {known}, "
                           f"or a path to a .ckpt file")


def encoder_folder(name: str) -> str:
    """The folder name (one path component, never ``.`` or ``..``) of encoder ``name``'s embeddings."""
    if not is_checkpoint_path(name) and _PLAIN.match(name) and name not in (".", ".."):
        return name
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", PurePath(name).stem).strip("._") or "checkpoint"
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"ckpt-{stem[:40]}-{digest}"

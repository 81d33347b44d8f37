"""Named random streams: every random draw of a run is derived from ``seed`` and one of these.

The values are part of the results: changing one changes the numbers every later run gets, so
they never move. Streams of the download stage seed ``numpy.random.SeedSequence([seed, stream])``
directly; the others go through ``stream_seed(seed, stream, ...)`` with further integers
(epoch, batch, view) appended.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class DataStream(IntEnum):
    """Streams of the download stage (``SeedSequence([seed, stream])``)."""

    LABEL_POINTS = 1  # the land sample shared by the land-point tasks
    BLUEMARBLE = 2  # locations of the Blue Marble pretraining pairs


class TrainStream(IntEnum):
    """Streams of pretraining and extraction (``stream_seed(seed, stream, ...)``)."""

    AUGMENT_TRAIN = 1  # crops, flips, blur, jitter of a training batch (epoch, batch)
    AUGMENT_VAL = 2  # the same for a validation batch, when augment_val is on
    DROPOUT = 3  # torch's global generator before each training step (epoch, batch)
    SHUFFLE = 7  # the epoch's permutation of the training pairs (epoch)
    VALIDATION_SPLIT = 11  # which pairs are held out for validation
    FEATURE_CACHE = 13  # augmented views of the feature cache (view, batch)
    UNTRAINED_INIT = 17  # initialization of the untrained encoder (satclip-random)
    PRETRAIN_RUN = 19  # the seed of pretraining run r >= 1 (run 0 uses ``seed`` itself)
    RCF_FILTERS = 23  # which image patches become the random convolutional features' filters


def stream_seed(*parts: int) -> int:
    """A 63-bit seed derived from integers (numpy ``SeedSequence``), stable across platforms."""
    return int(np.random.SeedSequence([abs(int(p)) for p in parts]).generate_state(2, np.uint64)[0] >> 1)

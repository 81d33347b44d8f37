"""The pretrain stage: train SatCLIP from the ``pretrain`` section, resumably.

Outputs: ``Layout.checkpoint`` (the best checkpoint), ``Layout.metrics("pretrain")`` and
``Layout.history``; the resumable run lives in ``Layout.run_dir`` (see ``pretraining.runs``).
"""

from __future__ import annotations

from lightning.pytorch.callbacks import Callback

from satclip.config import Params
from satclip.pretraining.runs import train


def run_pretrain(params: Params, callbacks: list[Callback] | None = None) -> dict:
    """Train (or resume, or reuse a finished run) and write the stage's outputs; return the metrics."""
    return train(params, callbacks)


def main(argv: list[str] | None = None) -> int:
    """``python -m satclip.stages.pretrain [params.yaml]``: train outside the notebook.

    For launchers that start one process per GPU (``torchrun``, SLURM ``srun``) with
    ``pretrain.trainer.strategy: ddp``; afterwards ``dvc commit pretrain`` records the outputs.
    """
    from satclip.stages.runner import run_function

    return run_function(run_pretrain, argv)


if __name__ == "__main__":
    raise SystemExit(main())

"""Ablations: overlays of ``params.yaml``, sweeps run as DVC experiments, and their comparison."""

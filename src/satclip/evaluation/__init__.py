"""Downstream evaluation of frozen location embeddings.

``splits`` (random, checkerboard, held-out continent), ``probes`` (MLP, XGBoost, linear),
``metrics``, ``run`` (the grid of one task), ``tables`` (the joined results) and ``verdict``
(does pretraining help). Import the module you need; this package imports nothing itself, so
that reading the ``evaluate`` section's schema does not load the probes.
"""

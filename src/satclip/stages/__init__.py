"""Pipeline stages: one module per dvc.yaml stage (``run_<stage>(params)`` and an entry point) and the runner."""

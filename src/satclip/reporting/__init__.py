"""What a reader sees: figures, provenance and the front pages.

Per-stage figures (``plots``), the run's cross-task figures (``summary``), provenance, and the
front pages (``index``). Reporting never imports a stage.
"""

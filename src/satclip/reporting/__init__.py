"""What a reader sees: per-stage figures (``plots``), the run's cross-task figures
(``summary``), provenance, and the front pages (``index``). Reporting never imports a stage."""

"""Data: downloads, label tables, pretraining sets and point sampling."""

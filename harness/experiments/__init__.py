"""Experiment files shipped with the package (the embedded default)."""

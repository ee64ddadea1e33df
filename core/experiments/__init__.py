"""Experiments over many runs: the course reports' presets and their reproduction, sweeps, the overfitting study."""

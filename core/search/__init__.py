"""Hyperparameter search: `space` (the settings, plain data) and `study` (running them with Optuna)."""

"""Axis helpers for the plotly figures.
"""

from __future__ import annotations

import numpy as np


def spans_decades(values, ratio: float = 1e3) -> bool:
    """Whether the finite positive `values` range over more than `ratio` (one far too high learning rate's loss
    among sane ones): a linear axis would flatten all the others into one line at the bottom."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    return bool(len(values)) and values.max() > ratio * values.min()


def log_axis_range(values, pad_decades: float = 0.5) -> tuple[float, float]:
    """A plotly log-axis range (in decades) around positive `values`, padded by `pad_decades` on each side."""
    logs = np.log10(np.asarray(values, dtype=float))
    return float(logs.min()) - pad_decades, float(logs.max()) + pad_decades

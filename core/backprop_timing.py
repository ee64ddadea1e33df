"""How long a gradient takes: hand-vectorised backprop, `jax.grad`, a naive per-example per-weight loop, and
finite differences, on a one-hidden-layer MLP as the batch size and the hidden width grow.

Jitted methods report compilation separately from run time. The naive loop and finite differences are too slow
to run in full beyond tiny sizes: they are timed on a few examples (or a sample of weights) and the full cost is
extrapolated linearly, flagged `extrapolated`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from core.gradients import ProgressCallback, autodiff_gradient, finite_differences, hand_gradient, sample_indices
from core.models import ModelConfig, Params, count_parameters, init, seed_key

METHODS = {
    "hand": "hand-vectorised backprop (jit)",
    "autodiff": "jax.grad (jit)",
    "naive": "naive per-example, per-weight loop",
    "finite-differences": "finite differences, a full forward pass per weight (jit)",
}
NAIVE_EXAMPLES = 2  # the naive loop runs on this many examples, then is extrapolated to the batch
FD_WEIGHTS = 256  # finite differences run on this many weights, then are extrapolated to all of them


@dataclass(frozen=True)
class Timing:
    """One method at one size. `seconds` is the run time of one full gradient (extrapolated when flagged)."""

    method: str
    batch_size: int
    hidden: int
    parameters: int
    seconds: float
    compile_seconds: float | None  # None for the un-jitted naive loop
    extrapolated: bool
    measured_fraction: float  # the share of the work actually timed (1 = all of it)


def naive_gradient(params: Params, x: np.ndarray, y: np.ndarray, activation: str) -> dict[str, np.ndarray]:
    """dC/dθ of the one-hidden-layer MLP the way the course reports wrote it: one example at a time, one
    weight at a time, in plain Python loops (the mean over the batch, as the other methods)."""
    w1, b1 = np.asarray(params["hidden_0"]["w"]).tolist(), np.asarray(params["hidden_0"]["b"]).tolist()
    w2, b2 = np.asarray(params["output"]["w"]).tolist(), np.asarray(params["output"]["b"]).tolist()
    n_in, n_hidden, n_out = len(w1), len(b1), len(b2)
    g_w1 = [[0.0] * n_hidden for _ in range(n_in)]
    g_b1, g_w2, g_b2 = [0.0] * n_hidden, [[0.0] * n_out for _ in range(n_hidden)], [0.0] * n_out
    n = len(y)
    for example, label in zip(np.asarray(x).tolist(), np.asarray(y).tolist()):
        z1 = [b1[j] + sum(example[i] * w1[i][j] for i in range(n_in)) for j in range(n_hidden)]
        a1 = [math.tanh(z) if activation == "tanh" else 1 / (1 + math.exp(-z)) for z in z1]
        logits = [b2[k] + sum(a1[j] * w2[j][k] for j in range(n_hidden)) for k in range(n_out)]
        top = max(logits)
        exps = [math.exp(v - top) for v in logits]
        delta2 = [e / sum(exps) - (k == label) for k, e in enumerate(exps)]
        for k in range(n_out):
            g_b2[k] += delta2[k] / n
            for j in range(n_hidden):
                g_w2[j][k] += a1[j] * delta2[k] / n
        for j in range(n_hidden):
            slope = 1 - a1[j] ** 2 if activation == "tanh" else a1[j] * (1 - a1[j])
            delta1 = sum(w2[j][k] * delta2[k] for k in range(n_out)) * slope
            g_b1[j] += delta1 / n
            for i in range(n_in):
                g_w1[i][j] += example[i] * delta1 / n
    return {"hidden_0": {"w": np.array(g_w1), "b": np.array(g_b1)}, "output": {"w": np.array(g_w2), "b": np.array(g_b2)}}


def _seconds(fn: Callable[[], object], repeats: int) -> float:
    """The median wall time of `repeats` calls (results waited for)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _jitted(gradient: Callable, config: ModelConfig, params: Params, x, y, repeats: int) -> tuple[float, float]:
    """(run seconds, compile seconds) of a jitted gradient function."""
    start = time.perf_counter()
    compiled = jax.jit(gradient, static_argnames="config").lower(params, x, y, config=config).compile()
    compile_seconds = time.perf_counter() - start
    return _seconds(lambda: compiled(params, x, y), repeats), compile_seconds


def time_size(x: np.ndarray, y: np.ndarray, batch_size: int, hidden: int, activation: str = "tanh",
              repeats: int = 3, seed: int = 0) -> list[Timing]:
    """Every method on one MLP 784-hidden-10 and the first `batch_size` examples of (x, y)."""
    config = ModelConfig("mlp", (hidden,), activation)
    params = init(seed_key(seed), config)
    xb, yb = jnp.asarray(x[:batch_size]), jnp.asarray(y[:batch_size])
    parameters = count_parameters(params)

    def row(method, seconds, compile_seconds, fraction):
        return Timing(method, batch_size, hidden, parameters, seconds / fraction, compile_seconds, fraction < 1, fraction)

    rows = [row(name, *_jitted(fn, config, params, xb, yb, repeats), 1.0)
            for name, fn in (("hand", hand_gradient), ("autodiff", autodiff_gradient))]

    count = min(NAIVE_EXAMPLES, batch_size)
    naive = _seconds(lambda: naive_gradient(params, x[:count], y[:count], activation), 1)
    rows.append(row("naive", naive, None, count / batch_size))

    indices = sample_indices(params, None)[:: max(1, parameters // FD_WEIGHTS)][:FD_WEIGHTS]
    def fd():
        return finite_differences(params, xb, yb, config, indices, (1e-3,), "float32", "full")

    start = time.perf_counter()
    fd()
    first = time.perf_counter() - start
    seconds = _seconds(fd, max(1, repeats // 2))
    rows.append(row("finite-differences", seconds, max(first - seconds, 0.0), len(indices) / parameters))
    return rows


def time_methods(x: np.ndarray, y: np.ndarray, batch_sizes=(10, 100, 1000), hidden_widths=(16, 64, 256),
                 fixed_hidden: int = 64, fixed_batch: int = 100, activation: str = "tanh", repeats: int = 3,
                 progress: ProgressCallback | None = None) -> list[Timing]:
    """Every method as the batch grows (hidden width fixed_hidden) and as the width grows (batch fixed_batch)."""
    sizes = list(dict.fromkeys([(b, fixed_hidden) for b in batch_sizes] + [(fixed_batch, h) for h in hidden_widths]))
    rows = []
    for i, (batch, hidden) in enumerate(sizes):
        if progress:
            progress(i / len(sizes), f"batch {batch}, hidden width {hidden}")
        rows.extend(time_size(x, y, min(batch, len(y)), hidden, activation, repeats))
    if progress:
        progress(1.0, "done")
    return rows


def speedups(rows: list[Timing], over: str = "naive", of: str = "hand") -> dict[tuple[int, int], float]:
    """(batch, hidden) -> seconds of `over` / seconds of `of`: how many times faster `of` is."""
    by = {(r.method, r.batch_size, r.hidden): r.seconds for r in rows}
    return {(b, h): by[(over, b, h)] / by[(of, b, h)]
            for (m, b, h) in by if m == of and (over, b, h) in by and by[(of, b, h)] > 0}

"""How long a gradient takes: hand-vectorised backprop, `jax.grad`, a naive per-example per-weight loop, and
finite differences, on a one-hidden-layer MLP as the batch size and the hidden width grow.

Each method is called again and again until its calls add up to `min_seconds`, and the median call is reported:
a gradient of a small network takes well under a millisecond, so a handful of calls would measure noise. Jitted
methods report the time JAX spent compiling for them separately, and only when it compiled in that call (a
program compiled earlier in the process is reused). The naive loop and finite differences are too slow to run in
full beyond tiny sizes: they are timed on a few examples (or a sample of weights) and the full cost is
extrapolated linearly, flagged `extrapolated`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from core.data.spec import DataSpec
from core.errors import ConfigError
from core.lab.backprop import autodiff_gradient, hand_gradient
from core.lab.gradient_check import ProgressCallback, finite_differences, sample_indices
from core.networks.base import Model, ModelConfig, Params, count_parameters, seed_key

METHODS = {
    "hand": "hand-vectorised backprop (jit)",
    "autodiff": "jax.grad (jit)",
    "naive": "naive per-example, per-weight loop",
    "finite-differences": "finite differences, two forward passes per weight (jit)",
}


NAIVE_EXAMPLES = 2  # the naive loop runs on this many examples, then is extrapolated to the batch


FD_WEIGHTS = 256  # finite differences run on this many weights, then are extrapolated to all of them


MIN_SECONDS = 0.15  # each method is called until its calls add up to this much time...


MAX_CALLS = 10_000  # ...or it has been called this often


FIXED_HIDDEN, FIXED_BATCH = 64, 100  # the hidden width while the batch grows, the batch while the width grows


COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")


BACKEND_COMPILE = COMPILE_EVENTS[-1]  # also reported when a program is loaded from JAX's on-disk cache


@dataclass(frozen=True)
class Timing:
    """One method at one size. `seconds` is the median run time of one full gradient (extrapolated when flagged)."""

    method: str
    batch_size: int
    hidden: int
    parameters: int
    seconds: float
    calls: int  # how many calls the median is taken over
    jitted: bool
    compile_seconds: float | None  # compiling in this call (tracing, lowering, XLA); None when nothing compiled
    extrapolated: bool
    measured_fraction: float  # the share of the work actually timed (1 = all of it)

    def compile_text(self) -> str:
        """The compile time as a table shows it: seconds, or why there are none."""
        if not self.jitted:
            return "not compiled (plain Python)"
        return "already compiled" if self.compile_seconds is None else f"{self.compile_seconds:.2f}"

    def how_measured(self) -> str:
        """'measured in full', or how much of the work the extrapolation rests on."""
        if not self.extrapolated:
            return "measured in full"
        unit, total = ("examples", self.batch_size) if self.method == "naive" else ("weights", self.parameters)
        return f"extrapolated from {round(self.measured_fraction * total):,} of {total:,} {unit}"


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
    return {"hidden_0": {"w": np.array(g_w1), "b": np.array(g_b1)},
            "output": {"w": np.array(g_w2), "b": np.array(g_b2)}}


def median_call_seconds(fn: Callable[[], object], min_seconds: float = MIN_SECONDS,
                        max_calls: int = MAX_CALLS) -> tuple[float, int]:
    """(median wall time of one call, number of calls): `fn` is called (results waited for) until the calls add
    up to `min_seconds`, at least once and at most `max_calls` times."""
    times = []
    while not times or (sum(times) < min_seconds and len(times) < max_calls):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times)), len(times)


def compile_seconds_of_call(fn: Callable[[], object]) -> float | None:
    """Call `fn` once (results waited for) and return the seconds JAX spent meanwhile, in this thread, tracing,
    lowering and compiling (or loading compiled programs from its on-disk cache); None when it compiled nothing."""
    thread, durations = threading.get_ident(), []

    def listen(event: str, seconds: float, **_) -> None:
        if event in COMPILE_EVENTS and threading.get_ident() == thread:
            durations.append((event, seconds))

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        jax.block_until_ready(fn())
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    compiled = any(event == BACKEND_COMPILE for event, _ in durations)
    return sum(seconds for _, seconds in durations) if compiled else None


def time_size(x: np.ndarray, y: np.ndarray, spec: DataSpec, batch_size: int, hidden: int, activation: str = "tanh",
              min_seconds: float = MIN_SECONDS, seed: int = 0,
              starting: Callable[[int, str], None] | None = None) -> list[Timing]:
    """Every method on one MLP pixels-hidden-classes and the first `batch_size` examples of (x, y) described by `spec`;
    `starting(i, method)` is called before the i-th of the four methods is timed."""
    model = Model(ModelConfig("mlp", (hidden,), activation), spec)
    params = model.init(seed_key(seed))
    xb, yb = jnp.asarray(x[:batch_size]), jnp.asarray(y[:batch_size])
    parameters = count_parameters(params)

    def timed(method: str, fn: Callable[[], object], jitted: bool, fraction: float = 1.0) -> Timing:
        if starting:
            starting(len(rows), method)
        compile_seconds = compile_seconds_of_call(fn) if jitted else None
        seconds, calls = median_call_seconds(fn, min_seconds)
        return Timing(method, batch_size, hidden, parameters, seconds / fraction, calls, jitted, compile_seconds,
                      fraction < 1, fraction)

    rows = []
    for method, gradient in (("hand", hand_gradient), ("autodiff", autodiff_gradient)):
        jitted = jax.jit(gradient, static_argnames="model")
        rows.append(timed(method, lambda jitted=jitted: jitted(params, xb, yb, model=model), True))

    count = min(NAIVE_EXAMPLES, batch_size)
    rows.append(timed("naive", lambda: naive_gradient(params, x[:count], y[:count], activation), False,
                      count / batch_size))

    indices = sample_indices(params, None)[:: max(1, parameters // FD_WEIGHTS)][:FD_WEIGHTS]
    rows.append(timed("finite-differences",
                      lambda: finite_differences(params, xb, yb, model, indices, (1e-3,), "float32", "full"), True,
                      len(indices) / parameters))
    return rows


def time_methods(x: np.ndarray, y: np.ndarray, spec: DataSpec, batch_sizes=(10, 100, 1000), hidden_widths=(16, 64, 256),
                 fixed_hidden: int = FIXED_HIDDEN, fixed_batch: int = FIXED_BATCH, activation: str = "tanh",
                 min_seconds: float = MIN_SECONDS, progress: ProgressCallback | None = None) -> list[Timing]:
    """Every method as the batch grows (hidden width fixed_hidden) and as the width grows (batch fixed_batch)."""
    sizes = list(dict.fromkeys([(b, fixed_hidden) for b in batch_sizes] + [(fixed_batch, h) for h in hidden_widths]))
    largest = max((batch for batch, _ in sizes), default=0)
    if largest > len(y):
        raise ConfigError(f"A batch of {largest:,} is more than the {len(y):,} training images; "
                          f"use batch sizes up to {len(y):,}.")
    rows = []
    for i, (batch, hidden) in enumerate(sizes):
        def starting(j: int, method: str, i=i, batch=batch, hidden=hidden) -> None:
            if progress:
                progress((i + j / len(METHODS)) / len(sizes),
                         f"batch {batch}, hidden width {hidden}: {METHODS[method]}")

        rows.extend(time_size(x, y, spec, batch, hidden, activation, min_seconds, starting=starting))
    if progress:
        progress(1.0, "done")
    return rows


def speedups(rows: list[Timing], over: str = "naive", of: str = "hand") -> dict[tuple[int, int], float]:
    """(batch, hidden) -> seconds of `over` / seconds of `of`: how many times faster `of` is."""
    by = {(r.method, r.batch_size, r.hidden): r.seconds for r in rows}
    return {(b, h): by[(over, b, h)] / by[(of, b, h)]
            for (m, b, h) in by if m == of and (over, b, h) in by and by[(of, b, h)] > 0}

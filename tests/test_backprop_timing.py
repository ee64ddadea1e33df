"""Timing the ways to compute a gradient: enough calls to measure, honest compile times, clear sizes; the CLI."""

from __future__ import annotations

import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from core.cli import main
from core.data.spec import MNIST_SPEC
from core.errors import ConfigError
from core.lab.backprop import hand_gradient
from core.lab.backprop_timing import (
    Timing,
    compile_seconds_of_call,
    median_call_seconds,
    naive_gradient,
    speedups,
    time_methods,
    time_size,
)
from core.lab.gradient_check import relative_error
from core.networks.base import Model, ModelConfig, seed_key


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return rng.random((40, 784)).astype(np.float32), rng.integers(0, 10, 40).astype(np.int32)


def test_naive_loop_computes_the_same_gradient(batch):
    model = Model(ModelConfig("mlp", (5,), "sigmoid"), MNIST_SPEC)
    params = model.init(seed_key(0))
    x, y = batch[0][:3], batch[1][:3]
    naive = ravel_pytree(naive_gradient(params, x, y, "sigmoid"))[0]
    assert relative_error(naive, ravel_pytree(hand_gradient(params, x, y, model))[0]) < 1e-5


def calls_taking(monkeypatch, seconds: float) -> None:
    """A clock on which every call takes `seconds`: each reading is that much later than the one before."""
    readings = iter(np.arange(10_000) * seconds)
    monkeypatch.setattr(time, "perf_counter", lambda: float(next(readings)))


def test_fast_calls_are_repeated_until_they_add_up_to_the_minimum_time(monkeypatch):
    calls_taking(monkeypatch, 0.002)
    seconds, calls = median_call_seconds(lambda: None, min_seconds=0.05)
    assert calls in (25, 26) and seconds == pytest.approx(0.002)  # 25 × 2 ms, give or take rounding
    calls_taking(monkeypatch, 0.03)
    assert median_call_seconds(lambda: None, min_seconds=0.02) == (pytest.approx(0.03), 1)  # a slow call counts once
    calls_taking(monkeypatch, 0.001)
    assert median_call_seconds(lambda: None, min_seconds=10.0, max_calls=50)[1] == 50


def test_compile_time_is_reported_only_when_something_compiled():
    def cube(v):
        return v**3 + 1

    jitted = jax.jit(cube)
    first = compile_seconds_of_call(lambda: jitted(jnp.ones(7)))
    assert first is not None and first > 0
    assert compile_seconds_of_call(lambda: jitted(jnp.ones(7))) is None  # compiled already: nothing to report
    assert compile_seconds_of_call(lambda: jax.jit(cube)(jnp.ones(7))) is None  # a new wrapper reuses the program
    assert compile_seconds_of_call(lambda: sum(range(10))) is None


def test_timing_rows_measure_many_calls_and_say_how(batch):
    rows = time_size(*batch, MNIST_SPEC, batch_size=10, hidden=4, min_seconds=0.02)
    by_method = {r.method: r for r in rows}
    assert set(by_method) == {"hand", "autodiff", "naive", "finite-differences"}
    hand, naive, fd = by_method["hand"], by_method["naive"], by_method["finite-differences"]
    assert hand.calls >= 1 and all(r.calls >= 1 for r in rows)
    assert naive.extrapolated and not naive.jitted and naive.compile_seconds is None
    assert naive.compile_text() == "not compiled (plain Python)"
    assert naive.how_measured() == "extrapolated from 2 of 10 examples"
    assert fd.how_measured() == f"extrapolated from 256 of {fd.parameters:,} weights"
    assert not hand.extrapolated and hand.how_measured() == "measured in full"
    assert all(r.seconds > 0 for r in rows)
    assert speedups(rows)[(10, 4)] == pytest.approx(naive.seconds / hand.seconds)
    # the same size again: its programs were compiled above, and the rows say so instead of showing 0.00 s
    again = {r.method: r for r in time_size(*batch, MNIST_SPEC, batch_size=10, hidden=4, min_seconds=0.02)}
    assert {again[m].compile_text() for m in ("hand", "autodiff", "finite-differences")} == {"already compiled"}


def test_progress_is_reported_before_each_method_of_each_size(batch):
    reports = []
    time_methods(*batch, MNIST_SPEC, batch_sizes=(5, 10), hidden_widths=(4,), fixed_hidden=4, fixed_batch=10,
                 min_seconds=0.0,
                 progress=lambda done, text: reports.append((done, text)))
    assert [done for done, _ in reports] == [0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0]
    assert reports[2][1] == "batch 5, hidden width 4: naive per-example, per-weight loop" and reports[-1][1] == "done"


def test_a_tiny_measured_share_is_not_shown_as_zero():
    fraction = 256 / 556_510  # finite differences on 256 weights of a 784-700-10 MLP: "0.0%" in tenths of a percent
    row = Timing("finite-differences", 1, 700, 556_510, 1.0, 1, True, None, True, fraction)
    assert row.how_measured() == "extrapolated from 256 of 556,510 weights"
    assert Timing("naive", 5000, 64, 50_890, 1.0, 1, False, None, True, 2 / 5000).how_measured() == \
        "extrapolated from 2 of 5,000 examples"


def test_batches_larger_than_the_data_are_refused(batch):
    with pytest.raises(ConfigError, match="more than the 40 training images"):
        time_methods(*batch, MNIST_SPEC, batch_sizes=(10, 100), hidden_widths=(4,), fixed_batch=10)
    with pytest.raises(ConfigError, match="A batch of 100"):  # the batch the widths are timed at counts too
        time_methods(*batch, MNIST_SPEC, batch_sizes=(10,), hidden_widths=(4,))


def test_backprop_timing_cli(tiny_data_dir, capsys):
    assert main(["backprop-timing", "--data-dir", str(tiny_data_dir), "--batch-sizes", "100000"]) == 2
    assert "A batch of 100,000 is more than the 1,200 training images" in capsys.readouterr().err
    assert main(["backprop-timing", "--data-dir", str(tiny_data_dir), "--batch-sizes", "5", "--hidden-widths", "4",
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]
    assert {(r["batch_size"], r["hidden"]) for r in rows} == {(5, 64), (100, 4)}
    assert all(r["calls"] >= 1 for r in rows)


def test_backprop_timing_help_names_the_fixed_sizes(capsys):
    with pytest.raises(SystemExit):
        main(["backprop-timing", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "each at hidden width 64" in text and "each at batch size 100" in text

"""Presets build and train; `python -m core reproduce` runs on a tiny subset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.cli import main
from core.data.splits import make_splits
from core.errors import ConfigError
from core.experiments.presets import PRESETS, get_preset
from core.experiments.reproduce import TABLE_KEYS, on_subset
from core.store.history import RunHistory
from core.training.config import RunConfig
from core.training.loop import train


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds_and_trains_a_few_steps(name, tiny_mnist):
    preset = PRESETS[name]
    assert preset.description and preset.arch
    assert preset.ours or preset.reported_text, "a report preset states what its report gives"
    for config in preset.configs:
        assert RunConfig.from_json(config.to_json()) == config
        small = on_subset(config, 200)
        assert small.data.train_size == 200 and small.train.batch_size <= 200
        splits = make_splits(tiny_mnist, small.data)
        first = next(train(small, splits))
        assert first.step >= 1 and np.isfinite(first.train_loss)


REPORTED = {  # the reports' test accuracies, as the experiments issue lists them (None: curves, no number)
    "softmax-1000-per-digit": 0.961, "softmax-minibatch": 0.9007, "softmax-momentum": None,
    "mlp-300-tanh-adam": 0.97, "mlp-64-sigmoid-sgd": 0.948, "mlp-64-sigmoid-2000": None, "lenet5-sgd": 0.9888,
}


def test_presets_cover_the_reports_and_our_best():
    reports = {name: preset.reported for name, preset in PRESETS.items() if not preset.ours}
    assert reports == REPORTED
    momentum = get_preset("softmax-momentum").configs  # full-batch gradient descent, then with momentum 0.9
    assert [c.train.optimizer for c in momentum] == ["sgd", "momentum"] and momentum[1].train.momentum == 0.9
    assert {p.configs[0].model.arch for p in PRESETS.values() if p.ours} == {"linear", "mlp", "lenet5"}
    with pytest.raises(ConfigError, match="Unknown preset"):
        get_preset("nope")


def test_reproduce_json_on_a_tiny_subset(tiny_data_dir, capsys):
    code = main(["reproduce", "--data-dir", str(tiny_data_dir), "--json", "--train-size", "300",
                 "--presets", "softmax-minibatch,softmax-momentum"])
    assert code == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["preset"] for row in rows] == ["softmax-minibatch", "softmax-momentum"]
    for row in rows:
        assert set(TABLE_KEYS) <= set(row)
        assert 0.5 < row["test_accuracy"] <= 1.0  # the synthetic digits are easy
        assert row["seconds"] > 0
    assert rows[0]["reported"] == pytest.approx(0.9007) and rows[0]["epochs"] == 5
    assert len(rows[1]["runs"]) == 2
    saved = {row.name: row for row in RunHistory().list()}  # every preset run went to the run history
    assert set(saved) == {"softmax-minibatch", *rows[1]["runs"]}
    assert all(RunHistory().load(row.run_id).test_confusion is not None for row in saved.values())


def test_reproduce_table_and_unknown_preset(tiny_data_dir, capsys):
    assert main(["reproduce", "--data-dir", str(tiny_data_dir), "--train-size", "200", "--presets",
                 "mlp-300-tanh-adam"]) == 0
    out = capsys.readouterr().out
    assert "| mlp-300-tanh-adam | 784-300-10 tanh | 97% |" in out
    assert main(["reproduce", "--data-dir", str(tiny_data_dir), "--presets", "softmax-typo"]) == 2
    assert "Unknown preset 'softmax-typo'" in capsys.readouterr().err


def test_a_quick_check_subset_larger_than_the_data_trains_the_preset_as_it_is():
    everything = get_preset("softmax-minibatch").configs[0]
    assert everything.data.train_size is None and everything.data.per_class is None
    assert on_subset(everything, 60_000) == everything == on_subset(everything, 55_000)
    assert on_subset(everything, 54_999).data.train_size == 54_999
    per_digit = get_preset("softmax-1000-per-digit").configs[0]
    assert on_subset(per_digit, 60_000) == per_digit == on_subset(per_digit, 10_000)  # 1,000 of each digit, as it is
    assert on_subset(per_digit, 9_999).data.train_size == 9_999 and on_subset(per_digit, 9_999).data.per_class is None

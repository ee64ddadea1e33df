"""Training across several devices: each batch split across a device mesh (a sweep: its variants), the same curves
as on one device to float rounding. Run in a subprocess with 4 simulated CPU devices (XLA's host device count is
fixed when JAX starts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

from core.data.spec import MNIST_SPEC
from core.data.splits import SplitConfig
from core.errors import ConfigError
from core.networks.base import ModelConfig
from core.training.config import RunConfig, TrainConfig
from core.training.loop import check_run

FOUR_DEVICES = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "PYTHONPATH": str(REPO)}

COMPARISON = r"""
import json, sys
sys.path.insert(0, "tests")
import jax
import numpy as np
from conftest import synthetic_mnist
from core.data.splits import SplitConfig, make_splits
from core.experiments.sweep import SweepConfig, train_sweep
from core.networks.base import ModelConfig
from core.training.config import RunConfig, TrainConfig
from core.training.loop import train

split = SplitConfig(val_size=200)
splits = make_splits(synthetic_mnist(n_train=800, n_test=100), split)
def config(model, devices):
    return RunConfig(model, split, TrainConfig(epochs=1, batch_size=40, devices=devices))
def gap(a, b):
    return float(np.max(np.abs(a - b) / np.abs(a)))
out = {"devices": len(jax.devices())}
for name, model in {"mlp dropout": ModelConfig("mlp", (32,), "relu", dropout=(0.3,)),
                    "lenet5": ModelConfig("lenet5")}.items():
    curves = {}
    for devices in (1, 4):
        records = list(train(config(model, devices), splits))
        curves[devices] = np.array([r.train_loss for r in records] + [records[-1].val_loss])
        leaf = records[-1].params[next(iter(records[-1].params))]["w"]
    out[name] = {"gap": gap(curves[1], curves[4]), "steps": len(curves[1]),
                 "devices holding the weights": len(leaf.sharding.device_set)}
for name, vmapped in (("sweep, variants split", True), ("sweep, batches split", False)):
    curves = {}
    for devices in (1, 4):
        variants = SweepConfig(config(ModelConfig("mlp", (16,), "tanh"), devices), learning_rates=(1e-3, 3e-3),
                               seeds=(0, 1)).variants()
        curves[devices] = np.array([[r.train_loss for r in rec] for rec in train_sweep(variants, splits,
                                                                                        vmapped=vmapped)])
    out[name] = {"gap": gap(curves[1], curves[4]), "steps": curves[1].shape[0]}
print(json.dumps(out))
"""


def test_four_devices_give_the_curves_of_one():
    done = subprocess.run([sys.executable, "-c", COMPARISON], cwd=REPO, env=FOUR_DEVICES, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.splitlines()[-1])
    assert out.pop("devices") == 4
    for name, result in out.items():
        assert result["steps"] > 3, name
        assert result["gap"] < 1e-4, (name, result)  # float rounding: sums in another order
    assert out["mlp dropout"]["devices holding the weights"] == 4  # replicated on the mesh


def test_the_cli_trains_on_the_devices_asked_for_and_lists_them(data_env):
    env = {**FOUR_DEVICES, "MNIST_DATA_DIR": str(data_env)}
    listed = subprocess.run([sys.executable, "-m", "core", "data", "--json"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=300)
    assert json.loads(listed.stdout)["devices"] == "4 CPU devices"
    trained = subprocess.run([sys.executable, "-m", "core", "train", "--arch", "linear", "--epochs", "1",
                              "--batch-size", "40", "--val-size", "200", "--devices", "4", "--json", "--no-history"],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr[-2000:]
    result = json.loads(trained.stdout)
    assert result["config"]["train"]["devices"] == 4 and result["test_accuracy"] > 0.5


def test_a_batch_that_does_not_split_evenly_or_too_many_devices_are_refused():
    with pytest.raises(ConfigError, match=r"batch size \(50\) must split evenly across the 3 devices"):
        TrainConfig(batch_size=50, devices=3)
    with pytest.raises(ConfigError, match="whole number, at least 1"):
        TrainConfig(devices=0)
    config = RunConfig(ModelConfig("linear"), SplitConfig(val_size=100), TrainConfig(batch_size=64, devices=64))
    with pytest.raises(ConfigError, match="64 devices asked for, but this machine has"):
        check_run(config, np.repeat(np.arange(10), 100), MNIST_SPEC)

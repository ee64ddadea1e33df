"""The chunked training engine: learning, determinism, divergence, no recompilation, evaluation."""

import dataclasses
import json
import logging
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import core.training.loop
from core.data.spec import MNIST_SPEC, DataSpec
from core.data.splits import SplitConfig, make_splits
from core.errors import ConfigError
from core.networks.base import Model, ModelConfig, seed_key
from core.training.config import Optimizer, RunConfig, Schedule, TrainConfig
from core.training.evaluation import _forward, evaluate, loss_and_accuracy
from core.training.loop import StartPoint, chunks, train
from core.training.optimizers import learning_rate_schedule, make_optimizer
from core.training.programs import (
    CHUNKS_PER_EPOCH,
    _compiled_chunk,
    cross_entropy,
    steps_per_chunk,
)
from core.training.runs import Run
from core.training.status import RunStatus, parse_status, status_text


@pytest.fixture(scope="module")
def splits(tiny_mnist):
    return make_splits(tiny_mnist, SplitConfig(val_size=200))


def config(arch="mlp", activation="tanh", **train_kwargs):
    defaults = dict(optimizer="adam", learning_rate=3e-3, batch_size=32, epochs=2, steps_per_chunk=7)
    return RunConfig(model=ModelConfig(arch, hidden=(32,), activation=activation), data=SplitConfig(val_size=200),
                           train=TrainConfig(**{**defaults, **train_kwargs}))


def run_to_end(cfg, splits):
    records = list(train(cfg, splits))
    return records, records[-1]


@pytest.mark.parametrize("arch", ["linear", "mlp", "lenet5"])
def test_training_lowers_the_loss_and_learns(splits, arch):
    records, last = run_to_end(config(arch), splits)
    assert last.status == "finished" and last.step == last.total_steps == 2 * (1000 // 32)
    assert records[-1].train_loss < records[0].train_loss
    assert last.val_accuracy > 0.8  # the synthetic digits are easy
    assert last.compile_seconds > 0 and last.elapsed > 0 and last.samples_per_second > 0


def test_samples_per_second_counts_the_training_steps_alone(splits, monkeypatch):
    """Validation time is in `elapsed` (the time the run took) but not in the training throughput."""
    real = loss_and_accuracy

    def slow_validation(*args):
        time.sleep(0.05)
        return real(*args)

    monkeypatch.setattr(core.training.loop, "loss_and_accuracy", slow_validation)
    _, last = run_to_end(config("linear", eval_every=7), splits)
    assert last.samples_per_second > 1.5 * last.step * 32 / last.elapsed


def test_records_per_chunk_and_validation_each_epoch(splits):
    records, _ = run_to_end(config(epochs=3), splits)
    steps_per_epoch = 1000 // 32  # 31 steps: chunks of 7 → 5 per epoch, the last masked to 3 steps
    assert [r.step for r in records[:5]] == [7, 14, 21, 28, 31]
    validated = [r.epoch for r in records if r.val_accuracy is not None]
    assert validated == [1.0, 2.0, 3.0]
    assert records[-1].step == 3 * steps_per_epoch


def test_chunk_size_pads_the_epoch_least():
    lenet = RunConfig(ModelConfig("lenet5"), train=TrainConfig(batch_size=64))
    k = steps_per_chunk(lenet.train, Model(lenet.model, MNIST_SPEC), 937)  # the full MNIST epoch: 937 is prime,
    assert k <= 937 // CHUNKS_PER_EPOCH and -(-937 // k) * k - 937 <= 3  # so the last chunk is padded
    mlp = RunConfig(ModelConfig("mlp", (300,)), train=TrainConfig(batch_size=50))
    assert 1200 % steps_per_chunk(mlp.train, Model(mlp.model, MNIST_SPEC), 1200) == 0  # a divisor: no step is masked
    assert steps_per_chunk(config().train, Model(config().model, MNIST_SPEC), 31) == 7  # as configured
    asked = TrainConfig(batch_size=50, eval_every=5)
    # validation runs between chunks: as often as asked
    assert steps_per_chunk(asked, Model(mlp.model, MNIST_SPEC), 1200) <= 5


def test_eval_every_adds_validation_points(splits):
    records, _ = run_to_end(config(epochs=1, eval_every=10), splits)
    assert [r.step for r in records if r.val_accuracy is not None] == [14, 21, 31]


def test_same_config_same_curves_bit_for_bit(splits):
    first, a = run_to_end(config(), splits)
    second, b = run_to_end(config(), splits)
    assert [r.train_loss for r in first] == [r.train_loss for r in second]
    assert [r.val_loss for r in first] == [r.val_loss for r in second]
    jax.tree_util.tree_map(np.testing.assert_array_equal, a.params, b.params)
    other, _ = run_to_end(config(seed=1), splits)
    assert [r.train_loss for r in other] != [r.train_loss for r in first]


def test_divergence_stops_and_keeps_finite_params(splits):
    records, last = run_to_end(config(activation="relu", optimizer="sgd", learning_rate=1e8, epochs=5), splits)
    assert last.diverged and last.status is RunStatus.DIVERGED and 1 <= last.diverged_at <= last.total_steps
    assert all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(last.params))
    assert last.val_accuracy is None
    assert len(records) == 1 and records[0].step < 7  # stopped in the first chunk, before its end
    run = Run("boom", config(), splits.spec)
    for record in records:
        run.record(record)
    run.finish(splits)
    assert run.diverged and run.test_accuracy is None  # never reported as an accuracy
    assert run.summary()["status"] == f"diverged at step {last.diverged_at}"


def test_a_non_finite_update_in_a_chunks_last_step_is_a_divergence(splits):
    """The loss of a step comes before its update: a finite loss whose update overflows (weight decay on a huge
    bias) must not hand on infinite parameters as the 'last finite' ones."""
    cfg = config("linear", optimizer="sgd", learning_rate=1.0, weight_decay=1e3, steps_per_chunk=1)
    params = Model(cfg.model, splits.spec).init(seed_key(0))
    params["output"] = {"w": jnp.zeros_like(params["output"]["w"]), "b": jnp.zeros(10).at[0].set(5e36)}
    records = list(train(cfg, splits, start=StartPoint(params)))
    assert np.isfinite(records[0].train_loss)
    assert (records[-1].status, records[-1].diverged_at) == (RunStatus.DIVERGED, 1)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(records[-1].params))


def test_every_epoch_end_keeps_a_snapshot_with_or_without_validation(tiny_mnist):
    for val_size in (0, 200):
        cfg = dataclasses.replace(config(epochs=3), data=SplitConfig(val_size=val_size))
        run = Run("snapshots", cfg, tiny_mnist.spec)
        for progress in train(cfg, make_splits(tiny_mnist, cfg.data)):
            run.record(progress)
        assert [epoch for epoch, _ in run.snapshots] == [1, 2, 3]
        assert run.snapshots[-1][1] is run.params


def test_no_recompilation_after_first_chunk(splits, caplog):
    cfg = config(epochs=2, eval_every=9)
    generator = train(cfg, splits)
    next(generator)  # everything compiles before the first record
    with jax.log_compiles(True), caplog.at_level(logging.DEBUG, logger="jax"):
        rest = list(generator)
    assert rest[-1].status == "finished" and len(rest) >= 8
    assert not [r for r in caplog.records if "Compiling" in r.getMessage()]
    # a second run of the same setup (another seed, another initialisation) reuses the compiled programs
    hits, evaluations = _compiled_chunk.cache_info().hits, _forward.cache_info().misses
    other = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, init="normal", init_std=0.05),
                                train=dataclasses.replace(cfg.train, seed=5))
    next(train(other, splits))
    assert _compiled_chunk.cache_info().hits == hits + 1
    assert _forward.cache_info().misses == evaluations


def test_what_a_compiled_program_depends_on():
    def program(config: ModelConfig) -> Model:
        return Model(config, MNIST_SPEC).for_programs()

    mlp = ModelConfig("mlp", (64,), "relu", init="he")
    assert program(mlp) == program(dataclasses.replace(mlp, init="normal", init_std=0.3))
    assert program(mlp) != program(dataclasses.replace(mlp, hidden=(65,)))
    assert program(mlp).config.activation == "relu"
    assert program(mlp) != program(dataclasses.replace(mlp, dropout=(0.2,)))  # dropout is in the program
    lenet = ModelConfig("lenet5", hidden=(7,), activation="sigmoid", init="he")
    assert program(lenet) == program(ModelConfig("lenet5"))
    letters = DataSpec("letters", 16, 16, 1, tuple("ABCD"))
    assert Model(mlp, letters).for_programs() != program(mlp)  # so is the data's shape


def test_the_training_set_is_copied_to_the_device_once_per_splits(tiny_mnist, monkeypatch):
    import core.data.splits
    copies = []
    monkeypatch.setattr(core.data.splits.jax, "device_put", lambda a: copies.append(a.shape) or jax.numpy.asarray(a))
    fresh = make_splits(tiny_mnist, SplitConfig(val_size=200))
    for seed in (0, 1):  # two runs, and a sweep, on the same splits
        run_to_end(config(epochs=1, seed=seed), fresh)
    from core.experiments.sweep import train_sweep
    list(train_sweep([config(epochs=1, seed=2), config(epochs=1, seed=3, shuffle_seed=2)], fresh))
    assert copies == [fresh.x_train.shape, fresh.y_train.shape]


@pytest.mark.parametrize("schedule, rate_at", [
    ("exponential", lambda t, per_epoch, total: 0.5 * 0.6 ** (t // per_epoch)),  # decays once per epoch
    ("cosine", lambda t, per_epoch, total: 0.5 * 0.5 * (1 + np.cos(np.pi * t / total))),  # over the whole run
])
def test_the_compiled_program_follows_the_schedule_step_by_step(splits, schedule, rate_at):
    """The engine's parameters after two epochs of SGD equal a plain loop's that sets each step's rate by hand."""
    cfg = config("linear", optimizer="sgd", learning_rate=0.5, schedule=schedule, decay=0.6, epochs=2)
    *_, last = train(cfg, splits)
    tc, n = cfg.train, len(splits.y_train)
    per_epoch = n // tc.batch_size
    model = Model(cfg.model, splits.spec)
    loss = jax.jit(jax.grad(lambda p, x, y: cross_entropy(model.apply(p, x), y).mean()))
    params, t = model.init(seed_key(tc.seed)), 0
    for chunk in chunks(tc, n, 7):
        for index in chunk.batch_index[chunk.active]:
            grads = loss(params, splits.x_train[index], splits.y_train[index])
            params = jax.tree_util.tree_map(lambda p, g, t=t: p - rate_at(t, per_epoch, 2 * per_epoch) * g,
                                            params, grads)
            t += 1
    assert t == last.step
    for got, want in zip(jax.tree_util.tree_leaves(last.params), jax.tree_util.tree_leaves(params)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_schedules_and_optimizers(splits):
    steps = 1000 // 32
    exp = learning_rate_schedule(TrainConfig(schedule="exponential", decay=0.5, learning_rate=1.0), steps)
    assert float(exp(0)) == 1.0 and float(exp(steps)) == 0.5 and float(exp(2 * steps - 1)) == 0.5
    cos = learning_rate_schedule(TrainConfig(schedule="cosine", epochs=2, learning_rate=1.0), steps)
    assert float(cos(2 * steps)) == pytest.approx(0.0, abs=1e-6) and float(cos(steps)) == pytest.approx(0.5)
    for optimizer in ("sgd", "momentum"):
        _, last = run_to_end(config(optimizer=optimizer, learning_rate=0.1, epochs=1), splits)
        assert last.status == "finished"
    _, nesterov = run_to_end(config(optimizer="momentum", nesterov=True, learning_rate=0.1, epochs=1), splits)
    _, decayed = run_to_end(config(weight_decay=0.1, epochs=1), splits)
    _, plain = run_to_end(config(epochs=1), splits)

    def norm(p):
        return float(sum((leaf ** 2).sum() for leaf in jax.tree_util.tree_leaves(p)))

    assert norm(decayed.params) < norm(plain.params)
    assert nesterov.status == "finished"


@pytest.mark.parametrize("settings, second_update", [
    ({"optimizer": "sgd"}, 1.0),
    ({"optimizer": "momentum", "momentum": 0.9}, 1 + 0.9),  # velocity g, then g + 0.9 g
    ({"optimizer": "momentum", "momentum": 0.9, "nesterov": True}, 1 + 0.9 + 0.9 ** 2),  # g + 0.9 (g + 0.9 g)
    ({"optimizer": "momentum", "momentum": 0.5}, 1 + 0.5),
])
def test_momentum_and_nesterov_updates_are_the_textbook_ones(settings, second_update):
    """Two steps on a constant gradient g: the second update is -lr times the multiple of g given."""
    optimizer = make_optimizer(TrainConfig(learning_rate=0.1, **settings), Model(ModelConfig(), MNIST_SPEC), 10)
    grads = {"w": jnp.full(3, 0.5)}
    state = optimizer.init(grads)
    _, state = optimizer.update(grads, state)
    second, _ = optimizer.update(grads, state)
    np.testing.assert_allclose(second["w"], -0.1 * second_update * 0.5, rtol=1e-6)


def test_weight_decay_adds_its_multiple_of_the_weights_to_the_gradient():
    optimizer = make_optimizer(TrainConfig("sgd", 0.1, weight_decay=0.01), Model(ModelConfig(), MNIST_SPEC), 10)
    params, grads = {"w": jnp.full(3, 2.0)}, {"w": jnp.full(3, 0.5)}
    update, _ = optimizer.update(grads, optimizer.init(params), params)
    np.testing.assert_allclose(update["w"], -0.1 * (0.5 + 0.01 * 2.0), rtol=1e-6)


def test_evaluation(splits):
    _, last = run_to_end(config(), splits)
    model = Model(ModelConfig("mlp", hidden=(32,)), splits.spec)
    ev = evaluate(last.params, model, splits.x_test, splits.y_test)
    assert ev.probabilities.shape == (300, 10)
    np.testing.assert_allclose(ev.probabilities.sum(1), 1, rtol=1e-5)
    assert ev.confusion.sum() == 300 and ev.confusion.shape == (10, 10)
    assert ev.accuracy == pytest.approx(np.trace(ev.confusion) / 300)
    np.testing.assert_allclose(ev.per_class_accuracy, np.diag(ev.confusion) / ev.confusion.sum(1))
    assert set(ev.misclassified) == set(np.flatnonzero(ev.predictions != splits.y_test))
    no_sevens = splits.y_test != 7
    partial = evaluate(last.params, model, splits.x_test[no_sevens], splits.y_test[no_sevens])
    assert np.isnan(partial.per_class_accuracy[7]) and not np.isnan(np.delete(partial.per_class_accuracy, 7)).any()


def test_a_finished_runs_test_evaluation_is_computed_once_per_parameters(splits):
    records, _last = run_to_end(config(epochs=1), splits)
    run = Run("once", config(epochs=1), splits.spec)
    for progress in records:
        run.record(progress)
    run.finish(splits)
    test = run.test_evaluation(splits)
    assert run.test_evaluation(splits) is test  # what finish() measured, not measured again
    assert run.test_accuracy == test.accuracy and (run.test_confusion == test.confusion).all()
    run.params = records[0].params  # other parameters: evaluated afresh
    assert run.test_evaluation(splits) is not test


@pytest.mark.parametrize("kwargs, message", [
    ({"optimizer": "rmsprop"}, "Unknown optimiser 'rmsprop'; choose one of sgd, momentum, adam"),
    ({"schedule": "linear"}, "Unknown schedule"), ({"learning_rate": -1}, "learning rate"),
    ({"learning_rate": 1e39}, "learning rate"), ({"weight_decay": float("inf")}, "Weight decay"),
    ({"batch_size": 0}, "batch size"), ({"batch_size": 32.5}, "batch size"), ({"epochs": 0}, "at least one"),
    ({"epochs": 2.0}, "whole number of epochs"), ({"eval_every": -1}, "Step counts"), ({"momentum": 1.5}, "Momentum"),
    ({"seed": -1}, "Seeds must be"), ({"seed": 2**32}, "Seeds must be"), ({"seed": 1.5}, "Seeds must be"),
    ({"shuffle_seed": -3}, "Seeds must be"),
])
def test_bad_train_configs(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)


def test_optimizer_and_schedule_are_enums_written_as_today():
    cfg = TrainConfig("momentum", schedule="cosine")  # their strings are taken, as JSON and the flags give them
    assert cfg.optimizer is Optimizer.MOMENTUM and cfg.schedule is Schedule.COSINE
    assert cfg == TrainConfig(Optimizer.MOMENTUM, schedule=Schedule.COSINE)
    train_json = json.loads(RunConfig(train=cfg).to_json())["train"]
    assert (train_json["optimizer"], train_json["schedule"]) == ("momentum", "cosine")
    assert '"optimizer": "momentum"' in RunConfig(train=cfg).to_json()
    assert type(RunConfig.from_json(RunConfig(train=cfg).to_json()).train.optimizer) is Optimizer


@pytest.mark.parametrize("status, diverged_at, text", [
    (RunStatus.COMPILING, None, "compiling"), (RunStatus.RUNNING, None, "running"),
    (RunStatus.STOPPED, None, "stopped"), (RunStatus.FINISHED, None, "finished"),
    (RunStatus.DIVERGED, 12, "diverged at step 12"), (RunStatus.LOADED, None, "loaded from file"),
])
def test_status_texts_are_todays_and_parse_back(status, diverged_at, text):
    assert status_text(status, diverged_at) == text
    assert parse_status(text) == (status, diverged_at)
    assert text.startswith(status.value)  # the run history filters by the value


@pytest.mark.parametrize("text", ["diverged", "diverged at step ", "diverged at step x", "done", "Finished"])
def test_other_status_texts_are_refused(text):
    with pytest.raises(ValueError):
        parse_status(text)


def test_batch_larger_than_training_set(splits):
    with pytest.raises(ConfigError, match="larger than the training set"):
        next(train(config(batch_size=5000), splits))


def test_run_config_json_round_trip():
    cfg = config(arch="mlp", schedule="exponential")
    assert RunConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ConfigError, match="Unknown train setting"):
        RunConfig.from_dict({"train": {"learnig_rate": 1}})
    with pytest.raises(ConfigError):
        RunConfig.from_json("{not json")
    assert dataclasses.replace(cfg.model, hidden=[5, 6]).hidden == (5, 6)

"""The network contract: a network registered from outside core trains, evaluates, saves, loads and is offered
by the CLI; dropout is seeded, off in evaluation and gradient checks; and every network works on data other than
MNIST (other image sizes, other class counts)."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core.cli import build_parser, main
from core.commands.train import ignored_flag_notes, run_config_from_args
from core.data.formats import Dataset
from core.data.spec import MNIST_SPEC, DataSpec
from core.data.splits import SplitConfig, make_splits
from core.errors import ConfigError, DataError, ModelFileError
from core.experiments.sweep import SweepConfig, train_sweep
from core.lab.backprop import hand_networks
from core.lab.gradient_check import gradient_check, hand_vs_autodiff
from core.networks.base import (
    NETWORKS,
    Init,
    Intermediates,
    Model,
    ModelConfig,
    Network,
    Params,
    WeightImages,
    dense,
    dropout,
    pixel_images,
    register,
    seed_key,
)
from core.store.checkpoint import load_model, save_model
from core.store.history import RunHistory
from core.summaries import learned_next_to_nothing
from core.training.config import RunConfig, TrainConfig
from core.training.evaluation import evaluate
from core.training.loop import check_run, train
from core.training.runs import Run
from core.training.status import RunStatus


def trained_run(config: RunConfig, splits, name: str = "run") -> Run:
    run = Run(name, config, splits.spec)
    for progress in train(config, splits):
        run.record(progress)
    run.finish(splits)
    return run


def same_params(a: Params, b: Params) -> None:
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(x, y)


# ------------------------------------------------------------------------------------------------ a fourth network

WIDTH = 16


class ToyNet(Network):
    """Pixels → 16 ReLU units → classes: a network the core knows nothing about, defined and registered here."""

    name = "toy"
    title = "Toy ReLU net"
    description = "Two dense layers: a fixed 16-unit ReLU layer, then the classes."

    def weight_shapes(self, config: ModelConfig, spec: DataSpec) -> dict[str, tuple[int, ...]]:
        return {"hidden": (spec.num_pixels, WIDTH), "output": (WIDTH, spec.num_classes)}

    def forward(self, params: Params, x: jax.Array, config: ModelConfig, spec: DataSpec, *, train: bool = False,
                key: jax.Array | None = None) -> Intermediates:
        pre = dense(params["hidden"], x)
        hidden = jax.nn.relu(pre)
        return {"hidden/pre": pre, "hidden": hidden, "logits": dense(params["output"], hidden)}

    def recommended_init(self, config: ModelConfig) -> Init:
        return Init.HE

    def describe(self, config: ModelConfig, spec: DataSpec) -> str:
        return f"toy {spec.num_pixels}-{WIDTH}-{spec.num_classes}"

    def weight_images(self, params: Params, config: ModelConfig, spec: DataSpec) -> WeightImages:
        images = pixel_images(params["hidden"]["w"], spec)
        return WeightImages("hidden", images, [f"unit {u}" for u in range(WIDTH)], "The toy's hidden units.",
                            params["output"]["w"])

    def samples_per_second(self, config: ModelConfig, spec: DataSpec) -> float:
        return 1e6 * MNIST_SPEC.num_pixels / spec.num_pixels


@pytest.fixture
def toy():
    """The toy network, registered for one test and unregistered after it, so no other test sees it."""
    assert ToyNet.name not in NETWORKS
    register(ToyNet())
    try:
        yield NETWORKS[ToyNet.name]
    finally:
        NETWORKS.pop(ToyNet.name)


def test_a_network_registered_from_outside_trains_evaluates_saves_and_loads(toy, tiny_mnist, tmp_path):
    config = RunConfig(ModelConfig("toy", hidden=(99,), activation="sigmoid", init="he", dropout=(0.5,)),
                       SplitConfig(val_size=200), TrainConfig(learning_rate=3e-3, batch_size=32, epochs=2))
    assert config.model.hidden == () and config.model.activation == "" and config.model.dropout == ()  # unused
    splits = make_splits(tiny_mnist, config.data)
    check_run(config, tiny_mnist.train_labels, splits.spec)
    run = trained_run(config, splits, "toy")
    assert run.status is RunStatus.FINISHED and run.model.network is toy
    assert run.summary()["architecture"] == "toy 784-16-10"
    assert {name: layer["w"].shape for name, layer in run.params.items()} == {"hidden": (784, 16), "output": (16, 10)}
    assert run.history[-1]["train_loss"] < run.history[0]["train_loss"]
    assert run.val_accuracy > 0.8 and run.test_accuracy > 0.8  # the synthetic digits are easy
    assert run.test_confusion.shape == (10, 10) and run.test_confusion.sum() == len(splits.y_test)

    forward = run.model.forward(run.params, splits.x_test[:5])
    assert list(forward) == ["hidden/pre", "hidden", "logits", "probabilities"]
    assert forward["hidden"].shape == (5, 16) and forward["probabilities"].shape == (5, 10)
    images = run.model.weight_images(run.params)
    assert images.images.shape == (16, 28, 28) and images.outputs.shape == (16, 10)

    path = save_model(tmp_path / "toy.npz", run.params, config, splits.spec)
    params, loaded_config, spec = load_model(path)
    assert (loaded_config, spec) == (config, MNIST_SPEC)
    same_params(params, run.params)
    np.testing.assert_array_equal(Model(loaded_config.model, spec).apply(params, splits.x_test),
                                  run.model.apply(run.params, splits.x_test))

    RunHistory().save(run)  # the run history takes it, as any run
    loaded = RunHistory().load(run.run_id)
    assert loaded.model.network is toy and loaded.test_accuracy == run.test_accuracy
    assert [row.architecture for row in RunHistory().list(arch="toy")] == ["toy 784-16-10"]
    assert "toy" not in hand_networks()  # the hand-derived gradients do not claim to cover it


def test_a_registered_network_is_among_the_cli_choices(toy, tiny_data_dir, tmp_path, capsys):
    args = build_parser().parse_args(["train", "--arch", "toy", "--hidden", "32"])
    config = run_config_from_args(args)
    assert config.model.arch == "toy" and config.model.init == Init.HE  # the network's recommended initialisation
    assert ignored_flag_notes(args) == [
        "note: --hidden has no effect with --arch toy; only --arch mlp uses it."]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    assert "toy" in capsys.readouterr().out

    model_file = tmp_path / "toy.npz"
    assert main(["train", "--arch", "toy", "--data-dir", str(tiny_data_dir), "--epochs", "1", "--val-size", "200",
                 "--batch-size", "32", "--save", str(model_file), "--no-history", "--json"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "finished" and result["config"]["model"]["arch"] == "toy"
    assert 0 <= result["test_accuracy"] <= 1 and "toy 784-16-10" in err
    params, config, spec = load_model(model_file)
    assert config.model.arch == "toy" and spec == MNIST_SPEC and params["hidden"]["w"].shape == (784, 16)


def test_the_toy_network_is_gone_once_its_test_ends():
    assert "toy" not in NETWORKS
    with pytest.raises(ConfigError, match="Unknown architecture 'toy'; choose one of linear, mlp, lenet5"):
        ModelConfig("toy")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--arch", "toy"])


def test_a_network_must_implement_the_interface_and_take_a_free_name(toy):
    class Unfinished(Network):  # no forward, no weight images, no speed
        name = "unfinished"
        title = description = "unfinished"

        def weight_shapes(self, config, spec):
            return {"output": (spec.num_pixels, spec.num_classes)}

    with pytest.raises(TypeError, match="abstract"):
        Unfinished()
    register(ToyNet())  # the same network again: no harm
    assert isinstance(NETWORKS["toy"], ToyNet)

    class Impostor(ToyNet):
        name = "mlp"

    with pytest.raises(ValueError, match="'mlp' is registered already"):
        register(Impostor())
    assert type(NETWORKS["mlp"]).__name__ == "MLP" and list(NETWORKS) == ["linear", "mlp", "lenet5", "toy"]


# ------------------------------------------------------------------------------------------------ dropout

DROPOUT = RunConfig(ModelConfig("mlp", (32,), "relu", "he", dropout=(0.5,)), SplitConfig(val_size=200),
                    TrainConfig(learning_rate=3e-3, batch_size=32, epochs=2, steps_per_chunk=7))


def without_dropout(config: RunConfig) -> RunConfig:
    return dataclasses.replace(config, model=dataclasses.replace(config.model, dropout=()))


def with_train(config: RunConfig, **changes) -> RunConfig:
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **changes))


@pytest.fixture(scope="module")
def splits(tiny_mnist):
    return make_splits(tiny_mnist, DROPOUT.data)


def curves(config: RunConfig, splits) -> tuple[list[float], Params]:
    records = list(train(config, splits))
    assert records[-1].status is RunStatus.FINISHED
    return [r.train_loss for r in records] + [r.val_loss for r in records if r.val_loss is not None], records[-1].params


def test_dropout_is_seeded_the_same_seed_the_same_losses_bit_for_bit(splits):
    first, first_params = curves(DROPOUT, splits)
    second, second_params = curves(DROPOUT, splits)
    assert first == second
    same_params(first_params, second_params)
    other_seed, _ = curves(with_train(DROPOUT, seed=1), splits)
    assert other_seed != first
    same_order_other_masks, _ = curves(with_train(DROPOUT, seed=1, shuffle_seed=0), splits)
    assert same_order_other_masks != first and same_order_other_masks != other_seed
    plain, _ = curves(without_dropout(DROPOUT), splits)
    assert plain != first  # the masks change training...
    model, plain_model = Model(DROPOUT.model, splits.spec), Model(without_dropout(DROPOUT).model, splits.spec)
    same_params(model.init(seed_key(0)), plain_model.init(seed_key(0)))  # ...not the initial weights


@pytest.mark.parametrize("vmapped", [True, False])
def test_a_sweep_draws_each_variants_dropout_masks_as_its_run_alone_would(splits, vmapped):
    variants = SweepConfig(with_train(DROPOUT, epochs=1), learning_rates=(3e-3, 1e-2), seeds=(0, 1)).variants()
    swept = list(train_sweep(variants, splits, vmapped=vmapped))
    assert all(p.status is RunStatus.FINISHED for p in swept[-1])
    for i, variant in enumerate(variants):
        alone = [p.train_loss for p in train(variant, splits)]
        np.testing.assert_allclose([records[i].train_loss for records in swept], alone, rtol=1e-4)
    plain = SweepConfig(without_dropout(with_train(DROPOUT, epochs=1)), learning_rates=(3e-3, 1e-2), seeds=(0, 1))
    assert [p.train_loss for p in list(train_sweep(plain.variants(), splits, vmapped=vmapped))[-1]] != \
        [p.train_loss for p in swept[-1]]


def test_a_dropout_rate_of_zero_is_no_dropout():
    assert ModelConfig("mlp", (32,), dropout=(0.0,)) == ModelConfig("mlp", (32,))
    assert ModelConfig("mlp", (32, 16), dropout=(0, 0.0)).dropout == ()
    assert ModelConfig("lenet5", dropout=(0.0,)) == ModelConfig("lenet5")
    zero = RunConfig(ModelConfig("mlp", (32,), "relu", "he", dropout=(0.0,)), DROPOUT.data, DROPOUT.train)
    assert zero == without_dropout(DROPOUT) and zero.to_json() == without_dropout(DROPOUT).to_json()
    assert Model(zero.model, MNIST_SPEC).describe() == "784-32-10 relu"
    assert ModelConfig("mlp", (32, 16), dropout=(0.0, 0.5)).dropout == (0.0, 0.5)  # one layer without, one with


def test_dropout_is_off_in_evaluation(splits):
    run = trained_run(DROPOUT, splits, "dropout")
    model, plain = run.model, Model(without_dropout(DROPOUT).model, splits.spec)
    x = splits.x_test
    logits = model.apply(run.params, x)
    np.testing.assert_array_equal(logits, plain.apply(run.params, x))
    np.testing.assert_array_equal(model.apply(run.params, x, train=False, key=jax.random.key(3)), logits)
    for name, value in model.forward(run.params, x).items():
        np.testing.assert_array_equal(value, plain.forward(run.params, x)[name], err_msg=name)
    ev, plain_ev = evaluate(run.params, model, x, splits.y_test), evaluate(run.params, plain, x, splits.y_test)
    np.testing.assert_array_equal(ev.probabilities, plain_ev.probabilities)
    assert run.test_accuracy == plain_ev.accuracy and (run.test_confusion == plain_ev.confusion).all()
    # in training, the masks follow the key: the same key the same logits, another key others
    key = jax.random.key(7)
    trained_logits = model.apply(run.params, x, train=True, key=key)
    np.testing.assert_array_equal(trained_logits, model.apply(run.params, x, train=True, key=key))
    assert not np.array_equal(trained_logits, logits)
    assert not np.array_equal(trained_logits, model.apply(run.params, x, train=True, key=jax.random.key(8)))
    np.testing.assert_array_equal(plain.apply(run.params, x, train=True, key=key), logits)  # no dropout: no masks
    with pytest.raises(ValueError, match="random key"):
        model.apply(run.params, x, train=True)


def test_inverted_dropout_zeroes_the_rate_and_scales_the_rest():
    x = jnp.ones((200, 500))
    dropped = np.asarray(dropout(x, 0.3, jax.random.key(0)))
    assert set(np.unique(dropped)) == {0.0, np.float32(1 / 0.7)}
    assert (dropped == 0).mean() == pytest.approx(0.3, abs=0.01) and dropped.mean() == pytest.approx(1.0, abs=0.02)


def test_gradient_checks_see_no_dropout(splits):
    batch = splits.x_train[:40], splits.y_train[:40]
    model = Model(ModelConfig("mlp", (12,), "tanh", dropout=(0.5,)), splits.spec)
    plain = Model(ModelConfig("mlp", (12,), "tanh"), splits.spec)
    params = model.init(seed_key(0))
    assert max(hand_vs_autodiff(params, *batch, model).values()) < 1e-10
    check = gradient_check(params, *batch, model, weights=200, dtypes=("float64",), step_sizes=(1e-6,))
    plain_check = gradient_check(params, *batch, plain, weights=200, dtypes=("float64",), step_sizes=(1e-6,))
    assert check.passed and check.model == model
    np.testing.assert_array_equal(check.analytic, plain_check.analytic)
    np.testing.assert_array_equal(check.approx["float64"], plain_check.approx["float64"])


def test_lenet5_takes_one_dropout_rate_or_two_and_linear_none():
    assert ModelConfig("lenet5", dropout=(0.3,)).dropout == (0.3, 0.3)  # one rate for both dense layers
    assert ModelConfig("lenet5", dropout=(0.2, 0.4)).dropout == (0.2, 0.4)
    with pytest.raises(ConfigError, match="one for each of the 2 dropout layers of LeNet-5, not 3"):
        ModelConfig("lenet5", dropout=(0.1, 0.2, 0.3))
    assert Model(ModelConfig("lenet5", dropout=(0.2, 0.4)), MNIST_SPEC).describe() == "LeNet-5 dropout 0.2/0.4"
    assert ModelConfig("mlp", (30, 20, 10), dropout=(0.25,)).dropout == (0.25,) * 3
    assert Model(ModelConfig("mlp", (30, 20), dropout=(0.1, 0.2)), MNIST_SPEC).describe() == \
        "784-30-20-10 tanh dropout 0.1/0.2"
    linear = ModelConfig("linear", dropout=(0.5,))
    assert linear.dropout == () and linear == ModelConfig("linear")  # stored as (): softmax regression has none
    assert ModelConfig("linear", dropout=(0.1, 0.2, 0.3)).dropout == ()  # not its setting, so not checked


def test_lenet5_dropout_is_in_its_dense_layers_only(splits):
    model = Model(ModelConfig("lenet5", dropout=(0.5,)), splits.spec)
    params = model.init(seed_key(0))
    x = splits.x_test[:8]
    plain, dropped = model.forward(params, x), model.forward(params, x, train=True, key=jax.random.key(1))
    for name in ("conv1", "pool1", "conv2", "pool2", "fc1/pre", "fc1"):  # before the first dropout layer
        np.testing.assert_allclose(dropped[name], plain[name], rtol=1e-6, atol=1e-6, err_msg=name)
    assert not np.allclose(dropped["fc2/pre"], plain["fc2/pre"])  # fc1's output was dropped before fc2


def test_the_dropout_flag(capsys):
    parser = build_parser()
    lenet = run_config_from_args(parser.parse_args(["train", "--arch", "lenet5", "--dropout", "0.2,0.3"]))
    assert lenet.model.dropout == (0.2, 0.3)
    repeated = run_config_from_args(parser.parse_args(["train", "--hidden", "30,20", "--dropout", "0.1", "--dropout",
                                                       "0.2"]))
    assert repeated.model.dropout == (0.1, 0.2)
    args = parser.parse_args(["train", "--arch", "linear", "--dropout", "0.5"])
    assert run_config_from_args(args).model.dropout == ()
    assert ignored_flag_notes(args) == [
        "note: --dropout has no effect with --arch linear; only --arch mlp or --arch lenet5 uses it."]
    with pytest.raises(ConfigError, match="one for each of the 2 dropout layers of LeNet-5, not 3"):
        run_config_from_args(parser.parse_args(["train", "--arch", "lenet5", "--dropout", "0.1,0.2,0.3"]))


# ------------------------------------------------------------------------------------------------ other data

SHAPES = DataSpec("shapes", 16, 16, 1, ("circle", "square", "cross", "ring"), "shape")
LETTERS = DataSpec("letters", 32, 32, 1, tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), "letter")


def synthetic(spec: DataSpec, n_train: int = 400, n_test: int = 100, seed: int = 0) -> Dataset:
    """Learnable fake images of `spec`'s size and classes: each class a fixed random template plus noise."""
    rng = np.random.default_rng(seed)
    templates = rng.random((spec.num_classes, spec.height, spec.width)) < 0.3

    def draw(n):
        labels = np.arange(n) % spec.num_classes
        rng.shuffle(labels)
        noise = rng.random((n, spec.height, spec.width)) < 0.05
        return np.where(templates[labels] ^ noise, 255, 0).astype(np.uint8), labels.astype(np.uint8)

    return Dataset(*draw(n_train), *draw(n_test), source=f"synthetic {spec.name}", spec=spec)


@pytest.fixture(scope="module", params=[SHAPES, LETTERS], ids=lambda spec: spec.name)
def other_data(request):
    spec = request.param
    dataset = synthetic(spec)
    return dataset, make_splits(dataset, SplitConfig(val_size=2 * spec.num_classes))


ARCHS = {"linear": ModelConfig("linear"), "mlp": ModelConfig("mlp", (24,), "relu", "he"),
         "lenet5": ModelConfig("lenet5", init="he")}


def expected_forward_shapes(arch: str, spec: DataSpec, n: int) -> dict[str, tuple[int, ...]]:
    classes = {"logits": (n, spec.num_classes), "probabilities": (n, spec.num_classes)}
    if arch == "linear":
        return classes
    if arch == "mlp":
        return {"hidden_0/pre": (n, 24), "hidden_0": (n, 24), **classes}
    h1, w1 = spec.height - 4, spec.width - 4  # valid 5×5 convolutions, 2×2 pooling
    h2, w2 = h1 // 2 - 4, w1 // 2 - 4
    return {"conv1": (n, h1, w1, 6), "pool1": (n, h1 // 2, w1 // 2, 6), "conv2": (n, h2, w2, 16),
            "pool2": (n, h2 // 2, w2 // 2, 16), "fc1/pre": (n, 120), "fc1": (n, 120), "fc2/pre": (n, 84),
            "fc2": (n, 84), **classes}


@pytest.mark.parametrize("arch", list(ARCHS))
def test_every_network_trains_on_other_image_sizes_and_class_counts(other_data, arch, tmp_path):
    dataset, splits = other_data
    spec = dataset.spec
    assert splits.spec == spec and splits.x_train.shape[1] == spec.num_pixels
    config = RunConfig(ARCHS[arch], SplitConfig(val_size=2 * spec.num_classes),
                       TrainConfig(learning_rate=3e-3, batch_size=20, epochs=1))
    check_run(config, dataset.train_labels, spec)
    run = trained_run(config, splits, arch)
    assert run.status is RunStatus.FINISHED and run.epochs_completed == 1
    assert run.test_confusion.shape == (spec.num_classes, spec.num_classes)
    assert run.test_confusion.sum() == len(splits.y_test) == 100
    assert run.val_accuracy is not None and not learned_next_to_nothing(run.test_accuracy, spec.num_classes)
    if arch != "lenet5":  # the templates are easy: one epoch learns them (LeNet-5, with 20 steps, only begins)
        assert run.test_accuracy > 0.9
    test = run.test_evaluation(splits)
    assert test.probabilities.shape == (100, spec.num_classes) and test.per_class_accuracy.shape == (spec.num_classes,)

    model = run.model
    assert {name: layer["w"].shape for name, layer in run.params.items()} == model.weight_shapes()
    forward = model.forward(run.params, splits.x_test[:3])
    assert {name: value.shape for name, value in forward.items()} == expected_forward_shapes(arch, spec, 3)
    assert list(forward) == list(expected_forward_shapes(arch, spec, 3))  # in the order computed
    images = model.weight_images(run.params)
    units = {"linear": spec.num_classes, "mlp": 24, "lenet5": 6}[arch]
    side = (5, 5) if arch == "lenet5" else (spec.height, spec.width)  # a filter, or the image its unit sees
    assert images.images.shape == (units, *side) and len(images.titles) == units
    if arch == "linear":
        assert images.titles == list(spec.class_labels)
    if arch == "mlp":
        assert images.outputs.shape == (24, spec.num_classes)
    if arch == "lenet5":
        assert set(model.network.feature_maps) <= set(forward)

    path = save_model(tmp_path / f"{arch}.npz", run.params, config, spec)
    params, loaded_config, loaded_spec = load_model(path)
    assert (loaded_config, loaded_spec) == (config, spec)
    same_params(params, run.params)
    np.testing.assert_array_equal(Model(loaded_config.model, loaded_spec).apply(params, splits.x_test),
                                  model.apply(run.params, splits.x_test))
    mnist_params = Model(config.model, MNIST_SPEC).init(seed_key(0))  # weights for other data than the file says
    with pytest.raises(ModelFileError, match="does not match its configuration"):
        load_model(save_model(tmp_path / "mnist.npz", mnist_params, config, spec))


def test_lenet5_refuses_images_too_small_for_its_layers():
    tiny = DataSpec("tiny", 12, 12, 1, ("a", "b"))
    labels = np.arange(40) % 2
    with pytest.raises(ConfigError, match="LeNet-5 needs images of at least 16×16 pixels; tiny's are 12×12"):
        check_run(RunConfig(ModelConfig("lenet5"), SplitConfig(val_size=4), TrainConfig(batch_size=4)), labels, tiny)
    check_run(RunConfig(ModelConfig("mlp", (8,)), SplitConfig(val_size=4), TrainConfig(batch_size=4)), labels, tiny)


def test_a_dataset_is_checked_against_its_description():
    images, labels = np.zeros((8, 16, 16), np.uint8), np.arange(8, dtype=np.uint8) % 4
    assert Dataset(images, labels, images, labels, source="ok", spec=SHAPES).spec == SHAPES
    channels = Dataset(images[..., None], labels, images[..., None], labels, source="with a channel axis", spec=SHAPES)
    assert make_splits(channels, SplitConfig(val_size=4)).x_train.shape == (4, 256)
    with pytest.raises(DataError, match="expected 32×32×1 for letters"):
        Dataset(images, labels, images, labels, source="wrong size", spec=LETTERS)
    with pytest.raises(DataError, match="label 4 is out of range 0..3"):
        Dataset(images, labels + 1, images, labels, source="a fifth class", spec=SHAPES)
    small_letters = DataSpec("small letters", 16, 16, 1, LETTERS.class_names, "letter")
    assert Dataset(images, labels + 1, images, labels, source="26 classes", spec=small_letters).spec.num_classes == 26

"""Network shapes, initialisation, the layer-by-layer forward pass and the fast convolution."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core.data.spec import MNIST_SPEC
from core.errors import ConfigError
from core.networks import lenet5
from core.networks.base import (
    MAX_HIDDEN_WIDTH,
    NETWORKS,
    Activation,
    Init,
    Model,
    ModelConfig,
    count_parameters,
    seed_key,
)


def mnist(config: ModelConfig) -> Model:
    return Model(config, MNIST_SPEC)


@pytest.mark.parametrize("config, count", [
    (ModelConfig("linear"), 7850),
    (ModelConfig("mlp", (300,), "tanh"), 784 * 300 + 300 + 3010),
    (ModelConfig("mlp", (64, 32, 16), "relu"), 784 * 64 + 64 + 64 * 32 + 32 + 32 * 16 + 16 + 170),
    (ModelConfig("lenet5"), 156 + 2416 + 30840 + 10164 + 850),
])
def test_shapes_and_parameter_counts(config, count):
    model = mnist(config)
    params = model.init(seed_key(0))
    assert count_parameters(params) == count
    assert {name: layer["w"].shape for name, layer in params.items()} == model.weight_shapes()
    logits = model.apply(params, jnp.zeros((7, 784)))
    assert logits.shape == (7, 10)
    assert all(np.all(layer["b"] == 0) for layer in params.values())


def test_mlp_forward_names_every_intermediate_in_order():
    model = mnist(ModelConfig("mlp", (20, 12), "sigmoid"))
    params = model.init(seed_key(0))
    x = jax.random.uniform(jax.random.PRNGKey(2), (3, 784))
    out = model.forward(params, x)
    assert list(out) == ["hidden_0/pre", "hidden_0", "hidden_1/pre", "hidden_1", "logits", "probabilities"]
    assert [out[name].shape for name in out] == [(3, 20), (3, 20), (3, 12), (3, 12), (3, 10), (3, 10)]
    np.testing.assert_allclose(out["hidden_0/pre"], x @ params["hidden_0"]["w"] + params["hidden_0"]["b"],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["hidden_0"], jax.nn.sigmoid(out["hidden_0/pre"]), rtol=1e-6)
    np.testing.assert_allclose(out["logits"], model.apply(params, x), rtol=1e-6)
    np.testing.assert_allclose(out["probabilities"], jax.nn.softmax(out["logits"]), rtol=1e-6)
    np.testing.assert_allclose(out["probabilities"].sum(-1), 1.0, rtol=1e-5)


def test_lenet5_layout_and_feature_maps():
    model = mnist(ModelConfig("lenet5"))
    params = model.init(seed_key(0))
    assert params["conv1"]["w"].shape == (5, 5, 1, 6) and params["conv2"]["w"].shape == (5, 5, 6, 16)
    assert params["fc1"]["w"].shape == (256, 120)
    x = jax.random.uniform(jax.random.PRNGKey(2), (3, 784))
    maps = model.forward(params, x)
    assert list(maps) == ["conv1", "pool1", "conv2", "pool2", "fc1/pre", "fc1", "fc2/pre", "fc2", "logits",
                          "probabilities"]
    assert maps["conv1"].shape == (3, 24, 24, 6) and maps["conv2"].shape == (3, 8, 8, 16)
    assert maps["pool1"].shape == (3, 12, 12, 6) and maps["pool2"].shape == (3, 4, 4, 16)
    assert maps["fc1"].shape == (3, 120) and maps["fc2"].shape == (3, 84)
    conv1 = jax.lax.conv_general_dilated(x.reshape(3, 28, 28, 1), params["conv1"]["w"], (1, 1), "VALID",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC")) + params["conv1"]["b"]
    np.testing.assert_allclose(maps["conv1"], jax.nn.relu(conv1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(maps["logits"], model.apply(params, x), rtol=1e-5, atol=1e-5)
    assert model.network.feature_maps == ("conv1", "conv2")


def test_lenet5_logits_match_a_reference_built_from_lax_conv_and_reduce_window():
    """The whole network, conv → ReLU → max-pool 2 twice then three dense layers, against XLA's own operations."""
    model = mnist(ModelConfig("lenet5"))
    params = model.init(seed_key(3))
    params = jax.tree_util.tree_map(lambda a: a + 0.05, params)  # non-zero biases too
    x = jax.random.uniform(jax.random.PRNGKey(4), (5, 784))

    def conv_relu_pool(h, layer):
        h = jax.lax.conv_general_dilated(h, layer["w"], (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        h = jax.nn.relu(h + layer["b"])
        return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

    h = conv_relu_pool(conv_relu_pool(x.reshape(5, 28, 28, 1), params["conv1"]), params["conv2"]).reshape(5, 256)
    for layer in ("fc1", "fc2"):
        h = jax.nn.relu(h @ params[layer]["w"] + params[layer]["b"])
    reference = h @ params["output"]["w"] + params["output"]["b"]
    np.testing.assert_allclose(model.apply(params, x), reference, rtol=1e-4, atol=1e-4)


def test_banded_convolution_matches_lax_conv():
    key1, key2, key3 = jax.random.split(jax.random.PRNGKey(1), 3)
    for shape, kernel_shape in (((4, 28, 28, 1), (5, 5, 1, 6)), ((4, 12, 12, 6), (5, 5, 6, 16))):
        x = jax.random.normal(key1, shape)
        layer = {"w": jax.random.normal(key2, kernel_shape), "b": jax.random.normal(key3, kernel_shape[-1:])}
        reference = jax.lax.conv_general_dilated(x, layer["w"], (1, 1), "VALID",
                                                 dimension_numbers=("NHWC", "HWIO", "NHWC")) + layer["b"]
        np.testing.assert_allclose(lenet5._conv_valid(x, layer), reference, rtol=1e-5, atol=1e-4)


def test_init_scales():
    w = mnist(ModelConfig("mlp", (500,), init="normal", init_std=0.1)).init(seed_key(0))["hidden_0"]["w"]
    assert abs(float(w.std()) - 0.1) < 0.003
    he = mnist(ModelConfig("mlp", (500,), init="he")).init(seed_key(0))["hidden_0"]["w"]
    assert abs(float(he.std()) - np.sqrt(2 / 784)) < 0.002
    glorot = mnist(ModelConfig("mlp", (500,), init="glorot")).init(seed_key(0))["hidden_0"]["w"]
    assert abs(float(glorot.std()) - np.sqrt(2 / 1284)) < 0.002


@pytest.mark.parametrize("init, std", [
    ("he", lambda fan_in, fan_out: np.sqrt(2 / fan_in)),
    ("glorot", lambda fan_in, fan_out: np.sqrt(2 / (fan_in + fan_out))),
])
def test_convolution_init_counts_the_kernel_area_in_its_fans(init, std):
    params = mnist(ModelConfig("lenet5", init=init)).init(seed_key(0))
    for layer, fan_in, fan_out in (("conv1", 25 * 1, 25 * 6), ("conv2", 25 * 6, 25 * 16)):
        assert float(params[layer]["w"].std()) == pytest.approx(std(fan_in, fan_out), rel=0.1), layer


@pytest.mark.parametrize("kwargs, message", [
    ({"arch": "resnet"}, "Unknown architecture"),
    ({"arch": "mlp", "hidden": ()}, "at least one hidden layer"),
    ({"arch": "mlp", "activation": "gelu"}, "Unknown activation"),
    ({"init": "orthogonal"}, "Unknown initialisation"),
    ({"init": "normal", "init_std": 0}, "positive"),
    ({"init": "normal", "init_std": float("inf")}, r"positive finite number, got inf"),
    ({"init": "normal", "init_std": float("nan")}, r"positive finite number, got nan"),
    ({"init": "glorot", "init_std": -1.0}, r"positive finite number, got -1.0"),
    ({"arch": "mlp", "hidden": (300, 99999999999999999999)}, r"at most 16384 units, got 99999999999999999999"),
    ({"arch": "mlp", "hidden": (16385,)}, r"at most 16384 units"),
    ({"arch": "mlp", "hidden": (300.7,)}, r"whole numbers, got \(300.7,\)"),
    ({"arch": "mlp", "hidden": "300"}, r"whole numbers, got '300'"),
    ({"arch": "mlp", "hidden": 300}, r"lists, got 300"),
    ({"arch": "mlp", "dropout": 0.5}, r"lists, got .* and 0.5"),
    ({"arch": "mlp", "dropout": (1.0,)}, r"Dropout rates must be numbers from 0 up to \(not including\) 1"),
    ({"arch": "mlp", "dropout": (-0.1,)}, r"Dropout rates must be numbers"),
    ({"arch": "mlp", "dropout": ("0.5",)}, r"Dropout rates must be numbers"),
    ({"arch": "mlp", "hidden": (30, 20), "dropout": (0.1, 0.2, 0.3)},
     r"one for each of the 2 dropout layers of MLP, not 3"),
])
def test_bad_configs(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**kwargs)


def test_widest_allowed_hidden_layer_is_accepted():
    assert ModelConfig("mlp", (MAX_HIDDEN_WIDTH, 1)).hidden == (16384, 1)


def test_registry_lists_every_architecture():
    assert list(NETWORKS) == ["linear", "mlp", "lenet5"]  # the order the app and the CLI list them in
    for name, net in NETWORKS.items():
        assert net.name == name
        assert net.title and net.description
        assert set(net.hyperparameters) <= set(ModelConfig.__dataclass_fields__)


def test_fields_a_network_does_not_use_are_emptied():
    linear = ModelConfig("linear", (300,), "relu", dropout=(0.5,))
    assert (linear.hidden, linear.activation, linear.dropout) == ((), "", ())
    lenet = ModelConfig("lenet5", (300,), "tanh")
    assert (lenet.hidden, lenet.activation) == ((), "")
    mlp = ModelConfig("mlp", (30,), "relu", "he")
    assert mlp.activation is Activation.RELU and mlp.init is Init.HE


@pytest.mark.parametrize("config, name", [
    (ModelConfig("linear"), "Softmax regression"), (ModelConfig("mlp", (300,), "tanh"), "784-300-10 tanh"),
    (ModelConfig("mlp", (64, 32), "relu"), "784-64-32-10 relu"), (ModelConfig("lenet5"), "LeNet-5"),
])
def test_describe(config, name):
    assert mnist(config).describe() == name


@pytest.mark.parametrize("arch, activation, expected", [
    ("linear", "relu", "glorot"), ("mlp", "tanh", "glorot"), ("mlp", "sigmoid", "glorot"), ("mlp", "relu", "he"),
    ("lenet5", "tanh", "he")])
def test_recommended_init_follows_the_activation(arch, activation, expected):
    config = ModelConfig(arch, activation=activation)
    assert config.network.recommended_init(config) == expected


def test_models_are_hashable_and_programs_ignore_the_initialisation():
    a = mnist(ModelConfig("mlp", (64,), "relu", "he"))
    b = mnist(ModelConfig("mlp", (64,), "relu", "normal", 0.3))
    assert a != b and hash(a) == hash(mnist(ModelConfig("mlp", (64,), "relu", "he")))
    assert a.for_programs() == b.for_programs()
    assert a.for_programs() != mnist(ModelConfig("mlp", (65,), "relu")).for_programs()


@pytest.mark.parametrize("config, layer, units", [
    (ModelConfig("linear"), "output", 10), (ModelConfig("mlp", (16, 8)), "hidden_0", 16),
    (ModelConfig("lenet5"), "conv1", 6),
])
def test_weight_images_are_one_image_per_unit(config, layer, units):
    model = mnist(config)
    params = model.init(seed_key(0))
    images = model.weight_images(params)
    side = 5 if config.arch == "lenet5" else 28
    assert images.layer == layer and images.images.shape == (units, side, side) and len(images.titles) == units
    if config.arch == "linear":
        assert images.titles == [f"digit {d}" for d in range(10)]
        np.testing.assert_array_equal(images.images[3], params["output"]["w"][:, 3].reshape(28, 28))
    if config.arch == "lenet5":
        np.testing.assert_array_equal(images.images[2], params["conv1"]["w"][:, :, 0, 2])

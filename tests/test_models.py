"""Network shapes, initialisation and the fast convolution."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core import models
from core.errors import ConfigError


@pytest.mark.parametrize("config, count", [
    (models.ModelConfig("linear"), 7850),
    (models.ModelConfig("mlp", (300,), "tanh"), 784 * 300 + 300 + 3010),
    (models.ModelConfig("mlp", (64, 32, 16), "relu"), 784 * 64 + 64 + 64 * 32 + 32 + 32 * 16 + 16 + 170),
    (models.ModelConfig("lenet5"), 156 + 2416 + 30840 + 10164 + 850),
])
def test_shapes_and_parameter_counts(config, count):
    params = models.init(models.seed_key(0), config)
    assert models.count_parameters(params) == count
    logits = models.apply(params, jnp.zeros((7, 784)), config)
    assert logits.shape == (7, 10)
    assert all(np.all(layer["b"] == 0) for layer in params.values())


def test_lenet5_layout_and_feature_maps():
    params = models.init(models.seed_key(0), models.ModelConfig("lenet5"))
    assert params["conv1"]["w"].shape == (5, 5, 1, 6) and params["conv2"]["w"].shape == (5, 5, 6, 16)
    assert params["fc1"]["w"].shape == (256, 120)
    x = jax.random.uniform(jax.random.PRNGKey(2), (3, 784))
    maps = models.lenet5_feature_maps(params, x)
    assert maps["conv1"].shape == (3, 24, 24, 6) and maps["conv2"].shape == (3, 8, 8, 16)
    conv1 = jax.lax.conv_general_dilated(x.reshape(3, 28, 28, 1), params["conv1"]["w"], (1, 1), "VALID",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC")) + params["conv1"]["b"]
    np.testing.assert_allclose(maps["conv1"], jax.nn.relu(conv1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(maps["logits"], models.apply(params, x, models.ModelConfig("lenet5")), rtol=1e-5, atol=1e-5)


def test_lenet5_logits_match_a_reference_built_from_lax_conv_and_reduce_window():
    """The whole network, conv → ReLU → max-pool 2 twice then three dense layers, against XLA's own operations."""
    params = models.init(models.seed_key(3), models.ModelConfig("lenet5"))
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
    np.testing.assert_allclose(models.apply(params, x, models.ModelConfig("lenet5")), reference, rtol=1e-4, atol=1e-4)


def test_banded_convolution_matches_lax_conv():
    key1, key2, key3 = jax.random.split(jax.random.PRNGKey(1), 3)
    for shape, kernel_shape in (((4, 28, 28, 1), (5, 5, 1, 6)), ((4, 12, 12, 6), (5, 5, 6, 16))):
        x = jax.random.normal(key1, shape)
        layer = {"w": jax.random.normal(key2, kernel_shape), "b": jax.random.normal(key3, kernel_shape[-1:])}
        reference = jax.lax.conv_general_dilated(x, layer["w"], (1, 1), "VALID",
                                                 dimension_numbers=("NHWC", "HWIO", "NHWC")) + layer["b"]
        np.testing.assert_allclose(models._conv_valid(x, layer), reference, rtol=1e-5, atol=1e-4)


def test_init_scales():
    big = models.ModelConfig("mlp", (500,), init="normal", init_std=0.1)
    w = models.init(models.seed_key(0), big)["hidden_0"]["w"]
    assert abs(float(w.std()) - 0.1) < 0.003
    he = models.init(models.seed_key(0), models.ModelConfig("mlp", (500,), init="he"))["hidden_0"]["w"]
    assert abs(float(he.std()) - np.sqrt(2 / 784)) < 0.002
    glorot = models.init(models.seed_key(0), models.ModelConfig("mlp", (500,), init="glorot"))["hidden_0"]["w"]
    assert abs(float(glorot.std()) - np.sqrt(2 / 1284)) < 0.002


@pytest.mark.parametrize("init, std", [
    ("he", lambda fan_in, fan_out: np.sqrt(2 / fan_in)), ("glorot", lambda fan_in, fan_out: np.sqrt(2 / (fan_in + fan_out))),
])
def test_convolution_init_counts_the_kernel_area_in_its_fans(init, std):
    params = models.init(models.seed_key(0), models.ModelConfig("lenet5", init=init))
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
    ({"arch": "mlp", "hidden": 300}, r"whole numbers, got 300"),
])
def test_bad_configs(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        models.ModelConfig(**kwargs)


def test_widest_allowed_hidden_layer_is_accepted():
    assert models.ModelConfig("mlp", (models.MAX_HIDDEN_WIDTH, 1)).hidden == (16384, 1)


def test_registry_lists_every_architecture():
    assert set(models.ARCHITECTURES) == {"linear", "mlp", "lenet5"}
    for arch in models.ARCHITECTURES.values():
        assert arch.title and arch.description
        assert set(arch.hyperparameters) <= {f for f in models.ModelConfig.__dataclass_fields__}


@pytest.mark.parametrize("arch, activation, expected", [
    ("linear", "relu", "glorot"), ("mlp", "tanh", "glorot"), ("mlp", "sigmoid", "glorot"), ("mlp", "relu", "he"),
    ("lenet5", "tanh", "he")])
def test_recommended_init_follows_the_activation(arch, activation, expected):
    assert models.recommended_init(arch, activation) == expected

"""The networks: pure functions over parameter pytrees.

`init(key, config) -> params` and `apply(params, x, config) -> logits`, where x is (batch, 784) in [0, 1].
Parameters are nested dicts of arrays: {"hidden_0": {"w", "b"}, ..., "output": {"w", "b"}}; LeNet-5 has
"conv1", "conv2" (kernels HWIO, 5×5×in×out), "fc1", "fc2", "output".
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp

from core.errors import ConfigError
from core.parsing import whole

Params = dict
NUM_INPUTS = 784
NUM_OUTPUTS = 10
ACTIVATIONS = {"tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu}
INITS = ("normal", "glorot", "he")
MAX_HIDDEN_WIDTH = 16384  # units per hidden layer: a 784-16384-10 MLP already has 13M weights


def recommended_init(arch: str, activation: str) -> str:
    """He for ReLU networks (ReLU MLPs, LeNet-5), Glorot for softmax regression and tanh/sigmoid MLPs."""
    relu = arch == "lenet5" or (arch == "mlp" and activation == "relu")
    return "he" if relu else "glorot"


@dataclass(frozen=True)
class ModelConfig:
    """Which network, and its shape. Fields an architecture does not use are ignored by it."""

    arch: str = "mlp"  # linear | mlp | lenet5
    hidden: tuple[int, ...] = (300,)  # mlp: width of each hidden layer
    activation: str = "tanh"  # mlp: tanh | sigmoid | relu
    init: str = "glorot"  # normal | glorot | he
    init_std: float = 0.1  # standard deviation for init="normal"

    def __post_init__(self):
        try:
            hidden = tuple(self.hidden)
        except TypeError:
            hidden = None
        if hidden is None or not all(whole(h, -math.inf) for h in hidden):
            raise ConfigError(f"Hidden widths must be whole numbers, got {self.hidden!r}.")
        object.__setattr__(self, "hidden", tuple(int(h) for h in hidden))
        if self.arch not in ARCHITECTURES:
            raise ConfigError(f"Unknown architecture '{self.arch}'; choose one of {', '.join(ARCHITECTURES)}.")
        if self.arch != "mlp":  # an MLP's own fields, emptied: a saved config says what the network has
            object.__setattr__(self, "hidden", ())
            object.__setattr__(self, "activation", "")
        if self.arch == "mlp":
            if not self.hidden or min(self.hidden) < 1:
                raise ConfigError("An MLP needs at least one hidden layer, each of width 1 or more.")
            if max(self.hidden) > MAX_HIDDEN_WIDTH:
                raise ConfigError(f"A hidden layer can have at most {MAX_HIDDEN_WIDTH} units, got {max(self.hidden)}.")
            if self.activation not in ACTIVATIONS:
                raise ConfigError(f"Unknown activation '{self.activation}'; choose one of {', '.join(ACTIVATIONS)}.")
        if self.init not in INITS:
            raise ConfigError(f"Unknown initialisation '{self.init}'; choose one of {', '.join(INITS)}.")
        if not (isinstance(self.init_std, numbers.Real) and math.isfinite(self.init_std) and self.init_std > 0):
            raise ConfigError(f"The init standard deviation must be a positive finite number, got {self.init_std}.")

    def describe(self) -> str:
        """A short name such as '784-300-10 tanh'."""
        if self.arch == "mlp":
            return "-".join(map(str, (NUM_INPUTS, *self.hidden, NUM_OUTPUTS))) + f" {self.activation}"
        return ARCHITECTURES[self.arch].title


@dataclass(frozen=True)
class Architecture:
    """One entry of the registry the UI and CLI are built from."""

    name: str
    title: str
    description: str
    hyperparameters: tuple[str, ...] = field(default=())  # the ModelConfig fields it uses besides init


ARCHITECTURES = {
    "linear": Architecture(
        "linear", "Softmax regression", "784→10: one weight per pixel per digit plus a bias; the softmax of the "
        "ten scores is the predicted distribution."),
    "mlp": Architecture(
        "mlp", "MLP", "Fully connected hidden layers of any depth and width with tanh, sigmoid or ReLU, then a "
        "softmax output layer.", ("hidden", "activation")),
    "lenet5": Architecture(
        "lenet5", "LeNet-5", "conv 6@5×5 → ReLU → max-pool 2 → conv 16@5×5 → ReLU → max-pool 2 → dense 120 → "
        "ReLU → dense 84 → ReLU → dense 10."),
}


# ---------------------------------------------------------------------------------------------- init


def layer_sizes(config: ModelConfig) -> tuple[int, ...]:
    """Widths of the dense layers from input to output (784, ..., 10); LeNet-5's dense part starts at 256."""
    return {
        "linear": (NUM_INPUTS, NUM_OUTPUTS),
        "mlp": (NUM_INPUTS, *config.hidden, NUM_OUTPUTS),
        "lenet5": (256, 120, 84, NUM_OUTPUTS),
    }[config.arch]


def seed_key(seed: int) -> jax.Array:
    """The random key a run's weights are drawn from. XLA's RngBitGenerator ("rbg") rather than the default
    threefry, whose sampling compiled about three times slower here (0.7 s against 2 s for a per-layer `init`),
    which each new network shape waits for."""
    return jax.random.key(seed, impl="rbg")


def weight_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Each layer's weight shape: (in, out) for dense layers, (5, 5, in, out) for LeNet-5's convolutions."""
    sizes = layer_sizes(config)
    dense = list(zip(sizes[:-1], sizes[1:]))
    if config.arch == "lenet5":
        return {"conv1": (5, 5, 1, 6), "conv2": (5, 5, 6, 16), **dict(zip(["fc1", "fc2", "output"], dense))}
    return {**{f"hidden_{i}": shape for i, shape in enumerate(dense[:-1])}, "output": dense[-1]}


def _init_std(shape: tuple[int, ...], config: ModelConfig) -> float:
    receptive = math.prod(shape[:-2])  # 25 for a 5×5 kernel, 1 for a dense layer
    fan_in, fan_out = receptive * shape[-2], receptive * shape[-1]
    return {
        "normal": config.init_std,
        "glorot": math.sqrt(2.0 / (fan_in + fan_out)),
        "he": math.sqrt(2.0 / fan_in),
    }[config.init]


@functools.partial(jax.jit, static_argnums=1)
def init(key: jax.Array, config: ModelConfig) -> Params:
    """Fresh parameters: weights drawn by `config.init`, biases zero (one compiled program per config, not
    a compilation per random draw). All weights come from one draw of standard normals cut into the layers'
    shapes: one sampling kernel to compile rather than one per layer (LeNet-5: 0.36 s instead of 1.05 s)."""
    shapes = weight_shapes(config)
    normals = jax.random.normal(key, (sum(math.prod(shape) for shape in shapes.values()),), jnp.float32)
    params, start = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape)
        weights = _init_std(shape, config) * normals[start:start + size].reshape(shape)
        params[name] = {"w": weights, "b": jnp.zeros(shape[-1], jnp.float32)}
        start += size
    return params


# ---------------------------------------------------------------------------------------------- apply


CONV_BLOCK_WIDTH = 8  # output columns per matmul block; fastest measured on CPU for LeNet-5's 24- and 8-wide maps


def _conv_valid(x: jax.Array, layer: dict) -> jax.Array:
    """Valid convolution as one large matmul, which is fast on CPU.

    x: (batch, h, w, c), kernel (kh, kw, c, out) → (batch, h-kh+1, w-kw+1, out). The output is cut into
    blocks of one row × CONV_BLOCK_WIDTH columns; each block reads a kh × (CONV_BLOCK_WIDTH+kw-1) × c window,
    and since the convolution is the same everywhere, one banded matrix maps every window to its block.
    """
    kernel = layer["w"]
    kh, kw, c, out = kernel.shape
    batch, h, w, _ = x.shape
    h_out, w_out = h - kh + 1, w - kw + 1
    block = min(CONV_BLOCK_WIDTH, w_out)
    window = block + kw - 1
    # banded[:, j, :, b] = kernel[:, j - b] where 0 <= j - b < kw, else 0: the kernel padded with `block` zero
    # columns to window + 1, tiled `block` times and cut into rows of `window`, shifts by one column per row.
    # (Slices and reshapes only: a gather here becomes a scatter in the backward pass, ~0.35 s more to compile.)
    padded = jnp.pad(kernel, ((0, 0), (0, block), (0, 0), (0, 0)))
    shifted = jnp.tile(padded, (1, block, 1, 1))[:, :block * window].reshape(kh, block, window, c, out)
    banded = shifted.transpose(0, 2, 3, 1, 4).reshape(kh * window * c, block * out)
    rows = jnp.stack([x[:, i:i + h_out] for i in range(kh)], axis=2)  # (batch, h_out, kh, w, c)
    windows = jnp.stack([rows[:, :, :, j:j + window] for j in range(0, w_out, block)], axis=2)
    y = windows.reshape(batch, h_out, w_out // block, kh * window * c) @ banded
    return y.reshape(batch, h_out, w_out, out) + layer["b"]


def _max_pool_2(x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def lenet5_feature_maps(params: Params, x: jax.Array) -> dict[str, jax.Array]:
    """LeNet-5's feature maps after ReLU, conv1 (b, 24, 24, 6) and conv2 (b, 8, 8, 16), and its logits.

    The network pools before the ReLU (the two commute, and the ReLU then touches a quarter of the values);
    under jit the unpooled maps are only computed when a caller uses them.
    """
    conv1 = _conv_valid(x.reshape(-1, 28, 28, 1), params["conv1"])
    conv2 = _conv_valid(jax.nn.relu(_max_pool_2(conv1)), params["conv2"])
    h = jax.nn.relu(_max_pool_2(conv2)).reshape(x.shape[0], -1)
    h = jax.nn.relu(h @ params["fc1"]["w"] + params["fc1"]["b"])
    h = jax.nn.relu(h @ params["fc2"]["w"] + params["fc2"]["b"])
    logits = h @ params["output"]["w"] + params["output"]["b"]
    return {"conv1": jax.nn.relu(conv1), "conv2": jax.nn.relu(conv2), "logits": logits}


def hidden_activations(params: Params, x: jax.Array, config: ModelConfig) -> list[jax.Array]:
    """The activations of each hidden layer of an MLP (empty for softmax regression)."""
    outs, h = [], x
    for i in range(len(params) - 1):
        h = ACTIVATIONS[config.activation](h @ params[f"hidden_{i}"]["w"] + params[f"hidden_{i}"]["b"])
        outs.append(h)
    return outs


def apply(params: Params, x: jax.Array, config: ModelConfig) -> jax.Array:
    """Logits (batch, 10) for images x (batch, 784)."""
    if config.arch == "lenet5":
        return lenet5_feature_maps(params, x)["logits"]
    hidden = hidden_activations(params, x, config)
    h = hidden[-1] if hidden else x
    return h @ params["output"]["w"] + params["output"]["b"]


def count_parameters(params: Params) -> int:
    """Total number of scalar parameters."""
    return sum(leaf.size for leaf in jax.tree_util.tree_leaves(params))

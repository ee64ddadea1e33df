"""What every network shares: its config, the interface a network module implements, and the registry's table.

A network is a unit: one module under `core/networks/` holds its hyperparameter checks, weight shapes, the
layer-by-layer forward pass (every intermediate a user may look at, in order and by name), how to draw its
units' incoming weights, and hints for the compiled programs. `Model` binds a network's config to the data
description it is built for; the engine, the pages and the commands only ever talk to a `Model`.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import functools
import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from core.data.spec import DataSpec
from core.errors import ConfigError
from core.parsing import member_of, whole

Params = dict
Intermediates = dict  # name -> array, in the order the forward pass computes them
MAX_HIDDEN_WIDTH = 16384  # units per hidden layer: a 784-16384-10 MLP already has 13M weights


class Activation(enum.StrEnum):
    TANH = "tanh"
    SIGMOID = "sigmoid"
    RELU = "relu"

    @property
    def function(self):
        return {Activation.TANH: jnp.tanh, Activation.SIGMOID: jax.nn.sigmoid, Activation.RELU: jax.nn.relu}[self]


class Init(enum.StrEnum):
    """How initial weights are drawn: N(0, init_std²), Glorot's or He's scaling of a standard normal."""

    NORMAL = "normal"
    GLOROT = "glorot"
    HE = "he"


ARCH_FIELDS = ("hidden", "activation", "dropout")  # the config fields a network may use besides its initialisation
UNUSED = {"hidden": (), "activation": "", "dropout": ()}  # how a field a network does not use is stored


@dataclass(frozen=True)
class ModelConfig:
    """Which network, and its shape. Fields the network does not use are emptied, so a saved config says what
    the network has; each network checks its own (`Network.check`)."""

    arch: str = "mlp"  # a registered network's name (core/networks/__init__.py)
    hidden: tuple[int, ...] = (300,)  # widths of the hidden layers
    activation: str = Activation.TANH  # the hidden layers' nonlinearity
    init: str = Init.GLOROT
    init_std: float = 0.1  # standard deviation for init="normal"
    dropout: tuple[float, ...] = ()  # dropout rate of each hidden dense layer in training; () = none

    def __post_init__(self):
        if self.arch not in NETWORKS:
            raise ConfigError(f"Unknown architecture '{self.arch}'; choose one of {', '.join(NETWORKS)}.")
        network = NETWORKS[self.arch]
        try:
            hidden, dropout = tuple(self.hidden), tuple(self.dropout)
        except TypeError:
            raise ConfigError(f"Hidden widths and dropout rates are lists, got {self.hidden!r} and "
                              f"{self.dropout!r}.") from None
        if not all(whole(h, -math.inf) for h in hidden):
            raise ConfigError(f"Hidden widths must be whole numbers, got {self.hidden!r}.")
        if not all(isinstance(r, numbers.Real) and not isinstance(r, bool) and 0 <= r < 1 for r in dropout):
            raise ConfigError(f"Dropout rates must be numbers from 0 up to (not including) 1, got {self.dropout!r}.")
        object.__setattr__(self, "hidden", tuple(int(h) for h in hidden))
        object.__setattr__(self, "dropout", () if not any(dropout) else tuple(float(r) for r in dropout))
        for name in ARCH_FIELDS:
            if name not in network.hyperparameters:
                object.__setattr__(self, name, UNUSED[name])
        if "activation" in network.hyperparameters:
            object.__setattr__(self, "activation", member_of(Activation, self.activation, "activation"))
        object.__setattr__(self, "init", member_of(Init, self.init, "initialisation"))
        if not (isinstance(self.init_std, numbers.Real) and math.isfinite(self.init_std) and self.init_std > 0):
            raise ConfigError(f"The init standard deviation must be a positive finite number, got {self.init_std}.")
        network.check(self)
        if self.dropout and len(self.dropout) != network.dropout_layers(self):
            if len(self.dropout) != 1:
                raise ConfigError(f"Give one dropout rate, or one for each of the {network.dropout_layers(self)} "
                                  f"dropout layers of {network.title}, not {len(self.dropout)}.")
            object.__setattr__(self, "dropout", self.dropout * network.dropout_layers(self))

    @property
    def network(self) -> Network:
        return NETWORKS[self.arch]


class WeightImages(NamedTuple):
    """The incoming weights of a layer's units drawn as images: `layer` names the tensor, `images` is (units, h, w),
    `titles` one per unit, and `outputs` the (units, classes) weights from these units into the output layer when
    they are hidden units that feed it directly (else None)."""

    layer: str
    images: jax.Array
    titles: list[str]
    caption: str
    outputs: jax.Array | None


class Network(abc.ABC):
    """The interface of one network; each module under core/networks/ defines a subclass and its one instance."""

    name: str
    title: str
    description: str
    hyperparameters: tuple[str, ...] = ()  # the ARCH_FIELDS it uses
    flat_update: bool = False  # the optimiser updates all tensors as one flat vector (optax.flatten)
    feature_maps: tuple[str, ...] = ()  # intermediates to show as images per channel (the Weights page)
    readout: str = "output"  # the dense layer that turns the last representation into the logits (the Playground)

    # an optional hook, not an abstract method: a network without fields of its own has nothing to check
    def check(self, config: ModelConfig) -> None:  # noqa: B027
        """A ConfigError when this network's own fields of `config` are out of range."""

    def dropout_layers(self, config: ModelConfig) -> int:
        """How many layers dropout applies to (one rate each)."""
        return 0

    @abc.abstractmethod
    def weight_shapes(self, config: ModelConfig, spec: DataSpec) -> dict[str, tuple[int, ...]]:
        """Each layer's weight shape, in order: (in, out) for a dense layer, (kh, kw, in, out) for a convolution;
        each layer also has a bias of its last dimension."""

    @abc.abstractmethod
    def forward(self, params: Params, x: jax.Array, config: ModelConfig, spec: DataSpec, *, train: bool = False,
                key: jax.Array | None = None) -> Intermediates:
        """Every intermediate of images x (batch, pixels), in order and by name, ending with "logits"."""

    def recommended_init(self, config: ModelConfig) -> Init:
        return Init.GLOROT

    def describe(self, config: ModelConfig, spec: DataSpec) -> str:
        """A short name such as '784-300-10 tanh'."""
        return self.title

    @abc.abstractmethod
    def weight_images(self, params: Params, config: ModelConfig, spec: DataSpec) -> WeightImages:
        """The units whose incoming weights are drawn as images (the Weights page)."""

    @abc.abstractmethod
    def samples_per_second(self, config: ModelConfig, spec: DataSpec) -> float:
        """Roughly how many training images a second this network learns from on a CPU (sizes its compiled chunks)."""

    def sweep_vmap_pays(self, config: ModelConfig, spec: DataSpec) -> bool:
        """Whether a sweep's variants train faster vmapped into one program than one after another (measured)."""
        return False


NETWORKS: dict[str, Network] = {}  # filled by core/networks/__init__.py


def register(network: Network) -> None:
    """Make a network available to configs, the app and the CLI under `network.name` (a name another kind of
    network already has is refused)."""
    taken = NETWORKS.get(network.name)
    if taken is not None and type(taken) is not type(network):
        raise ValueError(f"A network named '{network.name}' is registered already ({type(taken).__name__}).")
    NETWORKS[network.name] = network


@dataclass(frozen=True)
class Model:
    """A network's config bound to the data it is built for. Hashable: compiled programs are cached per Model."""

    config: ModelConfig
    spec: DataSpec

    @property
    def network(self) -> Network:
        return self.config.network

    def init(self, key: jax.Array) -> Params:
        return _init(key, self)

    def apply(self, params: Params, x: jax.Array, *, train: bool = False, key: jax.Array | None = None) -> jax.Array:
        """Logits (batch, classes) for images x (batch, pixels)."""
        return self.forward(params, x, train=train, key=key)["logits"]

    def forward(self, params: Params, x: jax.Array, *, train: bool = False,
                key: jax.Array | None = None) -> Intermediates:
        """Every intermediate, in order and by name, then "logits" and "probabilities"."""
        out = self.network.forward(params, x, self.config, self.spec, train=train, key=key)
        return {**out, "probabilities": jax.nn.softmax(out["logits"])}

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        return self.network.weight_shapes(self.config, self.spec)

    def describe(self) -> str:
        return self.network.describe(self.config, self.spec)

    def weight_images(self, params: Params) -> WeightImages:
        return self.network.weight_images(params, self.config, self.spec)

    def for_programs(self) -> Model:
        """The settings a compiled program depends on: the initialisation reset (the parameters are the
        program's inputs), so runs that differ only in it share one program."""
        default = ModelConfig()
        return Model(dataclasses.replace(self.config, init=default.init, init_std=default.init_std), self.spec)


def seed_key(seed: int) -> jax.Array:
    """The random key a run's weights are drawn from. XLA's RngBitGenerator ("rbg") rather than the default
    threefry, whose sampling compiled about three times slower here (0.7 s against 2 s for a per-layer `init`),
    which each new network shape waits for."""
    return jax.random.key(seed, impl="rbg")


DROPOUT_KEY_IMPL = "threefry2x32"  # not "rbg": its bits change under vmap, so a sweep's variants would draw other masks


def dropout_key(seed: int) -> jax.Array:
    """The key a run's dropout masks derive from (step s uses `fold_in(dropout_key(seed), s)`): apart from the
    weights' key, so turning dropout on draws the same initial weights."""
    return jax.random.key(seed, impl=DROPOUT_KEY_IMPL)


def _init_std(shape: tuple[int, ...], config: ModelConfig) -> float:
    receptive = math.prod(shape[:-2])  # 25 for a 5×5 kernel, 1 for a dense layer
    fan_in, fan_out = receptive * shape[-2], receptive * shape[-1]
    return {
        Init.NORMAL: config.init_std,
        Init.GLOROT: math.sqrt(2.0 / (fan_in + fan_out)),
        Init.HE: math.sqrt(2.0 / fan_in),
    }[config.init]


@functools.partial(jax.jit, static_argnums=1)
def _init(key: jax.Array, model: Model) -> Params:
    """Fresh parameters: weights drawn by `config.init`, biases zero (one compiled program per model, not
    a compilation per random draw). All weights come from one draw of standard normals cut into the layers'
    shapes: one sampling kernel to compile rather than one per layer (LeNet-5: 0.36 s instead of 1.05 s)."""
    shapes = model.weight_shapes()
    normals = jax.random.normal(key, (sum(math.prod(shape) for shape in shapes.values()),), jnp.float32)
    params, start = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape)
        weights = _init_std(shape, model.config) * normals[start:start + size].reshape(shape)
        params[name] = {"w": weights, "b": jnp.zeros(shape[-1], jnp.float32)}
        start += size
    return params


def dense(layer: dict, x: jax.Array) -> jax.Array:
    return x @ layer["w"] + layer["b"]


def dropout(x: jax.Array, rate: float, key: jax.Array | None) -> jax.Array:
    """Inverted dropout: each value zeroed with probability `rate`, the rest scaled by 1 / (1 - rate)."""
    if key is None:
        raise ValueError("Dropout in training needs a random key.")
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


def pixel_images(weights: jax.Array, spec: DataSpec) -> jax.Array:
    """Weights from every pixel into each unit, (pixels, units) → (units, height, width), channels averaged."""
    images = jnp.asarray(weights).T.reshape(-1, *spec.image_shape)
    return images.mean(axis=-1)


def count_parameters(params: Params) -> int:
    """Total number of scalar parameters."""
    return sum(leaf.size for leaf in jax.tree_util.tree_leaves(params))

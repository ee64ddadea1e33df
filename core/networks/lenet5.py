"""LeNet-5: two 5×5 convolutions with max-pooling, then three dense layers, all with ReLU."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp

from core.data.spec import MNIST_SPEC, DataSpec
from core.errors import ConfigError
from core.networks.base import Init, Intermediates, ModelConfig, Network, Params, WeightImages, dense, dropout

KERNEL = 5
CHANNELS = (6, 16)  # feature maps of conv1 and conv2
DENSE = (120, 84)  # widths of fc1 and fc2
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
    while w_out % block:  # blocks tile the row exactly (MNIST's 24- and 8-wide maps take 8)
        block -= 1
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
    """2×2 max-pooling; an odd last row or column is dropped."""
    b, h, w, c = x.shape
    return x[:, :h // 2 * 2, :w // 2 * 2].reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def _pooled_side(side: int) -> int:
    """A map's side after conv1, pool, conv2, pool."""
    return ((side - KERNEL + 1) // 2 - KERNEL + 1) // 2


class LeNet5(Network):
    name = "lenet5"
    title = "LeNet-5"
    description = ("conv 6@5×5 → ReLU → max-pool 2 → conv 16@5×5 → ReLU → max-pool 2 → dense 120 → ReLU → dense 84 "
                   "→ ReLU → dense to the classes.")
    hyperparameters = ("dropout",)
    flat_update = True  # ten small tensors: one update kernel instead of ten compiles ~0.4 s faster, steps as fast
    feature_maps = ("conv1", "conv2")

    def dropout_layers(self, config: ModelConfig) -> int:
        return len(DENSE)

    def weight_shapes(self, config: ModelConfig, spec: DataSpec) -> dict[str, tuple[int, ...]]:
        side_h, side_w = _pooled_side(spec.height), _pooled_side(spec.width)
        if min(side_h, side_w) < 1:
            raise ConfigError(f"LeNet-5 needs images of at least 16×16 pixels; {spec.name}'s are "
                              f"{spec.height}×{spec.width}.")
        sizes = (CHANNELS[1] * side_h * side_w, *DENSE, spec.num_classes)
        dense_shapes = dict(zip(("fc1", "fc2", "output"), itertools.pairwise(sizes)))
        return {"conv1": (KERNEL, KERNEL, spec.channels, CHANNELS[0]),
                "conv2": (KERNEL, KERNEL, CHANNELS[0], CHANNELS[1]), **dense_shapes}

    def forward(self, params: Params, x: jax.Array, config: ModelConfig, spec: DataSpec, *, train: bool = False,
                key: jax.Array | None = None) -> Intermediates:
        """The network pools before the ReLU (the two commute, and the ReLU then touches a quarter of the values);
        under jit the unpooled maps after ReLU are only computed when a caller uses them."""
        conv1 = _conv_valid(x.reshape(-1, *spec.image_shape), params["conv1"])
        pool1 = jax.nn.relu(_max_pool_2(conv1))
        conv2 = _conv_valid(pool1, params["conv2"])
        pool2 = jax.nn.relu(_max_pool_2(conv2))
        out = {"conv1": jax.nn.relu(conv1), "pool1": pool1, "conv2": jax.nn.relu(conv2), "pool2": pool2}
        h = pool2.reshape(x.shape[0], -1)
        for i, name in enumerate(("fc1", "fc2")):
            pre = dense(params[name], h)
            h = jax.nn.relu(pre)
            out[f"{name}/pre"], out[name] = pre, h
            if train and config.dropout:
                h = dropout(h, config.dropout[i], jax.random.fold_in(key, i) if key is not None else None)
        out["logits"] = dense(params["output"], h)
        return out

    def recommended_init(self, config: ModelConfig) -> Init:
        return Init.HE

    def weight_images(self, params: Params, config: ModelConfig, spec: DataSpec) -> WeightImages:
        kernels = params["conv1"]["w"]  # (kh, kw, channels in, filters)
        images = jnp.moveaxis(kernels.mean(axis=2), -1, 0)
        return WeightImages(
            "conv1", images, [f"filter {i}" for i in range(len(images))],
            f"The {len(images)} first-layer {KERNEL}×{KERNEL} filters.", None)

    def samples_per_second(self, config: ModelConfig, spec: DataSpec) -> float:
        return 14_000 * MNIST_SPEC.num_pixels / spec.num_pixels  # measured here on MNIST, scaled by image size

    def describe(self, config: ModelConfig, spec: DataSpec) -> str:
        return self.title + (f" dropout {'/'.join(f'{r:g}' for r in config.dropout)}" if config.dropout else "")


NETWORK = LeNet5()

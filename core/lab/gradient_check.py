"""Hand-derived gradients checked against autodiff and finite differences.

The finite-difference check perturbs every weight
(or a sample) in float64 or float32 — all perturbations of a chunk in one vmapped, jitted call — and sweeps the
step h to show truncation error giving way to rounding error. Float64 is switched on only inside
`jax.enable_x64`, which is thread-local: the rest of the process (the training engine) stays float32.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from core.errors import ConfigError
from core.lab.backprop import (
    autodiff_gradient,
    check_bug,
    check_supported,
    hand_gradient,
    mean_loss,
)
from core.networks.base import Activation, Model, Params
from core.training.programs import cross_entropy

STEP_SIZES = tuple(10.0 ** -e for e in range(10))  # h = 1, 0.1, ..., 1e-9


DTYPES = ("float64", "float32")


# A check passes when every tensor's relative error at the precision's best h is below this. Measured on 100 MNIST
# images (softmax regression, 784-{10,30,100,300}-10 MLPs, three seeds): correct gradients at most 1.7e-9 / 1.3e-3,
# every planted bug at least 2.3e-2 in the tensor it touches, in both precisions.
PASS_RELATIVE_ERROR = {"float64": 1e-6, "float32": 1e-2}


CHUNK = 256  # perturbations per compiled call


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """‖a − b‖ / (‖a‖ + ‖b‖), 0 when both are zero."""
    a, b = np.ravel(np.asarray(a, np.float64)), np.ravel(np.asarray(b, np.float64))
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / scale) if scale else 0.0


def as_dtype(tree, dtype: str):
    """Cast every floating array of a pytree (params or a batch) to `dtype`; call inside `jax.enable_x64`."""
    return jax.tree_util.tree_map(
        lambda a: jnp.asarray(a, dtype) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating) else jnp.asarray(a),
        tree)


def hand_vs_autodiff(params: Params, x, y, model: Model) -> dict[str, float]:
    """Relative error between the hand gradient and `jax.grad`, per tensor, computed in float64."""
    check_supported(model)
    with jax.enable_x64(True):
        p64, x64 = as_dtype(params, "float64"), as_dtype(x, "float64")
        hand = _flat_by_tensor(hand_gradient(p64, x64, jnp.asarray(y), model))
        auto = _flat_by_tensor(autodiff_gradient(p64, x64, jnp.asarray(y), model))
    return {name: relative_error(hand[name], auto[name]) for name in hand}


def _flat_by_tensor(tree: Params) -> dict[str, np.ndarray]:
    """{'hidden_0/w': flat array, ...} in ravel_pytree's order."""
    return {f"{layer}/{key}": np.asarray(tree[layer][key]).ravel()
            for layer in sorted(tree) for key in sorted(tree[layer])}


def tensor_layout(params: Params) -> list[tuple[str, int, int]]:
    """(name, start, size) of each tensor in the flat parameter vector, in ravel_pytree's order."""
    layout, start = [], 0
    for name, flat in _flat_by_tensor(params).items():
        layout.append((name, start, flat.size))
        start += flat.size
    return layout


def sample_indices(params: Params, k: int | None, seed: int = 0) -> np.ndarray:
    """Flat indices of the weights to check: all when k is None, else about k, spread over every tensor
    in proportion to its size but at least min(size, 10) from each (so small bias vectors are seen)."""
    layout = tensor_layout(params)
    total = sum(size for _, _, size in layout)
    if k is None or k >= total:
        return np.arange(total)
    if k < 1:
        raise ConfigError(f"Check at least one weight, not {k}.")
    rng = np.random.default_rng(seed)
    picked = []
    for _, start, size in layout:
        count = min(size, max(min(size, 10), round(k * size / total)))
        picked.append(start + rng.choice(size, count, replace=False))
    return np.sort(np.concatenate(picked))


FD_METHODS = ("incremental", "full")


@functools.partial(jax.jit, static_argnames="model")
def _central_differences_full(params: Params, x, y, flat_index, h, model: Model) -> jax.Array:
    """(C(θ + h eᵢ) − C(θ − h eᵢ)) / 2h for each flat index i, re-running the whole forward pass for each
    perturbation (the definition, and the reference for the incremental version). Vmapped over the indices."""
    theta, unravel = ravel_pytree(params)

    def one(i):
        step = jnp.zeros_like(theta).at[i].set(h)
        return (mean_loss(unravel(theta + step), x, y, model) - mean_loss(unravel(theta - step), x, y, model)) / (2 * h)

    return jax.vmap(one)(flat_index)


@functools.partial(jax.jit, static_argnames=("model", "tensor"))
def _central_differences_incremental(params: Params, x, y, rows, cols, h, model: Model, tensor: str):
    """The same central differences for the weights (rows, cols) of one tensor, exploiting that moving one
    weight changes one column of the logits (an output weight) or one hidden unit (a hidden weight): each
    perturbed cost costs O(batch × 10) instead of a whole forward pass. Vmapped over the weights."""
    w_out, b_out = params["output"]["w"], params["output"]["b"]
    if not model.config.hidden:
        hidden = x
    else:
        z1 = x @ params["hidden_0"]["w"] + params["hidden_0"]["b"]
        hidden = Activation(model.config.activation).function(z1)
    logits = hidden @ w_out + b_out

    def moved(delta, r, c):
        """The logits after moving the weight (r, c) of `tensor` by delta."""
        if tensor.startswith("output/"):
            column = jax.nn.one_hot(c, model.spec.num_classes, dtype=logits.dtype)
            return logits + (delta * hidden[:, r] if tensor == "output/w" else delta)[..., None] * column
        z = z1[:, c] + (delta * x[:, r] if tensor == "hidden_0/w" else delta)
        return logits + (Activation(model.config.activation).function(z) - hidden[:, c])[:, None] * w_out[c][None, :]

    def one(r, c):
        return (cross_entropy(moved(h, r, c), y).mean() - cross_entropy(moved(-h, r, c), y).mean()) / (2 * h)

    return jax.vmap(one)(rows, cols)


ProgressCallback = Callable[[float, str], None]


def _chunks(params: Params, indices: np.ndarray, method: str) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """Fixed-size chunks (CHUNK perturbations, the last padded) as (tensor, positions in `indices`, rows, cols);
    for the full method rows hold flat indices and the tensor is ''."""
    if method == "full":
        groups = [("", np.arange(len(indices)), indices, np.zeros_like(indices))]
    else:
        groups = []
        for name, start, size in tensor_layout(params):
            where = np.flatnonzero((indices >= start) & (indices < start + size))
            local = indices[where] - start
            width = params[name.split("/")[0]]["w"].shape[1]
            rows, cols = (np.zeros_like(local), local) if name.endswith("/b") else np.divmod(local, width)
            groups.append((name, where, rows, cols))
    chunks = []
    for name, where, rows, cols in groups:
        for s in range(0, len(where), CHUNK):
            pad = CHUNK - len(where[s:s + CHUNK])
            chunks.append((name, where[s:s + CHUNK], *(np.pad(a[s:s + CHUNK], (0, pad)).astype(np.int32)
                                                       for a in (rows, cols))))
    return chunks


def finite_differences(params: Params, x, y, model: Model, indices: np.ndarray, step_sizes=(1e-6,),
                       dtype: str = "float64", method: str = "incremental",
                       progress: ProgressCallback | None = None) -> np.ndarray:
    """Central-difference estimates (len(step_sizes), len(indices)) of dC/dθ at the flat `indices`, every
    cost evaluated in `dtype`."""
    if method not in FD_METHODS:
        raise ConfigError(f"Unknown finite-difference method '{method}'; choose one of {', '.join(FD_METHODS)}.")
    if method == "incremental":
        check_supported(model)
    indices = np.asarray(indices, np.int64)
    chunks = _chunks(params, indices, method)
    out = np.empty((len(step_sizes), len(indices)), np.float64)
    with jax.enable_x64(True):
        p, xd, yd = as_dtype(params, dtype), as_dtype(x, dtype), jnp.asarray(y)
        for row, h in enumerate(step_sizes):
            step = jnp.asarray(h, dtype)
            for c, (tensor, where, rows, cols) in enumerate(chunks):
                if method == "full":
                    values = _central_differences_full(p, xd, yd, rows, step, model)
                else:
                    values = _central_differences_incremental(p, xd, yd, rows, cols, step, model, tensor)
                out[row, where] = np.asarray(values)[: len(where)]
                if progress:
                    progress((row * len(chunks) + c + 1) / (len(step_sizes) * len(chunks)),
                             f"{dtype}, h = {h:.0e}: chunk {c + 1} of {len(chunks)}")
    return out


@dataclass(frozen=True)
class SweepPoint:
    """The error of the central differences at one step size h in one precision, over the checked weights."""

    dtype: str
    h: float
    total_abs_error: float  # Σ |approx − analytic|
    max_abs_error: float
    max_rel_error: float  # see max_relative_error
    rel_error: float  # ‖approx − analytic‖ / (‖approx‖ + ‖analytic‖)


@dataclass(frozen=True)
class GradientCheck:
    """Analytic gradient (hand-derived, possibly with a planted bug) against central differences."""

    model: Model
    bug: str | None
    indices: np.ndarray  # flat indices of the checked weights
    tensors: np.ndarray  # the tensor name of each checked weight
    analytic: np.ndarray  # the hand gradient (float64) at the checked weights
    step_sizes: tuple[float, ...]
    approx: dict[str, np.ndarray]  # dtype -> (len(step_sizes), len(indices)) central differences
    points: tuple[SweepPoint, ...]

    def best(self, dtype: str = "float64") -> SweepPoint:
        """The step size with the smallest total absolute error in this precision."""
        return min((p for p in self.points if p.dtype == dtype), key=lambda p: p.total_abs_error)

    @property
    def judged_dtype(self) -> str:
        """The precision the verdict comes from: float64 when it was run."""
        return next(d for d in DTYPES if d in self.approx)

    def tensor_errors(self, dtype: str = "float64") -> dict[str, float]:
        """The relative error (norms) of each tensor's checked weights at this precision's best h: a mistake in
        one small tensor would be diluted in the error over all of them."""
        row = self.approx[dtype][self.step_sizes.index(self.best(dtype).h)]
        return {name: relative_error(row[self.tensors == name], self.analytic[self.tensors == name])
                for name in dict.fromkeys(self.tensors)}

    def worst_tensor(self, dtype: str | None = None) -> tuple[str, float]:
        """(tensor name, relative error) of the tensor that agrees least, in `dtype` (default: the judged one)."""
        return max(self.tensor_errors(dtype or self.judged_dtype).items(), key=lambda item: item[1])

    @property
    def passed(self) -> bool:
        """Whether every tensor's analytic gradient agrees with the central differences (float64 when run) at
        the best h."""
        return self.worst_tensor()[1] < PASS_RELATIVE_ERROR[self.judged_dtype]

    def differences(self, dtype: str = "float64", h: float | None = None) -> dict[str, np.ndarray]:
        """approx − analytic per tensor, at step size h (default: this precision's best)."""
        h = self.best(dtype).h if h is None else h
        row = self.approx[dtype][self.step_sizes.index(h)] - self.analytic
        return {name: row[self.tensors == name] for name in dict.fromkeys(self.tensors)}

    def to_dict(self) -> dict:
        """Plain JSON-able summary: per h and precision the errors, plus the best h of each precision."""
        return {
            "architecture": self.model.describe(),
            "bug": self.bug,
            "weights_checked": len(self.indices),
            "passed": self.passed,
            "tensor_errors": {dtype: self.tensor_errors(dtype) for dtype in self.approx},
            "points": [vars(p) for p in self.points],
            "best": {dtype: {"h": self.best(dtype).h, "total_abs_error": self.best(dtype).total_abs_error,
                             "max_rel_error": self.best(dtype).max_rel_error}
                     for dtype in self.approx},
        }


def max_relative_error(approx: np.ndarray, analytic: np.ndarray) -> float:
    """The largest |approx − analytic| / max(|approx| + |analytic|, floor), the floor a thousandth of the largest
    gradient: where the gradient is zero (the weights of a pixel blank in every image of the batch), rounding noise
    in the finite difference would otherwise count as a relative error of 1, however small, while a hand gradient
    that is wrongly zero still shows (its finite difference is not small)."""
    floor = max(1e-3 * float(np.abs(analytic).max(initial=0.0)), 1e-12)
    return float((np.abs(approx - analytic) / np.maximum(np.abs(approx) + np.abs(analytic), floor)).max(initial=0.0))


def gradient_check(params: Params, x, y, model: Model, *, weights: int | None = None, bug: str | None = None,
                   dtypes: tuple[str, ...] = DTYPES, step_sizes: tuple[float, ...] = STEP_SIZES, seed: int = 0,
                   progress: ProgressCallback | None = None) -> GradientCheck:
    """Compare the hand gradient with central differences for all weights (weights=None) or a sample of about
    `weights`, over every step size in every precision. The analytic gradient is always float64."""
    check_supported(model)
    check_bug(bug, model)
    unknown = set(dtypes) - set(DTYPES)
    if unknown or not dtypes:
        raise ConfigError(f"Precision must be one of {', '.join(DTYPES)}.")
    indices = sample_indices(params, weights, seed)
    tensors = np.empty(tensor_layout(params)[-1][1] + tensor_layout(params)[-1][2], dtype=object)
    for name, start, size in tensor_layout(params):
        tensors[start:start + size] = name
    with jax.enable_x64(True):
        p64, x64, y_ = as_dtype(params, "float64"), as_dtype(x, "float64"), jnp.asarray(y)
        analytic = np.asarray(ravel_pytree(hand_gradient(p64, x64, y_, model, bug))[0])[indices]
    approx, points = {}, []
    for i, dtype in enumerate(dtypes):
        stage = None if progress is None else (
            lambda done, text, i=i: progress((i + done) / len(dtypes), text))
        approx[dtype] = finite_differences(params, x, y, model, indices, step_sizes, dtype, progress=stage)
        for h, row in zip(step_sizes, approx[dtype]):
            error = np.abs(row - analytic)
            points.append(SweepPoint(
                dtype=dtype, h=h, total_abs_error=float(error.sum()), max_abs_error=float(error.max()),
                max_rel_error=max_relative_error(row, analytic),
                rel_error=relative_error(row, analytic)))
    return GradientCheck(model, bug, indices, tensors[indices], analytic, tuple(step_sizes), approx,
                         tuple(points))

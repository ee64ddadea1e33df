"""The loss landscape over two weights, and optimiser paths across it.

All other weights stay fixed. The cost over a grid of the two weights is one vmapped, jitted evaluation; the
optimisers (plain gradient descent, momentum, Adam from optax) move only those two weights, K steps in one
`lax.scan`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

from core.errors import ConfigError
from core.lab.backprop import mean_loss
from core.networks.base import Model, Params
from core.parsing import member_of
from core.training.config import Optimizer
from core.training.optimizers import update_rule


@dataclass(frozen=True)
class WeightRef:
    """One scalar weight: its layer, its array ('w' or 'b') and its position in that array."""

    layer: str
    array: str
    index: tuple[int, ...]

    def label(self) -> str:
        return f"{self.layer}.{self.array}[{', '.join(map(str, self.index))}]"

    def value(self, params: Params) -> float:
        return float(params[self.layer][self.array][self.index])


def check_ref(params: Params, ref: WeightRef) -> None:
    array = params.get(ref.layer, {}).get(ref.array)
    if array is None:
        raise ConfigError(f"The network has no parameter {ref.layer}.{ref.array}; it has {', '.join(params)}.")
    if len(ref.index) != array.ndim or any(not 0 <= i < n for i, n in zip(ref.index, array.shape)):
        raise ConfigError(f"{ref.label()} is outside {ref.layer}.{ref.array}, of shape {tuple(array.shape)}.")


def output_curvatures(params: Params, x, model: Model) -> np.ndarray:
    """∂²C/∂w² for every output-layer weight w[i, k]: the mean over the batch of a_i² p_k (1 − p_k), where a is the
    output layer's input and p the softmax (the exact diagonal of the Hessian of the cross-entropy)."""
    def logits_of(w, image):
        return model.apply({**params, "output": {**params["output"], "w": w}}, image[None])[0]

    # the logits are linear in the output weights: d logit_0 / d w[i, 0] is a_i, example by example
    inputs = jax.vmap(jax.grad(lambda w, image: logits_of(w, image)[0]), in_axes=(None, 0))(
        params["output"]["w"], jnp.asarray(x))[:, :, 0]
    p = jax.nn.softmax(model.apply(params, jnp.asarray(x)))
    return np.asarray(jnp.einsum("ni,nk->ik", inputs**2, p * (1 - p)) / len(x))


def default_pair(params: Params, x, model: Model) -> tuple[WeightRef, WeightRef]:
    """The two most sharply curved output-layer weights into the unit that holds the most curved one: the cost
    depends on them most, so the trained values sit in a clear bowl (large but rarely used weights, for pixels
    near the border, lie on flat plateaus instead)."""
    curved = output_curvatures(params, x, model)
    unit = int(np.unravel_index(curved.argmax(), curved.shape)[1])
    first, second = np.argsort(curved[:, unit])[::-1][:2]
    return WeightRef("output", "w", (int(first), unit)), WeightRef("output", "w", (int(second), unit))


def _with_pair(params: Params, pair: tuple[WeightRef, WeightRef], values: jax.Array) -> Params:
    """params with the two weights of `pair` set to values[0], values[1]."""
    params = {layer: dict(arrays) for layer, arrays in params.items()}
    for ref, value in zip(pair, values):
        params[ref.layer][ref.array] = params[ref.layer][ref.array].at[ref.index].set(value)
    return params


@dataclass(frozen=True)
class Landscape:
    """The cost over a grid of two weights: cost[i, j] at (first[j], second[i]) (rows follow the second weight)."""

    pair: tuple[WeightRef, WeightRef]
    center: tuple[float, float]  # the two weights' current values
    first: np.ndarray  # (resolution,) values of pair[0]
    second: np.ndarray  # (resolution,) values of pair[1]
    cost: np.ndarray  # (resolution, resolution)

    def minimum(self) -> tuple[float, float, float]:
        """(first, second, cost) at the grid's lowest cost."""
        i, j = np.unravel_index(np.nanargmin(self.cost), self.cost.shape)
        return float(self.first[j]), float(self.second[i]), float(self.cost[i, j])


@functools.partial(jax.jit, static_argnames=("model", "pair"))
def _grid_cost(params, x, y, points, model: Model, pair) -> jax.Array:
    return jax.vmap(lambda v: mean_loss(_with_pair(params, pair, v), x, y, model))(points)


def loss_landscape(params: Params, x, y, model: Model, pair: tuple[WeightRef, WeightRef],
                   span: float = 1.0, resolution: int = 41) -> Landscape:
    """The cost on a resolution × resolution grid of ±span around the two weights' current values."""
    for ref in pair:
        check_ref(params, ref)
    if pair[0] == pair[1]:
        raise ConfigError("Choose two different weights.")
    if not span > 0 or resolution < 2:
        raise ConfigError("The grid needs a positive span and at least 2 points a side.")
    center = (pair[0].value(params), pair[1].value(params))
    first = center[0] + np.linspace(-span, span, resolution)
    second = center[1] + np.linspace(-span, span, resolution)
    a, b = np.meshgrid(first, second)
    points = jnp.asarray(np.stack([a.ravel(), b.ravel()], 1), jnp.float32)
    cost = np.asarray(_grid_cost(params, jnp.asarray(x), jnp.asarray(y), points, model, pair))
    return Landscape(pair, center, first, second, cost.reshape(resolution, resolution))


FALLBACK_SPAN, FALLBACK_LEARNING_RATE = 1.0, 0.1  # the view where the cost has no bowl to fit it to


@dataclass(frozen=True)
class Curvature:
    """The 2×2 Hessian of the cost in two weights at their current values, and the view it suggests."""

    eigenvalues: tuple[float, float]  # λ_min ≤ λ_max
    span: float  # grid half-width: `widths` steps of 1/sqrt(λ) along the flattest direction, capped
    learning_rate: float  # 1/λ_max: the largest step plain gradient descent takes without oscillating
    fitted: bool  # False where the cost is not curved upwards: span and learning rate are then the fallbacks
    capped: bool = False  # the bowl is wider than the span (almost flat along one direction): the grid shows part


@functools.partial(jax.jit, static_argnames=("model", "pair"))
def _pair_hessian(params, x, y, values, model: Model, pair) -> jax.Array:
    return jax.hessian(lambda v: mean_loss(_with_pair(params, pair, v), x, y, model))(values)


def curvature(params: Params, x, y, model: Model, pair: tuple[WeightRef, WeightRef], widths: float = 3.0,
              max_anisotropy: float = 10.0, span_limits: tuple[float, float] = (0.05, 50.0)) -> Curvature:
    """Grid half-width and learning rate that fit the cost around the two weights.

    Near the current point the cost is about ½ dᵀHd, so 1/sqrt(λ) is the distance along an eigenvector over which
    it rises by ½: a half-width of `widths` such distances along the flattest direction shows the whole bowl (the
    flattest λ is taken as at least λ_max / max_anisotropy², so an almost flat or concave direction cannot blow the
    grid up). A learning rate of 1/λ_max moves gradient descent straight down the steepest direction. Where no
    direction curves upwards (weights the cost does not depend on, such as those of a pixel blank in every image of
    the batch) there is no bowl: the view is FALLBACK_SPAN and FALLBACK_LEARNING_RATE, marked not `fitted`.
    """
    for ref in pair:
        check_ref(params, ref)
    values = jnp.asarray([ref.value(params) for ref in pair], jnp.float32)
    hessian = np.asarray(_pair_hessian(params, jnp.asarray(x), jnp.asarray(y), values, model, pair), np.float64)
    low, high = np.linalg.eigvalsh((hessian + hessian.T) / 2)
    if not high > 0:
        return Curvature((float(low), float(high)), FALLBACK_SPAN, FALLBACK_LEARNING_RATE, False)
    flattest = max(low, high / max_anisotropy**2)
    whole_bowl = widths / np.sqrt(low) if low > 0 else np.inf  # the half-width the flattest direction asks for
    span = float(np.clip(widths / np.sqrt(flattest), *span_limits))
    return Curvature((float(low), float(high)), span, float(1 / high), True, capped=bool(whole_bowl > span * 1.001))


@dataclass(frozen=True)
class OptimiserPath:
    """Where one optimiser took the two weights: points (K+1, 2) from the start, and the cost at each."""

    optimiser: Optimizer
    points: np.ndarray
    costs: np.ndarray

    @property
    def diverged(self) -> bool:
        """Whether the cost became NaN/Inf along the path."""
        return not np.isfinite(self.costs).all()


@functools.partial(jax.jit, static_argnames=("model", "pair", "optimiser", "steps"))
def _descend_pair(params, x, y, start, learning_rate, momentum, model: Model, pair, optimiser: Optimizer,
                  steps: int):
    transform = update_rule(optimiser, learning_rate, momentum)

    def cost(v):
        return mean_loss(_with_pair(params, pair, v), x, y, model)

    def step(carry, _):
        v, state = carry
        value, grad = jax.value_and_grad(cost)(v)
        updates, state = transform.update(grad, state, v)
        return (optax.apply_updates(v, updates), state), (v, value)

    (last, _), (points, costs) = jax.lax.scan(step, (start, transform.init(start)), None, length=steps)
    return jnp.concatenate([points, last[None]]), jnp.concatenate([costs, cost(last)[None]])


def optimiser_path(params: Params, x, y, model: Model, pair: tuple[WeightRef, WeightRef],
                   start: tuple[float, float], optimiser: Optimizer, learning_rate: float, momentum: float = 0.9,
                   steps: int = 50) -> OptimiserPath:
    """K steps of one optimiser (its value is taken too) on the two weights of `pair`, from `start`, every other
    weight fixed."""
    optimiser = member_of(Optimizer, optimiser, "optimiser")
    if not learning_rate > 0 or not 0 <= momentum < 1 or steps < 1:
        raise ConfigError("Use a positive learning rate, a momentum in [0, 1) and at least one step.")
    points, costs = _descend_pair(params, jnp.asarray(x), jnp.asarray(y), jnp.asarray(start, jnp.float32),
                                  jnp.float32(learning_rate), jnp.float32(momentum), model, pair, optimiser, steps)
    return OptimiserPath(optimiser, np.asarray(points), np.asarray(costs))


def optimiser_paths(params: Params, x, y, model: Model, pair: tuple[WeightRef, WeightRef],
                    start: tuple[float, float], learning_rate: float, momentum: float = 0.9,
                    steps: int = 50) -> dict[Optimizer, OptimiserPath]:
    """The paths of every optimiser (plain gradient descent, momentum and Adam) from the same start."""
    return {optimiser: optimiser_path(params, x, y, model, pair, start, optimiser, learning_rate, momentum, steps)
            for optimiser in Optimizer}

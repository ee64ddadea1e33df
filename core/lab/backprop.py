"""Gradients by hand, checked against autodiff and against finite differences.

The backward passes below are the worked derivation in code, for softmax regression and for the MLP with one
tanh or sigmoid hidden layer, on the mean softmax cross-entropy C = -(1/n) Σᵢ log pᵢ,yᵢ:

    softmax regression   Z = XW + b,  P = softmax(Z)          dC/dW = Xᵀ(P − Y)/n,   dC/db = Σᵢ (P − Y)ᵢ/n
    one hidden layer     A = σ(XW₁ + b₁), P = softmax(AW₂ + b₂)
                         Δ₂ = (P − Y)/n                       dC/dW₂ = AᵀΔ₂,         dC/db₂ = Σᵢ Δ₂ᵢ
                         Δ₁ = (Δ₂W₂ᵀ) ⊙ σ′(XW₁ + b₁)            dC/dW₁ = XᵀΔ₁,         dC/db₁ = Σᵢ Δ₁ᵢ

`BUGS` holds typical mistakes that can be planted in them.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from core.data.spec import MNIST_SPEC
from core.errors import ConfigError
from core.networks.base import NETWORKS, Activation, Model, ModelConfig, Params
from core.training.programs import cross_entropy

HAND_ACTIVATIONS = (Activation.TANH, Activation.SIGMOID)


# σ′ as a function of the pre-activation z
DERIVATIVES = {
    "tanh": lambda z: 1.0 - jnp.tanh(z) ** 2,
    "sigmoid": lambda z: jax.nn.sigmoid(z) * (1.0 - jax.nn.sigmoid(z)),
}


TENSOR_LABELS = {"hidden_0/w": "W₁", "hidden_0/b": "b₁", "output/w": "W₂", "output/b": "b₂"}


LINEAR_LABELS = {"output/w": "W", "output/b": "b"}


@dataclass(frozen=True)
class Bug:
    """A typical mistake in a hand-written backward pass."""

    title: str
    description: str
    latex: str  # the wrong formula
    needs_hidden: bool  # it sits in the hidden layer's backward pass


BUGS = {
    "sign": Bug("Y − P instead of P − Y", "The output error has the wrong sign, so every step climbs the loss.",
                r"\Delta_{\text{out}} = (Y - P)/n", False),
    "no-mean": Bug("Sum instead of mean", "The gradient of the summed loss is used for the mean loss: n times too "
                   "large, so a learning rate that suits the mean loss overshoots.",
                   r"\Delta_{\text{out}} = P - Y", False),
    "logits": Bug("Logits instead of probabilities", "The softmax is forgotten in the backward pass: Z − Y is "
                  "used where P − Y belongs.", r"\Delta_{\text{out}} = (Z - Y)/n", False),
    "derivative-at-activation": Bug(
        "σ′ at the activation", "The activation's derivative is evaluated at the activation A = σ(Z₁) instead of "
        "the pre-activation Z₁.", r"\Delta_1 = (\Delta_2 W_2^\top) \odot \sigma'(A)", True),
    "derivative-on-weights": Bug(
        "σ′ applied to the weights", "The activation's derivative is applied to the weights W₂ instead of the "
        "pre-activations.", r"\Delta_1 = \Delta_2 \,\big(W_2 \odot \sigma'(W_2)\big)^\top", True),
    "missing-transpose": Bug(
        "Missing transpose", "The input-weight gradient is computed as Δ₁ᵀX, a (hidden × pixels) matrix read back "
        "into W₁'s (pixels × hidden) shape.",
        r"\frac{\partial C}{\partial W_1} = \operatorname{reshape}(\Delta_1^\top X)", True),
}


HAND_LAYOUTS = (("output",), ("hidden_0", "output"))  # the dense stacks the derivation covers


def check_supported(model: Model) -> None:
    """Hand gradients exist for softmax regression and the one-hidden-layer tanh/sigmoid MLP: a dense stack of at
    most one hidden layer."""
    layers = tuple(model.weight_shapes())
    if layers not in HAND_LAYOUTS or (model.config.hidden and model.config.activation not in HAND_ACTIVATIONS):
        raise ConfigError(f"Hand-derived gradients cover softmax regression and an MLP with one tanh or sigmoid "
                          f"hidden layer, not {model.describe()}.")


def hand_networks() -> list[str]:
    """The registered networks whose one-hidden-layer tanh form the derivation covers (their names)."""
    covered = []
    for name in NETWORKS:
        try:
            check_supported(Model(ModelConfig(name, (1,), Activation.TANH), MNIST_SPEC))
        except ConfigError:
            continue
        covered.append(name)
    return covered


def check_bug(bug: str | None, model: Model) -> None:
    if bug is None:
        return
    if bug not in BUGS:
        raise ConfigError(f"Unknown planted bug '{bug}'; choose one of {', '.join(BUGS)}.")
    if BUGS[bug].needs_hidden and not model.config.hidden:
        raise ConfigError(f"The bug '{bug}' needs a hidden layer; for {model.describe()} choose one of "
                          f"{', '.join(name for name, b in BUGS.items() if not b.needs_hidden)}.")


def mean_loss(params: Params, x: jax.Array, y: jax.Array, model: Model) -> jax.Array:
    """C: the mean softmax cross-entropy the training engine minimises."""
    return cross_entropy(model.apply(params, x), y).mean()


def autodiff_gradient(params: Params, x: jax.Array, y: jax.Array, model: Model) -> Params:
    """dC/dθ by `jax.grad`."""
    return jax.grad(mean_loss)(params, x, y, model)


def hand_gradient(params: Params, x: jax.Array, y: jax.Array, model: Model, bug: str | None = None) -> Params:
    """dC/dθ by the hand-derived, vectorised backward pass (with `bug` planted, if named)."""
    n = x.shape[0]
    targets = jax.nn.one_hot(y, model.spec.num_classes, dtype=x.dtype)
    w_out, b_out = params["output"]["w"], params["output"]["b"]
    if not model.config.hidden:
        hidden = x
    else:
        w1, b1 = params["hidden_0"]["w"], params["hidden_0"]["b"]
        z1 = x @ w1 + b1
        hidden = Activation(model.config.activation).function(z1)
    logits = hidden @ w_out + b_out
    probabilities = jax.nn.softmax(logits)

    delta_out = {
        "sign": (targets - probabilities) / n,
        "no-mean": probabilities - targets,
        "logits": (logits - targets) / n,
    }.get(bug, (probabilities - targets) / n)
    grads = {"output": {"w": hidden.T @ delta_out, "b": delta_out.sum(0)}}
    if not model.config.hidden:
        return grads

    derivative = DERIVATIVES[model.config.activation]
    back = delta_out @ w_out.T
    if bug == "derivative-at-activation":
        delta_1 = back * derivative(hidden)
    elif bug == "derivative-on-weights":
        delta_1 = delta_out @ (w_out * derivative(w_out)).T
    else:
        delta_1 = back * derivative(z1)
    grad_w1 = (delta_1.T @ x).reshape(w1.shape) if bug == "missing-transpose" else x.T @ delta_1
    grads["hidden_0"] = {"w": grad_w1, "b": delta_1.sum(0)}
    return grads


def tensor_label(name: str, model: Model) -> str:
    """The textbook symbol of a tensor: W, b for softmax regression; W₁, b₁, W₂, b₂ for the MLP."""
    return (LINEAR_LABELS if not model.config.hidden else TENSOR_LABELS)[name]

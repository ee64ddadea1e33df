"""Saliency: each method against its definition, on every network."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.spec import MNIST_SPEC, DataSpec
from core.networks.base import NETWORKS, Model, ModelConfig, seed_key
from core.playground import saliency


def network(arch: str, spec=MNIST_SPEC, seed: int = 0):
    model = Model(ModelConfig(arch, (32,), "tanh"), spec)
    return model, model.init(seed_key(seed))


def digit_like(spec=MNIST_SPEC, seed: int = 1) -> np.ndarray:
    """A block of random ink in the middle of a black image, as a pixel vector."""
    image = np.zeros(spec.image_shape, np.float32)
    middle = image[spec.height // 4: 3 * spec.height // 4, spec.width // 3: 2 * spec.width // 3]
    middle[...] = np.random.default_rng(seed).random(middle.shape)
    return image.reshape(-1)


@pytest.mark.parametrize("arch", list(NETWORKS))
def test_the_gradient_matches_finite_differences(arch):
    model, params = network(arch)
    image, target = digit_like(), 3
    grad = saliency.vanilla_gradient(model, params, image, target).reshape(-1)

    def logit(x):
        return float(np.asarray(model.apply(params, x[None].astype(np.float32)))[0, target])

    h = 1e-3  # small enough to cross no ReLU or max-pool kink, large enough for float32
    # pixels in the random ink: in the black background LeNet-5's pooled maps tie, where a max has no derivative
    # (autodiff splits it among the ties, a central difference halves a one-sided one)
    for pixel in (292, 381, 407, 515):
        step = np.zeros_like(image)
        step[pixel] = h
        numeric = (logit(image + step) - logit(image - step)) / (2 * h)
        assert grad[pixel] == pytest.approx(numeric, rel=2e-2, abs=5e-4)


def test_gradient_times_input_is_zero_on_black_pixels():
    model, params = network("mlp")
    image = digit_like()
    product = saliency.gradient_times_input(model, params, image, 5).reshape(-1)
    np.testing.assert_allclose(product, saliency.vanilla_gradient(model, params, image, 5).reshape(-1) * image,
                               rtol=1e-6, atol=1e-7)
    assert np.all(product[image == 0] == 0) and np.any(product != 0)


def test_smoothgrad_without_noise_is_the_gradient_and_with_noise_differs():
    model, params = network("mlp")
    image = digit_like()
    plain = saliency.vanilla_gradient(model, params, image, 2)
    np.testing.assert_allclose(saliency.smoothgrad(model, params, image, 2, noise=0.0, samples=4), plain, rtol=1e-5,
                               atol=1e-7)
    noisy = saliency.smoothgrad(model, params, image, 2, noise=0.3, samples=16)
    assert not np.allclose(noisy, plain) and noisy.shape == (28, 28)
    np.testing.assert_array_equal(noisy, saliency.smoothgrad(model, params, image, 2, noise=0.3, samples=16))


@pytest.mark.parametrize("arch", list(NETWORKS))
def test_integrated_gradients_add_up_to_the_logit_difference(arch):
    model, params = network(arch)
    attributions, gap = saliency.integrated_gradients(model, params, digit_like(), 7, steps=512)
    assert attributions.shape == (28, 28) and gap != 0
    assert abs(attributions.sum() - gap) < 1e-3


def test_integrated_gradients_need_their_steps_on_a_curved_network():
    model = Model(ModelConfig("mlp", (32,), "tanh", "normal", 0.5), MNIST_SPEC)  # weights large enough to saturate
    params = model.init(seed_key(0))
    coarse, gap = saliency.integrated_gradients(model, params, digit_like(), 7, steps=2)
    fine, _ = saliency.integrated_gradients(model, params, digit_like(), 7, steps=64)
    assert abs(coarse.sum() - gap) > 0.1 > 1e-3 > abs(fine.sum() - gap)  # the check is not met trivially


def test_occlusion_of_black_pixels_changes_nothing_and_of_ink_does():
    model, params = network("lenet5")
    image = digit_like()
    drops = saliency.occlusion(model, params, image, 4, patch=4, stride=2)
    assert drops.shape == (28, 28)
    assert np.abs(drops[:4, :4]).max() < 1e-5  # that corner's patches are black already: blacking them out changes
    # nothing (but the rounding of a batched evaluation)
    assert np.abs(drops[10:18, 10:18]).max() > 0
    whole = saliency.occlusion(model, params, image, 4, patch=28, stride=1)  # one patch: the black image
    logits = np.asarray(model.apply(params, np.stack([image, np.zeros_like(image)])))[:, 4]
    np.testing.assert_allclose(whole, np.full((28, 28), logits[0] - logits[1]), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="patch"):
        saliency.occlusion(model, params, image, 4, patch=29)


def test_maps_follow_the_data_description():
    spec = DataSpec("letters", 32, 32, 1, tuple("ABCD"))
    model, params = network("lenet5", spec)
    image = digit_like(spec)
    for method in (saliency.vanilla_gradient, saliency.gradient_times_input, saliency.smoothgrad,
                   saliency.occlusion):
        assert method(model, params, image, 3).shape == (32, 32)

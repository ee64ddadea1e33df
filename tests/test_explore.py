"""core.explore: layer activations, PCA and t-SNE maps, pixel statistics and nearest neighbours, against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.spec import MNIST_SPEC
from core.errors import ConfigError
from core.explore.embeddings import (
    BATCH,
    INPUT,
    Method,
    activations,
    check_perplexity,
    last_hidden_layer,
    layer_shapes,
    pca,
    project,
    tsne,
)
from core.explore.statistics import (
    GREY_LEVELS,
    mean_difference,
    nearest_neighbour_accuracy,
    nearest_neighbours,
    neighbour_pool,
    pixel_statistics,
)
from core.networks.base import Model, ModelConfig, seed_key


def correlated(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Points with clearly different variances along their principal directions (no near-equal eigenvalues)."""
    rng = np.random.default_rng(seed)
    scales = np.geomspace(5.0, 0.1, d)
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return (rng.normal(size=(n, d)) * scales) @ rotation.T + rng.normal(size=d)


def test_pca_matches_numpy_svd_up_to_sign():
    x = correlated(600, 12)
    centred = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    expected = u[:, :2] * s[:2]
    result = pca(x)
    assert result.points.shape == (600, 2)
    for axis in range(2):
        sign = np.sign(expected[:, axis] @ result.points[:, axis])
        np.testing.assert_allclose(result.points[:, axis], sign * expected[:, axis], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(result.explained, s[:2] ** 2 / (s ** 2).sum(), rtol=1e-4)


def test_pca_signs_are_fixed_by_the_data_not_by_chance():
    """Each axis is signed by its largest loading: shuffling the digits moves the points, not the picture; the
    negated data (the same covariance, so the same axes) lands mirrored."""
    x = correlated(300, 6, seed=1)
    order = np.random.default_rng(0).permutation(len(x))
    first = pca(x).points
    np.testing.assert_allclose(pca(x[order]).points, first[order], atol=1e-4)
    np.testing.assert_allclose(pca(-x).points, -first, atol=1e-4)


def separated_clusters(per_cluster: int = 60, dims: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, dims)) * 20
    labels = np.repeat(np.arange(3), per_cluster)
    return centres[labels] + rng.normal(size=(len(labels), dims)), labels


def test_tsne_separates_separated_clusters_and_reports_progress():
    x, labels = separated_clusters()
    reports = []
    result = tsne(x, perplexity=10, progress=lambda fraction, what: reports.append((fraction, what)))
    points = result.points
    assert points.shape == (len(x), 2) and result.explained is None
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    assert (labels[distances.argmin(axis=1)] == labels).all()  # every point's nearest neighbour is of its cluster
    centres = np.stack([points[labels == c].mean(axis=0) for c in range(3)])
    spread = max(np.linalg.norm(points[labels == c] - centres[c], axis=1).max() for c in range(3))
    between = min(np.linalg.norm(centres[a] - centres[b]) for a in range(3) for b in range(a + 1, 3))
    assert between > 2 * spread  # the clusters lie apart, farther than any cluster is wide
    fractions = [fraction for fraction, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) > 10
    assert "nearest neighbours" in reports[0][1] and "iteration 750 of 750" in reports[-1][1]


def test_tsne_starts_from_principal_components_of_wide_data():
    x, labels = separated_clusters(per_cluster=40, dims=120, seed=2)
    reports = []
    points = project(x, Method.TSNE, perplexity=8, progress=lambda f, what: reports.append(what)).points
    assert "reducing 120 dimensions to 50 by PCA" in reports[0]
    distances = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    assert (labels[distances.argmin(axis=1)] == labels).all()


def test_activations_that_are_not_finite_are_refused():
    x = correlated(50, 4)
    x[3, 1] = np.nan
    with pytest.raises(ConfigError, match="infinite or NaN"):
        project(x, Method.PCA)


@pytest.mark.parametrize("perplexity, points, message", [
    (1, 100, "between 2 and 100"), (150, 1000, "between 2 and 100"), (30, 90, "more than 90 points")])
def test_bad_perplexities_are_refused(perplexity, points, message):
    with pytest.raises(ConfigError, match=message):
        check_perplexity(perplexity, points)


def test_layers_in_forward_order():
    mlp = Model(ModelConfig(arch="mlp", hidden=(32, 16)), MNIST_SPEC)
    assert layer_shapes(mlp) == {INPUT: (784,), "hidden_0": (32,), "hidden_1": (16,), "logits": (10,)}
    assert last_hidden_layer(mlp) == "hidden_1"
    lenet = Model(ModelConfig(arch="lenet5"), MNIST_SPEC)
    assert list(layer_shapes(lenet)) == [INPUT, "pool1", "pool2", "fc1", "fc2", "logits"]
    assert layer_shapes(lenet)["pool2"] == (4, 4, 16) and last_hidden_layer(lenet) == "fc2"
    assert last_hidden_layer(Model(ModelConfig(arch="linear"), MNIST_SPEC)) == INPUT


@pytest.mark.parametrize("arch, layer", [("mlp", "hidden_0"), ("lenet5", "pool2"), ("lenet5", "logits")])
def test_batched_activations_equal_the_forward_pass(arch, layer):
    model = Model(ModelConfig(arch=arch, hidden=(24,)), MNIST_SPEC)
    params = model.init(seed_key(3))
    x = np.random.default_rng(0).random((BATCH + 37, 784), dtype=np.float32)  # a padded last batch
    expected = np.asarray(model.forward(params, x)[layer]).reshape(len(x), -1)
    np.testing.assert_allclose(activations(params, model, layer, x), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(activations(params, model, INPUT, x), x)


def test_an_unknown_layer_is_refused():
    model = Model(ModelConfig(arch="mlp", hidden=(8,)), MNIST_SPEC)
    with pytest.raises(ConfigError, match="has no layer 'conv1'"):
        activations(model.init(seed_key(0)), model, "conv1", np.zeros((2, 784), np.float32))


def test_pixel_statistics_match_numpy():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (500, 28, 28), dtype=np.uint8)
    labels = rng.choice([0, 1, 2, 4], 500)  # class 3 has no images
    stats = pixel_statistics(images, labels, 5)
    flat = images.reshape(500, -1) / 255
    for c in (0, 1, 2, 4):
        np.testing.assert_allclose(stats.class_means[c], flat[labels == c].mean(axis=0), rtol=1e-5, atol=1e-6)
    assert np.isnan(stats.class_means[3]).all()
    assert list(stats.class_counts) == [int((labels == c).sum()) for c in range(5)]
    np.testing.assert_allclose(stats.pixel_std, flat.std(axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(stats.histogram, np.bincount(images.ravel(), minlength=GREY_LEVELS))
    np.testing.assert_allclose(mean_difference(stats, 4, 1), flat[labels == 4].mean(0) - flat[labels == 1].mean(0),
                               atol=1e-5)


def test_pixel_statistics_want_uint8_images():
    with pytest.raises(ConfigError, match="uint8"):
        pixel_statistics(np.zeros((3, 4, 4), np.float32), np.zeros(3, int), 2)


def test_nearest_neighbours_match_a_numpy_brute_force():
    rng = np.random.default_rng(1)
    pool, queries = rng.random((700, 30), dtype=np.float32), rng.random((37, 30), dtype=np.float32)  # 37: padded
    found = nearest_neighbours(queries, pool, 5)
    distances = np.sqrt(((queries[:, None].astype(np.float64) - pool[None]) ** 2).sum(-1))
    expected = np.argsort(distances, axis=1)[:, :5]
    np.testing.assert_array_equal(found.indices, expected)
    np.testing.assert_allclose(found.distances, np.take_along_axis(distances, expected, axis=1), rtol=1e-4)


def test_neighbour_pool_scales_uint8_images_and_finds_an_exact_copy():
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (200, 8, 8), dtype=np.uint8)
    pool = neighbour_pool(images)
    assert pool.shape == (200, 64) and float(pool.max()) <= 1.0
    found = nearest_neighbours(np.asarray(pool)[[17, 3]], pool, 1)
    assert list(found.indices[:, 0]) == [17, 3]
    np.testing.assert_allclose(found.distances[:, 0], 0.0, atol=1e-2)  # |q|² - 2q·p + |p|² in float32: ~1e-5 of 21


def test_nearest_neighbour_accuracy_matches_numpy():
    rng = np.random.default_rng(3)
    pool, pool_labels = rng.random((400, 20), dtype=np.float32), rng.integers(0, 3, 400)
    queries, labels = rng.random((350, 20), dtype=np.float32), rng.integers(0, 3, 350)  # two progress batches
    distances = ((queries[:, None] - pool[None]) ** 2).sum(-1)
    expected = float((pool_labels[distances.argmin(axis=1)] == labels).mean())
    reports = []
    measured = nearest_neighbour_accuracy(queries, labels, pool, pool_labels, progress=reports.append)
    assert measured == pytest.approx(expected)
    assert reports[-1] == 1.0 and len(reports) == 2


def test_nearest_neighbours_refuse_bad_requests():
    pool = np.zeros((5, 4), np.float32)
    with pytest.raises(ConfigError, match="1 to 5 neighbours"):
        nearest_neighbours(np.zeros((1, 4)), pool, 6)
    with pytest.raises(ConfigError, match="3 pixels and the pool's images 4"):
        nearest_neighbours(np.zeros((1, 3)), pool, 1)

"""AppTest of the Embeddings page and the Data page's statistics, on the tiny synthetic MNIST."""

from __future__ import annotations

import numpy as np
import pytest
from test_other_datasets import array
from test_pages import SPLIT, app, charts, made_run, with_runs

from core.data.locate import load_mnist
from core.data.splits import make_splits
from core.explore.embeddings import activations, pca


@pytest.fixture
def data_env(monkeypatch, tiny_data_dir):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tiny_data_dir))
    return tiny_data_dir


def class_points(figure: dict) -> tuple[np.ndarray, np.ndarray]:
    """The map's points (x, y) and their test indices, from its per-class traces (the misclassified trace repeats
    some of them)."""
    traces = [t for t in figure["data"] if not t["name"].startswith("misclassified")]
    xy = np.concatenate([np.stack([array(t["x"]), array(t["y"])], axis=-1) for t in traces])
    indices = np.concatenate([[int(row[0]) for row in t["customdata"]] for t in traces])
    return xy, indices


def test_embeddings_without_runs_says_how_to_get_one(data_env):
    at = app("embeddings").run()
    assert not at.exception and not at.error
    assert "No trained run yet" in at.info[0].value


def test_a_pca_map_of_the_last_hidden_layer(data_env, tiny_mnist):
    run = made_run("mlp", data_env)
    at = with_runs(app("embeddings"), run).run()
    assert not at.exception and not at.error
    (figure,) = charts(at).values()
    xy, indices = class_points(figure)
    assert sorted(indices) == list(range(len(tiny_mnist.test_labels)))  # every test digit once
    splits = make_splits(load_mnist(data_env), SPLIT)
    expected = pca(activations(run.params, run.model, "hidden_0", splits.x_test[np.sort(indices)])).points
    np.testing.assert_allclose(xy[np.argsort(indices)], expected, rtol=1e-4, atol=1e-4)
    wrong = (run.evaluate(splits.x_test, splits.y_test).predictions != splits.y_test).sum()
    assert figure["data"][-1]["name"] == f"misclassified ({wrong:,})" and len(array(figure["data"][-1]["x"])) == wrong
    assert "of the variance" in figure["layout"]["xaxis"]["title"]["text"]
    assert list(at.selectbox(key="embeddings.layer").options) == [
        "input pixels (784 values)", "hidden_0 (20 values)", "logits (10 values)"]


def test_tsne_map_with_progress_is_computed_once(data_env):
    at = with_runs(app("embeddings"), made_run("mlp", data_env)).run()
    at.button_group(key="embeddings.method").set_value("tsne").run()
    at.slider(key="embeddings.perplexity").set_value(20).run()
    assert not at.exception and not at.error
    (figure,) = charts(at).values()
    assert figure["layout"]["xaxis"]["title"]["text"] == "t-SNE 1"
    kept = at.session_state["embeddings.projections"]
    assert [key[3:6] for key in kept] == [("hidden_0", "pca", None), ("hidden_0", "tsne", 30.0),
                                          ("hidden_0", "tsne", 20.0)]
    at.selectbox(key="embeddings.layer").set_value("input").run()
    at.selectbox(key="embeddings.layer").set_value("hidden_0").run()  # back: from the cache, not computed again
    assert len(at.session_state["embeddings.projections"]) == 4


@pytest.mark.parametrize("panels, titles", [
    ("input | last hidden layer", ["embedding.2.Input pixels", "embedding.2.Last hidden layer: fc2"]),
    ("at initialisation | trained", ["embedding.2.fc2 at initialisation", "embedding.2.fc2 trained"])])
def test_two_panels_side_by_side(data_env, panels, titles):
    """The run's weights are drawn from seed 5 and its config says seed 0: the initial panel is seed 0's network."""
    run = made_run("lenet5", data_env, seed=5)
    at = with_runs(app("embeddings"), run).run()
    at.selectbox(key="embeddings.panels").set_value(panels).run()
    assert not at.exception and not at.error
    found = charts(at)
    assert list(found) == titles
    (first, indices), (second, _) = (class_points(found[title]) for title in titles)
    assert not np.allclose(first, second)  # two different maps
    if panels.startswith("at initialisation"):
        x_test = make_splits(load_mnist(data_env), SPLIT).x_test[np.sort(indices)]
        initial = made_run("lenet5", data_env, seed=0)
        expected = pca(activations(initial.params, initial.model, "fc2", x_test)).points
        np.testing.assert_allclose(first[np.argsort(indices)], expected, rtol=1e-4, atol=1e-4)
    assert "pool2 (4×4×16, flattened: 256 values)" in at.selectbox(key="embeddings.layer").options


def test_softmax_regression_has_its_logits_beside_the_input(data_env):
    at = with_runs(app("embeddings"), made_run("linear", data_env)).run()
    at.selectbox(key="embeddings.panels").set_value("input | last hidden layer").run()
    assert not at.exception and not at.error
    assert list(charts(at)) == ["embedding.2.Input pixels", "embedding.2.No hidden layer: the logits"]


def test_selected_digits_are_listed_as_a_gallery(data_env):
    run = made_run("mlp", data_env)
    at = with_runs(app("embeddings"), run).run()
    assert "Click a point" in at.caption[-1].value
    (key,) = charts(at)
    figure = charts(at)[key]
    chosen = [row for trace in figure["data"][:2] for row in trace["customdata"][:3]]  # 3 digits of two classes
    at.session_state[key] = {"selection": {"points": [{"customdata": row} for row in chosen],
                                           "point_indices": [], "box": [], "lasso": []}}
    at.run()
    assert not at.exception
    assert f"**{len(chosen)}** selected" in at.markdown[-1].value
    (images,) = at.image
    assert [caption.split("#")[-1] for caption in images.captions] == [str(row[0]) for row in chosen]


def test_data_page_statistics(data_env, tiny_mnist):
    at = app().run()
    assert not at.exception and not at.error
    found = charts(at)
    assert {"stats_means", "stats_std", "stats_histogram", "stats_difference", "stats_neighbours"} <= set(found)
    flat = tiny_mnist.train_images.reshape(len(tiny_mnist.train_labels), -1) / 255
    means = [flat[tiny_mnist.train_labels == c].mean(axis=0).reshape(28, 28) for c in range(10)]
    np.testing.assert_allclose(array(found["stats_difference"]["data"][0]["z"]), means[3] - means[8], atol=1e-5)
    np.testing.assert_allclose(array(found["stats_means"]["data"][7]["z"]), means[7], atol=1e-5)
    np.testing.assert_array_equal(array(found["stats_histogram"]["data"][0]["y"]),
                                  np.bincount(tiny_mnist.train_images.ravel(), minlength=256))
    at.selectbox(key="stats_first").set_value(1).run()
    np.testing.assert_allclose(array(charts(at)["stats_difference"]["data"][0]["z"]), means[1] - means[8], atol=1e-5)


def test_nearest_training_images_and_the_nearest_neighbour_classifier(data_env, tiny_mnist):
    at = app().run()
    at.number_input(key="stats_test_index").set_value(7).run()
    train = tiny_mnist.train_images.reshape(len(tiny_mnist.train_labels), -1).astype(np.float64) / 255
    test = tiny_mnist.test_images.reshape(len(tiny_mnist.test_labels), -1).astype(np.float64) / 255
    distances = ((test[:, None] - train[None]) ** 2).sum(-1)
    titles = [a["text"] for a in charts(at)["stats_neighbours"]["layout"]["annotations"]]
    assert titles[0] == f"test #7: {tiny_mnist.test_labels[7]}"
    shown = [int(t.split(":")[0][1:]) for t in titles[1:]]  # "#123: 4 · 5.66"
    assert len(set(shown)) == 8  # these binary digits tie often: the distances, not the indices, are unique
    np.testing.assert_allclose(np.sqrt(distances[7, shown]), np.sqrt(np.sort(distances[7])[:8]), atol=1e-3)
    assert [t.split(" · ")[1] for t in titles[1:]] == [f"{d:.2f}" for d in np.sqrt(np.sort(distances[7])[:8])]
    at.button(key="stats_nn_button").click().run()
    assert not at.exception
    expected = (tiny_mnist.train_labels[distances.argmin(axis=1)] == tiny_mnist.test_labels).mean()
    metric = next(m for m in at.metric if m.label.startswith("Nearest-neighbour accuracy"))
    assert metric.value == f"{expected:.2%}" and "first 300 test digits" in metric.label

"""Model files: round trip, no pickles, and clear errors for wrong or tampered files."""

import io
import os
import zipfile

import jax
import numpy as np
import pytest

from core.data.spec import MNIST_SPEC, DataSpec
from core.errors import ModelFileError
from core.networks.base import Model, ModelConfig, seed_key
from core.store import checkpoint
from core.training.config import RunConfig


@pytest.fixture
def saved(tmp_path):
    config = RunConfig(model=ModelConfig("mlp", hidden=(16, 8), activation="sigmoid"))
    params = Model(config.model, MNIST_SPEC).init(seed_key(3))
    return checkpoint.save_model(tmp_path / "model.npz", params, config, MNIST_SPEC), params, config


def test_round_trip_gives_same_predictions(saved):
    path, params, config = saved
    loaded, loaded_config, spec = checkpoint.load_model(path)
    assert loaded_config == config and spec == MNIST_SPEC
    x = np.random.default_rng(0).random((5, 784), np.float32)
    model = Model(config.model, spec)
    np.testing.assert_array_equal(model.apply(loaded, x), model.apply(params, x))
    from_bytes, _, _ = checkpoint.load_model(path.read_bytes())
    jax.tree_util.tree_map(np.testing.assert_array_equal, from_bytes, loaded)
    with np.load(path, allow_pickle=False) as npz:  # plain arrays only: loadable without pickle
        assert "hidden_1/w" in npz.files and npz["hidden_1/w"].shape == (16, 8)


def test_the_data_description_travels_with_the_model(tmp_path):
    letters = DataSpec("letters", 16, 16, 1, tuple("ABCD"), "letter")
    config = RunConfig(model=ModelConfig("mlp", hidden=(8,)))
    params = Model(config.model, letters).init(seed_key(0))
    assert params["hidden_0"]["w"].shape == (256, 8) and params["output"]["w"].shape == (8, 4)
    path = checkpoint.save_model(tmp_path / "l.npz", params, config, letters)
    loaded, loaded_config, spec = checkpoint.load_model(path)
    assert (loaded_config, spec) == (config, letters)
    jax.tree_util.tree_map(np.testing.assert_array_equal, loaded, params)
    with pytest.raises(ModelFileError, match=r"hidden_0/w is \(256, 8\) but the config needs \(784, 8\)"):
        checkpoint.load_model(checkpoint.model_bytes(params, config, MNIST_SPEC))  # the wrong data for these weights


def test_a_file_written_before_the_data_description_was_stored_is_an_mnist_model(saved):
    path, params, config = saved
    loaded, loaded_config, spec = checkpoint.load_model(_rewrite(path, lambda a: a.pop(checkpoint.DATA_KEY)))
    assert (loaded_config, spec) == (config, MNIST_SPEC)
    jax.tree_util.tree_map(np.testing.assert_array_equal, loaded, params)
    with pytest.raises(ModelFileError, match="configuration is invalid"):
        checkpoint.load_model(_rewrite(path, lambda a: a.__setitem__(checkpoint.DATA_KEY, np.array('{"name": "x"}'))))


def _rewrite(path, change):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    change(arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_shapes_not_matching_config(saved):
    path, _, _ = saved
    data = _rewrite(path, lambda a: a.__setitem__("hidden_0/w", np.zeros((784, 17), np.float32)))
    with pytest.raises(ModelFileError, match=r"hidden_0/w is \(784, 17\) but the config needs \(784, 16\)"):
        checkpoint.load_model(data)
    data = _rewrite(path, lambda a: a.pop("output/b"))
    with pytest.raises(ModelFileError, match="missing output/b"):
        checkpoint.load_model(data)


def test_tampered_and_foreign_files(saved, tmp_path):
    path, _, _ = saved
    with pytest.raises(ModelFileError, match="the uploaded file is not a valid .npz file"):
        checkpoint.load_model(b"hello, this is not a zip")
    with pytest.raises(ModelFileError, match="the uploaded file is not a valid .npz file"):
        checkpoint.load_model(path.read_bytes()[:300])
    with pytest.raises(ModelFileError, match="no run configuration"):
        checkpoint.load_model(_rewrite(path, lambda a: a.pop(checkpoint.CONFIG_KEY)))
    with pytest.raises(ModelFileError, match="configuration is invalid"):
        checkpoint.load_model(_rewrite(
            path, lambda a: a.__setitem__(checkpoint.CONFIG_KEY, np.array('{"model": {"arch": "vgg"}}'))))
    with pytest.raises(ModelFileError, match="not finite"):
        checkpoint.load_model(_rewrite(path, lambda a: a["output/w"].__setitem__((0, 0), np.nan)))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **{checkpoint.CONFIG_KEY: np.array(["x", None], dtype=object)})
    with pytest.raises(ModelFileError):
        checkpoint.load_model(pickled)
    assert zipfile.is_zipfile(path)


def test_garbage_model_file_is_named_and_never_suggests_unpickling(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_text("hello, this is a text file\n")
    with pytest.raises(ModelFileError, match="is not a valid .npz file") as err:
        checkpoint.load_model(garbage)
    assert str(garbage) in str(err.value) and "pickle" not in str(err.value)
    with pytest.raises(ModelFileError, match="cannot be read"):
        checkpoint.load_model(tmp_path / "absent.npz")


def test_failed_save_leaves_no_part_file(saved, tmp_path):
    _, params, config = saved
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(ModelFileError, match=f"Cannot save the model to {folder}"):
        checkpoint.save_model(folder, params, config, MNIST_SPEC)  # the rename onto a folder fails
    assert list(folder.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["a-folder", "model.npz"]


def test_a_file_in_the_way_of_the_folder_is_a_model_file_error(saved, tmp_path):
    _, params, config = saved
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ModelFileError, match="Cannot save the model to .*a-file/m.npz"):
        checkpoint.save_model(tmp_path / "a-file" / "m.npz", params, config, MNIST_SPEC)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_saved_file_has_ordinary_permissions(saved, tmp_path, umask):
    _, params, config = saved
    previous = os.umask(umask)
    try:
        path = checkpoint.save_model(tmp_path / "m.npz", params, config, MNIST_SPEC)
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask

"""The real MNIST exported as folders of PNG files trains as well as from its IDX files (skipped when MNIST is not
available): the folder reader loses nothing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.data.locate import load_mnist
from core.data.user_data import load_image_folder
from core.networks.base import ModelConfig
from core.training.config import RunConfig, TrainConfig
from tests.test_real_mnist import train_and_test


def export_png_folders(mnist, root) -> None:
    """train/DIGIT/NNNNN.png and test/DIGIT/NNNNN.png, numbered in the IDX files' order."""
    for part, images, labels in (("train", mnist.train_images, mnist.train_labels),
                                 ("test", mnist.test_images, mnist.test_labels)):
        for digit in range(10):
            (root / part / str(digit)).mkdir(parents=True)
        for i, (image, label) in enumerate(zip(images, labels)):
            Image.fromarray(image).save(root / part / str(label) / f"{i:05d}.png", compress_level=1)


@pytest.fixture(scope="module")
def mnist(real_mnist_dir):
    return load_mnist(real_mnist_dir)


def test_mnist_as_png_folders_reaches_the_idx_accuracy(mnist, tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist-png")
    export_png_folders(mnist, root)
    folders = load_image_folder(root)
    assert folders.skipped == () and folders.spec.class_names == mnist.spec.class_names
    for images, labels, original, original_labels in (
            (folders.train_images, folders.train_labels, mnist.train_images, mnist.train_labels),
            (folders.test_images, folders.test_labels, mnist.test_images, mnist.test_labels)):
        order = np.argsort(original_labels, kind="stable")  # the folders hold each digit's images in file order
        np.testing.assert_array_equal(images, original[order])
        np.testing.assert_array_equal(labels, original_labels[order])
    config = RunConfig(model=ModelConfig("mlp", (300,), "tanh"),
                       train=TrainConfig(optimizer="adam", learning_rate=1e-3, batch_size=50, epochs=3))
    from_idx, from_png = train_and_test(mnist, config), train_and_test(folders, config)
    print(f"test accuracy from IDX {from_idx.test_accuracy:.4f}, from PNG folders {from_png.test_accuracy:.4f}")
    assert abs(from_png.test_accuracy - from_idx.test_accuracy) <= 0.005

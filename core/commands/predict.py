"""`python -m core predict`: what a saved model says of images of handwritten digits."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from core.cli import print_json
from core.data.images import Ink, as_drawing, read_grey
from core.data.preprocess import prepare
from core.data.spec import describe_data
from core.data.user_data import read_csv_pixels
from core.errors import ConfigError, DigitLabError
from core.networks.base import Model
from core.store.checkpoint import load_model
from core.training.evaluation import probabilities

HELP = "classify image files (PNG, JPEG, ...) of handwritten digits with a saved model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="image files, each holding one digit")
    parser.add_argument("--csv", metavar="FILE", help="instead of image files: a CSV of images in Kaggle's layout "
                                                      "(its unlabelled test.csv), predicted as an ImageId,Label CSV")
    parser.add_argument("--model", required=True, metavar="FILE", help="a model file saved by train --save or the app")
    parser.add_argument("--ink", choices=list(Ink), default=Ink.AUTO,
                        help="dark ink on light paper or light ink on a dark ground (default: told from the border)")
    parser.add_argument("--json", action="store_true", help="one JSON object per image instead of a line")


def run(args) -> int:
    if bool(args.images) == bool(args.csv):
        raise ConfigError("Give image files or --csv FILE (one of the two).")
    params, config, spec = load_model(args.model)
    model = Model(config.model, spec)
    if args.csv:
        return predict_csv(args.csv, params, model)
    prepared = []  # (path, image) for the files that could be read
    for path in args.images:
        try:
            prepared.append((path, prepare(as_drawing(read_grey(path), Ink(args.ink)), spec).image))
        except DigitLabError as exc:
            print(f"error: {exc}", file=sys.stderr)
    if prepared:  # one compiled pass for them all
        every = probabilities(params, model, np.stack([image for _, image in prepared])).astype(np.float64)
        for (path, _), probs in zip(prepared, every):
            report(path, probs, spec.class_names, args.json)
    return 2 if len(prepared) < len(args.images) else 0


def predict_csv(path: str, params, model: Model) -> int:
    """Kaggle's submission: `ImageId,Label` for each readable row (numbered from 1, as Kaggle does); the rows that
    could not be read are named on stderr."""
    images, _, problems = read_csv_pixels(path, labelled=False)
    if images.shape[1:] != model.spec.image_shape[:2] or model.spec.channels != 1:
        raise ConfigError(f"{path} holds {images.shape[1]}×{images.shape[2]} grey images; the model takes "
                          f"{describe_data(model.spec)}.")
    every = probabilities(params, model, images.astype(np.float32) / 255)
    print("ImageId,Label")
    for image_id, probs in enumerate(every, start=1):
        print(f"{image_id},{model.spec.class_names[int(np.argmax(probs))]}")
    for problem in problems:
        print(f"error: {problem} (not predicted)", file=sys.stderr)
    return 2 if problems else 0


def report(path: str, probs: np.ndarray, names: tuple[str, ...], as_json: bool) -> None:
    """One line, or one JSON object, for an image's class probabilities."""
    best, runner_up = (int(c) for c in np.argsort(-probs, kind="stable")[:2])
    if as_json:
        print_json({"image": path, "prediction": names[best],
                    "probabilities": dict(zip(names, probs.round(6).tolist()))})
    else:
        print(f"{path}: {names[best]} ({probs[best]:.1%}; next {names[runner_up]} {probs[runner_up]:.1%})")

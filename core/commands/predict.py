"""`python -m core predict`: what a saved model says of images of handwritten digits."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from core.cli import print_json
from core.data.images import Ink, as_drawing, read_grey
from core.data.preprocess import prepare
from core.errors import DigitLabError
from core.networks.base import Model
from core.store.checkpoint import load_model
from core.training.evaluation import probabilities

HELP = "classify image files (PNG, JPEG, ...) of handwritten digits with a saved model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files, each holding one digit")
    parser.add_argument("--model", required=True, metavar="FILE", help="a model file saved by train --save or the app")
    parser.add_argument("--ink", choices=list(Ink), default=Ink.AUTO,
                        help="dark ink on light paper or light ink on a dark ground (default: told from the border)")
    parser.add_argument("--json", action="store_true", help="one JSON object per image instead of a line")


def run(args) -> int:
    params, config, spec = load_model(args.model)
    model = Model(config.model, spec)
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


def report(path: str, probs: np.ndarray, names: tuple[str, ...], as_json: bool) -> None:
    """One line, or one JSON object, for an image's class probabilities."""
    best, runner_up = (int(c) for c in np.argsort(-probs, kind="stable")[:2])
    if as_json:
        print_json({"image": path, "prediction": names[best],
                    "probabilities": dict(zip(names, probs.round(6).tolist()))})
    else:
        print(f"{path}: {names[best]} ({probs[best]:.1%}; next {names[runner_up]} {probs[runner_up]:.1%})")

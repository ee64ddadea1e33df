"""`python -m core predict`: what a saved model says of images of handwritten digits."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from core.cli import print_json
from core.errors import DigitLabError
from core.networks.base import Model
from core.playground.images import Ink, as_drawing, read_grey
from core.playground.preprocess import prepare
from core.store.checkpoint import load_model

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
    failed = False
    for path in args.images:
        try:
            image = prepare(as_drawing(read_grey(path), Ink(args.ink)), spec).image
        except DigitLabError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed = True
            continue
        probabilities = np.asarray(model.forward(params, image.reshape(1, -1))["probabilities"][0], np.float64)
        ranked = np.argsort(-probabilities, kind="stable")
        best = int(ranked[0])
        if args.json:
            print_json({"image": path, "prediction": spec.class_names[best],
                        "probabilities": dict(zip(spec.class_names, probabilities.round(6).tolist()))})
        else:
            runner_up = int(ranked[1])
            print(f"{path}: {spec.class_names[best]} ({probabilities[best]:.1%}; next "
                  f"{spec.class_names[runner_up]} {probabilities[runner_up]:.1%})")
    return 2 if failed else 0

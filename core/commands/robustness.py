"""`python -m core robustness`: a saved model's test accuracy as the test images are corrupted ever more."""

from __future__ import annotations

import argparse

import numpy as np

from core.cli import ProgressLine, add_data_arguments, load_data, print_json
from core.data.spec import describe_data
from core.data.splits import to_features
from core.errors import ConfigError
from core.networks.base import Model, Params
from core.playground.robustness import CORRUPTION_LABELS, SEVERITIES, Corruption, robustness_curve
from core.store.checkpoint import load_model

HELP = "test accuracy under noise, rotation, shift, blur, erasing, thicker or thinner strokes and low contrast"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_arguments(parser)
    parser.add_argument("--model", required=True, metavar="FILE", help="a model file saved by train --save or the app")
    parser.add_argument("--corruption", choices=list(Corruption), action="append",
                        help="repeatable (default: all of them)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def model_and_test_set(args) -> tuple[Model, Params, np.ndarray, np.ndarray]:
    """The saved model and the test set of the data it was trained on (a ConfigError for other data)."""
    params, config, spec = load_model(args.model)
    data = load_data(args)
    if data.spec != spec:
        raise ConfigError(f"{args.model} was trained on {describe_data(spec)}; the data found is "
                          f"{describe_data(data.spec)}.")
    return Model(config.model, spec), params, to_features(data.test_images), data.test_labels.astype(np.int32)


def run(args) -> int:
    model, params, x, y = model_and_test_set(args)
    corruptions = args.corruption or list(Corruption)
    curves = {}
    with ProgressLine() as line:
        for i, corruption in enumerate(corruptions):
            curves[corruption] = robustness_curve(
                model, params, x, y, corruption,
                progress=lambda done, i=i, c=corruption: line.show(f"{c}: {100 * (i + done) / len(corruptions):5.1f}%"))
    if args.json:
        print_json({"network": model.describe(), "severities": list(SEVERITIES),
                    "accuracy": {str(c): curve for c, curve in curves.items()}})
        return 0
    severities = ", ".join(f"{s:g}" for s in SEVERITIES)
    print(f"{model.describe()}, {len(y):,} test images; accuracy at severity {severities}")
    for corruption, curve in curves.items():
        print(f"{corruption:<13} " + " ".join(f"{a:7.2%}" for a in curve) + f"   {CORRUPTION_LABELS[corruption]}")
    return 0

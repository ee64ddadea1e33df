"""`python -m core attack`: a saved model's test accuracy when every test image is attacked with FGSM or PGD."""

from __future__ import annotations

import argparse

from core.cli import ProgressLine, add_data_arguments, joined, number_list_type, positive_int, print_json
from core.commands.robustness import model_and_test_set
from core.errors import ConfigError
from core.playground.attacks import accuracy_under_attack

HELP = "test accuracy against the attack size ε (FGSM, or PGD with --steps)"
DEFAULT_EPS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_arguments(parser)
    parser.add_argument("--model", required=True, metavar="FILE", help="a model file saved by train --save or the app")
    parser.add_argument("--eps", type=number_list_type(float, "ε values"), action="append", metavar="E[,E...]",
                        help="attack sizes, at most this much per pixel of [0, 1] "
                             f"(default {','.join(map(str, DEFAULT_EPS))})")
    parser.add_argument("--steps", type=positive_int, default=1,
                        help="1: FGSM (default); more: PGD with this many steps")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args) -> int:
    epsilons = joined(args.eps) or DEFAULT_EPS
    if min(epsilons) < 0:
        raise ConfigError("ε values are 0 or more.")
    model, params, x, y = model_and_test_set(args)
    with ProgressLine() as line:
        accuracies = accuracy_under_attack(model, params, x, y, list(epsilons), steps=args.steps,
                                           progress=lambda done: line.show(f"attacking: {100 * done:5.1f}%"))
    method = "FGSM" if args.steps == 1 else f"PGD, {args.steps} steps"
    if args.json:
        print_json({"network": model.describe(), "method": method, "eps": list(epsilons), "accuracy": accuracies})
        return 0
    print(f"{model.describe()}, {method}, {len(y):,} test images")
    print(f"{'ε':>6} {'accuracy':>9}")
    for eps, accuracy in zip(epsilons, accuracies):
        print(f"{eps:>6g} {accuracy:>9.2%}")
    return 0

"""`python -m core gradcheck`: the hand-derived gradient against central differences, for every step size h."""

from __future__ import annotations

import argparse
import sys

from core.cli import ProgressLine, add_data_arguments, print_json, seed, terminal_progress
from core.data.locate import load_mnist
from core.data.splits import SplitConfig, make_splits
from core.errors import ConfigError
from core.lab.backprop import BUGS, HAND_ACTIVATIONS, hand_networks, tensor_label
from core.lab.gradient_check import DTYPES, PASS_RELATIVE_ERROR, gradient_check
from core.networks.base import Model, ModelConfig, seed_key
from core.store.checkpoint import load_model

HELP = "check the hand-derived gradient against finite differences for h = 1 ... 1e-9"
EXIT_STATUS = ("exit status: 0 when the check agrees, or when it disagrees because of a planted --bug; 1 when it "
               "disagrees with no bug planted (the hand-derived gradient is wrong); 2 for bad flags or data")


# the fresh network checked unless --arch, --hidden or --activation say otherwise
DEFAULT_ARCH, DEFAULT_HIDDEN, DEFAULT_ACTIVATION = "linear", 30, "tanh"


def _weights(text: str) -> int | None:
    if text == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--weights takes 'all' or a number, got '{text}'") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXIT_STATUS
    add_data_arguments(parser, any_data=False)  # MNIST's (the course's setups)
    parser.add_argument("--arch", choices=hand_networks(), help=f"default {DEFAULT_ARCH}")
    parser.add_argument("--hidden", type=int, help=f"hidden width of the MLP (default {DEFAULT_HIDDEN})")
    parser.add_argument("--activation", choices=HAND_ACTIVATIONS, help=f"default {DEFAULT_ACTIVATION}")
    parser.add_argument("--model", metavar="PATH", help="check a saved model (.npz) instead of a fresh one")
    parser.add_argument("--weights", type=_weights, default=None, metavar="all|K",
                        help="check every weight (default) or a random sample of about K")
    parser.add_argument("--dtype", choices=DTYPES, default="float64", help="precision of the finite differences")
    parser.add_argument("--bug", choices=list(BUGS), help="plant a typical mistake in the hand gradient")
    parser.add_argument("--batch-size", type=int, default=100, help="training images in the batch (default 100)")
    parser.add_argument("--seed", type=seed, default=0, help="0 to 2**32-1 (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args) -> int:
    if args.batch_size < 1:
        raise ConfigError("The batch needs at least one image.")
    if args.model:
        params, run_config, spec = load_model(args.model)
        model = Model(run_config.model, spec)
        for flag, value in (("--arch", args.arch), ("--hidden", args.hidden), ("--activation", args.activation)):
            if value is not None:
                print(f"note: {flag} has no effect with --model; the saved network is {model.describe()}.",
                      file=sys.stderr)
    else:
        hidden = DEFAULT_HIDDEN if args.hidden is None else args.hidden
        config = ModelConfig(args.arch or DEFAULT_ARCH, (hidden,), args.activation or DEFAULT_ACTIVATION)
    splits = make_splits(load_mnist(args.data_dir, progress=terminal_progress), SplitConfig(val_size=0, seed=args.seed))
    if not args.model:
        model = Model(config, splits.spec)
        params = model.init(seed_key(args.seed))
    if args.batch_size > len(splits.y_train):
        raise ConfigError(f"The batch size ({args.batch_size:,}) is larger than the training set "
                          f"({len(splits.y_train):,} images).")
    x, y = splits.x_train[: args.batch_size], splits.y_train[: args.batch_size]

    with ProgressLine() as line:
        check = gradient_check(params, x, y, model, weights=args.weights, bug=args.bug, dtypes=(args.dtype,),
                               seed=args.seed, progress=lambda done, text: line.show(f"{100 * done:5.1f}% {text}"))
    status = 0 if check.passed or args.bug else 1
    if args.json:
        print_json(check.to_dict())
        return status
    best = check.best(args.dtype)
    bug = f", planted bug '{args.bug}'" if args.bug else ""
    print(f"{model.describe()}: {len(check.indices):,} weights, batch of {len(y)}, {args.dtype}{bug}")
    print(f"{'h':>7} {'total |error|':>14} {'max |error|':>12} {'max rel error':>14} {'rel error':>10}")
    for p in check.points:
        mark = "  <- best h" if p is best else ""
        print(f"{p.h:>7.0e} {p.total_abs_error:>14.3e} {p.max_abs_error:>12.3e} {p.max_rel_error:>14.3e} "
              f"{p.rel_error:>10.3e}{mark}")
    verdict = "agrees with" if check.passed else "DISAGREES with"
    name, error = check.worst_tensor()
    print(f"the analytic gradient {verdict} the finite differences (worst tensor {tensor_label(name, model)}: "
          f"relative error {error:.2e} at h = {best.h:.0e}; threshold {PASS_RELATIVE_ERROR[args.dtype]:.0e})")
    return status

"""`python -m core backprop-timing`: time the ways to compute a gradient as batch size and hidden width grow."""

from __future__ import annotations

import argparse

from core.cli import ProgressLine, add_data_arguments, number_list_type, print_json, terminal_progress
from core.data.locate import load_mnist
from core.data.splits import SplitConfig, make_splits
from core.errors import ConfigError
from core.lab.backprop import HAND_ACTIVATIONS
from core.lab.backprop_timing import (
    FIXED_BATCH,
    FIXED_HIDDEN,
    METHODS,
    MIN_SECONDS,
    speedups,
    time_methods,
)
from core.networks.base import ModelConfig

HELP = "time hand backprop, jax.grad, a naive loop and finite differences on a one-hidden-layer MLP"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_arguments(parser, any_data=False)  # MNIST's (the course's setups)
    parser.add_argument("--batch-sizes", type=number_list_type(int, "batch sizes"), default=(10, 100, 1000),
                        help=f"batch sizes to time, each at hidden width {FIXED_HIDDEN}; at most the number of "
                             "training images (default 10,100,1000)")
    parser.add_argument("--hidden-widths", type=number_list_type(int, "hidden widths"), default=(16, 64, 256),
                        help=f"hidden widths to time, each at batch size {FIXED_BATCH} (default 16,64,256)")
    parser.add_argument("--activation", choices=HAND_ACTIVATIONS, default=HAND_ACTIVATIONS[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args) -> int:
    if not args.batch_sizes or not args.hidden_widths or min(args.batch_sizes + args.hidden_widths) < 1:
        raise ConfigError("Give at least one batch size and one hidden width, each 1 or more.")
    for width in args.hidden_widths:  # checked before any timing, not when the timing reaches it
        ModelConfig("mlp", (width,), args.activation)
    splits = make_splits(load_mnist(args.data_dir, progress=terminal_progress), SplitConfig(val_size=0))
    with ProgressLine() as line:
        rows = time_methods(splits.x_train, splits.y_train, splits.spec, args.batch_sizes, args.hidden_widths,
                            activation=args.activation, progress=lambda done, text: line.show(f"timing {text}"))
    ratios = speedups(rows)
    if args.json:
        print_json({"rows": [vars(r) for r in rows],
                    "speedup_hand_over_naive": [{"batch_size": b, "hidden": h, "speedup": s}
                                                for (b, h), s in ratios.items()]})
        return 0
    print(f"each method called until its calls add up to {MIN_SECONDS} s; run s is the median call")
    print(f"{'method':<58} {'batch':>6} {'hidden':>6} {'run s':>11} {'calls':>6} {'compile s':>27}  how")
    for r in rows:
        print(f"{METHODS[r.method]:<58} {r.batch_size:>6} {r.hidden:>6} {r.seconds:>11.3e} {r.calls:>6} "
              f"{r.compile_text():>27}  {r.how_measured()}")
    print("speed-up of the hand-vectorised gradient over the naive loop:")
    for (b, h), s in ratios.items():
        print(f"  batch {b:>5}, hidden {h:>4}: {s:,.0f}x")
    return 0

"""`python -m core train`: train one network from flags, with a live progress line and a final summary."""

from __future__ import annotations

import argparse
import sys

from core.checkpoint import save_model
from core.cli import add_data_arguments, add_history_argument, print_json, save_to_history, terminal_progress
from core.data import SplitConfig, load_mnist, make_splits
from core.models import ACTIVATIONS, ARCHITECTURES, INITS, ModelConfig
from core.runs import Run
from core.train import OPTIMIZERS, SCHEDULES, RunConfig, TrainConfig, train

HELP = "train a network and report its validation and test accuracy"
MODEL, SPLIT, TRAIN = ModelConfig(), SplitConfig(), TrainConfig()


def _widths(text: str) -> list[int]:
    try:
        return [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"hidden widths must be integers, got '{text}'") from None


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags for every choice of a RunConfig; defaults are the dataclasses' own."""
    add_data_arguments(parser)
    m = parser.add_argument_group("network")
    m.add_argument("--arch", choices=list(ARCHITECTURES), default=MODEL.arch)
    m.add_argument("--hidden", type=_widths, action="append", metavar="W[,W...]",
                   help=f"MLP hidden widths, repeatable or comma-separated (default {','.join(map(str, MODEL.hidden))})")
    m.add_argument("--activation", choices=list(ACTIVATIONS), default=MODEL.activation)
    m.add_argument("--init", choices=INITS, default=MODEL.init)
    m.add_argument("--init-std", type=float, default=MODEL.init_std, help="std of the 'normal' init")
    t = parser.add_argument_group("training")
    t.add_argument("--optimizer", choices=OPTIMIZERS, default=TRAIN.optimizer)
    t.add_argument("--lr", type=float, default=TRAIN.learning_rate, help="learning rate")
    t.add_argument("--momentum", type=float, default=TRAIN.momentum)
    t.add_argument("--nesterov", action="store_true")
    t.add_argument("--schedule", choices=SCHEDULES, default=None, help="default: exponential if --decay is given")
    t.add_argument("--decay", type=float, default=None, help=f"learning-rate factor per epoch (e.g. {TRAIN.decay})")
    t.add_argument("--weight-decay", type=float, default=TRAIN.weight_decay, help="L2 coefficient")
    t.add_argument("--batch-size", type=int, default=TRAIN.batch_size)
    t.add_argument("--epochs", type=int, default=TRAIN.epochs)
    t.add_argument("--eval-every", type=int, default=TRAIN.eval_every, help="also validate every N steps")
    t.add_argument("--seed", type=int, default=TRAIN.seed)
    d = parser.add_argument_group("data split")
    d.add_argument("--train-size", type=int, help="train on this many images (stratified)")
    d.add_argument("--per-class", type=int, help="train on this many images of each digit")
    d.add_argument("--val-size", type=int, default=SPLIT.val_size)


def run_config_from_args(args: argparse.Namespace) -> RunConfig:
    hidden = tuple(w for group in args.hidden for w in group) if args.hidden else MODEL.hidden
    schedule = args.schedule or ("exponential" if args.decay is not None else "constant")
    return RunConfig(
        model=ModelConfig(args.arch, hidden, args.activation, args.init, args.init_std),
        data=SplitConfig(args.val_size, args.train_size, args.per_class, args.seed),
        train=TrainConfig(
            optimizer=args.optimizer, learning_rate=args.lr, momentum=args.momentum, nesterov=args.nesterov,
            schedule=schedule, decay=TRAIN.decay if args.decay is None else args.decay,
            weight_decay=args.weight_decay, batch_size=args.batch_size, epochs=args.epochs, seed=args.seed,
            eval_every=args.eval_every,
        ),
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)
    parser.add_argument("--save", metavar="PATH", help="write the trained model (.npz, no pickles) here")
    add_history_argument(parser)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of results")


def _progress_line(run: Run) -> str:
    last = run.history[-1]
    val = next((r["val_accuracy"] for r in reversed(run.history) if r["val_accuracy"] is not None), None)
    val_text = f"  val acc {val:.4f}" if val is not None else ""
    return (f"\repoch {last['epoch']:6.2f}/{run.config.train.epochs}  step {last['step']}  "
            f"loss {last['train_loss']:.4f}  acc {last['train_accuracy']:.4f}{val_text}  "
            f"{last['samples_per_second']:,.0f} samples/s")


def run(args) -> int:
    config = run_config_from_args(args)
    mnist = load_mnist(args.data_dir, progress=terminal_progress)
    splits = make_splits(mnist, config.data)
    result = Run(name=config.model.describe(), config=config)
    print(f"{config.model.describe()} on {len(splits.y_train)} images; compiling...", file=sys.stderr, flush=True)
    try:
        for progress in train(config, splits):
            result.record(progress)
            print(_progress_line(result), end="", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print("\nstopped: keeping the parameters trained so far", file=sys.stderr)
    print(file=sys.stderr)
    result.finish(splits)
    if result.diverged:
        print(f"{result.status}: the loss became NaN/Inf; try a lower learning rate.", file=sys.stderr)
    else:
        print(f"validation accuracy {result.val_accuracy if result.val_accuracy is not None else float('nan'):.4f}  "
              f"test accuracy {result.test_accuracy:.4f}  ({result.train_seconds:.1f} s training, "
              f"{result.compile_seconds:.1f} s compiling)", file=sys.stderr)
    if args.save and result.params is not None:
        print(f"saved to {save_model(args.save, result.params, config)}", file=sys.stderr)
    if not args.no_history:
        save_to_history([result])
    if args.json:
        summary = result.summary()
        print_json({
            "test_accuracy": summary["test_accuracy"], "val_accuracy": summary["val_accuracy"],
            "epochs": summary["epochs"], "train_seconds": summary["train_seconds"],
            "compile_seconds": summary["compile_seconds"], "samples_per_second": summary["samples_per_second"],
            "status": result.status, "run_id": result.run_id, "config": config.to_dict(),
        })
    return 1 if result.diverged else 0

"""`python -m core sweep`: train variants of one network at once (learning rate × momentum × seed)."""

from __future__ import annotations

import argparse
import sys

from core.cli import (
    ProgressLine,
    StopRequest,
    add_history_argument,
    joined,
    load_data,
    number_list_type,
    open_history,
    print_json,
    save_to_history,
)
from core.commands.train import (
    TRAIN,
    add_run_arguments,
    fitted_to,
    ignored_flag_notes,
    run_config_from_args,
)
from core.data.splits import make_splits
from core.experiments.sweep import MAX_VARIANTS, SweepConfig, run_name, train_sweep
from core.networks.base import Model
from core.store.groups import GroupCheckpoints
from core.training.config import Optimizer
from core.training.drive import drive
from core.training.runs import Run, ranked_by_validation
from core.training.status import RunStatus

HELP = f"train up to {MAX_VARIANTS} variants at once, sharing the batches, and compare them"


def add_arguments(parser) -> None:
    add_run_arguments(parser)
    parser.conflict_handler = "resolve"  # --lr and --momentum take lists here
    s = parser.add_argument_group("sweep")
    s.add_argument("--lr", type=number_list_type(float, "learning rates"), action="append", metavar="LR[,LR...]",
                   help=f"learning rates to sweep, repeatable or comma-separated (default {TRAIN.learning_rate})")
    s.add_argument("--momentum", type=number_list_type(float, "momenta"), action="append", metavar="M[,M...]",
                   help=f"momenta to sweep (with --optimizer momentum; default {TRAIN.momentum})")
    s.add_argument("--seeds", type=number_list_type(int, "seeds"), action="append", metavar="S[,S...]",
                   help="initialisation seeds to sweep")
    s.add_argument("--mode", choices=("auto", "vmapped", "sequential"), default="auto",
                   help="vmapped: one program for all variants; sequential: one variant after another each chunk")
    parser.add_argument("--json", action="store_true", help="one JSON line per variant")
    add_history_argument(parser)


def run(args) -> int:
    rates, momenta, seeds = joined(args.lr) or (TRAIN.learning_rate,), joined(args.momentum), joined(args.seeds)
    first_momentum = momenta[0] if momenta else None
    base = run_config_from_args(argparse.Namespace(**{**vars(args), "lr": rates[0], "momentum": first_momentum}))
    SweepConfig(base, rates, momenta, seeds)  # its settings checked before the data is loaded
    for note in ignored_flag_notes(args):
        print(note, file=sys.stderr)
    data = load_data(args)
    base = fitted_to(base, args, data)
    variants = SweepConfig(base, rates, momenta, seeds).variants()
    splits = make_splits(data, base.data)
    runs = [Run(name=run_name(v, splits.spec), config=v, spec=splits.spec) for v in variants]
    vmapped = {"auto": None, "vmapped": True, "sequential": False}[args.mode]
    checkpoints = GroupCheckpoints(None if args.no_history else open_history())
    print(f"{len(variants)} variants of {Model(base.model, splits.spec).describe()} "
          f"on {len(splits.y_train)} images; compiling...",
          file=sys.stderr, flush=True)

    def record(records: list) -> None:
        for run_, progress in zip(runs, records):
            if progress is not None:
                run_.record(progress)
                checkpoints(run_)  # in the history as it trains: a killed process leaves it there, interrupted

    def progress_text() -> str:  # of the furthest variant (the first may have diverged)
        last = max((run_.history[-1] for run_ in runs if run_.history), key=lambda h: h["step"])
        return f"epoch {last['epoch']:6.2f}/{base.train.epochs}  step {last['step']}"

    with StopRequest() as stop:  # held until the stopped variants are evaluated and in the history
        with ProgressLine() as line:
            drive(train_sweep(variants, splits, vmapped=vmapped), record=record,
                  show=lambda _: line.show(progress_text()), stop_requested=lambda: stop.requested)
            checkpoints.wait()
        for run_ in runs:
            run_.finish(splits)
        report(runs, args)
    return stop.exit_status if any(run_.status is RunStatus.STOPPED for run_ in runs) else 0


def report(runs: list[Run], args) -> None:
    """The variants, best validation accuracy first (a table, or JSON lines), then recorded in the history."""
    for run_ in ranked_by_validation(runs):
        if args.json:
            tc = run_.config.train
            print_json({"variant": run_.name, "learning_rate": tc.learning_rate,
                        "momentum": tc.momentum if tc.optimizer is Optimizer.MOMENTUM else None, "seed": tc.seed,
                        "val_accuracy": run_.val_accuracy, "test_accuracy": run_.test_accuracy,
                        "status": run_.status_text, "train_seconds": round(run_.train_seconds, 3)})
        else:
            val = "—" if run_.val_accuracy is None else f"{run_.val_accuracy:.4f}"
            test = "—" if run_.test_accuracy is None else f"{run_.test_accuracy:.4f}"
            print(f"{run_.name:<32} val {val}  test {test}  {run_.status_text}")
    if not args.no_history:
        save_to_history(runs)

"""`python -m core reproduce`: train the report presets and our best ones; print the reproduction table."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from core.cli import (
    ProgressLine,
    StopRequest,
    add_data_arguments,
    add_history_argument,
    open_history,
    positive_int,
    print_json,
    save_to_history,
    terminal_progress,
)
from core.data.locate import load_mnist
from core.data.splits import SplitConfig, Splits, make_splits
from core.errors import ConfigError
from core.experiments.presets import PRESETS, Preset, get_preset
from core.experiments.reproduce import (
    TABLE_HEADER,
    TABLE_KEYS,
    format_row,
    table_row,
    train_preset,
)
from core.store.groups import GroupCheckpoints
from core.store.history import RunHistory
from core.training.drive import drive
from core.training.runs import Run, ended
from core.training.status import RunStatus

HELP = "train every preset and print reported vs measured test accuracy"


def add_arguments(parser) -> None:
    add_data_arguments(parser, any_data=False)  # MNIST's (the course's setups)
    parser.add_argument("--presets", help=f"comma-separated names (default all: {', '.join(PRESETS)})")
    parser.add_argument("--train-size", type=positive_int,
                        help="train each preset on at most this many images (quick check)")
    parser.add_argument("--json", action="store_true", help="one JSON line per preset instead of a table")
    add_history_argument(parser)


def run(args) -> int:
    names = [n.strip() for n in args.presets.split(",") if n.strip()] if args.presets is not None else list(PRESETS)
    if not names:
        raise ConfigError(f"Name at least one preset after --presets: {', '.join(PRESETS)}.")
    presets = [get_preset(name) for name in names]
    mnist = load_mnist(args.data_dir, progress=terminal_progress)
    cache = {}

    def splits_for(config):
        if config not in cache:
            cache[config] = make_splits(mnist, config)
        return cache[config]

    history = None if args.no_history else open_history()
    if not args.json:
        print(TABLE_HEADER, flush=True)
    with StopRequest() as stop:  # held until the stopped preset's runs are evaluated and in the history
        for preset in presets:
            started = time.perf_counter()
            runs = trained(preset, splits_for, args.train_size, stop, history)
            report(preset, runs, time.perf_counter() - started, args)
            if stop.requested:
                return stop.exit_status
    return 0


def trained(preset: Preset, splits_for: Callable[[SplitConfig], Splits], train_size: int | None,
            stop: StopRequest, history: RunHistory | None) -> list[Run]:
    """The preset's runs, trained with a progress line until they end or a stop is requested (then the run in
    training is evaluated as it is), and written to the `history` (None: not) as they train and as each ends."""
    runs: list[Run] = []
    checkpoints = GroupCheckpoints(history)
    line = ProgressLine()
    saved: set[str] = set()  # run ids

    def record(so_far: list[Run]) -> None:
        runs[:] = so_far
        if not ended(runs[-1]):
            checkpoints(runs[-1])  # in the history as it trains: a killed process leaves it there, interrupted
        else:  # saved as it ends, not when the preset's last run does
            save(runs[-1])

    def save(run: Run) -> None:
        if history is not None and run.run_id not in saved:
            checkpoints.wait()
            line.end()
            save_to_history([run])
            saved.add(run.run_id)

    def progress_text(run: Run) -> str:
        return f"{run.name}: epoch {run.history[-1]['epoch']:.2f} of {run.config.train.epochs}"

    with line:
        drive(train_preset(preset, splits_for, train_size=train_size), record=record,
              show=lambda so_far: line.show(progress_text(so_far[-1])), stop_requested=lambda: stop.requested)
        checkpoints.wait()
    if stop.requested and runs[-1].status is RunStatus.RUNNING:  # a run that ended is evaluated and saved already
        runs[-1].finish(splits_for(runs[-1].config.data))
        save(runs[-1])
    return runs


def report(preset: Preset, runs: list[Run], seconds: float, args) -> None:
    """The preset's row (a table line, or a JSON line)."""
    row = table_row(preset, runs, seconds)
    if args.json:
        print_json({**{key: row[key] for key in TABLE_KEYS}, "runs": row["runs"], "status": row["status"]})
    else:
        print(format_row(row), flush=True)
    if runs[-1].diverged:
        print(f"{row['preset']}: {row['status']}", file=sys.stderr)

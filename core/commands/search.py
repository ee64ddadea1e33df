"""`python -m core search`: a worker of an Optuna hyperparameter study; start several on one storage to run its
trials in parallel."""

from __future__ import annotations

import argparse
import signal
import sys

from core.cli import (
    ProgressLine,
    add_data_arguments,
    load_data,
    number_list_type,
    positive_int,
    print_json,
    seed,
)
from core.data.splits import SplitConfig, make_splits
from core.errors import ConfigError
from core.networks.base import Activation
from core.search.space import Budget, Pruner, Sampler, SearchSetup, SearchSpace
from core.store.history import RunHistory
from core.training.config import Optimizer
from core.training.runs import Run

HELP = "run trials of a hyperparameter study (Optuna); several workers may share one study"
SPACE, SETUP = SearchSpace(), SearchSetup()
SPACE_FLAGS = ("lr_range", "depth_range", "width_range", "dropout_range", "batch_sizes", "optimizers",
               "momentum_range", "weight_decay_range", "activation", "epochs", "evaluations", "train_size",
               "val_size")


def pair(kind: type, what: str):
    """argparse type of a LOW,HIGH range."""
    parse_list = number_list_type(kind, what)

    def parse(text: str) -> tuple:
        values = parse_list(text)
        if len(values) != 2:
            raise argparse.ArgumentTypeError(f"{what}: give two numbers, LOW,HIGH (the same twice to fix it)")
        return values
    return parse


def choice_list(kind: type):
    def parse(text: str) -> tuple:
        parts = tuple(part.strip() for part in text.split(",") if part.strip())
        unknown = [part for part in parts if part not in set(kind)]
        if unknown or not parts:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(kind)}, comma-separated; got '{text}'")
        return parts
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--study", required=True, help="the study's name; workers with the same name and storage "
                        "share its trials")
    parser.add_argument("--storage", help="SQLAlchemy URL of the study's database, where the trials' runs are saved "
                        "too, as its run history (default: the run history's database; e.g. "
                        "postgresql+psycopg://user:password@host/db)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--trials", type=positive_int, help="trials this worker runs (default 20)")
    budget.add_argument("--minutes", type=float, help="start no trial after this many minutes")
    parser.add_argument("--sampler", choices=list(Sampler), default=Sampler.TPE, help="default tpe")
    parser.add_argument("--pruner", choices=list(Pruner), default=Pruner.MEDIAN, help="default median")
    parser.add_argument("--sampler-seed", type=seed, help="the sampler's seed (default: a fresh one per worker)")
    parser.add_argument("--json", action="store_true", help="one JSON line per ended trial")
    add_data_arguments(parser)
    s = parser.add_argument_group("search space (a new study's; a study that exists keeps its own)")
    s.add_argument("--lr-range", type=pair(float, "learning rates"), metavar="LOW,HIGH",
                   help="learning rate, log-uniform (default {},{})".format(*SPACE.learning_rate))
    s.add_argument("--depth-range", type=pair(int, "depths"), metavar="LOW,HIGH",
                   help="hidden layers (default {},{})".format(*SPACE.depth))
    s.add_argument("--width-range", type=pair(int, "widths"), metavar="LOW,HIGH",
                   help="each hidden layer's width, log-uniform (default {},{})".format(*SPACE.width))
    s.add_argument("--dropout-range", type=pair(float, "dropout rates"), metavar="LOW,HIGH",
                   help="default {},{}".format(*SPACE.dropout))
    s.add_argument("--batch-sizes", type=number_list_type(int, "batch sizes"), metavar="B[,B...]",
                   help=f"default {','.join(map(str, SPACE.batch_sizes))}")
    s.add_argument("--optimizers", type=choice_list(Optimizer), metavar="O[,O...]",
                   help=f"from {', '.join(Optimizer)} (default {','.join(SPACE.optimizers)})")
    s.add_argument("--momentum-range", type=pair(float, "momenta"), metavar="LOW,HIGH",
                   help="for momentum (default {},{})".format(*SPACE.momentum))
    s.add_argument("--weight-decay-range", type=pair(float, "weight decays"), metavar="LOW,HIGH",
                   help="log-uniform; 0,0 for none (default)")
    s.add_argument("--activation", choices=list(Activation), help=f"default {SPACE.activation}")
    s.add_argument("--epochs", type=positive_int, help=f"per trial (default {SETUP.epochs})")
    s.add_argument("--evaluations", type=positive_int,
                   help=f"validation (and pruning) points per epoch (default {SETUP.evaluations_per_epoch})")
    s.add_argument("--train-size", type=positive_int, help=f"training images (default {SETUP.data.train_size})")
    s.add_argument("--val-size", type=positive_int, help=f"validation images (default {SETUP.data.val_size})")


def setup_from_args(args: argparse.Namespace) -> SearchSetup:
    given = {name: value for name, value in {
        "learning_rate": args.lr_range, "depth": args.depth_range, "width": args.width_range,
        "dropout": args.dropout_range, "batch_sizes": args.batch_sizes, "optimizers": args.optimizers,
        "momentum": args.momentum_range, "weight_decay": args.weight_decay_range, "activation": args.activation,
    }.items() if value is not None}
    data = SplitConfig(val_size=args.val_size or SETUP.data.val_size,
                       train_size=args.train_size or SETUP.data.train_size)
    return SearchSetup(SearchSpace(**given), data, epochs=args.epochs or SETUP.epochs,
                       evaluations_per_epoch=args.evaluations or SETUP.evaluations_per_epoch)


class StopAfterTrial:
    """Ctrl-C or SIGTERM as a request to stop once the current trial is over (its run evaluated and saved, its
    result in the study); later signals are ignored. `with StopAfterTrial() as stop: ... stop.requested`."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)
    requested = False

    def __enter__(self) -> StopAfterTrial:
        self._previous = {sig: signal.signal(sig, self._request) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc_info) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _request(self, signum, frame) -> None:
        if not self.requested:
            print("\nstopping after this trial...", file=sys.stderr, flush=True)
        self.requested = True


def run(args) -> int:
    # Optuna and SQLAlchemy load here, not with the parser: every other command starts without them
    import optuna

    from core.search.study import (
        RUN_NAME_ATTR,
        STATUS_ATTR,
        make_pruner,
        make_sampler,
        open_storage,
        open_study,
        search,
        storage_url,
    )

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the trials are reported here, one line each
    setup = setup_from_args(args)
    budget = Budget(trials=args.trials if args.trials or args.minutes else 20, minutes=args.minutes)
    if args.storage:  # one database for the study and its trials' runs, so that any worker's trial can be promoted
        storage = open_storage(args.storage)
        history = RunHistory(args.storage)
    else:
        history = RunHistory()
        storage = open_storage(storage_url(history))
    study, setup_used = open_study(storage, args.study, setup, make_sampler(args.sampler, setup.space,
                                                                            args.sampler_seed),
                                   make_pruner(args.pruner))
    if setup_used != setup:
        if any(getattr(args, name) is not None for name in SPACE_FLAGS):
            print(f"note: the study '{study.study_name}' exists; its own space and data are used, not the flags'",
                  file=sys.stderr)
        study.sampler = make_sampler(args.sampler, setup_used.space, args.sampler_seed)
    splits = make_splits(load_data(args), setup_used.data)
    if max(setup_used.space.batch_sizes) > len(splits.y_train):
        raise ConfigError(f"A batch size of the space ({max(setup_used.space.batch_sizes)}) is larger than the "
                          f"training set ({len(splits.y_train)} images).")
    print(f"study '{study.study_name}': {len(study.trials)} trials so far; this worker runs "
          f"{f'{budget.trials} trials' if budget.trials else f'{budget.minutes:g} minutes'} "
          f"({args.sampler} sampler, {args.pruner} pruner) on {len(splits.y_train)} images",
          file=sys.stderr, flush=True)

    def show(number: int, run_: Run) -> None:
        last = run_.history[-1]
        val = next((r["val_accuracy"] for r in reversed(run_.history) if r["val_accuracy"] is not None), None)
        line.show(f"trial {number}  epoch {last['epoch']:5.2f}/{setup_used.epochs}  loss {last['train_loss']:.4f}"
                  + (f"  val acc {val:.4f}" if val is not None else ""))

    def ended(trial: optuna.trial.FrozenTrial) -> None:
        line.end()
        status = trial.user_attrs.get(STATUS_ATTR, trial.state.name.lower())
        if args.json:
            print_json({"trial": trial.number, "state": trial.state.name.lower(), "value": trial.value,
                        "status": status, "params": trial.params, "run": trial.user_attrs.get(RUN_NAME_ATTR)})
        else:
            value = "—" if trial.value is None else f"{trial.value:.4f}"
            print(f"trial {trial.number:<4} {trial.state.name.lower():<8} val acc {value}  {status}  "
                  f"{trial.user_attrs.get(RUN_NAME_ATTR, '')}", flush=True)

    with StopAfterTrial() as stop, ProgressLine() as line:
        search(study, setup_used, splits, history, budget, on_chunk=show, on_trial=ended,
               stop_requested=lambda: stop.requested)
    try:
        best = study.best_trial
        print(f"best so far: trial {best.number}, val acc {best.value:.4f}, {best.params}", file=sys.stderr)
    except ValueError:  # no trial completed yet
        print("no trial of the study has completed yet", file=sys.stderr)
    print(f"runs saved to the run history {history.location}", file=sys.stderr)
    return 130 if stop.requested else 0

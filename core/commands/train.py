"""`python -m core train`: train one network from flags, with a live progress line and a final summary."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

from core.cli import (
    ProgressLine,
    StopRequest,
    add_data_arguments,
    add_history_argument,
    joined,
    load_data,
    number_list_type,
    open_history,
    print_json,
    save_to_history,
    seed,
)
from core.data.formats import Dataset
from core.data.spec import describe_data
from core.data.splits import SplitConfig, Splits, default_split, make_splits
from core.errors import ConfigError, ModelFileError
from core.networks.base import NETWORKS, Activation, Init, Model, ModelConfig
from core.store.checkpoint import load_checkpoint, save_model
from core.store.history import Checkpoints, RunHistory
from core.training.config import Optimizer, RunConfig, Schedule, TrainConfig
from core.training.drive import drive
from core.training.loop import StartPoint, check_run, epoch_steps, train
from core.training.runs import Continuation, Run, continuation_note, continued
from core.training.status import RunStatus

HELP = "train a network and report its validation and test accuracy"
MODEL, SPLIT, TRAIN = ModelConfig(), SplitConfig(), TrainConfig()


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags for every choice of a RunConfig; defaults are the dataclasses' own."""
    add_data_arguments(parser)
    m = parser.add_argument_group("network")
    m.add_argument("--arch", choices=list(NETWORKS), default=MODEL.arch, help=f"default {MODEL.arch}")
    m.add_argument("--hidden", type=number_list_type(int, "hidden widths"), action="append", metavar="W[,W...]",
                   help="MLP hidden widths, repeatable or comma-separated "
                   f"(default {','.join(map(str, MODEL.hidden))})")
    m.add_argument("--activation", choices=list(Activation),
                   help=f"MLP hidden units' activation (default {MODEL.activation})")
    m.add_argument("--dropout", type=number_list_type(float, "dropout rates"), action="append", metavar="R[,R...]",
                   help="dropout rate in training, one for every hidden dense layer or one per layer (MLP, LeNet-5's "
                   "dense layers; default none)")
    m.add_argument("--init", choices=list(Init), help="weight initialisation (default: he for ReLU networks, LeNet-5 "
                   "included; glorot otherwise)")
    m.add_argument("--init-std", type=float, help=f"std of the 'normal' init (default {MODEL.init_std})")
    t = parser.add_argument_group("training")
    t.add_argument("--optimizer", choices=[o.value for o in Optimizer], default=TRAIN.optimizer,
                   help=f"default {TRAIN.optimizer}")
    t.add_argument("--lr", type=float, help=f"learning rate (default {TRAIN.learning_rate:g})")
    t.add_argument("--momentum", type=float, default=None,
                   help=f"with --optimizer momentum (default {TRAIN.momentum})")
    t.add_argument("--nesterov", action="store_true", help="Nesterov momentum, with --optimizer momentum")
    t.add_argument("--schedule", choices=[s.value for s in Schedule], default=None,
                   help=f"default: {Schedule.EXPONENTIAL} if --decay is given")
    t.add_argument("--decay", type=float, default=None,
                   help=f"learning-rate factor per epoch, with --schedule exponential (default {TRAIN.decay})")
    t.add_argument("--weight-decay", type=float, default=TRAIN.weight_decay,
                   help=f"L2 coefficient (default {TRAIN.weight_decay:g})")
    t.add_argument("--batch-size", type=int, default=TRAIN.batch_size, help=f"default {TRAIN.batch_size}")
    t.add_argument("--epochs", type=int, help=f"default {TRAIN.epochs}; with --resume, the epochs to add")
    t.add_argument("--eval-every", type=int, default=TRAIN.eval_every, help="also validate every N steps")
    t.add_argument("--seed", type=seed, default=TRAIN.seed, help=f"0 to 2**32-1 (default {TRAIN.seed})")
    t.add_argument("--devices", type=int, default=TRAIN.devices,
                   help=f"split each batch (a sweep: its variants) across this many devices (default {TRAIN.devices}; "
                        "`python -m core data` lists them)")
    d = parser.add_argument_group("data split")
    d.add_argument("--train-size", type=int, help="train on this many images (stratified)")
    d.add_argument("--per-class", type=int, help="train on this many images of each class")
    d.add_argument("--val-size", type=int,
                   help=f"validation images held out of the training set (default {SPLIT.val_size}, or a fifth of "
                        "a smaller training set)")


def run_config_from_args(args: argparse.Namespace) -> RunConfig:
    hidden = joined(args.hidden) or MODEL.hidden
    activation = args.activation or MODEL.activation
    schedule = args.schedule or (Schedule.EXPONENTIAL if args.decay is not None else Schedule.CONSTANT)
    model = ModelConfig(args.arch, hidden, activation,
                        init_std=MODEL.init_std if args.init_std is None else args.init_std,
                        dropout=joined(args.dropout) or ())
    return RunConfig(
        model=dataclasses.replace(model, init=args.init or model.network.recommended_init(model)),
        data=SplitConfig(SPLIT.val_size if args.val_size is None else args.val_size, args.train_size, args.per_class,
                         args.seed),
        train=TrainConfig(
            optimizer=args.optimizer, learning_rate=TRAIN.learning_rate if args.lr is None else args.lr,
            momentum=TRAIN.momentum if args.momentum is None else args.momentum, nesterov=args.nesterov,
            schedule=schedule, decay=TRAIN.decay if args.decay is None else args.decay,
            weight_decay=args.weight_decay, batch_size=args.batch_size,
            epochs=TRAIN.epochs if args.epochs is None else args.epochs, seed=args.seed,
            eval_every=args.eval_every, devices=args.devices,
        ),
    )


def fitted_to(config: RunConfig, args: argparse.Namespace, data: Dataset) -> RunConfig:
    """The run's settings with the default validation size shrunk on a small dataset (`default_split`), unless
    --val-size was given."""
    if args.val_size is not None:
        return config
    val_size = default_split(len(data.train_labels)).val_size
    return dataclasses.replace(config, data=dataclasses.replace(config.data, val_size=val_size))


def ignored_flag_notes(args: argparse.Namespace) -> list[str]:
    """A one-line note for each flag given that the chosen network, optimiser or schedule does not use."""
    unused = []
    uses = {"--hidden": "hidden", "--activation": "activation", "--dropout": "dropout"}
    for flag, field in uses.items():
        if getattr(args, field) and field not in NETWORKS[args.arch].hyperparameters:
            users = " or ".join(f"--arch {name}" for name, net in NETWORKS.items() if field in net.hyperparameters)
            unused.append((flag, f"--arch {args.arch}", users))
    if args.init_std is not None and args.init != "normal":
        unused.append(("--init-std", f"--init {args.init}" if args.init else "the default init", "--init normal"))
    if args.optimizer != Optimizer.MOMENTUM:
        given = {"--momentum": args.momentum is not None, "--nesterov": args.nesterov}
        unused += [(flag, f"--optimizer {args.optimizer}", "--optimizer momentum") for flag in given if given[flag]]
    if args.decay is not None and args.schedule not in (None, Schedule.EXPONENTIAL):
        unused.append(("--decay", f"--schedule {args.schedule}", "--schedule exponential"))
    return [f"note: {flag} has no effect with {chosen}; only {user} uses it." for flag, chosen, user in unused]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)
    parser.add_argument("--resume", metavar="FILE|RUN",
                        help="continue a model file saved with --save, or a run of the history (its id or name), for "
                             "--epochs more epochs with its optimiser state, optionally with a new --lr, --schedule or "
                             "--decay; its other settings are its own")
    parser.add_argument("--save", metavar="PATH",
                        help="write the trained model (.npz, no pickles) here, with its optimiser state and step")
    add_history_argument(parser)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of results")
    parser.add_argument("--stats", action="store_true",
                        help="record each layer's statistics after every chunk (weight, gradient and update norms, "
                             "dead or saturated units, activations); in the JSON line with --json")


def _progress_line(run: Run) -> str:
    last = run.history[-1]
    val = next((r["val_accuracy"] for r in reversed(run.history) if r["val_accuracy"] is not None), None)
    val_text = f"  val acc {val:.4f}" if val is not None else ""
    return (f"epoch {last['epoch']:6.2f}/{run.config.train.epochs}  step {last['step']}  "
            f"loss {last['train_loss']:.4f}  acc {last['train_accuracy']:.4f}{val_text}  "
            f"{last['samples_per_second']:,.0f} samples/s")


def check_writable(path: str) -> None:
    """Fail before training, not after it, when the model file cannot be written at `path`."""
    if not path.strip():
        raise ConfigError("--save needs a file name, such as model.npz.")
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"Cannot save the model to {path}: it is a directory; name a file in it, such as "
                          f"{target / 'model.npz'}.")
    existing = next(folder for folder in target.absolute().parents if folder.exists())
    if not existing.is_dir():
        raise ConfigError(f"Cannot save the model to {path}: {existing} is a file, not a folder.")
    try:  # in the deepest folder that exists: the missing ones are made when the model is saved, not before
        with tempfile.NamedTemporaryFile(dir=existing, suffix=".part"):
            pass
    except OSError as exc:
        raise ConfigError(f"Cannot save the model to {path}: cannot write in {existing} "
                          f"({exc.strerror or exc}).") from None


KEPT_WHEN_RESUMING = ("arch", "hidden", "activation", "dropout", "init", "init_std", "optimizer", "momentum",
                      "nesterov", "weight_decay", "batch_size", "eval_every", "seed", "devices", "train_size",
                      "per_class", "val_size")  # a continued run's own settings: refused with --resume


def check_resume_flags(args: argparse.Namespace) -> None:
    """A ConfigError naming the flags given with --resume that would change what the continued run keeps."""
    defaults = argparse.ArgumentParser()
    add_run_arguments(defaults)
    given = [f"--{name.replace('_', '-')}" for name in KEPT_WHEN_RESUMING
             if getattr(args, name) != defaults.get_default(name)]
    if "--optimizer" in given:
        raise ConfigError("--optimizer cannot change when continuing a run: the optimiser state it continues with "
                          "belongs to its own optimiser. Train a new run to use another one.")
    if given:
        raise ConfigError(f"{', '.join(given)} cannot be given with --resume: a continued run keeps its network, "
                          "data split and training settings; only --epochs, --lr, --schedule and --decay change.")
    if args.epochs is None:
        raise ConfigError("--resume needs --epochs N: the number of epochs to add.")


def resumed_run(source: str, history: RunHistory | None) -> tuple[Run, int | None]:
    """The run named by --resume, and the step it reached when that is not in its curves: a model file (its step,
    None in a file saved without it) or a run of the history (by id, or by a name no other run has)."""
    if Path(source).is_file():
        saved = load_checkpoint(source)
        return Run(Path(source).stem, saved.config, saved.spec, params=saved.params, opt_state=saved.opt_state,
                   status=RunStatus.LOADED), saved.step or 0
    if history is None:
        raise ConfigError(f"{source} is not a model file, and there is no run history to find it in.")
    matches = [row for row in history.list() if source in (row.run_id, row.name)]
    if len(matches) != 1:
        raise ConfigError(f"{source} is neither a model file nor a run of the history (its id or name)." if not matches
                          else f"{len(matches)} runs of the history are named '{source}'; give its id "
                          f"({', '.join(row.run_id for row in matches)}).")
    run = history.load(matches[0].run_id)
    if run.status.in_progress:
        raise ConfigError(f"'{run.name}' is still training in another process; continue it when it has ended.")
    return run, None


def run_and_splits(args, history: RunHistory | None) -> tuple[Run, Splits, StartPoint | None]:
    """The run to train, its data and, with --resume, where it starts (and why it starts afresh, printed)."""
    if args.resume is not None:
        check_resume_flags(args)
        base, step = resumed_run(args.resume, history)
        data = load_data(args)
        if data.spec != base.spec:
            raise ConfigError(f"'{base.name}' was trained on {describe_data(base.spec)}; the data here is "
                              f"{describe_data(data.spec)}: name its data with --dataset, --data-dir, --images or "
                              "--csv.")
        check_run(base.config, data.train_labels, data.spec)
        splits = make_splits(data, base.config.data)
        more = Continuation(args.epochs, args.lr, args.schedule, args.decay)
        run, start = continued(base, more, epoch_steps(base.config.train, len(splits.y_train)), step)
        print(continuation_note(run.config, start), file=sys.stderr)
        return run, splits, start
    config = run_config_from_args(args)
    for note in ignored_flag_notes(args):
        print(note, file=sys.stderr)
    data = load_data(args)
    config = fitted_to(config, args, data)
    check_run(config, data.train_labels, data.spec)  # from the labels alone, before a split is made or compiled
    splits = make_splits(data, config.data)
    return Run(name=Model(config.model, splits.spec).describe(), config=config, spec=splits.spec), splits, None


def run(args) -> int:
    if args.save is not None:
        check_writable(args.save)
    history = None if args.no_history else open_history()
    result, splits, start = run_and_splits(args, history)
    config = result.config
    checkpoints = Checkpoints(history, result)
    # In the history as it starts; a new run is numbered there (`NAME #N`), a continued one keeps its name.
    checkpoints.start(numbered_after=() if start is None and history is not None else None)
    print(f"{result.name} on {len(splits.y_train)} images; compiling...", file=sys.stderr, flush=True)

    def record(progress) -> None:
        result.record(progress)
        checkpoints()  # in the history as it trains: a killed process leaves it there, interrupted

    with StopRequest() as stop:  # held until the stopped run is evaluated, saved and in the history
        with ProgressLine() as line:
            try:
                drive(train(config, splits, start=start, statistics=args.stats), record=record,
                      show=lambda _: line.show(_progress_line(result)), stop_requested=lambda: stop.requested)
            except BaseException:
                checkpoints.discard()  # refused before it trained anything: no trace in the history
                raise
            checkpoints.wait()
        result.finish(splits)
        save_failed = report_and_save(result, args)
    if result.status is RunStatus.STOPPED:
        return stop.exit_status
    return 2 if save_failed else 1 if result.diverged else 0


def report_and_save(result: Run, args) -> bool:
    """Print the outcome (the accuracies on stdout), save the model when asked and record the run; whether the
    save failed."""
    config = result.config
    if result.status is RunStatus.STOPPED:
        print("stopped: kept the parameters trained so far", file=sys.stderr)
    if result.diverged:
        lower = "learning rate or weight decay" if config.train.weight_decay else "learning rate"
        print(f"{result.status_text}: the loss became NaN/Inf; try a lower {lower}.", file=sys.stderr)
    else:
        val = "— (no validation images)" if result.val_accuracy is None else f"{result.val_accuracy:.4f}"
        print(f"validation accuracy {val}  test accuracy {result.test_accuracy:.4f}  "
              f"({result.train_seconds:.1f} s training, {result.compile_seconds:.1f} s compiling)",
              file=sys.stderr if args.json else sys.stdout)  # with --json, stdout holds the JSON line alone
    save_failed = False
    if args.save is not None and result.params is not None:
        kept = ""
        if result.diverged:
            steps = result.history[-1]["step"] if result.history else 0
            kept = (f" (the parameters after {steps:,} updates, the last before the divergence)" if steps else
                    " (the initial parameters: it diverged within its first chunk of updates)")
        try:
            path = save_model(args.save, result.params, config, result.spec, opt_state=result.opt_state,
                              step=result.steps_done)
            print(f"saved to {path}{kept}", file=sys.stderr)
        except ModelFileError as exc:  # checked before training, but the disk may have filled or the folder gone since
            save_failed = True
            print(f"error: {exc}", file=sys.stderr)
    if not args.no_history:
        save_to_history([result])
    if args.json:
        summary = result.summary()
        print_json({
            "test_accuracy": summary["test_accuracy"], "val_accuracy": summary["val_accuracy"],
            "epochs": summary["epochs"], "train_seconds": summary["train_seconds"],
            "compile_seconds": summary["compile_seconds"], "samples_per_second": summary["samples_per_second"],
            "status": result.status_text, "run_id": result.run_id, "config": config.to_dict(),
            **({"statistics": [{"step": step, **stats} for step, stats in result.statistics]} if args.stats else {}),
        })
    return save_failed

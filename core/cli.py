"""The headless command line: `python -m core COMMAND ...`.

Each command is a module of `core.commands` with HELP, `add_arguments(parser)` and `run(args) -> int`;
COMMANDS lists them. Project errors (bad flags, bad data) print one line and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import signal
import sys
from pathlib import Path
from typing import TextIO

from core.data.formats import Dataset
from core.data.registry import DatasetName
from core.data.sources import DataSource, load_source
from core.data.splits import MAX_SEED
from core.data.user_data import Fit, ImageOptions, problems_text
from core.errors import ConfigError, DigitLabError, HistoryError
from core.parsing import number_list
from core.store.history import RunHistory
from core.training import compile_cache
from core.training.drive import Pace
from core.training.runs import Run

COMMANDS = ("train", "data", "runs", "gradcheck", "backprop-timing", "reproduce", "sweep", "predict", "robustness",
            "attack", "search")


def seed(text: str) -> int:
    """argparse type of a random seed: an integer from 0 to MAX_SEED (a one-line error otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: '{text}'") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed must be between 0 and {MAX_SEED}, got {value}")
    return value


def number_list_type(kind: type, what: str):
    """argparse type of a comma-separated list of numbers (`core.parsing.number_list`)."""
    def parse(text: str) -> tuple:
        try:
            return number_list(text, kind, what)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def joined(groups: list[tuple] | None) -> tuple:
    """The values of a repeatable list flag (`--lr 0.1,0.2 --lr 0.3`: action="append" of number_list_type), in
    order; () when it was not given."""
    return tuple(value for group in groups or () for value in group)


def positive_int(text: str) -> int:
    """argparse type of a count that must be 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def add_data_arguments(parser: argparse.ArgumentParser, *, any_data: bool = True) -> None:
    """The --data-dir flag every data-using command takes; with `any_data`, the choice of dataset and of the user's
    own images or CSV too (`load_data`)."""
    parser.add_argument("--data-dir", help="directory (or file) holding the dataset; default its variable "
                                           "($MNIST_DATA_DIR for MNIST), then the cache, then a download")
    if not any_data:
        return
    parser.add_argument("--dataset", choices=list(DatasetName), default=DatasetName.MNIST,
                        help="a registered dataset (default mnist)")
    own = parser.add_argument_group("your own data (instead of --dataset)")
    given = own.add_mutually_exclusive_group()
    given.add_argument("--images", metavar="DIR", help="a folder (or zip) of class subfolders of PNG, JPEG or BMP "
                                                       "files, optionally under train/ and test/")
    given.add_argument("--csv", metavar="FILE", help="a CSV in Kaggle's Digit Recognizer layout (label,pixel0,...)")
    defaults = ImageOptions()
    own.add_argument("--image-size", type=positive_int, nargs=2, metavar=("HEIGHT", "WIDTH"),
                     default=(defaults.height, defaults.width), help="size the images are converted to (default 28 28)")
    own.add_argument("--colour", action="store_true", help="keep colour (three channels) instead of grey")
    own.add_argument("--fit", choices=list(Fit), default=defaults.fit,
                     help="resize the whole image, or MNIST-style normalisation for handwriting (default resize)")
    own.add_argument("--test-fraction", type=float, default=defaults.test_fraction,
                     help="held out as the test set when the folder has no train/ and test/ (default 0.2)")


def load_data(args) -> Dataset:
    """The data the command's flags name (`add_data_arguments`), with a warning line naming whatever was skipped."""
    if args.csv and Path(args.csv).suffix.lower() != ".csv":
        raise ConfigError(f"--csv takes a .csv file, not {args.csv}.")
    if args.images or args.csv:
        options = ImageOptions(*args.image_size, colour=args.colour, fit=args.fit, test_fraction=args.test_fraction,
                               seed=getattr(args, "seed", 0))  # (the training seed, where the command has one)
        source = DataSource(None, args.images or args.csv, options)
    else:
        source = DataSource(args.dataset, args.data_dir)
    with ProgressLine() as line:
        data = load_source(source, progress=terminal_progress,
                           reading=lambda done, total: line.show(f"reading images: {done:,} of {total:,}"))
    if data.skipped:
        print(f"warning: skipped {len(data.skipped)} (the rest is loaded): {problems_text(data.skipped)}",
              file=sys.stderr)
    return data


def add_history_argument(parser: argparse.ArgumentParser) -> None:
    """The --no-history flag of commands whose runs go to the run history the app's Runs page lists."""
    parser.add_argument("--no-history", action="store_true",
                        help="do not save the runs to the run history ($DIGIT_LAB_DATABASE_URL, else $DIGIT_LAB_HOME "
                        "or the user data folder)")


def open_history() -> RunHistory | None:
    """The run history, or None after a warning when it cannot be used (the run still trains)."""
    try:
        return RunHistory()
    except HistoryError as exc:
        print(f"warning: the run history cannot be used: {exc}", file=sys.stderr)
        return None


def save_to_history(finished: list[Run]) -> None:
    """Save finished runs (with their test confusion matrices) to the run history; a history that cannot be
    written costs a warning, never the results."""
    try:
        history = RunHistory()
        for run in finished:
            history.save(run)
    except HistoryError as exc:
        print(f"warning: not saved to the run history: {exc}", file=sys.stderr)
        return
    names = ", ".join(f"'{run.name}'" for run in finished) if len(finished) <= 3 else f"{len(finished)} runs"
    print(f"saved {names} to the run history {history.location}", file=sys.stderr)


LOG_LINE_SECONDS = 5.0  # progress written to a log, not a terminal: a line at most this often


class ProgressLine:
    """Progress on stderr (or `stream`): on a terminal one line, rewritten in place; otherwise (a log) a plain line
    at most every LOG_LINE_SECONDS, and the latest one when it ends. `with ProgressLine() as line: line.show(text)`."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._reset()

    def _reset(self) -> None:
        self._pace = Pace(LOG_LINE_SECONDS)
        self._width = 0  # of the text on the terminal's line
        self._unwritten: str | None = None  # the latest text a log has not had

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr  # looked up when written to (pytest's capsys replaces it)

    def show(self, text: str) -> None:
        if self.stream.isatty():
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
        elif self._pace.due():
            self.stream.write(text + "\n")
            self._unwritten = None
        else:
            self._unwritten = text
        self.stream.flush()

    def end(self) -> None:
        """End the line: on a terminal, move to the next one; in a log, write the latest text if it is not there."""
        if self._width:
            self.stream.write("\n")
        elif self._unwritten is not None:
            self.stream.write(self._unwritten + "\n")
        self.stream.flush()
        self._reset()

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(self, *exc_info) -> None:
        self.end()


_DOWNLOAD_LINE = ProgressLine()


def terminal_progress(name: str, done: int, total: int) -> None:
    """Download progress as a progress line on stderr, ended with each file."""
    percent = f"{100 * done / total:5.1f}%" if total else f"{done / 1e6:.1f} MB"
    _DOWNLOAD_LINE.show(f"downloading {name}: {percent}")
    if total and done >= total:
        _DOWNLOAD_LINE.end()


def print_json(obj: dict) -> None:
    print(json.dumps(obj, sort_keys=True), flush=True)


STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}


class StopRequest:
    """Ctrl-C, SIGTERM (kill, timeout, docker, systemd) or SIGHUP (a closed terminal) while training, as a request
    the loop reads between chunks (`with StopRequest() as stop: ... if stop.requested: break`): an interrupt raised
    inside XLA's compiler can crash the process, and one raised while the stopped run is evaluated and saved would
    lose it. Signals after the first are ignored; `exit_status` is the shell's 128 + the first signal's number."""

    signal: signal.Signals | None = None

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def exit_status(self) -> int:
        return 128 + (self.signal or signal.SIGINT)

    def __enter__(self) -> StopRequest:
        self._previous = {signum: signal.signal(signum, self._request) for signum in STOP_SIGNALS}
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _request(self, signum, frame) -> None:
        if not self.requested:
            self.signal = signal.Signals(signum)
            print(f"\n{STOP_SIGNALS[self.signal]}: stopping after this chunk of steps; what is trained so far is "
                  "kept...", file=sys.stderr, flush=True)


NEGATIVE_NUMBER = re.compile(r"^-((\d+\.?\d*|\.\d+)(e[-+]?\d+)?|inf|infinity|nan)$", re.IGNORECASE)


class _OneLineErrors(argparse.ArgumentParser):
    """Bad flags: one line on stderr and exit 2, instead of argparse's usage dump. Every negative number (-1e-3,
    -inf) is a value, not a flag, so that `--lr -inf` is refused as a learning rate, not as a missing one."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_NUMBER  # argparse's own takes only -12 and -1.5 (Python pinned)

    def error(self, message):
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineErrors(prog="python -m core", description="Digit Lab: MNIST networks in JAX.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_OneLineErrors)
    for name in COMMANDS:
        module = importlib.import_module(f"core.commands.{name.replace('-', '_')}")
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    compile_cache.enable()
    try:
        return args.handler(args)
    except DigitLabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130

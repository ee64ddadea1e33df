"""The headless command line: `python -m core COMMAND ...`.

Each command is a module of `core.commands` with HELP, `add_arguments(parser)` and `run(args) -> int`;
COMMANDS lists them. Project errors (bad flags, bad data) print one line and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
from typing import TextIO

from core.data.splits import MAX_SEED
from core.errors import ConfigError, DigitLabError, HistoryError
from core.parsing import number_list
from core.store.history import RunHistory
from core.training import compile_cache
from core.training.drive import Pace
from core.training.runs import Run

COMMANDS = ("train", "data", "gradcheck", "backprop-timing", "reproduce", "sweep", "predict", "robustness", "attack",
            "search")


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


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The --data-dir flag every data-using command takes."""
    parser.add_argument("--data-dir", help="directory (or file) holding MNIST; default $MNIST_DATA_DIR, "
                                           "then the cache, then a download")


def add_history_argument(parser: argparse.ArgumentParser) -> None:
    """The --no-history flag of commands whose runs go to the run history the app's Runs page lists."""
    parser.add_argument("--no-history", action="store_true",
                        help="do not save the runs to the run history ($DIGIT_LAB_HOME, else the user data folder)")


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
    print(f"saved {names} to the run history {history.path}", file=sys.stderr)


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


class StopRequest:
    """Ctrl-C while training, as a request the loop reads between chunks (`with StopRequest() as stop: ...
    if stop.requested: break`): an interrupt raised inside XLA's compiler can crash the process, and one raised
    while the stopped run is evaluated and saved would lose it. Presses after the first are ignored."""

    requested = False

    def __enter__(self) -> StopRequest:
        self._previous = signal.signal(signal.SIGINT, self._request)
        return self

    def __exit__(self, *exc_info) -> None:
        signal.signal(signal.SIGINT, self._previous)

    def _request(self, signum, frame) -> None:
        if not self.requested:
            print("\nstopping after this chunk of steps; what is trained so far is kept...", file=sys.stderr,
                  flush=True)
        self.requested = True


class _OneLineErrors(argparse.ArgumentParser):
    """Bad flags: one line on stderr and exit 2, instead of argparse's usage dump."""

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

"""`python -m core runs`: the run history, newest first, each run with its status ("interrupted at step N" for one
whose process died while it trained)."""

import dataclasses

from core.cli import print_json
from core.store.history import RunHistory

HELP = "list the run history (the app's Runs page), newest first, with each run's status"


def add_arguments(parser):
    parser.add_argument("--json", action="store_true", help="print one JSON object per run instead of a table")


def run(args) -> int:
    history = RunHistory()
    saved = history.list()
    if args.json:
        for row in saved:
            print_json(dataclasses.asdict(row))
        return 0
    print(f"{len(saved)} run{'s' * (len(saved) != 1)} in {history.location}")
    for row in saved:
        accuracy = "—" if row.test_accuracy is None else f"{row.test_accuracy:.2%}"
        print(f"{row.created.replace('T', ' ')[:16]}  {row.name:<32} {row.status:<28} test {accuracy:>7}  "
              f"{row.epochs:g} epochs  {row.run_id[:8]}")
    return 0

"""Persistent run history: every run, with its curves, metrics, confusion matrix and parameters, in SQLite.

One database file in the user's data directory ($DIGIT_LAB_HOME, else the OS user data dir for "digit-lab").
Parameters are stored as the engine's safe model format (`core.store.checkpoint.model_bytes`) in BLOB columns.
A run in training is written as it trains (`Checkpoints`: its curves, last parameters and epoch snapshots, marked
"running" by the process that writes it); if that process dies, the run reads back as "interrupted at step N", with
the parameters of its last checkpoint. Every operation opens its own connection and runs one short transaction (WAL
mode, a busy timeout), so several app sessions and processes can write at once without losing anything. A file that
is not a Digit Lab history, is corrupt, or comes from a newer schema is reported as a `HistoryError` and never
written.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import json
import logging
import math
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import platformdirs

from core.data.spec import MNIST_SPEC, DataSpec
from core.errors import DigitLabError, HistoryError
from core.networks.base import Params
from core.store.checkpoint import flatten, load_model, model_bytes
from core.training.config import Optimizer, RunConfig, Schedule
from core.training.runs import Run
from core.training.status import AT_STEP, RunStatus, parse_status, status_text

HOME_ENV = "DIGIT_LAB_HOME"


DATABASE_NAME = "runs.sqlite3"


BUSY_TIMEOUT_SECONDS = 30.0


SQLITE_HEADER = b"SQLite format 3\x00"


SAVED_STATUSES = (RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.DIVERGED, RunStatus.LOADED, RunStatus.RUNNING,
                  RunStatus.INTERRUPTED)


CHECKPOINT_SECONDS = 30.0  # a run in training is written at every epoch's end and at least this often


log = logging.getLogger(__name__)


# MIGRATIONS[v] takes a database from schema version v to v + 1; a new file runs them all.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 0 -> 1: one row per run
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            arch TEXT NOT NULL,
            architecture TEXT NOT NULL,
            config TEXT NOT NULL,
            curves TEXT NOT NULL,
            val_accuracy REAL,
            test_accuracy REAL,
            epochs REAL NOT NULL,
            compile_seconds REAL NOT NULL,
            train_seconds REAL NOT NULL,
            samples_per_second REAL NOT NULL,
            created TEXT NOT NULL,
            saved TEXT NOT NULL,
            params BLOB
        )""",
    ),
    (  # 1 -> 2: the test-set confusion matrix and the per-epoch parameter snapshots
        "ALTER TABLE runs ADD COLUMN confusion TEXT",
        """CREATE TABLE snapshots (
            run_id TEXT NOT NULL,
            epoch INTEGER NOT NULL,
            params BLOB NOT NULL,
            PRIMARY KEY (run_id, epoch)
        )""",
        "CREATE INDEX runs_by_created ON runs (created)",
    ),
    (  # 2 -> 3: the description of the data a run trained on (NULL: MNIST, all that earlier versions trained on)
        "ALTER TABLE runs ADD COLUMN data TEXT",
    ),
    (  # 3 -> 4: the process writing a run that is still training ("host:pid:start"; NULL once it has ended)
        "ALTER TABLE runs ADD COLUMN writer TEXT",
    ),
    (  # 4 -> 5: who saved a run (the signed-in user's e-mail; NULL: saved without signing in)
        "ALTER TABLE runs ADD COLUMN owner TEXT",
        "CREATE INDEX runs_by_owner ON runs (owner, created)",
    ),
)


SCHEMA_VERSION = len(MIGRATIONS)


def default_path() -> Path:
    """The history database: in $DIGIT_LAB_HOME if set, else in the OS user data directory."""
    home = os.environ.get(HOME_ENV)
    folder = Path(home).expanduser() if home else Path(platformdirs.user_data_dir("digit-lab", appauthor=False))
    return folder / DATABASE_NAME


def numbered_name(prefix: str, taken: Iterable[str]) -> str:
    """`prefix #N`, N one more than the highest number after `prefix #` among the `taken` names (1 when none is)."""
    start = f"{prefix} #"
    numbers = [int(name[len(start):]) for name in taken if name.startswith(start) and name[len(start):].isdecimal()]
    return f"{start}{max(numbers, default=0) + 1}"


def ended(run: Run) -> bool:
    """Whether a run is over and measured (`Run.finish` has run, or its process died while it trained), so that it
    belongs in the history as it is."""
    if run.status.in_progress:
        return False
    return run.params is None or run.status in AT_STEP or run.test_accuracy is not None


def _process_start(pid: int) -> str:
    """When process `pid` started, in clock ticks since boot (Linux; "" elsewhere): a pid and its start name one
    process, even after the pid is reused."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def this_writer() -> str:
    """This process, as a run's writer: host, pid and start time."""
    return f"{socket.gethostname()}:{os.getpid()}:{_process_start(os.getpid())}"


def writer_alive(writer: str) -> bool:
    """Whether the process that `this_writer` named is still running (a process on another host is taken to be)."""
    host, pid, start = writer.rsplit(":", 2)
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return _process_start(int(pid)) == start


@dataclass(frozen=True)
class Viewer:
    """Who uses the history: a signed-in user sees and changes their own runs; a teacher sees everyone's too."""

    name: str  # the signed-in user's identity (their e-mail)
    teacher: bool = False


@dataclass(frozen=True)
class SavedRun:
    """One row of the history listing (no curves, no parameters)."""

    run_id: str
    name: str
    status: str
    arch: str
    architecture: str
    val_accuracy: float | None
    test_accuracy: float | None
    epochs: float
    train_seconds: float
    created: str
    saved: str
    dataset: str  # the name of the data it trained on
    owner: str | None  # who saved it (None: saved without signing in)


DATASET_COLUMN = f"coalesce(json_extract(data, '$.name'), '{MNIST_SPEC.name}')"  # NULL: MNIST (older versions)
SUMMARY_COLUMNS = ", ".join(DATASET_COLUMN if f.name == "dataset" else f.name for f in dataclasses.fields(SavedRun))


RUN_COLUMNS = ("run_id", "name", "status", "arch", "architecture", "config", "curves", "val_accuracy",
               "test_accuracy", "epochs", "compile_seconds", "train_seconds", "samples_per_second", "created",
               "saved", "params", "confusion", "data", "writer", "owner")


class _Busy(HistoryError):
    """The database stayed locked by another process."""


class RunHistory:
    """The run history in one SQLite file; opening it checks the file and migrates an older schema. A file deleted
    while the object is in use (an app keeps one for hours) is created afresh by the next operation.

    With a `viewer`, the runs it saves are theirs, and it lists, loads, renames and deletes only their own runs (a
    teacher lists and loads everyone's); any other run is reported exactly as a missing one. Without one, every run
    is open to it and the runs it saves have no owner."""

    def __init__(self, path_or_url: Path | str | None = None, *, viewer: Viewer | None = None):
        self.path = Path(path_or_url).expanduser() if path_or_url else default_path()
        self.viewer = viewer
        self._prepare()

    def _prepare(self) -> None:
        """Check the file and bring its schema up to date, creating the file and its folder if missing."""
        self._check_header()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryError(f"Cannot create the run history folder {self.path.parent} ({exc.strerror or exc}); "
                               f"set {HOME_ENV} to a writable folder.") from None
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        while True:
            try:
                version = self._open()
                break
            except _Busy:  # SQLite answers "locked" at once, without waiting, while another process creates
                if time.monotonic() > deadline:  # the file or switches it to WAL: try again shortly
                    raise
                time.sleep(0.05)
        if version < SCHEMA_VERSION:
            self._migrate()

    def _open(self) -> int:
        """Check the file's schema and switch it to WAL; returns its schema version."""
        with self._connect() as conn:
            conn.execute("BEGIN")  # one consistent snapshot, even while another process migrates
            version = self._check_schema(conn)
            conn.execute("COMMIT")
            conn.execute("PRAGMA journal_mode=WAL")
        return version

    # ------------------------------------------------------------------------------------------ opening

    def _unusable(self, reason: str) -> HistoryError:
        return HistoryError(
            f"The run history {self.path} {reason}. Digit Lab left the file untouched. Move or rename it, or "
            f"use another file (on the Runs page, or {HOME_ENV} for another folder), to start a new history; your "
            "runs in this session are kept."
        )

    def _check_header(self) -> None:
        """Refuse, before SQLite touches it, a file that is not an SQLite database at all."""
        try:
            with open(self.path, "rb") as f:
                header = f.read(len(SQLITE_HEADER))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise HistoryError(f"Cannot read the run history {self.path} ({exc.strerror or exc}).") from None
        if header and header != SQLITE_HEADER:
            raise self._unusable("is not a database (it is not an SQLite file)")

    def _check_schema(self, conn: sqlite3.Connection) -> int:
        """The file's schema version, after read-only checks: ours, not newer, and not corrupt."""
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise self._unusable(f"was written by a newer Digit Lab (schema {version}; this version reads up to "
                                 f"{SCHEMA_VERSION}); upgrade Digit Lab to use it")
        if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise self._unusable("is an SQLite database that Digit Lab did not create")
        problems = [line for row in conn.execute("PRAGMA quick_check") for line in row[0].splitlines()
                    if not line.startswith("*** in database")]
        if problems != ["ok"]:
            more = f"; {len(problems)} problems in all, listed in {self._log_problems(problems)}" \
                if len(problems) > 1 else ""
            raise self._unusable(f"is corrupt ({problems[0][:120]}{more})")
        return version

    def _log_problems(self, problems: list[str]) -> Path | str:
        """Write SQLite's list of what is corrupt to the user log folder; returns the file (or where it was shown)."""
        log_file = Path(platformdirs.user_log_dir("digit-lab", appauthor=False)) / "run-history-check.log"
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            log_file.write_text(f"{datetime.now(UTC).isoformat(timespec='seconds')} {self.path}\n"
                                + "\n".join(problems) + "\n")
        except OSError:
            log.warning("The run history %s is corrupt:\n%s", self.path, "\n".join(problems))
            return "the log"
        return log_file

    def _migrate(self) -> None:
        """Bring the schema up to date in one transaction (another process may have done it meanwhile)."""
        with self._write() as conn:
            version = self._check_schema(conn)
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _recreate_if_deleted(self) -> None:
        """Start a new, empty history if the file was deleted since this object opened it. (Only a missing file:
        in WAL mode a live history's main file may well be empty, its writes still in the -wal file.)"""
        if not self.path.exists():
            self._prepare()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in autocommit mode; SQLite errors become HistoryErrors that name the file."""
        conn = None
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
            yield conn
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise _Busy(f"The run history {self.path} stayed busy for {BUSY_TIMEOUT_SECONDS:.0f} s "
                                   "(another session is writing); try again.") from None
            raise HistoryError(f"The run history {self.path} cannot be used: {exc}.") from None
        except sqlite3.DatabaseError as exc:
            raise self._unusable(f"is corrupt ({exc})") from None
        finally:
            if conn is not None:
                conn.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A connection for the operations' reads (the file created afresh if it was deleted)."""
        self._recreate_if_deleted()
        with self._connect() as conn:
            yield conn

    @contextmanager
    def _write(self, *, synced: bool = True) -> Iterator[sqlite3.Connection]:
        """One short write transaction, taken with the write lock up front so it never deadlocks (the file
        created afresh if it was deleted). Not `synced`: the commit does not wait for the disk (a checkpoint of a
        run in training: it survives the process dying, a power cut may lose it, and the next one comes soon)."""
        self._recreate_if_deleted()
        with self._connect() as conn:
            if not synced:
                conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # ------------------------------------------------------------------------------------------ ownership

    def _may_see(self, owner: str | None) -> bool:
        return self.viewer is None or self.viewer.teacher or owner == self.viewer.name

    def _may_change(self, owner: str | None) -> bool:
        return self.viewer is None or owner == self.viewer.name

    def _visible(self) -> tuple[list[str], list]:
        """The SQL conditions (and their arguments) that keep to the runs the viewer may see."""
        if self.viewer is None or self.viewer.teacher:
            return [], []
        return ["owner = ?"], [self.viewer.name]

    def _check_may_change(self, conn: sqlite3.Connection, run_id: str) -> bool:
        """Whether run `run_id` is saved; a HistoryError if it is one the viewer may not change (for a run they
        cannot see, the very error of a missing run)."""
        row = conn.execute("SELECT name, owner FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return False
        name, owner = row
        if self._may_change(owner):
            return True
        if self._may_see(owner):
            raise HistoryError(f"Run '{name}' is not yours ({owner or 'saved without signing in'}): you may open it, "
                               "but rename, delete or save over only your own runs.")
        raise _missing(run_id)

    # ------------------------------------------------------------------------------------------ operations

    def save(self, run: Run) -> None:
        """Insert or replace (by run_id) an ended run, with its test-set confusion matrix, its parameters and all its
        epoch snapshots."""
        if not ended(run):
            raise HistoryError(f"Run '{run.name}' ({run.status_text}) is not over and measured yet; only ended runs "
                               "are saved.")
        row = self._row(run, run.status_text, None)
        self._write_rows(row, self._snapshot_blobs(row, run, run.snapshots), ended=True)

    def save_progress(self, run: Run, new_snapshots: list[tuple[int, Params]]) -> None:
        """Write a run that is training, marked running by this process: its curves and parameters so far (none
        before its first chunk), and the epoch snapshots not written before (`new_snapshots`)."""
        self.progress_writer(run, new_snapshots)()

    def progress_writer(self, run: Run, new_snapshots: list[tuple[int, Params]]) -> Callable[[], None]:
        """What `save_progress` writes, prepared now (the row, the parameters' bytes); calling the result writes it,
        from any thread. A run saved as ended in the meantime is left as it was saved."""
        row = self._row(run, status_text(RunStatus.RUNNING), this_writer())
        row.update(val_accuracy=None, test_accuracy=None, confusion=None)
        return functools.partial(self._write_rows, row, self._snapshot_blobs(row, run, new_snapshots), ended=False)

    def _row(self, run: Run, status: str, writer: str | None) -> dict:
        return {
            "run_id": run.run_id, "name": run.name, "status": status, "arch": run.config.model.arch,
            "architecture": run.model.describe(), "data": json.dumps(run.spec.to_dict()),
            "config": run.config.to_json(), "curves": json.dumps(run.history),
            "val_accuracy": run.val_accuracy, "test_accuracy": run.test_accuracy, "epochs": run.epochs_completed,
            "compile_seconds": run.compile_seconds, "train_seconds": run.train_seconds,
            "samples_per_second": run.samples_per_second, "created": run.created,
            "saved": datetime.now(UTC).isoformat(timespec="seconds"),
            "params": None if run.params is None else model_bytes(run.params, run.config, run.spec),
            "confusion": None if run.test_confusion is None else json.dumps(np.asarray(run.test_confusion).tolist()),
            "writer": writer, "owner": None if self.viewer is None else self.viewer.name,
        }

    @staticmethod
    def _snapshot_blobs(row: dict, run: Run, snapshots: list[tuple[int, Params]]) -> list[tuple[str, int, bytes]]:
        """(an epoch's end: its snapshot is the run's parameters, already in the row)"""
        return [(run.run_id, epoch,
                 row["params"] if params is run.params else model_bytes(params, run.config, run.spec))
                for epoch, params in snapshots]

    def _write_rows(self, row: dict, blobs: list[tuple[str, int, bytes]], *, ended: bool) -> None:
        """An ended run replaces its row and all its snapshots (its commit synced to the disk); a run in training
        adds its new snapshots and updates its row unless that was saved as ended (its writer cleared). A run keeps
        the owner it was first saved by."""
        updates = ", ".join(f"{c} = excluded.{c}" for c in RUN_COLUMNS if c not in ("run_id", "owner"))
        still_running = "" if ended else " WHERE runs.writer IS NOT NULL"
        with self._write(synced=ended) as conn:
            self._check_may_change(conn, row["run_id"])
            conn.execute(f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({', '.join('?' * len(RUN_COLUMNS))}) "
                         f"ON CONFLICT (run_id) DO UPDATE SET {updates}{still_running}", [row[c] for c in RUN_COLUMNS])
            if ended:
                conn.execute("DELETE FROM snapshots WHERE run_id = ?", (row["run_id"],))
            conn.executemany("INSERT OR REPLACE INTO snapshots (run_id, epoch, params) VALUES (?, ?, ?)", blobs)

    def _settle_interrupted(self) -> None:
        """Mark "interrupted at step N" the runs whose writing process has died (killed, crashed, a reboot)."""
        with self._read() as conn:
            running = conn.execute("SELECT run_id, writer, curves FROM runs WHERE writer IS NOT NULL").fetchall()
        dead = [(status_text(RunStatus.INTERRUPTED, _last_step(curves)), run_id, writer)
                for run_id, writer, curves in running if not writer_alive(writer)]
        if dead:
            with self._write() as conn:  # unless its writer wrote it again meanwhile
                conn.executemany("UPDATE runs SET status = ?, writer = NULL WHERE run_id = ? AND writer = ?", dead)

    def list(self, *, arch: str | None = None, status: RunStatus | None = None, name_contains: str = "",
             min_test_accuracy: float | None = None, dataset: str | None = None) -> list[SavedRun]:
        """Saved runs, newest first; `status` is one of SAVED_STATUSES, `min_test_accuracy` a fraction, `dataset` the
        name of the data."""
        clauses, args = self._visible()
        if dataset:
            clauses.append(f"{DATASET_COLUMN} = ?")
            args.append(dataset)
        if arch:
            clauses.append("arch = ?")
            args.append(arch)
        if status:  # a stored status text starts with its status's value
            clauses.append("substr(status, 1, length(?)) = ?")
            args += [status, status]
        if name_contains.strip():
            clauses.append("instr(lower(name), lower(?)) > 0")
            args.append(name_contains.strip())
        if min_test_accuracy is not None:
            clauses.append("test_accuracy >= ?")
            args.append(min_test_accuracy - 1e-9)  # a typed 91.26% / 100 is 0.9126000000000001: keep 0.9126
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        self._settle_interrupted()
        with self._read() as conn:
            rows = conn.execute(f"SELECT {SUMMARY_COLUMNS} FROM runs {where} ORDER BY created DESC, saved DESC",
                                args).fetchall()
        return [SavedRun(*row) for row in rows]

    def load(self, run_id: str, *, snapshots: bool = True) -> Run:
        """A saved run with its curves and parameters (and its per-epoch snapshots unless told not to)."""
        self._settle_interrupted()
        with self._read() as conn:
            row = conn.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None or not self._may_see(row[RUN_COLUMNS.index("owner")]):
                raise _missing(run_id)
            blobs = conn.execute("SELECT epoch, params FROM snapshots WHERE run_id = ? ORDER BY epoch",
                                 (run_id,)).fetchall() if snapshots else []
        saved = dict(zip(RUN_COLUMNS, row))
        try:
            config = RunConfig.from_json(saved["config"])
            spec = MNIST_SPEC if saved["data"] is None else DataSpec.from_dict(json.loads(saved["data"]))
            params = None if saved["params"] is None else load_model(saved["params"])[0]
            epochs = [(epoch, load_model(blob)[0]) for epoch, blob in blobs]
            status, step = parse_status(saved["status"])
        except (DigitLabError, ValueError) as exc:
            raise HistoryError(f"Saved run '{saved['name']}' in {self.path} cannot be loaded: {exc}") from None
        return Run(
            name=saved["name"], config=config, spec=spec, params=params, status=status,
            diverged_at=step if status is RunStatus.DIVERGED else None,
            history=json.loads(saved["curves"]), snapshots=epochs, compile_seconds=saved["compile_seconds"],
            train_seconds=saved["train_seconds"], samples_per_second=saved["samples_per_second"],
            val_accuracy=saved["val_accuracy"], test_accuracy=saved["test_accuracy"], created=saved["created"],
            run_id=saved["run_id"], test_confusion=_confusion_matrix(saved["confusion"]),
        )

    def names_starting(self, prefix: str) -> list[str]:
        """The names of the saved runs the viewer may see that start with `prefix`."""
        clauses, args = self._visible()
        where = " AND ".join(["substr(name, 1, length(?)) = ?", *clauses])
        with self._read() as conn:
            return [row[0] for row in conn.execute(f"SELECT name FROM runs WHERE {where}", [prefix, prefix, *args])]

    def rename(self, run_id: str, name: str) -> None:
        name = name.strip()
        if not name:
            raise HistoryError("A run's name cannot be empty.")
        with self._write() as conn:
            if not self._check_may_change(conn, run_id):
                raise _missing(run_id)
            conn.execute("UPDATE runs SET name = ? WHERE run_id = ?", (name, run_id))

    def delete(self, run_id: str) -> None:
        """Remove a run and its snapshots (a run already gone is not an error without a viewer; with one, it is, as
        a run that is not theirs is)."""
        with self._write() as conn:
            if not self._check_may_change(conn, run_id) and self.viewer is not None:
                raise _missing(run_id)
            conn.execute("DELETE FROM snapshots WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))


class Checkpoints:
    """Writes a run to the history while it trains: as it starts (its name taken, so the next run's number follows
    it), after its first chunk, at every epoch's end and at least every `every` seconds. Call `start()` before
    training, the object after each record, then `wait()` before saving the ended run (or `discard()` if it trained
    nothing). The training thread only prepares each checkpoint (its curves as JSON, its parameters' bytes); a
    thread of its own commits it, so the training does not wait for the disk; a checkpoint due while the last is
    still being written goes with the next record, or, at an epoch's end, waits for it. A history that cannot be
    written stops the checkpoints, never the training: `error` says why (None: all written); `writes` counts them
    and `seconds` is the training thread's time spent on them."""

    def __init__(self, history: RunHistory | None, run: Run, every: float = CHECKPOINT_SECONDS) -> None:
        self.history, self.run, self.every = history, run, every
        self.error: HistoryError | None = None
        self.seconds = 0.0
        self.writes = 0
        self._written_snapshots = 0
        self._last = -math.inf
        self._first_chunk_written = False
        self._committer: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: concurrent.futures.Future | None = None

    def start(self) -> None:
        """Write the run, before it trains (at once, in this thread)."""
        if self.history is not None:
            self._settle(self.history.save_progress, self.run, [])
            self.writes += 1

    def __call__(self) -> None:
        new = self.run.snapshots[self._written_snapshots:]
        if self._pending is not None and (new or self._pending.done()):  # an epoch's end waits for the last one
            started = time.perf_counter()
            self._settle(self._pending.result)
            self.seconds += time.perf_counter() - started
        if self.history is None or self.error is not None or self._pending is not None:
            return
        if not (new or not self._first_chunk_written or time.monotonic() - self._last >= self.every):
            return
        started = time.perf_counter()
        write = self.history.progress_writer(self.run, new)
        self._committer = self._committer or concurrent.futures.ThreadPoolExecutor(1, "checkpoints")
        try:
            self._pending = self._committer.submit(write)
        except RuntimeError:  # the interpreter is shutting down (an app told to stop): no new threads, write here
            self._settle(write)
        self.seconds += time.perf_counter() - started
        self.writes += 1
        self._written_snapshots += len(new)
        self._last = time.monotonic()
        self._first_chunk_written = True

    def wait(self) -> None:
        """Until the last checkpoint is written (before the ended run is saved over it)."""
        if self._pending is not None:
            self._settle(self._pending.result)
        if self._committer is not None:
            self._committer.shutdown()
            self._committer = None

    def discard(self) -> None:
        """Take the run out of the history again if it trained nothing (stopped or refused while compiling)."""
        self.wait()
        if self.history is not None and not self.run.history:
            with contextlib.suppress(HistoryError):
                self.history.delete(self.run.run_id)

    def _settle(self, write: Callable, *args) -> None:
        """Run `write` (a write, or a pending write's result), keeping the HistoryError it raises as `error`."""
        self._pending = None
        try:
            write(*args)
        except HistoryError as exc:
            log.warning("Checkpoints of run %s stopped: %s", self.run.name, exc)
            self.error = exc


def _missing(run_id: str) -> HistoryError:
    return HistoryError(f"No saved run has the id {run_id}; it may have been deleted by another session.")


def _last_step(curves: str) -> int:
    history = json.loads(curves)
    return history[-1]["step"] if history else 0


def _confusion_matrix(stored: str | None) -> np.ndarray | None:
    return None if stored is None else np.array(json.loads(stored), np.int64)


def config_diff(configs: dict[str, RunConfig]) -> list[dict]:
    """The settings on which the labelled configs differ: one row per setting, one column per label.

    A setting the network, optimiser or schedule ignores (an MLP's widths for softmax regression, momentum under
    Adam, the decay factor under a constant schedule) counts as absent: None.
    """
    flat = {label: _used_settings(config) for label, config in configs.items()}
    settings = sorted({key for values in flat.values() for key in values})
    rows = []
    for setting in settings:
        values = {label: values.get(setting) for label, values in flat.items()}
        if len({json.dumps(v) for v in values.values()}) > 1:
            rows.append({"setting": setting, **values})
    return rows


def _used_settings(config: RunConfig) -> dict:
    """The config's settings, flattened, without those its network, optimiser or schedule ignore (no dropout counts
    as absent too: a network without it and one that has none to offer do not differ)."""
    model, tc = config.model, config.train
    used = {"arch", "init", *model.network.hyperparameters, *(("init_std",) * (model.init == "normal"))}
    used -= {"dropout"} if not model.dropout else set()
    ignored = {*(("train.momentum", "train.nesterov") * (tc.optimizer is not Optimizer.MOMENTUM)),
               *(("train.decay",) * (tc.schedule is not Schedule.EXPONENTIAL))}
    settings = flatten(config.to_dict(), separator=".")
    return {key: list(value) if isinstance(value, tuple) else value for key, value in settings.items()
            if (not key.startswith("model.") or key[6:] in used) and key not in ignored}

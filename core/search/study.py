"""Hyperparameter search with Optuna: trials trained by the chunked engine and pruned at its evaluation points,
and studies kept in an SQLAlchemy database shared by any number of workers.

A study's `SearchSetup` (the space, the data split, epochs and evaluation points) is stored in the study itself, so
every worker that joins it (`python -m core search --study NAME --storage URL`, or the Search page) trains the
same kind of trial. Samplers, pruners and budgets belong to one worker. Every trial's run goes to the run history
under a name holding the study and the trial number; the trial keeps the run's id (`RUN_ID_ATTR`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable

import optuna
import sqlalchemy.exc
from optuna.trial import FrozenTrial, Trial, TrialState

from core.data.splits import Splits
from core.errors import ConfigError, StudyError
from core.networks.base import Model
from core.parsing import member_of
from core.search.space import PRUNER_STARTUP_TRIALS, Budget, Pruner, Sampler, SearchSetup, SearchSpace
from core.store.history import RunHistory
from core.training.config import RunConfig
from core.training.loop import train
from core.training.runs import Run

SETUP_ATTR = "digit_lab_setup"  # the study's SearchSetup, as a dict, in its user attributes
RUN_ID_ATTR = "run_id"  # a trial's run in the run history
RUN_NAME_ATTR = "run_name"
STATUS_ATTR = "status"  # how a trial's run ended: "finished", "pruned at epoch 0.50", "diverged at step 12"...
SQLITE_BUSY_SECONDS = 30.0  # how long a worker waits for another one's write to the shared SQLite file
CREATE_ATTEMPTS = 5  # tries at opening a storage while another worker creates its tables


def make_sampler(kind: Sampler, space: SearchSpace, seed: int | None = None) -> optuna.samplers.BaseSampler:
    """Optuna's sampler of that kind. TPE runs with the constant liar, so parallel workers do not all try the same
    region while each other's trials are still running."""
    kind = member_of(Sampler, kind, "sampler")
    if kind is Sampler.TPE:
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if kind is Sampler.RANDOM:
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.GridSampler(space.grid(), seed=seed)


def make_pruner(kind: Pruner) -> optuna.pruners.BasePruner:
    kind = member_of(Pruner, kind, "pruner")
    if kind is Pruner.MEDIAN:
        return optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS)
    if kind is Pruner.HALVING:
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def storage_url(history: RunHistory) -> str:
    """The default study storage: the run history's own database, so that every trial's run is where its study is."""
    if history.path is None:
        return history.url.render_as_string(hide_password=False)
    return f"sqlite:///{history.path.absolute()}"


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage at an SQLAlchemy URL (`sqlite:///path`, `postgresql+psycopg://user@host/db`...).
    A StudyError says why it cannot be opened."""
    sqlite = url.startswith("sqlite")
    for attempt in range(CREATE_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs={"connect_args": {"timeout": SQLITE_BUSY_SECONDS}} if sqlite else None)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError, sqlalchemy.exc.OperationalError) as exc:
            # workers started together on a new database race to create Optuna's tables: the loser's CREATE
            # fails ("already exists", a duplicate type on PostgreSQL); a moment later the tables are there
            racing = isinstance(exc, sqlalchemy.exc.IntegrityError) or "already exists" in str(exc)
            if not racing or attempt == CREATE_ATTEMPTS - 1:
                raise _storage_error(url, exc) from None
            time.sleep(0.5 * (attempt + 1))
        except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError, RuntimeError) as exc:
            raise _storage_error(url, exc) from None
    raise AssertionError("unreachable")


def _storage_error(url: str, exc: Exception) -> StudyError:
    return StudyError(f"Cannot open the study storage {_without_password(url)}: {str(exc).splitlines()[0]}")


def _without_password(url: str) -> str:
    try:
        return sqlalchemy.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """The studies in a storage, oldest first."""
    return [s.study_name for s in storage.get_all_studies()]


def open_study(storage: optuna.storages.BaseStorage, name: str, setup: SearchSetup | None = None,
               sampler: optuna.samplers.BaseSampler | None = None,
               pruner: optuna.pruners.BasePruner | None = None) -> tuple[optuna.Study, SearchSetup]:
    """The study `name` and its setup: created with `setup` when it does not exist yet; an existing study keeps the
    setup stored in it. Without `setup`, the study must exist (a StudyError otherwise)."""
    name = name.strip()
    if not name:
        raise ConfigError("Name the study.")
    if setup is None and name not in study_names(storage):
        raise StudyError(f"There is no study '{name}' in this storage.")
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True,
                                    sampler=sampler, pruner=pruner)
        if study.direction is not optuna.study.StudyDirection.MAXIMIZE:
            raise StudyError(f"The study '{name}' was not made by Digit Lab (it minimises).")
        stored = study.user_attrs.get(SETUP_ATTR)
        if stored is None:
            if setup is None:
                raise StudyError(f"The study '{name}' was not made by Digit Lab (it holds no search setup).")
            study.set_user_attr(SETUP_ATTR, setup.to_dict())
            return study, setup
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise StudyError(f"The study storage cannot be used: {str(exc).splitlines()[0]}") from None
    try:
        return study, SearchSetup.from_dict(stored)
    except (ConfigError, TypeError) as exc:
        raise StudyError(f"The study '{name}' holds a search setup this Digit Lab cannot read: {exc}") from None


def trial_run_name(study: str, number: int, run_config: RunConfig, splits: Splits) -> str:
    """e.g. 'digits #3 784-128-10 relu': the study, the trial number and the network."""
    return f"{study} #{number} {Model(run_config.model, splits.spec).describe()}"


def search(study: optuna.Study, setup: SearchSetup, splits: Splits, history: RunHistory, budget: Budget, *,
           on_chunk: Callable[[int, Run], None] = lambda number, run: None,
           on_trial: Callable[[FrozenTrial], None] = lambda trial: None,
           stop_requested: Callable[[], bool] = lambda: False) -> None:
    """Run this worker's trials of `study` (Optuna's `optimize`, which other workers may run on the same study at
    the same time). Each trial trains with the chunked engine, reports the validation accuracy at every evaluation
    point and is pruned when the study's pruner says so; its run (pruned ones stopped where they were) goes to
    `history`. `on_chunk(trial number, run)` hears each chunk; `on_trial` each ended trial; `stop_requested()`,
    read after each trial, ends the search there. An exception that ends a trial midway (a Stop on a page) marks
    it failed, with its run saved as stopped, and is raised."""
    current: list[int] = []  # the trial being trained, until it is told

    def objective(trial: Trial) -> float:
        current[:] = [trial.number]
        config = setup.run_config(setup.space.suggest(trial), len(splits.y_train))
        run = Run(name=trial_run_name(study.study_name, trial.number, config, splits), config=config,
                  spec=splits.spec)
        trial.set_user_attr(RUN_ID_ATTR, run.run_id)
        trial.set_user_attr(RUN_NAME_ATTR, run.name)
        pruned, evaluations = False, 0
        try:
            for progress in train(config, splits):
                run.record(progress)
                on_chunk(trial.number, run)
                if progress.val_accuracy is not None:
                    evaluations += 1
                    trial.report(progress.val_accuracy, evaluations)
                    if not progress.done and trial.should_prune():
                        pruned = True
                        break
        finally:
            run.finish(splits)
            status = f"pruned at epoch {run.epochs_completed:.2f}" if pruned else run.status_text
            trial.set_user_attr(STATUS_ATTR, status)
            if run.history:  # not stopped while it compiled
                history.save(run)
        if pruned:
            raise optuna.TrialPruned(status)
        return math.nan if run.val_accuracy is None else run.val_accuracy  # NaN (diverged): a failed trial

    def ended(study_: optuna.Study, trial: FrozenTrial) -> None:
        current.clear()
        on_trial(trial)
        if stop_requested():
            study_.stop()

    try:
        study.optimize(objective, n_trials=budget.trials, timeout=budget.seconds, callbacks=[ended],
                       catch=(), gc_after_trial=False)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise StudyError(f"The study storage failed: {str(exc).splitlines()[0]}") from None
    except BaseException:
        if current:  # stopped inside a trial by something Optuna does not catch: do not leave it running
            with contextlib.suppress(RuntimeError, ValueError, sqlalchemy.exc.SQLAlchemyError):  # already told
                study.tell(current[0], state=TrialState.FAIL)
        raise

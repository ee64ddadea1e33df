"""The run history's tables as SQLAlchemy Core sees them, and the Alembic revisions that build them.

The tables are created and changed only by the migrations in `core/store/migrations` (each a frozen record of one
step); these definitions are what the queries use and must match the newest revision (a test checks they do).
"""

from __future__ import annotations

import sqlalchemy as sa

VERSION_TABLE = "digit_lab_alembic_version"  # Digit Lab's own: Optuna keeps its `alembic_version` in the database

REVISIONS = ("0001", "0002", "0003", "0004", "0005")  # in order; a history file of `PRAGMA user_version` k (the
HEAD = REVISIONS[-1]  # numbered migrations before Alembic) is at REVISIONS[k - 1]
SCHEMA_VERSION = len(REVISIONS)  # what a SQLite file's user_version says after an upgrade (so older versions refuse it)

OPTUNA_TABLES = frozenset({  # the study storage's tables, which may share the database (Optuna 5's schema)
    "alembic_version", "studies", "study_directions", "study_user_attributes", "study_system_attributes",
    "trials", "trial_params", "trial_values", "trial_user_attributes", "trial_system_attributes",
    "trial_intermediate_values", "trial_heartbeats", "version_info",
})

metadata = sa.MetaData()

runs = sa.Table(
    "runs", metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("arch", sa.Text, nullable=False),
    sa.Column("architecture", sa.Text, nullable=False),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("curves", sa.Text, nullable=False),
    sa.Column("val_accuracy", sa.Float),
    sa.Column("test_accuracy", sa.Float),
    sa.Column("epochs", sa.Float, nullable=False),
    sa.Column("compile_seconds", sa.Float, nullable=False),
    sa.Column("train_seconds", sa.Float, nullable=False),
    sa.Column("samples_per_second", sa.Float, nullable=False),
    sa.Column("created", sa.Text, nullable=False),
    sa.Column("saved", sa.Text, nullable=False),
    sa.Column("params", sa.LargeBinary),
    sa.Column("confusion", sa.Text),  # the test-set confusion matrix as JSON
    sa.Column("data", sa.Text),  # the data description as JSON (NULL: MNIST, all that early versions trained on)
    sa.Column("writer", sa.Text),  # the process writing a run in training ("host:pid:start"; NULL once it ended)
    sa.Column("owner", sa.Text),  # who saved it (the signed-in user's e-mail; NULL: saved without signing in)
)

snapshots = sa.Table(
    "snapshots", metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("epoch", sa.Integer, primary_key=True),
    sa.Column("params", sa.LargeBinary, nullable=False),
)

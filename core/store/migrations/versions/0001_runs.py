"""One row per run (user_version 1 before Alembic)."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "runs",
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
    )

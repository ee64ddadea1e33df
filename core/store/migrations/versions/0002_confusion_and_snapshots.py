"""The test-set confusion matrix and the per-epoch parameter snapshots (user_version 2 before Alembic)."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("runs", sa.Column("confusion", sa.Text))
    op.create_table(
        "snapshots",
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("epoch", sa.Integer, primary_key=True),
        sa.Column("params", sa.LargeBinary, nullable=False),
    )
    op.create_index("runs_by_created", "runs", ["created"])

"""The process writing a run that is still training ("host:pid:start"; NULL once it has ended) (user_version 4
before Alembic)."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.add_column("runs", sa.Column("writer", sa.Text))

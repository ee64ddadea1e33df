"""The description of the data a run trained on; NULL: MNIST, all that earlier versions trained on (user_version 3
before Alembic)."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column("runs", sa.Column("data", sa.Text))

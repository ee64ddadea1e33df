"""Who saved a run: the signed-in user's e-mail; NULL: saved without signing in (user_version 5)."""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.add_column("runs", sa.Column("owner", sa.Text))
    op.create_index("runs_by_owner", "runs", ["owner", "created"])

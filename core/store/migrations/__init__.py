"""Alembic's migrations of the run history (imported only when a database needs one: Alembic is slow to import).

Each revision in `versions/` is one step of the schema, written out as it was (never changed once released); the
first four are the numbered SQL migrations that histories used before Alembic (`PRAGMA user_version` 1 to 4).
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    config.attributes["connection"] = connection
    return config


def upgrade(connection: sa.Connection, start: str | None) -> None:
    """Bring the database to the newest revision inside the connection's open transaction; `start`: the revision a
    database without Alembic's version table is at (a history from before Alembic), None for one just created."""
    config = _config(connection)
    if start is not None:
        command.stamp(config, start)
    command.upgrade(config, "head")


def revisions() -> list[str]:
    """Every revision, oldest first."""
    return [script.revision for script in reversed(list(ScriptDirectory.from_config(_config()).walk_revisions()))]


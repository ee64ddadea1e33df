"""Alembic's environment: the migrations run on the connection RunHistory passes in, inside its transaction, and
record their revision in Digit Lab's own version table (never Optuna's `alembic_version`)."""

from alembic import context

from core.store.schema import VERSION_TABLE

context.configure(connection=context.config.attributes["connection"], version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()

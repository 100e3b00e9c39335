"""Alembic's environment: migrates the app's database towards every table the `hotline` package defines.

Run through `hotline db upgrade` (and every start of the app), never with a separate alembic.ini.

To regenerate the initial migration after new models land (done once at merge time, while no
deployed database depends on revision 0001 yet):

    rm hotline/migrations/versions/0001_*.py
    HOTLINE_DATABASE_URL=sqlite:///$(mktemp -d)/empty.db .venv/bin/hotline db revision "initial schema" --rev-id 0001

For a later change: change the models, then, against a scratch database brought to head first,
    HOTLINE_DATABASE_URL=sqlite:////tmp/scratch.db .venv/bin/hotline db upgrade
    HOTLINE_DATABASE_URL=sqlite:////tmp/scratch.db .venv/bin/hotline db revision "what changed"
and read the generated file before committing it. tests/test_migrations.py fails while the models and
the migrations disagree.
"""

from __future__ import annotations

from alembic import context

from hotline.migrations import include_name, target_metadata

config = context.config


def _configure(**kw) -> None:
    context.configure(
        target_metadata=target_metadata(),
        include_name=include_name,
        compare_type=True,
        **kw,
    )


def run_offline() -> None:
    """`--sql`: print the DDL instead of running it."""
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run(connection) -> None:
    # SQLite cannot ALTER most things in place: batch mode copies the table instead.
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from hotline.db import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()

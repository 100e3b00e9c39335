"""Alembic migrations, run from code: `hotline db upgrade` and every start of the app bring the schema to head.

Several processes may start at once (gunicorn workers, the worker, a second worker): one migrates while
the others wait on a lock — PostgreSQL's advisory lock, or a file lock beside an SQLite database — and
then find the schema already at head.
"""

from __future__ import annotations

import fcntl
import functools
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from hotline import models  # noqa: F401  (registers every table in SQLModel.metadata)
from hotline.db import without_time_limit

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
# Tables in the app's database that migrations do not own: APScheduler's job store makes its own.
FOREIGN_TABLES = {"apscheduler_jobs"}
# pg_advisory_xact_lock key for "migrating hotline's schema" (any constant; ASCII of "hotl" here).
MIGRATION_LOCK = 0x686F746C


def target_metadata():
    """SQLModel's metadata with every table registered: all of them are defined in hotline/models.py."""
    return SQLModel.metadata


def include_name(name, type_, parent_names) -> bool:
    return not (type_ == "table" and name in FOREIGN_TABLES)


def alembic_config(url: str, connection: Connection | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache  # read once per process: every create_app asks, and reading the scripts costs ~0.1 s
def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    """Held around the whole transaction, commit included, so the next process sees the finished schema."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    Path(database).parent.mkdir(parents=True, exist_ok=True)  # the instance folder, on a first start
    with open(f"{database}.migrate-lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


def _advisory_lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Held until this transaction ends, so the next process reads the schema this one committed.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


def upgrade(engine: Engine) -> str:
    """Bring the schema to head; returns what happened: "current", "upgraded" or "stamped"."""
    url = engine.url.render_as_string(hide_password=False)
    with _sqlite_file_lock(engine), engine.begin() as connection, without_time_limit(connection):
        _advisory_lock(connection)
        config = alembic_config(url, connection)
        revision = current(connection)
        if revision is not None and revision == head():
            return "current"
        if revision is None and _has_hotline_tables(connection):
            # Made by create_all before migrations existed: complete it the same way and adopt it.
            log.warning("database has hotline tables but no migration record: creating missing tables, stamping head")
            target_metadata().create_all(connection)
            command.stamp(config, "head")
            return "stamped"
        command.upgrade(config, "head")
        return "upgraded"


def _has_hotline_tables(connection: Connection) -> bool:
    existing = set(inspect(connection).get_table_names())
    return bool(existing & set(target_metadata().tables))


def revision(engine: Engine, message: str, rev_id: str | None = None) -> None:
    """Write a new migration from the difference between the models and this (up-to-date) database."""
    url = engine.url.render_as_string(hide_password=False)
    with engine.begin() as connection:
        command.revision(alembic_config(url, connection), message=message, autogenerate=True, rev_id=rev_id)
    head.cache_clear()  # the new script is the head now

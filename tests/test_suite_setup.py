"""The suite's own set-up: a test's database, migrated once per process and handed on by copying (SQLite)
or emptying (PostgreSQL), is the database a first start would make: every table, the head revision, no rows,
ids from 1."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import Session, func, select

from hotline import migrations
from hotline.db import make_engine
from hotline.models import Street
from tests.conftest import _database_url, _migrated, add_street


def _as_first_start(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            assert migrations.current(connection) == migrations.head()
            context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": migrations.include_name})
            assert compare_metadata(context, migrations.target_metadata()) == []
            tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
            assert tables == set(migrations.target_metadata().tables)
            assert all(connection.execute(text(f'SELECT COUNT(*) FROM "{table}"')).scalar() == 0 for table in tables)
        with Session(engine) as session:
            assert add_street(session, "Clayhall Avenue", 101).id == 1
    finally:
        engine.dispose()


def test_a_new_test_database_is_what_a_first_start_makes(tmp_path):
    url = _database_url(tmp_path)
    _migrated(url)
    _as_first_start(url)


def test_the_next_test_gets_it_back_however_the_last_one_left_it(tmp_path):
    url = _database_url(tmp_path / "first")
    _migrated(url)
    engine = make_engine(url)
    with Session(engine) as session:
        for code in range(101, 104):
            add_street(session, f"Street {code}", code)
        assert session.exec(select(func.count()).select_from(Street)).one() == 3
    engine.dispose()
    if url.startswith("postgresql"):  # one database for the whole suite: emptied, its ids from 1 again
        _migrated(url)
        _as_first_start(url)
        engine = make_engine(url)  # and a test that changed the schema leaves nothing of it behind
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE street ADD COLUMN left_behind integer"))
            connection.execute(text("CREATE TABLE left_behind (id integer)"))
        engine.dispose()
        _migrated(url)
        _as_first_start(url)
    else:  # a file per test: the next test's is new
        second = _database_url(tmp_path / "second")
        _migrated(second)
        _as_first_start(second)

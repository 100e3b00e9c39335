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
from tests.conftest import _database_url, _migrated, _RuleBuiltOnce, add_street, build_app


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


def test_every_route_builds_its_urls_with_the_code_werkzeug_compiles(tmp_path):
    """The suite compiles each route's URL builders once per process (tests/conftest.py, _RuleBuiltOnce):
    a later app's builders are the code Werkzeug itself compiles for that rule, and build the same URLs."""
    from flask import url_for
    from werkzeug.routing import Rule

    build_app(tmp_path / "first", twilio=True)
    app = build_app(tmp_path / "second", twilio=True)
    rules = list(app.url_map.iter_rules())
    assert len(rules) > 40 and all(isinstance(rule, _RuleBuiltOnce) for rule in rules)
    for rule in rules:
        for append_unknown, built in ((False, rule._build), (True, rule._build_unknown)):
            own = Rule._compile_builder(rule, append_unknown)
            assert built.__func__ is not own
            assert (built.__code__.co_code, built.__code__.co_consts, built.__code__.co_varnames, built.__defaults__) == (
                own.__code__.co_code, own.__code__.co_consts, own.__code__.co_varnames, own.__defaults__), rule.rule
    with app.test_request_context():
        assert url_for("static", filename="web.css", v=3) == "/static/web.css?v=3"

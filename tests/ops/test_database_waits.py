"""No webhook waits on the database for long: HOTLINE_DB_TIMEOUT bounds each wait (connecting, a statement,
a lock held by someone else), so Twilio hears 503 (texts) or the caller the spoken apology well inside its
15 s. The stalled server is tested process-level in test_database_outage.py; here, a lock held elsewhere."""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, func, select

from hotline.db import make_engine, without_time_limit
from hotline.models import InboundEvent, Report
from tests.conftest import NUMBERS, SignedClient, add_members, add_street, build_app

GENEROUS = 5.0  # the bound is 1 s here; without one, SQLite waited 30 s and PostgreSQL for ever


@pytest.fixture
def app(tmp_path):
    app = build_app(tmp_path, twilio=True, environ={"HOTLINE_DB_TIMEOUT": "1"})
    rt = app.extensions["hotline"]
    with Session(rt.engine) as session:
        add_members(session, add_street(session, "Clayhall Avenue", 101), NUMBERS[:4])
    yield app
    rt.engine.dispose()


@contextmanager
def locked_elsewhere(rt):
    """Another process holds the lock a webhook needs: SQLite's write lock, or on PostgreSQL the events table."""
    url = rt.engine.url
    if url.get_backend_name() == "sqlite":
        other = sqlite3.connect(url.database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    other = make_engine(url.render_as_string(hide_password=False))
    with other.connect() as connection:
        connection.execute(text("LOCK TABLE inboundevent IN ACCESS EXCLUSIVE MODE"))
        yield
        connection.rollback()
    other.dispose()


def timed(request):
    started = time.monotonic()
    response = request()
    return time.monotonic() - started, response


def test_a_text_is_answered_503_at_once_while_someone_else_holds_the_database(app):
    rt, twilio = app.extensions["hotline"], SignedClient(app)
    with locked_elsewhere(rt):
        waited, response = timed(lambda: twilio.sms(NUMBERS[0], "ladder against number 9", sid="SM" + "9" * 32))
    assert response.status_code == 503 and waited < GENEROUS, waited
    with Session(rt.engine) as session:
        assert session.exec(select(func.count()).select_from(Report)).one() == 0

    response = twilio.sms(NUMBERS[0], "ladder against number 9", sid="SM" + "9" * 32)  # Twilio's fallback, or a retry
    assert response.status_code == 200 and b"sent to 3 neighbours" in response.data
    assert twilio.sms(NUMBERS[0], "ladder against number 9", sid="SM" + "9" * 32).status_code == 200
    with Session(rt.engine) as session:
        assert session.exec(select(func.count()).select_from(Report)).one() == 1


def test_a_call_hears_the_apology_at_once_while_someone_else_holds_the_database(app):
    rt, twilio = app.extensions["hotline"], SignedClient(app)
    call = twilio.call(NUMBERS[0]).start()  # the greeting only reads: it is answered even while the database is held
    with locked_elsewhere(rt):
        waited, call = timed(lambda: call.press("9"))  # a key is a step kept in the database: it must write
    assert waited < GENEROUS, waited
    assert "not working properly" in call.text and "999" in call.text and call.ended
    with Session(rt.engine) as session:
        assert session.get(InboundEvent, f"call:{call.sid}:1") is None


def test_the_bound_is_a_few_seconds_by_default_and_reaches_the_database(tmp_path):
    app = build_app(tmp_path, twilio=False)
    rt = app.extensions["hotline"]
    assert rt.config.db_timeout_seconds == 3
    with rt.engine.connect() as connection:
        if rt.engine.dialect.name == "sqlite":
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 3000
        else:
            assert connection.execute(text("SHOW statement_timeout")).scalar() == "3s"
    rt.engine.dispose()


@pytest.mark.postgres
def test_migrations_may_take_longer_than_the_bound(postgres_url):
    """Waiting for another process's migration, or DDL on a big table, is not a webhook: no limit there."""
    engine = make_engine(postgres_url, timeout=1)
    with pytest.raises(OperationalError, match="statement timeout"):
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_sleep(1.6)"))
    with engine.begin() as connection, without_time_limit(connection):
        connection.execute(text("SELECT pg_sleep(1.6)"))
    with engine.connect() as connection:  # lifted for that transaction only
        assert connection.execute(text("SHOW statement_timeout")).scalar() == "1s"
    engine.dispose()

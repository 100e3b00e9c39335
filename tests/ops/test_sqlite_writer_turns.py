"""SQLite writers take turns on a lock of ours (an flock beside the database) instead of sleeping in SQLite's busy
handler, which waits 1, 2, 5 … 100 ms a time however soon the lock comes free: hotline/db.py, WriterTurns."""

from __future__ import annotations

import fcntl
import os
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from hotline.db import make_engine

# SQLite files of its own, whatever the suite's database: the SQLite pass only (`no_database`, pyproject.toml).
pytestmark = pytest.mark.no_database


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'turns.db'}", timeout=2.0)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)"))
    yield engine
    engine.dispose()


def turn_is_free(engine) -> bool:
    """Whether another writer could take the turn now (asked from a file descriptor of its own)."""
    fd = os.open(f"{engine.url.database}-writer", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_a_write_holds_the_turn_until_its_transaction_commits(engine):
    with engine.connect() as connection:
        connection.execute(text("SELECT count(*) FROM note"))
        assert turn_is_free(engine)  # reading takes no turn
        connection.execute(text("INSERT INTO note (body) VALUES ('one')"))
        assert not turn_is_free(engine)
        connection.execute(text("INSERT INTO note (body) VALUES ('two')"))  # the same transaction: no second turn
        connection.commit()
        assert turn_is_free(engine)


def test_a_rolled_back_write_gives_the_turn_back(engine):
    with engine.connect() as connection:
        connection.execute(text("INSERT INTO note (body) VALUES ('one')"))
        assert not turn_is_free(engine)
        connection.rollback()
        assert turn_is_free(engine)
        assert connection.execute(text("SELECT count(*) FROM note")).scalar() == 0


def test_a_failed_write_gives_the_turn_back(engine):
    with pytest.raises(Exception):
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO note (id, body) VALUES (1, 'one')"))
            connection.execute(text("INSERT INTO note (id, body) VALUES (1, 'again')"))  # the same key
    assert turn_is_free(engine)


def test_a_second_writer_waits_for_the_turn_and_then_writes(engine):
    first = engine.connect()
    first.execute(text("INSERT INTO note (body) VALUES ('first')"))
    started, done, errors = threading.Event(), threading.Event(), []

    def second():
        try:
            started.set()
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO note (body) VALUES ('second')"))
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=second)
    thread.start()
    started.wait(5)
    assert not done.wait(0.3)  # still waiting for the turn (a negative check: it cannot pass by being slow)
    first.commit()
    first.close()
    assert done.wait(10) and not errors
    thread.join()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT body FROM note ORDER BY id")).scalars().all() == ["first", "second"]


def test_a_turn_held_too_long_elsewhere_is_database_is_locked_after_the_busy_timeout(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'held.db'}", timeout=0.3)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)"))
    fd = os.open(f"{engine.url.database}-writer", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process's writer, stuck
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO note (body) VALUES ('waits')"))
    finally:
        os.close(fd)
    with engine.begin() as connection:  # free again: the write goes through
        connection.execute(text("INSERT INTO note (body) VALUES ('now')"))
    engine.dispose()


def test_a_statement_that_commits_itself_gives_the_turn_back(engine):
    with engine.connect() as connection:
        connection.execute(text("CREATE TABLE other (id INTEGER PRIMARY KEY)"))  # DDL outside a transaction: autocommitted
        assert turn_is_free(engine)

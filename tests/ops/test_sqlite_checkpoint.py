"""SQLite's write-ahead log is copied back into the database file by a thread of the process, never by the
commit of a request (which would wait ~20 ms for it every twenty-odd reports): hotline/db.py, _Checkpointer."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from hotline import db
from hotline.db import make_engine
from tests.standin.processes import wait_until  # the thread runs when woken: waited for, not timed

# SQLite files of its own, whatever the suite's database: the SQLite pass only (`no_database`, pyproject.toml).
pytestmark = pytest.mark.no_database


def _engine(tmp_path):
    path = tmp_path / "wal.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)"))
    return engine, path


def _commit_notes(engine, count: int) -> None:
    for n in range(count):
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO note (body) VALUES (:body)"), {"body": f"note {n} " + "x" * 3000})


def test_a_commit_never_checkpoints_the_log_itself(tmp_path):
    engine, path = _engine(tmp_path)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    engine.dispose()


def test_every_tenth_writing_commit_has_the_thread_copy_the_log_into_the_database_file(tmp_path, monkeypatch):
    engine, path = _engine(tmp_path)
    _commit_notes(engine, 1)  # one note (the table's creation committed itself): still only in the log
    size = os.path.getsize(path)
    _commit_notes(engine, db._Checkpointer.CHECKPOINT_EVERY - 2)  # 9 writing commits in all: nobody checkpoints yet
    with engine.begin() as connection:  # a transaction that only read is no reason to
        connection.execute(text("SELECT count(*) FROM note"))
    assert os.path.getsize(path) == size
    _commit_notes(engine, 1)  # the tenth
    assert wait_until(lambda: os.path.getsize(path) > size + 9 * 3000, timeout=10, interval=0.01), "the database file never received the log"
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM note")).scalar() == db._Checkpointer.CHECKPOINT_EVERY
    engine.dispose()


def test_a_log_that_never_catches_up_is_restarted(tmp_path, monkeypatch):
    """Writes that never pause leave a PASSIVE checkpoint always a little behind, and the log is then never
    started afresh: past RESTART_PAGES a round restarts it (the round is run here, not by the thread)."""
    monkeypatch.setattr(db._Checkpointer, "CHECKPOINT_EVERY", 10**9)  # the thread stays out of this test
    engine, path = _engine(tmp_path)
    _commit_notes(engine, 20)
    assert db.checkpoint(str(path))[1] >= 20  # copied, but not started afresh: the log is as long as before
    monkeypatch.setattr(db._Checkpointer, "RESTART_PAGES", 10)
    assert db._Checkpointer.tidy(str(path)) == ["PASSIVE", "RESTART"]
    _commit_notes(engine, 1)  # a writer after a RESTART starts the log again from its first page
    assert db.checkpoint(str(path))[1] <= 3
    assert db._Checkpointer.tidy(str(path)) == ["PASSIVE"]
    engine.dispose()


def test_a_database_gone_is_no_error_for_the_thread(tmp_path):
    assert db.checkpoint(str(tmp_path / "never-made.db")) is None
    assert not (tmp_path / "never-made.db").exists()  # and it is not created by asking

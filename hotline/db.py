"""The database engine (with its waits bounded), sessions, and the aware-UTC datetime column every table uses."""

from __future__ import annotations

import fcntl
import logging
import math
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Callable, Iterator, NamedTuple

import psycopg
from sqlalchemy import DateTime, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, create_engine

# psycopg raises this (an OperationalError) when a wait it was given a limit for runs out.
_WAIT_TIMEOUT = getattr(psycopg.errors, "_WaitTimeout", psycopg.OperationalError)
log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Stores aware datetimes as UTC and hands them back aware; a naive value is a bug, so refuse it."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use datetime.now(timezone.utc)")
        value = value.astimezone(timezone.utc)
        # SQLite has no time zones: keep the UTC wall time.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def make_engine(url: str, *, timeout: float | None = None) -> Engine:
    """The engine for `url`. With `timeout` (HOTLINE_DB_TIMEOUT), no one wait on the database lasts much
    longer: a new connection, a statement, a lock, a pooled connection, an answer from a server gone silent.

    What a webhook waits on, and what bounds it: PostgreSQL's connect_timeout (connecting), its
    statement_timeout (a slow statement or a lock held by someone else: the server cancels it), a
    client-side limit on each wait for the server's answer (a database or network that accepts and
    then says nothing, where the server never sees the query to time it out), and the pool's own
    timeout. On SQLite, its busy timeout (another process holding the write lock). A stalled
    PostgreSQL can cost a request two such waits: the pooled connection's ping, then a new connection.
    """
    if url.startswith("sqlite"):
        return _sqlite_engine(url, timeout)
    if timeout is None:
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    engine = create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=20, pool_timeout=timeout, connect_args=_postgres_limits(url, timeout)
    )
    event.listen(engine, "do_connect", lambda dialect, record, cargs, cparams: _AnswerWithin.open(timeout, *cargs, **cparams))
    return engine


def _sqlite_engine(url: str, timeout: float | None) -> Engine:
    busy = 30.0 if timeout is None else timeout
    in_memory = make_url(url).database in (None, "", ":memory:")  # one connection, no pool to wait for
    pool = {} if in_memory else {"pool_timeout": busy}
    connect_args = {"check_same_thread": False, "timeout": busy}
    if not in_memory:
        connect_args["factory"] = WriterTurns
    engine = create_engine(url, connect_args=connect_args, **pool)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        # WAL lets the dispatcher write while webhooks read; foreign keys are off by default in SQLite.
        if ":memory:" not in url:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy * 1000)}")  # waiting for another writer's lock
        cursor.execute("PRAGMA synchronous=NORMAL")
        if not in_memory:
            cursor.execute("PRAGMA wal_autocheckpoint=0")  # never inside a request: _Checkpointer does it
        cursor.close()

    return engine


_READS = ("SELECT", "PRAGMA", "EXPLAIN", "SAVEPOINT", "RELEASE")


class _TurnCursor(sqlite3.Cursor):
    """Anything but a plain read takes the writer turn first; a statement that leaves no transaction open (a read
    that took it, a WITH … SELECT; DDL outside a transaction) hands it back at once."""

    def execute(self, sql, parameters=()):
        return self._in_turn(super().execute, sql, parameters, writes=not sql.lstrip()[:9].upper().startswith(_READS))

    def executemany(self, sql, seq_of_parameters):
        return self._in_turn(super().executemany, sql, seq_of_parameters, writes=True)

    def _in_turn(self, run, sql, parameters, *, writes: bool):
        if writes:
            self.connection.take_turn()
        try:
            return run(sql, parameters)
        finally:
            if not self.connection.in_transaction:
                self.connection.turn_over()


class WriterTurns(sqlite3.Connection):
    """A SQLite connection that takes the database's writer turn before its first write of a transaction and
    gives it back when the transaction ends.

    SQLite lets one connection write at a time; another that finds the write lock taken sleeps in SQLite's busy
    handler — 1, 2, 5, 10 … 100 ms a time — however soon the lock comes free. Two gunicorn workers taking
    reports at once met it in a quarter of their reports (8 ms at the 90th percentile, 34 ms at the 99th,
    busy machine). The turn is an exclusive flock on `<database>-writer`, asked for again every 50 µs to 1 ms
    while another holds it, and dropped by the kernel if its process dies; it bounds the wait as SQLite's
    busy timeout does (then "database is locked", as SQLite would say). A writer that is not ours (the sqlite3
    shell, a backup) still meets SQLite's own lock."""

    def __init__(self, database, *args, **kwargs):
        super().__init__(database, *args, **kwargs)
        self._database = str(database)
        self._turn_path = f"{database}-writer"
        self._turn_wait = float(kwargs.get("timeout", 5.0))
        self._turn_fd: int | None = None
        self._turn_held = False

    def cursor(self, factory=_TurnCursor):
        return super().cursor(factory)

    def take_turn(self) -> None:
        if self._turn_held:
            return
        if self._turn_fd is None:
            self._turn_fd = os.open(self._turn_path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline, pause = time.monotonic() + self._turn_wait, 0.00005
        while True:
            try:
                fcntl.flock(self._turn_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise sqlite3.OperationalError("database is locked (another connection's write went on too long)") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.001)
        self._turn_held = True

    def turn_over(self) -> None:
        if self._turn_held:
            self._turn_held = False
            fcntl.flock(self._turn_fd, fcntl.LOCK_UN)

    def commit(self) -> None:
        wrote = self._turn_held
        try:
            super().commit()
        finally:
            self.turn_over()
        if wrote:
            _Checkpointer.committed(self._database)

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.turn_over()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.turn_over()
            if self._turn_fd is not None:
                os.close(self._turn_fd)
                self._turn_fd = None


class _Checkpointer:
    """Copies SQLite's write-ahead log back into the database file (a checkpoint) in a thread of its own.

    Left to SQLite, whichever commit takes the log past 1,000 pages does it, and waits for it: fsyncs and the
    copy, ~20 ms here, every twenty-odd reports (a report writes ~40 pages: its rows and their indexes) — the
    webhook's slowest hundredth. Our connections never checkpoint (wal_autocheckpoint=0); every
    CHECKPOINT_EVERY writing commits of a process wake one thread, which runs a PASSIVE checkpoint (it blocks no
    reader and no writer) on a connection of its own while the requests go on. Under a steady stream of
    writes a PASSIVE checkpoint never quite catches up, so the log is never started afresh and keeps
    growing: past RESTART_PAGES the thread runs a RESTART checkpoint instead, which makes writers wait for it
    (one ~20 ms pause in a few hundred reports, not one in twenty). One thread a process, started at the
    first commit, asleep on an event while nothing is written (an idle hotline costs nothing)."""

    CHECKPOINT_EVERY = 10
    RESTART_PAGES = 10_000  # 40 MB of log
    _lock = threading.Lock()
    _due: dict[str, int] = {}  # database path → commits since its last checkpoint was asked for
    _wanted: set[str] = set()
    _wake: threading.Event | None = None
    _pid: int | None = None

    @classmethod
    def committed(cls, path: str) -> None:
        """A transaction that wrote to the database at `path` has committed (WriterTurns.commit says so)."""
        with cls._lock:
            cls._due[path] = cls._due.get(path, 0) + 1
            if cls._due[path] < cls.CHECKPOINT_EVERY:
                return
            cls._due[path] = 0
            cls._wanted.add(path)
            if cls._pid != os.getpid():  # first use, or a forked child (threads do not survive a fork)
                cls._pid, cls._wake = os.getpid(), threading.Event()
                threading.Thread(target=cls._run, args=(cls._wake,), name="sqlite-checkpoint", daemon=True).start()
            cls._wake.set()

    @classmethod
    def _run(cls, wake: threading.Event) -> None:
        while True:
            wake.wait()
            with cls._lock:
                wake.clear()
                paths, cls._wanted = cls._wanted, set()
            for path in paths:
                try:
                    cls.tidy(path)
                except Exception:  # the thread must outlive anything one database does
                    log.exception("checkpointing %s failed", path)

    @classmethod
    def tidy(cls, path: str) -> list[str]:
        """One round for one database: PASSIVE, then RESTART if the log has grown past RESTART_PAGES."""
        done = checkpoint(path)
        if done is None or done[1] <= cls.RESTART_PAGES:
            return ["PASSIVE"]
        checkpoint(path, "RESTART")
        return ["PASSIVE", "RESTART"]


def checkpoint(path: str, mode: str = "PASSIVE") -> tuple[int, int, int] | None:
    """A checkpoint of the SQLite database at `path`: (busy, pages in the log, pages copied), or None if it
    could not run (the file is gone: a test's database, or a disposed one). RESTART waits up to a second for
    the writer of the moment, and makes the next ones wait for it."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=0 if mode == "PASSIVE" else 1.0)
    except sqlite3.Error:
        return None
    try:
        connection.execute("PRAGMA synchronous=NORMAL")
        return tuple(connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone())
    except sqlite3.Error:
        log.debug("could not checkpoint %s", path, exc_info=True)
        return None
    finally:
        connection.close()


def _postgres_limits(url: str, timeout: float) -> dict:
    """libpq's connect_timeout (whole seconds, at least 2) and the server's statement_timeout, unless the URL sets its own."""
    query = make_url(url).query
    limits = {}
    if "connect_timeout" not in query:
        limits["connect_timeout"] = max(2, math.ceil(timeout))
    options = query.get("options", "")
    options = " ".join(options) if isinstance(options, tuple) else options
    if "statement_timeout" not in options:
        limits["options"] = f"{options} -c statement_timeout={int(timeout * 1000)}".strip()
    return limits


class _AnswerWithin(psycopg.Connection):
    """A psycopg connection that waits at most `answer_within` seconds for the server's answer, then
    closes itself: the statement timeout cannot help when the query never reached the server. The
    margin lets the server's own statement_timeout answer first when it can (the connection then
    stays usable)."""

    MARGIN = 0.5
    answer_within: float | None = None

    @classmethod
    def open(cls, timeout: float, *args, **kwargs) -> "_AnswerWithin":
        connection = cls.connect(*args, **kwargs)
        connection.answer_within = timeout + cls.MARGIN
        return connection

    def wait(self, gen, *args, **kwargs):
        if len(args) > 1 or kwargs.get("timeout") is not None:  # psycopg's own limit (a cancel, a notify)
            return super().wait(gen, *args, **kwargs)
        limit = self.answer_within
        try:
            return super().wait(gen, *args, **{**kwargs, "timeout": limit})
        except _WAIT_TIMEOUT as exc:
            self.pgconn.finish()  # mid-conversation: unusable, so the pool throws it away
            raise psycopg.OperationalError(f"the database did not answer within {limit:g} s") from exc


@contextmanager
def without_time_limit(connection: Connection) -> Iterator[None]:
    """Lift the limits for work that may rightly take long (migrations waiting on each other, DDL on big
    tables) inside the current transaction."""
    raw = connection.connection.dbapi_connection
    if not isinstance(raw, _AnswerWithin):
        yield
        return
    connection.execute(text("SET LOCAL statement_timeout = 0"))
    limit, raw.answer_within = raw.answer_within, None
    try:
        yield
    finally:
        raw.answer_within = limit


class OverTimeLimit(Exception):
    """Work run under `time_limit` ran out of its time: its statement was cancelled, or not started."""


@contextmanager
def time_limit(session: Session, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> Iterator[None]:
    """Bound what `session` runs in this block by `seconds` altogether, in place of HOTLINE_DB_TIMEOUT's
    per-statement bound: before each statement, the time left becomes PostgreSQL's statement_timeout (and the
    client's wait for the answer); on SQLite a progress handler interrupts a statement once the time is up.
    Raises OverTimeLimit; the caller then rolls the session back. `clock` is for tests."""
    connection = session.connection()
    raw = connection.connection.dbapi_connection
    postgres = connection.dialect.name == "postgresql"
    deadline = clock() + seconds
    waits = raw.answer_within if isinstance(raw, _AnswerWithin) else None
    usual = connection.exec_driver_sql("SHOW statement_timeout").scalar() if postgres else None

    def before_statement(_conn, cursor, _statement, _parameters, _context, _executemany):
        left = deadline - clock()
        if left <= 0:
            raise OverTimeLimit(f"over {seconds:g} s")
        if postgres:
            cursor.execute(f"SET LOCAL statement_timeout = {max(1, int(left * 1000))}")
            if isinstance(raw, _AnswerWithin):
                raw.answer_within = left + _AnswerWithin.MARGIN

    event.listen(connection, "before_cursor_execute", before_statement)
    if isinstance(raw, sqlite3.Connection):
        raw.set_progress_handler(lambda: int(clock() > deadline), 1000)
    try:
        yield
    except OperationalError as exc:
        if isinstance(exc.orig, psycopg.errors.QueryCanceled) or "interrupted" in str(exc.orig) or "did not answer" in str(exc.orig):
            raise OverTimeLimit(f"over {seconds:g} s") from exc
        raise
    else:
        event.remove(connection, "before_cursor_execute", before_statement)
        if postgres:  # the rest of the transaction: the usual bound again
            connection.exec_driver_sql("SELECT set_config('statement_timeout', %(usual)s, true)", {"usual": usual})
    finally:
        if event.contains(connection, "before_cursor_execute", before_statement):
            event.remove(connection, "before_cursor_execute", before_statement)
        if isinstance(raw, sqlite3.Connection):
            raw.set_progress_handler(None, 0)
        if isinstance(raw, _AnswerWithin):
            raw.answer_within = waits


class _Compiled(NamedTuple):
    sql: str
    defaults: dict  # the statement's own values (constants, LIMIT …), under their parameter names
    order: list  # parameter names as the SQL takes them: in order (SQLite, a name maybe twice) or by name (psycopg)
    processors: list  # (name, bind processor) of each parameter whose type has one, once each
    positional: bool
    results: list | None  # a result processor (or None) for each column, or None when no column needs one
    new_id: str | None  # an INSERT's new primary key: "lastrowid" (SQLite) or "returning" (PostgreSQL)


class Prebuilt:
    """A Core statement of the report path, compiled once per dialect and run on the DB-API cursor of a connection
    in a transaction (a session's): a report runs nine or ten, by SMS or by voice. SQLAlchemy's execution layer — the compiled
    cache's lookup, an execution context, a result object — costs ~85 µs of CPU a statement here, more than
    SQLite takes to run most of them (bench/webhook.py --in-process; docs/benchmarks.md §1).

    It sends the SQL SQLAlchemy would send, with the parameters bound the same way (the types' own bind
    processors: UTCDateTime's too) and the rows' values converted the same way (SQLite's 0/1 to a bool, …);
    the engine's and connection's `before_cursor_execute` / `after_cursor_execute` listeners see each statement
    (the statement counts in the tests, `time_limit`, whose own exception passes through unchanged); a DB-API
    error is raised as SQLAlchemy raises it (IntegrityError, OperationalError …, a lost connection invalidated).
    An INSERT's or UPDATE's columns are fixed when it is built (`columns`), not taken from each call's parameters.
    Handed back to SQLAlchemy, to run as usual: a statement whose SQL depends on its parameters (an `IN` list of an
    `expanding` parameter), and a write that leaves out a column whose default Python makes. Not honoured: the
    engine's `echo` logging and `schema_translate_map` (the hotline uses neither); a value a type cannot bind (a
    naive datetime) raises its own error, not SQLAlchemy's StatementError around it."""

    def __init__(self, statement, *, columns: list[str] | None = None):
        self.statement = statement
        self._columns = columns
        self._compiled: dict[tuple[str, str], _Compiled | None] = {}

    def rows(self, connection: Connection, parameters: dict) -> list[tuple]:
        """The statement's rows (a SELECT)."""
        compiled = self._compiled_for(connection)
        if compiled is None:
            return connection.execute(self.statement, parameters).all()
        cursor = self._execute(connection, compiled, parameters)
        try:
            rows = cursor.fetchall()
        except Exception as exc:
            connection._handle_dbapi_exception(exc, compiled.sql, parameters, cursor, None)
        finally:
            cursor.close()
        if compiled.results is None:
            return rows
        return [tuple(value if process is None else process(value) for process, value in zip(compiled.results, row)) for row in rows]

    def run(self, connection: Connection, parameters: dict | list[dict]) -> int:
        """Rows written (an INSERT, UPDATE or DELETE); a list of parameter sets runs once for each (executemany)."""
        compiled = self._compiled_for(connection)
        if compiled is None:
            return connection.execute(self.statement.execution_options(preserve_rowcount=True), parameters).rowcount
        cursor = self._execute(connection, compiled, parameters)
        try:
            return cursor.rowcount
        finally:
            cursor.close()

    def insert(self, connection: Connection, parameters: dict) -> int:
        """An INSERT of one row: its new primary key (as SQLAlchemy gets it: the cursor's lastrowid, or RETURNING)."""
        compiled = self._compiled_for(connection)
        if compiled is None or compiled.new_id is None:
            return connection.execute(self.statement, parameters).inserted_primary_key[0]
        cursor = self._execute(connection, compiled, parameters)
        try:
            return cursor.lastrowid if compiled.new_id == "lastrowid" else cursor.fetchone()[0]
        except Exception as exc:
            connection._handle_dbapi_exception(exc, compiled.sql, parameters, cursor, None)
        finally:
            cursor.close()

    def _compiled_for(self, connection: Connection) -> _Compiled | None:
        key = (connection.dialect.name, connection.dialect.driver)
        if key not in self._compiled:
            self._compiled[key] = self._compile(connection.dialect)
        return self._compiled[key]

    def _compile(self, dialect) -> _Compiled | None:
        compiled = self.statement.compile(dialect=dialect, column_keys=self._columns)
        if compiled.post_compile_params or compiled.literal_execute_params or compiled.escaped_bind_names:
            return None  # SQL that depends on the parameters: SQLAlchemy runs it
        if compiled.insert_prefetch or compiled.update_prefetch:
            return None  # a column left out whose default Python makes (created_at's utcnow): SQLAlchemy fills it in
        # The names the SQL uses: `binds` also holds each anonymous parameter under a second, internal name.
        names = list(compiled.positiontup) if compiled.positional else list(dict.fromkeys(compiled.bind_names.values()))
        used = [compiled.binds[name] for name in dict.fromkeys(names)]
        defaults = {compiled.bind_names[bind]: bind.effective_value for bind in used if not bind.required}
        processors = {compiled.bind_names[bind]: bind.type._cached_bind_processor(dialect) for bind in used}
        columns = getattr(self.statement, "selected_columns", None)  # a SELECT's (or UNION's); none for writes
        results = [column.type._cached_result_processor(dialect, None) for column in columns] if columns is not None else []
        new_id = None
        if compiled.isinsert and len(compiled.statement.table.primary_key) == 1:
            new_id = "lastrowid" if compiled.postfetch_lastrowid else "returning" if compiled.effective_returning else None
        return _Compiled(compiled.string, defaults, list(names), [(name, process) for name, process in processors.items() if process],
                         compiled.positional, results if any(results) else None, new_id)

    @staticmethod
    def _execute(connection: Connection, compiled: _Compiled, parameters):
        many = isinstance(parameters, list)
        bound = [Prebuilt._bind(compiled, one) for one in parameters] if many else Prebuilt._bind(compiled, parameters)
        if not connection.in_transaction():
            connection.begin()  # as connection.execute would (autobegin); committed with the connection
        sql, cursor = compiled.sql, None
        try:
            cursor = connection.connection.dbapi_connection.cursor()
            listening = connection._has_events or connection.engine._has_events
            if listening:
                for listener in connection.dispatch.before_cursor_execute:
                    sql, bound = listener(connection, cursor, sql, bound, None, many)
            if many:
                cursor.executemany(sql, bound)
            else:
                cursor.execute(sql, bound)
            if listening:
                connection.dispatch.after_cursor_execute(connection, cursor, sql, bound, None, many)
        except BaseException as exc:
            if cursor is not None:
                cursor.close()
            if isinstance(exc, Exception) and not isinstance(exc, connection.dialect.loaded_dbapi.Error):
                raise  # a listener's own exception (time_limit's OverTimeLimit) passes through, as SQLAlchemy lets it
            connection._handle_dbapi_exception(exc, sql, bound, cursor, None)
        return cursor

    @staticmethod
    def _bind(compiled: _Compiled, parameters: dict):
        values = {**compiled.defaults, **parameters}
        for name, process in compiled.processors:
            values[name] = process(values[name])
        if compiled.positional:
            return tuple([values[name] for name in compiled.order])
        return {name: values[name] for name in compiled.order}


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits when the block ends normally and rolls back when it raises."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


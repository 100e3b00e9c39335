"""hotline/db.py's Prebuilt: a report-path statement run on the DB-API cursor must behave as SQLAlchemy running it
would — the same rows and types, the same parameters' handling, listeners, errors, transaction and writer turn."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, event, func, insert, or_, update
from sqlalchemy import select as core_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from hotline.db import Prebuilt, UTCDateTime, session_scope, utcnow
from hotline.models import InboundEvent, Street
from tests.conftest import add_street

EVENTS = InboundEvent.__table__
_EVENT_COLUMNS = ["key", "kind", "phone", "created_at", "reply"]
INSERT_EVENT = Prebuilt(insert(EVENTS), columns=_EVENT_COLUMNS)
SINCE = Prebuilt(
    core_select(EVENTS.c.key, EVENTS.c.created_at, EVENTS.c.reply.is_(None).label("unanswered"))
    .where(EVENTS.c.created_at >= bindparam("since", type_=UTCDateTime), or_(EVENTS.c.kind == "sms", EVENTS.c.kind == "call"))
    .order_by(EVENTS.c.key)
)


def event_row(n: int, at: datetime, reply: str | None = "Thanks") -> dict:
    return {"key": f"sms:SM{n}", "kind": "sms", "phone": "+447700900001", "created_at": at, "reply": reply}


def test_rows_are_what_sqlalchemy_gives_types_and_all(rt, session):
    add_street(session, "Clayhall Avenue", 101, moderated=True)
    add_street(session, "Beehive Lane", 102)
    now = utcnow()
    with session_scope(rt.engine) as writing:
        INSERT_EVENT.run(writing.connection(), [event_row(1, now - timedelta(hours=2)), event_row(2, now, reply=None), event_row(3, now)])
    streets = Prebuilt(core_select(Street.name, Street.moderated).where(Street.code >= bindparam("code")).order_by(Street.name))
    with Session(rt.engine) as reading:
        connection = reading.connection()
        mine = SINCE.rows(connection, {"since": now - timedelta(hours=1)})
        theirs = connection.execute(SINCE.statement, {"since": now - timedelta(hours=1)}).all()
        assert mine == [tuple(row) for row in theirs] == [("sms:SM2", now, True), ("sms:SM3", now, False)]
        assert mine[0][1].tzinfo is not None  # aware UTC, as UTCDateTime hands back
        assert streets.rows(connection, {"code": 0}) == [("Beehive Lane", False), ("Clayhall Avenue", True)]
        assert all(type(moderated) is bool for _, moderated in streets.rows(connection, {"code": 0}))  # SQLite's 0/1 made bools


def test_parameters_are_bound_by_their_types_and_a_naive_time_is_refused(rt):
    with session_scope(rt.engine) as session:
        INSERT_EVENT.run(session.connection(), event_row(1, datetime(2026, 11, 30, 9, 0, tzinfo=timezone(timedelta(hours=1)))))
    with Session(rt.engine) as session:
        assert session.get(InboundEvent, "sms:SM1").created_at == datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
        with pytest.raises(ValueError, match="naive"):
            SINCE.rows(session.connection(), {"since": datetime(2026, 11, 30)})
        with pytest.raises(KeyError):
            SINCE.rows(session.connection(), {})  # a parameter left out is an error, never NULL


def test_writes_answer_how_many_rows_and_a_list_runs_once_for_each(rt):
    now = utcnow()
    with session_scope(rt.engine) as session:
        assert INSERT_EVENT.run(session.connection(), [event_row(n, now) for n in range(3)]) in (3, -1)  # executemany may not count
        forget = Prebuilt(update(EVENTS).where(EVENTS.c.phone == bindparam("b_phone")).values(reply=None))
        assert forget.run(session.connection(), {"b_phone": "+447700900001"}) == 3
        assert forget.run(session.connection(), {"b_phone": "+447700900999"}) == 0


def test_listeners_see_every_statement(rt):
    seen = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(rt.engine, "before_cursor_execute", count)
    try:
        with Session(rt.engine) as session:
            SINCE.rows(session.connection(), {"since": utcnow()})
    finally:
        event.remove(rt.engine, "before_cursor_execute", count)
    assert len(seen) == 1 and seen[0].startswith("SELECT inboundevent")


def test_a_database_error_is_sqlalchemys_and_the_transaction_rolls_back_whole(rt):
    now = utcnow()
    with session_scope(rt.engine) as session:
        INSERT_EVENT.run(session.connection(), event_row(1, now))
    with pytest.raises(IntegrityError):  # what the webhook catches for a twin of a MessageSid
        with session_scope(rt.engine) as session:
            INSERT_EVENT.run(session.connection(), event_row(2, now))
            INSERT_EVENT.run(session.connection(), event_row(1, now))
    with Session(rt.engine) as session:
        assert [row[0] for row in SINCE.rows(session.connection(), {"since": now - timedelta(hours=1)})] == ["sms:SM1"]


def test_an_in_list_is_left_to_sqlalchemy_with_the_same_answer(rt, session):
    add_street(session, "Clayhall Avenue", 101)
    add_street(session, "Beehive Lane", 102)
    named = Prebuilt(core_select(func.count()).select_from(Street).where(Street.code.in_(bindparam("codes", expanding=True))))
    with Session(rt.engine) as reading:
        assert named.rows(reading.connection(), {"codes": [101, 102, 103]}) == [(2,)]
        assert named.rows(reading.connection(), {"codes": [102]}) == [(1,)]


@pytest.mark.no_database
def test_on_sqlite_a_write_takes_the_writer_turn_until_the_commit(tmp_path):
    """SQLite's writer turn (hotline/db.py WriterTurns; PostgreSQL has none), on a database of its own."""
    from sqlmodel import SQLModel

    from hotline.db import make_engine
    from tests.ops.test_sqlite_writer_turns import turn_is_free

    engine = make_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    SQLModel.metadata.create_all(engine)

    with session_scope(engine) as session:
        SINCE.rows(session.connection(), {"since": utcnow()})
        assert turn_is_free(engine)  # a read takes no turn
        INSERT_EVENT.run(session.connection(), event_row(1, utcnow()))
        assert not turn_is_free(engine)
    assert turn_is_free(engine)
    engine.dispose()


def test_an_insert_answers_its_new_id(rt):
    add = Prebuilt(insert(Street.__table__), columns=["name", "code", "aliases", "postcodes", "moderated", "open", "created_at"])
    street = {"aliases": ["Clayhall"], "postcodes": ["IG5 0AA"], "open": False, "created_at": utcnow()}
    with session_scope(rt.engine) as session:
        first = add.insert(session.connection(), {**street, "name": "Clayhall Avenue", "code": 101, "moderated": False})
        second = add.insert(session.connection(), {**street, "name": "Beehive Lane", "code": 102, "moderated": True})
    with Session(rt.engine) as session:
        assert second == first + 1
        clayhall, beehive = session.get(Street, first), session.get(Street, second)
        assert (clayhall.name, clayhall.aliases, beehive.moderated) == ("Clayhall Avenue", ["Clayhall"], True)  # JSON bound as JSON


def the_report_paths_statements() -> dict[str, Prebuilt]:
    from hotline.reports import fanout, inbox, incidents, intake

    found = {
        "inbox context": inbox._CONTEXT, "inbox event": inbox._INSERT_EVENT, "limits": intake._LIMITS,
        "incident streets": intake._INCIDENT_STREETS, "report": intake._INSERT_REPORT, "report streets": intake._INSERT_REPORT_STREET,
        "incident": intake._INSERT_INCIDENT, "report's incident": intake._SET_REPORT_INCIDENT, "touch": intake._TOUCH_INCIDENT,
        "followed": incidents._FOLLOWED, "recipients of a street": fanout._COUNT[False],
    }
    for is_update in (False, True):
        for urgent in (False, True):
            for others in ((), ("pl",), ("pl", "ur")):
                found[f"deliveries {is_update} {urgent} {others}"] = fanout._insert_deliveries(is_update, urgent, others)
    return found


@pytest.mark.no_database
@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_every_statement_of_the_report_path_runs_on_the_cursor_with_only_the_parameters_its_sql_names(dialect):
    """None is handed back to SQLAlchemy (which would cost the ~85 µs a statement Prebuilt exists to save), and each
    binds the parameters its SQL names, once each: not also SQLAlchemy's second, internal name of an anonymous one."""
    import re

    from sqlalchemy.dialects import postgresql, sqlite

    engine_dialect = sqlite.dialect() if dialect == "sqlite" else postgresql.psycopg.dialect()
    for name, prebuilt in the_report_paths_statements().items():
        compiled = prebuilt._compile(engine_dialect)
        assert compiled is not None, name
        if not compiled.positional:
            assert set(compiled.order) == set(re.findall(r"%\((.+?)\)s", compiled.sql)), name
        assert len({n for n, _ in compiled.processors}) == len(compiled.processors), name


def test_a_write_leaving_out_a_column_python_defaults_is_left_to_sqlalchemy_and_gets_the_default(rt):
    """created_at's default is utcnow(), made by SQLAlchemy for each row: run on the cursor it would be NULL."""
    without_time = Prebuilt(insert(EVENTS), columns=["key", "kind", "phone", "reply"])
    assert without_time._compile(rt.engine.dialect) is None  # handed back to SQLAlchemy
    before = utcnow()
    with session_scope(rt.engine) as session:
        assert without_time.run(session.connection(), {"key": "sms:SM9", "kind": "sms", "phone": "+447700900001", "reply": None}) == 1
    with Session(rt.engine) as session:
        assert session.get(InboundEvent, "sms:SM9").created_at >= before - timedelta(seconds=1)


def test_a_listeners_own_exception_passes_through_unchanged(rt):
    """time_limit stops a slow page by raising OverTimeLimit from a cursor listener: it must reach its handler as
    itself, as it does when SQLAlchemy runs the statement, not wrapped in a StatementError."""
    from hotline.db import OverTimeLimit

    def refuse(*_):
        raise OverTimeLimit("too slow")

    event.listen(rt.engine, "before_cursor_execute", refuse)
    try:
        with pytest.raises(OverTimeLimit):
            with session_scope(rt.engine) as session:
                SINCE.rows(session.connection(), {"since": utcnow()})
    finally:
        event.remove(rt.engine, "before_cursor_execute", refuse)

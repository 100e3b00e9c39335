"""The report path of /twilio/sms stays a fixed, small number of SQL statements, whatever the street's size:
every one is a round trip inside the webhook's single transaction (bench/webhook.py measures what each costs).
If a change needs another, raise the number here and say why in docs/benchmarks.md."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event
from sqlmodel import Session, func, select

from hotline.models import Delivery, InboundEvent, Report, ReportKind
from tests.conftest import NUMBERS, add_members, add_street

# A new report: what the hour's replies and this MessageSid say, with the sender and their streets; which incident
# the text follows (none); the member's limits and recent texts; the recipients' count; the report, its street, its
# incident and the report's link to it; the deliveries; the event with its reply.
NEW_REPORT = 10
# An update (the member's next text within the hour): the incident it follows comes with its streets (one read),
# and touching the incident instead of opening one.
UPDATE = 9


@contextmanager
def statements(rt):
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))

    event.listen(rt.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(rt.engine, "before_cursor_execute", count)


def reads_come_first(seen: list[str]) -> bool:
    """Every read before the first write: on SQLite the first write takes the database's one writer turn until the
    commit, and a read after it would keep other webhooks waiting for no reason."""
    writes = [n for n, statement in enumerate(seen) if not statement.startswith("SELECT")]
    return bool(writes) and all(not statement.startswith("SELECT") for statement in seen[writes[0]:])


def notify(rt) -> int:
    """On PostgreSQL the worker is told with a NOTIFY in the same transaction."""
    return 1 if rt.engine.dialect.name == "postgresql" else 0


@pytest.fixture
def street(session):
    clayhall = add_street(session, "Clayhall Avenue", 101)
    add_members(session, clayhall, NUMBERS[:6])
    return clayhall


def deliveries(rt, report_id: int) -> int:
    with Session(rt.engine) as session:
        return session.exec(select(func.count()).select_from(Delivery).where(Delivery.report_id == report_id)).one()


def latest_report(rt) -> Report:
    with Session(rt.engine) as session:
        return session.exec(select(Report).order_by(Report.id.desc())).first()


def test_a_new_report_is_a_fixed_number_of_statements(rt, twilio, street):
    twilio.sms(NUMBERS[1], "HELP")  # the pool's first connection is not the report's
    with statements(rt) as seen:
        response = twilio.sms(NUMBERS[0], "man trying car door handles, red hoodie")
    assert response.status_code == 200
    report = latest_report(rt)
    assert report.kind == ReportKind.REPORT and report.incident_id is not None and report.phone == NUMBERS[0]
    assert deliveries(rt, report.id) == 5
    assert len(seen) == NEW_REPORT + notify(rt), "\n".join(seen)
    assert reads_come_first(seen), "\n".join(seen)


def test_an_update_is_a_fixed_number_of_statements(rt, twilio, street):
    twilio.sms(NUMBERS[0], "man trying car door handles, red hoodie")
    first = latest_report(rt)
    with statements(rt) as seen:
        response = twilio.sms(NUMBERS[0], "he has gone towards the park")
    assert response.status_code == 200
    update = latest_report(rt)
    assert update.kind == ReportKind.UPDATE and update.incident_id == first.incident_id
    assert deliveries(rt, update.id) == 5
    assert len(seen) == UPDATE + notify(rt), "\n".join(seen)
    assert reads_come_first(seen), "\n".join(seen)


def test_the_statements_do_not_grow_with_the_street(rt, session, twilio, street):
    add_members(session, street, NUMBERS[6:200])
    twilio.sms(NUMBERS[1], "HELP")
    with statements(rt) as seen:
        twilio.sms(NUMBERS[0], "man trying car door handles, red hoodie")
    assert deliveries(rt, latest_report(rt).id) == 199
    assert len(seen) == NEW_REPORT + notify(rt), "\n".join(seen)


def test_a_repeated_message_sid_is_one_statement_and_the_same_answer(rt, twilio, street):
    first = twilio.sms(NUMBERS[0], "man trying car door handles, red hoodie", sid="SM" + "7" * 32)
    with statements(rt) as seen:
        again = twilio.sms(NUMBERS[0], "man trying car door handles, red hoodie", sid="SM" + "7" * 32)
    assert again.data == first.data
    assert len(seen) == 1, "\n".join(seen)
    with Session(rt.engine) as session:
        assert session.exec(select(func.count()).select_from(Report)).one() == 1
        assert session.exec(select(func.count()).select_from(InboundEvent)).one() == 1

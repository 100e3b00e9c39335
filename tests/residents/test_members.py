"""Members as coordinators manage them: what an approval sends, and when."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlmodel import select

from hotline.config import QuietHours
from hotline.delivery import segments
from hotline.models import AlertChannel, Channel, Delivery, Member, Membership, Street
from hotline.residents import members
from tests.conftest import LANDLINES, NUMBERS, add_street

LATE = datetime(2026, 1, 15, 23, 40, tzinfo=timezone.utc)  # winter: London time is UTC
NEXT_MORNING = datetime(2026, 1, 16, 7, 0, tzinfo=timezone.utc)


def pending(session, street: Street, phone: str, alerts: AlertChannel) -> Membership:
    member = members.get_or_create(session, phone, alerts=alerts)
    membership = members.join(session, member, street, now=LATE)
    session.commit()
    return membership


def test_approving_a_landline_at_night_rings_it_in_the_morning_with_words_for_a_phone(rt, session):
    config = rt.config.with_overrides(quiet_hours=QuietHours.parse("22:00-07:00"))
    street = add_street(session, "Clayhall Avenue", 101)
    landline = pending(session, street, LANDLINES[0], AlertChannel.CALL)
    mobile = pending(session, street, NUMBERS[0], AlertChannel.SMS)

    assert members.approve(session=session, config=config, membership=landline, now=LATE) == 1
    assert members.approve(session=session, config=config, membership=mobile, now=LATE) == 1
    session.commit()

    call = session.exec(select(Delivery).where(Delivery.phone == LANDLINES[0])).one()
    assert call.channel == Channel.CALL and call.next_attempt_at == NEXT_MORNING
    assert "text" not in call.body.lower() and "call this number back" in call.body
    text = session.exec(select(Delivery).where(Delivery.phone == NUMBERS[0])).one()
    assert text.channel == Channel.SMS and text.next_attempt_at == LATE  # a text never waits
    assert "Text what you see" in text.body and segments.count(text.body) == 1


def test_approving_a_call_member_by_day_rings_at_once(rt, session):
    config = rt.config.with_overrides(quiet_hours=QuietHours.parse("22:00-07:00"))
    street = add_street(session, "Clayhall Avenue", 101)
    landline = pending(session, street, LANDLINES[1], AlertChannel.CALL)
    noon = datetime(2026, 1, 16, 12, 0, tzinfo=timezone.utc)
    members.approve(session=session, config=config, membership=landline, now=noon)
    session.commit()
    assert session.exec(select(Delivery.next_attempt_at)).one() == noon
    assert session.exec(select(Member.alerts).where(Member.phone == LANDLINES[1])).one() == AlertChannel.CALL


@pytest.mark.postgres
def test_a_bulk_import_refreshes_postgresqls_statistics_at_once(session):
    """A report sent straight after a big import is planned from fresh statistics, not from autovacuum's later ones
    (a 500-member street's recipients were counted by a nested loop: 43 ms instead of 0.9 ms)."""
    from sqlalchemy import text

    from hotline.residents import csv_import

    add_street(session, "Clayhall Avenue", 101)
    started = session.execute(text("SELECT clock_timestamp()")).scalar()
    session.commit()
    checked = csv_import.check(session, "phone,street\n" + "".join(f"{n},Clayhall Avenue\n" for n in NUMBERS[:60]))
    assert csv_import.apply(session, checked) == 60
    session.commit()
    analysed = dict(session.execute(text(
        "SELECT relname, last_analyze FROM pg_stat_user_tables WHERE relname IN ('member', 'membership')"
    )).all())
    assert set(analysed) == {"member", "membership"} and all(at is not None and at >= started for at in analysed.values())
    assert session.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'membership'")).scalar() >= 60

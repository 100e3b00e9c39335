"""Each scheduled job's effect, on a clock the test controls."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import Session, func, select

from hotline.db import utcnow
from hotline.delivery import outbox
from hotline.models import (
    AlertChannel,
    Channel,
    Coordinator,
    CoordinatorStreet,
    Delivery,
    DeliveryState,
    Member,
    Membership,
    MembershipStatus,
    Report,
    SimulatedMessage,
)
from hotline.ops import jobs
from hotline.reports import intake
from hotline.residents import members
from tests.conftest import NUMBERS, add_members, add_street

# A winter day, so London time is UTC and the arithmetic below reads plainly.
NOON = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
ADMIN_PHONE, STREET_PHONE = "+447911200001", "+447911200002"


@pytest.fixture
def streets(session):
    clayhall = add_street(session, "Clayhall Avenue", 101)
    beehive = add_street(session, "Beehive Lane", 102)
    add_members(session, clayhall, NUMBERS[:3])
    add_members(session, beehive, NUMBERS[10:12])
    return clayhall, beehive


def _coordinator(session, email, *, phone=None, admin=False, streets=()):
    person = Coordinator(email=email, password_hash="x", is_admin=admin, phone=phone)
    session.add(person)
    session.flush()
    for street in streets:
        session.add(CoordinatorStreet(coordinator_id=person.id, street_id=street.id))
    session.commit()
    return person


def _report(session, rt, phone, text, *, now):
    outcome = intake.submit(session=session, config=rt.config, phone=phone, text=text, member=members.find(session, phone), now=now)
    session.commit()
    return outcome.report


def _digests(session) -> dict[str, str]:
    return {d.phone: d.body for d in session.exec(select(Delivery).where(Delivery.report_id.is_(None)))}


# --- daily digest ------------------------------------------------------------------------------


def test_digest_tells_each_coordinator_about_their_own_streets(rt, session, streets):
    clayhall, beehive = streets
    _coordinator(session, "admin@example.org", phone=ADMIN_PHONE, admin=True)
    _coordinator(session, "clay@example.org", phone=STREET_PHONE, streets=[clayhall])
    _coordinator(session, "nophone@example.org", streets=[clayhall])
    _report(session, rt, NUMBERS[0], "van with no plates", now=NOON - timedelta(hours=3))
    _report(session, rt, NUMBERS[1], "gate left open", now=NOON - timedelta(hours=2))
    _report(session, rt, NUMBERS[0], "yesterday's news", now=NOON - timedelta(days=2))
    members.join(session, members.get_or_create(session, NUMBERS[50]), beehive)
    session.commit()

    assert jobs.daily_digest(rt, now=NOON) == {"digests": 2}
    digests = _digests(session)
    assert set(digests) == {ADMIN_PHONE, STREET_PHONE}
    assert "2 new reports" in digests[STREET_PHONE] and "waiting to join" not in digests[STREET_PHONE]
    assert "2 new reports" in digests[ADMIN_PHONE] and "1 waiting to join" in digests[ADMIN_PHONE]
    assert all(len(body) <= 160 for body in digests.values())


def test_digest_sends_nothing_when_there_is_nothing_to_say(rt, session, streets):
    clayhall, beehive = streets
    _coordinator(session, "bee@example.org", phone=STREET_PHONE, streets=[beehive])
    _report(session, rt, NUMBERS[0], "only on Clayhall", now=NOON - timedelta(hours=1))
    assert jobs.daily_digest(rt, now=NOON) == {"digests": 0}
    assert _digests(session) == {}


def test_digest_counts_alerts_that_did_not_arrive_and_reports_held(rt, session, streets):
    clayhall, _ = streets
    clayhall.moderated = True
    session.add(clayhall)
    session.commit()
    _coordinator(session, "clay@example.org", phone=STREET_PHONE, streets=[clayhall])
    _report(session, rt, NUMBERS[0], "held for a coordinator", now=NOON - timedelta(days=3))
    session.add(Delivery(phone=NUMBERS[2], street_id=clayhall.id, body="x", state=DeliveryState.FAILED, updated_at=NOON - timedelta(hours=1)))
    session.commit()
    jobs.daily_digest(rt, now=NOON)
    body = _digests(session)[STREET_PHONE]
    assert "1 held for you" in body and "1 alert not delivered" in body and "new report" not in body


def test_digest_is_not_sent_to_a_coordinator_phone_that_opted_out(rt, session, streets):
    _coordinator(session, "admin@example.org", phone=ADMIN_PHONE, admin=True)
    members.opt_out(session, ADMIN_PHONE)
    _report(session, rt, NUMBERS[0], "something to tell", now=NOON - timedelta(hours=1))
    assert jobs.daily_digest(rt, now=NOON) == {"digests": 0}


def test_digest_goes_out_through_the_outbox(rt, session, streets, twilio_api):
    _coordinator(session, "admin@example.org", phone=ADMIN_PHONE, admin=True)
    _report(session, rt, NUMBERS[0], "ladder against no 12", now=NOON - timedelta(hours=1))
    outbox.dispatch_due(session=session, carrier=rt.carrier, config=rt.config, limit=100, now=NOON)
    jobs.daily_digest(rt, now=NOON)
    outbox.dispatch_due(session=session, carrier=rt.carrier, config=rt.config, limit=100, now=NOON)
    assert [m["Body"] for m in twilio_api.to(ADMIN_PHONE)] == ["Street Watch daily: 1 new report; 1 incident open. https://hotline.example.org"]


# --- pending memberships -------------------------------------------------------------------------


def test_pending_joins_expire_after_the_pending_days(rt, session, streets):
    clayhall, _ = streets
    old = members.join(session, members.get_or_create(session, NUMBERS[40]), clayhall, now=NOON - timedelta(days=15))
    recent = members.join(session, members.get_or_create(session, NUMBERS[41]), clayhall, now=NOON - timedelta(days=13))
    session.commit()
    assert jobs.expire_pending(rt, now=NOON) == {"expired": 1}
    session.refresh(old)
    session.refresh(recent)
    assert (old.status, recent.status) == (MembershipStatus.EXPIRED, MembershipStatus.PENDING)
    assert old.decided_at == NOON
    active = session.exec(select(func.count(Membership.id)).where(Membership.status == MembershipStatus.ACTIVE)).one()
    assert active == 5  # approved members are never expired


def test_an_expired_join_can_be_asked_for_again(rt, session, streets):
    clayhall, _ = streets
    member = members.get_or_create(session, NUMBERS[40])
    members.join(session, member, clayhall, now=NOON - timedelta(days=20))
    session.commit()
    jobs.expire_pending(rt, now=NOON)
    again = members.join(session, member, clayhall, now=NOON)
    assert again.status == MembershipStatus.PENDING and again.joined_at == NOON


# --- retention ----------------------------------------------------------------------------------


def test_retention_blanks_old_reports_and_their_alerts_but_keeps_the_counts(rt, session, streets, twilio_api):
    old = _report(session, rt, NUMBERS[0], "man at the back of no 7", now=NOON - timedelta(days=181))
    old.recording_url = "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE" + "1" * 32
    session.add(old)
    session.add(SimulatedMessage(sid="SMold", to=NUMBERS[1], body="man at the back of no 7", created_at=NOON - timedelta(days=181)))
    session.commit()
    new = _report(session, rt, NUMBERS[1], "bike taken from shed", now=NOON - timedelta(days=179))

    summary = jobs.retention(rt, now=NOON)
    assert summary == {"reports": 1, "deliveries": 2, "sightings": 0, "simulated": 1, "events": 0}
    session.expire_all()
    old, new = session.get(Report, old.id), session.get(Report, new.id)
    assert (old.text, old.phone, old.member_id, old.redacted_at) == (None, None, None, NOON)
    assert old.state == "sent"  # the row stays, as a count
    assert jobs.delete_recordings(rt, now=NOON) == {"deleted": 1, "failed": 0}  # at Twilio, then the link
    session.expire_all()
    assert session.get(Report, old.id).recording_url is None and twilio_api.deleted_recordings == ["RE" + "1" * 32]
    old_bodies = session.exec(select(Delivery.body).where(Delivery.report_id == old.id)).all()
    assert old_bodies == ["", ""]
    assert new.text == "bike taken from shed" and new.redacted_at is None
    assert all("bike taken" in b for b in session.exec(select(Delivery.body).where(Delivery.report_id == new.id)))
    assert jobs.retention(rt, now=NOON) == {"reports": 0, "deliveries": 0, "sightings": 0, "simulated": 0, "events": 0}


def test_retention_follows_the_configured_days(tmp_path):
    from tests.conftest import build_app

    app = build_app(tmp_path, twilio=False, environ={"HOTLINE_RETENTION_DAYS": "30"})
    rt = app.extensions["hotline"]
    with Session(rt.engine) as session:
        session.add(Report(phone=NUMBERS[0], text="a month and a day ago", created_at=NOON - timedelta(days=31)))
        session.add(Report(phone=NUMBERS[0], text="four weeks ago", created_at=NOON - timedelta(days=28)))
        session.commit()
        assert jobs.retention(rt, now=NOON)["reports"] == 1
        assert session.exec(select(Report.text).order_by(Report.id)).all() == [None, "four weeks ago"]
    rt.engine.dispose()


# --- erasure of opted-out numbers ------------------------------------------------------------------


def test_a_number_opted_out_for_30_days_is_erased_everywhere(rt, session, streets):
    gone, stays = NUMBERS[1], NUMBERS[2]
    _report(session, rt, gone, "report from the soon-erased number", now=NOON - timedelta(days=40))
    _report(session, rt, NUMBERS[0], "they got this alert", now=NOON - timedelta(days=40))
    members.opt_out(session, gone, now=NOON - timedelta(days=31))
    members.opt_out(session, stays, now=NOON - timedelta(days=29))
    session.commit()
    deliveries_before = session.exec(select(func.count(Delivery.id))).one()

    assert jobs.erase_opted_out(rt, now=NOON) == {"erased": 1}
    session.expire_all()
    assert members.find(session, gone) is None and members.find(session, stays) is not None
    assert session.exec(select(func.count(Delivery.id)).where(Delivery.phone == gone)).one() == 0
    assert session.exec(select(func.count(Report.id)).where(Report.phone == gone)).one() == 0
    assert session.exec(select(func.count(Delivery.id))).one() == deliveries_before
    assert session.exec(select(func.count(Report.id))).one() == 2


def test_the_webhook_events_that_hold_numbers_go_with_retention_and_erasure(rt, session, streets):
    """InboundEvent keeps who texted and what we answered (for Twilio's retries and the reply caps): it must
    not outlive the report it came with, nor keep a number erased everywhere else."""
    from hotline.models import InboundEvent
    from hotline.reports import inbox

    def text(phone: str, body: str, sid: str, *, days_ago: int) -> None:
        inbox.receive_sms(session=session, config=rt.config, sender=phone, body=body, sid=sid, now=NOON - timedelta(days=days_ago))
        session.commit()

    text(NUMBERS[60], "a stranger saw a van", "SMold", days_ago=181)
    text(NUMBERS[61], "HELP", "SMnew", days_ago=2)
    text(NUMBERS[1], "HELP", "SMgone", days_ago=35)
    members.opt_out(session, NUMBERS[1], now=NOON - timedelta(days=31))
    session.commit()
    assert jobs.retention(rt, now=NOON)["events"] == 1
    assert jobs.erase_opted_out(rt, now=NOON) == {"erased": 1}
    assert session.exec(select(InboundEvent.key)).all() == ["sms:SMnew"]
    assert session.exec(select(func.count()).select_from(InboundEvent).where(InboundEvent.phone.in_([NUMBERS[60], NUMBERS[1]]))).one() == 0


def test_a_coordinator_phone_that_opted_out_is_kept_so_it_stays_out(rt, session, streets):
    _coordinator(session, "admin@example.org", phone=ADMIN_PHONE, admin=True)
    members.opt_out(session, ADMIN_PHONE, now=NOON - timedelta(days=60))
    session.commit()
    assert jobs.erase_opted_out(rt, now=NOON) == {"erased": 0}
    assert members.find(session, ADMIN_PHONE).opted_out


# --- outbox sweep and quiet hours -------------------------------------------------------------------


def test_call_alerts_held_by_quiet_hours_go_when_quiet_hours_end(rt, session, streets, twilio_api):
    clayhall, _ = streets
    add_members(session, clayhall, [NUMBERS[5]], alerts=AlertChannel.CALL)
    late = datetime(2026, 1, 15, 22, 30, tzinfo=timezone.utc)
    _report(session, rt, NUMBERS[0], "shouting in the street", now=late)

    assert jobs.outbox_sweep(rt, now=late)["calls_waiting_for_quiet_hours_to_end"] == 1
    assert twilio_api.calls == [] and len(twilio_api.sent) == 2  # the sweep sent the SMS; the call waits
    jobs.outbox_sweep(rt, now=late + timedelta(hours=8))  # 06:30
    assert twilio_api.calls == []
    summary = jobs.outbox_sweep(rt, now=late + timedelta(hours=8, minutes=31))  # 07:01
    assert summary["sent_by_sweep"] == 1 and [c["To"] for c in twilio_api.calls] == [NUMBERS[5]]


def test_sweep_wakes_a_running_dispatcher_instead_of_sending_itself(rt, session, streets, twilio_api):
    class Running:
        woken = 0
        thread = type("T", (), {"is_alive": lambda self: True})()

        def wake(self):
            self.woken += 1

    rt.dispatcher = Running()
    _report(session, rt, NUMBERS[0], "car alarm going off", now=NOON)
    summary = jobs.outbox_sweep(rt, now=NOON + timedelta(minutes=10))
    assert summary["due"] == 2 and summary["behind"] == 2 and summary["sent_by_sweep"] == 0
    assert rt.dispatcher.woken == 1 and twilio_api.sent == []


def test_sweep_retries_what_is_due_again(rt, session, streets, twilio_api):
    now = utcnow()  # the dispatcher's backoff counts from the real clock
    _report(session, rt, NUMBERS[0], "smashed window", now=now)
    twilio_api.fail_next(429, 429)
    jobs.outbox_sweep(rt, now=now)
    assert twilio_api.sent == []
    jobs.outbox_sweep(rt, now=now + timedelta(minutes=15))
    assert sorted(m["To"] for m in twilio_api.sent) == sorted(NUMBERS[1:3])
    assert session.exec(select(func.count(Delivery.id)).where(Delivery.channel == Channel.SMS, Delivery.state == DeliveryState.ACCEPTED)).one() == 2
    assert session.exec(select(func.count(Member.id))).one() == 5


def test_a_scheduled_announcement_goes_when_its_time_comes_and_only_once(rt, session, streets, twilio_api):
    from hotline.coordination import announcements

    sunday = utcnow() + timedelta(days=2)
    street_ids = [street.id for street in streets]
    announcements.create(session=session, config=rt.config, text="Residents' meeting, Sunday 3pm, St Mary's hall",
                         street_ids=street_ids, send_at=sunday, created_by=None)
    session.commit()
    assert jobs.release_announcements(rt, now=sunday - timedelta(minutes=1)) == {"deliveries": 0}
    summary = jobs.release_announcements(rt, now=sunday + timedelta(seconds=30))
    assert summary["deliveries"] == session.exec(select(func.count(Delivery.id)).where(Delivery.announcement_id.is_not(None))).one() > 0
    assert jobs.release_announcements(rt, now=sunday + timedelta(minutes=1)) == {"deliveries": 0}

"""Nobody left unconfirmed: acknowledgements by call, "check on me", and escalation of what waits too long."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

import pytest
from sqlmodel import Session, select

from hotline.db import utcnow
from hotline.delivery import segments
from hotline.models import (
    AlertChannel,
    Coordinator,
    CoordinatorStreet,
    Delivery,
    Escalation,
    Member,
    Membership,
    MembershipStatus,
    Report,
    ReportState,
    ReportStreet,
)
from hotline.ops import jobs
from hotline.residents import csv_import, members
from tests.conftest import FROM_NUMBER, LANDLINES, NEVER_QUIET, NUMBERS, add_members, add_street, build_app
from tests.reports.test_inbox import dispatch, reply_text

pytestmark = pytest.mark.never_quiet  # no quiet hours: the tests must not depend on the hour they run at
STREET_PHONE, ADMIN_PHONE = NUMBERS[90], NUMBERS[91]



@pytest.fixture
def street(session):
    clayhall = add_street(session, "Clayhall Avenue", 101)
    add_members(session, clayhall, NUMBERS[:3])
    add_members(session, clayhall, LANDLINES[:1], alerts=AlertChannel.CALL)
    street_person = Coordinator(email="clay@example.org", password_hash="x", phone=STREET_PHONE)
    admin = Coordinator(email="admin@example.org", password_hash="x", phone=ADMIN_PHONE, is_admin=True)
    session.add_all([street_person, admin])
    session.flush()
    session.add(CoordinatorStreet(coordinator_id=street_person.id, street_id=clayhall.id))
    session.commit()
    return clayhall


def texts_to(session, phone: str) -> list[str]:
    session.expire_all()
    return list(session.exec(select(Delivery.body).where(Delivery.phone == phone).order_by(Delivery.id)))


def answer_alert_call(twilio, twilio_api, answered_by="human"):
    placed = twilio_api.calls[-1]
    call = twilio.call(FROM_NUMBER, to=placed["To"], sid=placed["sid"], direction="outbound-api")
    return call.start(urlparse(placed["Url"]).path, AnsweredBy=answered_by)


# --- acknowledgement by phone -------------------------------------------------------------------


def test_pressing_1_on_an_alert_call_says_it_was_heard_and_the_report_page_shows_who_and_how(app, rt, session, twilio, twilio_api, street):
    from tests.web.conftest import Web, make_coordinator

    twilio.sms(NUMBERS[0], "ladder left against the back of no 8")
    dispatch(rt)
    twilio.sms(NUMBERS[1], "OK")
    call = answer_alert_call(twilio, twilio_api)
    assert "To say you have heard this alert" in call.text
    assert "we have noted that you heard it" in call.press("1").text
    session.expire_all()
    landline = session.exec(select(Delivery).where(Delivery.phone == LANDLINES[0])).one()
    assert landline.acknowledged_by == "call" and landline.acknowledged_at is not None

    make_coordinator(session, "web@example.org", admin=True)
    web = Web(app)
    web.login("web@example.org")
    page = web.get(f"/reports/{landline.report_id}").get_data(as_text=True)
    assert "Acknowledged by 2 of 3" in page and "(pressed 1)" in page and "(by text)" in page
    assert "acknowledged 2 of 3" in web.get("/").get_data(as_text=True)


def test_an_alert_left_on_a_machine_says_how_to_confirm_and_calling_back_then_1_confirms_it(rt, session, twilio, twilio_api, street):
    twilio.sms(NUMBERS[0], "smoke coming from the garages")
    dispatch(rt)
    machine = answer_alert_call(twilio, twilio_api, answered_by="machine_end_beep")
    assert "To say you have heard it, call this number and press 1" in machine.text
    back = twilio.call(LANDLINES[0]).start()
    assert "you have not said you heard" in back.text and "smoke coming from the garages" in back.text
    assert "noted that you heard it" in back.press("1").text
    session.expire_all()
    assert session.exec(select(Delivery.acknowledged_by).where(Delivery.phone == LANDLINES[0])).one() == "call"
    assert "you have not said you heard" not in twilio.call(LANDLINES[0]).start().text


# --- check on me ----------------------------------------------------------------------------------


def flag(session, phone: str, name: str | None = None):
    member = members.find(session, phone)
    member.check_on_me, member.name = True, name
    session.add(member)
    session.commit()


def test_check_on_me_members_silent_after_an_urgent_alert_are_named_to_the_streets_coordinators_once(rt, session, twilio, twilio_api, street):
    flag(session, NUMBERS[1], "Mrs Patel")
    flag(session, NUMBERS[2], "Mr Jones")
    twilio.sms(NUMBERS[0], "URGENT man with a knife outside the shop")
    dispatch(rt)
    twilio.sms(NUMBERS[2], "seen")  # Mr Jones confirms
    now = utcnow()
    assert jobs.check_on_me(rt, now=now + timedelta(minutes=rt.config.check_minutes - 1)) == {"texts": 0}
    assert jobs.check_on_me(rt, now=now + timedelta(minutes=rt.config.check_minutes + 1)) == {"texts": 1}
    (sms,) = texts_to(session, STREET_PHONE)
    assert "Mrs Patel 07911 1** *01 (Clayhall Avenue)" in sms and "Mr Jones" not in sms and "R1" in sms
    assert segments.count(sms) <= 3 and texts_to(session, ADMIN_PHONE) == []  # the street's coordinators only
    assert jobs.check_on_me(rt, now=now + timedelta(minutes=40)) == {"texts": 0}  # once
    assert "check_on_me" in {job.id for job in jobs.schedule(rt.config)}


def test_a_report_that_is_not_urgent_checks_nobody(rt, session, twilio, twilio_api, street):
    flag(session, NUMBERS[1])
    twilio.sms(NUMBERS[0], "cat stuck on the shed roof")
    dispatch(rt)
    assert jobs.check_on_me(rt, now=utcnow() + timedelta(hours=1)) == {"texts": 0}


def test_the_check_on_me_flag_is_set_on_the_members_page_and_the_report_page_lists_the_silent(sim_app, session):
    from hotline.models import Street
    from tests.web.conftest import Web, make_coordinator, text_in

    rt = sim_app.extensions["hotline"]
    street = add_street(session, "Clayhall Avenue", 101)
    add_members(session, street, NUMBERS[:3])
    make_coordinator(session, "clay@example.org", streets=[session.get(Street, street.id)])
    web = Web(sim_app)
    web.login("clay@example.org")
    member = members.find(session, NUMBERS[1])
    assert web.post(f"/members/{member.id}/check-on-me", {"check_on_me": "y"}).status_code == 302
    session.expire_all()
    assert session.get(Member, member.id).check_on_me
    text_in(rt, NUMBERS[0], "URGENT fire in the bin store")
    report = session.exec(select(Report)).one()
    page = web.get(f"/reports/{report.id}").get_data(as_text=True)
    assert "Check on me: not confirmed" in page and f'data-member="{member.id}"' in page


def test_a_csv_import_can_flag_check_on_me(rt, session, street):
    checked = csv_import.check(session, f"phone,street,check_on_me\n{NUMBERS[40]},Clayhall Avenue,yes\n{NUMBERS[41]},Clayhall Avenue,\n")
    assert checked.errors == []
    csv_import.apply(session, checked)
    session.commit()
    assert members.find(session, NUMBERS[40]).check_on_me and not members.find(session, NUMBERS[41]).check_on_me
    bad = csv_import.check(session, f"phone,street,check_on_me\n{NUMBERS[42]},Clayhall Avenue,perhaps\n")
    assert bad.errors == ["line 2: check_on_me must be yes or no, not 'perhaps'"]


# --- escalation -------------------------------------------------------------------------------------


def test_a_held_report_goes_to_the_streets_coordinators_then_the_admins_once_each(rt, session, twilio, twilio_api, street):
    street.moderated = True
    session.add(street)
    session.commit()
    twilio.sms(NUMBERS[0], "someone sleeping in the bus shelter")
    held_at, wait = utcnow(), timedelta(minutes=rt.config.escalate_minutes)
    assert jobs.escalate(rt, now=held_at + wait - timedelta(minutes=1)) == {"texts": 0}
    assert jobs.escalate(rt, now=held_at + wait + timedelta(minutes=1)) == {"texts": 1}
    (sms,) = texts_to(session, STREET_PHONE)
    assert "R1 for Clayhall Avenue" in sms and "Reply SEND R1 or DROP R1" in sms and "bus shelter" in sms
    assert jobs.escalate(rt, now=held_at + wait + timedelta(minutes=2)) == {"texts": 0}  # once each
    assert jobs.escalate(rt, now=held_at + 2 * wait + timedelta(minutes=1)) == {"texts": 1}
    assert len(texts_to(session, ADMIN_PHONE)) == 1 and len(texts_to(session, STREET_PHONE)) == 1
    assert "sent to" in reply_text(twilio.sms(STREET_PHONE, "SEND R1"))  # the reply works as a command
    session.expire_all()
    assert session.exec(select(Report.state)).one() == ReportState.SENT
    assert jobs.escalate(rt, now=held_at + 3 * wait) == {"texts": 0}
    assert len(session.exec(select(Escalation)).all()) == 2


def test_a_join_waiting_goes_to_the_coordinator_who_approves_it_by_replying(rt, session, twilio, twilio_api, street):
    twilio.sms(NUMBERS[50], "JOIN Clayhall Avenue")
    joined_at, wait = utcnow(), timedelta(minutes=rt.config.escalate_minutes)
    assert jobs.escalate(rt, now=joined_at + wait + timedelta(minutes=1)) == {"texts": 1}
    (sms,) = texts_to(session, STREET_PHONE)
    membership = session.exec(select(Membership).where(Membership.status == MembershipStatus.PENDING)).one()
    code = f"J{membership.id}"
    assert f"Reply APPROVE {code} or REJECT {code}" in sms and "07911 1** *50" in sms and NUMBERS[50] not in sms
    assert "Approved" in reply_text(twilio.sms(STREET_PHONE, f"APPROVE {code}")) or "approved" in reply_text(twilio.sms(STREET_PHONE, f"APPROVE {code}"))
    session.expire_all()
    assert session.get(Membership, membership.id).status == MembershipStatus.ACTIVE


def test_joins_wait_for_the_morning_but_held_reports_never_wait(tmp_path, twilio_api):
    app = build_app(tmp_path, twilio=True, environ={"HOTLINE_QUIET_HOURS": "22:00-07:00"})
    rt = app.extensions["hotline"]
    night = datetime(2026, 1, 15, 23, 30, tzinfo=timezone.utc)  # winter: London time is UTC
    with Session(rt.engine) as session:
        clayhall = add_street(session, "Clayhall Avenue", 101, moderated=True)
        add_members(session, clayhall, NUMBERS[:2])
        person = Coordinator(email="clay@example.org", password_hash="x", phone=STREET_PHONE)
        session.add(person)
        session.flush()
        session.add(CoordinatorStreet(coordinator_id=person.id, street_id=clayhall.id))
        joiner = members.get_or_create(session, NUMBERS[50])
        members.join(session, joiner, clayhall, now=night - timedelta(hours=1))
        held = Report(member_id=members.find(session, NUMBERS[0]).id, phone=NUMBERS[0], text="van idling", state=ReportState.HELD,
                      reason="moderated", created_at=night - timedelta(hours=1))
        session.add(held)
        session.flush()
        session.add(ReportStreet(report_id=held.id, street_id=clayhall.id))
        session.commit()
        assert jobs.escalate(rt, now=night) == {"texts": 1}  # the held report, at once
        assert "van idling" in texts_to(session, STREET_PHONE)[0]
        assert jobs.escalate(rt, now=night.replace(hour=7, minute=5) + timedelta(days=1)) == {"texts": 1}  # the JOIN, in the morning
        assert "to join Clayhall Avenue" in texts_to(session, STREET_PHONE)[1]
    rt.engine.dispose()


# --- revealing a number, and restarts ---------------------------------------------------------------


def test_show_number_reveals_it_once_and_records_who_saw_whose_number_for_the_admins(sim_app, session):
    from hotline.models import NumberReveal, Street
    from tests.web.conftest import Web, make_coordinator

    street = add_street(session, "Clayhall Avenue", 101)
    beehive = add_street(session, "Beehive Lane", 102)
    add_members(session, street, NUMBERS[:2])
    add_members(session, beehive, NUMBERS[10:11])
    make_coordinator(session, "clay@example.org", streets=[session.get(Street, street.id)])
    make_coordinator(session, "admin@example.org", admin=True)
    clay = Web(sim_app)
    clay.login("clay@example.org")
    member = members.find(session, NUMBERS[1])
    national = "07911 100101"
    assert national not in clay.get(f"/members/{member.id}").get_data(as_text=True)
    shown = clay.post(f"/members/{member.id}/reveal")
    assert shown.status_code == 200 and national in shown.get_data(as_text=True)
    assert shown.headers["Cache-Control"] == "no-store"
    assert national not in clay.get(f"/members/{member.id}").get_data(as_text=True)  # shown once, not kept on the page
    other = members.find(session, NUMBERS[10])
    assert clay.post(f"/members/{other.id}/reveal").status_code == 404  # another street's member
    assert clay.post(f"/members/{member.id}/reveal", csrf=False).status_code == 400
    session.expire_all()
    (reveal,) = session.exec(select(NumberReveal)).all()
    assert reveal.member_id == member.id and reveal.coordinator_id is not None
    assert clay.get("/reveals").status_code in (302, 403, 404)  # admins only
    admin = Web(sim_app)
    admin.login("admin@example.org")
    listing = admin.get("/reveals").get_data(as_text=True)
    assert "clay@example.org" in listing and "07911 1•• •01" in listing and national not in listing


def test_a_restart_between_runs_sends_no_escalation_twice(tmp_path, twilio_api):
    """The record of who was told is in the database, committed with the SMS: a new process knows it."""
    from hotline import create_app
    from tests.conftest import _database_url

    app = build_app(tmp_path, twilio=True, environ=NEVER_QUIET)
    rt = app.extensions["hotline"]
    with Session(rt.engine) as session:
        clayhall = add_street(session, "Clayhall Avenue", 101, moderated=True)
        add_members(session, clayhall, NUMBERS[:2])
        person = Coordinator(email="clay@example.org", password_hash="x", phone=STREET_PHONE)
        session.add(person)
        session.flush()
        session.add(CoordinatorStreet(coordinator_id=person.id, street_id=clayhall.id))
        session.commit()
    from tests.conftest import SignedClient

    SignedClient(app).sms(NUMBERS[0], "man photographing the houses")
    later = utcnow() + timedelta(minutes=rt.config.escalate_minutes + 1)
    assert jobs.escalate(rt, now=later) == {"texts": 1}
    rt.engine.dispose()
    restarted = create_app({"testing": True}, instance_path=tmp_path / "instance",
                           environ={"HOTLINE_DATABASE_URL": _database_url(tmp_path), "HOTLINE_SECRET_KEY": "s", **NEVER_QUIET})
    again = restarted.extensions["hotline"]
    assert jobs.escalate(again, now=later + timedelta(minutes=1)) == {"texts": 0}
    again.engine.dispose()


# --- edges a review found ---------------------------------------------------------------------------


def test_check_on_me_counts_from_when_a_held_urgent_report_went_out(rt, session, twilio, twilio_api, street):
    from hotline.reports import intake

    flag(session, NUMBERS[1], "Mrs Patel")
    street.moderated = True
    session.add(street)
    session.commit()
    twilio.sms(NUMBERS[0], "URGENT smell of gas outside no 3")
    held = session.exec(select(Report)).one()
    released_at = utcnow() + timedelta(minutes=30)
    intake.release(session=session, config=rt.config, report=held, now=released_at)
    session.commit()
    assert jobs.check_on_me(rt, now=released_at + timedelta(minutes=1)) == {"texts": 0}  # not yet: it just went
    assert jobs.check_on_me(rt, now=released_at + timedelta(minutes=rt.config.check_minutes + 1)) == {"texts": 1}


def test_approve_j17_decides_only_that_request(rt, session, twilio, twilio_api, street):
    beehive = add_street(session, "Beehive Lane", 102)
    admin = session.exec(select(Coordinator).where(Coordinator.is_admin == True)).one()  # noqa: E712
    twilio.sms(NUMBERS[50], "JOIN Clayhall Avenue")
    twilio.sms(NUMBERS[50], "JOIN Beehive Lane")
    clay_request = session.exec(select(Membership).where(Membership.street_id == street.id, Membership.status == "pending")).one()
    twilio.sms(admin.phone, f"APPROVE J{clay_request.id}")
    session.expire_all()
    statuses = {m.street_id: m.status for m in session.exec(select(Membership).where(Membership.member_id == clay_request.member_id))}
    assert statuses == {street.id: MembershipStatus.ACTIVE, beehive.id: MembershipStatus.PENDING}


def test_admins_hear_the_same_time_again_after_the_street_was_told_not_at_once_in_the_morning(tmp_path, twilio_api):
    app = build_app(tmp_path, twilio=True, environ={"HOTLINE_QUIET_HOURS": "22:00-07:00"})
    rt = app.extensions["hotline"]
    night = datetime(2026, 1, 15, 23, 30, tzinfo=timezone.utc)
    with Session(rt.engine) as session:
        clayhall = add_street(session, "Clayhall Avenue", 101)
        person = Coordinator(email="clay@example.org", password_hash="x", phone=STREET_PHONE)
        boss = Coordinator(email="admin@example.org", password_hash="x", phone=ADMIN_PHONE, is_admin=True)
        session.add_all([person, boss])
        session.flush()
        session.add(CoordinatorStreet(coordinator_id=person.id, street_id=clayhall.id))
        members.join(session, members.get_or_create(session, NUMBERS[50]), clayhall, now=night)
        session.commit()
        morning = night.replace(hour=7, minute=5) + timedelta(days=1)
        assert jobs.escalate(rt, now=morning) == {"texts": 1}  # the street's coordinator only
        assert jobs.escalate(rt, now=morning + timedelta(minutes=rt.config.escalate_minutes + 1)) == {"texts": 1}  # then the admin
        assert len(texts_to(session, ADMIN_PHONE)) == 1
    rt.engine.dispose()


def test_a_rejected_strangers_number_cannot_be_revealed_by_a_street_coordinator(sim_app, session):
    from hotline.models import Street
    from hotline.residents import members as member_book
    from tests.web.conftest import Web, make_coordinator

    street = add_street(session, "Clayhall Avenue", 101)
    make_coordinator(session, "clay@example.org", streets=[session.get(Street, street.id)])
    stranger = members.get_or_create(session, NUMBERS[60])
    membership = members.join(session, stranger, street)
    member_book.reject(session=session, membership=membership)
    session.commit()
    clay = Web(sim_app)
    clay.login("clay@example.org")
    assert clay.get(f"/members/{stranger.id}").status_code == 200  # they may see the request was rejected
    assert clay.post(f"/members/{stranger.id}/reveal").status_code == 404

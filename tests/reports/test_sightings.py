"""Plates remembered across streets: sightings per report, the cross-street SMS and the watch list's SMS to
coordinators (outbox rows in the report's own transaction), never to residents; retention and erasure."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from hotline import messages
from hotline.db import utcnow
from hotline.delivery import segments
from hotline.models import Coordinator, CoordinatorStreet, Delivery, Report, Sighting, WatchedPlate
from hotline.ops import housekeeping
from hotline.reports import intake
from hotline.residents import members
from tests.conftest import NUMBERS, PUBLIC_URL, add_members, add_street
from tests.reports.test_inbox import dispatch, reply_text
from tests.voice.test_menu import report_by_phone

CLAY_PHONE, BEE_PHONE, ADMIN_PHONE, OTHER_PHONE = NUMBERS[800], NUMBERS[801], NUMBERS[802], NUMBERS[803]
COORDINATOR_PHONES = {CLAY_PHONE, BEE_PHONE, ADMIN_PHONE, OTHER_PHONE}


def coordinator(session, email, *, phone=None, admin=False, streets=()) -> Coordinator:
    person = Coordinator(email=email, password_hash="x", is_admin=admin, phone=phone)
    session.add(person)
    session.flush()
    for street in streets:
        session.add(CoordinatorStreet(coordinator_id=person.id, street_id=street.id))
    session.commit()
    return person


@pytest.fixture
def scheme(session):
    clayhall = add_street(session, "Clayhall Avenue", 101)
    beehive = add_street(session, "Beehive Lane", 102)
    drive = add_street(session, "The Drive", 103)
    add_members(session, clayhall, NUMBERS[:3])
    add_members(session, beehive, NUMBERS[10:13])
    add_members(session, drive, NUMBERS[20:22])
    people = {
        "clayhall": coordinator(session, "clay@example.org", phone=CLAY_PHONE, streets=[clayhall]),
        "beehive": coordinator(session, "bee@example.org", phone=BEE_PHONE, streets=[beehive]),
        "admin": coordinator(session, "admin@example.org", phone=ADMIN_PHONE, admin=True),
        "drive": coordinator(session, "drive@example.org", phone=OTHER_PHONE, streets=[drive]),
        "no phone": coordinator(session, "quiet@example.org", streets=[clayhall, beehive]),
    }
    return {"clayhall": clayhall, "beehive": beehive, "drive": drive, "people": people}


def to_coordinators(session) -> list[Delivery]:
    session.expire_all()
    return list(session.exec(select(Delivery).where(Delivery.phone.in_(COORDINATOR_PHONES)).order_by(Delivery.id)))


def submit(session, rt, phone, text, *, now=None):
    outcome = intake.submit(session=session, config=rt.config, phone=phone, text=text, member=members.find(session, phone), now=now)
    session.commit()
    return outcome


def test_a_plate_in_a_report_is_remembered_normalised_with_its_street_and_time(rt, session, twilio, scheme):
    reply_text(twilio.sms(NUMBERS[0], "Silver Focus ab 12 cde outside no 4 again"))
    report = session.exec(select(Report)).one()
    sighting = session.exec(select(Sighting)).one()
    assert (sighting.report_id, sighting.street_id, sighting.plate, sighting.seen_at) == (
        report.id, scheme["clayhall"].id, "AB12CDE", report.created_at,
    )
    assert to_coordinators(session) == []  # seen on one street only: nothing to tell


def test_a_plate_seen_on_another_street_texts_both_streets_coordinators_once(rt, session, twilio, twilio_api, scheme):
    reply_text(twilio.sms(NUMBERS[0], "white van AB12 CDE, two lads looking in cars"))
    assert "sent to 2 neighbours" in reply_text(twilio.sms(NUMBERS[10], "a b 12 c d e parked up with engine running"))

    sms = to_coordinators(session)
    assert sorted(d.phone for d in sms) == sorted([CLAY_PHONE, BEE_PHONE])  # not the admin, not The Drive
    body = sms[0].body
    assert sms[1].body == body and sms[0].report_id is None
    assert all(word in body for word in ("AB12 CDE", "Clayhall Avenue", "Beehive Lane", "R1", "R2", f"{PUBLIC_URL}/plates/AB12CDE"))

    # a third sighting on a street that has had it already is no news to either street
    reply_text(twilio.sms(NUMBERS[11], "AB12CDE back again"))
    reply_text(twilio.sms(NUMBERS[1], "ab12cde at the corner now"))
    assert len(to_coordinators(session)) == 2

    dispatch(rt)
    texted = {m["To"]: m["Body"] for m in twilio_api.sent}
    assert texted[CLAY_PHONE] == texted[BEE_PHONE] == body
    neighbours = [m["Body"] for m in twilio_api.sent if m["To"] in NUMBERS[11:13]]
    assert neighbours and all("a b 12 c d e parked up" in b and "AB12 CDE" not in b for b in neighbours[:2])


def test_a_third_street_hears_with_the_street_it_was_last_seen_on(rt, session, twilio, scheme):
    reply_text(twilio.sms(NUMBERS[0], "AB12 CDE"))
    reply_text(twilio.sms(NUMBERS[10], "AB12 CDE"))
    reply_text(twilio.sms(NUMBERS[20], "car AB12 CDE on The Drive"))
    latest = to_coordinators(session)[2:]
    assert sorted(d.phone for d in latest) == sorted([OTHER_PHONE, BEE_PHONE])
    assert "The Drive" in latest[0].body and "Beehive Lane" in latest[0].body and "R3" in latest[0].body


def test_a_plate_seen_elsewhere_more_than_fourteen_days_ago_texts_nobody(rt, session, scheme):
    now = utcnow()
    submit(session, rt, NUMBERS[0], "AB12 CDE", now=now - timedelta(days=15))
    submit(session, rt, NUMBERS[10], "AB12 CDE", now=now)
    assert to_coordinators(session) == []
    submit(session, rt, NUMBERS[20], "AB12 CDE", now=now + timedelta(days=13))
    assert sorted(d.phone for d in to_coordinators(session)) == sorted([OTHER_PHONE, BEE_PHONE])


def test_a_watched_plate_is_texted_to_the_streets_coordinators_and_the_admins_at_once(rt, session, twilio, twilio_api, scheme):
    session.add(WatchedPlate(plate="LB07SXR", note="grey Transit, cold callers", added_by=scheme["people"]["admin"].id))
    session.commit()
    reply_text(twilio.sms(NUMBERS[0], "van lima bravo zero seven sierra xray romeo by the school"))
    sms = to_coordinators(session)
    assert sorted(d.phone for d in sms) == sorted([CLAY_PHONE, ADMIN_PHONE])
    assert all(w in sms[0].body for w in ("WATCHED", "LB07 SXR", "Clayhall Avenue", "R1", "grey Transit, cold callers", f"{PUBLIC_URL}/reports/1"))
    assert sms[0].next_attempt_at <= utcnow()
    dispatch(rt)
    assert {CLAY_PHONE, ADMIN_PHONE} <= {m["To"] for m in twilio_api.sent}


def test_a_watched_plate_seen_on_a_second_street_is_one_sms_per_coordinator(rt, session, twilio, scheme):
    session.add(WatchedPlate(plate="AB12CDE", note=""))
    session.commit()
    reply_text(twilio.sms(NUMBERS[0], "AB12 CDE"))
    reply_text(twilio.sms(NUMBERS[10], "AB12 CDE"))
    second = to_coordinators(session)[2:]
    assert sorted(d.phone for d in second) == sorted([BEE_PHONE, CLAY_PHONE, ADMIN_PHONE])
    assert "WATCHED" in second[0].body and "Clayhall Avenue" in second[0].body


def test_strangers_pending_members_and_reports_over_a_limit_text_no_coordinator_but_are_remembered(tmp_path, twilio_api):
    from tests.conftest import build_app

    app = build_app(tmp_path, twilio=True, environ={"HOTLINE_REPORTS_PER_HOUR": "1"})
    rt = app.extensions["hotline"]
    with Session(rt.engine, expire_on_commit=False) as session:
        clayhall, beehive = add_street(session, "Clayhall Avenue", 101), add_street(session, "Beehive Lane", 102)
        add_members(session, clayhall, NUMBERS[:2])
        add_members(session, beehive, NUMBERS[10:12])
        coordinator(session, "clay@example.org", phone=CLAY_PHONE, streets=[clayhall])
        session.add(WatchedPlate(plate="AB12CDE", note="watch"))
        session.commit()
        submit(session, rt, NUMBERS[0], "first report, nothing in it")
        assert submit(session, rt, NUMBERS[0], "AB12 CDE again").kind == "over_hour"
        assert submit(session, rt, NUMBERS[500], "stranger saw AB12 CDE").kind == "stranger"
        members.join(session, members.get_or_create(session, NUMBERS[501]), beehive)
        assert submit(session, rt, NUMBERS[501], "pending saw AB12 CDE").kind == "pending"
        assert session.exec(select(Delivery).where(Delivery.phone == CLAY_PHONE)).all() == []
        seen = session.exec(select(Sighting.street_id).where(Sighting.plate == "AB12CDE")).all()
        assert sorted(seen, key=lambda s: s or 0) == [None, clayhall.id, beehive.id]
    rt.engine.dispose()


def test_a_coordinator_whose_phone_texted_stop_gets_no_plate_sms(rt, session, twilio, scheme):
    reply_text(twilio.sms(CLAY_PHONE, "STOP"))
    reply_text(twilio.sms(NUMBERS[0], "AB12 CDE"))
    reply_text(twilio.sms(NUMBERS[10], "AB12 CDE"))
    assert [d.phone for d in to_coordinators(session)] == [BEE_PHONE]


def test_the_same_text_delivered_twice_texts_coordinators_once(rt, session, twilio, scheme):
    reply_text(twilio.sms(NUMBERS[0], "AB12 CDE"))
    first = twilio.sms(NUMBERS[10], "AB12 CDE", sid="SM" + "7" * 32)
    again = twilio.sms(NUMBERS[10], "AB12 CDE", sid="SM" + "7" * 32)
    assert first.data == again.data
    assert len(to_coordinators(session)) == 2 and len(session.exec(select(Sighting)).all()) == 2


def test_a_report_by_phone_goes_through_the_same_recogniser(rt, session, twilio, scheme):
    reply_text(twilio.sms(NUMBERS[10], "AB12 CDE speeding"))
    report_by_phone(twilio, NUMBERS[0], "alpha bravo one two charlie delta echo going slowly past the houses")
    spoken = session.exec(select(Report).where(Report.channel == "call")).one()
    assert session.exec(select(Sighting.plate).where(Sighting.report_id == spoken.id)).all() == ["AB12CDE"]
    assert spoken.text.startswith("alpha bravo one two")  # what was said stays as it was said
    assert sorted(d.phone for d in to_coordinators(session)) == sorted([CLAY_PHONE, BEE_PHONE])


def test_a_recording_typed_out_by_a_coordinator_is_read_for_plates_when_it_is_sent(rt, session, scheme):
    reply = intake.submit(session=session, config=rt.config, phone=NUMBERS[10], text="AB12 CDE", member=members.find(session, NUMBERS[10]))
    held = intake.submit(session=session, config=rt.config, phone=NUMBERS[0], text=None, member=members.find(session, NUMBERS[0]),
                         channel="call", recording_url="https://api.twilio.com/rec/RE1", hold=True)
    session.commit()
    assert reply.kind == "sent" and held.kind == "held" and to_coordinators(session) == []
    intake.release(session=session, config=rt.config, report=held.report, text="blue car AB12 CDE at the garages")
    session.commit()
    assert session.exec(select(Sighting.plate).where(Sighting.report_id == held.report.id)).all() == ["AB12CDE"]
    assert sorted(d.phone for d in to_coordinators(session)) == sorted([CLAY_PHONE, BEE_PHONE])


def test_retention_deletes_the_plates_with_the_report_text(rt, session, scheme):
    now = utcnow()
    old = submit(session, rt, NUMBERS[0], "AB12 CDE", now=now - timedelta(days=181)).report
    new = submit(session, rt, NUMBERS[1], "LB07 SXR", now=now - timedelta(days=1)).report
    summary = housekeeping.redact_old_reports(session=session, config=rt.config, now=now)
    session.commit()
    assert summary["sightings"] == 1
    session.expire_all()
    assert session.exec(select(Sighting.report_id)).all() == [new.id]
    assert session.get(Report, old.id).text is None


def test_erasing_an_opted_out_number_forgets_the_plates_its_reports_named(rt, session, twilio, scheme):
    reply_text(twilio.sms(NUMBERS[0], "AB12 CDE"))
    reply_text(twilio.sms(NUMBERS[1], "LB07 SXR"))
    members.opt_out(session, NUMBERS[0], now=utcnow() - timedelta(days=31))
    session.commit()
    assert housekeeping.erase_opted_out(session=session, now=utcnow()) == 1
    session.commit()
    assert session.exec(select(Sighting.plate)).all() == ["LB07SXR"]


@pytest.mark.parametrize("scheme_name, street, other", [
    ("Street Watch", "Clayhall Avenue", "Beehive Lane"),
    ("Redbridge Street Watch", "Woodford Bridge Road", "Snaresbrook Gardens"),
])
def test_plate_sms_to_coordinators_fit_one_segment_with_everyday_names(scheme_name, street, other):
    when = utcnow()
    url = PUBLIC_URL + "/plates/AB12CDE"
    text = messages.plate_on_two_streets(scheme_name, "AB12 CDE", (street, "R1234", when), (other, "R1200", when), url)
    assert segments.count(text) == 1 and url in text


def test_plate_sms_never_pass_their_segment_budget_whatever_the_names_and_note():
    when, long_url = utcnow(), PUBLIC_URL + "/x" * 100
    for text in (
        messages.plate_on_two_streets("S" * 200, "AB12 CDE", ("C" * 120, "R123456789", when), ("B" * 120, "R1", when), long_url),
        messages.watched_plate("S" * 200, "AB12 CDE", ("C" * 120, "R1", when), "n" * 200 + " 🚗", long_url, ("B" * 120, "R2", when)),
        messages.watched_plate("Street Watch", "AB12 CDE", (None, "R1", when), "", PUBLIC_URL + "/reports/1"),
    ):
        assert "AB12 CDE" in text and segments.count(text) <= messages.MAX_PLATE_SEGMENTS

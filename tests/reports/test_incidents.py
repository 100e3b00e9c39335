"""Incidents: replies that are not reports, follow-ups, the all-clear, closing, the outcome."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from hotline.db import utcnow
from hotline.delivery import segments
from hotline.models import (
    AlertChannel,
    Coordinator,
    CoordinatorStreet,
    Delivery,
    DeliveryState,
    Incident,
    Outcome,
    Report,
    ReportKind,
    ReportState,
)
from hotline.ops import jobs
from hotline.reports import incidents
from tests.conftest import LANDLINES, NUMBERS, add_members, add_street
from tests.reports.test_inbox import dispatch, reply_text

pytestmark = pytest.mark.never_quiet  # no quiet hours: the tests must not depend on the hour they run at
JOAN, ARTHUR, PRIYA, SAM = NUMBERS[0], NUMBERS[1], NUMBERS[2], NUMBERS[3]
COORDINATOR_PHONE = NUMBERS[90]



@pytest.fixture
def street(session):
    clayhall = add_street(session, "Clayhall Avenue", 101)
    add_members(session, clayhall, [JOAN, ARTHUR, PRIYA, SAM])
    add_members(session, clayhall, LANDLINES[:1], alerts=AlertChannel.CALL)  # Mr Okafor's landline
    return clayhall


@pytest.fixture
def coordinator(session, street):
    person = Coordinator(email="clay@example.org", password_hash="x", phone=COORDINATOR_PHONE)
    session.add(person)
    session.flush()
    session.add(CoordinatorStreet(coordinator_id=person.id, street_id=street.id))
    session.commit()
    return person


def reports(session, kind: ReportKind | None = None) -> list[Report]:
    session.expire_all()
    query = select(Report).order_by(Report.id)
    return list(session.exec(query.where(Report.kind == kind) if kind else query))


def sent_to(twilio_api, number: str) -> list[str]:
    return [m["Body"] for m in twilio_api.to(number)]


def alert_joan(twilio, twilio_api, rt, text: str = "white van parked outside no 12, two men looking at the houses") -> None:
    assert "sent to 4 neighbours" in reply_text(twilio.sms(JOAN, text))
    dispatch(rt)


# --- replies that are not reports -------------------------------------------------------------------


@pytest.mark.parametrize("word", ["Thanks", "thanks!", "OK", "ok.", "Seen", "THANK YOU", "Ta", "cheers", "Noted", "👍", "👍🏽", " 👍 "])
def test_a_thanks_goes_nowhere_and_is_recorded_as_seen(rt, session, twilio, twilio_api, street, word):
    alert_joan(twilio, twilio_api, rt)
    before = len(twilio_api.sent) + len(twilio_api.calls)
    response = twilio.sms(ARTHUR, word)
    assert reply_text(response) == ""  # never answered: an answer costs an SMS
    dispatch(rt)
    assert len(twilio_api.sent) + len(twilio_api.calls) == before  # never broadcast, no call to Mr Okafor
    assert [r.kind for r in reports(session)] == [ReportKind.REPORT]
    seen = session.exec(select(Delivery).where(Delivery.phone == ARTHUR)).one()
    assert seen.acknowledged_at is not None and seen.acknowledged_by == "sms"


def test_words_that_only_look_like_thanks_are_messages(rt, session, twilio, twilio_api, street):
    alert_joan(twilio, twilio_api, rt)
    reply_text(twilio.sms(PRIYA, "OK the van has gone now"))
    assert reports(session)[-1].text == "OK the van has gone now"


def test_thanks_with_no_alert_in_the_past_day_changes_nothing_and_is_not_broadcast(rt, session, twilio, twilio_api, street):
    assert reply_text(twilio.sms(ARTHUR, "Thanks")) == ""
    dispatch(rt)
    assert twilio_api.sent == [] and reports(session) == []


# --- follow-ups ------------------------------------------------------------------------------------


def test_the_reporters_next_text_is_an_update_sent_to_the_same_street(rt, session, twilio, twilio_api, street):
    alert_joan(twilio, twilio_api, rt)
    reply = reply_text(twilio.sms(JOAN, "they've gone towards Beehive Lane"))
    assert "update to R1 is sent to 3 neighbours" in reply  # the landline hears it on the menu: not urgent
    dispatch(rt)
    update = sent_to(twilio_api, ARTHUR)[-1]
    assert update.startswith("Update R1 ") and "they've gone towards Beehive Lane" in update
    assert sent_to(twilio_api, JOAN) == []  # never back to the sender
    assert [c["To"] for c in twilio_api.calls] == [LANDLINES[0]]  # the landline rang for the first alert only
    (update_report,) = reports(session, ReportKind.UPDATE)
    assert update_report.incident_id == reports(session)[0].incident_id


def test_an_alerted_neighbours_reply_is_an_update_within_the_window_and_a_report_after(rt, session, twilio, twilio_api, street):
    alert_joan(twilio, twilio_api, rt)
    twilio.sms(PRIYA, "police are here now")
    assert reports(session)[-1].kind == ReportKind.UPDATE
    with Session(rt.engine) as s:  # an hour and more later
        for delivery in s.exec(select(Delivery)):
            delivery.created_at -= timedelta(minutes=61)
            s.add(delivery)
        for report in s.exec(select(Report)):
            report.created_at -= timedelta(minutes=61)
            s.add(report)
        s.commit()
    twilio.sms(SAM, "a different thing: fox in the bins")
    assert reports(session)[-1].kind == ReportKind.REPORT and reports(session)[-1].incident_id != reports(session)[0].incident_id


def test_an_update_goes_to_every_street_the_incident_reached_once_each(rt, session, twilio, twilio_api, street):
    beehive = add_street(session, "Beehive Lane", 102)
    add_members(session, beehive, [JOAN, NUMBERS[10], NUMBERS[11]])  # Joan lives on the corner: on both streets
    assert "sent to 6 neighbours" in reply_text(twilio.sms(JOAN, "white van parked outside no 12"))
    dispatch(rt)
    reply = reply_text(twilio.sms(NUMBERS[10], "police are here now"))  # a Beehive neighbour alerted about R1
    assert "update to R1 is sent to 5 neighbours" in reply  # both streets but the sender; the landline: not urgent
    dispatch(rt)
    for neighbour in (ARTHUR, PRIYA, SAM, NUMBERS[11]):
        assert sent_to(twilio_api, neighbour)[-1].startswith("Update R1 ")
    assert len([body for body in sent_to(twilio_api, JOAN) if body.startswith("Update R1 ")]) == 1  # once, though on both


def test_a_reference_prefix_updates_that_incident_from_any_member(rt, session, twilio, twilio_api, street):
    alert_joan(twilio, twilio_api, rt)
    beehive = add_street(session, "Beehive Lane", 102)
    add_members(session, beehive, NUMBERS[20:22])
    assert "update to R1" in reply_text(twilio.sms(NUMBERS[20], "R1 same van now on Beehive Lane"))
    dispatch(rt)
    assert sent_to(twilio_api, ARTHUR)[-1].startswith("Update R1 ") and "same van now on Beehive Lane" in sent_to(twilio_api, ARTHUR)[-1]
    assert sent_to(twilio_api, NUMBERS[21]) == []  # updates go to the incident's street, not the sender's


@pytest.mark.parametrize("prefix", ["R999", "r999:", "R 999"])
def test_a_reference_that_does_not_exist_is_a_new_report_and_the_reply_says_so(rt, session, twilio, twilio_api, street, prefix):
    reply = reply_text(twilio.sms(JOAN, f"{prefix} kids on the garage roofs"))
    assert "R999 is closed, so this is a new report" in reply and "sent to 4 neighbours" in reply
    assert reports(session)[-1].kind == ReportKind.REPORT


def test_a_member_alerted_about_two_open_incidents_updates_the_latest_unless_a_reference_says_which(rt, session, twilio, twilio_api, street):
    alert_joan(twilio, twilio_api, rt)  # R1: Arthur is alerted
    add_members(session, street, NUMBERS[5:6])  # a new neighbour, alerted about nothing yet
    assert "sent to 5 neighbours" in reply_text(twilio.sms(NUMBERS[5], "fox ripping the bin bags open at no 30"))  # R2
    dispatch(rt)
    first, second = (r.incident_id for r in reports(session))
    assert first != second
    assert "update to R2" in reply_text(twilio.sms(ARTHUR, "it's in my garden now"))  # the latest wins
    assert "update to R1" in reply_text(twilio.sms(ARTHUR, "R1 the van is still there"))  # the prefix overrides
    updates = reports(session, ReportKind.UPDATE)
    assert [u.incident_id for u in updates] == [second, first]
    assert [u.text for u in updates] == ["it's in my garden now", "the van is still there"]


def test_after_the_all_clear_a_reference_is_a_new_report(rt, session, twilio, twilio_api, street, coordinator):
    alert_joan(twilio, twilio_api, rt)
    assert "All clear for R1 is going to" in reply_text(twilio.sms(COORDINATOR_PHONE, "CLEAR R1"))
    reply = reply_text(twilio.sms(ARTHUR, "R1 I can still see the van"))
    assert "R1 is closed, so this is a new report" in reply
    assert reports(session)[-1].kind == ReportKind.REPORT


def test_an_update_on_a_moderated_street_is_held_like_a_report(rt, session, twilio, twilio_api, street):
    alert_joan(twilio, twilio_api, rt)
    street.moderated = True
    session.add(street)
    session.commit()
    assert "A coordinator will check it" in reply_text(twilio.sms(JOAN, "they are trying the door of no 14"))
    held = reports(session, ReportKind.UPDATE)[-1]
    assert held.state == ReportState.HELD and held.reason == "moderated"


def test_updates_count_toward_the_reporters_hourly_limit(rt, session, twilio, twilio_api, street):
    alert_joan(twilio, twilio_api, rt)
    for n in range(rt.config.max_reports_per_hour - 1):
        assert "is sent to" in reply_text(twilio.sms(JOAN, f"still there, look {n}"))
    over = reply_text(twilio.sms(JOAN, "still there"))
    assert "not sent" in over and "an hour" in over


def test_a_follow_up_delivered_twice_is_one_update(rt, session, twilio, twilio_api, street):
    alert_joan(twilio, twilio_api, rt)
    first = reply_text(twilio.sms(JOAN, "gone now", sid="SM" + "7" * 32))
    again = reply_text(twilio.sms(JOAN, "gone now", sid="SM" + "7" * 32))
    assert first == again and len(reports(session, ReportKind.UPDATE)) == 1


def test_calls_stay_rare_a_call_member_is_rung_for_urgent_updates_only_and_at_most_three_times(rt, session, twilio, twilio_api, street):
    def ring_out():
        dispatch(rt)
        for call in twilio_api.calls:  # each call ends, so the next may ring (HOTLINE_CALL_CONCURRENCY)
            twilio.post("/twilio/status", {"CallSid": call["sid"], "CallStatus": "completed", "AccountSid": "AC" + "0" * 32})

    alert_joan(twilio, twilio_api, rt)  # call 1: the first alert
    ring_out()
    for text in ["still hanging about", "URGENT one has a crowbar", "URGENT breaking into no 9", "URGENT now at no 11"]:
        twilio.sms(JOAN, text)  # not urgent: heard on the menu; then calls 2 and 3, and no fourth
        ring_out()
    assert [c["To"] for c in twilio_api.calls] == [LANDLINES[0]] * 3
    assert len(sent_to(twilio_api, ARTHUR)) == 5  # texts get everything


# --- the all-clear ---------------------------------------------------------------------------------


def test_clear_by_sms_reaches_everyone_the_incident_reached_on_their_channel_and_closes_it(rt, session, twilio, twilio_api, street, coordinator):
    alert_joan(twilio, twilio_api, rt)
    twilio.sms(PRIYA, "police are here")  # an update: Joan is reached by it too
    dispatch(rt)
    reply = reply_text(twilio.sms(COORDINATOR_PHONE, "CLEAR R1 police have spoken to the men, all fine"))
    assert "All clear for R1 is going to 5 people" in reply
    dispatch(rt)
    assert sent_to(twilio_api, ARTHUR)[-1] == "All clear R1: police have spoken to the men, all fine. Thank you for looking out."
    assert sent_to(twilio_api, JOAN)[-1].startswith("All clear R1:")
    assert [c["To"] for c in twilio_api.calls] == [LANDLINES[0], LANDLINES[0]]  # the landline by call, as it got it
    incident = session.exec(select(Incident)).one()
    assert incident.closed_at is not None and incident.closed_by == "all_clear" and incident.cleared_by_id == coordinator.id
    assert "not an open incident" in reply_text(twilio.sms(COORDINATOR_PHONE, "CLEAR R1"))


def test_clear_from_a_number_that_is_not_a_coordinators_is_never_an_all_clear(rt, session, twilio, twilio_api, street, coordinator):
    alert_joan(twilio, twilio_api, rt)
    twilio.sms(ARTHUR, "CLEAR R1")
    session.expire_all()
    assert session.exec(select(Incident)).one().closed_at is None
    assert reports(session, ReportKind.ALL_CLEAR) == []


def test_an_all_clear_goes_after_alerts_of_the_incident_still_queued(rt, session, twilio, twilio_api, street, coordinator):
    alert_joan(twilio, twilio_api, rt)
    with Session(rt.engine) as s:  # Arthur's alert is waiting for a retry in 5 minutes
        arthur = s.exec(select(Delivery).where(Delivery.phone == ARTHUR)).one()
        arthur.state, arthur.sid, arthur.next_attempt_at = DeliveryState.QUEUED, None, utcnow() + timedelta(minutes=5)
        s.add(arthur)
        s.commit()
    twilio.sms(COORDINATOR_PHONE, "CLEAR R1")
    session.expire_all()
    queued = session.exec(select(Delivery).where(Delivery.phone == ARTHUR).order_by(Delivery.id)).all()
    assert [d.state for d in queued] == [DeliveryState.QUEUED, DeliveryState.QUEUED]  # not cancelled
    assert queued[1].next_attempt_at >= queued[0].next_attempt_at
    dispatch(rt, later=timedelta(minutes=6))
    bodies = sent_to(twilio_api, ARTHUR)
    assert bodies[-2].startswith("Clayhall Avenue Watch R1") and bodies[-1].startswith("All clear R1")


def test_incidents_with_no_activity_for_a_day_close_by_themselves(rt, session, twilio, twilio_api, street):
    alert_joan(twilio, twilio_api, rt)
    assert jobs.close_quiet_incidents(rt, now=utcnow() + timedelta(hours=23)) == {"closed": 0}
    assert jobs.close_quiet_incidents(rt, now=utcnow() + timedelta(hours=25)) == {"closed": 1}
    session.expire_all()
    assert session.exec(select(Incident)).one().closed_by == "quiet"
    assert "close_quiet_incidents" in {job.id for job in jobs.schedule(rt.config)}


# --- the outcome -----------------------------------------------------------------------------------


def test_the_outcome_is_texted_to_a_reporter_with_a_mobile(rt, session, twilio, twilio_api, street, coordinator):
    alert_joan(twilio, twilio_api, rt)
    incident = session.exec(select(Incident)).one()
    assert incidents.record_outcome(session=session, config=rt.config, incident=incident, outcome=Outcome.POLICE_INFORMED,
                                    note="crime ref 01/2345/26", coordinator_id=coordinator.id, now=utcnow())
    session.commit()
    dispatch(rt)
    told = sent_to(twilio_api, JOAN)[-1]
    assert "your report R1" in told and "police have been informed" in told and "01/2345/26" in told
    assert segments.count(told) <= 2


def test_a_landline_reporter_hears_the_outcome_first_thing_on_their_next_call(rt, session, twilio, twilio_api, street, coordinator):
    call = twilio.call(LANDLINES[0]).start().press("1").say("somebody is in the garden of number 2")
    call.press("1")
    incident = session.exec(select(Incident)).one()
    assert incidents.record_outcome(session=session, config=rt.config, incident=incident, outcome=Outcome.FALSE_ALARM,
                                    note=None, coordinator_id=coordinator.id, now=utcnow()) is False
    session.commit()
    next_call = twilio.call(LANDLINES[0]).start()
    assert "news about your report" in next_call.text and "false alarm" in next_call.text
    session.expire_all()
    assert session.exec(select(Incident)).one().outcome_told_at is not None
    assert "news about your report" not in twilio.call(LANDLINES[0]).start().text  # once


# --- what residents are told -----------------------------------------------------------------------


def test_a_typical_alert_with_a_100_character_report_fits_one_sms_and_says_ok_is_enough(rt, twilio, twilio_api, street):
    alert_joan(twilio, twilio_api, rt, "x" * 100)
    alert = sent_to(twilio_api, ARTHUR)[0]
    assert segments.count(alert) == 1 and "Reply OK if seen" in alert


def test_help_says_how_to_add_to_an_incident_and_that_ok_is_enough_in_one_sms(rt, twilio, street):
    help_text = reply_text(twilio.sms(ARTHUR, "HELP"))
    assert "R42 + news" in help_text and "OK" in help_text and segments.count(help_text) == 1


def test_the_daily_digest_counts_open_incidents_and_those_without_an_outcome(rt, session, twilio, twilio_api, street, coordinator):
    from hotline.coordination import digest

    alert_joan(twilio, twilio_api, rt)  # R1, open
    add_members(session, street, NUMBERS[5:6])
    twilio.sms(NUMBERS[5], "fox in the bins at no 30")  # R2, a new incident
    twilio.sms(COORDINATOR_PHONE, "CLEAR R2")
    now = utcnow() + timedelta(minutes=1)
    summary = digest.summarize(session, coordinator, since=now - timedelta(days=1), now=now)
    assert (summary.new_reports, summary.open_incidents, summary.without_outcome) == (2, 1, 1)
    assert digest.queue_digests(session=session, config=rt.config, now=now) == 1
    session.commit()
    body = session.exec(select(Delivery.body).where(Delivery.phone == COORDINATOR_PHONE).order_by(Delivery.id.desc())).first()
    assert "1 incident open" in body and "1 closed without an outcome" in body and segments.count(body) == 1

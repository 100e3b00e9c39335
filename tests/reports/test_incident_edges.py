"""Incident edges a review found: races on the all-clear and on taking it, plates that look like references,
an update held past the all-clear, and who the all-clear must not reach."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from hotline.db import utcnow
from hotline.models import Channel, Delivery, DeliveryState, Incident, Report, ReportKind, ReportState
from hotline.reports import incidents, intake
from hotline.residents import members
from tests.reports.test_inbox import dispatch, reply_text
from tests.reports.test_incidents import ARTHUR, COORDINATOR_PHONE, JOAN, PRIYA, alert_joan, coordinator, reports, street  # noqa: F401

pytestmark = pytest.mark.never_quiet  # as tests/reports/test_incidents.py: no quiet hours


def test_two_all_clears_at_once_send_one(rt, session, twilio, twilio_api, street, coordinator):
    alert_joan(twilio, twilio_api, rt)
    with Session(rt.engine, expire_on_commit=False) as first, Session(rt.engine, expire_on_commit=False) as second:
        one, two = first.exec(select(Incident)).one(), second.exec(select(Incident)).one()  # both see it open
        sent = incidents.clear(session=first, config=rt.config, incident=one, words="all fine", channel=Channel.WEB,
                               coordinator_id=coordinator.id, now=utcnow())
        first.commit()
        with pytest.raises(incidents.NotOpen):
            incidents.clear(session=second, config=rt.config, incident=two, words="all fine too", channel=Channel.SMS,
                            coordinator_id=coordinator.id, now=utcnow())
        second.rollback()
    assert sent == 4 and len(reports(session, ReportKind.ALL_CLEAR)) == 1


def test_two_coordinators_taking_it_at_once_the_first_keeps_it(rt, session, twilio, twilio_api, street, coordinator):
    from hotline.models import Coordinator

    other = Coordinator(email="other@example.org", password_hash="x")
    session.add(other)
    session.commit()
    alert_joan(twilio, twilio_api, rt)
    with Session(rt.engine) as first, Session(rt.engine) as second:
        one, two = first.exec(select(Incident)).one(), second.exec(select(Incident)).one()
        assert incidents.take(session=first, incident=one, coordinator_id=coordinator.id, now=utcnow()) == coordinator.id
        first.commit()
        assert incidents.take(session=second, incident=two, coordinator_id=other.id, now=utcnow()) == coordinator.id
        second.commit()


def test_a_prefix_style_plate_at_the_start_is_not_a_reference(rt, session, twilio, twilio_api, street):
    alert_joan(twilio, twilio_api, rt)  # R1 open; plenty of incidents have small numbers
    assert incidents.ref_prefix("R1 he's back") == (1, "he's back")
    assert incidents.ref_prefix("R123 ABC parked outside no 5 again") is None


def test_an_update_held_until_after_the_all_clear_goes_out_as_a_new_report(rt, session, twilio, twilio_api, street, coordinator):
    alert_joan(twilio, twilio_api, rt)
    street.moderated = True
    session.add(street)
    session.commit()
    twilio.sms(JOAN, "they are back at the van")  # an update, held
    held = reports(session, ReportKind.UPDATE)[-1]
    assert held.state == ReportState.HELD
    twilio.sms(COORDINATOR_PHONE, "CLEAR R1 it was the plumber")
    session.expire_all()
    count = intake.release(session=session, config=rt.config, report=session.get(Report, held.id))
    session.commit()
    released = session.get(Report, held.id)
    assert count > 0 and released.kind == ReportKind.REPORT and released.incident_id not in (None, reports(session)[0].incident_id)
    bodies = [d.body for d in session.exec(select(Delivery).where(Delivery.report_id == held.id, Delivery.channel == Channel.SMS))]
    assert bodies and all(b.startswith("Clayhall Avenue Watch R") and not b.startswith("Update") for b in bodies)


def test_the_all_clear_does_not_reach_someone_who_left_the_street(rt, session, twilio, twilio_api, street, coordinator):
    alert_joan(twilio, twilio_api, rt)
    assert "left" in reply_text(twilio.sms(PRIYA, "LEAVE")).lower()
    twilio.sms(COORDINATOR_PHONE, "CLEAR R1")
    dispatch(rt)
    assert not any(m["Body"].startswith("All clear") for m in twilio_api.to(PRIYA))
    assert any(m["Body"].startswith("All clear") for m in twilio_api.to(ARTHUR))


def test_a_non_urgent_update_to_a_number_that_turns_out_to_be_a_landline_is_not_a_call(rt, session, twilio, twilio_api, street):
    alert_joan(twilio, twilio_api, rt)
    twilio.sms(JOAN, "they walked off towards the park")
    dispatch(rt)
    update = next(m for m in twilio_api.to(ARTHUR) if m["Body"].startswith("Update R1"))
    twilio.status(update["sid"], "undelivered", "30006")  # Arthur's number is a landline after all
    session.expire_all()
    delivery = session.exec(select(Delivery).where(Delivery.sid.is_(None), Delivery.phone == ARTHUR)).one()
    assert delivery.state == DeliveryState.CANCELLED and "phone menu" in delivery.error_message
    first_alert = session.exec(select(Delivery).where(Delivery.phone == ARTHUR, Delivery.report_id == 1)).one()
    assert first_alert.channel == Channel.SMS  # (its own callback is another story)
    assert members.find(session, ARTHUR).alerts == "call"

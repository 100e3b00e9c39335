"""Status callbacks against the delivery they belong to, and only that one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from hotline.models import AlertChannel, Channel, Delivery, DeliveryState, Member
from tests.conftest import NUMBERS, add_members, add_street
from tests.reports.test_inbox import dispatch


@pytest.fixture
def street(session):
    clayhall = add_street(session, "Clayhall Avenue", 101)
    add_members(session, clayhall, NUMBERS[:3])
    return clayhall


def test_a_late_callback_for_the_sms_does_not_fail_the_call_it_became(rt, session, twilio, twilio_api, street):
    """30006 (landline) turns the text into a call; Twilio's later 'failed' for the text's SID must not
    touch the call, which still rings the landline."""
    twilio.sms(NUMBERS[0], "van with no plates outside 14")
    dispatch(rt)
    landline = twilio_api.sent[0]
    twilio.status(landline["sid"], "undelivered", "30006")
    session.expire_all()
    converted = session.exec(select(Delivery).where(Delivery.phone == landline["To"])).one()
    assert converted.channel == Channel.CALL and converted.state == DeliveryState.QUEUED
    assert converted.sid is None and not converted.needs_lookup
    assert session.exec(select(Member.alerts).where(Member.phone == landline["To"])).one() == AlertChannel.CALL

    assert twilio.status(landline["sid"], "failed", "30006").status_code == 204  # late, out of order
    session.expire_all()
    assert session.get(Delivery, converted.id).state == DeliveryState.QUEUED

    dispatch(rt, later=timedelta(hours=10))  # past quiet hours, whatever the hour the test runs at
    assert [c["To"] for c in twilio_api.calls] == [landline["To"]]
    session.expire_all()
    assert session.get(Delivery, converted.id).state == DeliveryState.CALLING


# --- what Twilio's errors say about a number ------------------------------------------------------

TWILIO_ERRORS = [
    (21211, "The 'To' number {to} is not a valid phone number."),
    (21408, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}."),
    (21612, "The 'To' phone number: {to}, is not currently reachable using the 'From' phone number: +447400123456 via SMS."),
]


@pytest.mark.parametrize("code, message", TWILIO_ERRORS)
def test_twilio_errors_are_kept_without_the_whole_number_and_shown_masked(app, rt, session, twilio, twilio_api, street, code, message):
    from tests.web.conftest import Web, make_coordinator

    twilio.sms(NUMBERS[0], "someone in the back gardens with a torch")
    twilio_api.fail_next((400, code, message))
    dispatch(rt)
    session.expire_all()
    refused = session.exec(select(Delivery).where(Delivery.error_code == code)).one()
    national = "0" + refused.phone[3:]
    assert refused.phone[1:] not in refused.error_message and national not in refused.error_message
    assert "•" in refused.error_message and "400123456" not in refused.error_message  # our own number too

    make_coordinator(session, "admin@example.org", admin=True)
    web = Web(app)
    assert web.login("admin@example.org").status_code == 302
    page = web.get(f"/reports/{refused.report_id}").get_data(as_text=True)
    assert str(code) in page and refused.phone[3:] not in page and national not in page


def test_a_failed_look_up_s_url_does_not_leave_the_number_in_the_record(rt, session, twilio, twilio_api, street):
    import requests

    twilio.sms(NUMBERS[0], "car alarm going for an hour")
    url = f"/2010-04-01/Accounts/AC0/Messages.json?To=%2B{NUMBERS[1][1:]}&From=%2B447400123456"
    twilio_api.fail_next(requests.exceptions.ConnectionError(f"Max retries exceeded with url: {url}"))
    dispatch(rt)
    session.expire_all()
    stored = " ".join(m or "" for m in session.exec(select(Delivery.error_message)))
    assert "ConnectionError" in stored and NUMBERS[1][3:] not in stored and "447400123456" not in stored


def test_old_unmasked_errors_are_masked_on_the_report_page(app, rt, session, twilio, twilio_api, street):
    """Rows stored before masking came in: the page masks them as it shows them."""
    from tests.web.conftest import Web, make_coordinator

    twilio.sms(NUMBERS[0], "broken window at the school")
    dispatch(rt)
    delivery = session.exec(select(Delivery)).first()
    delivery.error_message = f"The 'To' number {delivery.phone} is not a valid phone number."
    session.add(delivery)
    make_coordinator(session, "admin@example.org", admin=True)
    web = Web(app)
    web.login("admin@example.org")
    page = web.get(f"/reports/{delivery.report_id}").get_data(as_text=True)
    assert "is not a valid phone number" in page and delivery.phone[3:] not in page

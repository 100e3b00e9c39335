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

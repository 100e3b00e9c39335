"""Alert calls placed once each, on the right delivery, from a number Twilio will ring from."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlmodel import Session, select

from hotline.db import utcnow
from hotline.delivery import outbox
from hotline.models import AlertChannel, Channel, Delivery, DeliveryState
from hotline.reports import intake
from hotline.residents import members
from tests.conftest import LANDLINES, NUMBERS, add_members, add_street, build_app

NEVER_QUIET = {"HOTLINE_QUIET_HOURS": "00:00-00:00"}


@pytest.fixture
def app(tmp_path):
    app = build_app(tmp_path, twilio=True, environ=NEVER_QUIET)
    yield app
    app.extensions["hotline"].engine.dispose()


@pytest.fixture
def street(session):
    clayhall = add_street(session, "Clayhall Avenue", 101)
    add_members(session, clayhall, NUMBERS[:1])
    add_members(session, clayhall, LANDLINES[:1], alerts=AlertChannel.CALL)
    return clayhall


def report(rt, session, text: str):
    intake.submit(session=session, config=rt.config, phone=NUMBERS[0], text=text, member=members.find(session, NUMBERS[0]))
    session.commit()


def dispatch(rt, *, later: timedelta = timedelta(0)) -> int:
    with Session(rt.engine) as session:
        return outbox.dispatch_due(session=session, carrier=rt.carrier, config=rt.config, limit=100, now=utcnow() + later)


def calls_to_the_landline(session) -> list[Delivery]:
    session.expire_all()
    return list(session.exec(select(Delivery).where(Delivery.phone == LANDLINES[0]).order_by(Delivery.id)))


def test_a_timed_out_call_never_takes_another_calls_sid(rt, session, twilio_api, street):
    """Two overnight reports ring one landline at 07:00. The first call times out (Twilio never placed it);
    its look-up sees the second report's call to the same number: that is not its own call."""
    report(rt, session, "white van parked across the drive of number 3")
    report(rt, session, "the same van now outside number 9 with its engine running")
    twilio_api.fail_next(requests.exceptions.ReadTimeout("read timed out"))
    dispatch(rt)
    first, second = calls_to_the_landline(session)
    assert first.state == DeliveryState.QUEUED and first.needs_lookup and first.sid is None
    assert second.state == DeliveryState.CALLING and second.sid == twilio_api.calls[0]["sid"]

    dispatch(rt, later=timedelta(minutes=5))
    first, second = calls_to_the_landline(session)
    assert first.state == DeliveryState.CALLING and first.sid not in (None, second.sid)
    assert [c["sid"] for c in twilio_api.calls] == [second.sid, first.sid]  # rung once for each report


def test_a_timed_out_call_that_did_go_out_is_found_and_not_placed_again(rt, session, twilio_api, street):
    report(rt, session, "someone climbing the scaffolding at the flats")
    twilio_api.fail_next(requests.exceptions.ReadTimeout("read timed out"))
    dispatch(rt)
    (call,) = calls_to_the_landline(session)
    # Twilio had in fact placed it before the connection dropped:
    twilio_api.calls.append({"To": LANDLINES[0], "From": twilio_api.requests[-1]["From"], "sid": "CA" + "7" * 32,
                             "status": "ringing", "date_created": utcnow().strftime("%a, %d %b %Y %H:%M:%S +0000")})
    dispatch(rt, later=timedelta(minutes=5))
    (call,) = calls_to_the_landline(session)
    assert call.sid == "CA" + "7" * 32 and call.state == DeliveryState.CALLING
    assert len(twilio_api.calls) == 1


def test_any_unexpected_error_on_a_send_counts_toward_the_attempt_cap(rt, session, twilio_api, street, monkeypatch):
    """A bug or a database error while sending must not leave a row reclaimed for ever, holding one of the
    HOTLINE_CALL_CONCURRENCY lines: it is retried like any failure, then given up."""

    def broken(**_):
        raise ValueError("a bug in the carrier")

    monkeypatch.setattr(rt.carrier, "place_call", broken)
    report(rt, session, "kids throwing stones at the bus shelter")
    for minutes in range(0, 24 * 60, 60):
        dispatch(rt, later=timedelta(minutes=minutes))
    (call,) = calls_to_the_landline(session)
    assert call.state == DeliveryState.FAILED and call.attempts == rt.config.max_send_attempts
    assert "a bug in the carrier" in call.error_message
    with Session(rt.engine) as s:
        assert outbox.calls_in_progress(s, utcnow()) == 0


def test_a_lease_that_keeps_running_out_is_given_up_after_the_cap(rt, session, twilio_api, street):
    """A worker killed mid-send every time (a poison row): each reclaim counts, and the cap ends it."""
    report(rt, session, "smoke from the garages behind the shops")
    with Session(rt.engine) as s:
        for n in range(rt.config.max_send_attempts + 1):
            outbox.claim_due(session=s, limit=10, now=utcnow() + timedelta(minutes=n), lease_seconds=1, channel=Channel.CALL)
    dispatch(rt, later=timedelta(hours=1))
    (call,) = calls_to_the_landline(session)
    assert call.state == DeliveryState.FAILED and twilio_api.calls == []

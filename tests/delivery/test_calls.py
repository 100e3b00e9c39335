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
from tests.conftest import LANDLINES, NEVER_QUIET, NUMBERS, add_members, add_street

pytestmark = pytest.mark.never_quiet  # no quiet hours: the tests must not depend on the hour they run at



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


# --- a scheme sending through a Messaging Service ------------------------------------------------------

SERVICE = "MG" + "5" * 32
SERVICE_NUMBER = "+447400765432"


def service_app(tmp_path, **environ):
    """Twilio mode with TWILIO_MESSAGING_SERVICE_SID, and HOTLINE_FROM_NUMBER only if given."""
    import os

    from hotline import create_app
    from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL, _database_url, _fresh

    url = _database_url(tmp_path)
    _fresh(url)
    env = {"HOTLINE_DATABASE_URL": url, "HOTLINE_SECRET_KEY": "test", "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
           "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_MESSAGING_SERVICE_SID": SERVICE, "HOTLINE_PUBLIC_URL": PUBLIC_URL,
           **NEVER_QUIET, **environ}
    assert "HOTLINE_FROM_NUMBER" not in os.environ
    return create_app({"testing": True}, instance_path=tmp_path / "instance", environ=env)


def landline_alerted(app):
    rt = app.extensions["hotline"]
    with Session(rt.engine, expire_on_commit=False) as session:
        street = add_street(session, "Clayhall Avenue", 101)
        add_members(session, street, NUMBERS[:2])
        add_members(session, street, LANDLINES[:1], alerts=AlertChannel.CALL)
        report(rt, session, "lights on in the empty house at number 20")
    dispatch(rt)
    return rt


def test_a_messaging_service_scheme_rings_its_landlines_from_the_services_own_number(tmp_path, twilio_api):
    twilio_api.service_numbers[SERVICE] = [SERVICE_NUMBER]
    app = service_app(tmp_path)
    landline_alerted(app)
    assert [m["MessagingServiceSid"] for m in twilio_api.sent] == [SERVICE] and "From" not in twilio_api.sent[0]
    assert [(c["To"], c["From"]) for c in twilio_api.calls] == [(LANDLINES[0], SERVICE_NUMBER)]
    app.extensions["hotline"].engine.dispose()


def test_hotline_from_number_beside_a_messaging_service_is_the_caller_id(tmp_path, twilio_api):
    app = service_app(tmp_path, HOTLINE_FROM_NUMBER="+447400123456")
    landline_alerted(app)
    assert [m["MessagingServiceSid"] for m in twilio_api.sent] == [SERVICE]
    assert [c["From"] for c in twilio_api.calls] == ["+447400123456"]
    assert not any("ServiceNumbers" in r for r in twilio_api.requests)  # no need to ask the service
    app.extensions["hotline"].engine.dispose()


def test_a_service_without_numbers_fails_calls_loudly_at_start_and_on_the_coordinators_pages(tmp_path, twilio_api, caplog):
    """An alphanumeric-only Messaging Service cannot ring anyone: the worker says so at start, each call
    fails at once with the reason (no retries that cannot succeed), and every coordinator page says so."""
    from hotline.delivery import calls
    from tests.web.conftest import Web, make_coordinator

    twilio_api.service_numbers[SERVICE] = []
    app = service_app(tmp_path)
    with caplog.at_level("ERROR", logger="hotline"):
        assert calls.check_caller(app.extensions["hotline"].carrier) is None
    assert any("ALERT CALLS CANNOT BE PLACED" in r.getMessage() and "HOTLINE_FROM_NUMBER" in r.getMessage() for r in caplog.records)

    rt = landline_alerted(app)
    assert twilio_api.calls == [] and len(twilio_api.sent) == 1  # the text still goes
    with Session(rt.engine) as session:
        (call,) = session.exec(select(Delivery).where(Delivery.channel == Channel.CALL)).all()
        assert call.state == DeliveryState.FAILED and call.error_code == 21213 and "HOTLINE_FROM_NUMBER" in call.error_message
        make_coordinator(session, "admin@example.org", admin=True)
    web = Web(app)
    web.login("admin@example.org")
    page = web.get("/").get_data(as_text=True)
    assert "Alert calls cannot be placed" in page and "HOTLINE_FROM_NUMBER" in page
    rt.engine.dispose()


def test_the_simulator_and_a_from_number_need_no_look_up_to_name_their_caller(sim_app, rt):
    from hotline.delivery import calls

    assert calls.check_caller(sim_app.extensions["hotline"].carrier)
    assert calls.check_caller(rt.carrier) == "+447400123456"


def test_a_retried_call_that_times_out_never_takes_its_own_earlier_calls_sid(rt, session, twilio, twilio_api, street):
    """No answer, so rung again; that second try times out: its look-up sees the first call, which is not it."""
    report(rt, session, "someone in the garden of the empty house")
    dispatch(rt)
    first = twilio_api.calls[0]
    twilio.post("/twilio/status", {"CallSid": first["sid"], "CallStatus": "no-answer", "AccountSid": "AC" + "0" * 32})
    twilio_api.fail_next(requests.exceptions.ReadTimeout("read timed out"))
    dispatch(rt, later=timedelta(minutes=5))
    dispatch(rt, later=timedelta(minutes=15))
    (call,) = calls_to_the_landline(session)
    assert call.state == DeliveryState.CALLING and call.sid not in (None, first["sid"])
    assert len(twilio_api.calls) == 2  # the first, and a real second call

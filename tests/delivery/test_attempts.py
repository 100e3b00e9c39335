"""Every attempt kept, and callbacks that never came recovered by reconciliation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import func, select

from hotline.db import utcnow
from hotline.delivery import reconcile
from hotline.models import Delivery, DeliveryAttempt, DeliveryState, UnmatchedStatus
from hotline.ops import jobs
from tests.conftest import NUMBERS, add_members, add_street
from tests.reports.test_inbox import dispatch


@pytest.fixture
def street(session):
    clayhall = add_street(session, "Clayhall Avenue", 101)
    add_members(session, clayhall, NUMBERS[:31])
    return clayhall


def tries(session, delivery_id: int) -> list[DeliveryAttempt]:
    session.expire_all()
    return list(session.exec(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery_id).order_by(DeliveryAttempt.id)))


def test_an_undelivered_text_sent_again_keeps_its_first_attempt_and_the_page_shows_both(app, rt, session, twilio, twilio_api, street):
    from tests.web.conftest import Web, make_coordinator

    twilio.sms(NUMBERS[0], "bike taken from the front garden of no 5")
    dispatch(rt)
    first = twilio_api.to(NUMBERS[1])[0]
    twilio.status(first["sid"], "undelivered", "30003")
    dispatch(rt, later=timedelta(minutes=10))
    second = twilio_api.to(NUMBERS[1])[1]
    twilio.status(second["sid"], "delivered")
    delivery = session.exec(select(Delivery).where(Delivery.phone == NUMBERS[1])).one()
    history = tries(session, delivery.id)
    assert [(t.sid, t.status, t.error_code) for t in history] == [(first["sid"], "undelivered", 30003), (second["sid"], "delivered", None)]
    assert delivery.state == DeliveryState.DELIVERED and delivery.sid == second["sid"]

    twilio.status(first["sid"], "sent")  # a late callback for the first send lands on it, not on the delivery
    session.expire_all()
    assert session.get(UnmatchedStatus, first["sid"]) is None and tries(session, delivery.id)[0].status == "undelivered"
    assert session.get(Delivery, delivery.id).state == DeliveryState.DELIVERED

    make_coordinator(session, "admin@example.org", admin=True)
    web = Web(app)
    web.login("admin@example.org")
    page = web.get(f"/reports/{delivery.report_id}").get_data(as_text=True)
    assert "handset off or out of reach · sent again: delivered" in page


def test_a_send_refused_then_retried_is_two_attempts(rt, session, twilio, twilio_api, street):
    twilio.sms(NUMBERS[0], "gate left open at the school")
    twilio_api.fail_next(500)
    dispatch(rt)
    dispatch(rt, later=timedelta(minutes=5))
    retried = [d for d in session.exec(select(Delivery)) if len(tries(session, d.id)) == 2]
    assert len(retried) == 1
    assert [t.status for t in tries(session, retried[0].id)] == ["retry", "accepted"]


def test_reconciliation_finds_the_final_state_of_deliveries_whose_callbacks_never_came(rt, session, twilio, twilio_api, street):
    """Callbacks lost for a third of 30 texts: every delivery ends in its final state, nothing is sent twice."""
    twilio.sms(NUMBERS[0], "two men checking the doors of parked cars")
    dispatch(rt)
    assert len(twilio_api.sent) == 30
    for n, message in enumerate(twilio_api.sent):
        message["status"] = "delivered"  # what Twilio knows
        if n % 3:
            twilio.status(message["sid"], "delivered")  # two in three callbacks arrive
    twilio_api.sent[0]["status"], twilio_api.sent[0]["error_code"] = "undelivered", 30005  # one failed for good
    twilio_api.sent[3]["status"] = "sent"  # one not final at Twilio either
    lost = [m["sid"] for n, m in enumerate(twilio_api.sent) if not n % 3]
    session.expire_all()
    assert session.exec(select(func.count(Delivery.id)).where(Delivery.state == DeliveryState.DELIVERED)).one() == 20

    assert jobs.reconcile_deliveries(rt, now=utcnow() + timedelta(minutes=10))["overdue"] == 0  # not overdue yet
    summary = jobs.reconcile_deliveries(rt, now=utcnow() + timedelta(minutes=20))
    assert summary == {"overdue": 10, "applied": 10, "unknown": 0, "failed": 0}
    session.expire_all()
    states = {d.sid: d.state for d in session.exec(select(Delivery))}
    assert [states[sid] for sid in lost] == [DeliveryState.UNDELIVERED, DeliveryState.SENT] + [DeliveryState.DELIVERED] * 8
    assert session.exec(select(func.count(Delivery.id)).where(Delivery.state == DeliveryState.DELIVERED)).one() == 28
    dispatch(rt, later=timedelta(hours=1))
    assert len(twilio_api.sent) == 30  # never sent again because a callback was missing
    fetches = [r for r in twilio_api.requests if "Fetch" in r]
    assert len(fetches) == 10  # one request each
    assert "reconcile_deliveries" in {job.id for job in jobs.schedule(rt.config)}


def test_reconciliation_is_paced(rt, session, twilio, twilio_api, street):
    """One fetch at a time through a pacer at HOTLINE_SEND_RATE (a fake clock: no wall-clock assertion)."""
    from hotline.delivery.outbox import Pacer

    twilio.sms(NUMBERS[0], "smoke from the allotments")
    dispatch(rt)
    clock = [0.0]
    waits = []
    pacer = Pacer(rt.config.send_rate, clock=lambda: clock[0], sleep=lambda s: (waits.append(s), clock.__setitem__(0, clock[0] + s)))
    reconcile.reconcile(engine=rt.engine, carrier=rt.carrier, config=rt.config, now=utcnow() + timedelta(minutes=20), pacer=pacer)
    assert len(waits) == 29 and all(abs(w - 1.02 / rt.config.send_rate) < 1e-9 for w in waits)


def test_reconciliation_asks_about_others_before_asking_again_about_the_same_ones(rt, session, twilio, twilio_api, street):
    """A network that never sends receipts leaves texts "sent" at Twilio: they must not starve the rest."""
    twilio.sms(NUMBERS[0], "a van idling at the end of the road")
    dispatch(rt)
    for message in twilio_api.sent:
        message["status"] = "sent"
    later = utcnow() + timedelta(minutes=20)
    first = reconcile.reconcile(engine=rt.engine, carrier=rt.carrier, config=rt.config, now=later, limit=10)
    second = reconcile.reconcile(engine=rt.engine, carrier=rt.carrier, config=rt.config, now=later + timedelta(minutes=5), limit=10)
    asked = [r["Fetch"] for r in twilio_api.requests if "Fetch" in r]
    assert first["overdue"] == second["overdue"] == 10 and len(asked) == 20 and len(set(asked)) == 20

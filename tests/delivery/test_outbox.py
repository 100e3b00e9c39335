"""The dispatcher: pacing, concurrency against a slow API, claims that two workers cannot share."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlmodel import Session, func, select

from hotline.db import utcnow
from hotline.delivery import outbox
from hotline.models import Delivery, DeliveryState
from tests.conftest import NUMBERS, SignedClient, add_members, add_street, build_app


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_pacer_spaces_sends_exactly_one_interval_apart():
    clock = FakeClock()
    pacer = outbox.Pacer(4, clock=clock, sleep=clock.sleep)
    stamps = []
    for _ in range(12):
        pacer.wait()
        stamps.append(clock.now)
    assert [round(b - a, 9) for a, b in zip(stamps, stamps[1:])] == [round(0.25 * outbox.Pacer.MARGIN, 9)] * 11


def test_pacer_never_bursts_after_an_idle_spell():
    clock = FakeClock()
    pacer = outbox.Pacer(1, clock=clock, sleep=clock.sleep)
    pacer.wait()
    clock.now += 30  # idle: no credit is saved up for a burst later
    stamps = []
    for _ in range(5):
        pacer.wait()
        stamps.append(clock.now)
    assert [round(t - 30, 9) for t in stamps] == [round(n * outbox.Pacer.MARGIN, 9) for n in range(5)]


def max_in_any_window(stamps: list[float], width: float = 1.0) -> int:
    stamps = sorted(stamps)
    return max(sum(1 for t in stamps if start <= t < start + width) for start in stamps)


def test_dispatcher_keeps_the_rate_against_a_slow_api(tmp_path, twilio_api):
    """20/s with an API taking 150 ms to answer: sends overlap, the rate holds, nothing is sent twice."""
    app = build_app(tmp_path, twilio=True, environ={"HOTLINE_SEND_RATE": "20"})
    rt = app.extensions["hotline"]
    twilio_api.latency = 0.15
    with Session(rt.engine) as session:
        street = add_street(session, "Clayhall Avenue", 101)
        add_members(session, street, NUMBERS[:41])
    dispatcher = outbox.Dispatcher(engine=rt.engine, carrier=rt.carrier, config=rt.config)
    released = []
    pace = dispatcher.sms_pacer.wait
    dispatcher.sms_pacer.wait = lambda: (pace(), released.append(time.monotonic()))
    dispatcher.start()
    try:
        started = time.monotonic()
        SignedClient(app).sms(NUMBERS[0], "man trying car door handles")
        dispatcher.wake()
        deadline = started + 15
        while len(twilio_api.sent) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        dispatcher.stop()
    assert sorted(m["To"] for m in twilio_api.sent) == sorted(NUMBERS[1:41])
    assert len(released) == 40 and max_in_any_window(released) <= 20  # what we release: strictly paced
    # What the API sees carries the thread scheduler's jitter on top (tens of ms on a loaded machine).
    stamps = twilio_api.stamps
    assert max_in_any_window(stamps) <= 21
    span = stamps[-1] - stamps[0]
    assert 39 / 20 * 0.95 <= span <= 39 / 20 * 1.5  # paced, and latency did not cap it at ~1/0.15 s
    rt.engine.dispose()


def test_two_claims_never_share_a_delivery(rt, session, twilio):
    street = add_street(session, "Clayhall Avenue", 101)
    add_members(session, street, NUMBERS[:31])
    twilio.sms(NUMBERS[0], "two men checking doors")
    results = []

    def claim():
        with Session(rt.engine) as own:
            results.append(outbox.claim_due(session=own, limit=20, now=utcnow(), lease_seconds=30))

    threads = [threading.Thread(target=claim) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [i for batch in results for i in batch]
    assert len(claimed) == len(set(claimed)) == 30


def test_a_claim_whose_worker_died_is_retried_with_a_lookup_first(rt, session, twilio, twilio_api):
    street = add_street(session, "Clayhall Avenue", 101)
    add_members(session, street, NUMBERS[:2])
    twilio.sms(NUMBERS[0], "light on in the empty house")
    assert outbox.claim_due(session=session, limit=10, now=utcnow(), lease_seconds=30)  # then the worker "dies"
    assert outbox.claim_due(session=session, limit=10, now=utcnow(), lease_seconds=30) == []  # leased
    later = utcnow() + timedelta(seconds=31)
    [again] = outbox.claim_due(session=session, limit=10, now=later, lease_seconds=30)
    delivery = session.get(Delivery, again)
    session.refresh(delivery)
    assert delivery.needs_lookup and delivery.attempts == 2
    outbox.send_one(engine=rt.engine, carrier=rt.carrier, config=rt.config, delivery_id=again)
    assert len(twilio_api.sent) == 1
    assert session.exec(select(func.count(Delivery.id)).where(Delivery.state == DeliveryState.ACCEPTED)).one() == 1

"""The dispatcher: pacing, concurrency against a slow API, claims that two workers cannot share."""

from __future__ import annotations

import random
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


class LateClock(FakeClock):
    """A loaded machine: every sleep wakes late, by up to `late` seconds (seeded, so the test repeats)."""

    def __init__(self, late: float, seed: int = 17):
        super().__init__()
        self.late, self.random, self.lock = late, random.Random(seed), threading.Lock()

    def __call__(self):
        with self.lock:
            return self.now

    def sleep(self, seconds):
        with self.lock:
            self.now += max(0.0, seconds) + self.random.uniform(0, self.late)


def test_pacer_keeps_the_rate_in_every_second_when_wakes_come_late():
    clock = LateClock(late=0.3)
    pacer = outbox.Pacer(10, clock=clock, sleep=clock.sleep)
    stamps = []
    for _ in range(300):
        pacer.wait()
        stamps.append(clock())
    assert max_in_any_window(stamps) <= 10
    assert min(b - a for a, b in zip(stamps, stamps[1:])) >= 0.1 * outbox.Pacer.MARGIN - 1e-9


def test_pacer_shared_by_many_threads_keeps_the_rate():
    clock = LateClock(late=0.05)
    pacer = outbox.Pacer(20, clock=clock, sleep=clock.sleep)
    stamps, lock = [], threading.Lock()

    def send_many():
        for _ in range(25):
            at = pacer.wait()
            with lock:
                stamps.append(at)

    threads = [threading.Thread(target=send_many) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stamps) == 200 and max_in_any_window(stamps) <= 20


def paced_dispatcher(rt, clock):
    """A dispatcher whose pacing runs on `clock`; returns it and the (fake) times its sends were released."""
    dispatcher = outbox.Dispatcher(engine=rt.engine, carrier=rt.carrier, config=rt.config, clock=clock, sleep=clock.sleep)
    released, lock = [], threading.Lock()
    pace = dispatcher.sms_pacer.wait

    def wait():
        at = pace()  # the (fake) time the send was let go
        with lock:
            released.append(at)

    dispatcher.sms_pacer.wait = wait
    return dispatcher, released


def broadcast_to(tmp_path, twilio_api, recipients: int, rate: int):
    app = build_app(tmp_path, twilio=True, environ={"HOTLINE_SEND_RATE": str(rate)})
    rt = app.extensions["hotline"]
    with Session(rt.engine) as session:
        add_members(session, add_street(session, "Clayhall Avenue", 101), NUMBERS[: recipients + 1])
    SignedClient(app).sms(NUMBERS[0], "man trying car door handles")
    return rt


def run_until_sent(dispatcher, twilio_api, count: int) -> None:
    dispatcher.start()
    try:
        dispatcher.wake()
        deadline = time.monotonic() + 60  # a guard against a hang, not a measure: the fake clock paces
        while len(twilio_api.sent) < count and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        dispatcher.stop()


def test_dispatcher_releases_sends_at_the_rate_and_each_number_once(tmp_path, twilio_api):
    """20/s on a fake clock that wakes late: never more than 20 sends released in any second, none twice."""
    rt = broadcast_to(tmp_path, twilio_api, 40, rate=20)
    clock = LateClock(late=0.02)
    dispatcher, released = paced_dispatcher(rt, clock)
    run_until_sent(dispatcher, twilio_api, 40)
    assert sorted(m["To"] for m in twilio_api.sent) == sorted(NUMBERS[1:41])
    assert len(released) == 40 and max_in_any_window(released) <= 20
    rt.engine.dispose()


def test_dispatcher_keeps_sends_in_flight_together_against_a_slow_api(tmp_path, twilio_api):
    """The API holds each request until five are waiting for it: a dispatcher sending one at a time would never
    get past the first, so a slow API cannot cap the rate at 1/latency."""
    rt = broadcast_to(tmp_path, twilio_api, 40, rate=20)
    together = threading.Barrier(5, timeout=20)  # the timeout only stops a hang: a broken barrier fails the sends
    answer = twilio_api._scripted

    def slow_answer(form):
        together.wait()
        return answer(form)

    twilio_api._scripted = slow_answer
    clock = FakeClock()
    clock_lock = threading.Lock()

    def sleep(seconds):
        with clock_lock:
            clock.now += seconds

    clock.sleep = sleep
    dispatcher, _ = paced_dispatcher(rt, clock)
    run_until_sent(dispatcher, twilio_api, 40)
    assert sorted(m["To"] for m in twilio_api.sent) == sorted(NUMBERS[1:41])
    assert not together.broken
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

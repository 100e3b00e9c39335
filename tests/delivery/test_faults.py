"""Nothing lost under the faults real deployments meet: real `hotline web` + `hotline worker`
processes, a Twilio stand-in that fails on purpose, a worker killed with SIGKILL."""

from __future__ import annotations

import collections
import json
import os
import signal
import time

import pytest
from sqlmodel import Session, select

from hotline.db import make_engine
from hotline.models import Delivery, DeliveryState
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, NUMBERS, TEST_DATABASE_URL, _fresh
from tests.standin.processes import Hotline, wait_until
from tests.standin.twilio import TwilioStandIn

pytestmark = pytest.mark.slow
RESULTS = os.environ.get("HOTLINE_RELIABILITY_RESULTS")  # a JSON-lines file the reliability report is built from


def record(scenario: str, **numbers) -> None:
    print(scenario, numbers)
    if RESULTS:
        with open(RESULTS, "a") as handle:
            handle.write(json.dumps({"scenario": scenario, "database": "postgresql" if TEST_DATABASE_URL else "sqlite", **numbers}) + "\n")


@pytest.fixture
def standin():
    server = TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def make_hotline(tmp_path, standin):
    started = []

    def make(**settings):
        url = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'hotline.db'}"
        _fresh(url)
        hotline = Hotline(tmp_path, database_url=url, standin=standin, **settings)
        started.append(hotline)
        return hotline

    yield make
    for hotline in started:
        hotline.stop()


def seed_street(hotline: Hotline, recipients: int) -> list[str]:
    """A street with a reporter and `recipients` neighbours, through the real CLI."""
    hotline.run("street", "add", "Clayhall Avenue", "--code", "101")
    numbers = NUMBERS[: recipients + 1]
    csv = hotline.workdir / "members.csv"
    csv.write_text("phone,street\n" + "".join(f"{n},Clayhall Avenue\n" for n in numbers))
    assert f"imported {len(numbers)}" in hotline.run("member", "import", str(csv))
    return numbers


def delivery_states(url: str) -> collections.Counter:
    engine = make_engine(url)
    with Session(engine) as session:
        states = collections.Counter(session.exec(select(Delivery.state)).all())
    engine.dispose()
    return states


def duplicates(standin: TwilioStandIn) -> int:
    per_number = collections.Counter(m["to"] for m in standin.messages)
    return sum(n - 1 for n in per_number.values() if n > 1)


def test_a_worker_killed_mid_broadcast_loses_nothing(make_hotline, standin):
    hotline = make_hotline(HOTLINE_SEND_RATE="40", HOTLINE_DISPATCH_LEASE="2")
    standin.set_faults(latency=0.05)
    numbers = seed_street(hotline, 300)
    hotline.start_web(workers=2)
    worker = hotline.start_worker()
    status, body = hotline.sms(numbers[0], "man trying car door handles, red hoodie", "SM" + "a" * 32)
    assert status == 200 and b"sent to 300 neighbours" in body

    assert wait_until(lambda: len(standin.messages) >= 100, timeout=30)
    os.kill(worker.pid, signal.SIGKILL)
    worker.process.wait()
    at_kill = len(standin.messages)
    in_flight = delivery_states(hotline.environ["HOTLINE_DATABASE_URL"])[DeliveryState.SENDING]
    hotline.start_worker()

    assert wait_until(lambda: {m["to"] for m in standin.messages} >= set(numbers[1:]), timeout=60)
    time.sleep(1)  # anything still in flight lands
    assert numbers[0] not in {m["to"] for m in standin.messages}
    dupes = duplicates(standin)
    assert dupes <= in_flight
    record("worker SIGKILLed mid-broadcast", recipients=300, accepted_at_kill=at_kill, claimed_at_kill=in_flight,
           requests=len(standin.posts()), accepted=len({m["to"] for m in standin.messages}), duplicates=dupes, lost=0)


def test_api_failures_and_timeouts_are_retried_without_a_storm(make_hotline, standin):
    hotline = make_hotline(HOTLINE_SEND_RATE="50", HOTLINE_REST_TIMEOUT="0.5", HOTLINE_RETRY_BASE="0.3", HOTLINE_SEND_ATTEMPTS="10")
    # a third answered 429/500; one in nine hangs after Twilio accepted it (a resend would text twice)
    standin.set_faults(pattern=["ok", "429", "ok", "500", "ok", "accept-timeout", "ok", "timeout", "429"], hang_seconds=1.0)
    numbers = seed_street(hotline, 60)
    hotline.start_web(workers=1)
    hotline.start_worker()
    status, _ = hotline.sms(numbers[0], "two men with a ladder at number 12", "SM" + "b" * 32)
    assert status == 200

    assert wait_until(lambda: {m["to"] for m in standin.messages} >= set(numbers[1:]), timeout=90)
    time.sleep(1.5)
    outcomes = standin.outcomes()
    posts = len(standin.posts())
    dupes = duplicates(standin)
    assert dupes == 0  # every uncertain send was looked up before sending again
    assert posts <= 3 * 60  # no storm: each failure costs one more request, no more
    by_number = collections.defaultdict(list)
    for request in standin.posts():
        by_number[request.to].append(request.at)
    gaps = [b - a for times in by_number.values() for a, b in zip(times, times[1:])]
    assert gaps and min(gaps) >= 0.3 * 0.5 * 0.9  # backoff (base 0.3 s, jitter down to half) respected
    record("429/500 on a third, timeouts", recipients=60, requests=posts, outcomes=outcomes,
           accepted=len({m["to"] for m in standin.messages}), duplicates=dupes, lost=0)


def test_status_callbacks_before_the_commit_twice_and_out_of_order_end_right(make_hotline, standin):
    hotline = make_hotline(HOTLINE_SEND_RATE="20")
    standin.set_faults(callback_first=True, message_steps=["delivered", "sent", "delivered", "queued"])
    numbers = seed_street(hotline, 10)
    hotline.start_web(workers=2)
    hotline.start_worker()
    hotline.sms(numbers[0], "smoke from the garages", "SM" + "c" * 32)
    url = hotline.environ["HOTLINE_DATABASE_URL"]
    assert wait_until(lambda: delivery_states(url)[DeliveryState.DELIVERED] == 10, timeout=30)
    assert all(code == 204 for code in standin.callback_results)
    record("status callbacks early, twice, out of order", recipients=10, callbacks=len(standin.callback_results),
           delivered=delivery_states(url)[DeliveryState.DELIVERED], lost=0)

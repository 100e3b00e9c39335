"""One send rate shared by every worker process: turns taken from the database, on a fake clock.

Two `SharedPacer`s on one database stand for two `hotline worker` processes. Time is a fake clock (seconds since
the epoch, as the workers' wall clocks would be); nothing here measures real time."""

from __future__ import annotations

import random
import threading

import pytest
from sqlmodel import Session, select

from hotline.delivery import ratelimit
from hotline.delivery.ratelimit import SharedPacer
from hotline.models import SendSlot

EPOCH = 1_800_000_000.0  # a wall-clock time in 2027: the stored turns are seconds since the epoch


class Clock:
    """A fake wall clock; each sleep may wake late by up to `late` seconds (seeded), like a loaded machine."""

    def __init__(self, late: float = 0.0, seed: int = 7):
        self.now, self.late = EPOCH, late
        self.random, self.lock = random.Random(seed), threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += max(0.0, seconds) + (self.random.uniform(0, self.late) if self.late else 0.0)

    def advance(self, seconds: float) -> None:
        self.sleep(seconds)


def most_in_any_second(stamps: list[float]) -> int:
    stamps = sorted(stamps)
    return max(sum(1 for t in stamps if start <= t < start + 1.0) for start in stamps)


def workers(rt, clock, rate: float, count: int = 2) -> list[SharedPacer]:
    return [SharedPacer(rt.engine, "sms", rate, clock=clock, sleep=clock.sleep) for _ in range(count)]


def test_turns_taken_by_two_workers_never_overlap(rt):
    clock = Clock()
    one, two = workers(rt, clock, rate=100)
    turns = []
    for n in range(30):
        turns += (one if n % 3 else two).take(clock(), 10)
        clock.advance(0.03)
    turns.sort()
    assert len(turns) == 300
    assert min(b - a for a, b in zip(turns, turns[1:])) >= ratelimit.spacing(100) - 1e-6  # seconds since the epoch as doubles: ~2e-7 s apart


def test_one_worker_sends_at_the_full_rate(rt):
    clock = Clock()
    [worker] = workers(rt, clock, rate=100, count=1)
    stamps = []
    for _ in range(300):
        stamps.append(worker.wait())
    assert most_in_any_second(stamps) == 98  # 1.0305/100 s apart: the rate, less its margin
    assert stamps[-1] - stamps[0] == pytest.approx(299 * ratelimit.spacing(100))


@pytest.mark.parametrize("rate, late", [(10, 0.0), (10, 0.3), (100, 0.05), (1, 0.5)])
def test_two_workers_sharing_one_database_never_exceed_the_rate_in_any_second(rt, rate, late):
    """Each worker sends from four threads; the clock wakes every sleep late by up to `late` seconds."""
    clock = Clock(late=late)
    stamps, lock = {0: [], 1: []}, threading.Lock()
    pacers = workers(rt, clock, rate)
    sends = max(20, int(rate * 3))

    def send(worker: int) -> None:
        for _ in range(sends // 4):
            released = pacers[worker].wait()  # the time the turn was checked and taken
            with lock:
                stamps[worker].append(released)

    threads = [threading.Thread(target=send, args=(w,)) for w in (0, 1) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    together = stamps[0] + stamps[1]
    assert len(together) == 2 * (sends // 4) * 4
    assert stamps[0] and stamps[1]
    assert most_in_any_second(together) <= rate


def test_a_worker_woken_late_gives_its_turns_up_instead_of_sending_them_all_at_once(rt):
    clock = Clock()
    [worker] = workers(rt, clock, rate=100, count=1)
    worker.wait()
    assert len(worker.turns) == 9  # a tenth of a second's turns taken at once
    clock.advance(5.0)  # a long pause: every turn it held has passed
    stamps = [clock()]
    for _ in range(150):
        stamps.append(worker.wait())
    assert most_in_any_second(stamps) <= 100
    assert worker.given_up == 9  # the turns it held when it paused, counted (the dispatcher's summary says how many)


def test_turns_used_on_time_are_none_given_up_and_a_late_wake_counts_one(rt):
    clock = Clock()
    [worker] = workers(rt, clock, rate=10, count=1)
    for _ in range(30):
        worker.wait()
    assert worker.given_up == 0

    def woken_late_once(seconds: float) -> None:  # the next sleep until a turn ends a tolerance too late
        worker.sleep = clock.sleep
        clock.advance(seconds + ratelimit.TOLERANCE)

    worker.sleep = woken_late_once
    worker.wait()  # that turn passes unused; the next is taken and used on time
    assert worker.given_up == 1


def test_a_slow_commit_of_the_turns_taken_does_not_make_the_first_one_stale(rt):
    clock = Clock()
    [worker] = workers(rt, clock, rate=1, count=1)  # one turn a take: at 1/s a turn lost costs a second
    taken = worker.take

    def slow_take(now: float, count: int) -> list[float]:
        turns = taken(now, count)
        clock.advance(0.015)  # the transaction took 15 ms to commit: longer than a turn's tolerance
        return turns

    worker.take = slow_take
    stamps = [worker.wait() for _ in range(3)]
    assert worker.given_up == 0
    assert stamps[0] == pytest.approx(EPOCH + ratelimit.LEAD)  # the first send waits that long, once
    assert stamps[-1] - stamps[0] == pytest.approx(2 * ratelimit.spacing(1))


def test_a_clock_that_jumped_far_ahead_does_not_stop_sending(rt, session):
    session.add(SendSlot(channel="sms", next_free=EPOCH + 3600))  # written by a clock an hour fast
    session.commit()
    clock = Clock()
    [worker] = workers(rt, clock, rate=10, count=1)
    worker.wait()
    assert clock() < EPOCH + 1
    session.expire_all()
    assert session.exec(select(SendSlot.next_free).where(SendSlot.channel == "sms")).one() < EPOCH + 1


def test_sms_and_calls_keep_separate_turns(rt):
    clock = Clock()
    texts = SharedPacer(rt.engine, "sms", 10, clock=clock, sleep=clock.sleep)
    calls = SharedPacer(rt.engine, "call", 1, clock=clock, sleep=clock.sleep)
    texts.wait()
    calls.wait()  # not held back by the text's next turn (a tenth of a second on)
    assert clock() < EPOCH + ratelimit.spacing(10)  # each channel's first turn just after it was taken (LEAD)
    with Session(rt.engine) as session:
        assert sorted(session.exec(select(SendSlot.channel))) == ["call", "sms"]

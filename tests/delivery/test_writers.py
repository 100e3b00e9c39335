"""The process's SQLite write turn: one writer at a time, and the crowd of status callbacks queue among themselves
so the dispatcher's few writers (claim, send turns, recorder) contend with one callback at most, not all of them."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from hotline.delivery import writers
from tests.standin.processes import wait_until


class CountedLock:
    """A lock that counts the threads waiting for it."""

    def __init__(self):
        self.lock, self.waiting, self.count = threading.Lock(), 0, threading.Lock()

    def acquire(self, *args):
        with self.count:
            self.waiting += 1
        try:
            return self.lock.acquire(*args)
        finally:
            with self.count:
                self.waiting -= 1

    def release(self):
        self.lock.release()

    __enter__ = acquire

    def __exit__(self, *exc):
        self.release()


def sqlite_engine():
    engine = SimpleNamespace(dialect=SimpleNamespace(name="sqlite"))
    engine.__dict__["_hotline_write_turn"] = (CountedLock(), CountedLock())
    return engine


def test_callbacks_wait_for_the_turn_one_at_a_time_the_others_at_the_gate():
    engine = sqlite_engine()
    turn_lock, gate = engine._hotline_write_turn
    inside, most_inside, done = [0], [0], []
    guard = threading.Lock()

    def callback(n):
        with writers.turn(engine, crowd=True):
            with guard:
                inside[0] += 1
                most_inside[0] = max(most_inside[0], inside[0])
            with guard:
                inside[0] -= 1
        done.append(n)

    with writers.turn(engine):  # a dispatcher's writer holds the turn
        threads = [threading.Thread(target=callback, args=(n,), daemon=True) for n in range(4)]
        for thread in threads:
            thread.start()
        assert wait_until(lambda: turn_lock.waiting == 1 and gate.waiting == 3, timeout=10, interval=0.01)
        assert gate.waiting == 3 and turn_lock.waiting == 1  # one callback at the lock, three at the gate
    for thread in threads:
        thread.join(10)
    assert sorted(done) == [0, 1, 2, 3] and most_inside[0] == 1
    assert not turn_lock.lock.locked() and not gate.lock.locked()


def test_the_dispatchers_writers_do_not_queue_at_the_callbacks_gate():
    engine = sqlite_engine()
    turn_lock, gate = engine._hotline_write_turn
    held, through = [], threading.Event()

    def writer():
        with writers.turn(engine):
            held.append(turn_lock.lock.locked())
        through.set()

    with gate:  # a callback is at the gate
        thread = threading.Thread(target=writer, daemon=True)  # in a thread: a regression fails the test, not hangs it
        thread.start()
        assert through.wait(10), "a dispatcher's writer queued behind the callbacks' gate"
    assert held == [True] and not turn_lock.lock.locked()


def test_the_turn_is_given_back_when_the_writer_fails():
    engine = sqlite_engine()
    turn_lock, _ = engine._hotline_write_turn
    try:
        with writers.turn(engine, crowd=True):
            raise RuntimeError("the UPDATE failed")
    except RuntimeError:
        pass
    assert not turn_lock.lock.locked()


def test_postgresql_takes_no_turn():
    engine = SimpleNamespace(dialect=SimpleNamespace(name="postgresql"))
    with writers.turn(engine, crowd=True):
        assert "_hotline_write_turn" not in engine.__dict__

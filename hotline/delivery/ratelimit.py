"""One send rate for the whole scheme, however many worker processes send: turns taken from the database.

Each channel has a row (`SendSlot`) holding the first moment nobody has claimed yet. A worker takes the next
few turns — a tenth of a second's worth — with one conditional UPDATE … RETURNING, which moves that moment on
by as many intervals (PostgreSQL locks the row for the statement; SQLite runs it alone). Turns are spaced
1.03/rate seconds apart, whoever holds them, so the turns of all workers together never put more than the rate
in any second.

A turn is used only within TOLERANCE (10 ms) after its time. A thread woken later than that (a loaded machine, a
long pause) gives its turn up and takes another: late sends never bunch up. On an idle channel the turns start
LEAD (20 ms) after they are taken, so a slow commit of the taking itself does not make the first one stale. The
turns are spaced a little wider than 1/rate (`spacing`), and that margin pays for the tolerance and for jitter on
the way to Twilio, so any one-second window still holds at most `rate` sends.

Times are the workers' wall clocks (seconds since the epoch): processes on one machine share it; on several
machines keep them in step with NTP.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from sqlalchemy import Float, bindparam, case, insert, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from hotline.delivery import writers
from hotline.models import SendSlot

TOLERANCE = 0.01  # seconds a turn stays usable after its time
LEAD = 0.02  # seconds from taking turns to the first of them: the first send of a burst waits this, once
AHEAD = 0.1  # seconds of turns taken at a time: few statements at 100/s, little left unused when a worker stops
FAR = 60.0  # a stored moment further ahead than this is a clock that jumped, not someone's turns


def spacing(rate: float) -> float:
    """Seconds between two turns: 1/rate stretched by 3 % and 50 ms a second's worth of turns. Any one-second window
    then holds at most `rate` sends even with a send going up to TOLERANCE late and the way to Twilio taking 20 ms
    longer for one send than another (60 ms at 1/s, where the slack costs nothing worth having). At 2 %, with every
    turn used on time, the stand-in counted 101–102 sends in one second at 100/s — partly its own late stamps, as
    counting on the wire later showed; at 3 % the wire has never seen more than 100 (bench.fanout)."""
    return (1.03 + 0.05 / rate) / rate


class SharedPacer:
    """`wait()` returns when this process may send one more on `channel`; the turns come from the database."""

    def __init__(self, engine: Engine, channel: str, rate: float, *, clock=time.time, sleep=time.sleep):
        self.engine, self.channel = engine, str(channel)
        self.interval = spacing(rate)
        self.chunk = max(1, int(rate * AHEAD))
        self.clock, self.sleep = clock, sleep
        self.turns: deque[float] = deque()
        self.lock = threading.Lock()
        self.given_up = 0  # turns that passed unused: a thread woken more than TOLERANCE late (each costs a turn's time)
        slot = SendSlot.__table__
        now, span = bindparam("now", type_=Float), bindparam("span", type_=Float)
        # Turns already ahead are taken where they are; an idle channel's start LEAD from now (see `take`).
        start = case(((slot.c.next_free > now) & (slot.c.next_free < now + FAR), slot.c.next_free), else_=now + LEAD)
        self._claim = (  # built once: its SQL is cached, not compiled again at every take
            update(slot).where(slot.c.channel == self.channel).values(next_free=start + span).returning(slot.c.next_free)
        )

    def wait(self) -> float:
        """Returns when a turn is ours: the clock's time then."""
        while True:
            with self.lock:
                now = self.clock()
                while self.turns and self.turns[0] + TOLERANCE <= now:
                    self.turns.popleft()  # nobody came for it in time: gone
                    self.given_up += 1
                if not self.turns:
                    self.turns.extend(self.take(now, self.chunk))
                turn = self.turns.popleft()
            now = self.clock()  # again: taking turns from the database may have taken a while
            if turn > now:
                self.sleep(turn - now)
            released = self.clock()
            if released < turn + TOLERANCE:
                return released
            with self.lock:
                self.given_up += 1

    def take(self, now: float, count: int) -> list[float]:
        """Claim the next `count` turns from the database: one statement, its own short transaction."""
        span = count * self.interval
        for _ in range(2):
            try:
                with writers.turn(self.engine), self.engine.begin() as connection:
                    # The clock read again now that the write turn is ours: a `now` read before waiting for it can be
                    # far behind the stored moment, and would look like a clock that jumped back (FAR) and rewind
                    # everyone's turns.
                    # On an idle channel turns start LEAD from now: this transaction's own commit (a wait for SQLite's
                    # lock, a loaded machine) must not make the first turn stale before it is ours.
                    now = max(now, self.clock())
                    end = connection.execute(self._claim, {"now": now, "span": span}).scalar()
                    if end is None:  # the channel's first send ever: its row
                        end = now + LEAD + span
                        connection.execute(insert(SendSlot).values(channel=self.channel, next_free=end))
            except IntegrityError:  # another worker wrote the row first: take turns from it
                continue
            first = end - span
            return [first + n * self.interval for n in range(count)]
        raise RuntimeError(f"could not take send turns for {self.channel}")

"""One send rate for the whole scheme, however many worker processes send: turns taken from the database.

Each channel has a row (`SendSlot`) holding the first moment nobody has claimed yet. A worker takes the next
few turns — a tenth of a second's worth — with one conditional UPDATE … RETURNING, which moves that moment on
by as many intervals (PostgreSQL locks the row for the statement; SQLite runs it alone). Turns are spaced
1.02/rate seconds apart, whoever holds them, so the turns of all workers together never put more than the rate
in any second.

A turn is used only within TOLERANCE after its time. A thread woken later than that (a loaded machine, a long
pause) gives its turn up and takes another: late sends never bunch up, and the 2 % margin of the spacing is what
pays for that tolerance, so any one-second window still holds at most `rate` sends.

Times are the workers' wall clocks (seconds since the epoch): processes on one machine share it; on several
machines keep them in step with NTP.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from sqlalchemy import case, insert, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from hotline.models import SendSlot

MARGIN = 1.02
TOLERANCE = (MARGIN - 1) - 1e-6  # seconds a turn stays usable after its time (float slack kept out of it)
AHEAD = 0.1  # seconds of turns taken at a time: few statements at 100/s, little left unused when a worker stops
FAR = 60.0  # a stored moment further ahead than this is a clock that jumped, not someone's turns


class SharedPacer:
    """`wait()` returns when this process may send one more on `channel`; the turns come from the database."""

    def __init__(self, engine: Engine, channel: str, rate: float, *, clock=time.time, sleep=time.sleep):
        self.engine, self.channel = engine, str(channel)
        self.interval = MARGIN / rate
        self.chunk = max(1, int(rate * AHEAD))
        self.clock, self.sleep = clock, sleep
        self.turns: deque[float] = deque()
        self.lock = threading.Lock()

    def wait(self) -> None:
        while True:
            with self.lock:
                now = self.clock()
                while self.turns and self.turns[0] + TOLERANCE <= now:
                    self.turns.popleft()  # nobody came for it in time: gone
                if not self.turns:
                    self.turns.extend(self.take(now, self.chunk))
                turn = self.turns.popleft()
            if turn > now:
                self.sleep(turn - now)
            if self.clock() < turn + TOLERANCE:
                return

    def take(self, now: float, count: int) -> list[float]:
        """Claim the next `count` turns from the database: one statement, its own short transaction."""
        span = count * self.interval
        current = SendSlot.next_free
        start = case(((current > now) & (current < now + FAR), current), else_=now)
        claim = update(SendSlot).where(SendSlot.channel == self.channel).values(next_free=start + span).returning(SendSlot.next_free)
        for _ in range(2):
            try:
                with self.engine.begin() as connection:
                    end = connection.execute(claim).scalar()
                    if end is None:  # the channel's first send ever: its row
                        connection.execute(insert(SendSlot).values(channel=self.channel, next_free=now + span))
                        end = now + span
            except IntegrityError:  # another worker wrote the row first: take turns from it
                continue
            first = end - span
            return [first + n * self.interval for n in range(count)]
        raise RuntimeError(f"could not take send turns for {self.channel}")

"""What the dispatcher writes once Twilio took a send: the delivery's SID and state and its try, in one write.

`write` records a group of accepted sends in one transaction: one UPDATE per delivery, sent to the database as
one batch (its claim — state `sending` and the attempt number — in the WHERE clause, so a send another worker
took over after our lease ran out is left to that worker, which looks it up at Twilio), one INSERT of their
tries, and one look for status callbacks that arrived before the SID was known.

`Recorder` is the dispatcher's writer thread: senders hand it their accepted sends and go on; it writes
whatever has come in while it wrote the last group, so at a high rate many sends share one transaction and at a
low rate each is written as soon as it comes. A worker killed before a group is written leaves those rows
`sending`: their lease runs out and they are looked up at Twilio before any resend, as for a send in flight.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlmodel import Session

from hotline.delivery import receipts, writers
from hotline.models import Channel, Delivery, DeliveryAttempt, DeliveryState, UnmatchedStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sent:
    """One send Twilio accepted (or a look-up found), to be recorded against the claim that made it."""

    delivery_id: int
    attempts: int  # the claim's attempt number: the token that says the row is still ours
    channel: str
    sid: str
    at: datetime

    @property
    def state(self) -> str:
        return (DeliveryState.CALLING if self.channel == Channel.CALL else DeliveryState.ACCEPTED).value


_DELIVERY = Delivery.__table__
_ACCEPT = (
    update(_DELIVERY)
    .where(_DELIVERY.c.id == bindparam("_id"), _DELIVERY.c.state == DeliveryState.SENDING.value,
           _DELIVERY.c.attempts == bindparam("_attempts"))
    .values(sid=bindparam("_sid"), state=bindparam("_state"), needs_lookup=False, sent_at=bindparam("_at"),
            updated_at=bindparam("_at"), lease_until=None, error_code=None, error_message=None)
)


def write(*, engine, config, group: list[Sent]) -> int:
    """Record a group of accepted sends in one transaction; returns how many were still ours to record."""
    with writers.turn(engine), Session(engine, expire_on_commit=False) as session:
        connection = session.connection()
        result = connection.execute(
            _ACCEPT, [{"_id": s.delivery_id, "_attempts": s.attempts, "_sid": s.sid, "_state": s.state, "_at": s.at} for s in group]
        )
        mine = group
        if result.rowcount != len(group):
            recorded = dict(connection.execute(
                select(_DELIVERY.c.id, _DELIVERY.c.sid).where(_DELIVERY.c.id.in_([s.delivery_id for s in group]))
            ).all())
            mine = [s for s in group if recorded.get(s.delivery_id) == s.sid]
            log.warning("%d sends were taken over by another worker before they were recorded: it looks them up",
                        len(group) - len(mine))
        if mine:
            connection.execute(insert(DeliveryAttempt.__table__), [
                {"delivery_id": s.delivery_id, "number": max(1, s.attempts), "channel": s.channel, "sid": s.sid,
                 "started_at": s.at, "status": s.state, "error_code": None, "error_message": None, "updated_at": s.at}
                for s in mine
            ])
            early = session.execute(select(UnmatchedStatus.sid).where(UnmatchedStatus.sid.in_([s.sid for s in mine]))).scalars().all()
            for sid in early:  # a callback beat this commit: apply it now
                delivery = session.execute(select(Delivery).where(Delivery.sid == sid)).scalars().one()
                receipts.apply_early(session, delivery, config)
        session.commit()
    return len(mine)


class Recorder:
    """The dispatcher's writer thread: accepted sends in, groups of them written, one transaction a group."""

    MAX_GROUP = 100

    def __init__(self, *, engine, config):
        self.engine, self.config = engine, config
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.transactions = 0  # groups written: at a high rate far fewer than sends
        self.thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self.thread.start()

    def add(self, sent: Sent) -> None:
        self.queue.put(sent)

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is waiting, then end."""
        self.queue.put(None)
        self.thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self.queue.get()
            if item is None:
                return
            group = [item]
            while len(group) < self.MAX_GROUP:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                group.append(item)
            self._write(group)

    def _write(self, group: list[Sent]) -> None:
        try:
            write(engine=self.engine, config=self.config, group=group)
            self.transactions += 1
            return
        except Exception:
            log.exception("recording %d accepted sends together failed; recording them one by one", len(group))
        for sent in group:
            try:
                write(engine=self.engine, config=self.config, group=[sent])
                self.transactions += 1
            except Exception:  # its lease runs out, it is looked up at Twilio and recorded then: never sent twice
                log.exception("could not record the send of delivery %s; it will be looked up at Twilio", sent.delivery_id)

"""Simulator mode's carrier: every SMS and call is kept in the database, nothing leaves the machine."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Session, select

from hotline.carrier import Accepted
from hotline.models import Channel, SimulatedMessage


class SimulatorCarrier:
    def __init__(self, engine):
        self.engine = engine

    def _store(self, kind: Channel, to: str, body: str) -> Accepted:
        prefix = "SM" if kind == Channel.SMS else "CA"
        sid = prefix + uuid.uuid4().hex
        with Session(self.engine) as session:
            session.add(SimulatedMessage(sid=sid, kind=kind, to=to, from_="hotline", body=body))
            session.commit()
        return Accepted(sid=sid, status="queued")

    def send_sms(self, *, to: str, body: str, status_callback: str | None, pace=None) -> Accepted:
        if pace is not None:
            pace()
        return self._store(Channel.SMS, to, body)

    def place_call(self, *, to: str, twiml: str, status_callback: str | None, url: str | None = None, pace=None) -> Accepted:
        if pace is not None:
            pace()
        return self._store(Channel.CALL, to, twiml)

    def _find(self, kind: Channel, to: str, body: str | None, since: datetime) -> Accepted | None:
        with Session(self.engine) as session:
            query = select(SimulatedMessage).where(
                SimulatedMessage.kind == kind, SimulatedMessage.to == to, SimulatedMessage.created_at >= since
            )
            for message in session.exec(query):
                if body is None or message.body == body:
                    return Accepted(sid=message.sid, status=message.status)
        return None

    def find_sms(self, *, to: str, body: str, since: datetime) -> Accepted | None:
        return self._find(Channel.SMS, to, body, since)

    def find_call(self, *, to: str, since: datetime) -> Accepted | None:
        return self._find(Channel.CALL, to, None, since)

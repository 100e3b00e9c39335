"""Reconciliation: a delivery whose final status callback never came (Twilio does not retry callbacks; one
that lands while the database is down is gone) is looked up at Twilio well after it should have ended, and
what Twilio says is applied exactly as a callback would be. A missing callback alone never sends again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, update
from sqlmodel import Session, select

from hotline.db import session_scope
from hotline.delivery import receipts
from hotline.delivery.carrier.base import CarrierError
from hotline.delivery.outbox import Pacer
from hotline.models import Channel, Delivery, DeliveryState

# How long after sending a final status is overdue: texts settle within minutes, calls ring, are answered,
# and a machine takes the message (a call's own limit is four hours, but an alert call lasts a few minutes).
OVERDUE = {Channel.SMS: timedelta(minutes=15), Channel.CALL: timedelta(minutes=30)}
LOOK_BACK = timedelta(days=3)  # older than this, Twilio's answer no longer matters to anyone
ASK_AGAIN = timedelta(hours=6)  # a delivery asked about and still not final is asked again after this


def overdue(session: Session, now: datetime, limit: int) -> list[tuple[int, str, str]]:
    """(delivery id, channel, SID) of sent deliveries still without a final state, oldest first."""
    unfinished = [DeliveryState.ACCEPTED.value, DeliveryState.SENT.value, DeliveryState.CALLING.value]
    rows = session.exec(
        select(Delivery.id, Delivery.channel, Delivery.sid)
        .where(
            Delivery.state.in_(unfinished), Delivery.sid.is_not(None), Delivery.sent_at >= now - LOOK_BACK,
            # asked lately and still not final (a network that sends no receipt leaves "sent"): others first
            or_(Delivery.reconciled_at.is_(None), Delivery.reconciled_at < now - ASK_AGAIN),
            or_(
                and_(Delivery.channel == Channel.SMS.value, Delivery.sent_at < now - OVERDUE[Channel.SMS]),
                and_(Delivery.channel == Channel.CALL.value, Delivery.sent_at < now - OVERDUE[Channel.CALL]),
            ),
        )
        .order_by(Delivery.reconciled_at.is_not(None), Delivery.reconciled_at, Delivery.sent_at)
        .limit(limit)
    )
    return list(rows)


def reconcile(*, engine, carrier, config, now: datetime, limit: int = 200, pacer: Pacer | None = None) -> dict:
    """Fetch each overdue delivery's status (one request each, paced at HOTLINE_SEND_RATE) and apply it."""
    with Session(engine) as session:
        due = overdue(session, now, limit)
    pacer = pacer or Pacer(config.send_rate)
    applied = unknown = failed = 0
    for delivery_id, channel, sid in due:
        with session_scope(engine) as session:  # asked, whatever the answer: the next run asks the others first
            session.execute(update(Delivery).where(Delivery.id == delivery_id).values(reconciled_at=now)
                            .execution_options(synchronize_session=False))
        pacer.wait()
        try:
            found = carrier.fetch_status(channel=channel, sid=sid)
        except CarrierError:
            failed += 1
            continue
        if found is None:
            unknown += 1
            continue
        status, error_code = found
        with session_scope(engine) as session:
            receipts.apply(session, sid=sid, status=status, error_code=error_code, max_attempts=config.max_send_attempts, config=config)
        applied += 1
    return {"overdue": len(due), "applied": applied, "unknown": unknown, "failed": failed}

"""Every try at a delivery, kept: when, the SID Twilio gave it, what became of it and why.

The dispatcher writes one row per try (accepted, or the error that ended it); status callbacks move a try
forward by its SID — also a try the delivery has since moved on from (a late callback for the first send
lands on the first send); the report page reads them as one line per try.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlmodel import Session, select

from hotline import phones
from hotline.models import Delivery, DeliveryAttempt, DeliveryState

# Forward only, as for deliveries; "retry" and "throttled" end a try that Twilio did not take.
RANK = {"retry": 1, "throttled": 1, "accepted": 2, "calling": 2, "sent": 3, "delivered": 4, "undelivered": 4, "failed": 4,
         "cancelled": 4}


def record(session: Session, delivery: Delivery, status: str, *, at: datetime, sid: str | None = None,
           error_code: int | None = None, error: str | None = None) -> DeliveryAttempt:
    attempt = DeliveryAttempt(
        delivery_id=delivery.id, number=max(1, delivery.attempts), channel=delivery.channel, sid=sid, started_at=at,
        status=status, error_code=error_code, error_message=phones.mask_all(error)[:500] if error else None, updated_at=at,
    )
    session.add(attempt)
    return attempt


def advance(session: Session, sid: str, state: DeliveryState, error_code: int | None, *, at: datetime) -> DeliveryAttempt | None:
    """Move the try with this SID forward (never back); None when no try has it."""
    attempt = session.exec(select(DeliveryAttempt).where(DeliveryAttempt.sid == sid)).first()
    if attempt is None:
        return None
    if RANK.get(state.value, 0) >= RANK.get(attempt.status, 0) and attempt.status not in ("delivered",):
        attempt.status, attempt.updated_at = state.value, at
        if error_code:
            attempt.error_code = error_code
        session.add(attempt)
    return attempt


def history(session: Session, delivery_ids: list[int]) -> dict[int, list[DeliveryAttempt]]:
    found: dict[int, list[DeliveryAttempt]] = defaultdict(list)
    if delivery_ids:
        rows = session.exec(
            select(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(delivery_ids)).order_by(DeliveryAttempt.started_at, DeliveryAttempt.id)
        )
        for attempt in rows:
            found[attempt.delivery_id].append(attempt)
    return found

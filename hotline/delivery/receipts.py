"""Status callbacks: move each delivery forward (never back), and act on what Twilio's errors mean."""

from __future__ import annotations

import logging

from sqlalchemy import Connection, bindparam, literal_column, update
from sqlmodel import Session, select

from hotline.db import utcnow
from hotline.delivery import attempts, calls
from hotline.delivery.retry import LANDLINE, OPTED_OUT, RETRYABLE_ERRORS, backoff
from hotline.models import AlertChannel, Channel, Delivery, DeliveryAttempt, DeliveryState, Member, UnmatchedStatus
from hotline.residents import members

log = logging.getLogger(__name__)

RANK = {
    DeliveryState.QUEUED: 0,
    DeliveryState.SENDING: 1,
    DeliveryState.ACCEPTED: 2,
    DeliveryState.CALLING: 2,
    DeliveryState.SENT: 3,
    DeliveryState.DELIVERED: 4,
    DeliveryState.UNDELIVERED: 4,
    DeliveryState.FAILED: 4,
    DeliveryState.CANCELLED: 4,
}
MESSAGE_STATES = {
    "accepted": DeliveryState.ACCEPTED, "scheduled": DeliveryState.ACCEPTED, "queued": DeliveryState.ACCEPTED,
    "sending": DeliveryState.SENT, "sent": DeliveryState.SENT,
    "delivered": DeliveryState.DELIVERED, "read": DeliveryState.DELIVERED,
    "undelivered": DeliveryState.UNDELIVERED, "failed": DeliveryState.FAILED, "canceled": DeliveryState.FAILED,
}
CALL_STATES = {
    "queued": DeliveryState.CALLING, "initiated": DeliveryState.CALLING, "ringing": DeliveryState.CALLING,
    "in-progress": DeliveryState.CALLING, "completed": DeliveryState.DELIVERED,
    "busy": DeliveryState.UNDELIVERED, "no-answer": DeliveryState.UNDELIVERED,
    "failed": DeliveryState.FAILED, "canceled": DeliveryState.FAILED,
}
MAX_CALL_RETRIES = 2


def state_for(channel: str, status: str) -> DeliveryState | None:
    table = CALL_STATES if channel == Channel.CALL else MESSAGE_STATES
    return table.get((status or "").lower())


def channel_of(sid: str) -> Channel:
    """Which kind of try a SID names: Twilio's calls are CA…, messages SM… (or MM…)."""
    return Channel.CALL if sid.startswith("CA") else Channel.SMS


def wakes_dispatcher(sid: str, status: str) -> bool:
    """Whether this callback can give the dispatcher work: a failure (a retry, a text become a call) or a call's end
    (a line is free). "sent" and "delivered" never do, so they wake nobody."""
    channel = channel_of(sid)
    new = state_for(channel, status)
    return new is None or new in (DeliveryState.UNDELIVERED, DeliveryState.FAILED) or (channel == Channel.CALL and RANK[new] == 4)


def _may_follow(new: DeliveryState, channel: Channel) -> list[str]:
    """The states a delivery may move to `new` from, as _advance decides it: forward only, a final state final."""
    return [
        current.value for current in RANK
        if RANK[new] >= RANK[current] and current not in (DeliveryState.DELIVERED, DeliveryState.CANCELLED)
        and not (RANK[current] == 4 and (new == current or channel == Channel.CALL))
    ]


_DELIVERY, _ATTEMPT = Delivery.__table__, DeliveryAttempt.__table__
_FORWARD: dict[tuple[DeliveryState, Channel, bool], tuple] = {}


def _forward_statements(new: DeliveryState, channel: Channel, with_code: bool) -> tuple:
    """The two UPDATEs for one kind of callback, built once: their SQL is then cached, not rebuilt per callback."""
    key = (new, channel, with_code)
    if key not in _FORWARD:
        code = {"error_code": bindparam("code")} if with_code else {}
        earlier = [status for status, rank in attempts.RANK.items() if rank <= attempts.RANK[new.value] and status != "delivered"]
        fixed = lambda values: [literal_column(f"'{v}'") for v in values]  # noqa: E731  (our own state names: SQL built once)
        _FORWARD[key] = (
            update(_DELIVERY)
            .where(_DELIVERY.c.sid == bindparam("the_sid"), _DELIVERY.c.channel == channel.value,
                   _DELIVERY.c.state.in_(fixed(_may_follow(new, channel))))
            .values(state=new.value, updated_at=bindparam("now"), **code),
            update(_ATTEMPT)
            .where(_ATTEMPT.c.sid == bindparam("the_sid"), _ATTEMPT.c.status.in_(fixed(earlier)))
            .values(status=new.value, updated_at=bindparam("now"), **code),
        )
    return _FORWARD[key]


def _forward(connection: Connection, sid: str, status: str, error_code: int | None) -> bool:
    """A callback that moves a delivery on without consequences (accepted, sent, delivered, ringing, completed): one
    UPDATE by SID, the states it may come from in the WHERE clause, and one for its try. False when the callback is
    of another kind, or no delivery with this SID is in a state it may follow (none yet, or the callback is late):
    the caller takes the long way."""
    new = state_for(channel_of(sid), status)
    if new is None or new in (DeliveryState.UNDELIVERED, DeliveryState.FAILED):
        return False
    deliveries, tries = _forward_statements(new, channel_of(sid), bool(error_code))
    params = {"the_sid": sid, "now": utcnow(), **({"code": error_code} if error_code else {})}
    if not connection.execute(deliveries, params).rowcount:
        return False
    connection.execute(tries, params)
    return True


def apply_on(connection: Connection, *, sid: str, status: str, error_code: int | None, max_attempts: int, config=None) -> bool:
    """`apply`, in the transaction of `connection` (its owner commits). The usual callback (sent, delivered) is its two
    UPDATEs on the connection, without an ORM session around them (a third of a callback's database CPU: two
    callbacks a message); any other takes `apply`'s long way on a session joined to the same transaction."""
    if _forward(connection, sid, status, error_code):
        return True
    with Session(bind=connection, expire_on_commit=False) as session:
        matched = apply(session, sid=sid, status=status, error_code=error_code, max_attempts=max_attempts, config=config,
                        forward=False)
        session.flush()
    return matched


def apply(session: Session, *, sid: str, status: str, error_code: int | None, max_attempts: int, config=None,
          forward: bool = True) -> bool:
    """Apply one callback. False (and kept for later) when no delivery has this SID yet. `forward=False`: its short
    way (`_forward`) was tried already."""
    if state_for(Channel.SMS, status) is None and state_for(Channel.CALL, status) is None:
        log.info("ignored unknown status %r for %s", status[:20], sid)
        return True
    if forward and _forward(session.connection(), sid, status, error_code):
        return True
    delivery = session.exec(select(Delivery).where(Delivery.sid == sid)).first()
    if delivery is None:
        # An earlier try of a delivery that has moved on (sent again, or now a call): the callback is that try's.
        state = state_for(Channel.SMS, status) if sid.startswith("SM") else state_for(Channel.CALL, status)
        if state is not None and attempts.advance(session, sid, state, error_code, at=utcnow()) is not None:
            return True
        _keep_unmatched(session, sid, status, error_code)
        return False
    new = state_for(delivery.channel, status)
    if new is not None:
        attempts.advance(session, sid, new, error_code, at=utcnow())
    _advance(session, delivery, status, error_code, max_attempts, config)
    return True


def apply_early(session: Session, delivery: Delivery, config=None) -> None:
    """Called when a SID is recorded: apply a callback that arrived before it (with the config, so a busy or
    unanswered call is rung again outside quiet hours, as for any callback)."""
    early = session.get(UnmatchedStatus, delivery.sid)
    if early is not None:
        new = state_for(delivery.channel, early.status)
        if new is not None:
            attempts.advance(session, delivery.sid, new, early.error_code, at=utcnow())
        max_attempts = config.max_send_attempts if config is not None else 0
        _advance(session, delivery, early.status, early.error_code, max_attempts=max_attempts, config=config)
        session.delete(early)


def _keep_unmatched(session: Session, sid: str, status: str, error_code: int | None) -> None:
    kept = session.get(UnmatchedStatus, sid)
    if kept is None:
        session.add(UnmatchedStatus(sid=sid, status=status, error_code=error_code))
        return
    old = state_for(Channel.SMS, kept.status) or state_for(Channel.CALL, kept.status)
    new = state_for(Channel.SMS, status) or state_for(Channel.CALL, status)
    if new is not None and (old is None or RANK[new] >= RANK[old]):
        kept.status, kept.error_code = status, error_code
        session.add(kept)


def _advance(session: Session, delivery: Delivery, status: str, error_code: int | None, max_attempts: int, config) -> None:
    new = state_for(delivery.channel, status)
    current = DeliveryState(delivery.state)
    if new is None or RANK[new] < RANK[current] or current in (DeliveryState.DELIVERED, DeliveryState.CANCELLED):
        return
    if RANK[current] == 4 and (new == current or delivery.channel == Channel.CALL):
        return  # a call's end is final: "completed" after we hung up on a fax is still a failure
    delivery.state, delivery.updated_at = new, utcnow()
    if error_code:
        delivery.error_code = error_code
    session.add(delivery)
    if new in (DeliveryState.UNDELIVERED, DeliveryState.FAILED):
        _after_failure(session, delivery, status, error_code, max_attempts, config)


def _after_failure(session: Session, delivery: Delivery, status: str, error_code: int | None, max_attempts: int, config) -> None:
    member = session.get(Member, delivery.member_id) if delivery.member_id else None
    if error_code == OPTED_OUT:
        members.opt_out(session, delivery.phone)
        return
    if error_code == LANDLINE and member is not None and delivery.channel == Channel.SMS and config is not None:
        members.set_alerts(session, member, AlertChannel.CALL)
        calls.convert_to_call(session, config, delivery)
        return
    call_retry = delivery.channel == Channel.CALL and status in ("busy", "no-answer") and delivery.attempts <= MAX_CALL_RETRIES
    if call_retry or (error_code in RETRYABLE_ERRORS and delivery.attempts < max_attempts):
        delivery.state, delivery.sid = DeliveryState.QUEUED, None
        delivery.next_attempt_at = utcnow() + backoff(delivery.attempts + 2, config.retry_base_seconds if config else 5.0)
        if call_retry:  # the line was busy or nobody came: minutes later, and not into quiet hours
            delivery.next_attempt_at = calls.retry_at(config, delivery)
        session.add(delivery)

"""The dispatcher: claim due deliveries, send them at the configured rate, retry with backoff, record.

Each send is recorded in its own short transaction, committed straight after Twilio answers: a killed
worker then loses at most the sends in flight, and those are looked up at Twilio before any resend.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, update
from sqlmodel import Session, select

from hotline import phones
from hotline.db import utcnow
from hotline.delivery import attempts, calls, receipts
from hotline.delivery.carrier.base import Accepted, Carrier, CarrierError, Rejected, Throttled, Uncertain
from hotline.delivery.ratelimit import SharedPacer
from hotline.delivery.retry import INVALID_NUMBER, NOT_MOBILE, OPTED_OUT, backoff
from hotline.models import AlertChannel, Channel, Delivery, DeliveryAttempt, DeliveryState, Member
from hotline.reports import fanout
from hotline.residents import members

log = logging.getLogger(__name__)



class Pacer:
    """Lets sends go at least 1/rate seconds apart in real time, so no one-second window ever holds
    more than the rate, even when a loaded machine wakes several waiting threads at once.

    The 2 % margin absorbs the jitter between our clock and the request reaching Twilio.
    """

    MARGIN = 1.02

    def __init__(self, rate: float, *, clock=time.monotonic, sleep=time.sleep):
        self.interval = self.MARGIN / rate
        self.clock, self.sleep = clock, sleep
        self.last = float("-inf")
        self.lock = threading.Lock()

    def wait(self) -> None:
        while True:
            with self.lock:
                now = self.clock()
                ready = self.last + self.interval
                if now >= ready:
                    self.last = now
                    return
            self.sleep(ready - now)


def claim_due(*, session: Session, limit: int, now: datetime, lease_seconds: float, channel: str | None = None) -> list[int]:
    """Mark up to `limit` due deliveries as ours until the lease ends, and commit the claim.

    One UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING: on PostgreSQL two workers
    skip each other's rows; SQLite runs the statement alone, which is the same guarantee. A row whose
    lease ran out was in flight when its worker died: it is retried, but looked up at Twilio first.
    """
    if limit <= 0:
        return []
    due = or_(
        and_(Delivery.state == DeliveryState.QUEUED.value, Delivery.next_attempt_at <= now),
        and_(Delivery.state == DeliveryState.SENDING.value, Delivery.lease_until < now),
    )
    candidates = select(Delivery.id).where(due)
    if channel:
        candidates = candidates.where(Delivery.channel == channel)
    candidates = candidates.order_by(Delivery.next_attempt_at, Delivery.id).limit(limit).with_for_update(skip_locked=True)
    claim = (
        update(Delivery)
        .where(Delivery.id.in_(candidates.scalar_subquery()))
        .values(
            state=DeliveryState.SENDING.value,
            lease_until=now + timedelta(seconds=lease_seconds),
            attempts=Delivery.attempts + 1,
            needs_lookup=or_(Delivery.needs_lookup, Delivery.state == DeliveryState.SENDING.value),
            updated_at=now,
        )
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    ids = sorted(session.execute(claim).scalars().all())
    session.commit()
    return ids


def release_claims(*, session: Session, ids: list[int]) -> None:
    """Give back claimed rows we never tried (the worker is stopping), as if never claimed."""
    if ids:
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.state == DeliveryState.SENDING.value)
            .values(state=DeliveryState.QUEUED.value, lease_until=None, attempts=Delivery.attempts - 1)
            .execution_options(synchronize_session=False)
        )
        session.commit()


def calls_in_progress(session: Session, now: datetime) -> int:
    """Alert calls claimed or ringing; a call with no final callback after 10 minutes stops counting."""
    return session.exec(
        select(func.count(Delivery.id)).where(
            Delivery.channel == Channel.CALL.value,
            or_(
                Delivery.state == DeliveryState.SENDING.value,
                and_(Delivery.state == DeliveryState.CALLING.value, Delivery.sent_at > now - timedelta(minutes=10)),
            ),
        )
    ).one()


def send_one(*, engine, carrier: Carrier, config, delivery_id: int, pacer: Pacer | None = None) -> str:
    """Send (or find) one claimed delivery and record what happened. Returns a one-word outcome.

    Whatever goes wrong — a carrier error, a bug, the database — ends in a recorded attempt: a row left in
    `sending` would be reclaimed after every lease for ever (and an alert call would hold one of the
    HOTLINE_CALL_CONCURRENCY lines while it does)."""
    try:
        return _send_one(engine, carrier, config, delivery_id, pacer)
    except Exception as exc:
        log.exception("sending delivery %s failed unexpectedly; counted as a failed attempt", delivery_id)
        with Session(engine, expire_on_commit=False) as session:
            delivery = session.get(Delivery, delivery_id)
            if delivery is None or delivery.state != DeliveryState.SENDING:
                return "error"
            # It may have reached Twilio before the error: look before sending again.
            return _record_failure(session, config, delivery, Uncertain(f"internal error: {type(exc).__name__}: {exc}"))


def _send_one(engine, carrier: Carrier, config, delivery_id: int, pacer: Pacer | None) -> str:
    with Session(engine, expire_on_commit=False) as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None or delivery.state != DeliveryState.SENDING:
            return "skipped"
        member = session.get(Member, delivery.member_id) if delivery.member_id else None
        if member is not None and (member.opted_out_at or member.invalid_at):
            _finish(session, delivery, DeliveryState.CANCELLED, "recipient opted out or number unusable")
            return "cancelled"
        if delivery.attempts > config.max_send_attempts:  # reclaimed after lease upon lease: its sender died each time
            _finish(session, delivery, DeliveryState.FAILED, f"gave up after {delivery.attempts - 1} attempts that never finished")
            return "failed"
        others = _known_sids(session, delivery) if delivery.needs_lookup else set()
    callback = f"{config.public_url}/twilio/status" if config.public_url else None
    hold = config.dispatch_lease_seconds + config.rest_timeout_seconds

    def pace() -> None:  # called by the carrier right before the request goes out
        if pacer is not None:
            pacer.wait()
        _still_ours(engine, delivery, hold)

    try:
        accepted = _lookup(carrier, delivery, others) if delivery.needs_lookup else None
        if accepted is None:
            accepted = _send(carrier, delivery, callback, config, pace)
    except LostClaim:
        return "lost_claim"
    except CarrierError as exc:
        with Session(engine, expire_on_commit=False) as session:
            return _record_failure(session, config, session.get(Delivery, delivery_id), exc)
    with Session(engine, expire_on_commit=False) as session:
        return _record_accepted(session, session.get(Delivery, delivery_id), accepted, config)


def _known_sids(session: Session, delivery: Delivery) -> set[str]:
    """Messages and calls to this number we already know: other deliveries' and every earlier try's, this
    delivery's own included (an undelivered first send, a call nobody answered). A look-up after an uncertain
    send must find only the message that send may have made, never one of these."""
    current = session.exec(
        select(Delivery.sid).where(Delivery.phone == delivery.phone, Delivery.id != delivery.id, Delivery.sid.is_not(None))
    )
    tries = session.exec(
        select(DeliveryAttempt.sid).join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
        .where(Delivery.phone == delivery.phone, DeliveryAttempt.sid.is_not(None))
    )
    return set(current) | set(tries)


class LostClaim(Exception):
    """Another dispatcher took this delivery over while it waited for its turn: it is theirs to send."""


def _still_ours(engine, delivery: Delivery, seconds: float) -> None:
    """Check the claim (its attempt number is the token) and extend its lease over the request."""
    with Session(engine) as session:
        renewed = session.execute(
            update(Delivery)
            .where(Delivery.id == delivery.id, Delivery.state == DeliveryState.SENDING.value, Delivery.attempts == delivery.attempts)
            .values(lease_until=utcnow() + timedelta(seconds=seconds))
            .execution_options(synchronize_session=False)
        ).rowcount
        session.commit()
    if not renewed:
        raise LostClaim(delivery.id)


def _lookup(carrier: Carrier, delivery: Delivery, others: set[str]) -> Accepted | None:
    if delivery.channel == Channel.CALL:
        return carrier.find_call(to=delivery.phone, since=delivery.created_at, exclude=frozenset(others))
    return carrier.find_sms(to=delivery.phone, body=delivery.body, since=delivery.created_at, exclude=frozenset(others))


def _send(carrier: Carrier, delivery: Delivery, callback: str | None, config, pace) -> Accepted:
    if delivery.channel == Channel.CALL:
        return carrier.place_call(
            to=delivery.phone, twiml=calls.outbound_twiml(config, delivery),
            url=calls.alert_url(config, delivery.id), status_callback=callback, pace=pace,
        )
    return carrier.send_sms(to=delivery.phone, body=delivery.body, status_callback=callback, pace=pace)


def _finish(session: Session, delivery: Delivery, state: DeliveryState, error: str | None = None, code: int | None = None) -> None:
    delivery.state, delivery.lease_until, delivery.updated_at = state, None, utcnow()
    if error:
        delivery.error_message, delivery.error_code = phones.mask_all(error)[:500], code
    session.add(delivery)
    session.commit()


def _record_accepted(session: Session, delivery: Delivery, accepted: Accepted, config=None) -> str:
    delivery.sid = accepted.sid
    delivery.state = DeliveryState.CALLING if delivery.channel == Channel.CALL else DeliveryState.ACCEPTED
    delivery.needs_lookup, delivery.sent_at = False, utcnow()
    delivery.error_code = delivery.error_message = None
    attempts.record(session, delivery, delivery.state, at=delivery.sent_at, sid=accepted.sid)
    session.flush()
    receipts.apply_early(session, delivery, config)  # a callback may have beaten this commit
    _finish(session, delivery, DeliveryState(delivery.state))
    return "accepted"


def _record_failure(session: Session, config, delivery: Delivery, exc: CarrierError) -> str:
    outcome = _failure(session, config, delivery, exc)
    attempts.record(session, delivery, "throttled" if outcome == "throttled" else "failed" if outcome in ("failed", "rejected") else "retry",
                    at=utcnow(), error_code=exc.code, error=str(exc))
    session.commit()
    return outcome


def _failure(session: Session, config, delivery: Delivery, exc: CarrierError) -> str:
    if isinstance(exc, Rejected):
        return _rejected(session, config, delivery, exc)
    if isinstance(exc, Throttled):
        # Twilio never processed a 429: it does not use up an attempt, but an alert an hour late is no alert.
        delivery.attempts -= 1
        if utcnow() - delivery.created_at > timedelta(seconds=config.sms_validity_seconds):
            _finish(session, delivery, DeliveryState.FAILED, f"still throttled after an hour: {exc}", exc.code)
            return "failed"
    elif delivery.attempts >= config.max_send_attempts:
        _finish(session, delivery, DeliveryState.FAILED, f"gave up after {delivery.attempts} attempts: {exc}", exc.code)
        return "failed"
    delivery.state, delivery.lease_until = DeliveryState.QUEUED, None
    delivery.next_attempt_at = utcnow() + backoff(delivery.attempts + 1, config.retry_base_seconds)
    delivery.needs_lookup = delivery.needs_lookup or isinstance(exc, Uncertain)
    delivery.error_code, delivery.error_message = exc.code, phones.mask_all(str(exc))[:500]
    delivery.updated_at = utcnow()
    session.add(delivery)
    session.commit()
    return "throttled" if isinstance(exc, Throttled) else "retry"


def _rejected(session: Session, config, delivery: Delivery, exc: Rejected) -> str:
    member = session.get(Member, delivery.member_id) if delivery.member_id else None
    if exc.code == OPTED_OUT:
        members.opt_out(session, delivery.phone)
    elif exc.code == INVALID_NUMBER and member is not None:
        member.invalid_at = utcnow()
        session.add(member)
    elif exc.code == NOT_MOBILE and member is not None and delivery.channel == Channel.SMS:
        members.set_alerts(session, member, AlertChannel.CALL)
        calls.convert_to_call(session, config, delivery)
        session.commit()
        return "to_call"
    _finish(session, delivery, DeliveryState.FAILED, str(exc), exc.code)
    return "rejected"


def dispatch_due(*, session: Session, carrier: Carrier, config, limit: int = 50, now: datetime | None = None) -> int:
    """Claim and send what is due, one after another (for jobs and tests); returns how many were tried.
    Alert calls are held to HOTLINE_CALL_CONCURRENCY ringing at once, like the Dispatcher does."""
    fanout.expand_pending(session=session, config=config, now=now)
    now = now or utcnow()
    lease = config.dispatch_lease_seconds
    ids = claim_due(session=session, limit=limit, now=now, lease_seconds=lease, channel=Channel.SMS)
    free_lines = max(0, config.call_concurrency - calls_in_progress(session, now))
    ids += claim_due(session=session, limit=min(limit, free_lines), now=now, lease_seconds=lease, channel=Channel.CALL)
    for delivery_id in ids:
        send_one(engine=session.get_bind(), carrier=carrier, config=config, delivery_id=delivery_id)
    return len(ids)


class Dispatcher:
    """The worker's sending loop: paced claims, many sends in flight so API latency does not cap the rate."""

    def __init__(self, *, engine, carrier: Carrier, config, clock=time.time, sleep=time.sleep):
        self.engine, self.carrier, self.config = engine, carrier, config
        # One rate for the scheme: every worker process takes its turns from the same rows (ratelimit.py).
        self.sms_pacer = SharedPacer(engine, Channel.SMS, config.send_rate, clock=clock, sleep=sleep)
        self.call_pacer = SharedPacer(engine, Channel.CALL, config.call_rate, clock=clock, sleep=sleep)
        self.width = int(min(64, max(4, config.send_rate * 2)))
        self.pool = ThreadPoolExecutor(self.width, thread_name_prefix="send")
        self.in_flight = {Channel.SMS: 0, Channel.CALL: 0}
        self.lock = threading.Lock()
        self._wake, self._stop = threading.Event(), threading.Event()
        self.thread: threading.Thread | None = None
        self.outcomes: Counter[str] = Counter()  # what this process's sends came to: accepted, retry …

    def summary(self) -> str:
        with self.lock:
            return ", ".join(f"{count} {outcome}" for outcome, count in sorted(self.outcomes.items())) or "nothing sent"

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> "Dispatcher":
        self.thread = threading.Thread(target=self.run_forever, name="dispatcher", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self.thread:
            self.thread.join(timeout)
        self.pool.shutdown(wait=True, cancel_futures=False)

    def run_forever(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                tried = self.tick()
                failures = 0
            except Exception:  # the database may be down: keep the worker alive and try again
                failures += 1
                log.exception("dispatcher tick failed")
                self._stop.wait(min(30.0, 0.5 * 2**failures))
                continue
            if not tried:
                self._wake.wait(self.config.dispatch_poll_seconds)
                self._wake.clear()

    def tick(self) -> int:
        with Session(self.engine) as session:
            fanout.expand_pending(session=session, config=self.config)
        tried = self._pump(Channel.SMS, self.sms_pacer, self._free(Channel.SMS), self.config.send_rate)
        return tried + self._pump(Channel.CALL, self.call_pacer, self._free(Channel.CALL), self.config.call_rate)

    def _free(self, channel: Channel) -> int:
        """How many more rows to claim: never more than about two seconds of sending waits in the pool."""
        rate = self.config.send_rate if channel == Channel.SMS else self.config.call_rate
        with self.lock:
            free = min(self.width - sum(self.in_flight.values()), max(2, int(rate * 2)) - self.in_flight[channel])
        if channel == Channel.CALL and free > 0:
            with Session(self.engine) as session:
                free = min(free, self.config.call_concurrency - calls_in_progress(session, utcnow()))
        return max(0, free)

    def _pump(self, channel: Channel, pacer, limit: int, rate: float) -> int:
        with Session(self.engine) as session:
            lease = self.config.dispatch_lease_seconds + limit / rate
            ids = claim_due(session=session, limit=limit, now=utcnow(), lease_seconds=lease, channel=channel)
        for position, delivery_id in enumerate(ids):
            if self._stop.is_set():
                with Session(self.engine) as session:
                    release_claims(session=session, ids=ids[position:])
                break
            with self.lock:
                self.in_flight[channel] += 1
            self.pool.submit(self._send, channel, pacer, delivery_id)
        return len(ids)

    def _send(self, channel: Channel, pacer, delivery_id: int) -> None:
        outcome = "error"
        try:
            outcome = send_one(engine=self.engine, carrier=self.carrier, config=self.config, delivery_id=delivery_id, pacer=pacer)
        except Exception:
            log.exception("sending delivery %s failed; its lease will run out and it will be retried", delivery_id)
        finally:
            with self.lock:
                self.outcomes[outcome] += 1
                self.in_flight[channel] -= 1

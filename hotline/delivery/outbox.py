"""The dispatcher: claim due deliveries, send them at the configured rate, retry with backoff, record.

A claim is one UPDATE … RETURNING that hands back everything the sends need, so nothing is read again per send;
its lease covers the sends, so a send renews it only when the lease would run out during the request. Each
outcome is one write: accepted sends go to the recorder (recorder.py), which writes them in groups when they
come fast; a failure is written at once. A killed worker loses at most what it had claimed and not recorded,
and those are looked up at Twilio before any resend.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, and_, bindparam, func, or_, update
from sqlmodel import Session, select

from hotline import phones
from hotline.db import utcnow
from hotline.delivery import attempts, calls, writers
from hotline.delivery.carrier.base import Accepted, Carrier, CarrierError, Rejected, Throttled, Uncertain
from hotline.delivery.ratelimit import SharedPacer
from hotline.delivery.recorder import Recorder, Sent
from hotline.delivery.recorder import write as write_sent
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

    def wait(self) -> float:
        """Returns when the next send may go: the clock's time then."""
        while True:
            with self.lock:
                now = self.clock()
                ready = self.last + self.interval
                if now >= ready:
                    self.last = now
                    return now
            self.sleep(ready - now)


@dataclass
class Claim:
    """A delivery claimed for sending, as the claim's UPDATE … RETURNING gave it: the send reads nothing more."""

    id: int
    phone: str
    body: str
    channel: str
    attempts: int  # after the claim: the token that says the row is still ours
    needs_lookup: bool
    member_id: int | None
    created_at: datetime
    language: str  # of the body: an alert call is said in that language's voice
    lease_until: datetime | None


_CLAIMED = (Delivery.id, Delivery.phone, Delivery.body, Delivery.channel, Delivery.attempts, Delivery.needs_lookup,
            Delivery.member_id, Delivery.created_at, Delivery.language)
RECORD_MARGIN = 5.0  # seconds of lease kept, beyond the request's timeout, for the send to be recorded


_DELIVERY = Delivery.__table__


@functools.lru_cache(maxsize=None)
def _claim_statement(channel: str | None):
    """The claim for one channel (or all), built once: the safety poll runs it every second with nothing due, and
    building and caching-keying this statement anew cost most of its CPU (2.6 ms an empty claim before)."""
    now = bindparam("now", type_=_DELIVERY.c.next_attempt_at.type)
    due = or_(
        and_(_DELIVERY.c.state == DeliveryState.QUEUED.value, _DELIVERY.c.next_attempt_at <= now),
        and_(_DELIVERY.c.state == DeliveryState.SENDING.value, _DELIVERY.c.lease_until < now),
    )
    candidates = select(_DELIVERY.c.id).where(due)
    if channel:
        candidates = candidates.where(_DELIVERY.c.channel == channel)
    candidates = (candidates.order_by(_DELIVERY.c.next_attempt_at, _DELIVERY.c.id).limit(bindparam("limit", type_=Integer))
                  .with_for_update(skip_locked=True))
    return (
        update(_DELIVERY)
        .where(_DELIVERY.c.id.in_(candidates.scalar_subquery()))
        .values(
            state=DeliveryState.SENDING.value,
            lease_until=bindparam("lease_until", type_=_DELIVERY.c.lease_until.type),
            attempts=_DELIVERY.c.attempts + 1,
            needs_lookup=or_(_DELIVERY.c.needs_lookup, _DELIVERY.c.state == DeliveryState.SENDING.value),
            updated_at=now,
        )
        .returning(*(_DELIVERY.c[column.key] for column in _CLAIMED))
    )


def claim_batch(*, session: Session, limit: int, now: datetime, lease_seconds: float, channel: str | None = None) -> list[Claim]:
    """Mark up to `limit` due deliveries as ours until the lease ends, and commit the claim.

    One UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING: on PostgreSQL two workers
    skip each other's rows; SQLite runs the statement alone, which is the same guarantee. A row whose
    lease ran out was in flight when its worker died: it is retried, but looked up at Twilio first.
    """
    if limit <= 0:
        return []
    lease_until = now + timedelta(seconds=lease_seconds)
    rows = session.connection().execute(
        _claim_statement(str(channel) if channel else None), {"now": now, "lease_until": lease_until, "limit": limit}
    )
    claims = sorted((Claim(*row, lease_until=lease_until) for row in rows), key=lambda c: c.id)
    session.commit()
    return claims


def claim_due(*, session: Session, limit: int, now: datetime, lease_seconds: float, channel: str | None = None) -> list[int]:
    """The ids of a claim_batch."""
    return [c.id for c in claim_batch(session=session, limit=limit, now=now, lease_seconds=lease_seconds, channel=channel)]


def screen(session: Session, claims: list[Claim], config, now: datetime) -> tuple[list[Claim], dict[int, str]]:
    """Claims not to send: the recipient opted out or their number is unusable (cancelled), or the claim was taken
    lease upon lease by senders that died each time (failed). One look-up for the batch, a write only for those."""
    member_ids = {c.member_id for c in claims if c.member_id is not None}
    blocked = set(session.exec(select(Member.id).where(
        Member.id.in_(member_ids), or_(Member.opted_out_at.is_not(None), Member.invalid_at.is_not(None))
    ))) if member_ids else set()
    outcomes: dict[int, str] = {}
    cancelled = [c.id for c in claims if c.member_id in blocked]
    if cancelled:
        session.execute(
            update(Delivery).where(Delivery.id.in_(cancelled), Delivery.state == DeliveryState.SENDING.value)
            .values(state=DeliveryState.CANCELLED.value, lease_until=None, updated_at=now,
                    error_message="recipient opted out or number unusable", error_code=None)
            .execution_options(synchronize_session=False)
        )
        outcomes.update(dict.fromkeys(cancelled, "cancelled"))
    for c in claims:
        if c.id not in outcomes and c.attempts > config.max_send_attempts:
            session.execute(
                update(Delivery).where(Delivery.id == c.id, Delivery.state == DeliveryState.SENDING.value)
                .values(state=DeliveryState.FAILED.value, lease_until=None, updated_at=now, error_code=None,
                        error_message=f"gave up after {c.attempts - 1} attempts that never finished")
                .execution_options(synchronize_session=False)
            )
            outcomes[c.id] = "failed"
    if outcomes:
        session.commit()
    return [c for c in claims if c.id not in outcomes], outcomes


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
    """Send (or find) one claimed delivery and record what happened, before returning. Returns a one-word outcome."""
    with Session(engine) as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None or delivery.state != DeliveryState.SENDING:
            return "skipped"
        claim = Claim(delivery.id, delivery.phone, delivery.body, delivery.channel, delivery.attempts,
                      delivery.needs_lookup, delivery.member_id, delivery.created_at, delivery.language, delivery.lease_until)
        ready, outcomes = screen(session, [claim], config, utcnow())
    if outcomes:
        return outcomes[claim.id]
    return deliver(engine=engine, carrier=carrier, config=config, claim=claim, pacer=pacer)


def deliver(*, engine, carrier: Carrier, config, claim: Claim, pacer=None, recorder: Recorder | None = None) -> str:
    """Send (or find) one claim; an accepted send goes to `recorder`, or is written before returning.

    Whatever goes wrong — a carrier error, a bug, the database — ends in a recorded attempt: a row left in
    `sending` would be reclaimed after every lease for ever (and an alert call would hold one of the
    HOTLINE_CALL_CONCURRENCY lines while it does)."""
    try:
        return _deliver(engine, carrier, config, claim, pacer, recorder)
    except Exception as exc:
        log.exception("sending delivery %s failed unexpectedly; counted as a failed attempt", claim.id)
        with Session(engine, expire_on_commit=False) as session:
            delivery = session.get(Delivery, claim.id)
            if delivery is None or delivery.state != DeliveryState.SENDING:
                return "error"
            # It may have reached Twilio before the error: look before sending again.
            return _record_failure(session, config, delivery, Uncertain(f"internal error: {type(exc).__name__}: {exc}"))


def _deliver(engine, carrier: Carrier, config, claim: Claim, pacer, recorder: Recorder | None) -> str:
    others = set()
    if claim.needs_lookup:
        with Session(engine) as session:
            others = _known_sids(session, claim)
    callback = f"{config.public_url}/twilio/status" if config.public_url else None

    def pace() -> None:  # called by the carrier right before the request goes out
        if pacer is not None:
            pacer.wait()
        _keep_claim(engine, claim, config)

    try:
        accepted = _lookup(carrier, claim, others) if claim.needs_lookup else None
        if accepted is None:
            accepted = _send(carrier, claim, callback, config, pace)
    except LostClaim:
        return "lost_claim"
    except CarrierError as exc:
        with Session(engine, expire_on_commit=False) as session:
            return _record_failure(session, config, session.get(Delivery, claim.id), exc)
    sent = Sent(claim.id, claim.attempts, claim.channel, accepted.sid, utcnow())
    if recorder is not None:
        recorder.add(sent)
    elif not write_sent(engine=engine, config=config, group=[sent]):
        return "lost_claim"
    return "accepted"


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


def _keep_claim(engine, claim: Claim, config) -> None:
    """Make sure the claim is still ours for the request and its record. While its lease has more than the request's
    timeout (and a margin) to run, nobody else can have taken it: nothing to write. Otherwise check the claim (its
    attempt number is the token) and extend its lease over the request, in one UPDATE."""
    need = timedelta(seconds=config.rest_timeout_seconds + RECORD_MARGIN)
    if claim.lease_until is not None and claim.lease_until - utcnow() > need:
        return
    until = utcnow() + timedelta(seconds=config.dispatch_lease_seconds + config.rest_timeout_seconds)
    with Session(engine) as session:
        renewed = session.execute(
            update(Delivery)
            .where(Delivery.id == claim.id, Delivery.state == DeliveryState.SENDING.value, Delivery.attempts == claim.attempts)
            .values(lease_until=until)
            .execution_options(synchronize_session=False)
        ).rowcount
        session.commit()
    if not renewed:
        raise LostClaim(claim.id)
    claim.lease_until = until


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
    claims = claim_batch(session=session, limit=limit, now=now, lease_seconds=lease, channel=Channel.SMS)
    free_lines = max(0, config.call_concurrency - calls_in_progress(session, now))
    claims += claim_batch(session=session, limit=min(limit, free_lines), now=now, lease_seconds=lease, channel=Channel.CALL)
    ready, _ = screen(session, claims, config, utcnow())
    for claim in ready:
        deliver(engine=session.get_bind(), carrier=carrier, config=config, claim=claim)
    return len(claims)


class Dispatcher:
    """The worker's sending loop: claims in batches, many sends in flight so API latency does not cap the rate,
    turns taken from the scheme's shared rate (ratelimit.py), accepted sends recorded in groups (recorder.py)."""

    def __init__(self, *, engine, carrier: Carrier, config, clock=time.time, sleep=time.sleep):
        self.engine, self.carrier, self.config = engine, carrier, config
        # One rate for the scheme: every worker process takes its turns from the same rows (ratelimit.py).
        self.sms_pacer = SharedPacer(engine, Channel.SMS, config.send_rate, clock=clock, sleep=sleep)
        self.call_pacer = SharedPacer(engine, Channel.CALL, config.call_rate, clock=clock, sleep=sleep)
        self.width = int(min(64, max(4, config.send_rate * 2)))
        self.pool = ThreadPoolExecutor(self.width, thread_name_prefix="send")
        self.recorder = Recorder(engine=engine, config=config)
        self.in_flight = {Channel.SMS: 0, Channel.CALL: 0}
        self.lock = threading.Lock()
        self._wake, self._stop = threading.Event(), threading.Event()
        self.thread: threading.Thread | None = None
        self.outcomes: Counter[str] = Counter()  # what this process's sends came to: accepted, retry …

    def summary(self) -> str:
        with self.lock:
            sent = ", ".join(f"{count} {outcome}" for outcome, count in sorted(self.outcomes.items())) or "nothing sent"
        late = self.sms_pacer.given_up + self.call_pacer.given_up
        return sent + (f"; {late} send turns given up (woken too late to use them)" if late else "")

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> "Dispatcher":
        getattr(self.carrier, "warm", lambda: None)()
        self.thread = threading.Thread(target=self.run_forever, name="dispatcher", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self.thread:
            self.thread.join(timeout)
        self.pool.shutdown(wait=True, cancel_futures=False)
        self.recorder.stop(timeout)

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

    def _target(self, channel: Channel) -> int:
        """How many sends to hold claimed: about two seconds of sending at the rate."""
        rate = self.config.send_rate if channel == Channel.SMS else self.config.call_rate
        return max(2, int(rate * 2))

    def _free(self, channel: Channel) -> int:
        """How many more rows to claim: never more than about two seconds of sending waits in the pool."""
        with self.lock:
            free = min(self.width - sum(self.in_flight.values()), self._target(channel) - self.in_flight[channel])
        if channel == Channel.CALL and free > 0:
            with Session(self.engine) as session:
                free = min(free, self.config.call_concurrency - calls_in_progress(session, utcnow()))
        return max(0, free)

    def _pump(self, channel: Channel, pacer, limit: int, rate: float) -> int:
        if limit <= 0:
            return 0
        with writers.turn(self.engine), Session(self.engine) as session:
            lease = self.config.dispatch_lease_seconds + limit / rate
            claims = claim_batch(session=session, limit=limit, now=utcnow(), lease_seconds=lease, channel=channel)
            claims_left, screened = screen(session, claims, self.config, utcnow()) if claims else ([], {})
        with self.lock:
            self.outcomes.update(screened.values())
        for position, claim in enumerate(claims_left):
            if self._stop.is_set():
                with Session(self.engine) as session:
                    release_claims(session=session, ids=[c.id for c in claims_left[position:]])
                break
            with self.lock:
                self.in_flight[channel] += 1
            self.pool.submit(self._send, channel, pacer, claim)
        return len(claims)

    def _send(self, channel: Channel, pacer, claim: Claim) -> None:
        outcome = "error"
        try:
            outcome = deliver(engine=self.engine, carrier=self.carrier, config=self.config, claim=claim, pacer=pacer,
                              recorder=self.recorder)
        except Exception:
            log.exception("sending delivery %s failed; its lease will run out and it will be retried", claim.id)
        finally:
            with self.lock:
                self.outcomes[outcome] += 1
                self.in_flight[channel] -= 1
                low = self.in_flight[channel] == self._target(channel) // 2 or self.width - sum(self.in_flight.values()) == self.width // 2
            if low:  # room for more: claim the next batch now, not at the next poll
                self._wake.set()

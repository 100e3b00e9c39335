"""Coordinators' announcements: a message to chosen streets, now or at a set time, written to the outbox
when its time comes (`release_due`, run every minute by the scheduler; "now" releases at once)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, insert, literal, update
from sqlalchemy import select as core_select
from sqlmodel import Session, select

from hotline import messages, translations
from hotline.db import UTCDateTime, utcnow
from hotline.delivery import segments
from hotline.delivery.quiet_hours import call_release_time
from hotline.models import (
    AlertChannel,
    Announcement,
    AnnouncementState,
    Channel,
    Delivery,
    DeliveryState,
    Member,
    Membership,
    MembershipStatus,
)
from hotline.residents import languages
from hotline.residents.streets import Scope

MAX_TEXT = 1000
PAST_GRACE = timedelta(minutes=1)  # a time typed a moment ago means "now", not an error


class AnnouncementError(ValueError):
    """The announcement cannot go as asked: no text, no streets, too long, a time in the past."""


@dataclass
class LanguageShare:
    """The members of one language an announcement reaches: the frame of a call is in their language; the
    coordinators' words go as written, so the SMS (and its segments) is the same for all."""

    code: str
    name: str
    recipients: int
    by_call: int
    segments: int


@dataclass
class Preview:
    body: str
    segments: int
    recipients: int
    by_call: int
    languages: list[LanguageShare]


def _reachable(street_ids: list[int]):
    """Active, not opted out, reachable members of these streets, each once (their first street)."""
    return (
        core_select(Member.id, func.min(Membership.street_id).label("street_id"), Member.phone, Member.alerts, Member.language)
        .select_from(Membership)
        .join(Member, Member.id == Membership.member_id)
        .where(
            Membership.street_id.in_(street_ids or [-1]),
            Membership.status == MembershipStatus.ACTIVE.value,
            Member.opted_out_at.is_(None),
            Member.invalid_at.is_(None),
        )
        .group_by(Member.id, Member.phone, Member.alerts, Member.language)
    )


def preview(*, session: Session, config, text: str, street_ids: list[int]) -> Preview:
    """What members will read, how many SMS segments it costs, and how many members it reaches."""
    bodies = translations.each(lambda: messages.announcement(config.scheme_name, text))
    rows = _reachable(street_ids).subquery()
    counted = session.execute(
        core_select(rows.c.language, func.count(), func.coalesce(func.sum(case((rows.c.alerts == AlertChannel.CALL.value, 1), else_=0)), 0))
        .group_by(rows.c.language)
    ).all()
    shares: dict[str, LanguageShare] = {}
    for code, total, calls in counted:
        code = translations.known(code)
        share = shares.setdefault(code, LanguageShare(code, translations.LANGUAGES[code].english, 0, 0, segments.count(bodies[code])))
        share.recipients, share.by_call = share.recipients + total, share.by_call + calls
    body = bodies[translations.DEFAULT]
    return Preview(
        body=body, segments=max([segments.count(body), *(s.segments for s in shares.values())]),
        recipients=sum(s.recipients for s in shares.values()), by_call=sum(s.by_call for s in shares.values()),
        languages=[shares[code] for code in translations.CODES if code in shares],
    )


def create(*, session: Session, config, text: str, street_ids: list[int], send_at: datetime | None, created_by: int | None, now: datetime | None = None) -> Announcement:
    """Keep an announcement for later, or (send_at None or already come) for release now by the caller."""
    now = now or utcnow()
    text = " ".join((text or "").split())
    if not text:
        raise AnnouncementError("write the announcement first")
    if len(text) > MAX_TEXT or segments.count(messages.announcement(config.scheme_name, text)) > messages.MAX_ANNOUNCEMENT_SEGMENTS:
        raise AnnouncementError(f"that is too long: an announcement must fit in {messages.MAX_ANNOUNCEMENT_SEGMENTS} text messages")
    if not street_ids:
        raise AnnouncementError("choose at least one street")
    if send_at is not None and send_at < now - PAST_GRACE:
        raise AnnouncementError("that time has passed")
    announcement = Announcement(text=text, street_ids=sorted(set(street_ids)), send_at=send_at or now, created_by=created_by, created_at=now)
    session.add(announcement)
    session.flush()
    return announcement


def release(*, session: Session, config, announcement: Announcement, now: datetime | None = None) -> int:
    """Write one Delivery per recipient, once: a second release (another worker) finds it taken and writes nothing."""
    now = now or utcnow()
    claimed = session.execute(
        update(Announcement)
        .where(Announcement.id == announcement.id, Announcement.state == AnnouncementState.SCHEDULED.value)
        .values(state=AnnouncementState.SENT.value, sent_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        return 0
    sms_body = translations.each(lambda: messages.announcement(config.scheme_name, announcement.text))
    call_body = translations.each(lambda: messages.announcement_call(config.scheme_name, announcement.text), spoken=True)
    call_at = call_release_time(config, now, False)  # quiet hours hold calls, as for reports
    who = _reachable(announcement.street_ids).subquery()
    is_call = who.c.alerts == AlertChannel.CALL.value
    rows = core_select(
        literal(announcement.id), who.c.id, who.c.street_id, who.c.phone,
        case((is_call, literal(Channel.CALL.value)), else_=literal(Channel.SMS.value)),
        case((is_call, languages.body_for(call_body, who.c.language)), else_=languages.body_for(sms_body, who.c.language)),
        languages.known(who.c.language),
        literal(False), literal(DeliveryState.QUEUED.value), literal(0),
        case((is_call, literal(call_at, UTCDateTime)), else_=literal(now, UTCDateTime)),
        literal(False), literal(now, UTCDateTime), literal(now, UTCDateTime),
    )
    columns = [
        "announcement_id", "member_id", "street_id", "phone", "channel", "body", "language", "urgent", "state",
        "attempts", "next_attempt_at", "needs_lookup", "created_at", "updated_at",
    ]
    # preserve_rowcount: SQLAlchemy 2.1 on psycopg otherwise answers -1 for an INSERT … SELECT.
    written = session.execute(insert(Delivery).from_select(columns, rows).execution_options(preserve_rowcount=True)).rowcount
    announcement.state, announcement.sent_at, announcement.recipients = AnnouncementState.SENT, now, written
    session.add(announcement)
    session.flush()
    return written


def release_due(*, session: Session, config, now: datetime | None = None) -> int:
    """Release every scheduled announcement whose time has come; returns the deliveries written.
    The caller commits, then wakes the dispatcher."""
    now = now or utcnow()
    due = session.exec(
        select(Announcement).where(Announcement.state == AnnouncementState.SCHEDULED.value, Announcement.send_at <= now).order_by(Announcement.send_at)
    )
    return sum(release(session=session, config=config, announcement=a, now=now) for a in list(due))


def cancel(*, session: Session, announcement: Announcement) -> bool:
    """Call it off if it is still scheduled. One conditional UPDATE, the same condition `release` claims
    the row with: if the release got there first (even between our reading the row and now), nothing is
    changed and the coordinator is told it has gone, never "it will not be sent"."""
    cancelled = session.execute(
        update(Announcement)
        .where(Announcement.id == announcement.id, Announcement.state == AnnouncementState.SCHEDULED.value)
        .values(state=AnnouncementState.CANCELLED.value)
        .execution_options(synchronize_session=False, preserve_rowcount=True)
    ).rowcount
    session.refresh(announcement)
    return bool(cancelled)


def visible(announcement: Announcement, scope: Scope) -> bool:
    """A street coordinator sees (and may cancel) an announcement only if it is wholly for their streets."""
    return scope.allows_all(announcement.street_ids)


def listing(session: Session, scope: Scope, *, limit: int = 50) -> tuple[list[Announcement], list[Announcement]]:
    """(scheduled, soonest first; sent or cancelled, newest first) that the scope may see."""
    scheduled = session.exec(
        select(Announcement).where(Announcement.state == AnnouncementState.SCHEDULED.value).order_by(Announcement.send_at)
    )
    done = session.exec(
        select(Announcement).where(Announcement.state != AnnouncementState.SCHEDULED.value).order_by(Announcement.created_at.desc()).limit(limit * 4)
    )
    return [a for a in scheduled if visible(a, scope)], [a for a in done if visible(a, scope)][:limit]


def delivery_counts(session: Session, ids: list[int]) -> dict[int, tuple[int, int, int]]:
    """Per announcement: (deliveries, delivered, failed)."""
    if not ids:
        return {}
    rows = session.execute(
        core_select(
            Delivery.announcement_id, func.count(Delivery.id),
            func.sum(case((Delivery.state == DeliveryState.DELIVERED.value, 1), else_=0)),
            func.sum(case((Delivery.state.in_([DeliveryState.FAILED.value, DeliveryState.UNDELIVERED.value]), 1), else_=0)),
        ).where(Delivery.announcement_id.in_(ids)).group_by(Delivery.announcement_id)
    )
    return {aid: (total, delivered or 0, failed or 0) for aid, total, delivered, failed in rows}

"""A report's life: limits, moderation, choosing recipients and writing the outbox in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, case, exists, func, insert, literal, select as core_select
from sqlmodel import Session, select

from hotline import members, messages, phones
from hotline.db import UTCDateTime, utcnow
from hotline.models import (
    AlertChannel,
    Channel,
    Delivery,
    DeliveryState,
    Member,
    Membership,
    MembershipStatus,
    Report,
    ReportState,
    ReportStreet,
    Street,
)

MAX_TEXT = 4000  # a 1600-character SMS fits many times over; anything longer is not a sighting


@dataclass
class Outcome:
    """What became of a report, so the channel (SMS or voice) can tell the resident."""

    report: Report
    kind: str  # sent | held | over_hour | over_day | duplicate | pending | stranger
    recipients: int = 0


def _same_text(a: str | None, b: str | None) -> bool:
    return " ".join((a or "").casefold().split()) == " ".join((b or "").casefold().split())


def _recent(session: Session, member: Member, since: datetime, states: list[str]) -> list[Report]:
    return list(
        session.exec(
            select(Report).where(
                Report.member_id == member.id, Report.created_at >= since, Report.state.in_(states)
            )
        )
    )


def _limit_breached(session: Session, config, member: Member, text: str, now: datetime) -> str | None:
    counted = [ReportState.SENT, ReportState.HELD, ReportState.DROPPED]
    recent = _recent(session, member, now - timedelta(minutes=config.duplicate_window_minutes), counted[:2])
    if text and any(_same_text(r.text, text) for r in recent):
        return "duplicate"
    hour = session.exec(
        select(func.count(Report.id)).where(
            Report.member_id == member.id, Report.created_at >= now - timedelta(hours=1), Report.state.in_(counted)
        )
    ).one()
    if hour >= config.max_reports_per_hour:
        return "over_hour"
    day = session.exec(
        select(func.count(Report.id)).where(
            Report.member_id == member.id, Report.created_at >= now - timedelta(days=1), Report.state.in_(counted)
        )
    ).one()
    return "over_day" if day >= config.max_reports_per_day else None


def submit(
    *,
    session: Session,
    config,
    phone: str,
    text: str | None,
    member: Member | None,
    channel: Channel = Channel.SMS,
    urgent: bool = False,
    recording_url: str | None = None,
    hold: bool = False,
    now: datetime | None = None,
) -> Outcome:
    """Log a report and, from an active member within their limits, broadcast it or hold it for a coordinator."""
    now = now or utcnow()
    report = Report(
        member_id=member.id if member else None,
        phone=phone,
        channel=channel,
        text=(text or "")[:MAX_TEXT] or None,
        recording_url=recording_url,
        urgent=urgent,
        created_at=now,
    )
    streets = members.active_streets(session, member)
    linked = streets
    if not streets:
        pending = members.memberships(session, member, MembershipStatus.PENDING) if member else []
        linked = [street for _, street in pending]
        report.reason = "pending" if pending else "stranger"
        kind = report.reason
    else:
        breach = _limit_breached(session, config, member, report.text, now)
        if breach:
            report.reason, kind = breach, breach
        elif hold or any(s.moderated for s in streets):
            report.state, report.reason, kind = ReportState.HELD, ("review" if hold else "moderated"), "held"
        else:
            report.state, kind = ReportState.SENT, "sent"
    session.add(report)
    session.flush()
    for street in linked:
        session.add(ReportStreet(report_id=report.id, street_id=street.id))
    count = broadcast(session=session, config=config, report=report, streets=streets, now=now) if kind == "sent" else 0
    return Outcome(report=report, kind=kind, recipients=count)


def call_release_time(config, now: datetime, urgent: bool) -> datetime:
    """Alert calls wait for the end of quiet hours unless the report is urgent; SMS never waits."""
    local = now.astimezone(config.timezone)
    if urgent or not config.quiet_hours.contains(local.time()):
        return now
    end = local.replace(hour=config.quiet_hours.end.hour, minute=config.quiet_hours.end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end.astimezone(timezone.utc)


def broadcast(*, session: Session, config, report: Report, streets: list[Street], now: datetime) -> int:
    """Write one Delivery per recipient: each street's active members, minus the reporter and opted-out
    or unusable numbers, each number once. Set-based (INSERT … SELECT) so a big street costs one statement."""
    local_time = report.created_at.astimezone(config.timezone)
    text = phones.scrub(report.text or "", report.phone) if report.phone else (report.text or "")
    call_at = call_release_time(config, now, report.urgent)
    total = 0
    for street in streets:
        sms_body = messages.broadcast(street.name, report.ref, local_time, text, urgent=report.urgent)
        call_body = messages.alert_call(config.scheme_name, street.name, local_time, text)
        is_call = Member.alerts == AlertChannel.CALL
        already = exists().where(and_(Delivery.report_id == report.id, Delivery.member_id == Member.id))
        rows = (
            core_select(
                literal(report.id),
                Member.id,
                literal(street.id),
                Member.phone,
                case((is_call, literal(Channel.CALL.value)), else_=literal(Channel.SMS.value)),
                case((is_call, literal(call_body)), else_=literal(sms_body)),
                literal(report.urgent),
                literal(DeliveryState.QUEUED.value),
                literal(0),
                case((is_call, literal(call_at, UTCDateTime)), else_=literal(now, UTCDateTime)),
                literal(False),
                literal(now, UTCDateTime),
                literal(now, UTCDateTime),
            )
            .select_from(Membership)
            .join(Member, Member.id == Membership.member_id)
            .where(
                Membership.street_id == street.id,
                Membership.status == MembershipStatus.ACTIVE.value,
                Member.opted_out_at.is_(None),
                Member.invalid_at.is_(None),
                Member.phone != (report.phone or ""),
                Member.id != (report.member_id or -1),
                ~already,
            )
        )
        columns = [
            "report_id", "member_id", "street_id", "phone", "channel", "body", "urgent", "state",
            "attempts", "next_attempt_at", "needs_lookup", "created_at", "updated_at",
        ]
        # preserve_rowcount: psycopg's driver reports -1 for INSERT … SELECT unless asked to keep it.
        result = session.execute(insert(Delivery).from_select(columns, rows).execution_options(preserve_rowcount=True))
        total += result.rowcount
    return total


def release(*, session: Session, config, report: Report, text: str | None = None, now: datetime | None = None) -> int:
    """A coordinator sends a held report (optionally with the text they typed for a recording)."""
    now = now or utcnow()
    if report.state != ReportState.HELD:
        return 0
    if text:
        report.text = text[:MAX_TEXT]
    report.state, report.decided_at = ReportState.SENT, now
    session.add(report)
    streets = list(
        session.exec(select(Street).join(ReportStreet, ReportStreet.street_id == Street.id).where(ReportStreet.report_id == report.id))
    )
    return broadcast(session=session, config=config, report=report, streets=streets, now=now)


def drop(*, session: Session, report: Report, now: datetime | None = None) -> bool:
    if report.state != ReportState.HELD:
        return False
    report.state, report.decided_at = ReportState.DROPPED, now or utcnow()
    session.add(report)
    return True


def by_ref(session: Session, ref: str) -> Report | None:
    ref = ref.strip().upper().lstrip("R")
    return session.get(Report, int(ref)) if ref.isdigit() else None

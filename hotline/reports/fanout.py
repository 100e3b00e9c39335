"""From a report to its deliveries: who gets it (each number once), written set-based into the outbox.

Up to INLINE_LIMIT recipients the deliveries are written in the report's own transaction. A bigger
broadcast is only marked (`Report.fanout_pending`, committed with the report, so nothing is lost)
and the dispatcher writes its deliveries straight after: a webhook's time must not grow with the street.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, case, exists, func, insert, literal, or_, true, update
from sqlalchemy import select as core_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from hotline import messages, phones, translations
from hotline.db import UTCDateTime, utcnow
from hotline.delivery.quiet_hours import call_release_time
from hotline.models import (
    AlertChannel,
    Channel,
    Delivery,
    DeliveryState,
    Incident,
    Member,
    Membership,
    MembershipStatus,
    Report,
    ReportKind,
    ReportStreet,
    Street,
)
from hotline.residents import languages

INLINE_LIMIT = 500
MAX_CALLS_PER_INCIDENT = 3  # the first alert, urgent updates, the all-clear: never more calls than this
COLUMNS = [
    "report_id", "member_id", "street_id", "phone", "channel", "body", "language", "urgent", "state",
    "attempts", "next_attempt_at", "needs_lookup", "created_at", "updated_at",
]


def _recipients(report: Report, street_ids: list[int]):
    """Active members of these streets, minus the reporter and opted-out or unusable numbers."""
    return and_(
        Membership.street_id.in_(street_ids),
        Membership.status == MembershipStatus.ACTIVE.value,
        Member.opted_out_at.is_(None),
        Member.invalid_at.is_(None),
        Member.phone != (report.phone or ""),
        Member.id != (report.member_id or -1),
    )


def recipient_languages(session: Session, report: Report, streets: list[Street]) -> dict[str, int]:
    """{language: recipients}: the count, and which languages the alert's body is needed in."""
    query = (
        core_select(Member.language, func.count(func.distinct(Member.id)))
        .select_from(Membership)
        .join(Member, Member.id == Membership.member_id)
        .where(_recipients(report, [s.id for s in streets]))
        .group_by(Member.language)
    )
    return dict(session.execute(query).all())


def broadcast(*, session: Session, config, report: Report, streets: list[Street], now: datetime) -> int:
    """Write the deliveries now, or mark a big broadcast for the dispatcher. Returns the recipient count."""
    if not streets:
        return 0
    spoken_in = recipient_languages(session, report, streets)
    total = sum(spoken_in.values())
    if total > INLINE_LIMIT:
        report.fanout_pending = True
        session.add(report)
        return total
    return write_deliveries(session=session, config=config, report=report, streets=streets, now=now, spoken_in=set(spoken_in))


def write_deliveries(*, session: Session, config, report: Report, streets: list[Street], now: datetime, spoken_in=None) -> int:
    """One INSERT … SELECT a street; a member of two streets is written once (NOT EXISTS). The alert is
    made in each language of `spoken_in` (the recipients'; all when not given), the frame translated."""
    local_time = report.created_at.astimezone(config.timezone)
    text = phones.scrub(report.text or "", report.phone) if report.phone else (report.text or "")
    call_at = call_release_time(config, now, report.urgent)
    is_call = Member.alerts == AlertChannel.CALL
    update = report.kind == ReportKind.UPDATE and report.incident_id is not None
    ref = f"R{session.get(Incident, report.incident_id).report_id}" if update else report.ref
    total = 0
    for street in streets:
        # One body per language: the frame translated, the resident's words as written.
        if update:
            sms_body = translations.each(lambda: messages.update_alert(ref, local_time, text, urgent=report.urgent), only=spoken_in)
            call_body = translations.each(
                lambda: messages.update_call(config.scheme_name, street.name, local_time, text), spoken=True, only=spoken_in)
        else:
            sms_body = translations.each(lambda: messages.broadcast(street.name, ref, local_time, text, urgent=report.urgent), only=spoken_in)
            call_body = translations.each(
                lambda: messages.alert_call(config.scheme_name, street.name, local_time, text), spoken=True, only=spoken_in)
        already = exists().where(and_(Delivery.report_id == report.id, Delivery.member_id == Member.id))
        wanted = _calls_allowed(report, is_call) if update else true()
        rows = (
            core_select(
                literal(report.id),
                Member.id,
                literal(street.id),
                Member.phone,
                case((is_call, literal(Channel.CALL.value)), else_=literal(Channel.SMS.value)),
                case((is_call, languages.body_for(call_body)), else_=languages.body_for(sms_body)),
                languages.known(),
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
            .where(_recipients(report, [street.id]), ~already, wanted)
        )
        # preserve_rowcount: SQLAlchemy 2.1 on psycopg otherwise answers -1 for an INSERT … SELECT.
        statement = insert(Delivery).from_select(COLUMNS, rows).execution_options(preserve_rowcount=True)
        total += session.execute(statement).rowcount
    return total


def calls_in_incident(incident_id: int, member_id_column):
    """How many alert calls a member has had (or has queued) for one incident: a correlated count."""
    earlier, its_report = aliased(Delivery), aliased(Report)
    return (
        core_select(func.count(earlier.id))
        .join(its_report, its_report.id == earlier.report_id)
        .where(
            its_report.incident_id == incident_id, earlier.member_id == member_id_column,
            earlier.channel == Channel.CALL.value, earlier.state != DeliveryState.CANCELLED.value,
        )
        .scalar_subquery()
    )


def _calls_allowed(report: Report, is_call):
    """Calls stay rare: an update rings a call member only when urgent, and never past MAX_CALLS_PER_INCIDENT;
    other updates wait for them on the voice menu (2, latest alerts)."""
    if not report.urgent:
        return ~is_call
    return or_(~is_call, calls_in_incident(report.incident_id, Member.id) < MAX_CALLS_PER_INCIDENT)


def expand_pending(*, session: Session, config, limit: int = 5, now: datetime | None = None) -> int:
    """Write the deliveries of marked broadcasts, each in its own transaction; safe with two workers
    (the UPDATE … WHERE fanout_pending claims the report; the loser updates no row)."""
    done = 0
    ids = session.exec(select(Report.id).where(Report.fanout_pending == True).order_by(Report.id).limit(limit)).all()  # noqa: E712
    for report_id in ids:
        claimed = session.execute(
            update(Report).where(Report.id == report_id, Report.fanout_pending == True)  # noqa: E712
            .values(fanout_pending=False).execution_options(synchronize_session=False)
        ).rowcount
        if claimed:
            report = session.get(Report, report_id)
            streets = list(session.exec(
                select(Street).join(ReportStreet, ReportStreet.street_id == Street.id).where(ReportStreet.report_id == report_id)
            ))
            write_deliveries(session=session, config=config, report=report, streets=streets, now=now or utcnow())
            done += 1
        session.commit()
    return done

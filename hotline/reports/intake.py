"""A report's life: logging, limits, moderation, and handing it to the fan-out; coordinators' send and drop."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func
from sqlalchemy import select as core_select
from sqlmodel import Session, select

from hotline.db import utcnow
from hotline.models import Channel, Incident, Member, MembershipStatus, Report, ReportKind, ReportState, ReportStreet, Street
from hotline.reports import fanout, sightings
from hotline.residents import members
from hotline.residents.streets import Scope

MAX_TEXT = 4000  # a 1600-character SMS fits many times over; anything longer is not a sighting


@dataclass
class Outcome:
    """What became of a report, so the channel (SMS or voice) can tell the resident."""

    report: Report
    kind: str  # sent | held | over_hour | over_day | duplicate | pending | stranger
    recipients: int = 0  # neighbours it is sent to
    notified: int = 0  # SMS to coordinators about the plates it names (cross-street, watch list)


def _same_text(a: str | None, b: str | None) -> bool:
    return " ".join((a or "").casefold().split()) == " ".join((b or "").casefold().split())


def _limit_breached(session: Session, config, member: Member, text: str | None, now: datetime) -> str | None:
    """duplicate / over_hour / over_day, or None. Two small queries: this runs inside every report webhook."""
    counted = [ReportState.SENT.value, ReportState.HELD.value, ReportState.DROPPED.value]
    window = now - timedelta(minutes=config.duplicate_window_minutes)
    if text:
        recent = session.execute(
            core_select(Report.text)
            .where(Report.member_id == member.id, Report.created_at >= window, Report.state.in_(counted[:2]))
            .order_by(Report.created_at.desc())
            .limit(20)
        ).scalars()
        if any(_same_text(earlier, text) for earlier in recent):
            return "duplicate"
    hour_ago = now - timedelta(hours=1)
    hour, day = session.execute(
        core_select(
            func.coalesce(func.sum(case((Report.created_at >= hour_ago, 1), else_=0)), 0),
            func.count(Report.id),
        ).where(Report.member_id == member.id, Report.created_at >= now - timedelta(days=1), Report.state.in_(counted))
    ).one()
    if hour >= config.max_reports_per_hour:
        return "over_hour"
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
    incident: Incident | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Log a report and, from an active member within their limits, broadcast it or hold it for a coordinator.

    With `incident`, it is an update of that (open) incident: it goes to the incident's streets, whoever
    sends it, under the same limits, duplicate check and moderation as a report. A broadcast report opens
    an incident of its own."""
    now = now or utcnow()
    report = Report(
        member_id=member.id if member else None,
        phone=phone,
        channel=channel,
        text=(text or "")[:MAX_TEXT] or None,
        recording_url=recording_url,
        urgent=urgent,
        created_at=now,
        kind=ReportKind.UPDATE if incident else ReportKind.REPORT,
        incident_id=incident.id if incident else None,
    )
    streets = members.active_streets(session, member)
    if streets and incident is not None:
        streets = incident_streets(session, incident)
    linked = streets
    if not streets:
        pending = members.memberships(session, member, MembershipStatus.PENDING) if member else []
        linked = [street for _, street in pending]
        report.reason = "pending" if pending else "stranger"
        report.kind, report.incident_id = ReportKind.REPORT, None
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
    if incident is not None and kind in ("sent", "held"):
        incident.last_activity_at = now
        session.add(incident)
    count = _broadcast(session, config, report, streets, now) if kind == "sent" else 0
    notified = sightings.record(session=session, config=config, report=report, streets=linked, alert=kind in ("sent", "held"), now=now)
    return Outcome(report=report, kind=kind, recipients=count, notified=notified)


def _broadcast(session: Session, config, report: Report, streets: list[Street], now: datetime) -> int:
    """Hand a report going out to the fan-out; a sighting (not an update) opens its incident first."""
    if report.kind == ReportKind.REPORT and report.incident_id is None:
        incident = Incident(report_id=report.id, opened_at=now, last_activity_at=now)
        session.add(incident)
        session.flush()
        report.incident_id = incident.id
        session.add(report)
    return fanout.broadcast(session=session, config=config, report=report, streets=streets, now=now)


def incident_streets(session: Session, incident: Incident) -> list[Street]:
    """The streets an incident's first alert went to: its updates and all-clear go there too."""
    return list(
        session.exec(
            select(Street).join(ReportStreet, ReportStreet.street_id == Street.id)
            .where(ReportStreet.report_id == incident.report_id).order_by(Street.name)
        )
    )


def release(*, session: Session, config, report: Report, text: str | None = None, now: datetime | None = None) -> int:
    """A coordinator sends a held report (optionally with the text they typed for a recording); returns the
    neighbours it goes to. Plates the typed text names for the first time are remembered and texted about."""
    now = now or utcnow()
    if report.state != ReportState.HELD:
        return 0
    streets = list(
        session.exec(select(Street).join(ReportStreet, ReportStreet.street_id == Street.id).where(ReportStreet.report_id == report.id))
    )
    if text and text[:MAX_TEXT] != report.text:
        report.text = text[:MAX_TEXT]
        sightings.revise(session=session, config=config, report=report, streets=streets, now=now)
    report.state, report.decided_at = ReportState.SENT, now
    session.add(report)
    if report.incident_id is not None and report.kind == ReportKind.UPDATE:  # a held update
        incident = session.get(Incident, report.incident_id)
        if incident is not None and incident.closed_at is None:
            incident.last_activity_at = now  # the incident is alive again
            session.add(incident)
        else:  # its incident closed meanwhile (an all-clear came first): it goes out as a new report
            report.kind, report.incident_id = ReportKind.REPORT, None
    return _broadcast(session, config, report, streets, now)


def deciding_streets(session: Session, report: Report) -> list[Street]:
    """Whose coordinators decide a held report: the moderated streets it is held for (a street that does
    not moderate would have had it at once); held for review (a recording), every street it names."""
    linked = list(
        session.exec(select(Street).join(ReportStreet, ReportStreet.street_id == Street.id).where(ReportStreet.report_id == report.id))
    )
    moderated = [street for street in linked if street.moderated]
    return moderated if report.reason == "moderated" and moderated else linked


def may_decide(session: Session, report: Report, scope: Scope) -> bool:
    """A held report is sent or dropped by a coordinator of every street deciding it, or by an admin.
    A coordinator of another of its streets sees it but leaves the decision to them: sending it would
    broadcast it to the moderated street too, and the decision is theirs."""
    return scope.allows_all(street.id for street in deciding_streets(session, report))


def drop(*, session: Session, report: Report, now: datetime | None = None) -> bool:
    if report.state != ReportState.HELD:
        return False
    report.state, report.decided_at = ReportState.DROPPED, now or utcnow()
    session.add(report)
    return True


def by_ref(session: Session, ref: str) -> Report | None:
    ref = ref.strip().upper().lstrip("R")
    # Few enough digits for a database integer: "R99999999999999999999" is no report, not a database error.
    return session.get(Report, int(ref)) if ref.isdecimal() and len(ref) <= 9 else None

"""The daily digest: one SMS to each coordinator with a phone, about their streets (admins: the whole
scheme) — new reports, reports held for them, people waiting to join, alerts that did not arrive, open
incidents and closed incidents still without an outcome.
Nothing is sent to a coordinator with nothing to hear about. The SMS goes through the outbox like any
alert: a Delivery with no report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from hotline import messages, translations
from hotline.models import (
    Channel,
    Coordinator,
    CoordinatorStreet,
    Delivery,
    DeliveryState,
    Incident,
    Membership,
    MembershipStatus,
    Report,
    ReportKind,
    ReportState,
    ReportStreet,
)
from hotline.residents import members

PERIOD = timedelta(days=1)


@dataclass(frozen=True)
class Digest:
    new_reports: int
    held: int
    pending: int
    failed: int
    open_incidents: int = 0
    without_outcome: int = 0  # closed incidents nobody has recorded an outcome for

    @property
    def empty(self) -> bool:
        return not (self.new_reports or self.held or self.pending or self.failed or self.open_incidents or self.without_outcome)


def _streets(session: Session, coordinator: Coordinator) -> list[int] | None:
    """The street ids a coordinator looks after; None for an admin (everything, streetless reports too)."""
    if coordinator.is_admin:
        return None
    return list(session.exec(select(CoordinatorStreet.street_id).where(CoordinatorStreet.coordinator_id == coordinator.id)))


def summarize(session: Session, coordinator: Coordinator, *, since: datetime, now: datetime) -> Digest:
    streets = _streets(session, coordinator)
    reports = select(func.count(func.distinct(Report.id))).select_from(Report)
    held = select(func.count(func.distinct(Report.id))).select_from(Report).where(Report.state == ReportState.HELD.value)
    pending = select(func.count(Membership.id)).where(Membership.status == MembershipStatus.PENDING.value)
    failed = select(func.count(Delivery.id)).where(
        Delivery.state.in_([DeliveryState.FAILED.value, DeliveryState.UNDELIVERED.value]),
        Delivery.updated_at >= since,
        Delivery.updated_at < now,
    )
    if streets is not None:
        reports = reports.join(ReportStreet, ReportStreet.report_id == Report.id).where(ReportStreet.street_id.in_(streets))
        held = held.join(ReportStreet, ReportStreet.report_id == Report.id).where(ReportStreet.street_id.in_(streets))
        pending = pending.where(Membership.street_id.in_(streets))
        failed = failed.where(Delivery.street_id.in_(streets))
    reports = reports.where(Report.created_at >= since, Report.created_at < now, Report.kind == ReportKind.REPORT.value)
    incidents = select(func.count(func.distinct(Incident.id))).select_from(Incident)
    if streets is not None:
        incidents = incidents.join(ReportStreet, ReportStreet.report_id == Incident.report_id).where(ReportStreet.street_id.in_(streets))
    return Digest(
        new_reports=session.exec(reports).one(),
        held=session.exec(held).one(),
        pending=session.exec(pending).one(),
        failed=session.exec(failed).one(),
        open_incidents=session.exec(incidents.where(Incident.closed_at.is_(None))).one(),
        without_outcome=session.exec(incidents.where(Incident.closed_at.is_not(None), Incident.outcome.is_(None))).one(),
    )


def queue_digests(*, session: Session, config, now: datetime) -> int:
    """Write the day's digest SMS to the outbox; returns how many were written."""
    written = 0
    for coordinator in session.exec(select(Coordinator).where(Coordinator.phone.is_not(None)).order_by(Coordinator.id)):
        member = members.find(session, coordinator.phone)
        if member is not None and (member.opted_out_at or member.invalid_at):
            continue  # STOP from a coordinator's phone counts like anyone's
        digest = summarize(session, coordinator, since=now - PERIOD, now=now)
        if digest.empty:
            continue
        language = translations.known(member.language if member else None)
        with translations.speaking(language):
            body = messages.digest(
                config.scheme_name, new_reports=digest.new_reports, held=digest.held, pending=digest.pending,
                failed=digest.failed, open_incidents=digest.open_incidents, without_outcome=digest.without_outcome,
                url=config.public_url,
            )
        session.add(
            Delivery(
                member_id=member.id if member else None,
                phone=coordinator.phone,
                channel=Channel.SMS,
                body=body,
                language=language,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        written += 1
    return written

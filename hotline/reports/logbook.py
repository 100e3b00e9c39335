"""The coordinators' log: reports filtered and scoped to a coordinator's streets, with delivery counts,
a weekly count per street, and the same rows as CSV cells safe to open in a spreadsheet."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterator

from sqlalchemy import case, exists, func, or_, true, tuple_
from sqlalchemy.orm import load_only
from sqlmodel import Session, select

from hotline import phones
from hotline.models import Coordinator, Delivery, DeliveryState, Incident, Report, ReportKind, ReportStreet, Sighting, Street
from hotline.reports import plates
from hotline.residents.streets import Scope

PAGE_SIZE = 50
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FAILED = [DeliveryState.FAILED.value, DeliveryState.UNDELIVERED.value]
DONE = [DeliveryState.DELIVERED.value, *FAILED, DeliveryState.CANCELLED.value]


@dataclass(frozen=True)
class LogFilter:
    street_id: int | None = None
    since: date | None = None  # local dates, both ends included
    until: date | None = None
    words: str = ""


@dataclass
class Counts:
    total: int = 0
    delivered: int = 0
    failed: int = 0
    cancelled: int = 0
    acknowledged: int = 0  # recipients who said they saw or heard it (OK by text, 1 on the call)

    @property
    def pending(self) -> int:
        return self.total - self.delivered - self.failed - self.cancelled


@dataclass
class Entry:
    report: Report
    streets: list[Street] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)
    incident: Incident | None = None  # the incident the report opened
    updates: int = 0  # updates of that incident, sent or not
    may_decide: bool = True  # a held report: whether the viewer may send or drop it (intake.may_decide)
    deciders: list[str] = field(default_factory=list)  # a held report: the streets whose coordinators decide it

    @property
    def reporter(self) -> str:
        return phones.mask(self.report.phone)

    @property
    def incident_state(self) -> str:
        """open, clear (an all-clear closed it), closed (a day without activity), or "" (no incident)."""
        if self.incident is None:
            return ""
        if self.incident.closed_at is None:
            return "open"
        return "clear" if self.incident.closed_by == "all_clear" else "closed"


def _local_bound(day: date, zone, *, end: bool) -> datetime:
    moment = datetime.combine(day + timedelta(days=1) if end else day, time(0), tzinfo=zone)
    return moment.astimezone(timezone.utc)


def visible(scope: Scope):
    """A condition on Report: it concerns one of the scope's streets (admins: every report)."""
    if scope.everything:
        return true()
    return exists().where(ReportStreet.report_id == Report.id, ReportStreet.street_id.in_(scope.street_ids or [-1]))


def report_visible(session: Session, report: Report, scope: Scope) -> bool:
    return session.exec(select(func.count(Report.id)).where(Report.id == report.id, visible(scope))).one() > 0


def _filtered(query, wanted: LogFilter, scope: Scope, zone):
    # One row an incident: its updates and all-clear are shown on the report that opened it.
    conditions = [visible(scope), Report.kind == ReportKind.REPORT.value]
    if wanted.street_id is not None:
        conditions.append(exists().where(ReportStreet.report_id == Report.id, ReportStreet.street_id == wanted.street_id))
    if wanted.since:
        conditions.append(Report.created_at >= _local_bound(wanted.since, zone, end=False))
    if wanted.until:
        conditions.append(Report.created_at < _local_bound(wanted.until, zone, end=True))
    words = _word_conditions(wanted.words)
    if words and (wanted.street_id is not None or not scope.everything):
        # A street is the selective condition, but PostgreSQL would match the words (lower() on every row) across the
        # whole date range first and join the street after. Choose the street's reports in a subquery the planner
        # cannot merge (OFFSET 0), then match words on those few: 20 ms instead of 100 on a year of 200,000 reports.
        candidates = select(Report.id).where(*conditions).offset(0)
        return query.where(Report.id.in_(candidates), *words)
    return query.where(*conditions, *words)


def _word_conditions(words: str) -> list:
    """Each word must be in the text; a plate in the search (AB12CDE, ab12 cde, a b 12 c d e) matches the reports
    that named it, however they spelled it, or that have it as typed."""
    conditions, rest = [], words
    for found in reversed(plates.spans(words)):
        as_typed = words[found.start : found.end]
        named = exists().where(Sighting.report_id == Report.id, Sighting.plate == found.plate)
        conditions.append(or_(named, Report.text.icontains(as_typed, autoescape=True)))
        rest = rest[: found.start] + " " + rest[found.end :]
    return conditions + [Report.text.icontains(word, autoescape=True) for word in rest.split()]


def count(session: Session, wanted: LogFilter, scope: Scope, zone) -> int:
    return session.exec(_filtered(select(func.count(Report.id)), wanted, scope, zone)).one()


def entries(session: Session, reports: list[Report], scope: Scope) -> list[Entry]:
    """Each report with its streets and delivery counts (two queries for the lot)."""
    ids = [r.id for r in reports]
    streets: dict[int, list[Street]] = defaultdict(list)
    counts: dict[int, Counts] = {}
    if ids:
        for report_id, street in session.exec(
            select(ReportStreet.report_id, Street).join(Street, Street.id == ReportStreet.street_id).where(ReportStreet.report_id.in_(ids))
            .order_by(Street.name).options(load_only(Street.id, Street.name))  # pages show names; the rest would only be decoded
        ):
            streets[report_id].append(street)
        counts = delivery_counts(session, ids, scope)
    found = _incidents(session, [r.incident_id for r in reports if r.incident_id])
    return [
        Entry(r, streets[r.id], counts.get(r.id, Counts()), *found.get(r.incident_id, (None, 0)))
        if r.kind == ReportKind.REPORT else Entry(r, streets[r.id], counts.get(r.id, Counts()))
        for r in reports
    ]


def _incidents(session: Session, incident_ids: list[int]) -> dict[int, tuple[Incident, int]]:
    """Each incident with the number of its updates (two queries for the lot)."""
    if not incident_ids:
        return {}
    updates = dict(
        session.exec(
            select(Report.incident_id, func.count(Report.id))
            .where(Report.incident_id.in_(incident_ids), Report.kind == ReportKind.UPDATE.value).group_by(Report.incident_id)
        ).all()
    )
    return {i.id: (i, updates.get(i.id, 0)) for i in session.exec(select(Incident).where(Incident.id.in_(incident_ids)))}


@dataclass
class Moment:
    """One line of an incident's timeline on the report page."""

    at: datetime
    what: str  # report | update | all_clear | taken | outcome | closed
    who: str  # a masked number, a coordinator's email, or "" (the hotline itself)
    text: str | None = None
    report: Report | None = None


def timeline(session: Session, incident: Incident) -> list[Moment]:
    """The report, its updates, the all-clear, who took it, the outcome: oldest first, who did each."""
    emails = dict(session.exec(select(Coordinator.id, Coordinator.email)).all())
    moments = []
    for report in session.exec(select(Report).where(Report.incident_id == incident.id).order_by(Report.created_at, Report.id)):
        if report.kind == ReportKind.ALL_CLEAR:
            moments.append(Moment(report.created_at, "all_clear", emails.get(incident.cleared_by_id, ""), report.text, report))
        else:
            moments.append(Moment(report.created_at, report.kind, phones.mask(report.phone), report.text, report))
    if incident.taken_at:
        moments.append(Moment(incident.taken_at, "taken", emails.get(incident.taken_by_id, "")))
    if incident.outcome_at:
        moments.append(Moment(incident.outcome_at, "outcome", emails.get(incident.outcome_by_id, ""), incident.outcome_note))
    if incident.closed_at and incident.closed_by == "quiet":
        moments.append(Moment(incident.closed_at, "closed", ""))
    return sorted(moments, key=lambda m: m.at)


def delivery_counts(session: Session, report_ids: list[int], scope: Scope) -> dict[int, Counts]:
    """Per report: deliveries in all, delivered, failed or undelivered, cancelled (only the scope's streets).
    Read from the ix_delivery_report_counts index alone: count(*), not count(id), which is not in it."""
    query = select(
        Delivery.report_id,
        func.count(),
        func.sum(case((Delivery.state == DeliveryState.DELIVERED.value, 1), else_=0)),
        func.sum(case((Delivery.state.in_(FAILED), 1), else_=0)),
        func.sum(case((Delivery.state == DeliveryState.CANCELLED.value, 1), else_=0)),
    ).where(Delivery.report_id.in_(report_ids)).group_by(Delivery.report_id)
    seen = select(Delivery.report_id, func.count()).where(Delivery.report_id.in_(report_ids), Delivery.acknowledged_at.is_not(None))
    if not scope.everything:
        query = query.where(Delivery.street_id.in_(scope.street_ids or [-1]))
        seen = seen.where(Delivery.street_id.in_(scope.street_ids or [-1]))
    acknowledged = dict(session.exec(seen.group_by(Delivery.report_id)).all())
    return {
        rid: Counts(total, delivered or 0, failed or 0, cancelled or 0, acknowledged.get(rid, 0))
        for rid, total, delivered, failed, cancelled in session.exec(query)
    }


def page(session: Session, wanted: LogFilter, scope: Scope, zone, number: int = 1, size: int = PAGE_SIZE) -> list[Entry]:
    """One page of the log, newest first."""
    query = _filtered(select(Report), wanted, scope, zone).order_by(Report.created_at.desc(), Report.id.desc())
    reports = list(session.exec(query.offset((max(1, number) - 1) * size).limit(size)))
    return entries(session, reports, scope)


def every(session: Session, wanted: LogFilter, scope: Scope, zone, batch: int = 500) -> Iterator[Entry]:
    """Every filtered report, newest first, a batch at a time (for the CSV export)."""
    last: tuple[datetime, int] | None = None
    while True:
        query = _filtered(select(Report), wanted, scope, zone)
        if last is not None:  # keyset paging: stable while new reports arrive at the top
            # a row comparison, so the created_at index bounds the scan (an OR of the two made each batch rescan from the top)
            query = query.where(tuple_(Report.created_at, Report.id) < last)  # the bounds take the columns' types
        reports = list(session.exec(query.order_by(Report.created_at.desc(), Report.id.desc()).limit(batch)))
        if not reports:
            return
        yield from entries(session, reports, scope)
        last = (reports[-1].created_at, reports[-1].id)


def deliveries(session: Session, report: Report, scope: Scope) -> list[Delivery]:
    query = select(Delivery).where(Delivery.report_id == report.id).order_by(Delivery.id)
    if not scope.everything:
        query = query.where(Delivery.street_id.in_(scope.street_ids or [-1]))
    return list(session.exec(query))


def csv_cell(value) -> str:
    """A spreadsheet must not run what a resident texted: a cell that could start a formula gets a leading '."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


CSV_HEADER = [
    "ref", "time", "streets", "channel", "reporter", "state", "reason", "text", "recording", "recipients", "delivered", "failed",
    "incident", "updates", "outcome", "outcome note",
]


def csv_row(entry: Entry, zone) -> list[str]:
    r, incident = entry.report, entry.incident
    cells = [
        r.ref, r.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"), "; ".join(s.name for s in entry.streets),
        r.channel, entry.reporter, r.state, r.reason or "", r.text or "", r.recording_url or "",
        entry.counts.total, entry.counts.delivered, entry.counts.failed,
        entry.incident_state, entry.updates if incident else "", (incident.outcome or "") if incident else "",
        (incident.outcome_note or "") if incident else "",
    ]
    return [csv_cell(c) for c in cells]


def weekly(session: Session, scope: Scope, zone, *, weeks: int, today: date) -> tuple[list[date], list[tuple[Street, list[int]]]]:
    """Reports per street per week (weeks start on Monday, local time) for the last `weeks` weeks."""
    monday = today - timedelta(days=today.weekday())
    starts = [monday - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    since = _local_bound(starts[0], zone, end=False)
    rows = session.exec(
        select(ReportStreet.street_id, Report.created_at).join(Report, Report.id == ReportStreet.report_id).where(Report.created_at >= since)
    )
    table: dict[int, list[int]] = defaultdict(lambda: [0] * weeks)
    for street_id, created in rows:
        local_day = created.astimezone(zone).date()
        index = (local_day - starts[0]).days // 7
        if 0 <= index < weeks:
            table[street_id][index] += 1
    query = select(Street).order_by(Street.name)
    if not scope.everything:
        query = query.where(Street.id.in_(scope.street_ids or [-1]))
    return starts, [(street, table[street.id]) for street in session.exec(query)]


def failed_deliveries(session: Session, scope: Scope, since: datetime) -> int:
    query = select(func.count(Delivery.id)).where(Delivery.state.in_(FAILED), Delivery.updated_at >= since)
    if not scope.everything:
        query = query.where(Delivery.street_id.in_(scope.street_ids or [-1]))
    return session.exec(query).one()

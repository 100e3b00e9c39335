"""The coordinators' plate pages: plates seen more than once lately, and one plate's sightings — scoped like
the log. A sighting on a report the coordinator may open shows its time, reference and text; one on another
street's report shows that street and the date only."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, func
from sqlmodel import Session, select

from hotline.models import Report, ReportStreet, Sighting, Street
from hotline.residents.streets import Scope

RECENT = timedelta(days=90)
MAX_PLATES = 200
MAX_SIGHTINGS = 500


@dataclass
class Seen:
    """One sighting as this coordinator may see it: `report` only when they may open the report."""

    street: str | None
    at: datetime
    report: Report | None = None


@dataclass
class Repeated:
    plate: str
    seen: list[Seen] = field(default_factory=list)
    reports: int = 0  # different reports naming it

    @property
    def streets(self) -> list[str]:
        return sorted({s.street for s in self.seen if s.street})

    @property
    def last(self) -> datetime:
        return self.seen[0].at


def _visible_reports(session: Session, report_ids: set[int], scope: Scope) -> set[int]:
    """Which of these reports the coordinator may open (the log's rule: a report on one of their streets)."""
    if scope.everything or not report_ids:
        return set(report_ids)
    rows = session.exec(
        select(ReportStreet.report_id).where(ReportStreet.report_id.in_(report_ids), ReportStreet.street_id.in_(scope.street_ids or [-1]))
    )
    return set(rows)


def _seen(session: Session, rows, scope: Scope) -> list[tuple[str, Seen, int]]:
    rows = list(rows)
    visible = _visible_reports(session, {sighting.report_id for sighting, _ in rows}, scope)
    opened = {r.id: r for r in session.exec(select(Report).where(Report.id.in_(visible)))} if visible else {}
    return [(s.plate, Seen(street=name, at=s.seen_at, report=opened.get(s.report_id)), s.report_id) for s, name in rows]


def _sightings(plates: list[str], since: datetime | None):
    query = select(Sighting, Street.name).join(Street, Street.id == Sighting.street_id, isouter=True).where(Sighting.plate.in_(plates))
    if since is not None:
        query = query.where(Sighting.seen_at >= since)
    return query.order_by(Sighting.seen_at.desc(), Sighting.id.desc())


def repeated(session: Session, scope: Scope, *, now: datetime, within: timedelta = RECENT) -> list[Repeated]:
    """Plates named by more than one report within `within`, at least one of them on the coordinator's streets
    (admins: anywhere), the most recently seen first."""
    since = now - within
    query = (
        select(Sighting.plate)
        .where(Sighting.seen_at >= since)
        .group_by(Sighting.plate)
        .having(func.count(func.distinct(Sighting.report_id)) > 1)
        .order_by(func.max(Sighting.seen_at).desc())
        .limit(MAX_PLATES)
    )
    if not scope.everything:
        mine = case((Sighting.street_id.in_(scope.street_ids or [-1]), 1), else_=0)
        query = query.having(func.sum(mine) > 0)
    found = list(session.exec(query))
    if not found:
        return []
    table: dict[str, Repeated] = {plate: Repeated(plate) for plate in found}
    reports: dict[str, set[int]] = defaultdict(set)
    for plate, seen, report_id in _seen(session, session.exec(_sightings(found, since)), scope):
        table[plate].seen.append(seen)
        reports[plate].add(report_id)
    for plate, entry in table.items():
        entry.reports = len(reports[plate])
    return [table[plate] for plate in found]


def concerns(session: Session, scope: Scope, plate: str) -> bool:
    """Whether a coordinator may look a plate up: an admin always, a street coordinator once it was reported on
    one of their streets (as the log shows them only their streets' reports)."""
    if scope.everything:
        return True
    mine = select(Sighting.id).where(Sighting.plate == plate, Sighting.street_id.in_(scope.street_ids or [-1])).limit(1)
    return session.exec(mine).first() is not None


def sightings_of(session: Session, scope: Scope, plate: str) -> list[Seen]:
    """Every sighting of one plate still kept (retention deletes them with the report's text), newest first."""
    rows = session.exec(_sightings([plate], None).limit(MAX_SIGHTINGS))
    return [seen for _, seen, _ in _seen(session, rows, scope)]

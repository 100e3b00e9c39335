"""The meeting pack's figures: a period's reports and incidents per week, by kind and by hour of the week,
plates reported more than once, outcomes, members joined and left, alerts delivered — scoped like the log,
and nothing in them that names or numbers a person. Every count is a GROUP BY in the database; Python only
folds UTC hours into local weeks and hours (zones a whole number of hours from UTC, as the UK's are) and reads
the kind of the few reports not classified yet. What can no longer change is counted once (tally.py): settled
reports' deliveries and reports' kinds."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import and_, case, exists, func, not_, text, true
from sqlmodel import Session, select

from hotline.models import (
    ClassifiedReport,
    Delivery,
    DeliveryState,
    DeliveryTally,
    Incident,
    Membership,
    MembershipStatus,
    Outcome,
    Report,
    ReportKind,
    ReportStreet,
    Sighting,
    Street,
)
from hotline.reports import kinds, tally
from hotline.reports.logbook import visible
from hotline.residents.streets import Scope

DEFAULT_DAYS = 28  # the last four weeks, today included
MAX_INCIDENTS = 60  # listed one by one; the outcome counts cover them all
MAX_PLATES = 40
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
FAILED = [DeliveryState.FAILED.value, DeliveryState.UNDELIVERED.value]


@dataclass(frozen=True)
class Period:
    since: date  # local dates, both ends included
    until: date
    street_id: int | None = None

    @property
    def weeks(self) -> list[date]:
        """The Mondays of the weeks the period touches."""
        first = self.since - timedelta(days=self.since.weekday())
        return [first + timedelta(weeks=i) for i in range((self.until - first).days // 7 + 1)]


@dataclass
class IncidentLine:
    ref: str
    opened_at: datetime
    streets: list[str]
    kind: str
    state: str  # open | clear | closed
    outcome: str | None


@dataclass
class Plate:
    plate: str
    reports: int
    streets: int
    first: datetime
    last: datetime


@dataclass
class Alerts:
    total: int = 0
    delivered: int = 0
    undelivered: int = 0  # undelivered or failed, for good
    cancelled: int = 0
    acknowledged: int = 0

    @property
    def pending(self) -> int:
        return self.total - self.delivered - self.undelivered - self.cancelled


@dataclass
class Summary:
    period: Period
    weeks: list[date]
    reports_per_week: list[int]
    incidents_per_week: list[int]
    joined_per_week: list[int]
    left_per_week: list[int]
    by_kind: dict[str, int]
    grid: list[list[int]]  # [weekday 0-6][hour 0-23], local time
    outcomes: dict[str, int]  # Outcome values, plus "none" (not recorded yet)
    open_incidents: int
    incidents: list[IncidentLine]
    plates: list[Plate]
    alerts: Alerts
    active_members: int
    streets: list[str] = field(default_factory=list)  # the streets covered; empty: the whole scheme

    @property
    def reports(self) -> int:
        return sum(self.reports_per_week)

    @property
    def incident_count(self) -> int:
        return sum(self.incidents_per_week)

    @property
    def joined(self) -> int:
        return sum(self.joined_per_week)

    @property
    def left(self) -> int:
        return sum(self.left_per_week)


def default_period(today: date) -> Period:
    return Period(since=today - timedelta(days=DEFAULT_DAYS - 1), until=today)


def _bounds(period: Period, zone) -> tuple[datetime, datetime]:
    start = datetime.combine(period.since, time(0), tzinfo=zone).astimezone(timezone.utc)
    end = datetime.combine(period.until + timedelta(days=1), time(0), tzinfo=zone).astimezone(timezone.utc)
    return start, end


def _utc_hour(session: Session, column):
    """The UTC hour a moment falls in: a naive UTC timestamp from PostgreSQL (date_trunc: a third cheaper than
    to_char over a year of reports), text "YYYY-MM-DD HH" from SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("hour", func.timezone("UTC", column))
    return func.strftime("%Y-%m-%d %H", column)


def _local(hour: str | datetime, zone) -> datetime:
    moment = hour if isinstance(hour, datetime) else datetime.strptime(hour, "%Y-%m-%d %H")
    return moment.replace(tzinfo=timezone.utc).astimezone(zone)


def _report_scope(period: Period, scope: Scope):
    """A condition on Report: on the scope's streets (the log's rule) and the chosen street."""
    conditions = [visible(scope)]
    if period.street_id is not None:
        conditions.append(exists().where(ReportStreet.report_id == Report.id, ReportStreet.street_id == period.street_id))
    return and_(*conditions)


def _street_scope(column, period: Period, scope: Scope):
    """A condition on a row's street (a membership's, a delivery's, a sighting's)."""
    conditions = [true() if scope.everything else column.in_(scope.street_ids or [-1])]
    if period.street_id is not None:
        conditions.append(column == period.street_id)
    return and_(*conditions)


def _per_week(session: Session, column, where, period: Period, zone, *, join=None) -> tuple[list[int], Counter]:
    """Rows per local week, and per (weekday, hour): one GROUP BY by UTC hour, folded here."""
    hour = _utc_hour(session, column)
    query = select(hour, func.count())
    if join is not None:
        query = query.select_from(join[0]).join(*join[1:])
    return _fold(session.exec(query.where(*where).group_by(hour)).all(), period, zone)


def _fold(rows, period: Period, zone) -> tuple[list[int], Counter]:
    """(UTC hour text, n) rows into counts per local week and per local (weekday, hour)."""
    weeks, first = [0] * len(period.weeks), period.weeks[0]
    grid: Counter = Counter()
    for hour_text, n in rows:
        local = _local(hour_text, zone)
        index = (local.date() - first).days // 7
        if 0 <= index < len(weeks):
            weeks[index] += n
        grid[local.weekday(), local.hour] += n
    return weeks, grid


def _reports(session: Session, where: list, period: Period, zone) -> tuple[list[int], Counter, dict[str, int]]:
    """Reports per local week, per (weekday, hour) and by kind, in one GROUP BY of UTC hour and kind: a blanked text
    is "other", a kind worked out once (tally.classify) is read as it is. The rest (the newest, or all of them
    after an edit of the keyword list, until the job has run) come back without a kind and their texts are read
    here, from their first hour on, by kinds.kind_of (sql_kind's twin)."""
    hour = _utc_hour(session, Report.created_at)
    kind = case((Report.text.is_(None), kinds.OTHER), else_=ClassifiedReport.kind)
    known = and_(ClassifiedReport.report_id == Report.id, ClassifiedReport.keywords == kinds.VERSION)
    counted = session.exec(
        select(hour, kind, func.count()).select_from(Report).outerjoin(ClassifiedReport, known).where(*where).group_by(hour, kind)
    ).all()
    hours: Counter = Counter()
    found: Counter = Counter()
    for hour_text, k, n in counted:
        hours[hour_text] += n
        found[k] += n
    if found.pop(None, 0):
        first = min(_local(h, timezone.utc) for h, k, _ in counted if k is None)
        for text_ in session.exec(
            select(Report.text).select_from(Report).outerjoin(ClassifiedReport, known)
            .where(*where, Report.created_at >= first, Report.text.is_not(None), ClassifiedReport.kind.is_(None))
        ):
            found[kinds.kind_of(text_)] += 1
    weeks, grid = _fold(hours.items(), period, zone)
    return weeks, grid, {k: found.get(k, 0) for k in kinds.SHOWN}


def build(session: Session, period: Period, scope: Scope, zone) -> Summary:
    if session.get_bind().dialect.name == "postgresql":
        # JIT compiles for longer than these queries run: 4 s of a year's 13 s before the tally, ~0.1 s a query after
        session.execute(text("SET LOCAL jit = off"))
    start, end = _bounds(period, zone)
    reports = [Report.kind == ReportKind.REPORT.value, Report.created_at >= start, Report.created_at < end, _report_scope(period, scope)]
    reports_per_week, grid, by_kind = _reports(session, reports, period, zone)
    opened = [Incident.opened_at >= start, Incident.opened_at < end, _report_scope(period, scope)]
    incidents_per_week, _ = _per_week(session, Incident.opened_at, opened, period, zone, join=(Incident, Report, Report.id == Incident.report_id))
    joined_where = [
        Membership.status.in_([MembershipStatus.ACTIVE.value, MembershipStatus.LEFT.value]),
        Membership.joined_at >= start, Membership.joined_at < end, _street_scope(Membership.street_id, period, scope),
    ]
    left_where = [
        Membership.status == MembershipStatus.LEFT.value, Membership.decided_at >= start, Membership.decided_at < end,
        _street_scope(Membership.street_id, period, scope),
    ]
    return Summary(
        period=period,
        weeks=period.weeks,
        reports_per_week=reports_per_week,
        incidents_per_week=incidents_per_week,
        joined_per_week=_per_week(session, Membership.joined_at, joined_where, period, zone)[0],
        left_per_week=_per_week(session, Membership.decided_at, left_where, period, zone)[0],
        by_kind=by_kind,
        grid=[[grid[day, hour] for hour in range(24)] for day in range(7)],
        outcomes=outcomes(session, opened),
        open_incidents=session.exec(select(func.count()).select_from(Incident).join(Report, Report.id == Incident.report_id)
                                    .where(*opened, Incident.closed_at.is_(None))).one(),
        incidents=incident_lines(session, opened),
        plates=repeated_plates(session, period, scope, start, end),
        alerts=alerts(session, period, scope, start, end),
        active_members=session.exec(select(func.count()).select_from(Membership).where(
            Membership.status == MembershipStatus.ACTIVE.value, _street_scope(Membership.street_id, period, scope))).one(),
        streets=_street_names(session, period, scope),
    )


def outcomes(session: Session, opened: list) -> dict[str, int]:
    rows = session.exec(
        select(Incident.outcome, func.count()).select_from(Incident).join(Report, Report.id == Incident.report_id)
        .where(*opened).group_by(Incident.outcome)
    ).all()
    found = {outcome or "none": n for outcome, n in rows}
    return {k: found.get(k, 0) for k in [*(o.value for o in Outcome), "none"]}


def incident_lines(session: Session, opened: list) -> list[IncidentLine]:
    """The newest incidents of the period: reference, time, streets, kind, state, outcome (never the note,
    which may name someone)."""
    rows = session.exec(
        select(Incident, Report.text).join(Report, Report.id == Incident.report_id).where(*opened)
        .order_by(Incident.opened_at.desc(), Incident.id.desc()).limit(MAX_INCIDENTS)
    ).all()
    names: dict[int, list[str]] = {}
    ids = [incident.report_id for incident, _ in rows]
    if ids:
        for report_id, name in session.exec(
            select(ReportStreet.report_id, Street.name).join(Street, Street.id == ReportStreet.street_id)
            .where(ReportStreet.report_id.in_(ids)).order_by(Street.name)
        ):
            names.setdefault(report_id, []).append(name)
    return [
        IncidentLine(
            ref=incident.ref, opened_at=incident.opened_at, streets=names.get(incident.report_id, []), kind=kinds.kind_of(text),
            state="open" if incident.closed_at is None else ("clear" if incident.closed_by == "all_clear" else "closed"),
            outcome=incident.outcome,
        )
        for incident, text in rows
    ]


def repeated_plates(session: Session, period: Period, scope: Scope, start: datetime, end: datetime) -> list[Plate]:
    """Plates named by more than one report in the period on the streets covered, the most reported first."""
    rows = session.exec(
        select(
            Sighting.plate, func.count(func.distinct(Sighting.report_id)), func.count(func.distinct(Sighting.street_id)),
            func.min(Sighting.seen_at), func.max(Sighting.seen_at),
        )
        .where(Sighting.seen_at >= start, Sighting.seen_at < end, _street_scope(Sighting.street_id, period, scope))
        .group_by(Sighting.plate).having(func.count(func.distinct(Sighting.report_id)) > 1)
        .order_by(func.count(func.distinct(Sighting.report_id)).desc(), func.max(Sighting.seen_at).desc()).limit(MAX_PLATES)
    ).all()
    return [Plate(plate, n, streets, _aware(first), _aware(last)) for plate, n, streets, first, last in rows]


def _aware(moment) -> datetime:
    # min() and max() come back untyped from SQLite: a string, or a naive datetime
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def alerts(session: Session, period: Period, scope: Scope, start: datetime, end: datetime) -> Alerts:
    """Alerts (deliveries of the period's reports, updates and all-clears) to the streets covered, by how they ended:
    settled reports' from their tally (tally.py), the others' counted row by row."""
    found = Alerts()
    total, found.delivered, found.undelivered, found.cancelled, found.acknowledged = tally.period_sums(
        session, start, end, _street_scope(DeliveryTally.street_id, period, scope))
    found.total = total
    live = [Report.created_at >= start, Report.created_at < end, _street_scope(Delivery.street_id, period, scope), not_(tally.tallied(Report.id))]
    # two queries, each read from an index alone: the states (ix_delivery_report_counts), the acknowledged (a partial index)
    rows = session.exec(select(Delivery.state, func.count()).join(Report, Report.id == Delivery.report_id).where(*live).group_by(Delivery.state)).all()
    found.acknowledged += session.exec(select(func.count()).select_from(Delivery).join(Report, Report.id == Delivery.report_id)
                                       .where(*live, Delivery.acknowledged_at.is_not(None))).one()
    for state, n in rows:
        found.total += n
        if state == DeliveryState.DELIVERED.value:
            found.delivered += n
        elif state in FAILED:
            found.undelivered += n
        elif state == DeliveryState.CANCELLED.value:
            found.cancelled += n
    return found


def _street_names(session: Session, period: Period, scope: Scope) -> list[str]:
    if period.street_id is None and scope.everything:
        return []
    return list(session.exec(select(Street.name).where(_street_scope(Street.id, period, scope)).order_by(Street.name)))

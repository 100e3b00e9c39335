"""A report's life: logging, limits, moderation, and handing it to the fan-out; coordinators' send and drop."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import Text, bindparam, case, func, insert, null, or_, union_all, update
from sqlalchemy import select as core_select
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import instance_dict, instance_state, set_committed_value
from sqlmodel import Session, select

from hotline.db import Prebuilt, UTCDateTime, utcnow
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


def _tidy(text: str | None) -> str:
    """What the duplicate check compares: case and spacing aside."""
    return " ".join((text or "").casefold().split())


class StreetRef(NamedTuple):
    """What a report needs of a street, read without the ORM (a `Street` serves as well)."""

    id: int
    name: str
    moderated: bool


class OpenIncident(NamedTuple):
    """What an update needs of the open incident it follows, read without the ORM (an `Incident` serves as well):
    its id, its opening report, and the streets that report went to (`StreetRef`s, where updates go)."""

    id: int
    report_id: int
    streets: list[StreetRef]

    @property
    def ref(self) -> str:
        return f"R{self.report_id}"

    @property
    def open(self) -> bool:
        return True  # read as open (incidents.followed), in the transaction that updates it


# The report path's statements, built once: building an expression costs more than running it.
_COUNTED = [ReportState.SENT.value, ReportState.HELD.value, ReportState.DROPPED.value]


def _limits_statement():
    """The member's report counts in the past hour and day, and (rows whose counts are NULL) the texts of their
    latest 20 reports in the duplicate window, in one round trip. States compared one by one: an IN list would
    be rewritten at every execution."""
    def state_in(states):
        return or_(*(Report.state == state for state in states))

    mine = Report.member_id == bindparam("member_id")
    counts = core_select(
        null().cast(Text).label("text"),
        func.coalesce(func.sum(case((Report.created_at >= bindparam("hour_ago", type_=UTCDateTime), 1), else_=0)), 0).label("hour"),
        func.count(Report.id).label("day"),
    ).where(mine, Report.created_at >= bindparam("day_ago", type_=UTCDateTime), state_in(_COUNTED))
    recent = (
        core_select(Report.text.label("text"))
        .where(mine, Report.created_at >= bindparam("window", type_=UTCDateTime), state_in(_COUNTED[:2]))
        .order_by(Report.created_at.desc())
        .limit(20)
        .subquery()
    )
    return union_all(counts, core_select(recent.c.text, null(), null()))


_LIMITS = Prebuilt(_limits_statement())
_INCIDENT_STREETS = Prebuilt(
    core_select(Street.id, Street.name, Street.moderated)
    .join(ReportStreet, ReportStreet.street_id == Street.id)
    .where(ReportStreet.report_id == bindparam("report_id"))
    .order_by(Street.name)
)
_INSERTED = [column.key for column in Report.__table__.columns if column.key != "id"]  # a new report's columns
_INSERT_REPORT = Prebuilt(insert(Report.__table__), columns=_INSERTED)
_INSERT_REPORT_STREET = Prebuilt(insert(ReportStreet.__table__), columns=["report_id", "street_id"])
_INSERT_INCIDENT = Prebuilt(insert(Incident.__table__), columns=["report_id", "opened_at", "last_activity_at"])
_SET_REPORT_INCIDENT = Prebuilt(
    update(Report.__table__).where(Report.__table__.c.id == bindparam("b_id")).values(incident_id=bindparam("b_incident_id"))
)
_TOUCH_INCIDENT = Prebuilt(
    update(Incident.__table__).where(Incident.__table__.c.id == bindparam("b_id")).values(last_activity_at=bindparam("b_at"))
)


def _limit_breached(connection, config, member: Member, text: str | None, now: datetime) -> str | None:
    """duplicate / over_hour / over_day, or None. One small query: this runs inside every report webhook."""
    rows = _LIMITS.rows(connection, {
        "member_id": member.id, "hour_ago": now - timedelta(hours=1), "day_ago": now - timedelta(days=1),
        "window": now - timedelta(minutes=config.duplicate_window_minutes),
    })
    hour, day = next((row[1], row[2]) for row in rows if row[1] is not None)
    if text:
        tidy = _tidy(text)  # once, not once for each of the 20 recent texts
        if any(_tidy(row[0]) == tidy for row in rows if row[1] is None):
            return "duplicate"
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
    incident: Incident | OpenIncident | None = None,
    streets: list | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Log a report and, from an active member within their limits, broadcast it or hold it for a coordinator.

    With `incident`, it is an update of that (open) incident: it goes to the incident's streets, whoever
    sends it, under the same limits, duplicate check and moderation as a report. A broadcast report opens
    an incident of its own. `member` is a `Member` or anything with its `id`; `streets`, the member's active
    streets when the caller has read them already (`Street`s or `StreetRef`s).

    Written with prebuilt Core statements (this is every report webhook's work); the report returned is
    attached to the session as if loaded, so it can be read, changed and flushed like any other."""
    now = now or utcnow()
    report = _new_report(
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
    if streets is None:
        streets = members.active_streets(session, member)
    if streets and incident is not None:
        streets = incident.streets if isinstance(incident, OpenIncident) else incident_streets_of(session, incident)
    linked = streets
    row = instance_dict(report)  # a new object's columns, set directly (no history to keep before it is added)
    connection = session.connection()
    if not streets:
        pending = members.memberships(session, member, MembershipStatus.PENDING) if member else []
        linked = [street for _, street in pending]
        row["reason"] = kind = "pending" if pending else "stranger"
        row["kind"], row["incident_id"] = ReportKind.REPORT, None
    else:
        breach = _limit_breached(connection, config, member, row["text"], now)
        if breach:
            row["reason"] = kind = breach
        elif hold or any(s.moderated for s in streets):
            row["state"], row["reason"], kind = ReportState.HELD, ("review" if hold else "moderated"), "held"
        else:
            row["state"], kind = ReportState.SENT, "sent"
    # Who it goes to is asked before the first write: on SQLite a write takes the database's one writer turn
    # until the commit, and every read done before it is time another webhook can write in.
    spoken_in = fanout.recipient_languages(session, report, streets) if kind == "sent" else None
    row["id"] = _INSERT_REPORT.insert(connection, {key: row[key] for key in _INSERTED})
    if linked:
        _INSERT_REPORT_STREET.run(connection, [{"report_id": row["id"], "street_id": street.id} for street in linked])
    if incident is not None and kind in ("sent", "held"):
        touch_incident(session, incident, now, connection=connection)
    if kind == "sent" and row["kind"] == ReportKind.REPORT and row["incident_id"] is None:
        row["incident_id"] = _open_incident(connection, report, now)
    make_transient_to_detached(report)  # it is in the database now: the session may hold it as loaded
    session.add(report)
    count = fanout.broadcast(
        session=session, config=config, report=report, streets=streets, now=now, spoken_in=spoken_in,
        ref=incident.ref if incident is not None else None,
    ) if kind == "sent" else 0
    notified = sightings.record(session=session, config=config, report=report, streets=linked, alert=kind in ("sent", "held"), now=now)
    return Outcome(report=report, kind=kind, recipients=count, notified=notified)


_REPORT_MANAGER = Report.__mapper__.class_manager  # the ORM's own factory of Report objects
# The columns' plain defaults; one made by a factory (created_at) is never shared: the caller gives it, or the INSERT's
# column list finds it missing (KeyError), not a value made once at import.
_REPORT_DEFAULTS = {key: field.default for key, field in Report.model_fields.items() if field.default_factory is None}


def _new_report(**columns) -> Report:
    """A new `Report` built as the ORM builds one it loads, its columns set directly: SQLModel's constructor
    (~160 µs of CPU, more than the INSERT) is the dearest step of a report webhook's Python otherwise."""
    report = _REPORT_MANAGER.new_instance()
    instance_dict(report).update(_REPORT_DEFAULTS, **columns)
    return report


def _open_incident(connection, report: Report, now: datetime) -> int:
    """A broadcast sighting (not an update) opens its incident."""
    incident_id = _INSERT_INCIDENT.insert(connection, {"report_id": report.id, "opened_at": now, "last_activity_at": now})
    _SET_REPORT_INCIDENT.run(connection, {"b_id": report.id, "b_incident_id": incident_id})
    return incident_id


def touch_incident(session: Session, incident: Incident, now: datetime, *, connection=None) -> None:
    """The incident is alive: one UPDATE, and a loaded `Incident` shows it without another at the flush."""
    _TOUCH_INCIDENT.run(connection or session.connection(), {"b_id": incident.id, "b_at": now})
    if isinstance(incident, OpenIncident):
        return
    if instance_state(incident).persistent:
        set_committed_value(incident, "last_activity_at", now)
    else:
        incident.last_activity_at = now


def _broadcast(session: Session, config, report: Report, streets: list[Street], now: datetime) -> int:
    """Hand a report going out to the fan-out; a sighting (not an update) opens its incident first."""
    if report.kind == ReportKind.REPORT and report.incident_id is None:
        incident = Incident(report_id=report.id, opened_at=now, last_activity_at=now)
        session.add(incident)
        session.flush()
        report.incident_id = incident.id
        session.add(report)
    return fanout.broadcast(session=session, config=config, report=report, streets=streets, now=now)


def incident_streets_of(session: Session, incident: Incident) -> list[StreetRef]:
    """The streets an incident's first alert went to, as `StreetRef`s (one prebuilt query, no ORM)."""
    rows = _INCIDENT_STREETS.rows(session.connection(), {"report_id": incident.report_id})
    return [StreetRef(*row) for row in rows]


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

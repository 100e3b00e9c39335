"""Number plates remembered across streets: the sightings each report names, and the coordinators' SMS when
a plate turns up on a second street within CROSS_STREET or is on the watch list.

`intake` calls this for every report, typed or spoken, so both are read by the same recogniser. The SMS are
outbox rows written in the report's own transaction (the dispatcher sends them); what residents are sent is
never changed. Only a report that passed its limits (sent, or held for a coordinator) texts anyone: a
stranger's, a pending member's or one over a cap is remembered but cannot make coordinators' phones ring.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlmodel import Session, select

from hotline import messages, translations
from hotline.db import utcnow
from hotline.models import Channel, Coordinator, CoordinatorStreet, Delivery, Member, Report, Sighting, Street
from hotline.reports import plates, watchlist

CROSS_STREET = timedelta(days=14)


def record(*, session: Session, config, report: Report, streets: list[Street], alert: bool, now: datetime | None = None) -> int:
    """Remember the plates a new report names, one row per plate and street; returns the coordinators' SMS queued."""
    return _remember(session, config, report, streets, plates.find(report.text), alert=alert, now=now or utcnow())


def revise(*, session: Session, config, report: Report, streets: list[Street], now: datetime | None = None) -> int:
    """A coordinator gave a held report its text (a recording typed out, or an edit): plates it no longer names are
    forgotten, plates it names now for the first time are remembered and, like a new report's, texted."""
    named = plates.find(report.text)
    known = set(session.exec(select(Sighting.plate).where(Sighting.report_id == report.id)))
    stale = known - set(named)
    if stale:
        session.execute(delete(Sighting).where(Sighting.report_id == report.id, Sighting.plate.in_(stale)))
    fresh = [plate for plate in named if plate not in known]
    return _remember(session, config, report, streets, fresh, alert=True, now=now or utcnow())


def _remember(session: Session, config, report: Report, streets: list[Street], named: list[str], *, alert: bool, now: datetime) -> int:
    if not named:  # most reports: no query at all
        return 0
    queued = _alert(session, config, report, streets, named, now) if alert else 0
    street_ids = [s.id for s in streets] or [None]
    session.add_all(
        Sighting(report_id=report.id, street_id=street_id, plate=plate, seen_at=report.created_at)
        for plate in named
        for street_id in street_ids
    )
    return queued


def _earlier_elsewhere(session: Session, plate: str, report: Report, street_ids: list[int], now: datetime) -> Sighting | None:
    """The latest sighting of the plate on another street within CROSS_STREET — unless it was seen on one of
    this report's streets in that time too: then both streets' coordinators have heard of it already."""
    rows = session.exec(
        select(Sighting)
        .where(Sighting.plate == plate, Sighting.seen_at >= now - CROSS_STREET, Sighting.report_id != report.id)
        .order_by(Sighting.seen_at.desc(), Sighting.id.desc())
        .limit(200)
    ).all()
    if any(row.street_id in street_ids for row in rows):
        return None
    return next((row for row in rows if row.street_id is not None), None)


def _alert(session: Session, config, report: Report, streets: list[Street], named: list[str], now: datetime) -> int:
    street_ids = [s.id for s in streets]
    watched = watchlist.watched(session, named)
    zone, base = config.timezone, (config.public_url or "").rstrip("/")
    new = (", ".join(s.name for s in streets) or None, report.ref, report.created_at.astimezone(zone))
    queued = 0
    for plate in named:
        earlier = _earlier_elsewhere(session, plate, report, street_ids, now) if street_ids else None
        entry = watched.get(plate)
        if entry is None and earlier is None:
            continue
        seen = None
        if earlier is not None:
            other = session.get(Street, earlier.street_id)
            seen = (other.name, f"R{earlier.report_id}", earlier.seen_at.astimezone(zone))
        shown = plates.spaced(plate)
        if entry is not None:
            bodies = translations.each(lambda: messages.watched_plate(
                config.scheme_name, shown, new, entry.note, f"{base}/reports/{report.id}" if base else None, seen))
        else:
            bodies = translations.each(lambda: messages.plate_on_two_streets(
                config.scheme_name, shown, new, seen, f"{base}/plates/{plate}" if base else None))
        to_streets = street_ids + ([earlier.street_id] if earlier is not None else [])
        for phone, member in coordinators(session, to_streets, admins=entry is not None):
            language = translations.known(member.language if member else None)
            session.add(
                Delivery(member_id=member.id if member else None, phone=phone, channel=Channel.SMS, body=bodies[language],
                         language=language, next_attempt_at=now, created_at=now, updated_at=now)
            )
            queued += 1
    return queued


def coordinators(session: Session, street_ids: list[int], *, admins: bool) -> list[tuple[str, Member | None]]:
    """(phone, member record if any) of each coordinator with a registered phone who looks after one of these
    streets (and every admin, with `admins`), each once; a phone that texted STOP or cannot be texted is left out."""
    assigned = Coordinator.id.in_(select(CoordinatorStreet.coordinator_id).where(CoordinatorStreet.street_id.in_(street_ids or [-1])))
    who = or_(assigned, Coordinator.is_admin == True) if admins else assigned  # noqa: E712
    found = list(session.exec(select(Coordinator.phone).where(Coordinator.phone.is_not(None), who).order_by(Coordinator.id)))
    on_file = {m.phone: m for m in session.exec(select(Member).where(Member.phone.in_(found)))} if found else {}
    reachable = []
    for phone in found:
        member = on_file.get(phone)
        if member is None or not (member.opted_out_at or member.invalid_at):
            reachable.append((phone, member))
    return reachable

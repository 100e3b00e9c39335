"""The watch list: plates coordinators asked to hear about at once, each with a note, who added it and when.

The list is the scheme's, not a street's (a car does not keep to one street): every coordinator sees it and
may add to it; a plate comes off it by the coordinator who added it, or by an admin.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from hotline.db import utcnow
from hotline.models import Coordinator, WatchedPlate
from hotline.reports import plates

MAX_NOTE = 200


class WatchError(ValueError):
    """What was typed cannot go on the watch list (not a plate, on it already, a note too long)."""


def add(*, session: Session, coordinator: Coordinator, plate: str, note: str, now: datetime | None = None) -> WatchedPlate:
    normalised = plates.parse(plate)
    if normalised is None:
        raise WatchError(f"{' '.join(plate.split())[:20]!r} is not a number plate the hotline recognises")
    if session.exec(select(WatchedPlate).where(WatchedPlate.plate == normalised)).first() is not None:
        raise WatchError(f"{plates.spaced(normalised)} is on the watch list already")
    note = " ".join((note or "").split())
    if len(note) > MAX_NOTE:
        raise WatchError(f"the note can have at most {MAX_NOTE} characters")
    entry = WatchedPlate(plate=normalised, note=note, added_by=coordinator.id, added_at=now or utcnow())
    session.add(entry)
    session.flush()
    return entry


def may_remove(coordinator: Coordinator, entry: WatchedPlate) -> bool:
    return coordinator.is_admin or entry.added_by == coordinator.id


def remove(*, session: Session, coordinator: Coordinator, entry: WatchedPlate) -> None:
    if not may_remove(coordinator, entry):
        raise PermissionError("only the coordinator who added a plate, or an admin, may take it off the watch list")
    session.delete(entry)


def listing(session: Session) -> list[tuple[WatchedPlate, str | None]]:
    """Every watched plate with the email of whoever added it (None once their account is gone), newest first."""
    rows = session.exec(
        select(WatchedPlate, Coordinator.email)
        .join(Coordinator, Coordinator.id == WatchedPlate.added_by, isouter=True)
        .order_by(WatchedPlate.added_at.desc(), WatchedPlate.id.desc())
    )
    return list(rows)


def entry_for(session: Session, plate: str) -> WatchedPlate | None:
    return session.exec(select(WatchedPlate).where(WatchedPlate.plate == plate)).first()


def watched(session: Session, named: list[str]) -> dict[str, WatchedPlate]:
    if not named:
        return {}
    return {w.plate: w for w in session.exec(select(WatchedPlate).where(WatchedPlate.plate.in_(named)))}

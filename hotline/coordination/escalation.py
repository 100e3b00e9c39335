"""Nobody waits on one volunteer, and nobody is left unconfirmed.

- A held report, or a JOIN, not handled within HOTLINE_ESCALATE_MINUTES is texted to the street's
  coordinators with phones; after the same time again, to the scheme's admins with phones. Each
  coordinator hears about each item once (`Escalation`). JOINs wait for the morning in quiet hours; held
  reports never wait.
- After an urgent alert, members flagged "check on me" who have not said they heard it within
  HOTLINE_CHECK_MINUTES are named, in one SMS each, to their street's coordinators with phones.
The SMS go through the outbox like any other; replies to them (SEND R42, APPROVE J17) are ordinary commands.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, func, select

from hotline import messages, phones, translations
from hotline.models import (
    Channel,
    Coordinator,
    CoordinatorStreet,
    Delivery,
    DeliveryState,
    Escalation,
    Member,
    Membership,
    MembershipStatus,
    Report,
    ReportState,
    Street,
)
from hotline.reports import intake
from hotline.residents import members

CHECK_LOOKBACK = timedelta(days=1)  # urgent alerts older than this are not checked any more (a restart after days)


def _reachable(session: Session, people: list[Coordinator]) -> list[Coordinator]:
    """Coordinators with a phone that has not opted out (STOP counts for coordinators as for anyone)."""
    found = []
    for person in people:
        member = members.find(session, person.phone) if person.phone else None
        if person.phone and not (member and (member.opted_out_at or member.invalid_at)):
            found.append(person)
    return found


def street_coordinators(session: Session, street_ids: list[int]) -> list[Coordinator]:
    return _reachable(session, list(session.exec(
        select(Coordinator).join(CoordinatorStreet, CoordinatorStreet.coordinator_id == Coordinator.id)
        .where(CoordinatorStreet.street_id.in_(street_ids or [-1]), Coordinator.phone.is_not(None))
        .distinct().order_by(Coordinator.id)
    )))


def admins(session: Session) -> list[Coordinator]:
    return _reachable(session, list(session.exec(
        select(Coordinator).where(Coordinator.is_admin == True, Coordinator.phone.is_not(None)).order_by(Coordinator.id)  # noqa: E712
    )))


def _text(session: Session, person: Coordinator, words, now: datetime) -> None:
    """`words()` makes the text, in the language of the member record on the coordinator's phone, if any."""
    member = members.find(session, person.phone)
    language = translations.known(member.language if member else None)
    with translations.speaking(language):
        body = words()
    session.add(Delivery(member_id=member.id if member else None, phone=person.phone, channel=Channel.SMS, body=body,
                         language=language, state=DeliveryState.QUEUED, next_attempt_at=now, created_at=now, updated_at=now))


def _tell_once(session: Session, kind: str, item_id: int, people: list[Coordinator], level: int, words, now: datetime) -> int:
    told = set(session.exec(select(Escalation.coordinator_id).where(Escalation.kind == kind, Escalation.item_id == item_id)))
    written = 0
    for person in people:
        if person.id in told:
            continue
        session.add(Escalation(kind=kind, item_id=item_id, coordinator_id=person.id, level=level, sent_at=now))
        _text(session, person, words, now)
        written += 1
    return written


def _first_told(session: Session, kind: str, item_id: int) -> datetime | None:
    return session.exec(select(func.min(Escalation.sent_at)).where(Escalation.kind == kind, Escalation.item_id == item_id)).one()


def _admins_due(session: Session, kind: str, item_id: int, wait: timedelta, now: datetime) -> bool:
    """The admins hear the same time again after the street's coordinators were first told (not after the
    item first waited: a JOIN held by quiet hours must not reach both at once in the morning)."""
    first = _first_told(session, kind, item_id)
    return first is not None and first <= now - wait


def escalate(*, session: Session, config, now: datetime) -> int:
    """Text whoever is next in line about held reports and JOINs waiting too long. Returns the SMS written."""
    wait = timedelta(minutes=config.escalate_minutes)
    written = 0
    for report in session.exec(select(Report).where(Report.state == ReportState.HELD.value, Report.created_at <= now - wait)):
        streets = intake.deciding_streets(session, report)
        waited = int((now - report.created_at).total_seconds() // 60)
        def words(report=report, streets=streets, waited=waited):
            return messages.escalation_held(report.ref, [s.name for s in streets], waited, report.text)

        written += _tell_once(session, "report", report.id, street_coordinators(session, [s.id for s in streets]), 1, words, now)
        session.flush()
        if _admins_due(session, "report", report.id, wait, now) or not street_coordinators(session, [s.id for s in streets]):
            written += _tell_once(session, "report", report.id, admins(session), 2, words, now)
    if config.quiet_hours.contains(now.astimezone(config.timezone).time()):
        return written  # JOINs wait for the morning; a sighting held for a decision does not
    waiting = session.exec(
        select(Membership, Member, Street).join(Member, Member.id == Membership.member_id).join(Street, Street.id == Membership.street_id)
        .where(Membership.status == MembershipStatus.PENDING.value, Membership.joined_at <= now - wait)
    )
    for membership, member, street in waiting:
        who = phones.mask(member.phone).replace("•", "*") + (f" ({member.name})" if member.name else "")
        waited = int((now - membership.joined_at).total_seconds() // 60)
        def words(code=f"J{membership.id}", street=street.name, who=who, waited=waited):
            return messages.escalation_join(code, street, who, waited)

        written += _tell_once(session, "join", membership.id, street_coordinators(session, [street.id]), 1, words, now)
        session.flush()
        if _admins_due(session, "join", membership.id, wait, now) or not street_coordinators(session, [street.id]):
            written += _tell_once(session, "join", membership.id, admins(session), 2, words, now)
    return written


def unconfirmed_checks(session: Session, report: Report) -> list[tuple[Member, Street | None]]:
    """Members flagged "check on me" who were sent this alert and have not said they heard it."""
    rows = session.exec(
        select(Member, Street).join(Delivery, Delivery.member_id == Member.id).join(Street, Street.id == Delivery.street_id, isouter=True)
        .where(Delivery.report_id == report.id, Member.check_on_me == True, Delivery.acknowledged_at.is_(None),  # noqa: E712
               Delivery.state != DeliveryState.CANCELLED.value)
        .order_by(Member.id)
    )
    return list(rows)


def check_on_me(*, session: Session, config, now: datetime) -> int:
    """Urgent alerts sent HOTLINE_CHECK_MINUTES ago: name their silent "check on me" members to the street's
    coordinators, one SMS each per alert. Returns the SMS written."""
    due = session.exec(
        select(Report).where(
            Report.urgent == True, Report.state == ReportState.SENT.value, Report.checked_at.is_(None),  # noqa: E712
            # from when it went out: a report held first went out when a coordinator released it
            func.coalesce(Report.decided_at, Report.created_at) <= now - timedelta(minutes=config.check_minutes),
            Report.created_at >= now - CHECK_LOOKBACK,
        )
    )
    written = 0
    for report in list(due):
        report.checked_at = now
        session.add(report)
        silent = unconfirmed_checks(session, report)
        by_coordinator: dict[int, tuple[Coordinator, list[str]]] = {}
        for member, street in silent:
            label = (f"{member.name} " if member.name else "") + phones.mask(member.phone).replace("•", "*")
            label += f" ({street.name})" if street else ""
            for person in street_coordinators(session, [street.id] if street else []):
                by_coordinator.setdefault(person.id, (person, []))[1].append(label)
        ref = f"R{report.id}"
        for person, people in by_coordinator.values():
            when = report.created_at.astimezone(config.timezone)
            _text(session, person, lambda: messages.check_on_me(ref, when, people), now)
            written += 1
    return written


"""Commands from a coordinator's registered phone: APPROVE / REJECT <phone or name>, SEND R42 / DROP R42,
CLEAR R42 [words] (an incident's all-clear).

Only from a number registered to a coordinator, and only for their own streets; from anyone else (or
in any other shape) the text is not a command, so "Send help, van on the drive" stays a report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from hotline import messages, phones
from hotline.coordination import accounts
from hotline.models import Channel, Member, Membership, MembershipStatus, Report, ReportState, Street
from hotline.reports import incidents, intake, logbook
from hotline.residents import members
from hotline.residents.streets import Scope

COMMAND = re.compile(
    r"^(?:(APPROVE|REJECT)\s+(.+)|(SEND|DROP)\s+(R?\s?\d+)|(CLEAR)\s+(R?\s?\d{1,9})(?:[\s:.,-]+(.*))?)$", re.IGNORECASE | re.DOTALL
)


@dataclass
class Command:
    text: str  # the reply to the coordinator
    queued: int = 0  # deliveries written, so the dispatcher can be woken


def handle(*, session: Session, config, sender: str, body: str, now: datetime) -> Command | None:
    """The reply to a coordinator's command, or None when this is not one (the caller carries on)."""
    match = COMMAND.match(re.sub(r"[.!]+$", "", " ".join((body or "").split())))
    if not match:
        return None
    coordinator = accounts.by_phone(session, sender)
    if coordinator is None:
        return None
    scope = accounts.scope_of(session, coordinator)
    if match.group(1):
        return _decide(session, config, scope, match.group(2).strip(), approve=match.group(1).upper() == "APPROVE", now=now)
    if match.group(5):
        return _clear(session, config, coordinator.id, scope, int(re.sub(r"\D", "", match.group(6))), match.group(7), now=now)
    ref = "R" + re.sub(r"\D", "", match.group(4))
    return _held_report(session, config, scope, ref, send=match.group(3).upper() == "SEND", now=now)


def _find_member(session: Session, scope: Scope, who: str) -> Member | list[Member] | None:
    if re.fullmatch(r"[Jj]\d{1,9}", who):  # J17: the request named in an escalation SMS
        membership = session.get(Membership, int(who[1:]))
        member = session.get(Member, membership.member_id) if membership else None
        return member if member and members.member_visible(session, member, scope) else None
    try:
        phone = phones.parse(who, strict=False)
    except phones.InvalidPhone:
        phone = None
    if phone:
        member = session.exec(select(Member).where(Member.phone == phone)).first()
        return member if member and members.member_visible(session, member, scope) else None
    named = session.exec(select(Member).where(func.lower(Member.name) == who.lower())).all()
    named = [m for m in named if members.member_visible(session, m, scope)]
    if len(named) > 1:
        return named
    return named[0] if named else None


def _decide(session: Session, config, scope: Scope, who: str, *, approve: bool, now: datetime) -> Command:
    found = _find_member(session, scope, who)
    if found is None:
        return Command(messages.coordinator_unknown_member(who))
    if isinstance(found, list):
        return Command(messages.coordinator_ambiguous_member(who, len(found)))
    # "*" not "•": a bullet is not GSM-7 and would make the reply cost UCS-2 segments.
    label = phones.mask(found.phone).replace("•", "*") + (f" ({found.name})" if found.name else "")
    query = (
        select(Membership, Street)
        .join(Street, Street.id == Membership.street_id)
        .where(Membership.member_id == found.id, Membership.status == MembershipStatus.PENDING)
        .order_by(Street.name)
    )
    waiting = [(m, s) for m, s in session.exec(query) if scope.allows(s.id)]
    if re.fullmatch(r"[Jj]\d{1,9}", who):  # J17 names one request: only that one is decided
        waiting = [(m, s) for m, s in waiting if m.id == int(who[1:])]
    if not waiting:
        return Command(messages.coordinator_nothing_pending(label))
    names = [s.name for _, s in waiting]
    if not approve:
        for membership, _ in waiting:
            members.reject(session=session, membership=membership, now=now)
        return Command(messages.coordinator_rejected(label, names))
    queued = sum(members.approve(session=session, config=config, membership=m, now=now) for m, _ in waiting)
    return Command(messages.coordinator_approved(label, names), queued=queued)


def _held_report(session: Session, config, scope: Scope, ref: str, *, send: bool, now: datetime) -> Command:
    report = intake.by_ref(session, ref)
    if report is None or not logbook.report_visible(session, report, scope):
        return Command(messages.coordinator_report_unknown(ref))
    if report.state != ReportState.HELD:
        return Command(messages.coordinator_report_not_held(ref, report.state))
    if not intake.may_decide(session, report, scope):
        return Command(messages.coordinator_report_not_theirs(ref, [s.name for s in intake.deciding_streets(session, report)]))
    if not send:
        intake.drop(session=session, report=report, now=now)
        return Command(messages.coordinator_report_dropped(ref))
    if not report.text:
        return Command(messages.coordinator_report_needs_text(ref))
    count = intake.release(session=session, config=config, report=report, now=now)
    return Command(messages.coordinator_report_sent(ref, count), queued=count)


def _clear(session: Session, config, coordinator_id: int, scope: Scope, number: int, words: str | None, *, now: datetime) -> Command:
    """CLEAR R42 [words]: the all-clear of an open incident on one of the coordinator's streets."""
    incident = incidents.of_report(session, number)
    opening = session.get(Report, incident.report_id) if incident else None
    if incident is None or not logbook.report_visible(session, opening, scope) or not incident.open:
        return Command(messages.coordinator_not_open(f"R{number}"))
    count = incidents.clear(session=session, config=config, incident=incident, words=words, channel=Channel.SMS,
                            coordinator_id=coordinator_id, now=now)
    return Command(messages.coordinator_cleared(incident.ref, count), queued=count)

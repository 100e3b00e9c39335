"""Incidents: what a broadcast report opens and residents follow to its end.

Replies that only say "seen" (OK, THANKS, 👍 …) acknowledge the member's latest alert and go nowhere;
follow-ups (the reporter's next texts, an alerted member's reply, `R42 …`) are updates sent to the
incident's streets; a coordinator's all-clear goes to everyone the incident reached and closes it; a day
without activity closes it too. A coordinator records the outcome, and the reporter is told.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, case, func, insert, literal, union_all, update
from sqlalchemy import select as core_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from hotline import messages, phones, translations
from hotline.db import Prebuilt, UTCDateTime
from hotline.delivery.quiet_hours import call_release_time
from hotline.models import (
    Channel,
    Delivery,
    DeliveryState,
    Incident,
    Member,
    Membership,
    MembershipStatus,
    Outcome,
    Report,
    ReportKind,
    ReportState,
    ReportStreet,
    Street,
)
from hotline.reports import intake, plates
from hotline.reports.fanout import MAX_CALLS_PER_INCIDENT, calls_in_incident
from hotline.residents import languages

ACK_WORDS = {"OK", "SEEN", "THANKS", "THANK YOU", "TA", "CHEERS", "NOTED"}
_THUMBS = re.compile("^(?:\U0001F44D[\U0001F3FB-\U0001F3FF]?)+$")
_EDGES = re.compile(r"^[\s.!?,;:'\"()*-]+|[\s.!?,;:'\"()*-]+$")
REF_PREFIX = re.compile(r"^R\s?(\d{1,9})(?![\d/])[\s:.,;!-]*(.*)$", re.IGNORECASE | re.DOTALL)
QUIET_CLOSE = timedelta(hours=24)  # an incident with no report, update or all-clear for this long closes itself
ACK_WINDOW = timedelta(hours=24)  # an OK acknowledges the latest alert received within this
REACHED = [DeliveryState.ACCEPTED, DeliveryState.CALLING, DeliveryState.SENT, DeliveryState.DELIVERED]


class NotOpen(Exception):
    """The incident is closed (or was never one): an all-clear or an outcome cannot change it now."""


# --- reading a reply ------------------------------------------------------------------------------


def is_acknowledgement(body: str) -> bool:
    """A whole message of OK, SEEN, THANKS … or thumbs-up, case, spaces and punctuation aside."""
    tidy = " ".join(_EDGES.sub("", body or "").split())
    return tidy.upper() in ACK_WORDS or bool(_THUMBS.match(tidy.replace(" ", "")))


def ref_prefix(body: str) -> tuple[int, str] | None:
    """`R42 he's back` -> (42, "he's back"); None when the text does not start with a reference."""
    text = (body or "").strip()
    match = REF_PREFIX.match(text)
    if not match or not match.group(2).strip():
        return None
    if any(found.start == 0 for found in plates.spans(text)):
        return None  # "R123 ABC parked outside no 5": a prefix-style number plate, not a reference
    return int(match.group(1)), match.group(2).strip()


def acknowledge(session: Session, phone: str, *, how: str, now: datetime) -> Delivery | None:
    """Record "seen" against the latest alert this number received in the past day (nothing if none)."""
    delivery = session.exec(
        select(Delivery)
        .where(
            Delivery.phone == phone, Delivery.report_id.is_not(None), Delivery.state.in_([s.value for s in REACHED]),
            Delivery.sent_at >= now - ACK_WINDOW,
        )
        .order_by(Delivery.sent_at.desc(), Delivery.id.desc())
        .limit(1)
    ).first()
    if delivery is not None and delivery.acknowledged_at is None:
        delivery.acknowledged_at, delivery.acknowledged_by = now, how
        session.add(delivery)
    return delivery


def unconfirmed(session: Session, phone: str, now: datetime) -> Delivery | None:
    """The latest alert this number got in the past day without saying they heard it (left on a machine)."""
    return session.exec(
        select(Delivery)
        .where(
            Delivery.phone == phone, Delivery.report_id.is_not(None), Delivery.acknowledged_at.is_(None),
            Delivery.state.in_([s.value for s in REACHED]), Delivery.sent_at >= now - ACK_WINDOW,
        )
        .order_by(Delivery.sent_at.desc(), Delivery.id.desc())
        .limit(1)
    ).first()


def confirm(session: Session, delivery: Delivery, *, how: str, now: datetime) -> None:
    if delivery.acknowledged_at is None:
        delivery.acknowledged_at, delivery.acknowledged_by = now, how
        session.add(delivery)


# --- which incident a text follows --------------------------------------------------------------


def of_report(session: Session, report_id: int) -> Incident | None:
    """The incident a reference names: the one it opened, or the one an update of it belongs to."""
    report = session.get(Report, report_id) if 0 < report_id <= 2**31 - 1 else None
    return session.get(Incident, report.incident_id) if report is not None and report.incident_id else None


def _followed_statement():
    """The incident of the member's latest report, or latest alert, in the window: each found by walking an
    index backwards from now (a member alerted a thousand times in the hour costs the same), the later wins."""
    since = bindparam("since", type_=UTCDateTime)
    wrote = (
        core_select(Report.incident_id.label("incident_id"), Report.created_at.label("at"))
        .join(Incident, Incident.id == Report.incident_id)
        .where(Report.member_id == bindparam("member_id"), Report.created_at >= since, Incident.closed_at.is_(None),
               Report.kind != ReportKind.ALL_CLEAR.value)
        .order_by(Report.created_at.desc(), Report.id.desc())
        .limit(1)
        .subquery()
    )
    alerted = (
        core_select(Report.incident_id.label("incident_id"), Delivery.created_at.label("at"))
        .join(Report, Report.id == Delivery.report_id)
        .join(Incident, Incident.id == Report.incident_id)
        .where(Delivery.member_id == bindparam("member_id"), Delivery.created_at >= since, Incident.closed_at.is_(None),
               Delivery.state != DeliveryState.CANCELLED.value, Report.kind != ReportKind.ALL_CLEAR.value)
        .order_by(Delivery.created_at.desc(), Delivery.id.desc())
        .limit(1)
        .subquery()
    )
    both = union_all(core_select(wrote), core_select(alerted)).subquery()
    latest = core_select(both.c.incident_id).order_by(both.c.at.desc(), both.c.incident_id.desc()).limit(1).scalar_subquery()
    # with the streets its first alert went to (where an update goes), one row a street
    return (
        core_select(Incident.id, Incident.report_id, Street.id, Street.name, Street.moderated)
        .select_from(Incident)
        .outerjoin(ReportStreet, ReportStreet.report_id == Incident.report_id)
        .outerjoin(Street, Street.id == ReportStreet.street_id)
        .where(Incident.id == latest)
        .order_by(Street.name)
    )


_FOLLOWED = Prebuilt(_followed_statement())


def followed(session: Session, config, member: Member, now: datetime) -> intake.OpenIncident | None:
    """The open incident a member's text follows up, if any: one they texted about, or were alerted about,
    within HOTLINE_INCIDENT_MINUTES. Several: the latest wins. One prebuilt query, no ORM (every member's text
    asks it), which brings the incident's streets too."""
    since = now - timedelta(minutes=config.incident_minutes)
    rows = _FOLLOWED.rows(session.connection(), {"member_id": member.id, "since": since})
    if not rows:
        return None
    return intake.OpenIncident(rows[0][0], rows[0][1], [intake.StreetRef(*row[2:]) for row in rows if row[2] is not None])


def own_open(session: Session, config, member: Member, now: datetime) -> Incident | None:
    """The open incident a member themselves texted or phoned about within the window (voice asks about it)."""
    since = now - timedelta(minutes=config.incident_minutes)
    row = session.execute(
        core_select(Report.incident_id)
        .join(Incident, Incident.id == Report.incident_id)
        .where(Report.member_id == member.id, Report.created_at >= since, Incident.closed_at.is_(None))
        .order_by(Report.created_at.desc(), Report.id.desc())
        .limit(1)
    ).first()
    return session.get(Incident, row[0]) if row else None


# --- the all-clear ---------------------------------------------------------------------------------


def clear(*, session: Session, config, incident: Incident, words: str | None, channel: Channel,
          coordinator_id: int | None, now: datetime) -> int:
    """Send `All clear R42: …` to everyone the incident reached, on the channel each got it (a call waits for
    quiet hours to end, and not past the incident's call cap), after anything of it still queued for them;
    close the incident. Returns the deliveries written."""
    # Claim the close first, conditionally: of two all-clears at once (two coordinators, a click and a CLEAR
    # by text, a double click) one closes it and sends; the other finds it closed and sends nothing.
    claimed = session.execute(
        update(Incident).where(Incident.id == incident.id, Incident.closed_at.is_(None))
        .values(closed_at=now, closed_by="all_clear", last_activity_at=now, cleared_by_id=coordinator_id)
        .execution_options(synchronize_session=False, preserve_rowcount=True)
    ).rowcount
    session.refresh(incident)
    if not claimed:
        raise NotOpen(incident.ref)
    opening = session.get(Report, incident.report_id)
    text = " ".join((words or "").split())[: intake.MAX_TEXT] or None
    report = Report(member_id=None, phone=None, channel=channel, text=text, state=ReportState.SENT, kind=ReportKind.ALL_CLEAR,
                    incident_id=incident.id, created_at=now, decided_at=now)
    session.add(report)
    session.flush()
    streets = intake.incident_streets(session, incident)
    for street in streets:
        session.add(ReportStreet(report_id=report.id, street_id=street.id))
    return _write_all_clear(session, config, incident, report, opening, streets[0].name if streets else "", now)


def _write_all_clear(session: Session, config, incident: Incident, report: Report, opening: Report, street: str, now: datetime) -> int:
    """One INSERT … SELECT: each member the incident reached once, with their first delivery's channel."""
    of_incident = core_select(Report.id).where(Report.incident_id == incident.id, Report.id != report.id).scalar_subquery()
    first = (
        core_select(Delivery.member_id.label("member_id"), func.min(Delivery.id).label("first_id"))
        .where(Delivery.report_id.in_(of_incident), Delivery.member_id.is_not(None), Delivery.state != DeliveryState.CANCELLED.value)
        .group_by(Delivery.member_id)
        .subquery()
    )
    firsts = aliased(Delivery)
    pending = aliased(Delivery)
    still_queued = (
        core_select(func.max(pending.next_attempt_at))
        .where(pending.member_id == first.c.member_id, pending.report_id.in_(of_incident), pending.state == DeliveryState.QUEUED.value)
        .scalar_subquery()
    )
    is_call = firsts.channel == Channel.CALL.value
    base = case((is_call, literal(call_release_time(config, now, False), UTCDateTime)), else_=literal(now, UTCDateTime))
    due = case((and_(still_queued.is_not(None), still_queued > base), still_queued), else_=base)
    alert_time = opening.created_at.astimezone(config.timezone)
    sms_body = translations.each(lambda: messages.all_clear(incident.ref, report.text))
    call_body = translations.each(lambda: messages.all_clear_call(config.scheme_name, street, alert_time, report.text), spoken=True)
    rows = (
        core_select(
            literal(report.id), first.c.member_id, firsts.street_id, Member.phone, firsts.channel,
            case((is_call, languages.body_for(call_body)), else_=languages.body_for(sms_body)), languages.known(), literal(False),
            literal(DeliveryState.QUEUED.value), literal(0), due, literal(False),
            literal(now, UTCDateTime), literal(now, UTCDateTime),
        )
        .select_from(first)
        .join(firsts, firsts.id == first.c.first_id)
        .join(Member, Member.id == first.c.member_id)
        # still on that street: someone who left (or was removed) since the alert hears no more of it
        .join(Membership, and_(Membership.member_id == first.c.member_id, Membership.street_id == firsts.street_id,
                               Membership.status == MembershipStatus.ACTIVE.value))
        .where(
            Member.opted_out_at.is_(None), Member.invalid_at.is_(None),
            ~is_call | (calls_in_incident(incident.id, first.c.member_id) < MAX_CALLS_PER_INCIDENT),
        )
    )
    columns = ["report_id", "member_id", "street_id", "phone", "channel", "body", "language", "urgent", "state", "attempts",
               "next_attempt_at", "needs_lookup", "created_at", "updated_at"]
    statement = insert(Delivery).from_select(columns, rows).execution_options(preserve_rowcount=True)
    return session.execute(statement).rowcount


def close_quiet(*, session: Session, now: datetime) -> int:
    """Incidents with no activity for a day close by themselves; `R42 …` is a new report after that."""
    return session.execute(
        update(Incident)
        .where(Incident.closed_at.is_(None), Incident.last_activity_at < now - QUIET_CLOSE)
        .values(closed_at=now, closed_by="quiet")
        .execution_options(synchronize_session=False, preserve_rowcount=True)
    ).rowcount


# --- triage and outcome ----------------------------------------------------------------------------


def take(*, session: Session, incident: Incident, coordinator_id: int, now: datetime) -> int:
    """A coordinator says they are on it (so two do not both ring the police). Returns who has it: the first
    to take it keeps it until they let it go."""
    session.execute(
        update(Incident).where(Incident.id == incident.id, Incident.taken_by_id.is_(None))
        .values(taken_by_id=coordinator_id, taken_at=now)
        .execution_options(synchronize_session=False)
    )  # conditional: of two coordinators at once, the first keeps it and the second is told
    session.refresh(incident)
    return incident.taken_by_id


def let_go(*, session: Session, incident: Incident, coordinator_id: int, is_admin: bool) -> bool:
    if incident.taken_by_id is None or (incident.taken_by_id != coordinator_id and not is_admin):
        return False
    incident.taken_by_id = incident.taken_at = None
    session.add(incident)
    return True


def record_outcome(*, session: Session, config, incident: Incident, outcome: Outcome, note: str | None,
                   coordinator_id: int, now: datetime) -> bool:
    """Record what became of it and tell the reporter: by SMS to a mobile, or (a landline) first thing on
    their next call. Returns whether an SMS was queued."""
    incident.outcome, incident.outcome_note = outcome.value, " ".join((note or "").split())[:500] or None
    incident.outcome_by_id, incident.outcome_at = coordinator_id, now
    incident.outcome_told_at = None
    session.add(incident)
    opening = session.get(Report, incident.report_id)
    member = session.get(Member, opening.member_id) if opening and opening.member_id else None
    if member is None or member.opted_out_at or member.invalid_at or not phones.is_mobile(member.phone):
        return False  # a landline hears it on its next call (voice.menu); an unknown or opted-out number, never
    with translations.speaking(member.language):
        body = messages.outcome_to_reporter(config.scheme_name, incident.ref, incident.outcome, incident.outcome_note)
    session.add(Delivery(member_id=member.id, phone=member.phone, channel=Channel.SMS, body=body, language=translations.known(member.language),
                         state=DeliveryState.QUEUED,
                         next_attempt_at=now, created_at=now, updated_at=now))
    incident.outcome_told_at = now
    return True


def untold_outcomes(session: Session, member: Member) -> list[Incident]:
    """Outcomes of this member's reports they have not heard yet (a landline: said when they next call)."""
    return list(
        session.exec(
            select(Incident).join(Report, Report.id == Incident.report_id)
            .where(Report.member_id == member.id, Incident.outcome.is_not(None), Incident.outcome_told_at.is_(None))
            .order_by(Incident.outcome_at)
        )
    )

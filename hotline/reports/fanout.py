"""From a report to its deliveries: who gets it (each number once), written set-based into the outbox.

Up to INLINE_LIMIT recipients the deliveries are written in the report's own transaction. A bigger
broadcast is only marked (`Report.fanout_pending`, committed with the report, so nothing is lost)
and the dispatcher writes its deliveries straight after: a webhook's time must not grow with the street.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache

from sqlalchemy import Integer, Text, and_, bindparam, case, exists, func, insert, literal, or_, true, update
from sqlalchemy import select as core_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from hotline import messages, phones, translations
from hotline.db import Prebuilt, UTCDateTime, utcnow
from hotline.delivery.quiet_hours import call_release_time
from hotline.models import (
    AlertChannel,
    Channel,
    Delivery,
    DeliveryState,
    Incident,
    Member,
    Membership,
    MembershipStatus,
    Report,
    ReportKind,
    ReportStreet,
    Street,
)

INLINE_LIMIT = 500
MAX_CALLS_PER_INCIDENT = 3  # the first alert, urgent updates, the all-clear: never more calls than this
COLUMNS = [
    "report_id", "member_id", "street_id", "phone", "channel", "body", "language", "urgent", "state",
    "attempts", "next_attempt_at", "needs_lookup", "created_at", "updated_at",
]


# Built once (every report's webhook runs them): active members of the street(s), minus the reporter and
# opted-out or unusable numbers.
_RECIPIENTS = and_(
    Membership.status == MembershipStatus.ACTIVE.value,
    Member.opted_out_at.is_(None),
    Member.invalid_at.is_(None),
    Member.phone != bindparam("reporter_phone"),
    Member.id != bindparam("reporter_id"),
)
_COUNT = {  # of one street (most reports), or of several: recipients per language
    many: Prebuilt(core_select(Member.language, func.count(func.distinct(Member.id)))
    .select_from(Membership)
    .join(Member, Member.id == Membership.member_id)
    .where(Membership.street_id.in_(bindparam("street_ids", expanding=True)) if many else Membership.street_id == bindparam("street_id"),
           _RECIPIENTS)
    .group_by(Member.language))
    for many in (False, True)
}


def _reporter(report: Report) -> dict:
    return {"reporter_phone": report.phone or "", "reporter_id": report.member_id or -1}


def recipient_languages(session: Session, report: Report, streets: list[Street]) -> dict[str, int]:
    """{language: recipients}: the count, and which languages the alert's body is needed in."""
    ids = {"street_ids": [s.id for s in streets]} if len(streets) > 1 else {"street_id": streets[0].id}
    return dict(_COUNT[len(streets) > 1].rows(session.connection(), {**_reporter(report), **ids}))


def broadcast(*, session: Session, config, report: Report, streets: list[Street], now: datetime,
              spoken_in: dict[str, int] | None = None, ref: str | None = None) -> int:
    """Write the deliveries now, or mark a big broadcast for the dispatcher. Returns the recipient count.
    `spoken_in`: recipient_languages, when the caller asked it before writing anything; `ref`: an update's
    incident's reference, when the caller has it."""
    if not streets:
        return 0
    if spoken_in is None:
        spoken_in = recipient_languages(session, report, streets)
    total = sum(spoken_in.values())
    if total > INLINE_LIMIT:
        report.fanout_pending = True
        session.add(report)
        return total
    return write_deliveries(session=session, config=config, report=report, streets=streets, now=now, spoken_in=set(spoken_in), ref=ref)


def _body(kind: str, others: tuple[str, ...]):
    """The English body, or the one in the member's language when it is one of `others` (parameters
    `sms_body`, `sms_ur` …)."""
    english = bindparam(f"{kind}_body", type_=Text)
    if not others:
        return english
    return case(*((Member.language == code, bindparam(f"{kind}_{code}", type_=Text)) for code in others), else_=english)


@cache
def _insert_deliveries(update: bool, urgent: bool, others: tuple[str, ...]):
    """INSERT … SELECT of one street's deliveries, with parameters; one statement for each kind of alert and
    set of languages other than English among its recipients, built once."""
    is_call = Member.alerts == AlertChannel.CALL
    already = exists().where(and_(Delivery.report_id == bindparam("report_id"), Delivery.member_id == Member.id))
    if not update:
        wanted = true()
    elif not urgent:  # calls stay rare: an update rings a call member only when urgent, and never past
        wanted = ~is_call  # MAX_CALLS_PER_INCIDENT; other updates wait for them on the voice menu (2, latest alerts)
    else:
        wanted = or_(~is_call, calls_in_incident(bindparam("incident_id"), Member.id) < MAX_CALLS_PER_INCIDENT)
    rows = (
        core_select(
            bindparam("report_id", type_=Integer),
            Member.id,
            bindparam("street_id", type_=Integer),
            Member.phone,
            case((is_call, literal(Channel.CALL.value)), else_=literal(Channel.SMS.value)),
            case((is_call, _body("call", others)), else_=_body("sms", others)),
            case((or_(*(Member.language == code for code in others)), Member.language), else_=literal(translations.DEFAULT)) if others
            else literal(translations.DEFAULT),
            literal(urgent),
            literal(DeliveryState.QUEUED.value),
            literal(0),
            case((is_call, bindparam("call_at", type_=UTCDateTime)), else_=bindparam("now", type_=UTCDateTime)),
            literal(False),
            bindparam("now", type_=UTCDateTime),
            bindparam("now", type_=UTCDateTime),
        )
        .select_from(Membership)
        .join(Member, Member.id == Membership.member_id)
        .where(Membership.street_id == bindparam("street_id"), _RECIPIENTS, ~already, wanted)
    )
    return Prebuilt(insert(Delivery.__table__).from_select(COLUMNS, rows))


def write_deliveries(*, session: Session, config, report: Report, streets: list[Street], now: datetime, spoken_in=None,
                     ref: str | None = None) -> int:
    """One INSERT … SELECT a street; a member of two streets is written once (NOT EXISTS). The alert is
    made in each language of `spoken_in` (the recipients'; all when not given), the frame translated and
    the resident's words as written. An update names its incident: `ref`, or read from the incident."""
    local_time = report.created_at.astimezone(config.timezone)
    text = phones.scrub(report.text or "", report.phone) if report.phone else (report.text or "")
    update = report.kind == ReportKind.UPDATE and report.incident_id is not None
    if not update:
        ref = report.ref
    elif ref is None:
        ref = f"R{session.get(Incident, report.incident_id).report_id}"
    others = tuple(code for code in translations.TRANSLATED if spoken_in is None or code in spoken_in)
    statement = _insert_deliveries(update, bool(report.urgent), others)
    params = {
        **_reporter(report), "report_id": report.id, "incident_id": report.incident_id, "now": now,
        "call_at": call_release_time(config, now, report.urgent),
    }
    connection = session.connection()
    total = 0
    for street in streets:
        if update and not report.urgent:  # rings no one (_insert_deliveries): its call text is never used
            sms = translations.each(lambda: messages.update_alert(ref, local_time, text, urgent=report.urgent), only=others)
            call = dict.fromkeys(sms, "")
        elif update:
            sms = translations.each(lambda: messages.update_alert(ref, local_time, text, urgent=report.urgent), only=others)
            call = translations.each(lambda: messages.update_call(config.scheme_name, street.name, local_time, text), spoken=True, only=others)
        else:
            sms = translations.each(lambda: messages.broadcast(street.name, ref, local_time, text, urgent=report.urgent), only=others)
            call = translations.each(lambda: messages.alert_call(config.scheme_name, street.name, local_time, text), spoken=True, only=others)
        bodies = {"sms_body": sms[translations.DEFAULT], "call_body": call[translations.DEFAULT]}
        bodies |= {f"sms_{code}": sms[code] for code in others} | {f"call_{code}": call[code] for code in others}
        total += statement.run(connection, {**params, "street_id": street.id, **bodies})
    return total


def calls_in_incident(incident_id: int, member_id_column):
    """How many alert calls a member has had (or has queued) for one incident: a correlated count."""
    earlier, its_report = aliased(Delivery), aliased(Report)
    return (
        core_select(func.count(earlier.id))
        .join(its_report, its_report.id == earlier.report_id)
        .where(
            its_report.incident_id == incident_id, earlier.member_id == member_id_column,
            earlier.channel == Channel.CALL.value, earlier.state != DeliveryState.CANCELLED.value,
        )
        .scalar_subquery()
    )


for _update in (False, True):  # the English-only statements, the usual case, built at import
    for _urgent in (False, True):
        _insert_deliveries(_update, _urgent, ())


def expand_pending(*, session: Session, config, limit: int = 5, now: datetime | None = None) -> int:
    """Write the deliveries of marked broadcasts, each in its own transaction; safe with two workers
    (the UPDATE … WHERE fanout_pending claims the report; the loser updates no row)."""
    done = 0
    ids = session.exec(select(Report.id).where(Report.fanout_pending == True).order_by(Report.id).limit(limit)).all()  # noqa: E712
    for report_id in ids:
        claimed = session.execute(
            update(Report).where(Report.id == report_id, Report.fanout_pending == True)  # noqa: E712
            .values(fanout_pending=False).execution_options(synchronize_session=False)
        ).rowcount
        if claimed:
            report = session.get(Report, report_id)
            streets = list(session.exec(
                select(Street).join(ReportStreet, ReportStreet.street_id == Street.id).where(ReportStreet.report_id == report_id)
            ))
            write_deliveries(session=session, config=config, report=report, streets=streets, now=now or utcnow())
            done += 1
        session.commit()
    return done

"""An inbound SMS, read once: a keyword (JOIN, STOP, HELP …) or a report. Returns the reply text."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, and_, bindparam, insert, or_, true
from sqlalchemy import select as core_select
from sqlmodel import Session, func

from hotline import messages, translations
from hotline.coordination import commands
from hotline.db import Prebuilt, UTCDateTime, utcnow
from hotline.models import AlertChannel, Coordinator, InboundEvent, Member, Membership, MembershipStatus, Report, Street
from hotline.reports import incidents, intake
from hotline.residents import languages, members, streets

STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
START_WORDS = {"START", "UNSTOP", "YES"}
HELP_WORDS = {"HELP", "INFO"}
WHOLE_MESSAGE = STOP_WORDS | START_WORDS | HELP_WORDS | {"LEAVE", "CALL ME", "TEXT ME", "LANGUAGE"}
WITH_ARGUMENT = {"JOIN", "URGENT", "LANGUAGE"}
log = logging.getLogger(__name__)


@dataclass
class Reply:
    text: str | None  # None: answer with an empty TwiML response
    duplicate: bool = False  # this MessageSid was handled before; nothing changed now
    queued: int = 0  # deliveries written to the outbox, so the dispatcher can be woken


def parse(body: str) -> tuple[str | None, str]:
    """(keyword, argument). Keywords count only as the whole message, bar case, spaces and trailing
    punctuation, as Twilio's opt-out handling does; JOIN, URGENT and LANGUAGE take the rest as their argument."""
    tidy = " ".join((body or "").split())
    whole = re.sub(r"[\s.!?,;:'\"]+$", "", tidy).upper()
    if whole in WHOLE_MESSAGE:
        return whole, ""
    first, _, rest = tidy.partition(" ")
    if re.sub(r"[.!?,;:]+$", "", first).upper() in WITH_ARGUMENT:
        return re.sub(r"[.!?,;:]+$", "", first).upper(), rest.strip()
    return None, tidy


def _is_member_expression():
    """A coordinator's registered phone, or an active or pending member who joined before the hour the caps
    count: within it, a flood of spoofed JOINs (to an open street, too) would make its senders members."""
    membership = (
        core_select(Membership.id)
        .join(Member, Member.id == Membership.member_id)
        .where(
            Member.phone == bindparam("phone"),
            or_(Membership.status == MembershipStatus.ACTIVE.value, Membership.status == MembershipStatus.PENDING.value),
            Membership.joined_at <= bindparam("joined_before", type_=UTCDateTime),
        )
    )
    coordinator = core_select(Coordinator.id).where(Coordinator.phone == bindparam("phone"))
    return or_(membership.exists(), coordinator.exists())


def _context_statement():
    """One round trip before handling: this MessageSid's earlier answer if any, the hour's replies (all, and this
    number's), each count stopping at the cap it is compared with, whether the sender counts as a member for the
    caps (`_is_member_expression`); and the sender as a member with their active streets (one row a street; NULLs for a
    stranger), which a text that is not a keyword needs next."""
    events = InboundEvent.__table__.c
    hour_ago = bindparam("hour_ago", type_=UTCDateTime)

    def replied(limit: str, *where):
        rows = (
            core_select(events.created_at)
            .where(events.kind == "sms", events.created_at >= hour_ago, events.reply.is_not(None), *where)
            .limit(bindparam(limit, type_=Integer))
            .subquery()
        )
        return core_select(func.count()).select_from(rows).scalar_subquery()

    seen = core_select(events.key).where(events.key == bindparam("key"))
    context = core_select(
        seen.exists().label("seen"),
        core_select(events.reply).where(events.key == bindparam("key")).scalar_subquery().label("reply"),
        replied("all_cap").label("answered"),
        replied("own_cap", events.phone == bindparam("phone")).label("own"),
        _is_member_expression().label("is_member"),
    ).subquery()
    member = (
        core_select(Member.id.label("member_id"), Member.language, Street.id.label("street_id"), Street.name, Street.moderated)
        .select_from(Member)
        .outerjoin(Membership, and_(Membership.member_id == Member.id, Membership.status == MembershipStatus.ACTIVE.value))
        .outerjoin(Street, Street.id == Membership.street_id)
        .where(Member.phone == bindparam("phone"))
        .subquery()
    )
    return core_select(context, member).select_from(context.outerjoin(member, true())).order_by(member.c.name)


_CONTEXT = Prebuilt(_context_statement())
_INSERT_EVENT = Prebuilt(insert(InboundEvent.__table__), columns=["key", "kind", "phone", "created_at", "reply"])


def receive_sms(*, session: Session, config, sender: str, body: str, sid: str, now: datetime | None = None) -> Reply:
    """Handle one inbound SMS inside the caller's transaction; a repeated MessageSid returns the first reply.

    The event row is written last, with the reply: a concurrent twin of this request then fails on
    its primary key at commit and rolls back whole, so the effect happens once either way.
    """
    key = f"sms:{sid}"
    now = now or utcnow()
    connection = session.connection()
    rows = _CONTEXT.rows(connection, {
        "key": key, "phone": sender, "hour_ago": now - timedelta(hours=1),
        "all_cap": max(config.max_replies_per_hour_total, 0), "own_cap": max(config.max_replies_per_hour, 0),
        "joined_before": now - timedelta(hours=1),
    })
    seen, earlier, answered, own, is_member = rows[0][:5]
    if seen:
        return Reply(earlier, duplicate=True)
    # Who is a member matters only once strangers are no longer answered; it is asked before handling (with the
    # context): a stranger's JOIN makes them pending.
    member = answered >= _strangers_cap(config) and bool(is_member)
    reply = _handle(session, config, sender, body, now, _sender(rows))
    if reply.text is not None and _over_reply_cap(config, own=own, answered=answered, member=member):
        reply.text = None  # still acted on and logged; only the answer is withheld (each costs an SMS)
    _INSERT_EVENT.run(connection, {"key": key, "kind": "sms", "phone": sender, "created_at": now, "reply": reply.text})
    return reply


def salvage(*, session: Session, sender: str, body: str, sid: str) -> str | None:
    """When handling a text failed (a bug): keep its words as a report for the coordinators (reason "error"), and
    the apology, in the sender's language, as this MessageSid's answer; a retry of it gets the same answer (none,
    if a reply cap withheld it)."""
    event = session.get(InboundEvent, f"sms:{sid}")
    if event is not None:
        return event.reply
    with translations.speaking(languages.of_phone(session, sender)):
        sorry = messages.sorry_try_later()
    session.add(InboundEvent(key=f"sms:{sid}", kind="sms", phone=sender, reply=sorry))
    session.add(Report(phone=sender, text=body[:intake.MAX_TEXT] or None, reason="error"))
    return sorry


def _strangers_cap(config) -> int:
    return config.max_replies_per_hour_total - config.member_reply_reserve


def _over_reply_cap(config, *, own: int, answered: int, member: bool) -> bool:
    """Each reply is an SMS we pay for, sent to whatever number the message claims to come from: cap them
    per number, and in total, so a flood from many (spoofed) numbers cannot run up the bill either.

    Members come first: strangers are answered only while the hour's replies are below the total minus
    the members' reserve (HOTLINE_REPLIES_RESERVED_FOR_MEMBERS, a fifth by default), members and
    coordinators up to the total itself. A flood of strangers then leaves the reserve to the scheme's
    own people, and the bill is bounded by the total whoever sends. Concurrent webhooks may each see the
    count just under a cap: it is exceeded by at most that many. `own` and `answered` are the hour's
    replies to this number and to all, counted (up to their caps) before the text was handled."""
    if own >= config.max_replies_per_hour:
        return True
    cap = config.max_replies_per_hour_total if member else _strangers_cap(config)
    if answered >= cap:
        _warn_cap_reached(cap, "members'" if member else "strangers'")
        return True
    return False


_CAP_WARNED: dict[str, int] = {}  # whose cap → the hour (since the epoch) this process last said so


def _warn_cap_reached(cap: int, who: str, *, clock=time.time) -> None:
    """Once an hour for each cap, not once a text: a flood of thousands must not write thousands of lines."""
    hour = int(clock() // 3600)
    if _CAP_WARNED.get(who) != hour:
        _CAP_WARNED[who] = hour
        log.warning("the hotline's cap of %d replies an hour for %s texts is reached: acting on them without answering"
                    " (said once an hour)", cap, who)


@dataclass
class Sender:
    """A member texting something that is not a keyword: their id and active streets (read with the context)."""

    id: int
    language: str
    streets: list[intake.StreetRef]


def _sender(rows: list[tuple]) -> Sender | None:
    """The member and their active streets, from the context's rows (columns 5 on)."""
    if rows[0][5] is None:
        return None
    return Sender(rows[0][5], rows[0][6], [intake.StreetRef(*row[7:]) for row in rows if row[7] is not None])


def _handle(session: Session, config, sender: str, body: str, now: datetime, member: Sender | None) -> Reply:
    """Keywords stay English whatever the language; every reply is in the sender's."""
    keyword, argument = parse(body)
    if keyword == "LANGUAGE" and argument and translations.choice(argument) is None:
        keyword, argument = None, " ".join(body.split())  # "Language they used was aggressive": a report, never lost to a keyword
    if keyword in WHOLE_MESSAGE or keyword == "JOIN":
        return _keyword(session, config, sender, keyword, argument, now)
    with translations.speaking(member.language if member else None):
        return _message(session, config, sender, member, keyword, argument, body, now)


def _message(session: Session, config, sender: str, member: Sender | None, keyword: str | None, argument: str, body: str,
             now: datetime) -> Reply:
    """A coordinator's command, or a report, an update or an acknowledgement."""
    command = commands.handle(session=session, config=config, sender=sender, body=body, now=now)
    if command is not None:
        return Reply(command.text, queued=command.queued)
    if keyword == "URGENT" and not argument:
        return Reply(messages.urgent_needs_text())
    if not argument.strip():
        return Reply(messages.empty_report())
    if member is not None and keyword is None and incidents.is_acknowledgement(argument):
        incidents.acknowledge(session, sender, how="sms", now=now)
        return Reply(None)  # "seen": recorded against their alert, never broadcast, never answered (a reply costs an SMS)
    urgent = keyword == "URGENT"
    if member is not None and member.streets:
        prefixed = incidents.ref_prefix(argument)
        if prefixed is not None:
            incident = incidents.of_report(session, prefixed[0])
            if incident is not None and incident.open:
                return _update(session, config, sender, member, incident, prefixed[1], urgent=urgent, now=now)
            reply = _report(session, config, sender, member, argument, urgent=urgent, now=now)
            reply.text = messages.closed_so_new_report(f"R{prefixed[0]}", reply.text)
            return reply
        incident = incidents.followed(session, config, member, now)
        if incident is not None:
            return _update(session, config, sender, member, incident, argument, urgent=urgent, now=now)
    return _report(session, config, sender, member, argument, urgent=urgent, now=now)


def _keyword(session: Session, config, sender: str, keyword: str, argument: str, now: datetime) -> Reply:
    member = members.find(session, sender)
    if keyword == "LANGUAGE" and argument:  # a choice (anything else was made a report before)
        member = member or members.get_or_create(session, sender)
        languages.set_language(session, member, translations.choice(argument))
    with translations.speaking(member.language if member else None):
        return _answer_keyword(session, config, sender, member, keyword, argument, now)


def _answer_keyword(session: Session, config, sender: str, member: Member | None, keyword: str, argument: str, now: datetime) -> Reply:
    scheme = config.scheme_name
    if keyword == "LANGUAGE":
        return Reply(messages.language_set(scheme) if argument else messages.language_choices())
    if keyword in STOP_WORDS:
        members.opt_out(session, sender, now=now)
        return Reply(messages.opted_out(scheme))
    if keyword in START_WORDS:
        member = members.opt_in(session, sender)
        return Reply(messages.opted_in(scheme, [s.name for s in members.active_streets(session, member)]))
    if keyword in HELP_WORDS:
        return Reply(messages.help_text(scheme))
    if keyword == "JOIN":
        return Reply(_join(session, sender, argument, now))
    return Reply(_member_setting(session, config, member, keyword))


def _update(session: Session, config, sender: str, member: Sender, incident, text: str, *, urgent: bool, now: datetime) -> Reply:
    outcome = intake.submit(
        session=session, config=config, phone=sender, text=text, member=member, urgent=urgent, incident=incident,
        streets=member.streets, now=now,
    )
    ref = incident.ref
    replies = {
        "sent": lambda: messages.update_ack(ref, outcome.recipients),
        "held": lambda: messages.update_held(ref),
        "over_hour": lambda: messages.update_over_limit(ref, config.max_reports_per_hour, "an hour"),
        "over_day": lambda: messages.update_over_limit(ref, config.max_reports_per_day, "a day"),
        "duplicate": lambda: messages.update_duplicate(ref),
    }
    return Reply(replies[outcome.kind](), queued=outcome.recipients + outcome.notified)


def _join(session: Session, sender: str, argument: str, now: datetime) -> str:
    if not argument:
        return messages.join_needs_street()
    try:
        street = streets.find(session, argument)
    except streets.AmbiguousStreet as exc:
        return messages.join_ambiguous(exc.candidates)
    except streets.StreetNotFound as exc:
        return messages.join_unknown(exc.candidates)
    member = members.get_or_create(session, sender)
    before = members.memberships(session, member, MembershipStatus.ACTIVE)
    if any(s.id == street.id for _, s in before):
        return messages.already_member(street.name)
    membership = members.join(session, member, street, now=now)
    if member.opted_out:
        return messages.join_while_opted_out(street.name)
    if membership.status == MembershipStatus.ACTIVE:
        return messages.join_active(street.name)
    return messages.join_pending(street.name)


def _member_setting(session: Session, config, member: Member | None, keyword: str) -> str:
    if member is None or not members.memberships(session, member, MembershipStatus.ACTIVE, MembershipStatus.PENDING):
        return messages.not_a_member(config.scheme_name)
    if keyword == "LEAVE":
        return messages.left(members.leave(session, member))
    if keyword == "CALL ME":
        members.set_alerts(session, member, AlertChannel.CALL)
        return messages.alerts_by_call()
    members.set_alerts(session, member, AlertChannel.SMS)
    return messages.alerts_by_text()


def _report(session: Session, config, sender: str, member: Sender | None, text: str, *, urgent: bool, now: datetime) -> Reply:
    outcome = intake.submit(
        session=session, config=config, phone=sender, text=text, member=member, urgent=urgent,
        streets=member.streets if member else [], now=now,
    )
    ref = outcome.report.ref
    replies = {
        "sent": lambda: messages.report_ack(ref, outcome.recipients),
        "held": lambda: messages.report_held(ref),
        "over_hour": lambda: messages.over_hourly_limit(ref, config.max_reports_per_hour),
        "over_day": lambda: messages.over_daily_limit(ref, config.max_reports_per_day),
        "duplicate": lambda: messages.duplicate_report(ref),
        "pending": lambda: messages.logged_while_pending(
            [s.name for _, s in members.memberships(session, member, MembershipStatus.PENDING)]
        ),
        "stranger": lambda: messages.logged_for_stranger(config.scheme_name),
    }
    return Reply(replies[outcome.kind](), queued=outcome.recipients + outcome.notified)

"""Keeping only what the scheme may keep: expiring unanswered JOINs, redacting old reports, erasing opted-out
numbers, forgetting what finished calls left behind and status callbacks that never found their message.

Sightings are criminal-offence data under UK GDPR. After HOTLINE_RETENTION_DAYS a report keeps its row
(street, time, channel, state, delivery counts: the log's and the overview's numbers stay right) but
loses what it said, its recording, its reporter's number, the alert bodies sent for it and the number plates
it named (sightings). A number that opted out and stayed out for ERASE_OPTED_OUT_AFTER is removed everywhere
it was stored, and the plates its reports named are forgotten with it.
Each function changes rows set-wise and leaves the commit to its caller (the job).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, update
from sqlmodel import Session, select

from hotline.models import (
    CallDraft,
    Coordinator,
    Delivery,
    DeliveryAttempt,
    InboundEvent,
    Member,
    Membership,
    MembershipStatus,
    Report,
    ReportState,
    Sighting,
    SimulatedMessage,
    UnmatchedStatus,
)

ERASE_OPTED_OUT_AFTER = timedelta(days=30)
ERASED_PHONE = ""  # Delivery.phone cannot be NULL; an empty number masks as "—"
FORGET_CALLS_AFTER = timedelta(days=1)  # Twilio ends every call within four hours
FORGET_UNMATCHED_AFTER = timedelta(days=1)  # a callback that beat its send's commit is matched within seconds


def _run(session: Session, statement) -> int:
    # preserve_rowcount: psycopg reports -1 for some statements unless asked to keep the count.
    return session.execute(statement.execution_options(synchronize_session=False, preserve_rowcount=True)).rowcount


def expire_pending(*, session: Session, config, now: datetime) -> int:
    """JOINs nobody approved within HOTLINE_PENDING_DAYS become `expired`; the resident may JOIN again."""
    cutoff = now - timedelta(days=config.pending_days)
    return _run(
        session,
        update(Membership)
        .where(Membership.status == MembershipStatus.PENDING.value, Membership.joined_at < cutoff)
        .values(status=MembershipStatus.EXPIRED.value, decided_at=now),
    )


def forget_finished_calls(*, session: Session, now: datetime) -> dict:
    """Drafts and replayable answers of calls that have surely ended: they may hold what a caller said."""
    cutoff = now - FORGET_CALLS_AFTER
    drafts = _run(session, delete(CallDraft).where(CallDraft.updated_at < cutoff))
    events = _run(
        session,
        delete(InboundEvent).where(InboundEvent.key >= "call:", InboundEvent.key < "call;", InboundEvent.created_at < cutoff),
    )
    return {"drafts": drafts, "call_steps": events}


def expire_unmatched_statuses(*, session: Session, now: datetime) -> int:
    """Status callbacks kept for a SID we never recorded (every inbound call's, when the console's "call
    status changes" points at /twilio/status): after a day no send of ours will claim them."""
    return _run(session, delete(UnmatchedStatus).where(UnmatchedStatus.received_at < now - FORGET_UNMATCHED_AFTER))


def redact_old_reports(*, session: Session, config, now: datetime) -> dict:
    """Blank what old reports said (text or transcript, recording, reporter's number, alert bodies) and delete the
    plates they named; keep the report rows."""
    cutoff = now - timedelta(days=config.retention_days)
    old = select(Report.id).where(Report.created_at < cutoff, Report.redacted_at.is_(None))
    ids = list(session.exec(old))
    deliveries = sightings = 0
    for start in range(0, len(ids), 500):
        batch = ids[start : start + 500]
        deliveries += _run(session, update(Delivery).where(Delivery.report_id.in_(batch)).values(body=""))
        sightings += _run(session, delete(Sighting).where(Sighting.report_id.in_(batch)))
        _run(
            session,
            # The recording itself is deleted at Twilio by the delete_recordings job, which then drops the link.
            update(Report).where(Report.id.in_(batch)).values(text=None, phone=None, member_id=None, redacted_at=now),
        )
    simulated = _run(session, delete(SimulatedMessage).where(SimulatedMessage.created_at < cutoff))
    # Which number texted what SID and what we answered: needed for Twilio's retries and the hourly reply caps,
    # not for months, and it holds numbers (strangers' too) that the reports above no longer show.
    events = _run(session, delete(InboundEvent).where(InboundEvent.created_at < cutoff))
    return {"reports": len(ids), "deliveries": deliveries, "sightings": sightings, "simulated": simulated, "events": events}


def recordings_to_delete(*, session: Session, config, now: datetime, limit: int = 200) -> list[tuple[int, str]]:
    """(report id, recording URL) of recordings the hotline no longer keeps: past retention, of a dropped
    report (a coordinator decided it was nothing), or of a reporter whose number was erased."""
    cutoff = now - timedelta(days=config.retention_days)
    query = (
        select(Report.id, Report.recording_url)
        .where(
            Report.recording_url.is_not(None),
            or_(Report.created_at < cutoff, Report.state == ReportState.DROPPED.value, Report.phone.is_(None)),
        )
        .order_by(Report.id)
        .limit(limit)
    )
    return [(report_id, url) for report_id, url in session.exec(query)]


def recording_deleted(*, session: Session, report_id: int, url: str) -> None:
    """The recording is gone where it was kept: drop the link (unless the row changed meanwhile)."""
    _run(session, update(Report).where(Report.id == report_id, Report.recording_url == url).values(recording_url=None))


def erase_opted_out(*, session: Session, now: datetime) -> int:
    """Remove every trace of numbers opted out for ERASE_OPTED_OUT_AFTER: member, memberships, the number
    on their reports and deliveries, the plates their reports named. The rows of reports and deliveries stay."""
    staff = select(Coordinator.phone).where(Coordinator.phone.is_not(None))  # their opt-out must outlive 30 days
    gone = list(
        session.exec(
            select(Member.id, Member.phone).where(Member.opted_out_at < now - ERASE_OPTED_OUT_AFTER, Member.phone.not_in(staff))
        )
    )
    for start in range(0, len(gone), 500):
        ids = [member_id for member_id, _ in gone[start : start + 500]]
        numbers = [phone for _, phone in gone[start : start + 500]]
        _run(
            session,
            update(Delivery)
            .where(or_(Delivery.member_id.in_(ids), Delivery.phone.in_(numbers)))
            .values(member_id=None, phone=ERASED_PHONE, error_message=None),  # Twilio's messages name numbers
        )
        erased_deliveries = select(Delivery.id).where(Delivery.member_id.is_(None), Delivery.phone == ERASED_PHONE)
        _run(session, update(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(erased_deliveries)).values(error_message=None))
        theirs = select(Report.id).where(or_(Report.member_id.in_(ids), Report.phone.in_(numbers)))
        _run(session, delete(Sighting).where(Sighting.report_id.in_(theirs)))
        _run(
            session,
            update(Report).where(or_(Report.member_id.in_(ids), Report.phone.in_(numbers))).values(member_id=None, phone=None),
        )
        _run(session, delete(SimulatedMessage).where(SimulatedMessage.to.in_(numbers)))
        _run(session, delete(InboundEvent).where(InboundEvent.phone.in_(numbers)))  # texts and call steps
        _run(session, delete(CallDraft).where(CallDraft.phone.in_(numbers)))
        _run(session, delete(Membership).where(Membership.member_id.in_(ids)))
        _run(session, delete(Member).where(Member.id.in_(ids)))
    return len(gone)

"""The tables: streets and their members, reports, the outbox of deliveries, coordinators, events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy import text as sql
from sqlmodel import Field, SQLModel

from hotline.db import UTCDateTime, utcnow


def _when(**kw):
    return Field(sa_type=UTCDateTime, **kw)


def _fk(target: str, *, nullable: bool = False, ondelete: str = "CASCADE", index: bool = True):
    return Field(
        default=None,
        sa_column=Column(Integer, ForeignKey(target, ondelete=ondelete), nullable=nullable, index=index),
    )


class AlertChannel(StrEnum):
    SMS = "sms"  # alerts arrive as text messages
    CALL = "call"  # alerts arrive as an automated phone call


class MembershipStatus(StrEnum):
    PENDING = "pending"  # asked to join, waiting for a coordinator
    ACTIVE = "active"  # gets alerts and may report
    LEFT = "left"  # texted LEAVE or was removed
    REJECTED = "rejected"  # a coordinator said no
    EXPIRED = "expired"  # nobody approved it in time


class ReportState(StrEnum):
    SENT = "sent"  # broadcast: deliveries written to the outbox
    HELD = "held"  # waiting for a coordinator (moderated street or voice recording)
    DROPPED = "dropped"  # a coordinator decided not to send it
    NOT_BROADCAST = "not_broadcast"  # logged only: stranger, pending member, over a limit, duplicate


class DeliveryState(StrEnum):
    QUEUED = "queued"  # in our outbox, waiting for its turn (next_attempt_at)
    SENDING = "sending"  # claimed by a dispatcher until lease_until
    ACCEPTED = "accepted"  # Twilio took it and gave a SID; not yet handed to the network
    CALLING = "calling"  # an alert call is placed and has not ended yet
    SENT = "sent"  # handed to the network
    DELIVERED = "delivered"  # the handset got it / the call was answered
    UNDELIVERED = "undelivered"  # the network could not deliver it, for good
    FAILED = "failed"  # Twilio refused it or gave up
    CANCELLED = "cancelled"  # not sent: the recipient opted out or the report was dropped first


FINAL_DELIVERY_STATES = {
    DeliveryState.DELIVERED,
    DeliveryState.UNDELIVERED,
    DeliveryState.FAILED,
    DeliveryState.CANCELLED,
}


class Channel(StrEnum):
    SMS = "sms"  # came in or goes out as a text
    CALL = "call"  # came in or goes out as a phone call
    WEB = "web"  # came from a coordinator's page (an all-clear by its button); never a delivery's channel


class ReportKind(StrEnum):
    REPORT = "report"  # a sighting: opens an incident when it is broadcast
    UPDATE = "update"  # a follow-up of an open incident, sent as "Update R42 …" to the incident's streets
    ALL_CLEAR = "all_clear"  # a coordinator's all-clear, sent to everyone the incident reached; closes it


class Outcome(StrEnum):
    POLICE_INFORMED = "police_informed"  # the police were told (a crime reference may be in the note)
    RESOLVED = "resolved"  # sorted out: found, returned, explained
    FALSE_ALARM = "false_alarm"  # nothing was wrong after all
    NO_FURTHER_ACTION = "no_further_action"  # nothing more will be done


class Street(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(120), nullable=False, unique=True))
    code: int = Field(sa_column=Column(Integer, nullable=False, unique=True))
    aliases: list[str] = Field(default_factory=list, sa_type=JSON)
    postcodes: list[str] = Field(default_factory=list, sa_type=JSON)
    open: bool = False  # open streets take JOINs at once; others wait for approval
    moderated: bool = False  # reports wait for a coordinator before they go out
    created_at: datetime = _when(default_factory=utcnow)


class Member(SQLModel, table=True):
    """One phone number; it can belong to several streets through Membership."""

    id: int | None = Field(default=None, primary_key=True)
    phone: str = Field(sa_column=Column(String(20), nullable=False, unique=True))
    name: str | None = Field(default=None, max_length=120)
    alerts: str = Field(default=AlertChannel.SMS, sa_type=String(8))
    opted_out_at: datetime | None = _when(default=None)
    invalid_at: datetime | None = _when(default=None)  # Twilio said the number cannot be texted (21211)
    check_on_me: bool = False  # a coordinator asked to be told when they do not confirm an urgent alert
    # ISO 639-1 (hotline/translations): what the hotline writes and says to them; their own words pass as written
    language: str = Field(default="en", sa_column=Column(String(8), nullable=False, server_default="en"))
    created_at: datetime = _when(default_factory=utcnow)

    @property
    def opted_out(self) -> bool:
        return self.opted_out_at is not None


class Membership(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("member_id", "street_id"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = _fk("member.id")
    street_id: int = _fk("street.id")
    status: str = Field(default=MembershipStatus.PENDING, sa_type=String(12), index=True)
    joined_at: datetime = _when(default_factory=utcnow)
    decided_at: datetime | None = _when(default=None)


class Report(SQLModel, table=True):
    """Everything a resident sent that was not a command: a sighting, broadcast or only logged."""

    __table_args__ = (Index("ix_report_member_created", "member_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    member_id: int | None = _fk("member.id", nullable=True, ondelete="SET NULL")
    phone: str | None = Field(default=None, sa_type=String(20))  # the reporter, E.164; never broadcast
    channel: str = Field(default=Channel.SMS, sa_type=String(8))
    text: str | None = Field(default=None, sa_type=Text)
    recording_url: str | None = Field(default=None, sa_type=Text)
    urgent: bool = False
    state: str = Field(default=ReportState.NOT_BROADCAST, sa_type=String(16), index=True)
    reason: str | None = Field(default=None, sa_type=String(40))  # why it was not broadcast
    created_at: datetime = _when(default_factory=utcnow, index=True)
    decided_at: datetime | None = _when(default=None)
    redacted_at: datetime | None = _when(default=None)
    fanout_pending: bool = Field(default=False, index=True)  # a big broadcast whose deliveries the dispatcher writes
    kind: str = Field(default=ReportKind.REPORT, sa_type=String(12), index=True)
    checked_at: datetime | None = _when(default=None)  # an urgent alert: when its "check on me" members were looked at
    # The incident it opened or follows. No foreign key: Incident.report_id points back, and a cycle of keys
    # would need deferred constraints on both databases; incidents are never deleted.
    incident_id: int | None = Field(default=None, index=True)

    @property
    def ref(self) -> str:
        return f"R{self.id}"


class Incident(SQLModel, table=True):
    """What a broadcast report opens: its updates and all-clear follow it, named by the opening report's ref,
    until an all-clear or a day without activity closes it. Coordinators triage it and record its outcome."""

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(sa_column=Column(Integer, ForeignKey("report.id", ondelete="CASCADE"), nullable=False, unique=True))
    opened_at: datetime = _when(default_factory=utcnow)
    last_activity_at: datetime = _when(default_factory=utcnow, index=True)  # its last report, update or all-clear
    closed_at: datetime | None = _when(default=None, index=True)
    closed_by: str | None = Field(default=None, sa_type=String(12))  # all_clear | quiet (a day without activity)
    cleared_by_id: int | None = _fk("coordinator.id", nullable=True, ondelete="SET NULL", index=False)  # whose all-clear
    taken_by_id: int | None = _fk("coordinator.id", nullable=True, ondelete="SET NULL", index=False)  # who is on it
    taken_at: datetime | None = _when(default=None)
    outcome: str | None = Field(default=None, sa_type=String(20))
    outcome_note: str | None = Field(default=None, sa_type=Text)
    outcome_by_id: int | None = _fk("coordinator.id", nullable=True, ondelete="SET NULL", index=False)
    outcome_at: datetime | None = _when(default=None)
    outcome_told_at: datetime | None = _when(default=None)  # the reporter was told (by SMS, or first thing on a call)

    @property
    def ref(self) -> str:
        return f"R{self.report_id}"

    @property
    def open(self) -> bool:
        return self.closed_at is None


class ReportStreet(SQLModel, table=True):
    # a street's reports straight from the index, without visiting the table (the log's street filter and scope)
    __table_args__ = (Index("ix_reportstreet_street_report", "street_id", "report_id"),)

    report_id: int = Field(
        sa_column=Column(Integer, ForeignKey("report.id", ondelete="CASCADE"), primary_key=True)
    )
    street_id: int = Field(
        sa_column=Column(Integer, ForeignKey("street.id", ondelete="CASCADE"), primary_key=True)
    )


class Delivery(SQLModel, table=True):
    """One message (SMS or alert call) to one number: the outbox row and its delivery record."""

    __table_args__ = (
        Index("ix_delivery_due", "state", "next_attempt_at"),
        UniqueConstraint("report_id", "member_id"),  # each number once per report
        # the log's delivery counts per report (and per street for a coordinator) read from the index alone
        Index("ix_delivery_report_counts", "report_id", "state", "street_id"),
        # the acknowledged ones (a few) of a report, counted without reading the table (the meeting pack's live part);
        # these two are partial on PostgreSQL only (see migration 0011)
        Index("ix_delivery_acknowledged", "report_id", "street_id", postgresql_where=sql("acknowledged_at IS NOT NULL")),
        # access.caller_trouble, on every coordinator's page: alert calls that failed in the past day (a few among millions)
        Index("ix_delivery_failed_calls", "updated_at", postgresql_where=sql("channel = 'call' AND state = 'failed'")),
        # a member's latest alerts, newest first, without reading their older ones (which incident a text follows)
        Index("ix_delivery_member_created", "member_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    report_id: int | None = _fk("report.id", nullable=True, index=False)  # ix_delivery_report_counts leads with it
    announcement_id: int | None = _fk("announcement.id", nullable=True)
    member_id: int | None = _fk("member.id", nullable=True, ondelete="SET NULL", index=False)  # ix_delivery_member_created
    street_id: int | None = _fk("street.id", nullable=True, ondelete="SET NULL", index=False)
    phone: str = Field(sa_type=String(20))
    channel: str = Field(default=Channel.SMS, sa_type=String(8))
    body: str = Field(sa_type=Text)
    language: str = Field(default="en", sa_column=Column(String(8), nullable=False, server_default="en"))  # of `body`
    urgent: bool = False
    state: str = Field(default=DeliveryState.QUEUED, sa_type=String(12))
    attempts: int = 0
    next_attempt_at: datetime = _when(default_factory=utcnow)
    lease_until: datetime | None = _when(default=None)
    needs_lookup: bool = False  # an earlier attempt may have reached Twilio: look before sending again
    sid: str | None = Field(default=None, sa_column=Column(String(40), unique=True, nullable=True))
    error_code: int | None = None
    error_message: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = _when(default_factory=utcnow)
    updated_at: datetime = _when(default_factory=utcnow)
    sent_at: datetime | None = _when(default=None)
    reconciled_at: datetime | None = _when(default=None)  # last asked of Twilio because its final callback never came
    acknowledged_at: datetime | None = _when(default=None)  # the member said they saw or heard it
    acknowledged_by: str | None = Field(default=None, sa_type=String(8))  # sms (OK, SEEN …) | call (pressed 1)


class DeliveryTally(SQLModel, table=True):
    """A settled report's deliveries to one street, counted once (hotline/reports/tally.py): the meeting pack
    adds these up instead of reading a year's deliveries row by row. Written only when nothing about those
    deliveries can change any more; deleted with the report, and moved off a deleted street with them."""

    __table_args__ = (Index("ix_deliverytally_street_created", "street_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = _fk("report.id")
    created_at: datetime = _when(index=True)  # the report's, so a period is read without joining report
    street_id: int | None = _fk("street.id", nullable=True, ondelete="SET NULL", index=False)
    deliveries: int = 0  # every one, whatever its state (all final when counted)
    delivered: int = 0
    undelivered: int = 0  # undelivered or failed
    cancelled: int = 0
    acknowledged: int = 0


class ClassifiedReport(SQLModel, table=True):
    """A report's kind for the meeting pack (vehicle, person …, hotline/reports/kinds.py), worked out once from
    its text instead of on every page. Only for texts that can no longer change (a held report's may, when it
    is released); a redacted text counts as "other" whatever was found here."""

    report_id: int = Field(sa_column=Column(Integer, ForeignKey("report.id", ondelete="CASCADE"), primary_key=True))
    kind: str = Field(sa_type=String(12))
    keywords: str = Field(sa_type=String(16))  # kinds.VERSION of the keyword list used: another list, worked out again


class DeliveryAttempt(SQLModel, table=True):
    """One try at a delivery: when, Twilio's SID, what became of it. A retry leaves the earlier tries here, so
    "did Mrs Patel get the 19:04 alert?" has an answer, and a late callback for an old SID lands on its try."""

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = _fk("delivery.id")
    number: int = 1  # the delivery's attempt count when it was made
    channel: str = Field(default=Channel.SMS, sa_type=String(8))
    sid: str | None = Field(default=None, sa_column=Column(String(40), unique=True, nullable=True))
    started_at: datetime = _when(default_factory=utcnow)
    status: str = Field(sa_type=String(20))  # accepted | calling | sent | delivered | undelivered | failed | retry | throttled
    error_code: int | None = None
    error_message: str | None = Field(default=None, sa_type=Text)  # masked (phones.mask_all)
    updated_at: datetime = _when(default_factory=utcnow)


class NumberReveal(SQLModel, table=True):
    """A coordinator was shown a whole number (a member's, or an alert's recipient's): who, whose, when.
    Residents trust that their number is not passed around; admins can see every reveal."""

    id: int | None = Field(default=None, primary_key=True)
    coordinator_id: int | None = _fk("coordinator.id", nullable=True, ondelete="SET NULL")
    member_id: int | None = _fk("member.id", nullable=True, ondelete="SET NULL")
    delivery_id: int | None = _fk("delivery.id", nullable=True, ondelete="SET NULL", index=False)
    at: datetime = _when(default_factory=utcnow, index=True)


class Escalation(SQLModel, table=True):
    """One SMS to one coordinator about an item nobody handled in time (a held report, a JOIN): kept so each
    coordinator hears about each item once."""

    __table_args__ = (UniqueConstraint("kind", "item_id", "coordinator_id"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(sa_type=String(8))  # report (held) | join (a pending membership)
    item_id: int  # Report.id or Membership.id
    coordinator_id: int = _fk("coordinator.id", index=False)
    level: int = 1  # 1: the street's coordinators; 2: the scheme's admins
    sent_at: datetime = _when(default_factory=utcnow)


_ANSWERED = sql("reply IS NOT NULL")


class InboundEvent(SQLModel, table=True):
    """A webhook we have acted on (MessageSid, or CallSid plus step): a second delivery does nothing."""

    __table_args__ = (
        Index("ix_inboundevent_phone_created", "phone", "created_at"),  # a number's texts and call steps (erasure)
        # The hourly caps on replies count answered texts only, and stop at the cap: these hold the answered ones
        # alone, so a flood past the cap (texts logged, not answered) is not read again by every later text.
        Index("ix_inboundevent_replied", "kind", "created_at", sqlite_where=_ANSWERED, postgresql_where=_ANSWERED),
        Index("ix_inboundevent_phone_replied", "phone", "kind", "created_at", sqlite_where=_ANSWERED, postgresql_where=_ANSWERED),
    )

    key: str = Field(sa_column=Column(String(80), primary_key=True))
    kind: str = Field(sa_type=String(16))
    phone: str | None = Field(default=None, sa_type=String(20))  # who sent it, for the reply cap
    reply: str | None = Field(default=None, sa_type=Text)  # what we answered, answered again on a retry
    created_at: datetime = _when(default_factory=utcnow)


class Coordinator(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_column=Column(String(254), nullable=False, unique=True))
    password_hash: str = Field(sa_type=String(255))
    is_admin: bool = False
    phone: str | None = Field(default=None, sa_column=Column(String(20), unique=True, nullable=True))
    created_at: datetime = _when(default_factory=utcnow)


class CoordinatorStreet(SQLModel, table=True):
    coordinator_id: int = Field(
        sa_column=Column(Integer, ForeignKey("coordinator.id", ondelete="CASCADE"), primary_key=True)
    )
    street_id: int = Field(
        sa_column=Column(Integer, ForeignKey("street.id", ondelete="CASCADE"), primary_key=True)
    )


class SimulatedMessage(SQLModel, table=True):
    """Simulator mode: an SMS or call that would have gone through Twilio, kept here instead."""

    id: int | None = Field(default=None, primary_key=True)
    sid: str = Field(sa_column=Column(String(40), unique=True, nullable=False))
    kind: str = Field(default=Channel.SMS, sa_type=String(8))
    to: str = Field(sa_type=String(20), index=True)
    from_: str = Field(default="", sa_type=String(40))
    body: str = Field(sa_type=Text)
    status: str = Field(default="queued", sa_type=String(16))
    created_at: datetime = _when(default_factory=utcnow)


class UnmatchedStatus(SQLModel, table=True):
    """A status callback for a SID we have not recorded yet (it beat the send's own commit)."""

    sid: str = Field(sa_column=Column(String(40), primary_key=True))
    status: str = Field(sa_type=String(20))
    error_code: int | None = None
    received_at: datetime = _when(default_factory=utcnow)


class CallDraft(SQLModel, table=True):
    """What a caller said for a report, kept between the voice menu's steps until they send or cancel it."""

    call_sid: str = Field(sa_column=Column(String(40), primary_key=True))
    phone: str | None = Field(default=None, sa_type=String(20), index=True)  # the caller, so erasure finds it
    text: str = Field(sa_type=Text)
    updated_at: datetime = _when(default_factory=utcnow)


class SimulatedPhone(SQLModel, table=True):
    """Simulator mode: a pretend phone on the /simulator page, a mobile (texts and calls) or a landline."""

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(sa_column=Column(String(20), unique=True, nullable=False))
    kind: str = Field(default="mobile", sa_type=String(8))  # mobile | landline
    label: str = Field(default="", sa_type=String(60))
    created_at: datetime = _when(default_factory=utcnow)

class AnnouncementState(StrEnum):
    SCHEDULED = "scheduled"  # waiting for send_at; release_due writes its deliveries then
    SENT = "sent"  # deliveries written to the outbox
    CANCELLED = "cancelled"  # a coordinator called it off before it went


class Announcement(SQLModel, table=True):
    """A coordinator's message to chosen streets, now or at a set time; deliveries carry its id."""

    id: int | None = Field(default=None, primary_key=True)
    text: str = Field(sa_type=Text)
    street_ids: list[int] = Field(default_factory=list, sa_type=JSON)
    send_at: datetime = _when(default_factory=utcnow, index=True)
    state: str = Field(default=AnnouncementState.SCHEDULED, sa_type=String(12), index=True)
    created_by: int | None = _fk("coordinator.id", nullable=True, ondelete="SET NULL")
    created_at: datetime = _when(default_factory=utcnow)
    sent_at: datetime | None = _when(default=None)
    recipients: int = 0  # deliveries written when it was released


class LoginFailure(SQLModel, table=True):
    """A failed web login, kept a short while so repeated guessing is slowed down."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_type=String(254), index=True)
    address: str = Field(default="", sa_type=String(64), index=True)
    at: datetime = _when(default_factory=utcnow, index=True)


class JobRun(SQLModel, table=True):
    """The last run of each scheduled job: written by the process running the jobs, read by /metrics in any."""

    job_id: str = Field(sa_column=Column(String(64), primary_key=True))
    started_at: datetime = _when()
    finished_at: datetime | None = _when(default=None)
    succeeded_at: datetime | None = _when(default=None)  # the end of the last run that raised nothing
    failures: int = 0  # runs in a row that raised; 0 after a good one
    error: str | None = Field(default=None, sa_type=Text)  # what the last failed run raised


class SendSlot(SQLModel, table=True):
    """The next moment a channel (sms, call) may send, shared by every worker process of the scheme: a worker takes
    its turns a few at a time by moving it on with one conditional UPDATE … RETURNING (delivery/ratelimit.py)."""

    channel: str = Field(sa_column=Column(String(8), primary_key=True))
    next_free: float = 0.0  # seconds since the epoch: the first turn nobody has taken yet


class Sighting(SQLModel, table=True):
    """A number plate a report names, on one of the report's streets (no street: a stranger's report).
    Criminal-offence data: only the plate, street and time, deleted with the report's text."""

    __table_args__ = (Index("ix_sighting_plate_seen", "plate", "seen_at"),)

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = _fk("report.id")
    street_id: int | None = _fk("street.id", nullable=True, ondelete="SET NULL", index=False)
    plate: str = Field(sa_type=String(8))  # normalised: AB12CDE
    seen_at: datetime = _when(index=True)  # the report's time


class WatchedPlate(SQLModel, table=True):
    """A plate coordinators asked to hear about: any report naming it is texted to them at once."""

    id: int | None = Field(default=None, primary_key=True)
    plate: str = Field(sa_column=Column(String(8), nullable=False, unique=True))  # normalised
    note: str = Field(default="", sa_type=Text)
    added_by: int | None = _fk("coordinator.id", nullable=True, ondelete="SET NULL", index=False)
    added_at: datetime = _when(default_factory=utcnow)

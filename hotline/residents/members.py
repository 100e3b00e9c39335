"""A member's life: joining streets, approval, leaving, opting out and in, how alerts reach them; and
members as coordinators manage them: approve, reject, add, move and remove, notify."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists
from sqlmodel import Session, select

from hotline import messages, translations
from hotline.db import utcnow
from hotline.delivery.quiet_hours import call_release_time
from hotline.models import (
    AlertChannel,
    Channel,
    Delivery,
    DeliveryState,
    Member,
    Membership,
    MembershipStatus,
    Street,
)
from hotline.residents.streets import Scope


def find(session: Session, phone: str) -> Member | None:
    return session.exec(select(Member).where(Member.phone == phone)).first()


def get_or_create(session: Session, phone: str, *, alerts: AlertChannel = AlertChannel.SMS) -> Member:
    member = find(session, phone)
    if member is None:
        member = Member(phone=phone, alerts=alerts)
        session.add(member)
        session.flush()
    return member


def memberships(session: Session, member: Member, *statuses: MembershipStatus) -> list[tuple[Membership, Street]]:
    query = (
        select(Membership, Street)
        .join(Street, Street.id == Membership.street_id)
        .where(Membership.member_id == member.id)
        .order_by(Street.name)
    )
    if statuses:
        query = query.where(Membership.status.in_([str(s) for s in statuses]))
    return list(session.exec(query))


def active_streets(session: Session, member: Member | None) -> list[Street]:
    if member is None:
        return []
    return [street for _, street in memberships(session, member, MembershipStatus.ACTIVE)]


def join(session: Session, member: Member, street: Street, *, now: datetime | None = None) -> Membership:
    """Pending on an approval street, active at once on an open one; rejoining after LEAVE starts again."""
    now = now or utcnow()
    membership = session.exec(
        select(Membership).where(Membership.member_id == member.id, Membership.street_id == street.id)
    ).first()
    if membership is not None and membership.status in (MembershipStatus.ACTIVE, MembershipStatus.PENDING):
        return membership
    if membership is None:
        membership = Membership(member_id=member.id, street_id=street.id)
    membership.status = MembershipStatus.ACTIVE if street.open else MembershipStatus.PENDING
    membership.joined_at = now
    membership.decided_at = now if street.open else None
    session.add(membership)
    session.flush()
    return membership


def add(session: Session, phone: str, street: Street, *, alerts: AlertChannel, active: bool) -> Membership:
    """A member added by a coordinator (CLI, web, import): active at once if they say so."""
    member = get_or_create(session, phone, alerts=alerts)
    member.alerts = alerts
    membership = join(session, member, street)
    if active:
        decide(session, membership, approve=True)
    return membership


def decide(session: Session, membership: Membership, *, approve: bool, now: datetime | None = None) -> None:
    membership.status = MembershipStatus.ACTIVE if approve else MembershipStatus.REJECTED
    membership.decided_at = now or utcnow()
    session.add(membership)


def leave(session: Session, member: Member) -> list[str]:
    """Leaves every street; returns the names of the streets left."""
    left = []
    for membership, street in memberships(session, member, MembershipStatus.ACTIVE, MembershipStatus.PENDING):
        membership.status = MembershipStatus.LEFT
        membership.decided_at = utcnow()
        session.add(membership)
        left.append(street.name)
    cancel_pending_deliveries(session, member.phone, channel=None)
    return left


def opt_out(session: Session, phone: str, *, now: datetime | None = None) -> Member:
    """STOP: never send to this number again until it opts back in, whatever Twilio's own settings."""
    member = get_or_create(session, phone)
    if member.opted_out_at is None:
        member.opted_out_at = now or utcnow()
    session.add(member)
    cancel_pending_deliveries(session, phone, channel=None)
    return member


def opt_in(session: Session, phone: str) -> Member:
    member = get_or_create(session, phone)
    member.opted_out_at = None
    session.add(member)
    return member


def set_alerts(session: Session, member: Member, alerts: AlertChannel) -> None:
    member.alerts = alerts
    session.add(member)


def cancel_pending_deliveries(session: Session, phone: str, *, channel: str | None) -> int:
    """Deliveries still in our outbox for this number will not go: used after STOP and LEAVE."""
    query = select(Delivery).where(Delivery.phone == phone, Delivery.state == DeliveryState.QUEUED)
    if channel:
        query = query.where(Delivery.channel == channel)
    cancelled = 0
    for delivery in session.exec(query):
        delivery.state = DeliveryState.CANCELLED
        delivery.updated_at = utcnow()
        session.add(delivery)
        cancelled += 1
    return cancelled


# --- members as coordinators manage them ---------------------------------------------------------


def notify(*, session: Session, config, member: Member, street: Street | None, sms: str, spoken: str,
           now: datetime | None = None) -> int:
    """Queue one message to a member (not a report's broadcast) the way they get alerts: `sms` by text, or
    `spoken` by a call that waits for the end of quiet hours like any call that is not urgent. Both are
    made by the caller in the member's language (`words_for(member)`).
    Returns 0 when they opted out or cannot be reached."""
    if member.opted_out_at or member.invalid_at:
        return 0
    now = now or utcnow()
    by_call = member.alerts == AlertChannel.CALL
    session.add(
        Delivery(member_id=member.id, street_id=street.id if street else None, phone=member.phone,
                 channel=Channel.CALL if by_call else Channel.SMS, body=spoken if by_call else sms,
                 language=translations.known(member.language),
                 state=DeliveryState.QUEUED, next_attempt_at=call_release_time(config, now, False) if by_call else now,
                 created_at=now, updated_at=now)
    )
    return 1


def approve(*, session: Session, config, membership: Membership, now: datetime | None = None) -> int:
    """Approve a pending membership and tell the member; returns the messages queued (0 or 1)."""
    if membership.status != MembershipStatus.PENDING:
        return 0
    decide(session, membership, approve=True, now=now)
    member, street = session.get(Member, membership.member_id), session.get(Street, membership.street_id)
    with translations.speaking(member.language):
        sms = messages.approved(street.name)
    with words_for(member, spoken=True):
        spoken = messages.approved_by_call(config.scheme_name, street.name)
    return notify(session=session, config=config, member=member, street=street, now=now, sms=sms, spoken=spoken)


def words_for(member: Member, *, spoken: bool = False):
    """The block in which `messages` writes to this member (for a call: what their language's voice can say)."""
    return translations.speaking_aloud(member.language) if spoken else translations.speaking(member.language)


def reject(*, session: Session, membership: Membership, now: datetime | None = None) -> bool:
    if membership.status != MembershipStatus.PENDING:
        return False
    decide(session, membership, approve=False, now=now)
    return True


def pending(session: Session, scope: Scope) -> list[tuple[Membership, Member, Street]]:
    query = (
        select(Membership, Member, Street)
        .join(Member, Member.id == Membership.member_id)
        .join(Street, Street.id == Membership.street_id)
        .where(Membership.status == MembershipStatus.PENDING)
        .order_by(Membership.joined_at)
    )
    if not scope.everything:
        query = query.where(Membership.street_id.in_(scope.street_ids or [-1]))
    return list(session.exec(query))


def member_visible(session: Session, member: Member, scope: Scope) -> bool:
    """A coordinator sees a member who is (or was, or asked to be) on one of their streets."""
    if scope.everything:
        return True
    return session.exec(
        select(exists().where(Membership.member_id == member.id, Membership.street_id.in_(scope.street_ids or [-1])))
    ).one()


def street_members(session: Session, street: Street) -> list[tuple[Membership, Member]]:
    order = [Membership.status != MembershipStatus.PENDING, Membership.status != MembershipStatus.ACTIVE, Member.phone]
    return list(
        session.exec(
            select(Membership, Member).join(Member, Member.id == Membership.member_id).where(Membership.street_id == street.id).order_by(*order)
        )
    )


def add_member(*, session: Session, phone: str, street: Street, alerts: AlertChannel, name: str | None = None) -> Membership:
    """A coordinator adds a member: active at once (they know them), even on an approval street."""
    membership = add(session, phone, street, alerts=alerts, active=True)
    if name:
        member = session.get(Member, membership.member_id)
        member.name = name[:120]
        session.add(member)
    return membership


def remove(*, session: Session, membership: Membership, now: datetime | None = None) -> None:
    """Off this one street; alerts already queued for them from it are not sent."""
    membership.status, membership.decided_at = MembershipStatus.LEFT, now or utcnow()
    session.add(membership)
    for delivery in session.exec(
        select(Delivery).where(
            Delivery.member_id == membership.member_id,
            Delivery.street_id == membership.street_id,
            Delivery.state == DeliveryState.QUEUED,
        )
    ):
        delivery.state, delivery.updated_at = DeliveryState.CANCELLED, utcnow()
        session.add(delivery)


def move(*, session: Session, membership: Membership, to: Street, now: datetime | None = None) -> Membership:
    """From one street to another, keeping the member's standing (active stays active)."""
    if membership.street_id == to.id:
        return membership
    was_active = membership.status == MembershipStatus.ACTIVE
    remove(session=session, membership=membership, now=now)
    member = session.get(Member, membership.member_id)
    target = join(session, member, to, now=now)
    if was_active and target.status == MembershipStatus.PENDING:
        decide(session, target, approve=True, now=now)
    return target

"""A member's life: joining streets, approval, leaving, opting out and in, how alerts reach them."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from hotline.db import utcnow
from hotline.models import (
    AlertChannel,
    Delivery,
    DeliveryState,
    Member,
    Membership,
    MembershipStatus,
    Street,
)


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

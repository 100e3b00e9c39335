"""Streets and members as coordinators manage them: edit streets, approve, add, move and remove members.

Used by the web pages and by coordinators' SMS commands; on top of `members.py` (a member's own life).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func
from sqlmodel import Session, select

from hotline import members, messages
from hotline.coordinators import Scope
from hotline.db import utcnow
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


class StreetError(ValueError):
    """A street's name or code is taken, or something typed for it cannot be used."""


@dataclass
class StreetFields:
    name: str
    code: int | None
    aliases: list[str]
    postcodes: list[str]
    open: bool
    moderated: bool


def split_list(text: str) -> list[str]:
    """`Clayhall, Clayhall Rd` or one per line: the words a coordinator typed, tidied, no blanks."""
    parts = (text or "").replace("\n", ",").split(",")
    return [" ".join(p.split()) for p in parts if p.strip()]


def save_street(*, session: Session, street: Street | None, fields: StreetFields) -> Street:
    """Create (street None) or edit a street; names and codes stay unique."""
    name = " ".join(fields.name.split())
    if not name:
        raise StreetError("a street needs a name")
    clash = session.exec(select(Street).where(func.lower(Street.name) == name.lower())).first()
    if clash is not None and (street is None or clash.id != street.id):
        raise StreetError(f"a street called {name!r} exists already")
    code = fields.code
    if code is None:
        code = street.code if street else (session.exec(select(func.max(Street.code))).one() or 100) + 1
    taken = session.exec(select(Street).where(Street.code == code)).first()
    if taken is not None and (street is None or taken.id != street.id):
        raise StreetError(f"street code {code} is taken by {taken.name}")
    street = street or Street(name=name, code=code)
    street.name, street.code = name, code
    street.aliases = fields.aliases
    street.postcodes = [p.upper() for p in fields.postcodes]
    street.open, street.moderated = fields.open, fields.moderated
    session.add(street)
    session.flush()
    return street


def notify(session: Session, member: Member, street: Street | None, body: str, *, now: datetime | None = None) -> int:
    """Queue one message to a member (not a report's broadcast): 0 when they opted out or cannot be reached."""
    if member.opted_out_at or member.invalid_at:
        return 0
    now = now or utcnow()
    channel = Channel.CALL if member.alerts == AlertChannel.CALL else Channel.SMS
    session.add(
        Delivery(member_id=member.id, street_id=street.id if street else None, phone=member.phone, channel=channel,
                 body=body, state=DeliveryState.QUEUED, next_attempt_at=now, created_at=now, updated_at=now)
    )
    return 1


def approve(*, session: Session, membership: Membership, now: datetime | None = None) -> int:
    """Approve a pending membership and tell the member; returns the messages queued (0 or 1)."""
    if membership.status != MembershipStatus.PENDING:
        return 0
    members.decide(session, membership, approve=True, now=now)
    member, street = session.get(Member, membership.member_id), session.get(Street, membership.street_id)
    return notify(session, member, street, messages.approved(street.name), now=now)


def reject(*, session: Session, membership: Membership, now: datetime | None = None) -> bool:
    if membership.status != MembershipStatus.PENDING:
        return False
    members.decide(session, membership, approve=False, now=now)
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
    membership = members.add(session, phone, street, alerts=alerts, active=True)
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
    target = members.join(session, member, to, now=now)
    if was_active and target.status == MembershipStatus.PENDING:
        members.decide(session, target, approve=True, now=now)
    return target


def set_alerts(*, session: Session, member: Member, alerts: AlertChannel) -> None:
    """From now on (as CALL ME / TEXT ME do): alerts already in the outbox keep their channel."""
    members.set_alerts(session, member, alerts)

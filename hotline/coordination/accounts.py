"""Coordinator accounts: passwords, login throttling, and which streets each coordinator may see."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlmodel import Session, select
from werkzeug.security import check_password_hash, generate_password_hash

from hotline.db import utcnow
from hotline.models import Coordinator, CoordinatorStreet, LoginFailure, Street
from hotline.residents.streets import Scope

MIN_PASSWORD = 8
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 5  # then that account waits out the window, whoever is guessing
MAX_FAILURES_PER_ADDRESS = 20  # then that address waits, whichever accounts it tries
DEVICE = "device:"  # LoginFailure.address of a failure from a browser this account logged in from before
_DUMMY_HASH = generate_password_hash("not a real password, only here to spend the same time")


class Throttled(Exception):
    """Too many failed logins lately; `minutes` until the next try is allowed."""

    def __init__(self, minutes: int):
        super().__init__(minutes)
        self.minutes = minutes


class AccountError(ValueError):
    """What was typed for an account cannot be used (taken email, short password …)."""


def assigned_street_ids(session: Session, coordinator: Coordinator) -> list[int]:
    return list(session.exec(select(CoordinatorStreet.street_id).where(CoordinatorStreet.coordinator_id == coordinator.id)))


def scope_of(session: Session, coordinator: Coordinator) -> Scope:
    if coordinator.is_admin:
        return Scope(None)
    return Scope(frozenset(assigned_street_ids(session, coordinator)))


def visible_streets(session: Session, scope: Scope) -> list[Street]:
    query = select(Street).order_by(Street.name)
    if not scope.everything:
        query = query.where(Street.id.in_(scope.street_ids or [-1]))
    return list(session.exec(query))


def street_choices(session: Session, scope: Scope) -> list:
    """(id, name) rows of the scope's streets by name: a filter's choices, cheap for a scheme of thousands of streets."""
    query = select(Street.id, Street.name).order_by(Street.name)
    if not scope.everything:
        query = query.where(Street.id.in_(scope.street_ids or [-1]))
    return list(session.exec(query))


def _recent_failures(session: Session, now: datetime, *conditions) -> tuple[int, datetime | None]:
    return session.exec(
        select(func.count(LoginFailure.id), func.min(LoginFailure.at)).where(LoginFailure.at > now - FAILURE_WINDOW, *conditions)
    ).one()


def _throttle(count: int, oldest: datetime | None, limit: int, now: datetime) -> None:
    if count >= limit:
        wait = (oldest + FAILURE_WINDOW - now).total_seconds() if oldest else FAILURE_WINDOW.total_seconds()
        raise Throttled(max(1, int(-(-wait // 60))))


def _check_throttle(session: Session, email: str, address: str, device: str | None, now: datetime) -> None:
    """A browser this account logged in from before (`device`, from its signed cookie) is held only to its own
    failures: an attacker guessing from the same address — every client, behind a proxy whose hops are not
    configured — or at the same account cannot lock its owner out (OWASP's device cookies). Any other
    client is held to the account's and the address's failures."""
    if device:
        _throttle(*_recent_failures(session, now, LoginFailure.email == email, LoginFailure.address == DEVICE + device),
                  MAX_FAILURES_PER_EMAIL, now)
        return
    untrusted = LoginFailure.address.not_like(DEVICE + "%")
    _throttle(*_recent_failures(session, now, LoginFailure.email == email, untrusted), MAX_FAILURES_PER_EMAIL, now)
    _throttle(*_recent_failures(session, now, LoginFailure.address == address), MAX_FAILURES_PER_ADDRESS, now)


def authenticate(*, session: Session, email: str, password: str, address: str = "", device: str | None = None,
                 now: datetime | None = None) -> Coordinator | None:
    """The coordinator whose email and password these are, or None (the failure is recorded).
    Raises Throttled, without checking the password, after too many recent failures. `device` is the id
    from a valid device cookie issued to this email at an earlier login (see _check_throttle)."""
    now = now or utcnow()
    email = (email or "").strip().lower()
    _check_throttle(session, email, address, device, now)
    person = session.exec(select(Coordinator).where(Coordinator.email == email)).first()
    # Check a hash even for an unknown email, so the answer takes as long either way.
    ok = check_password_hash(person.password_hash if person else _DUMMY_HASH, password or "")
    if person is None or not ok:
        where = (DEVICE + device) if device else address
        session.add(LoginFailure(email=email[:254], address=where[:64], at=now))
        session.execute(delete(LoginFailure).where(LoginFailure.at < now - FAILURE_WINDOW * 4))
        return None
    session.execute(delete(LoginFailure).where(LoginFailure.email == email))
    return person


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")


def create(*, session: Session, email: str, password: str, is_admin: bool, phone: str | None, street_ids: list[int]) -> Coordinator:
    email = (email or "").strip().lower()
    if "@" not in email:
        raise AccountError("that is not an email address")
    if session.exec(select(Coordinator).where(Coordinator.email == email)).first():
        raise AccountError(f"{email} is a coordinator already")
    _check_password(password)
    _check_phone_free(session, phone, None)
    person = Coordinator(email=email, password_hash=generate_password_hash(password), is_admin=is_admin, phone=phone)
    session.add(person)
    session.flush()
    set_streets(session=session, coordinator=person, street_ids=street_ids)
    return person


def _check_phone_free(session: Session, phone: str | None, coordinator_id: int | None) -> None:
    if phone:
        other = session.exec(select(Coordinator).where(Coordinator.phone == phone)).first()
        if other is not None and other.id != coordinator_id:
            raise AccountError("another coordinator has registered that phone")


def update(*, session: Session, coordinator: Coordinator, is_admin: bool, phone: str | None, street_ids: list[int], password: str | None = None) -> None:
    _check_phone_free(session, phone, coordinator.id)
    if password:
        _check_password(password)
        coordinator.password_hash = generate_password_hash(password)
    coordinator.is_admin, coordinator.phone = is_admin, phone
    session.add(coordinator)
    set_streets(session=session, coordinator=coordinator, street_ids=street_ids)


def set_streets(*, session: Session, coordinator: Coordinator, street_ids: list[int]) -> None:
    session.execute(delete(CoordinatorStreet).where(CoordinatorStreet.coordinator_id == coordinator.id))
    for street_id in sorted(set(street_ids)):
        session.add(CoordinatorStreet(coordinator_id=coordinator.id, street_id=street_id))
    session.flush()


def street_names(session: Session, coordinator: Coordinator) -> list[str]:
    return list(
        session.exec(
            select(Street.name)
            .join(CoordinatorStreet, CoordinatorStreet.street_id == Street.id)
            .where(CoordinatorStreet.coordinator_id == coordinator.id)
            .order_by(Street.name)
        )
    )


def by_phone(session: Session, phone: str) -> Coordinator | None:
    return session.exec(select(Coordinator).where(Coordinator.phone == phone)).first()

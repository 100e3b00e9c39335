"""`hotline demo` / `hotline serve --demo`: a small scheme for the simulator to talk to.

Three streets with codes, a few members on each (mobiles, and landlines that get alert calls), a pretend
phone for every member, and an admin coordinator. Seeding again changes nothing but the admin's password.
Every number is an Ofcom drama number (07700 900xxx, 020 7946 0xxx): no real person is ever rung.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlmodel import Session, func, select
from werkzeug.security import generate_password_hash

from hotline.models import AlertChannel, Coordinator, Street
from hotline.residents import members
from hotline.simulator import phonebook

ADMIN_EMAIL = "admin@example.org"

STREETS = [
    # name, code, aliases, postcodes
    ("Clayhall Avenue", 101, ["Clayhall", "Clayhall Ave"], ["IG5 0AA"]),
    ("Beehive Lane", 102, ["Beehive"], ["IG4 5DR"]),
    ("Redbridge Lane East", 103, ["Redbridge Lane"], ["IG4 5ES"]),
]

MEMBERS = [
    # street code, name, number, kind, language (README, "Languages")
    (101, "Joan", "+447700900101", "mobile"),
    (101, "Arthur", "+447700900102", "mobile"),
    (101, "Priya", "+447700900103", "mobile"),
    (101, "Mr Okafor", "+442079460101", "landline"),
    (102, "Margaret", "+447700900201", "mobile"),
    (102, "Dev", "+447700900202", "mobile", "gu"),
    (102, "Eileen", "+442079460201", "landline"),
    (103, "Tom", "+447700900301", "mobile"),
    (103, "Sue", "+447700900302", "mobile"),
]


@dataclass(frozen=True)
class Login:
    email: str
    password: str


def _street(session: Session, name: str, code: int, aliases: list[str], postcodes: list[str]) -> Street:
    street = session.exec(select(Street).where(Street.name == name)).first()
    if street is not None:
        return street
    if session.exec(select(Street).where(Street.code == code)).first():  # the operator used that code already
        code = (session.exec(select(func.max(Street.code))).one() or 100) + 1
    street = Street(name=name, code=code, aliases=aliases, postcodes=postcodes)
    session.add(street)
    session.flush()
    return street


def seed(session: Session) -> Login:
    """Add what is missing of the demo scheme; returns the admin's login (a fresh password each time)."""
    by_code = {code: _street(session, name, code, aliases, postcodes) for name, code, aliases, postcodes in STREETS}
    for code, name, number, kind, *language in MEMBERS:
        street = by_code[code]
        alerts = AlertChannel.CALL if kind == "landline" else AlertChannel.SMS
        members.add(session, number, street, alerts=alerts, active=True)
        member = members.find(session, number)
        if member is not None and not member.name:
            member.name = name
            member.language = language[0] if language else member.language
            session.add(member)
        phonebook.ensure(session, number, kind=kind, label=f"{name} · {street.name}")
    password = secrets.token_urlsafe(9)
    admin = session.exec(select(Coordinator).where(Coordinator.email == ADMIN_EMAIL)).first()
    if admin is None:
        admin = Coordinator(email=ADMIN_EMAIL, password_hash="", is_admin=True)
    admin.password_hash, admin.is_admin = generate_password_hash(password), True
    session.add(admin)
    session.flush()
    return Login(email=ADMIN_EMAIL, password=password)

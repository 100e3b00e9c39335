"""Fixtures for the coordinators' pages: a simulator-mode app, coordinators, a client that logs in
and carries the CSRF token like a browser, and a way to put reports in the log."""

from __future__ import annotations

import itertools
import re

import pytest
from sqlmodel import Session
from werkzeug.security import generate_password_hash

from hotline.models import Coordinator, CoordinatorStreet
from hotline.reports import inbox
from tests.conftest import NUMBERS, add_members, add_street

PASSWORD = "correct horse battery"
_sids = itertools.count(1)


class Web:
    """Flask's test client plus the CSRF token a browser would take from the page it is on."""

    def __init__(self, app):
        self.client = app.test_client()
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            page = self.client.get("/login").get_data(as_text=True)
            self._token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        return self._token

    def get(self, path: str, **kw):
        return self.client.get(path, **kw)

    def post(self, path: str, data: dict | None = None, *, csrf: bool = True, **kw):
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf_token", self.token())
        return self.client.post(path, data=data, **kw)

    def login(self, email: str, password: str = PASSWORD, **kw):
        response = self.post("/login" + kw.pop("query", ""), {"email": email, "password": password}, **kw)
        self._token = None  # the session starts afresh at login, and so does its token
        return response

    def logout(self):
        response = self.post("/logout")
        self._token = None
        return response


def make_coordinator(session: Session, email: str, *, admin: bool = False, streets=(), phone: str | None = None) -> Coordinator:
    # A cheap hash: these tests check our logic, not the hash's cost.
    person = Coordinator(email=email, password_hash=generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000"), is_admin=admin, phone=phone)
    session.add(person)
    session.flush()
    for street in streets:
        session.add(CoordinatorStreet(coordinator_id=person.id, street_id=street.id))
    session.commit()
    return person


def text_in(rt, sender: str, body: str):
    """An SMS arriving at the hotline, as the webhook hands it to the inbox."""
    with Session(rt.engine, expire_on_commit=False) as session:
        reply = inbox.receive_sms(session=session, config=rt.config, sender=sender, body=body, sid=f"SMweb{next(_sids):028d}")
        session.commit()
    return reply


@pytest.fixture
def rt(sim_app):
    return sim_app.extensions["hotline"]


@pytest.fixture
def session(rt):
    with Session(rt.engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def scheme(session):
    """Two streets with members, a coordinator for each street, and an admin."""
    clayhall = add_street(session, "Clayhall Avenue", 101, aliases=["Clayhall"], postcodes=["IG5 0AA"])
    beehive = add_street(session, "Beehive Lane", 102)
    add_members(session, clayhall, NUMBERS[:4])
    add_members(session, beehive, NUMBERS[10:13])
    people = {
        "admin": make_coordinator(session, "admin@example.org", admin=True),
        "clayhall": make_coordinator(session, "clay@example.org", streets=[clayhall]),
        "beehive": make_coordinator(session, "bee@example.org", streets=[beehive]),
    }
    return {"clayhall": clayhall, "beehive": beehive, "people": people}


@pytest.fixture
def web(sim_app):
    return Web(sim_app)


@pytest.fixture
def admin(sim_app, scheme):
    client = Web(sim_app)
    assert client.login("admin@example.org").status_code == 302
    return client


@pytest.fixture
def clay(sim_app, scheme):
    """Logged in as the coordinator of Clayhall Avenue only."""
    client = Web(sim_app)
    assert client.login("clay@example.org").status_code == 302
    return client

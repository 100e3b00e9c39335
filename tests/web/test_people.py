"""Admins manage coordinators: add with streets and an SMS phone, edit, remove; never lock themselves out."""

from __future__ import annotations

from sqlmodel import select
from werkzeug.security import check_password_hash

from hotline.models import Coordinator, CoordinatorStreet
from tests.web.conftest import Web


def test_admin_adds_a_street_coordinator_who_can_then_log_in(admin, session, scheme):
    response = admin.post("/coordinators/new", {"email": "New@Example.org", "password": "a good long password", "phone": "07911 100900", "streets": [scheme["beehive"].id]})
    assert response.status_code == 302
    person = session.exec(select(Coordinator).where(Coordinator.email == "new@example.org")).one()
    assert person.phone == "+447911100900" and not person.is_admin
    assert check_password_hash(person.password_hash, "a good long password")
    assert session.exec(select(CoordinatorStreet.street_id).where(CoordinatorStreet.coordinator_id == person.id)).all() == [scheme["beehive"].id]
    other = Web(admin.client.application)
    assert other.login("new@example.org", "a good long password").status_code == 302
    assert "Beehive Lane" in other.get("/streets").get_data(as_text=True)
    assert "Clayhall Avenue" not in other.get("/streets").get_data(as_text=True)


def test_short_password_taken_email_and_taken_phone_are_refused(admin, session, scheme):
    cases = [
        ({"email": "a@example.org", "password": "short"}, "at least 8 characters"),
        ({"email": "clay@example.org", "password": "long enough pw"}, "is a coordinator already"),
    ]
    for data, message in cases:
        response = admin.post("/coordinators/new", data)
        assert response.status_code == 400 and message in response.get_data(as_text=True)
    admin.post("/coordinators/new", {"email": "p1@example.org", "password": "long enough pw", "phone": "07911 100901"})
    response = admin.post("/coordinators/new", {"email": "p2@example.org", "password": "long enough pw", "phone": "07911 100901"})
    assert response.status_code == 400 and "another coordinator has registered that phone" in response.get_data(as_text=True).lower()


def test_admin_changes_a_coordinators_streets_and_removes_them(admin, session, scheme):
    person = scheme["people"]["clayhall"]
    person_id = person.id
    admin.post(f"/coordinators/{person.id}", {"email": person.email, "streets": [scheme["beehive"].id, scheme["clayhall"].id]})
    ids = sorted(session.exec(select(CoordinatorStreet.street_id).where(CoordinatorStreet.coordinator_id == person.id)).all())
    assert ids == sorted([scheme["beehive"].id, scheme["clayhall"].id])
    assert admin.post(f"/coordinators/{person.id}/delete").status_code == 302
    session.expunge_all()
    assert session.get(Coordinator, person_id) is None


def test_admin_cannot_remove_or_demote_themself(admin, session, scheme):
    me = scheme["people"]["admin"]
    admin.post(f"/coordinators/{me.id}/delete")
    admin.post(f"/coordinators/{me.id}", {"email": me.email})  # is_admin unticked
    session.expire_all()
    assert session.get(Coordinator, me.id).is_admin

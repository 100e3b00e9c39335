"""Streets and members: create and edit streets, add, move and remove members, alert channel,
opt-outs shown, and CSV import with a preview, per-row errors and nothing imported on error."""

from __future__ import annotations

import io

from sqlmodel import select

from hotline.models import Delivery, DeliveryState, Member, Membership, MembershipStatus, Street
from tests.conftest import NUMBERS
from tests.web.conftest import text_in


def test_admin_creates_a_street_that_residents_can_join(admin, rt, session, scheme):
    response = admin.post("/streets/new", {"name": "  Woodford  Close ", "code": "", "aliases": "Woodford\nWoodford Cl", "postcodes": "ig8 0aa", "open": "y"})
    assert response.status_code == 302
    street = session.exec(select(Street).where(Street.name == "Woodford Close")).one()
    assert street.code == 103 and street.aliases == ["Woodford", "Woodford Cl"] and street.postcodes == ["IG8 0AA"]
    assert street.open and not street.moderated
    assert "Welcome to Woodford Close Watch" in text_in(rt, NUMBERS[70], "JOIN woodford").text


def test_duplicate_street_name_or_code_is_refused_with_a_message(admin, session, scheme):
    for data, message in (({"name": "clayhall avenue"}, "exists already"), ({"name": "New Road", "code": "101"}, "is taken by Clayhall Avenue")):
        response = admin.post("/streets/new", data)
        assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert len(session.exec(select(Street)).all()) == 2


def test_street_coordinator_edits_their_street(clay, session, scheme):
    street = scheme["clayhall"]
    response = clay.post(f"/streets/{street.id}", {"name": "Clayhall Avenue", "code": "101", "aliases": "Clayhall, Clay Ave", "postcodes": "IG5 0AA", "moderated": "y"})
    assert response.status_code == 302
    session.expire_all()
    street = session.get(Street, street.id)
    assert street.moderated and not street.open and street.aliases == ["Clayhall", "Clay Ave"]


def test_street_page_shows_members_masked_with_opt_outs(clay, rt, session, scheme):
    text_in(rt, NUMBERS[2], "STOP")
    html = clay.get(f"/streets/{scheme['clayhall'].id}").get_data(as_text=True)
    assert "07911 1•• •00" in html and "+447911100100" not in html
    assert "opted out" in html
    assert "4 active, 0 waiting for approval, 1 opted out" in html


def test_coordinator_adds_a_member_who_is_active_at_once(clay, rt, session, scheme):
    street = scheme["clayhall"]
    response = clay.post(f"/streets/{street.id}/members", {"phone": "07911 100777", "name": "Mrs Patel", "alerts": "call"})
    assert response.status_code == 302
    member = session.exec(select(Member).where(Member.phone == "+447911100777")).one()
    assert member.name == "Mrs Patel" and member.alerts == "call"
    membership = session.exec(select(Membership).where(Membership.member_id == member.id)).one()
    assert membership.status == MembershipStatus.ACTIVE and membership.street_id == street.id
    text_in(rt, NUMBERS[0], "gate left open at the school")
    assert session.exec(select(Delivery).where(Delivery.phone == "+447911100777")).one().channel == "call"


def test_adding_a_member_checks_the_number(clay, session, scheme):
    for bad in ("12345", "07700 900123", "not a number"):  # 07700 900xxx is an Ofcom drama number: not valid
        response = clay.post(f"/streets/{scheme['clayhall'].id}/members", {"phone": bad, "alerts": "sms"})
        assert response.status_code == 400
        assert "not a valid" in response.get_data(as_text=True)
    assert len(session.exec(select(Member)).all()) == 7


def test_member_is_moved_to_another_street_keeping_their_standing(admin, rt, session, scheme):
    member = session.exec(select(Member).where(Member.phone == NUMBERS[3])).one()
    membership = session.exec(select(Membership).where(Membership.member_id == member.id)).one()
    assert admin.post(f"/memberships/{membership.id}/move", {"street": scheme["beehive"].id}).status_code == 302
    session.expire_all()
    rows = {m.street_id: m.status for m in session.exec(select(Membership).where(Membership.member_id == member.id))}
    assert rows == {scheme["clayhall"].id: MembershipStatus.LEFT, scheme["beehive"].id: MembershipStatus.ACTIVE}
    text_in(rt, NUMBERS[10], "beehive alert")
    assert session.exec(select(Delivery).where(Delivery.phone == NUMBERS[3])).one() is not None


def test_removed_member_gets_nothing_more_from_that_street(clay, rt, session, scheme):
    text_in(rt, NUMBERS[0], "queued before removal")
    member = session.exec(select(Member).where(Member.phone == NUMBERS[1])).one()
    membership = session.exec(select(Membership).where(Membership.member_id == member.id)).one()
    assert clay.post(f"/memberships/{membership.id}/remove").status_code == 302
    session.expire_all()
    assert session.get(Membership, membership.id).status == MembershipStatus.LEFT
    assert session.exec(select(Delivery).where(Delivery.phone == NUMBERS[1])).one().state == DeliveryState.CANCELLED
    text_in(rt, NUMBERS[0], "after removal")
    assert len(session.exec(select(Delivery).where(Delivery.phone == NUMBERS[1])).all()) == 1


def test_alert_channel_is_set_on_the_member_page(clay, session, scheme):
    member = session.exec(select(Member).where(Member.phone == NUMBERS[0])).one()
    page = clay.get(f"/members/{member.id}").get_data(as_text=True)
    assert "07911 1•• •00" in page and "Clayhall Avenue" in page
    clay.post(f"/members/{member.id}/alerts", {"alerts": "call"})
    session.expire_all()
    assert session.get(Member, member.id).alerts == "call"


def upload(client, text: str, name="members.csv"):
    return client.post("/import", {"file": (io.BytesIO(text.encode("utf-8")), name)}, content_type="multipart/form-data")


def test_import_previews_then_imports_all_rows(admin, rt, session, scheme):
    csv_text = "phone,street,alerts\n07911 100800,Clayhall Avenue,sms\n+447911100801,102,call\n"
    preview = upload(admin, csv_text)
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "2 good rows" in html and "Import 2 members" in html
    assert session.exec(select(Member).where(Member.phone == "+447911100800")).first() is None  # nothing yet
    done = admin.post("/import/confirm", {"content": csv_text})
    assert done.status_code == 302
    imported = session.exec(select(Member).where(Member.phone.in_(["+447911100800", "+447911100801"]))).all()
    assert sorted(m.alerts for m in imported) == ["call", "sms"]
    statuses = session.exec(select(Membership.status).where(Membership.member_id.in_([m.id for m in imported]))).all()
    assert statuses == [MembershipStatus.ACTIVE, MembershipStatus.ACTIVE]


def test_import_with_any_bad_row_reports_each_and_imports_nothing(admin, session, scheme):
    csv_text = "phone,street\n07911 100800,Clayhall Avenue\n0123,Clayhall Avenue\n07911 100802,Nowhere Street\n"
    html = upload(admin, csv_text).get_data(as_text=True)
    assert "line 3: not a valid phone number: &#39;0123&#39;" in html
    assert "line 4: unknown street: &#39;Nowhere Street&#39;" in html
    assert "nothing will be imported" in html and "Import 1 member" not in html
    refused = admin.post("/import/confirm", {"content": csv_text})  # even posted by hand
    assert refused.status_code == 400
    assert session.exec(select(Member).where(Member.phone == "+447911100800")).first() is None


def test_street_coordinator_imports_only_into_their_streets(clay, session, scheme):
    csv_text = "phone,street\n07911 100800,Clayhall Avenue\n07911 100801,Beehive Lane\n"
    html = upload(clay, csv_text).get_data(as_text=True)
    assert "line 3: Beehive Lane is not one of your streets" in html
    assert clay.post("/import/confirm", {"content": csv_text}).status_code == 400
    assert session.exec(select(Member).where(Member.phone == "+447911100800")).first() is None


def test_import_refuses_a_file_that_is_not_utf8(admin, scheme):
    response = admin.post("/import", {"file": (io.BytesIO("phone,street\n07911 100800,Caf\xe9 Road\n".encode("latin-1")), "m.csv")}, content_type="multipart/form-data")
    assert response.status_code == 400 and "not UTF-8" in response.get_data(as_text=True)

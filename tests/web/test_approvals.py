"""Approvals: pending members (approve tells them, reject does not) and held reports (send, with typed
text for a recording, or drop), one click each."""

from __future__ import annotations

from sqlmodel import select

from hotline import messages
from hotline.models import Channel, Delivery, Membership, MembershipStatus, Report, ReportState, ReportStreet
from tests.conftest import NUMBERS
from tests.web.conftest import text_in


def joiner(rt, session, number=NUMBERS[50], street="Clayhall Avenue") -> Membership:
    text_in(rt, number, f"JOIN {street}")
    return session.exec(select(Membership).where(Membership.status == MembershipStatus.PENDING)).one()


def test_pending_member_is_listed_and_approved_with_one_click(admin, rt, session, scheme):
    membership = joiner(rt, session)
    html = admin.get("/approvals").get_data(as_text=True)
    assert "07911 1•• •50" in html and "Clayhall Avenue" in html
    response = admin.post(f"/approvals/members/{membership.id}/approve", {"back": "/approvals"})
    assert response.status_code == 302 and response.headers["Location"] == "/approvals"
    session.expire_all()
    assert session.get(Membership, membership.id).status == MembershipStatus.ACTIVE
    welcome = session.exec(select(Delivery).where(Delivery.phone == NUMBERS[50])).one()
    assert welcome.body == messages.approved("Clayhall Avenue") and welcome.report_id is None
    assert "07911 1•• •50" not in admin.get("/approvals").get_data(as_text=True)
    # A second click changes nothing and sends nothing more.
    admin.post(f"/approvals/members/{membership.id}/approve")
    assert len(session.exec(select(Delivery).where(Delivery.phone == NUMBERS[50])).all()) == 1


def test_rejected_member_is_not_told_and_cannot_report(admin, rt, session, scheme):
    membership = joiner(rt, session)
    admin.post(f"/approvals/members/{membership.id}/reject")
    session.expire_all()
    assert session.get(Membership, membership.id).status == MembershipStatus.REJECTED
    assert session.exec(select(Delivery)).all() == []
    text_in(rt, NUMBERS[50], "can I report now?")
    assert session.exec(select(Report).where(Report.phone == NUMBERS[50])).one().state == ReportState.NOT_BROADCAST


def test_approving_an_opted_out_member_sends_nothing(admin, rt, session, scheme):
    membership = joiner(rt, session)
    text_in(rt, NUMBERS[50], "STOP")
    admin.post(f"/approvals/members/{membership.id}/approve")
    session.expire_all()
    assert session.get(Membership, membership.id).status == MembershipStatus.ACTIVE
    assert session.exec(select(Delivery)).all() == []


def moderate(session, street):
    street.moderated = True
    session.add(street)
    session.commit()


def test_held_report_is_sent_with_one_click(admin, rt, session, scheme):
    moderate(session, scheme["clayhall"])
    text_in(rt, NUMBERS[0], "two men checking car doors")
    report = session.exec(select(Report)).one()
    assert report.state == ReportState.HELD
    assert "two men checking car doors" in admin.get("/approvals").get_data(as_text=True)
    admin.post(f"/reports/{report.id}/send", {"text": ""})
    session.expire_all()
    assert session.get(Report, report.id).state == ReportState.SENT
    bodies = [d.body for d in session.exec(select(Delivery))]
    assert len(bodies) == 3 and all("two men checking car doors" in b for b in bodies)


def test_held_report_is_dropped_and_nobody_gets_it(admin, rt, session, scheme):
    moderate(session, scheme["clayhall"])
    text_in(rt, NUMBERS[0], "probably nothing")
    report = session.exec(select(Report)).one()
    admin.post(f"/reports/{report.id}/drop")
    session.expire_all()
    assert session.get(Report, report.id).state == ReportState.DROPPED
    assert session.exec(select(Delivery)).all() == []
    admin.post(f"/reports/{report.id}/send")  # too late: dropped stays dropped
    session.expire_all()
    assert session.get(Report, report.id).state == ReportState.DROPPED
    assert session.exec(select(Delivery)).all() == []


def test_recording_is_played_and_sent_as_the_text_a_coordinator_typed(admin, rt, session, scheme):
    report = Report(phone=NUMBERS[0], member_id=None, channel=Channel.CALL, text=None, recording_url="https://api.twilio.com/rec/RE9", state=ReportState.HELD, reason="review")
    session.add(report)
    session.flush()
    session.add(ReportStreet(report_id=report.id, street_id=scheme["clayhall"].id))
    session.commit()
    html = admin.get("/approvals").get_data(as_text=True)
    assert '<audio controls preload="none" src="https://api.twilio.com/rec/RE9">' in html
    refused = admin.post(f"/reports/{report.id}/send", {"text": "  "})
    assert refused.status_code == 302
    session.expire_all()
    assert session.get(Report, report.id).state == ReportState.HELD  # no text: nothing to send yet
    admin.post(f"/reports/{report.id}/send", {"text": "Caller says: a  white van, reg starting KX"})
    session.expire_all()
    assert session.get(Report, report.id).text == "Caller says: a white van, reg starting KX"
    bodies = [d.body for d in session.exec(select(Delivery))]
    assert len(bodies) == 3 and all("a white van, reg starting KX" in b for b in bodies)  # not back to the caller


def test_approvals_page_of_a_street_coordinator_lists_only_their_streets(clay, rt, session, scheme):
    joiner(rt, session, NUMBERS[51], "Beehive Lane")
    assert "07911 1•• •51" not in clay.get("/approvals").get_data(as_text=True)
    text_in(rt, NUMBERS[52], "JOIN Clayhall")
    assert "07911 1•• •52" in clay.get("/approvals").get_data(as_text=True)


def test_the_back_link_after_a_decision_stays_on_this_site(admin, rt, session, scheme):
    for evil in ("//evil.example/", "/\\evil.example", "https://evil.example/"):
        membership = joiner(rt, session, NUMBERS[53])
        response = admin.post(f"/approvals/members/{membership.id}/reject", {"back": evil})
        assert response.headers["Location"] == "/", evil
        session.delete(membership)
        session.commit()


# --- a report held for one street is that street's to decide ----------------------------------------


def held_across_two_streets(rt, session, scheme) -> Report:
    """A member of both streets reports; Clayhall moderates, Beehive does not: held for Clayhall."""
    from hotline.residents import members

    members.add(session, NUMBERS[0], scheme["beehive"], alerts="sms", active=True)
    session.commit()
    moderate(session, scheme["clayhall"])
    text_in(rt, NUMBERS[0], "car with its window smashed on the corner")
    report = session.exec(select(Report)).one()
    assert report.state == ReportState.HELD and report.reason == "moderated"
    return report


def test_another_streets_coordinator_cannot_send_or_drop_a_report_held_for_a_moderated_street(sim_app, rt, session, scheme):
    from tests.web.conftest import Web

    report = held_across_two_streets(rt, session, scheme)
    bee = Web(sim_app)
    bee.login("bee@example.org")
    listing = bee.get("/approvals").get_data(as_text=True)
    assert report.ref in listing and "Held for Clayhall Avenue" in listing and f"/reports/{report.id}/send" not in listing
    page = bee.post(f"/reports/{report.id}/send", {"text": ""}, follow_redirects=True).get_data(as_text=True)
    assert "its coordinators (or an admin) decide it" in page
    bee.post(f"/reports/{report.id}/drop")
    session.expire_all()
    assert session.get(Report, report.id).state == ReportState.HELD and session.exec(select(Delivery)).all() == []


def test_the_moderated_streets_coordinator_sends_it_to_both_streets(clay, rt, session, scheme):
    report = held_across_two_streets(rt, session, scheme)
    assert f"/reports/{report.id}/send" in clay.get(f"/reports/{report.id}").get_data(as_text=True)
    clay.post(f"/reports/{report.id}/send", {"text": ""})
    session.expire_all()
    assert session.get(Report, report.id).state == ReportState.SENT
    assert len(session.exec(select(Delivery)).all()) == 3 + 3  # Clayhall's other three and Beehive's three


def test_send_by_sms_from_another_streets_coordinator_is_refused(sim_app, rt, session, scheme):
    people = scheme["people"]
    people["beehive"].phone = NUMBERS[70]
    session.add(people["beehive"])
    session.commit()
    report = held_across_two_streets(rt, session, scheme)
    reply = text_in(rt, NUMBERS[70], f"SEND {report.ref}")
    assert "Clayhall Avenue" in reply.text and "Nothing was sent" in reply.text
    session.expire_all()
    assert session.get(Report, report.id).state == ReportState.HELD

"""Coordinators' SMS commands from their registered phone: APPROVE / REJECT <phone or name>,
SEND R42 / DROP R42 — their own streets only; from anyone else the same words are a report."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest
from sqlmodel import select

from hotline import messages
from hotline.models import Delivery, Member, Membership, MembershipStatus, Report, ReportState
from tests.conftest import NUMBERS, add_members, add_street
from tests.web.conftest import make_coordinator

COORDINATOR_PHONE = "+447911199999"


def reply_text(response) -> str:
    assert response.status_code == 200, response.data
    return " ".join(m.text or "" for m in ElementTree.fromstring(response.data).iter("Message"))


@pytest.fixture
def streets(session):
    clayhall = add_street(session, "Clayhall Avenue", 101, moderated=True)
    beehive = add_street(session, "Beehive Lane", 102, moderated=True)
    add_members(session, clayhall, NUMBERS[:3])
    add_members(session, beehive, NUMBERS[10:12])
    make_coordinator(session, "clay@example.org", streets=[clayhall], phone=COORDINATOR_PHONE)
    return clayhall, beehive


def pending_of(session, phone):
    return session.exec(select(Membership).join(Member, Member.id == Membership.member_id).where(Member.phone == phone)).one()


def test_approve_by_phone_number_activates_and_tells_the_member(rt, session, twilio, streets):
    reply_text(twilio.sms(NUMBERS[50], "JOIN Clayhall Avenue"))
    answer = reply_text(twilio.sms(COORDINATOR_PHONE, "approve 07911 100150"))
    assert answer == messages.coordinator_approved("07911 1** *50", ["Clayhall Avenue"])
    session.expire_all()
    assert pending_of(session, NUMBERS[50]).status == MembershipStatus.ACTIVE
    welcome = session.exec(select(Delivery).where(Delivery.phone == NUMBERS[50])).one()
    assert welcome.body == messages.approved("Clayhall Avenue")


def test_approve_and_reject_by_name(rt, session, twilio, streets):
    reply_text(twilio.sms(NUMBERS[50], "JOIN Clayhall Avenue"))
    member = session.exec(select(Member).where(Member.phone == NUMBERS[50])).one()
    member.name = "Mrs Okafor"
    session.add(member)
    session.commit()
    answer = reply_text(twilio.sms(COORDINATOR_PHONE, "REJECT mrs okafor."))
    assert answer.startswith("Rejected 07911 1** *50 (Mrs Okafor)")
    session.expire_all()
    assert pending_of(session, NUMBERS[50]).status == MembershipStatus.REJECTED
    assert "no request waiting" in reply_text(twilio.sms(COORDINATOR_PHONE, "APPROVE Mrs Okafor"))


def test_approve_someone_unknown_or_on_another_street_changes_nothing(rt, session, twilio, streets):
    reply_text(twilio.sms(NUMBERS[51], "JOIN Beehive Lane"))
    assert "No member matches" in reply_text(twilio.sms(COORDINATOR_PHONE, "APPROVE 07911 100151"))
    assert "No member matches" in reply_text(twilio.sms(COORDINATOR_PHONE, "APPROVE Nobody Atall"))
    session.expire_all()
    assert pending_of(session, NUMBERS[51]).status == MembershipStatus.PENDING


def test_send_and_drop_held_reports(rt, session, twilio, streets):
    reply_text(twilio.sms(NUMBERS[0], "man looking over back fences"))
    reply_text(twilio.sms(NUMBERS[1], "false alarm, it was the window cleaner"))
    first, second = session.exec(select(Report).order_by(Report.id)).all()
    assert first.state == second.state == ReportState.HELD
    assert reply_text(twilio.sms(COORDINATOR_PHONE, f"send {first.ref.lower()}")) == messages.coordinator_report_sent(first.ref, 2)
    assert reply_text(twilio.sms(COORDINATOR_PHONE, f"DROP {second.id}")) == messages.coordinator_report_dropped(second.ref)
    session.expire_all()
    assert session.get(Report, first.id).state == ReportState.SENT
    assert session.get(Report, second.id).state == ReportState.DROPPED
    assert sorted(d.phone for d in session.exec(select(Delivery))) == NUMBERS[1:3]
    again = reply_text(twilio.sms(COORDINATOR_PHONE, f"SEND {second.ref}"))
    assert again == messages.coordinator_report_not_held(second.ref, "dropped")
    assert len(session.exec(select(Delivery)).all()) == 2


def test_coordinator_cannot_send_another_streets_report(rt, session, twilio, streets):
    reply_text(twilio.sms(NUMBERS[10], "beehive: smashed window at no 3"))
    report = session.exec(select(Report)).one()
    assert reply_text(twilio.sms(COORDINATOR_PHONE, f"SEND {report.ref}")) == messages.coordinator_report_unknown(report.ref)
    session.expire_all()
    assert session.get(Report, report.id).state == ReportState.HELD


def test_the_same_words_from_a_resident_are_a_report(rt, session, twilio, streets):
    reply_text(twilio.sms(NUMBERS[0], "SEND R1"))
    reply_text(twilio.sms(NUMBERS[1], "Send help, van on the drive"))
    texts = [r.text for r in session.exec(select(Report).order_by(Report.id))]
    assert texts == ["SEND R1", "Send help, van on the drive"]


def test_coordinator_replies_fit_in_one_sms():
    from hotline.delivery import segments

    for text in (
        messages.coordinator_approved("07911 1** *50 (Mrs Okafor)", ["Clayhall Avenue"]),
        messages.coordinator_rejected("07911 1** *50 (Mrs Okafor)", ["Clayhall Avenue"]),
        messages.coordinator_nothing_pending("07911 1** *50 (Mrs Okafor)"),
        messages.coordinator_unknown_member("someone with a long name"),
        messages.coordinator_ambiguous_member("Mrs Okafor", 3),
        messages.coordinator_report_sent("R12345", 200),
        messages.coordinator_report_dropped("R12345"),
        messages.coordinator_report_not_held("R12345", "not_broadcast"),
        messages.coordinator_report_unknown("R12345"),
        messages.coordinator_report_needs_text("R12345"),
    ):
        assert segments.count(text) == 1, text

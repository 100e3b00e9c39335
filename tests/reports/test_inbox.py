"""The SMS spine end to end: webhook → report → outbox → dispatcher → (fake) Twilio."""

from __future__ import annotations

from datetime import timedelta
from xml.etree import ElementTree

import pytest
import requests
from sqlmodel import Session, func, select

from hotline.db import utcnow
from hotline.delivery import outbox
from hotline.models import (
    AlertChannel,
    Delivery,
    DeliveryState,
    InboundEvent,
    Member,
    Membership,
    MembershipStatus,
    Report,
    ReportState,
)
from hotline.residents import members
from tests.conftest import FROM_NUMBER, NUMBERS, add_members, add_street


def reply_text(response) -> str:
    assert response.status_code == 200, response.data
    root = ElementTree.fromstring(response.data)
    assert root.tag == "Response"
    return " ".join(m.text or "" for m in root.iter("Message"))


def dispatch(rt, *, later: timedelta = timedelta(0)) -> int:
    with Session(rt.engine) as session:
        return outbox.dispatch_due(session=session, carrier=rt.carrier, config=rt.config, limit=1000, now=utcnow() + later)


def count(rt, model) -> int:
    with Session(rt.engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


@pytest.fixture
def street(session):
    clayhall = add_street(session, "Clayhall Avenue", 101, aliases=["Clayhall"], postcodes=["IG5 0AA"])
    add_members(session, clayhall, NUMBERS[:4])
    return clayhall


def test_join_approve_report_reaches_exactly_the_street(rt, session, twilio, twilio_api, street):
    other = add_street(session, "Beehive Lane", 102)
    add_members(session, other, NUMBERS[10:12])
    joiner = NUMBERS[20]

    assert "with a coordinator" in reply_text(twilio.sms(joiner, "join clayhall ave"))
    membership = session.exec(select(Membership).join(Member).where(Member.phone == joiner)).one()
    assert membership.status == MembershipStatus.PENDING
    members.decide(session, membership, approve=True)
    session.commit()

    ack = reply_text(twilio.sms(joiner, "man trying car door handles, red hoodie"))
    assert "sent to 4 neighbours" in ack and "Emergency? Call 999" in ack
    assert dispatch(rt) == 4
    for number in NUMBERS[:4]:
        assert len(twilio_api.to(number)) == 1
        assert "man trying car door handles, red hoodie" in twilio_api.to(number)[0]["Body"]
    assert twilio_api.to(joiner) == []
    assert all(twilio_api.to(n) == [] for n in NUMBERS[10:12])
    assert len(twilio_api.sent) == 4
    assert dispatch(rt, later=timedelta(hours=2)) == 0  # nothing left to send, nothing sent twice


def test_broadcast_names_the_street_and_ref_but_never_the_reporter(rt, twilio, twilio_api, street):
    reporter = NUMBERS[0]
    national = "07911 100100"
    text = f"van outside no 4, call me on {national} or +44 7911 100100 or 447911100100"
    reply_text(twilio.sms(reporter, text))
    dispatch(rt)
    body = twilio_api.sent[0]["Body"]
    assert body.startswith("Clayhall Avenue Watch R1 ")
    assert "Reply OK if seen" in body and body.endswith(" 999")  # how to answer, and 999
    for form in ("07911100100", "7911100100", "447911100100", "07911 100100", "+44 7911 100100"):
        assert form not in body and form.replace(" ", "") not in body.replace(" ", "")
    assert twilio_api.sent[0]["ValidityPeriod"] == "3600"
    assert twilio_api.sent[0]["StatusCallback"] == "https://hotline.example.org/twilio/status"
    assert twilio_api.sent[0]["From"] == FROM_NUMBER


def test_long_report_is_cut_to_three_segments_and_kept_whole_in_the_log(rt, session, twilio, twilio_api, street):
    from hotline.delivery import segments

    text = "Suspicious car circling 🚗 " * 60  # emoji: UCS-2, 67 characters a segment
    reply_text(twilio.sms(NUMBERS[0], text))
    dispatch(rt)
    body = twilio_api.sent[0]["Body"]
    assert segments.count(body) <= 3
    assert session.exec(select(Report)).one().text == text.strip()


@pytest.mark.parametrize("word", ["STOP", "stop", "Stop.", "STOPALL", "unsubscribe", "CANCEL", "End", "quit!"])
def test_stop_then_report_sends_nothing_to_that_number(rt, session, twilio, twilio_api, street, word):
    quitter = NUMBERS[1]
    twilio.sms(quitter, word)
    assert session.exec(select(Member).where(Member.phone == quitter)).one().opted_out_at is not None
    reply_text(twilio.sms(NUMBERS[0], "someone in the back gardens"))
    dispatch(rt)
    assert twilio_api.to(quitter) == []
    assert {m["To"] for m in twilio_api.sent} == {NUMBERS[2], NUMBERS[3]}


@pytest.mark.parametrize("word", ["START", "unstop", "Yes"])
def test_start_restores_alerts(rt, twilio, twilio_api, street, word):
    twilio.sms(NUMBERS[1], "STOP")
    assert "Clayhall Avenue" in reply_text(twilio.sms(NUMBERS[1], word))
    twilio.sms(NUMBERS[0], "car alarm going off for an hour")
    dispatch(rt)
    assert len(twilio_api.to(NUMBERS[1])) == 1


def test_stop_cancels_alerts_still_waiting_in_the_outbox(rt, session, twilio, twilio_api, street):
    twilio.sms(NUMBERS[0], "two men with a ladder")
    twilio.sms(NUMBERS[1], "STOP")
    dispatch(rt)
    assert twilio_api.to(NUMBERS[1]) == []
    state = session.exec(select(Delivery.state).where(Delivery.phone == NUMBERS[1])).one()
    assert state == DeliveryState.CANCELLED


def test_keywords_count_only_as_the_whole_message(rt, session, twilio, twilio_api, street):
    ack = reply_text(twilio.sms(NUMBERS[0], "Quit hanging round the bins, lads"))
    assert "sent to 3 neighbours" in ack
    assert session.exec(select(Member).where(Member.phone == NUMBERS[0])).one().opted_out_at is None
    assert "JOIN" in reply_text(twilio.sms(NUMBERS[0], "  help  "))


def test_help_fits_in_one_sms(rt, twilio, street):
    from hotline.delivery import segments

    text = reply_text(twilio.sms(NUMBERS[0], "INFO"))
    assert segments.count(text) == 1 and "STOP" in text


def test_leave_call_me_text_me(rt, session, twilio, street):
    assert "phone call" in reply_text(twilio.sms(NUMBERS[0], "call me"))
    assert session.exec(select(Member).where(Member.phone == NUMBERS[0])).one().alerts == AlertChannel.CALL
    assert "by text" in reply_text(twilio.sms(NUMBERS[0], "TEXT ME"))
    assert "left Clayhall Avenue" in reply_text(twilio.sms(NUMBERS[0], "leave"))
    session.expire_all()
    assert session.exec(select(Membership).join(Member).where(Member.phone == NUMBERS[0])).one().status == MembershipStatus.LEFT


def test_open_street_join_is_active_at_once(rt, session, twilio):
    add_street(session, "Beehive Lane", 102, open=True)
    assert "Welcome to Beehive Lane Watch" in reply_text(twilio.sms(NUMBERS[30], "Join beehive ln."))


def test_unknown_and_ambiguous_streets_get_the_closest_matches(rt, session, twilio, street):
    add_street(session, "Clayhall Road", 103)
    assert "Which street?" in reply_text(twilio.sms(NUMBERS[30], "JOIN clayhall"))
    unknown = reply_text(twilio.sms(NUMBERS[30], "JOIN Clayfield Close"))
    assert "don't know" in unknown


def test_stranger_and_pending_messages_are_logged_not_broadcast(rt, session, twilio, twilio_api, street):
    assert "JOIN" in reply_text(twilio.sms(NUMBERS[40], "there is a fire"))
    twilio.sms(NUMBERS[41], "JOIN 101")
    assert "waiting for a coordinator" in reply_text(twilio.sms(NUMBERS[41], "broken window at 12"))
    assert dispatch(rt) == 0
    states = session.exec(select(Report.state, Report.reason)).all()
    assert sorted(states) == [(ReportState.NOT_BROADCAST, "pending"), (ReportState.NOT_BROADCAST, "stranger")]


def test_moderated_street_holds_reports(rt, session, twilio, street):
    street.moderated = True
    session.add(street)
    session.commit()
    assert "coordinator will check" in reply_text(twilio.sms(NUMBERS[0], "dog loose on the green"))
    assert dispatch(rt) == 0
    assert session.exec(select(Report)).one().state == ReportState.HELD


def test_hourly_cap_and_duplicate_suppression(rt, session, twilio, twilio_api, street):
    assert "sent to" in reply_text(twilio.sms(NUMBERS[0], "white van again"))
    assert "not sent again" in reply_text(twilio.sms(NUMBERS[0], "White  van again"))
    for n in range(4):
        assert "sent to" in reply_text(twilio.sms(NUMBERS[0], f"report number {n}"))
    over = reply_text(twilio.sms(NUMBERS[0], "one too many"))
    assert "not sent" in over and "an hour" in over
    dispatch(rt)
    assert len(twilio_api.sent) == 5 * 3
    assert session.exec(select(func.count(Report.id))).one() == 7


def test_same_message_sid_twice_makes_one_report(rt, twilio, twilio_api, street):
    first = reply_text(twilio.sms(NUMBERS[0], "prowler by the garages", sid="SM" + "a" * 32))
    second = reply_text(twilio.sms(NUMBERS[0], "prowler by the garages", sid="SM" + "a" * 32))
    assert first == second
    assert count(rt, Report) == 1 and count(rt, Delivery) == 3
    dispatch(rt)
    assert len(twilio_api.sent) == 3


def test_forged_and_missing_signatures_are_refused_and_change_nothing(rt, twilio, street):
    before = (count(rt, Report), count(rt, Member), count(rt, InboundEvent))
    data = {"From": NUMBERS[0], "Body": "hello", "MessageSid": "SM" + "f" * 32}
    assert twilio.post("/twilio/sms", data, signature="forged").status_code == 403
    assert twilio.client.post("/twilio/sms", data=data).status_code == 403
    assert twilio.post("/twilio/sms", data, sign_url="https://evil.example.org/twilio/sms").status_code == 403
    assert twilio.post("/twilio/status", {"MessageSid": "SMx", "MessageStatus": "delivered"}, signature="").status_code == 403
    assert (count(rt, Report), count(rt, Member), count(rt, InboundEvent)) == before


def test_429_then_201_is_delivered_once(rt, session, twilio, twilio_api, street):
    twilio.sms(NUMBERS[0], "smoke from the empty house")
    twilio_api.fail_next(429)
    dispatch(rt)
    assert len(twilio_api.sent) == 2
    throttled = session.exec(select(Delivery).where(Delivery.sid.is_(None))).one()
    assert throttled.state == DeliveryState.QUEUED and throttled.next_attempt_at > utcnow()
    assert dispatch(rt) == 0  # backoff: not due yet
    dispatch(rt, later=timedelta(minutes=5))
    assert sorted(m["To"] for m in twilio_api.sent) == sorted(NUMBERS[1:4])


def test_timeout_is_looked_up_before_sending_again(rt, session, twilio, twilio_api, street):
    """A timeout may have been accepted: the retry finds it at Twilio instead of texting twice."""
    twilio.sms(NUMBERS[0], "shed door forced")
    twilio_api.fail_next(requests.exceptions.ReadTimeout("read timed out"))
    dispatch(rt)
    failed = session.exec(select(Delivery).where(Delivery.sid.is_(None))).one()
    assert failed.needs_lookup
    # Twilio had in fact accepted it before the connection dropped:
    twilio_api.sent.append({"To": failed.phone, "From": FROM_NUMBER, "Body": failed.body, "sid": "SM" + "9" * 32, "status": "sent",
                            "date_created": utcnow().strftime("%a, %d %b %Y %H:%M:%S +0000")})
    dispatch(rt, later=timedelta(minutes=5))
    session.expire_all()
    found = session.get(Delivery, failed.id)
    assert found.sid == "SM" + "9" * 32 and found.state == DeliveryState.ACCEPTED
    assert len(twilio_api.to(failed.phone)) == 1
    assert len(twilio_api.requests) == 3  # the timed-out POST and two good ones: no resend


def test_500_then_not_found_at_twilio_is_sent_again(rt, session, twilio, twilio_api, street):
    twilio.sms(NUMBERS[0], "gate left open at the school")
    twilio_api.fail_next(500)
    dispatch(rt)
    dispatch(rt, later=timedelta(minutes=5))
    assert sorted(m["To"] for m in twilio_api.sent) == sorted(NUMBERS[1:4])


def test_21610_marks_the_member_opted_out(rt, session, twilio, twilio_api, street):
    twilio.sms(NUMBERS[0], "fly tipping in the alley")
    twilio_api.fail_next((400, 21610))
    dispatch(rt)
    refused = session.exec(select(Delivery).where(Delivery.error_code == 21610)).one()
    assert refused.state == DeliveryState.FAILED
    assert session.exec(select(Member).where(Member.phone == refused.phone)).one().opted_out_at is not None
    twilio.sms(NUMBERS[0], "and again next day")
    dispatch(rt)
    assert len(twilio_api.to(refused.phone)) == 0


def test_21614_switches_the_member_to_calls(rt, session, twilio, twilio_api, street):
    twilio.sms(NUMBERS[0], "ladder against number 9")
    twilio_api.fail_next((400, 21614))
    dispatch(rt)
    converted = session.exec(select(Delivery).where(Delivery.channel == "call")).one()
    assert session.get(Member, converted.member_id).alerts == AlertChannel.CALL
    dispatch(rt, later=timedelta(hours=10))  # past quiet hours, whatever the hour the test runs at
    assert len(twilio_api.calls) == 1 and twilio_api.calls[0]["To"] == converted.phone
    assert twilio_api.calls[0]["MachineDetection"] == "DetectMessageEnd"


def test_status_callbacks_move_states_forward_only(rt, session, twilio, twilio_api, street):
    twilio.sms(NUMBERS[0], "youths on the roof")
    dispatch(rt)
    sid = twilio_api.sent[0]["sid"]

    def state():
        session.expire_all()
        return session.exec(select(Delivery.state).where(Delivery.sid == sid)).one()

    assert state() == DeliveryState.ACCEPTED
    assert twilio.status(sid, "sent").status_code == 204
    assert state() == DeliveryState.SENT
    assert twilio.status(sid, "delivered").status_code == 204
    twilio.status(sid, "sent")
    twilio.status(sid, "queued")
    twilio.status(sid, "failed")
    assert state() == DeliveryState.DELIVERED


def test_status_for_an_unknown_sid_is_kept_and_applied_when_the_send_is_recorded(rt, session, twilio, twilio_api, street):
    assert twilio.status("SM" + "e" * 32, "delivered").status_code == 204
    twilio.sms(NUMBERS[0], "cat stuck up the tree")
    twilio_api._sid = iter([int("e" * 32, 16)] + list(range(100, 110)))
    dispatch(rt)
    assert session.exec(select(Delivery.state).where(Delivery.sid == "SM" + "e" * 32)).one() == DeliveryState.DELIVERED


def test_undelivered_with_a_passing_error_is_retried(rt, session, twilio, twilio_api, street):
    twilio.sms(NUMBERS[0], "bike thief on Elm Rd")
    dispatch(rt)
    sid = twilio_api.sent[0]["sid"]
    twilio.status(sid, "undelivered", "30003")
    dispatch(rt, later=timedelta(minutes=10))
    assert len(twilio_api.to(twilio_api.sent[0]["To"])) == 2


@pytest.mark.parametrize(
    "form",
    [
        {"From": NUMBERS[0], "Body": "🚨" * 1600, "MessageSid": "SM" + "1" * 32},
        {"From": NUMBERS[0], "Body": "", "MessageSid": "SM" + "2" * 32},
        {"From": NUMBERS[0], "MessageSid": "SM" + "3" * 32},
        {"Body": "no sender", "MessageSid": "SM" + "4" * 32},
        {"From": NUMBERS[0], "Body": "no sid"},
        {"From": "VODAFONE", "Body": "promo", "MessageSid": "SM" + "5" * 32},
        {"From": NUMBERS[0], "Body": "\x00\x01 control \u202e rtl", "MessageSid": "SM" + "6" * 32},
    ],
)
def test_odd_webhooks_get_twiml_or_a_400_never_a_500(rt, twilio, street, form):
    response = twilio.post("/twilio/sms", form)
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert ElementTree.fromstring(response.data).tag == "Response"


def test_sql_and_html_in_a_body_are_stored_literally(rt, session, twilio, twilio_api, street):
    nasty = "'); DROP TABLE report; -- <script>alert(1)</script>"
    reply_text(twilio.sms(NUMBERS[0], nasty))
    assert session.exec(select(Report.text)).one() == nasty
    dispatch(rt)
    assert nasty in twilio_api.sent[0]["Body"]


def test_uk_national_and_e164_senders_are_the_same_member(rt, session, twilio, street):
    # Twilio sends E.164; a member added in national form must be recognised.
    assert "sent to 3" in reply_text(twilio.sms("+447911100100", "broken fence"))
    assert session.exec(select(func.count(Member.id))).one() == 4


def test_quiet_hours_hold_calls_but_not_sms(tmp_path, twilio_api):
    from zoneinfo import ZoneInfo

    from tests.conftest import SignedClient, build_app

    local = utcnow().astimezone(ZoneInfo("Europe/London"))  # quiet from an hour ago to an hour from now
    quiet = f"{local - timedelta(hours=1):%H:%M}-{local + timedelta(hours=1):%H:%M}"
    app = build_app(tmp_path, twilio=True, environ={"HOTLINE_QUIET_HOURS": quiet})
    rt = app.extensions["hotline"]
    with Session(rt.engine) as session:
        street = add_street(session, "Clayhall Avenue", 101)
        add_members(session, street, NUMBERS[:2])
        add_members(session, street, NUMBERS[2:3], alerts=AlertChannel.CALL)
    client = SignedClient(app)
    client.sms(NUMBERS[0], "noise from the empty shop")
    dispatch(rt)
    assert len(twilio_api.sent) == 1 and twilio_api.calls == []
    client.sms(NUMBERS[0], "URGENT man with a knife by the bus stop")
    dispatch(rt)
    assert len(twilio_api.calls) == 1
    assert "URGENT" in twilio_api.sent[-1]["Body"]
    app.extensions["hotline"].engine.dispose()


def test_healthz(app, tmp_path):
    assert app.test_client().get("/healthz").status_code == 200


def test_healthz_and_sms_answer_503_when_the_database_is_unreachable(tmp_path):
    from tests.conftest import SignedClient, build_app

    app = build_app(tmp_path, twilio=True)
    from hotline.db import make_engine

    app.extensions["hotline"].engine = make_engine("sqlite:////nonexistent/dir/hotline.db")
    assert app.test_client().get("/healthz").status_code == 503
    response = SignedClient(app).sms(NUMBERS[0], "is anyone there")
    assert response.status_code == 503


def test_a_text_that_meets_a_bug_is_kept_for_the_coordinators_and_answered_with_an_apology(rt, session, twilio, street, monkeypatch, caplog):
    """Bad code must not lose a report: the words are logged as a report (reason "error") the coordinators see,
    the sender is told to try again, in their language, and Twilio's retry of the same MessageSid changes nothing."""
    from hotline import messages
    from hotline.reports import inbox
    from hotline.translations import speaking
    from tests.conftest import speaks

    def broken(**_):
        raise RuntimeError("a bug in the inbox")

    speaks(session, street, NUMBERS[8], "pl")
    monkeypatch.setattr(inbox, "receive_sms", broken)
    sid = "SM" + "e" * 32
    with caplog.at_level("ERROR"):
        first = reply_text(twilio.sms(NUMBERS[8], "man trying car door handles, red hoodie", sid=sid))
    with speaking("pl"):
        assert first == messages.sorry_try_later()
    assert "could not handle an incoming SMS" in caplog.text
    assert reply_text(twilio.sms(NUMBERS[8], "man trying car door handles, red hoodie", sid=sid)) == first  # Twilio's retry
    kept = session.exec(select(Report).where(Report.phone == NUMBERS[8])).all()
    assert [(r.text, r.reason) for r in kept] == [("man trying car door handles, red hoodie", "error")]
    assert session.get(InboundEvent, f"sms:{sid}").phone == NUMBERS[8]  # counted against the sender's reply cap
    with speaking("en"):
        assert reply_text(twilio.sms(NUMBERS[0], "gate left open")) == messages.sorry_try_later()  # English for English


def test_a_text_whose_salvage_fails_too_still_gets_an_apology_not_a_500(rt, twilio, monkeypatch):
    from hotline import messages
    from hotline.reports import inbox

    def broken(**_):
        raise RuntimeError("a bug in the inbox")

    def also_broken(**_):
        raise RuntimeError("and in the salvage")

    monkeypatch.setattr(inbox, "receive_sms", broken)
    monkeypatch.setattr(inbox, "salvage", also_broken)
    assert reply_text(twilio.sms(NUMBERS[30], "someone in the garden")) == messages.sorry_try_later()

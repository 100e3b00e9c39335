"""The voice menu and alert calls, walked the way Twilio walks them: each TwiML answer read, keys and
words posted to the Gather's action, Redirects followed, every request signed."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from hotline import messages
from hotline.db import utcnow
from hotline.delivery.outbox import dispatch_due
from hotline.models import (
    AlertChannel,
    CallDraft,
    Channel,
    Delivery,
    DeliveryState,
    InboundEvent,
    Member,
    Membership,
    MembershipStatus,
    Report,
    ReportState,
)
from hotline.reports import intake
from tests.conftest import FROM_NUMBER, LANDLINES, NEVER_QUIET, NUMBERS, PUBLIC_URL, SignedClient, add_members, add_street, build_app

pytestmark = pytest.mark.never_quiet  # no quiet hours: the tests must not depend on the hour they run at



@pytest.fixture
def street(session):
    clayhall = add_street(session, "Clayhall Avenue", 101, aliases=["Clayhall"], postcodes=["IG5 0AA"])
    add_members(session, clayhall, NUMBERS[:3])  # mobiles, alerts by text
    add_members(session, clayhall, LANDLINES[:2], alerts=AlertChannel.CALL)
    return clayhall


def dispatch(rt, *, later: timedelta = timedelta(0)) -> int:
    with Session(rt.engine) as session:
        return dispatch_due(session=session, carrier=rt.carrier, config=rt.config, limit=1000, now=utcnow() + later)


def report_by_phone(twilio, caller: str, words: str, *, send_key: str = "1"):
    call = twilio.call(caller).start().press("1").say(words)
    assert f"I heard: {words}" in call.text
    return call.press(send_key)


def answer_alert(twilio, placed: dict, answered_by: str | None = "human"):
    """Twilio fetches the call's Url once it is answered, with AnsweredBy."""
    path = urlparse(placed["Url"]).path
    call = twilio.call(FROM_NUMBER, to=placed["To"], sid=placed["sid"], direction="outbound-api")
    return call.start(path, AnsweredBy=answered_by)


def call_status(twilio, sid: str, status: str, **extra):
    return twilio.post("/twilio/status", {"CallSid": sid, "CallStatus": status, "AccountSid": "AC" + "0" * 32, **extra})


def member(session, phone: str) -> Member:
    session.expire_all()
    return session.exec(select(Member).where(Member.phone == phone)).one()


# --- reporting by phone ----------------------------------------------------------------------


def test_member_reports_by_speech_and_text_and_call_members_get_it(rt, session, twilio, twilio_api, street):
    call = twilio.call(NUMBERS[0]).start()
    assert "Clayhall Avenue" in call.text and "hang up and dial 999" in call.text
    report_by_phone(twilio, NUMBERS[0], "man trying car door handles, red hoodie")
    report = session.exec(select(Report)).one()
    assert (report.channel, report.state, report.text) == (Channel.CALL, ReportState.SENT, "man trying car door handles, red hoodie")

    assert dispatch(rt) == 4
    assert {m["To"] for m in twilio_api.sent} == set(NUMBERS[1:3])
    assert all("man trying car door handles" in m["Body"] for m in twilio_api.sent)
    assert {c["To"] for c in twilio_api.calls} == set(LANDLINES[:2])
    for placed in twilio_api.calls:
        assert placed["MachineDetection"] == "DetectMessageEnd"
        assert placed["Url"].startswith(f"{PUBLIC_URL}/twilio/voice/alert/")
        heard = answer_alert(twilio, placed)
        assert "man trying car door handles, red hoodie" in heard.text and "Clayhall Avenue" in heard.text
    assert twilio_api.to(NUMBERS[0]) == [] and not any(c["To"] == NUMBERS[0] for c in twilio_api.calls)


def test_the_same_step_delivered_twice_sends_one_report(rt, session, twilio, twilio_api, street):
    call = twilio.call(NUMBERS[0]).start().press("1").say("van with no plates outside number 9")
    confirm = PUBLIC_URL + call.listening().get("action")
    first, second = call.post(confirm, Digits="1"), call.post(confirm, Digits="1")
    assert first.status_code == second.status_code == 200 and first.data == second.data
    assert len(session.exec(select(Report)).all()) == 1
    assert dispatch(rt) == 4
    assert session.get(InboundEvent, f"call:{call.sid}:3") is not None


@pytest.mark.parametrize("how", ["silence then garbled", "say it again twice"])
def test_recording_after_two_failed_recognitions_is_held_for_review(rt, session, twilio, twilio_api, street, how):
    call = twilio.call(NUMBERS[0]).start().press("1")
    if how == "silence then garbled":
        assert "did not catch" in call.silence().text
        call.say("  ")
    else:
        call.say("man with a lather").press("2")
        assert "say it again" in call.text
        call.say("man with a lather").press("2")
    assert call.listening("Record") is not None and "After the tone" in call.text
    call.record(seconds=21)
    assert "A coordinator will listen to it" in call.text
    report = session.exec(select(Report)).one()
    assert (report.state, report.reason, report.channel) == (ReportState.HELD, "review", Channel.CALL)
    assert report.recording_url.endswith("/Recordings/RE1") and report.text is None
    assert dispatch(rt) == 0 and twilio_api.sent == []


def test_nothing_recorded_goes_back_to_the_menu(rt, session, twilio, street):
    call = twilio.call(NUMBERS[0]).start().press("1").silence().silence()
    assert call.listening("Record") is not None
    call.silence()
    assert "nothing was recorded" in call.text and "To report something, press 1" in call.text
    assert session.exec(select(Report)).all() == []


def test_cancel_sends_nothing_and_forgets_what_was_said(rt, session, twilio, street):
    call = twilio.call(NUMBERS[0]).start().press("1").say("my own car alarm, sorry").press("3")
    assert "Nothing was sent" in call.text
    assert session.exec(select(Report)).all() == [] and session.exec(select(CallDraft)).all() == []


def test_phone_reports_respect_the_hourly_limit(tmp_path, twilio_api):
    app = build_app(tmp_path, twilio=True, environ=NEVER_QUIET, max_reports_per_hour=1)
    rt, twilio = app.extensions["hotline"], SignedClient(app)
    with Session(rt.engine) as session:
        add_members(session, add_street(session, "Clayhall Avenue", 101), NUMBERS[:2])
    assert "has gone to 1 neighbour" in report_by_phone(twilio, NUMBERS[0], "red van again").text
    second = report_by_phone(twilio, NUMBERS[0], "blue van now")
    assert "more news about your earlier report" in second.text  # within the hour of their own report: asked first
    assert "not sent: the limit is 1 report an hour" in second.press("2").text
    rt.engine.dispose()


def test_a_caller_with_an_open_incident_of_their_own_chooses_update_or_something_new(rt, session, twilio, twilio_api, street):
    from hotline.models import ReportKind

    report_by_phone(twilio, NUMBERS[0], "two men trying car doors")
    sent = report_by_phone(twilio, NUMBERS[0], "they have gone towards the park").press("1")
    assert "Your update to R 1 has gone to" in sent.text
    new = report_by_phone(twilio, NUMBERS[0], "and a dog loose on the green").press("2")
    assert "Your report, R 3, has gone to" in new.text
    session.expire_all()
    kinds = [(r.kind, r.incident_id) for r in session.exec(select(Report).order_by(Report.id))]
    assert kinds[0][0] == ReportKind.REPORT and kinds[1] == (ReportKind.UPDATE, kinds[0][1])
    assert kinds[2][0] == ReportKind.REPORT and kinds[2][1] != kinds[0][1]
    dispatch(rt)
    assert any(m["Body"].startswith("Update R1 ") for m in twilio_api.sent)


def test_latest_alerts_read_an_incident_with_its_updates_and_whether_it_is_clear(rt, session, twilio, twilio_api, street):
    from hotline.models import Coordinator, CoordinatorStreet

    person = Coordinator(email="c@example.org", password_hash="x", phone=NUMBERS[90])
    session.add(person)
    session.flush()
    session.add(CoordinatorStreet(coordinator_id=person.id, street_id=street.id))
    session.commit()
    twilio.sms(NUMBERS[0], "white van outside number 12")
    twilio.sms(NUMBERS[1], "R1 police have arrived")
    twilio.sms(NUMBERS[90], "CLEAR R1 they were delivering a sofa")
    heard = twilio.call(LANDLINES[0]).start().press("2").text
    assert "white van outside number 12" in heard and "Update today at" in heard and "police have arrived" in heard
    assert "That is now all clear. they were delivering a sofa" in heard
    assert heard.count("Here is the latest alert") == 1  # one incident, not three alerts


# --- who is calling ----------------------------------------------------------------------------


def test_unknown_caller_joins_by_code_and_gets_call_alerts(rt, session, twilio, street):
    call = twilio.call(NUMBERS[50]).start()
    assert "key in your street's code" in call.text
    assert "Clayhall Avenue" in call.listening().get("hints")
    call.press("999#")
    assert "could not find that street" in call.text and call.listening() is not None
    call.press("101#")
    assert "To join Clayhall Avenue Watch, press 1" in call.text
    call.press("1")
    assert "is with a coordinator" in call.text and call.ended
    joined = member(session, NUMBERS[50])
    assert joined.alerts == AlertChannel.CALL
    assert session.exec(select(Membership.status).where(Membership.member_id == joined.id)).one() == MembershipStatus.PENDING


def test_unknown_caller_joins_an_open_street_by_saying_its_name(rt, session, twilio, street):
    add_street(session, "Beehive Lane", 102, open=True)
    call = twilio.call(LANDLINES[60]).start().say("clay hall avenue")  # recognised with a space: still found
    assert "To join Clayhall Avenue Watch" in call.text
    call.press("2").say("Beehive Lane.").press("1")
    assert "Welcome to Beehive Lane Watch. Alerts will come to this phone as a call" in call.text
    assert "To report something, press 1" in call.text
    joined = member(session, LANDLINES[60])
    assert joined.alerts == AlertChannel.CALL
    assert session.exec(select(Membership.status).where(Membership.member_id == joined.id)).one() == MembershipStatus.ACTIVE


def test_pending_caller_is_told_and_can_leave_a_message_that_is_not_broadcast(rt, session, twilio, twilio_api, street):
    twilio.sms(NUMBERS[40], "JOIN Clayhall")
    call = twilio.call(NUMBERS[40]).start()
    assert "waiting for a coordinator" in call.text and "Clayhall Avenue" in call.text
    report_by_phone(twilio, NUMBERS[40], "someone in the back gardens")
    report = session.exec(select(Report).where(Report.phone == NUMBERS[40])).one()
    assert (report.state, report.reason) == (ReportState.NOT_BROADCAST, "pending")
    assert dispatch(rt) == 0


def test_opted_out_caller_is_told_and_can_opt_back_in(rt, session, twilio, street):
    twilio.sms(NUMBERS[1], "STOP")
    call = twilio.call(NUMBERS[1]).start()
    assert "stop all messages" in call.text
    call.press("1")
    assert "Welcome back" in call.text and "To report something, press 1" in call.text
    assert not member(session, NUMBERS[1]).opted_out


def test_withheld_number_is_told_how_to_take_part(rt, twilio, street):
    call = twilio.call("anonymous").start()
    assert "withheld" in call.text and "999" in call.text and call.ended


@pytest.mark.parametrize("answers", [["7", "6", "0"], [None, None, None], ["*", None, "#"]])
def test_three_wrong_keys_or_silences_end_with_a_goodbye(rt, twilio, street, answers):
    call = twilio.call(NUMBERS[0]).start()
    for answer in answers:
        assert not call.ended
        call.silence() if answer is None else call.press(answer)
    assert call.ended and "Goodbye" in call.text
    assert call.transcript.count(messages.voice_main_menu()) == 3


# --- listening and settings --------------------------------------------------------------------


def test_latest_alerts_are_the_last_five_of_the_week_in_local_time(rt, session, twilio, street):
    now = utcnow()
    ages = [timedelta(hours=h) for h in (1, 5, 30, 50, 100, 140)] + [timedelta(days=8)]
    reporter = member(session, NUMBERS[1])
    for n, age in reversed(list(enumerate(ages))):  # oldest first, as they happened
        outcome = intake.submit(session=session, config=rt.config, phone=NUMBERS[1], text=f"sighting number {n}",
                                 member=reporter, now=now - age)
        assert outcome.kind == "sent"
    intake.submit(session=session, config=rt.config, phone=NUMBERS[1], text="held sighting", member=reporter,
                   hold=True, now=now - timedelta(hours=2))
    session.commit()
    said = twilio.call(NUMBERS[0]).start().press("2").text
    assert "latest 5 alerts" in said
    for n in range(5):
        assert f"sighting number {n}" in said
    assert "sighting number 5" not in said  # sent this week, but only the latest five are read
    assert "sighting number 6" not in said and "held sighting" not in said
    local = (now - ages[0]).astimezone(rt.config.timezone)
    assert f"Today at {messages.spoken_time(local)}" in said or f"Yesterday at {messages.spoken_time(local)}" in said
    assert said.index("sighting number 0") < said.index("sighting number 4")


def test_settings_switch_alerts_and_leave(rt, session, twilio, twilio_api, street):
    call = twilio.call(NUMBERS[0]).start().press("3")
    assert "your alerts come by text message" in call.text
    call.press("2")
    assert member(session, NUMBERS[0]).alerts == AlertChannel.CALL
    call.press("3").press("1")
    assert member(session, NUMBERS[0]).alerts == AlertChannel.SMS
    call.press("3").press("3")
    assert "To leave, press 1" in call.text
    call.press("1")
    assert "You have left Clayhall Avenue" in call.text and call.ended
    assert "key in your street's code" in twilio.call(NUMBERS[0]).start().text  # no longer a member: offered to join
    report_by_phone(twilio, NUMBERS[1], "broken window at the shop")
    dispatch(rt)
    assert twilio_api.to(NUMBERS[0]) == []


def test_a_landline_cannot_switch_to_text(rt, session, twilio, street):
    call = twilio.call(LANDLINES[0]).start().press("3")
    assert "your alerts come as a phone call" in call.text and "To get alerts by text message" not in call.text
    call.press("1")
    assert "cannot get text messages" in call.text
    assert member(session, LANDLINES[0]).alerts == AlertChannel.CALL


# --- alert calls ---------------------------------------------------------------------------------


def test_alert_call_says_the_report_1_repeats_and_2_stops_calls_on_a_landline(rt, session, twilio, twilio_api, street):
    twilio.sms(NUMBERS[0], "two men looking over garden fences")
    dispatch(rt)
    call = answer_alert(twilio, next(c for c in twilio_api.calls if c["To"] == LANDLINES[0]))
    assert "two men looking over garden fences" in call.text and "press 2" in call.text
    call.press("1")
    assert call.text.count("two men looking over garden fences") == 1 and not call.ended
    call.press("2")
    assert "You will not get any more alert calls" in call.text and call.ended
    assert member(session, LANDLINES[0]).opted_out
    twilio.sms(NUMBERS[0], "they are back, same two men")
    dispatch(rt)
    assert [c["To"] for c in twilio_api.calls].count(LANDLINES[0]) == 1


def test_stopping_calls_from_a_mobile_switches_to_texts_and_says_so_by_text(rt, session, twilio, twilio_api, street):
    add_members(session, street, NUMBERS[30:31], alerts=AlertChannel.CALL)
    twilio.sms(NUMBERS[0], "dog barking at number 12 for hours")
    dispatch(rt)
    for placed in list(twilio_api.calls):  # two lines at once: the landlines ring first
        call_status(twilio, placed["sid"], "completed")
    dispatch(rt)
    answer_alert(twilio, next(c for c in twilio_api.calls if c["To"] == NUMBERS[30])).press("2")
    assert member(session, NUMBERS[30]).alerts == AlertChannel.SMS
    dispatch(rt)
    assert "stop alert calls" in twilio_api.to(NUMBERS[30])[0]["Body"]
    twilio.sms(NUMBERS[0], "the dog is out on the road now")
    dispatch(rt)
    assert "dog is out on the road" in twilio_api.to(NUMBERS[30])[-1]["Body"]


@pytest.mark.parametrize("answered_by", ["human", "unknown", None, "machine_start", "machine_end_beep",
                                         "machine_end_silence", "machine_end_other", "fax"])
def test_alert_call_handles_every_answered_by(rt, session, twilio, twilio_api, street, answered_by):
    twilio.sms(NUMBERS[0], "smoke from the garages")
    dispatch(rt)
    placed = next(c for c in twilio_api.calls if c["To"] == LANDLINES[0])
    call = answer_alert(twilio, placed, answered_by)
    if answered_by == "fax":
        assert call.ended and call.said == []
    elif answered_by and answered_by.startswith("machine"):
        assert call.ended and call.listening() is None  # no keys for a machine: the message, then goodbye
        assert call.text.count("smoke from the garages") == (2 if answered_by == "machine_start" else 1)
    else:
        assert "smoke from the garages" in call.text and call.listening() is not None
    call_status(twilio, placed["sid"], "completed", AnsweredBy=answered_by or "")
    state = session.exec(select(Delivery.state).where(Delivery.sid == placed["sid"])).one()
    assert state == (DeliveryState.FAILED if answered_by == "fax" else DeliveryState.DELIVERED)


def test_busy_and_no_answer_are_retried_a_bounded_number_of_times(rt, session, twilio, twilio_api, street):
    twilio.sms(NUMBERS[0], "loose horse on the road")
    dispatch(rt)
    for status in ("busy", "no-answer", "busy"):
        placed = [c for c in twilio_api.calls if c["To"] == LANDLINES[0]][-1]
        call_status(twilio, placed["sid"], status)
        dispatch(rt, later=timedelta(minutes=1))
        dispatch(rt, later=timedelta(minutes=10))
    assert [c["To"] for c in twilio_api.calls].count(LANDLINES[0]) == 3
    session.expire_all()
    delivery = session.exec(select(Delivery).where(Delivery.phone == LANDLINES[0])).one()
    assert delivery.state == DeliveryState.UNDELIVERED


def test_no_more_calls_ring_at_once_than_the_concurrency_allows(rt, session, twilio, twilio_api, street):
    add_members(session, street, LANDLINES[2:5], alerts=AlertChannel.CALL)  # five landlines in all
    twilio.sms(NUMBERS[0], "fire in the park")
    dispatch(rt)
    assert len(twilio_api.calls) == rt.config.call_concurrency == 2
    dispatch(rt)
    assert len(twilio_api.calls) == 2
    for placed in twilio_api.calls[:2]:
        call_status(twilio, placed["sid"], "completed")
    dispatch(rt)
    assert len(twilio_api.calls) == 4


def test_the_dispatcher_paces_calls_at_the_call_rate(rt, session, twilio, twilio_api, street):
    from hotline.delivery.outbox import Dispatcher, Pacer
    from hotline.models import Channel as Ch

    add_members(session, street, LANDLINES[2:5], alerts=AlertChannel.CALL)
    twilio.sms(NUMBERS[0], "fire in the park")
    clock, sleeps = [100.0], []
    dispatcher = Dispatcher(engine=rt.engine, carrier=rt.carrier, config=rt.config.with_overrides(call_concurrency=3))
    def sleep(seconds):
        sleeps.append(seconds)
        clock[0] += seconds

    dispatcher.call_pacer = Pacer(rt.config.call_rate, clock=lambda: clock[0], sleep=sleep)
    dispatcher._pump(Ch.CALL, dispatcher.call_pacer, dispatcher._free(Ch.CALL), rt.config.call_rate)
    dispatcher.pool.shutdown(wait=True)
    assert len(twilio_api.calls) == 2  # two lines free (HOTLINE_CALL_RATE 1 × 2 per tick), three is the cap
    assert sleeps == [pytest.approx(Pacer.MARGIN)]  # a second (and the pacer's 2 % margin) between the two calls


# --- quiet hours -----------------------------------------------------------------------------------


def quiet_app(tmp_path):
    """Quiet hours from an hour ago to an hour from now, whatever the time the test runs."""
    now = utcnow().astimezone(ZoneInfo("Europe/London"))  # HOTLINE_TIMEZONE's default
    start, end = now - timedelta(hours=1), now + timedelta(hours=1)
    return build_app(tmp_path, twilio=True, environ={"HOTLINE_QUIET_HOURS": f"{start:%H:%M}-{end:%H:%M}"}), end


def test_quiet_hours_hold_a_phoned_in_call_alert_and_release_it_at_the_end(tmp_path, twilio_api):
    app, end = quiet_app(tmp_path)
    rt, twilio = app.extensions["hotline"], SignedClient(app)
    with Session(rt.engine) as session:
        street = add_street(session, "Clayhall Avenue", 101)
        add_members(session, street, NUMBERS[:2])
        add_members(session, street, LANDLINES[:1], alerts=AlertChannel.CALL)
    report_by_phone(twilio, NUMBERS[0], "noise from the empty shop")
    dispatch(rt)
    assert len(twilio_api.sent) == 1 and twilio_api.calls == []  # the text goes, the call waits
    dispatch(rt, later=end - utcnow() - timedelta(minutes=2))
    assert twilio_api.calls == []
    dispatch(rt, later=end - utcnow() + timedelta(minutes=1))
    assert [c["To"] for c in twilio_api.calls] == [LANDLINES[0]]
    rt.engine.dispose()


def test_the_urgent_key_rings_call_members_at_once_in_quiet_hours(tmp_path, twilio_api):
    app, _ = quiet_app(tmp_path)
    rt, twilio = app.extensions["hotline"], SignedClient(app)
    with Session(rt.engine) as session:
        street = add_street(session, "Clayhall Avenue", 101)
        add_members(session, street, NUMBERS[:2])
        add_members(session, street, LANDLINES[:1], alerts=AlertChannel.CALL)
    report_by_phone(twilio, NUMBERS[0], "man with a crowbar at number 4", send_key="4")
    dispatch(rt)
    assert [c["To"] for c in twilio_api.calls] == [LANDLINES[0]]
    assert "URGENT" in twilio_api.sent[0]["Body"]
    with Session(rt.engine) as session:
        assert session.exec(select(Report.urgent)).one() is True
    rt.engine.dispose()


# --- failures never reach the caller ----------------------------------------------------------


def test_forged_signature_changes_nothing(rt, session, twilio, street):
    form = {"CallSid": "CA" + "9" * 32, "From": NUMBERS[50], "To": FROM_NUMBER, "Digits": "1"}
    assert twilio.post("/twilio/voice/join?s=2&n=0&street=1", form, signature="forged").status_code == 403
    assert twilio.post("/twilio/voice/join?s=2&n=0&street=1", form, sign_url=PUBLIC_URL + "/twilio/voice/join").status_code == 403
    assert session.exec(select(Member).where(Member.phone == NUMBERS[50])).first() is None


@pytest.mark.parametrize(
    "path, form",
    [
        ("/twilio/voice", {"From": NUMBERS[0]}),  # no CallSid
        ("/twilio/voice/bogus?s=4", {"CallSid": "CA" + "7" * 32, "From": NUMBERS[0]}),
        ("/twilio/voice/home?s=9&n=99999999999999999999", {"CallSid": "CA" + "7" * 32, "From": NUMBERS[0], "Digits": "1"}),
        ("/twilio/voice/join?s=2&street=abc&_external=1", {"CallSid": "CA" + "7" * 32, "From": NUMBERS[0], "Digits": "1"}),
        ("/twilio/voice/check?s=5&f=x", {"CallSid": "CA" + "7" * 32, "From": NUMBERS[0], "Digits": "1"}),
        ("/twilio/voice/recording?s=5", {"CallSid": "CA" + "7" * 32, "From": NUMBERS[0], "RecordingUrl": "x", "RecordingDuration": "-3"}),
        ("/twilio/voice/report?s=3", {"CallSid": "CA" + "7" * 32, "From": NUMBERS[0], "SpeechResult": "\x00\u202e" + "é" * 5000}),
        ("/twilio/voice/alert/999999", {"CallSid": "CA" + "7" * 32, "From": FROM_NUMBER, "AnsweredBy": "human"}),
        ("/twilio/voice/alert/1?s=1", {"CallSid": "CA" + "7" * 32, "From": FROM_NUMBER, "Digits": "2"}),
    ],
)
def test_odd_voice_requests_get_twiml_never_a_500(rt, session, twilio, street, path, form):
    from tests.conftest import check_voice_twiml

    check_voice_twiml(twilio.post(path, form))


def test_characters_xml_cannot_carry_never_break_a_call(rt, twilio, twilio_api, street):
    twilio.sms(NUMBERS[0], "\x00\x01 fire \x1b in the bins \ufffe")
    dispatch(rt)
    assert "fire in the bins" in answer_alert(twilio, twilio_api.calls[0]).text
    assert "fire in the bins" in twilio.call(NUMBERS[1]).start().press("2").text


def test_database_down_still_answers_with_a_spoken_apology(tmp_path):
    from hotline.db import make_engine

    app = build_app(tmp_path, twilio=True)
    app.extensions["hotline"].engine = make_engine("sqlite:////nonexistent/dir/hotline.db")
    call = SignedClient(app).call(NUMBERS[0]).start()
    assert "not working properly" in call.text and "999" in call.text and call.ended


def test_a_bug_becomes_a_spoken_apology_not_a_500(rt, twilio, street, monkeypatch):
    from hotline.voice import menu

    def broken(**_):
        raise RuntimeError("a bug")

    monkeypatch.setattr(menu, "answer", broken)
    call = twilio.call(NUMBERS[0]).start().press("1")
    assert "not working properly" in call.text and call.ended


def test_simulator_alert_calls_offer_the_keys_on_relative_urls(sim_app):
    from xml.etree import ElementTree

    from hotline.models import SimulatedMessage

    rt = sim_app.extensions["hotline"]
    with Session(rt.engine) as session:
        street = add_street(session, "Clayhall Avenue", 101)
        add_members(session, street, NUMBERS[:1])
        add_members(session, street, LANDLINES[:1], alerts=AlertChannel.CALL)
        intake.submit(session=session, config=rt.config.with_overrides(quiet_hours=rt.config.quiet_hours.parse("00:00-00:00")),
                       phone=NUMBERS[0], text="ladder against number 7", member=member(session, NUMBERS[0]))
        session.commit()
    dispatch(rt)
    with Session(rt.engine) as session:
        twiml = session.exec(select(SimulatedMessage.body).where(SimulatedMessage.kind == Channel.CALL)).one()
    gather = ElementTree.fromstring(twiml).find("Gather")
    assert gather.get("action").startswith("/twilio/voice/alert/") and "ladder against number 7" in twiml
    response = sim_app.test_client().post(gather.get("action"), data={"CallSid": "CA1", "From": FROM_NUMBER, "Digits": "1"})
    assert response.status_code == 200 and b"ladder against number 7" in response.data


# --- the exhaustive walk ------------------------------------------------------------------------

WALK_STATES = {
    "home, member": ("member", []),
    "home, landline member": ("landline", []),
    "home, pending caller": ("pending", []),
    "home, opted-out caller": ("opted_out", []),
    "home, unknown caller": ("unknown", []),
    "join: is it this street?": ("unknown", [("press", "101#")]),
    "report: say it": ("member", [("press", "1")]),
    "report: read back": ("member", [("press", "1"), ("say", "bins on fire behind the shops")]),
    "report: recording": ("member", [("press", "1"), ("silence",), ("silence",)]),
    "pending caller's message: read back": ("pending", [("press", "1"), ("say", "a message for you")]),
    "settings": ("member", [("press", "3")]),
    "settings on a landline": ("landline", [("press", "3")]),
    "leave: are you sure?": ("member", [("press", "3"), ("press", "3")]),
    "alert call": ("alert", []),
}
WALK_INPUTS = [{"Digits": key} for key in "0123456789*#"] + [
    None,  # silence
    {"SpeechResult": "?!"},  # garbage speech
    {"SpeechResult": "purple monkey dishwasher"},
]


def _caller(session, street, kind: str, n: int) -> str:
    number = (LANDLINES if kind in ("landline", "alert") else NUMBERS)[100 + n]
    if kind in ("member", "landline", "alert", "opted_out"):
        add_members(session, street, [number], alerts=AlertChannel.CALL if kind != "member" else AlertChannel.SMS)
    if kind == "opted_out":
        from hotline.residents import members

        members.opt_out(session, number)
    if kind == "pending":
        from hotline.residents import members

        members.join(session, members.get_or_create(session, number), street)
    session.commit()
    return number


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    """One hotline for the whole walk (each walk has a caller of its own), to keep the walk fast."""
    app = build_app(tmp_path_factory.mktemp("walk"), twilio=True, environ=NEVER_QUIET)
    rt = app.extensions["hotline"]
    with Session(rt.engine, expire_on_commit=False) as session:
        street = add_street(session, "Clayhall Avenue", 101, aliases=["Clayhall"])
        yield session, SignedClient(app), street
    rt.engine.dispose()


@pytest.mark.parametrize("state", WALK_STATES)
def test_exhaustive_walk_every_key_and_silence_at_every_state(walk, state):
    session, twilio, street = walk
    kind, path = WALK_STATES[state]
    ends_in_silence: set[tuple[str, str]] = set()
    for n, form in enumerate(WALK_INPUTS):
        number = _caller(session, street, kind, list(WALK_STATES).index(state) * len(WALK_INPUTS) + n)
        if kind == "alert":
            delivery = Delivery(member_id=member(session, number).id, phone=number, channel=Channel.CALL,
                                body="This is Street Watch, with an alert for Clayhall Avenue. Bins on fire.")
            session.add(delivery)
            session.commit()
            call = twilio.call(FROM_NUMBER, to=number, direction="outbound-api").start(f"/twilio/voice/alert/{delivery.id}", AnsweredBy="human")
        else:
            call = twilio.call(number).start()
        for action, *args in path:
            getattr(call, action)(*args)
        assert not call.ended, (state, call.text)
        call.silence() if form is None else call.send(**form)
        # Never a dead end: from here, silence alone leads to a polite goodbye. A step already seen to
        # end that way (same action, bar the step number) is not walked again, to keep the test fast.
        chain = []
        for _ in range(12):
            if call.ended or _listener(call) in ends_in_silence:
                break
            assert _listener(call)[1], (state, form, call.text)
            chain.append(_listener(call))
            call.silence()
        assert call.ended or _listener(call) in ends_in_silence, (state, form, call.transcript)
        ends_in_silence.update(chain)


def _listener(call) -> tuple[str, str]:
    node = call.listening()
    node = node if node is not None else call.listening("Record")
    action = re.sub(r"([?&])s=\d+&?", r"\1", node.get("action")) if node is not None else ""
    return (node.tag if node is not None else "", action)

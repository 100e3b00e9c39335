"""Fuzzing the voice routes (/twilio/voice, every step under it, and answered alert calls): whatever
comes in — keys, words, CallSids, numbers, steps, extra fields, in any order — the caller hears valid
British TwiML that ends in Gather, Redirect or Hangup and never leads off the hotline, never a 5xx;
a step delivered twice is answered the same and acts once; the database stays consistent."""

from __future__ import annotations

import itertools
import logging
from urllib.parse import urlencode, urljoin
from xml.etree import ElementTree

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, func, select

from hotline.models import AlertChannel, Channel, Delivery, InboundEvent, Member, Membership, Report, ReportState, Street
from tests.conftest import (
    FROM_NUMBER,
    LANDLINES,
    NUMBERS,
    PUBLIC_URL,
    SignedClient,
    add_members,
    add_street,
    build_app,
    check_voice_twiml,
)
from tests.delivery.test_faults import record
from tests.web.conftest import text_in
from tests.webhooks.test_fuzz import Failures, extra_fields, phones

STATES = ["home", "settings", "leave", "join", "report", "check", "recording", "alert", "bogus"]
ANSWERED_BY = ["human", "machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax", "unknown"]
known = st.sampled_from([*NUMBERS[:3], *LANDLINES[:2], NUMBERS[20], NUMBERS[21], NUMBERS[30], "anonymous", "+266696687"])
callers = st.one_of(known, known, phones)  # members of every kind, strangers, withheld, and anything at all
keys = st.one_of(st.none(), st.sampled_from(list("0123456789*#") + ["", "101#", "101", "999#", "12345678901234567890"]), st.text(max_size=30))
words = st.one_of(
    st.none(),
    st.sampled_from(["Clayhall Avenue", "clay hall", "yes", "send", "cancel", "two men with a ladder", "", "   "]),
    st.text(max_size=200),
    st.just("🚨" * 300 + "\u202e" + "é" * 3000),
)
small = st.one_of(st.integers(min_value=-3, max_value=12).map(str), st.text(max_size=12), st.just("99999999999999999999"))
query = st.dictionaries(st.sampled_from(["s", "n", "street", "f", "r", "x"]), small, max_size=5)
ours = st.sampled_from([f"CA{n:032x}" for n in range(4)])
call_sids = st.one_of(ours, ours, ours, st.text(min_size=1, max_size=60), st.just(""))
recordings = st.one_of(st.none(), st.just("https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE1"), st.text(max_size=40))
sequence = itertools.count(1)


@pytest.fixture(scope="module")
def voice_app(tmp_path_factory, request):
    """Members of every kind, and alert calls to landlines whose steps the fuzzer can answer."""
    app = build_app(tmp_path_factory.mktemp("voice-fuzz"), twilio=True, environ={"HOTLINE_QUIET_HOURS": "00:00-00:00"})
    rt = app.extensions["hotline"]
    with Session(rt.engine) as session:
        street = add_street(session, "Clayhall Avenue", 101, aliases=["Clayhall"], postcodes=["IG5 0AA"])
        add_street(session, "Clayhall Road", 102)  # a near namesake: spoken names can be ambiguous
        add_members(session, street, NUMBERS[:3])
        add_members(session, street, LANDLINES[:2], alerts=AlertChannel.CALL)
    text_in(rt, NUMBERS[20], "JOIN Clayhall Avenue")  # pending
    text_in(rt, NUMBERS[21], "JOIN Clayhall Avenue")
    text_in(rt, NUMBERS[21], "STOP")  # opted out
    text_in(rt, NUMBERS[0], "someone trying car doors")  # alert calls queued for the landlines
    with Session(rt.engine) as session:
        app.alert_ids = list(session.exec(select(Delivery.id).where(Delivery.channel == Channel.CALL)))
    assert len(app.alert_ids) == 2
    app.failures = Failures()
    app.requests, app.calls = 0, 0  # counted for docs/reliability.md
    failed_before = request.session.testsfailed
    logging.getLogger("hotline").addHandler(app.failures)
    yield app
    logging.getLogger("hotline").removeHandler(app.failures)
    with Session(rt.engine) as session:
        reports = session.exec(select(func.count()).select_from(Report)).one()
    if request.session.testsfailed == failed_before:  # the numbers of a passing run only
        record("voice routes fuzzed (single steps and walked calls)", requests=app.requests, calls_walked=app.calls,
               reports_by_phone=reports - 1, server_errors=0, invalid_twiml=0, logged_failures=0)
    rt.engine.dispose()


def signed_request(app, method: str, path: str, form: dict):
    app.requests += 1
    client = SignedClient(app)
    if method == "POST":
        return client.post(path, form)
    url = path + ("&" if "?" in path else "?") + urlencode(form) if form else path
    signature = client.validator.compute_signature(PUBLIC_URL + url, {})
    return client.client.get(url, headers={"X-Twilio-Signature": signature})


def check_answer(response, path: str) -> ElementTree.Element:
    root = check_voice_twiml(response, language=None)  # the module's callers may have chosen a language (key 8)
    for verb in root.iter():
        target = verb.get("action") if verb.tag in ("Gather", "Record") else verb.text if verb.tag == "Redirect" else None
        if target is not None:
            assert urljoin(PUBLIC_URL + path, target.strip()).startswith(PUBLIC_URL + "/twilio/voice"), target
    return root


def assert_consistent(rt) -> None:
    with Session(rt.engine) as session:
        for delivery in session.exec(select(Delivery).where(Delivery.report_id.is_not(None))):
            report = session.get(Report, delivery.report_id)
            assert report.state == ReportState.SENT and delivery.phone != report.phone
        pairs = session.exec(select(Delivery.report_id, Delivery.phone).where(Delivery.report_id.is_not(None))).all()
        assert len(pairs) == len(set(pairs))  # each number once per report
        phones_seen = session.exec(select(Member.phone)).all()
        assert len(phones_seen) == len(set(phones_seen))
        joined = session.exec(select(Membership.member_id, Membership.street_id).where(Membership.status.in_(["active", "pending"]))).all()
        assert len(joined) == len(set(joined))
        for event in session.exec(select(InboundEvent).where(InboundEvent.kind == "call")):
            assert event.reply and ElementTree.fromstring(event.reply).tag == "Response"  # replayed as it is


def table_counts(rt) -> tuple:
    with Session(rt.engine) as session:
        return tuple(session.exec(select(func.count()).select_from(m)).one() for m in (Report, Delivery, Member, Membership, InboundEvent))


def path_of(data, app) -> str:
    kind = data.draw(st.sampled_from(["start", "step", "step", "alert"]))
    if kind == "start":
        base = "/twilio/voice"
    elif kind == "step":
        base = "/twilio/voice/" + data.draw(st.one_of(st.sampled_from(STATES), st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True)))
    else:
        base = f"/twilio/voice/alert/{data.draw(st.one_of(st.sampled_from(app.alert_ids), st.integers(min_value=0, max_value=10**9)))}"
    params = data.draw(query)
    return base + ("?" + urlencode(params) if params else "")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_any_voice_request_gets_valid_twiml_and_a_twin_acts_once(voice_app, data):
    path = path_of(data, voice_app)
    form = {**data.draw(extra_fields), "CallSid": data.draw(call_sids), "From": data.draw(callers), "To": FROM_NUMBER}
    inputs = {
        "Digits": keys, "SpeechResult": words, "Confidence": st.sampled_from(["0.9", "0.1", "", "NaN"]), "RecordingUrl": recordings,
        "RecordingDuration": small, "AnsweredBy": st.one_of(st.sampled_from(ANSWERED_BY), st.text(max_size=20)),
    }
    for name, values in inputs.items():
        if data.draw(st.booleans(), label=f"send {name}"):
            value = data.draw(values, label=name)
            if value is not None:
                form[name] = value
    method = data.draw(st.sampled_from(["POST", "POST", "POST", "GET"]))
    rt = voice_app.extensions["hotline"]

    voice_app.failures.seen.clear()
    first = signed_request(voice_app, method, path, form)
    check_answer(first, path)
    counts = table_counts(rt)
    twin = signed_request(voice_app, method, path, form)  # Twilio delivers the same step again
    check_answer(twin, path)
    heard_something = any(form.get(k) is not None for k in ("Digits", "SpeechResult", "RecordingUrl"))
    if heard_something and form["CallSid"].strip():
        assert twin.data == first.data
        assert table_counts(rt) == counts
    assert_consistent(rt)
    assert not voice_app.failures.seen, voice_app.failures.seen.pop()


@st.composite
def moves(draw):
    kind = draw(st.sampled_from(["key", "key", "key", "words", "words", "silence", "record", "junk"]))
    if kind == "key":  # the menu's own keys most of the time, so walks get deep
        return {"Digits": draw(st.one_of(st.sampled_from(["1", "1", "1", "2", "2", "3", "9", "0", "#", "101"]), keys.filter(lambda k: k is not None)))}
    if kind == "words":
        return {"SpeechResult": draw(words.filter(lambda w: w is not None)), "Confidence": "0.8"}
    if kind == "record":
        return {"RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC0/Recordings/RE1", "RecordingDuration": draw(small)}
    if kind == "junk":
        return draw(extra_fields)
    return None


fresh_numbers, fresh_landlines = iter(NUMBERS[100:]), iter(LANDLINES[10:])


def fresh_member(app, *, landline: bool) -> str:
    """A new active member for each walk: earlier walks may have left, opted out or hit the report caps."""
    number = next(fresh_landlines if landline else fresh_numbers)
    rt = app.extensions["hotline"]
    with Session(rt.engine) as session:
        street = session.exec(select(Street).where(Street.code == 101)).one()
        add_members(session, street, [number], alerts=AlertChannel.CALL if landline else AlertChannel.SMS)
    return number


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(who=st.sampled_from(["member", "member", "landline", "anyone"]), anyone=callers,
       start=st.sampled_from(["menu", "menu", "menu", "alert"]), answered_by=st.sampled_from(ANSWERED_BY),
       prefix=st.sampled_from([[], [], [{"Digits": "1"}], [{"Digits": "1"}, {"SpeechResult": "a man with a crowbar"}],
                               [{"Digits": "1"}, {"SpeechResult": "a man with a crowbar"}, {"Digits": "1"}], [{"Digits": "3"}]]),
       steps=st.lists(moves(), max_size=14))
def test_a_call_walked_with_any_input_never_dead_ends(voice_app, who, anyone, start, answered_by, prefix, steps):
    """The way Twilio drives a call: each answer read, input posted to the Gather's action, Redirects followed."""
    voice_app.failures.seen.clear()
    client = SignedClient(voice_app)
    sid = f"CA{next(sequence) + 10**6:032x}"
    if start == "menu":
        caller = anyone if who == "anyone" else fresh_member(voice_app, landline=who == "landline")
        call = client.call(caller, sid=sid, language=None).start()  # a walk may choose a language (key 8)
    else:
        call = client.call(FROM_NUMBER, to=LANDLINES[0], sid=sid, direction="outbound-api", language=None)
        call.start(f"/twilio/voice/alert/{voice_app.alert_ids[0]}", AnsweredBy=answered_by)
    for move in prefix + steps:  # the prefixes lead into the deeper rooms: reporting by phone, settings
        if call.ended or call.requests > 40:
            break
        if move is None:
            call.silence()
        else:
            call.send(**move)  # PhoneCall checks every answer with check_voice_twiml
    assert call.ended or call.listening("Gather") is not None or call.listening("Record") is not None
    voice_app.requests, voice_app.calls = voice_app.requests + call.requests, voice_app.calls + 1
    assert_consistent(voice_app.extensions["hotline"])
    assert not voice_app.failures.seen, voice_app.failures.seen.pop()


@pytest.mark.parametrize(
    "path, form",
    [
        ("/twilio/voice/join?s=2&n=0&street=99999999999999999999", {"From": NUMBERS[40], "Digits": "1"}),  # was a database error
        ("/twilio/voice/alert/1?s=1&r=99999999999999999999", {"From": FROM_NUMBER, "Digits": "1"}),
        ("/twilio/voice/home?s=%C2%B2", {"From": NUMBERS[0], "Digits": "1"}),  # "²".isdigit(): was a 500
        ("/twilio/voice/home?s=1&n=%C2%B2", {"From": NUMBERS[0], "Digits": "9"}),
        ("/twilio/voice/recording?s=4", {"From": NUMBERS[0], "RecordingUrl": "https://api.twilio.com/x", "RecordingDuration": "²"}),
        ("/twilio/voice/home?s=1", {"From": NUMBERS[41], "Digits": "¹⁰¹"}),  # was an apology for a ValueError
        ("/twilio/voice/home?s=1", {"From": NUMBERS[0], "Digits": "2", "CallSid": "CA\x00" + "5" * 32}),  # NUL: was an apology on PostgreSQL
    ],
)
def test_odd_numbers_in_a_step_are_answered_not_failed(voice_app, path, form):
    voice_app.failures.seen.clear()
    response = SignedClient(voice_app).post(path, {"CallSid": f"CA{next(sequence) + 10**7:032x}", "To": FROM_NUMBER, **form})
    root = check_answer(response, path)
    assert "not working properly" not in " ".join(say.text for say in root.iter("Say"))
    assert not voice_app.failures.seen, voice_app.failures.seen.pop()

"""The voice menu and alert calls in every language: each <Say> in the caller's language's Twilio voice,
each <Gather> listening with its recogniser (PhoneCall(language=…) checks every answer), the words from
that language's catalogue (Urdu: English words from the English voice, an Urdu recogniser: README,
"Languages"), 8 to choose another language, and the exhaustive walk of the menu in every language."""

from __future__ import annotations

import logging
from urllib.parse import urlparse

import pytest
from sqlmodel import Session, select

from hotline import messages
from hotline.db import utcnow
from hotline.delivery import outbox
from hotline.models import AlertChannel, Channel, Delivery, Member, Report
from hotline.reports import intake
from hotline.residents import members
from hotline.translations import CODES, LANGUAGES, speaking
from tests.conftest import FROM_NUMBER, LANDLINES, NEVER_QUIET, NUMBERS, SignedClient, add_members, add_street, build_app, speaks
from tests.voice.test_menu import WALK_INPUTS, WALK_STATES, _listener

pytestmark = pytest.mark.never_quiet  # no quiet hours: the tests must not depend on the hour they run at
STREET = "Clayhall Avenue"



@pytest.fixture
def street(session):
    clayhall = add_street(session, STREET, 101, aliases=["Clayhall"], postcodes=["IG5 0AA"])
    add_members(session, clayhall, NUMBERS[:3])
    return clayhall


@pytest.fixture
def scheme(rt):
    return rt.config.scheme_name


def spoken(code: str, build):
    """What a caller in `code` hears: the catalogue its voice can say."""
    with speaking(LANGUAGES[code].speaks):
        return build()


def member(session, phone: str) -> Member:
    session.expire_all()
    return session.exec(select(Member).where(Member.phone == phone)).one()


def voices(call) -> set[tuple[str, str]]:
    return {(say.get("voice"), say.get("language")) for say in call.root.iter("Say")}


def recognisers(call) -> set[str]:
    return {gather.get("language") for gather in call.root.iter("Gather")}


def in_voice_of(call, code: str) -> None:
    lang = LANGUAGES[code]
    assert voices(call) == {(lang.voice, lang.say_language)}, call.root
    assert recognisers(call) <= {lang.speech}


def report(rt, session, phone: str, text: str) -> Report:
    intake.submit(session=session, config=rt.config, phone=phone, text=text, member=members.find(session, phone))
    session.commit()
    return session.exec(select(Report).where(Report.text == text)).one()


# --- the menu in each language ------------------------------------------------------------------


@pytest.mark.parametrize("code", CODES)
def test_a_call_from_a_member_in_each_language_is_in_its_voice_and_words_throughout(rt, session, twilio, street, code):
    speaks(session, street, NUMBERS[5], code)
    report(rt, session, NUMBERS[0], "white van outside number 12")
    lang = LANGUAGES[code]

    call = twilio.call(NUMBERS[5], language=code).start()  # PhoneCall checks voice and recogniser on every answer
    in_voice_of(call, code)
    assert call.listening().get("language") == lang.speech
    assert spoken(code, lambda: messages.voice_greeting(rt.config.scheme_name, [STREET])) in call.text
    assert spoken(code, messages.voice_main_menu) in call.text
    if lang.speaks != "en":
        assert spoken(code, messages.voice_main_menu) != spoken("en", messages.voice_main_menu)

    call.press("9")
    in_voice_of(call, code)
    assert call.text == spoken(code, messages.voice_main_menu)

    call.press("2")
    in_voice_of(call, code)
    assert spoken(code, lambda: messages.voice_alerts_intro(1)) in call.text
    assert "white van outside number 12" in call.text  # what the resident said, as they said it

    call.press("3")
    in_voice_of(call, code)
    assert call.text == spoken(code, lambda: messages.voice_settings(False, True, [STREET]))
    call.press("2")
    assert spoken(code, messages.voice_alerts_by_call) in call.text
    assert member(session, NUMBERS[5]).alerts == AlertChannel.CALL

    call.press("1")
    in_voice_of(call, code)
    assert call.text == spoken(code, messages.voice_report_prompt)
    assert call.listening().get("input") == "speech" and call.listening().get("language") == lang.speech
    call.say("a man with a crowbar at the garages")
    in_voice_of(call, code)
    assert spoken(code, lambda: messages.voice_read_back("a man with a crowbar at the garages")) in call.text
    call.press("3")
    assert spoken(code, messages.voice_report_cancelled) in call.text
    assert member(session, NUMBERS[5]).language == code


@pytest.mark.parametrize("code", CODES)
def test_a_member_in_each_language_reports_by_phone_and_the_street_gets_their_words(rt, session, twilio, twilio_api, street, code):
    speaks(session, street, NUMBERS[5], code)
    words = "two men trying car doors on the corner"
    call = twilio.call(NUMBERS[5], language=code).start().press("1").say(words).press("1")
    sent = session.exec(select(Report)).one()
    assert sent.text == words
    assert spoken(code, lambda: messages.voice_report_sent(sent.ref, 3)) in call.text
    bodies = [d.body for d in session.exec(select(Delivery).where(Delivery.report_id == sent.id))]
    assert len(bodies) == 3 and all(words in body for body in bodies)


# --- alert calls ---------------------------------------------------------------------------------


def place_calls(rt) -> None:
    with Session(rt.engine) as placing:
        outbox.dispatch_due(session=placing, carrier=rt.carrier, config=rt.config, limit=100, now=utcnow())


def alert_call_to(rt, session, phone: str) -> Delivery:
    session.expire_all()
    return session.exec(select(Delivery).where(Delivery.phone == phone, Delivery.channel == Channel.CALL)).one()


@pytest.mark.parametrize("code", CODES)
def test_an_alert_call_to_a_landline_member_in_each_language_is_in_its_voice(rt, session, twilio, street, scheme, code):
    speaks(session, street, LANDLINES[0], code, alerts=AlertChannel.CALL)
    text = "ladder against the back of number 7"
    made = report(rt, session, NUMBERS[0], text)
    delivery = alert_call_to(rt, session, LANDLINES[0])
    local = made.created_at.astimezone(rt.config.timezone)
    assert delivery.language == code
    assert delivery.body == spoken(code, lambda: messages.alert_call(scheme, STREET, local, text))
    if LANGUAGES[code].speaks != "en":
        assert delivery.body != spoken("en", lambda: messages.alert_call(scheme, STREET, local, text))

    call = twilio.call(FROM_NUMBER, to=LANDLINES[0], direction="outbound-api", language=code)
    call.start(f"/twilio/voice/alert/{delivery.id}", AnsweredBy="human")
    in_voice_of(call, code)
    assert call.said == [delivery.body, spoken(code, messages.voice_alert_options)]
    assert text in call.text
    call.press("1")
    in_voice_of(call, code)
    assert call.said[0] == spoken(code, messages.voice_alert_heard) and delivery.body in call.text
    call.press("2")  # a landline has no other way: opted out until it calls back
    assert call.said == [spoken(code, lambda: messages.voice_calls_stopped(scheme))] and call.ended
    assert member(session, LANDLINES[0]).opted_out_at is not None


@pytest.mark.parametrize("code", ["ur", "pl"])
def test_a_mobile_member_stopping_alert_calls_hears_it_in_their_voice_and_gets_the_text_in_their_language(
        rt, session, twilio, twilio_api, street, code):
    """Urdu: the call is said in English, but the text that follows is the Urdu catalogue's."""
    speaks(session, street, NUMBERS[5], code, alerts=AlertChannel.CALL)
    report(rt, session, NUMBERS[0], "a dog loose on the green")
    place_calls(rt)
    delivery = alert_call_to(rt, session, NUMBERS[5])
    assert [c["To"] for c in twilio_api.calls] == [NUMBERS[5]]
    call = twilio.call(FROM_NUMBER, to=NUMBERS[5], direction="outbound-api", language=code)
    call.start(f"/twilio/voice/alert/{delivery.id}", AnsweredBy="human").press("2")
    assert call.said == [spoken(code, messages.voice_calls_stopped_to_text)] and call.ended
    assert member(session, NUMBERS[5]).alerts == AlertChannel.SMS
    told = session.exec(select(Delivery).where(Delivery.phone == NUMBERS[5], Delivery.channel == Channel.SMS)).one()
    with speaking(code):
        assert (told.body, told.language) == (messages.stopped_calls_sms(), code)
    with speaking("en"):
        assert told.body != messages.stopped_calls_sms()


@pytest.mark.parametrize("code", CODES)
def test_an_alert_left_on_a_machine_and_confirmed_by_calling_back_is_in_the_members_voice(
        rt, session, twilio, twilio_api, street, scheme, code):
    speaks(session, street, LANDLINES[0], code, alerts=AlertChannel.CALL)
    report(rt, session, NUMBERS[0], "smoke from the garages behind number 3")
    place_calls(rt)
    delivery = alert_call_to(rt, session, LANDLINES[0])
    call = twilio.call(FROM_NUMBER, to=LANDLINES[0], direction="outbound-api", language=code)
    call.start(f"/twilio/voice/alert/{delivery.id}", AnsweredBy="machine_end_beep")
    in_voice_of(call, code)
    assert call.said == [delivery.body, spoken(code, lambda: messages.voice_alert_left_on_machine(scheme))] and call.ended

    back = twilio.call(LANDLINES[0], language=code).start()  # "call this number and press 1"
    in_voice_of(back, code)
    assert delivery.body in back.text and "smoke from the garages behind number 3" in back.text
    assert back.listening().get("action").startswith("/twilio/voice/confirm")
    back.press("1")
    in_voice_of(back, code)
    assert back.said[0] == spoken(code, messages.voice_confirmed)
    assert spoken(code, messages.voice_main_menu) in back.text
    session.expire_all()
    assert session.get(Delivery, delivery.id).acknowledged_by == "call"


def test_urdu_is_said_in_english_by_the_english_voice_and_heard_by_an_urdu_recogniser(rt, session, twilio, street, scheme):
    """Twilio has no voice that reads Urdu script: README says Urdu callers hear English (Polly.Amy, en-GB)
    while the recogniser listens for Urdu; their texts are in Urdu."""
    urdu = LANGUAGES["ur"]
    assert (urdu.voice, urdu.say_language, urdu.speech, urdu.speaks) == ("Polly.Amy", "en-GB", "ur-PK", "en")
    speaks(session, street, NUMBERS[5], "ur")
    speaks(session, street, LANDLINES[0], "ur", alerts=AlertChannel.CALL)

    call = twilio.call(NUMBERS[5], language="ur").start()
    assert voices(call) == {("Polly.Amy", "en-GB")} and recognisers(call) == {"ur-PK"}
    with speaking("en"):
        assert messages.voice_main_menu() in call.text  # English words
    call.press("1")
    assert call.listening().get("language") == "ur-PK"

    made = report(rt, session, NUMBERS[0], "a car alarm going off for an hour")
    delivery = alert_call_to(rt, session, LANDLINES[0])
    local = made.created_at.astimezone(rt.config.timezone)
    with speaking("en"):
        assert delivery.body == messages.alert_call(scheme, STREET, local, "a car alarm going off for an hour")
    alert = twilio.call(FROM_NUMBER, to=LANDLINES[0], direction="outbound-api", language="ur")
    alert.start(f"/twilio/voice/alert/{delivery.id}", AnsweredBy="human")
    assert voices(alert) == {("Polly.Amy", "en-GB")} and recognisers(alert) == {"ur-PK"}

    sms = session.exec(select(Delivery).where(Delivery.phone == NUMBERS[5], Delivery.report_id == made.id)).one()
    with speaking("ur"):
        assert sms.body == messages.broadcast(STREET, made.ref, local, "a car alarm going off for an hour")
    with speaking("en"):
        assert sms.body != messages.broadcast(STREET, made.ref, local, "a car alarm going off for an hour")


# --- 8: another language -------------------------------------------------------------------------


@pytest.mark.parametrize("code", CODES)
def test_eight_offers_every_language_each_in_its_own_voice_and_a_number_sets_it(rt, session, twilio, street, code):
    speaks(session, street, NUMBERS[5], code)
    call = twilio.call(NUMBERS[5], language=code).start().press("8")
    says = list(call.listening().iter("Say"))
    offered = [((say.get("voice"), say.get("language")), say.text) for say in says]
    expected = [
        ((lang.voice, lang.say_language), spoken(other, lambda n=n, lang=lang: messages.voice_language_choice(n, lang)))
        for n, (other, lang) in enumerate(LANGUAGES.items(), start=1)
    ]
    assert offered[:len(CODES)] == expected
    assert offered[len(CODES):] == [((LANGUAGES[code].voice, LANGUAGES[code].say_language), spoken(code, messages.voice_language_more))]
    assert call.listening().get("language") == LANGUAGES[code].speech
    assert LANGUAGES["pl"].native in call.text and LANGUAGES["bn"].native in call.text

    call.press("9")  # again, still in the caller's own recogniser
    assert [say.text for say in call.listening().iter("Say")] == [text for _, text in offered]
    call.press("0")  # back, nothing changed
    in_voice_of(call, code)
    assert call.text == spoken(code, messages.voice_main_menu) and member(session, NUMBERS[5]).language == code

    chosen = CODES[(CODES.index(code) + 1) % len(CODES)]  # every language is chosen once, from another
    call.press("8")
    call.language = chosen  # from the next answer on, every <Say> and <Gather> is in the new language
    call.press(str(CODES.index(chosen) + 1))
    assert member(session, NUMBERS[5]).language == chosen
    in_voice_of(call, chosen)
    assert call.said[0] == spoken(chosen, messages.voice_language_set)
    assert spoken(chosen, messages.voice_main_menu) in call.text
    call.press("9")
    in_voice_of(call, chosen)
    again = twilio.call(NUMBERS[5], language=chosen).start()  # and on the next call
    in_voice_of(again, chosen)


def test_a_key_that_is_no_language_asks_again_and_sets_nothing(rt, session, twilio, street):
    speaks(session, street, NUMBERS[5], "pl")
    call = twilio.call(NUMBERS[5], language="pl").start().press("8").press("*")
    assert spoken("pl", messages.voice_wrong_key) in call.text
    assert call.listening() is not None and urlparse(call.listening().get("action")).path.endswith("/language")
    assert member(session, NUMBERS[5]).language == "pl"


def test_a_pending_member_can_choose_a_language_by_phone(rt, session, twilio, street):
    members.join(session, members.get_or_create(session, NUMBERS[40]), street)
    session.commit()
    call = twilio.call(NUMBERS[40]).start().press("8")
    call.language = "ta"
    call.press(str(CODES.index("ta") + 1))
    assert member(session, NUMBERS[40]).language == "ta"
    assert spoken("ta", lambda: messages.voice_pending([STREET])) in call.text


# --- the exhaustive walk, in every language -------------------------------------------------------

LANGUAGE_STATES = {
    "language menu": ("member", [("press", "8")]),
    "language menu, pending caller": ("pending", [("press", "8")]),
}
STATES = {**WALK_STATES, **LANGUAGE_STATES}
# Every language walks every state with silence and garbage speech; the keys (and the other words) are
# shared out deterministically, each language a quarter of them at each state, turning with the state and the
# language, so that every key at every state is walked in two languages and the whole walk stays within a
# few seconds a language. (English is also walked with every input by tests/voice/test_menu.py.)
ALWAYS = [None, {"SpeechResult": "?!"}]
ROTATED = [form for form in WALK_INPUTS if form not in ALWAYS]
SHARE = 4


def walked(code: str, state: str) -> list:
    turn = CODES.index(code) + list(STATES).index(state)
    return ALWAYS + [form for n, form in enumerate(ROTATED) if (n + turn) % SHARE == 0]


def test_the_walk_covers_every_input_at_every_state_in_at_least_two_languages():
    assert len(ALWAYS) == 2 and len(ROTATED) == len(WALK_INPUTS) - 2
    for state in STATES:
        for form in ROTATED:
            assert sum(form in walked(code, state) for code in CODES) >= 2, (state, form)
        for code in CODES:
            assert all(form in walked(code, state) for form in ALWAYS)


class Numbers:
    """Fresh numbers for the walk's callers: mobiles (+44 7911 2xxxxx, valid) and the drama-range landlines."""

    def __init__(self):
        self.mobiles = (f"+4479112{n:05d}" for n in range(100000))
        self.landlines = iter(LANDLINES)

    def next(self, kind: str) -> str:
        return next(self.landlines if kind in ("landline", "alert") else self.mobiles)


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    """One hotline for the whole walk, every caller a new number in the language walked."""
    app = build_app(tmp_path_factory.mktemp("walk-languages"), twilio=True, environ=NEVER_QUIET)
    rt = app.extensions["hotline"]
    with Session(rt.engine, expire_on_commit=False) as session:
        street = add_street(session, STREET, 101, aliases=["Clayhall"])
        yield session, SignedClient(app), street, Numbers()
    rt.engine.dispose()


def _caller(session, street, numbers: Numbers, kind: str, code: str) -> str:
    """A caller of `kind` whose language is `code` (an "unknown" caller: a number we know, in no street)."""
    number = numbers.next(kind)
    if kind in ("member", "landline", "alert", "opted_out"):
        add_members(session, street, [number], alerts=AlertChannel.CALL if kind != "member" else AlertChannel.SMS)
    if kind == "opted_out":
        members.opt_out(session, number)
    if kind == "pending":
        members.join(session, members.get_or_create(session, number), street)
    found = members.get_or_create(session, number)
    found.language = code
    session.add(found)
    session.commit()
    return number


def _send(call, form) -> None:
    """One input; a number pressed at the language menu changes the language the next answer must be in."""
    node = call.listening()
    if form is None:
        call.silence()
        return
    digits = form.get("Digits", "")
    at_language_menu = node is not None and urlparse(node.get("action")).path.endswith("/language")
    if at_language_menu and digits in [str(n) for n in range(1, len(CODES) + 1)]:
        call.language = CODES[int(digits) - 1]
    call.send(**form)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("code", CODES)
def test_exhaustive_walk_in_every_language(walk, caplog, code, state):
    """Silence, garbage speech and a share of the keys at every state, the caller's language set to `code`: every
    answer valid TwiML in that language's voice and recogniser (PhoneCall checks), and silence from any
    answer leads to a polite goodbye, never a dead end."""
    session, twilio, street, numbers = walk
    kind, path = STATES[state]
    ends_in_silence: set[tuple[str, str]] = set()
    caplog.set_level(logging.ERROR, logger="hotline")
    for form in walked(code, state):
        number = _caller(session, street, numbers, kind, code)
        if kind == "alert":
            delivery = Delivery(member_id=members.find(session, number).id, phone=number, channel=Channel.CALL, language=code,
                                body=spoken(code, lambda: messages.alert_call("Street Watch", STREET, street.created_at, "Bins on fire.")))
            session.add(delivery)
            session.commit()
            call = twilio.call(FROM_NUMBER, to=number, direction="outbound-api", language=code)
            call.start(f"/twilio/voice/alert/{delivery.id}", AnsweredBy="human")
        else:
            call = twilio.call(number, language=code).start()
        for action, *args in path:
            getattr(call, action)(*args)
        assert not call.ended, (state, call.text)
        _send(call, form)
        chain = []
        for _ in range(12):
            if call.ended or _listener(call) in ends_in_silence:
                break
            assert _listener(call)[1], (code, state, form, call.text)
            chain.append(_listener(call))
            call.silence()
        assert call.ended or _listener(call) in ends_in_silence, (code, state, form, call.transcript)
        ends_in_silence.update(chain)
        if kind != "alert":
            assert member(session, number).language == call.language  # only the language menu changes it
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], errors  # e.g. "broken placeholder in the … catalogue": English said in another voice


# --- when a step fails ------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["pl", "pa", "ur"])
def test_a_step_that_fails_apologises_in_the_language_the_call_is_in(rt, session, twilio, street, monkeypatch, code):
    """A bug in a step, or the database gone between two steps: the caller's language cannot be read then, so
    it rides in the step URLs the call was given, and the apology is said in it (Urdu: the English voice)."""
    from hotline.db import make_engine
    from hotline.voice import menu

    speaks(session, street, NUMBERS[5], code)
    apology = spoken(code, lambda: messages.voice_error())

    def broken(**_):
        raise RuntimeError("a bug")

    call = twilio.call(NUMBERS[5], language=code).start()
    monkeypatch.setattr(menu, "answer", broken)
    call.press("1")
    assert call.ended and apology in call.text
    in_voice_of(call, code)
    monkeypatch.undo()

    call, engine = twilio.call(NUMBERS[5], language=code).start(), rt.engine
    rt.engine = make_engine("sqlite:////nonexistent/dir/hotline.db")
    try:
        call.press("1")
    finally:
        rt.engine = engine
    assert call.ended and apology in call.text
    in_voice_of(call, code)


def test_an_english_call_keeps_its_step_urls_as_they_were(rt, session, twilio, street):
    call = twilio.call(NUMBERS[0]).start()
    assert "l=" not in call.listening().get("action")

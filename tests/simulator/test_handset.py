"""The pretend handset follows TwiML as Twilio does: a small menu fixture stands in for the hotline."""

from __future__ import annotations

from twilio.twiml.voice_response import Gather, VoiceResponse

from hotline.simulator import handset
from hotline.simulator.handset import Call

GB = {"language": "en-GB", "voice": "Polly.Amy"}


def menu() -> str:
    response = VoiceResponse()
    response.say("Welcome to the test line.", **GB)
    gather = Gather(action="/twilio/fixture/choice", method="POST", input="dtmf speech", num_digits=1, language="en-GB")
    gather.say("Press 1 to report, or say report.", **GB)
    response.append(gather)
    response.say("We did not hear anything.", **GB)
    response.redirect("/twilio/fixture/menu")
    return str(response)


def choice(form: dict) -> str:
    response = VoiceResponse()
    if form.get("Digits") == "1" or form.get("SpeechResult") == "report":
        response.say("Tell us what you saw after the beep.", **GB)
        response.record(action="record-done", max_length=60, transcribe_callback="/twilio/fixture/transcript")
    else:
        response.say(f"You pressed {form.get('Digits', 'nothing')}.", **GB)
        response.hangup()
    return str(response)


class FixtureLine:
    """The hotline's webhooks, as far as the handset can tell: URL in, TwiML out; every request kept."""

    def __init__(self, pages: dict | None = None):
        self.requests: list[tuple[str, str, dict]] = []
        self.pages = {
            "/twilio/fixture/menu": lambda form: menu(),
            "/twilio/fixture/choice": choice,
            "/twilio/fixture/record-done": lambda form: twiml("say", "Thank you, goodbye.", **GB),
            "/twilio/fixture/transcript": lambda form: "",
            **(pages or {}),
        }

    def fetch(self, url: str, method: str, form: dict) -> tuple[int, str]:
        self.requests.append((url, method, form))
        page = self.pages.get(url)
        if page is None:
            return 404, "not found"
        if isinstance(page, int):
            return page, "oops"
        return 200, page(form)

    def last(self, url: str) -> dict:
        return [form for u, _, form in self.requests if u == url][-1]


def twiml(verb: str, *args, **kw) -> str:
    response = VoiceResponse()
    getattr(response, verb)(*args, **kw)
    return str(response)


def caller() -> Call:
    return Call.new(from_="+447700900123", to="+447700900000", account_sid="AC" + "0" * 32)


def said(step) -> list[str]:
    return [line.text for line in step.lines if line.kind == "say"]


def test_handset_reads_the_greeting_and_waits_at_the_gather():
    line = FixtureLine()
    step = handset.fetch("/twilio/fixture/menu", call=caller(), webhooks=line)
    assert said(step) == ["Welcome to the test line.", "Press 1 to report, or say report."]
    assert step.wait.kind == "gather"
    assert step.wait.action == "/twilio/fixture/choice"
    assert step.wait.input == ["dtmf", "speech"] and step.wait.num_digits == 1
    assert all(line.language == "en-GB" for line in step.lines if line.kind == "say")


def test_first_request_carries_twilios_call_parameters():
    line, call = FixtureLine(), caller()
    handset.fetch("/twilio/fixture/menu", call=call, webhooks=line, extra={"CallStatus": "ringing"})
    form = line.last("/twilio/fixture/menu")
    assert form["CallSid"] == call.sid and form["CallSid"].startswith("CA") and len(form["CallSid"]) == 34
    assert form["From"] == "+447700900123" and form["To"] == "+447700900000"
    assert form["AccountSid"].startswith("AC") and form["Direction"] == "inbound" and form["CallStatus"] == "ringing"


def test_pressed_keys_are_posted_as_digits_to_the_gather_action():
    line, call = FixtureLine(), caller()
    step = handset.fetch("/twilio/fixture/menu", call=call, webhooks=line)
    step = handset.respond(step.wait, call=call, webhooks=line, digits="7")
    assert line.last("/twilio/fixture/choice")["Digits"] == "7"
    assert said(step) == ["You pressed 7."] and step.ended


def test_spoken_words_are_posted_as_speech_result():
    line, call = FixtureLine(), caller()
    step = handset.fetch("/twilio/fixture/menu", call=call, webhooks=line)
    step = handset.respond(step.wait, call=call, webhooks=line, speech="report")
    form = line.last("/twilio/fixture/choice")
    assert form["SpeechResult"] == "report" and "Digits" not in form and float(form["Confidence"]) > 0
    assert step.wait.kind == "record"


def test_silence_plays_the_rest_of_the_document_and_follows_its_redirect():
    line, call = FixtureLine(), caller()
    step = handset.fetch("/twilio/fixture/menu", call=call, webhooks=line)
    step = handset.respond(step.wait, call=call, webhooks=line)
    assert "/twilio/fixture/choice" not in [url for url, _, _ in line.requests]
    assert said(step)[0] == "We did not hear anything."
    assert said(step)[1] == "Welcome to the test line."  # the menu again, after the redirect
    assert step.wait.kind == "gather"


def test_action_on_empty_result_posts_even_without_input():
    def empty_menu(form):
        response = VoiceResponse()
        response.gather(action="/twilio/fixture/choice", action_on_empty_result=True, input="dtmf")
        return str(response)

    line, call = FixtureLine({"/twilio/fixture/menu": empty_menu}), caller()
    step = handset.fetch("/twilio/fixture/menu", call=call, webhooks=line)
    step = handset.respond(step.wait, call=call, webhooks=line)
    assert "Digits" not in line.last("/twilio/fixture/choice")
    assert said(step) == ["You pressed nothing."]


def test_a_recording_posts_its_url_and_the_transcription_callback_gets_the_words():
    line, call = FixtureLine(), caller()
    step = handset.fetch("/twilio/fixture/menu", call=call, webhooks=line)
    step = handset.respond(step.wait, call=call, webhooks=line, digits="1")
    assert step.wait.action == "/twilio/fixture/record-done"  # relative to the document's URL
    step = handset.record(step.wait, call=call, webhooks=line, words="two men in the alley", recording_url="http://localhost/simulator/recordings/{sid}")
    done = line.last("/twilio/fixture/record-done")
    assert done["RecordingUrl"].startswith("http://localhost/simulator/recordings/RE")
    assert done["RecordingSid"].startswith("RE") and int(done["RecordingDuration"]) >= 1 and done["Digits"] == "#"
    assert line.last("/twilio/fixture/transcript")["TranscriptionText"] == "two men in the alley"
    assert said(step) == ["Thank you, goodbye."] and step.ended


def test_hanging_up_during_a_recording_still_posts_it():
    line, call = FixtureLine(), caller()
    step = handset.fetch("/twilio/fixture/menu", call=call, webhooks=line)
    step = handset.respond(step.wait, call=call, webhooks=line, digits="1")
    step = handset.record(step.wait, call=call, webhooks=line, words="a van", recording_url="x/{sid}", hung_up=True)
    assert line.last("/twilio/fixture/record-done")["Digits"] == "hangup"
    assert step.ended and step.lines == []


def test_an_application_error_is_what_twilio_would_say():
    line = FixtureLine({"/twilio/fixture/menu": 500})
    step = handset.fetch("/twilio/fixture/menu", call=caller(), webhooks=line)
    assert step.ended
    assert any(l.kind == "error" and "HTTP 500" in l.text and handset.APPLICATION_ERROR in l.text for l in step.lines)


def test_a_redirect_loop_is_cut_short():
    loop = lambda form: twiml("redirect", "/twilio/fixture/menu")  # noqa: E731
    line = FixtureLine({"/twilio/fixture/menu": loop})
    step = handset.fetch("/twilio/fixture/menu", call=caller(), webhooks=line)
    assert step.ended and len(line.requests) == handset.MAX_HOPS
    assert any("redirects in a row" in l.text for l in step.lines)


def test_urls_outside_the_hotlines_webhooks_are_not_followed():
    away = lambda form: twiml("redirect", "https://evil.example.com/next")  # noqa: E731
    line = FixtureLine({"/twilio/fixture/menu": away})
    step = handset.fetch("/twilio/fixture/menu", call=caller(), webhooks=line)
    assert step.ended and len(line.requests) == 1
    assert any("only the hotline's /twilio/" in l.text for l in step.lines)


def test_absolute_urls_to_the_hotline_are_followed_by_path():
    onward = lambda form: twiml("redirect", "https://hotline.example.org/twilio/fixture/choice?step=2")  # noqa: E731
    line = FixtureLine({"/twilio/fixture/menu": onward, "/twilio/fixture/choice?step=2": lambda form: twiml("say", "Step two.", **GB)})
    step = handset.fetch("/twilio/fixture/menu", call=caller(), webhooks=line)
    assert said(step) == ["Step two."]


def test_an_inline_alert_call_plays_to_the_end_and_hangs_up():
    from hotline.delivery import calls

    step = handset.play(calls.alert_twiml("Alert for Clayhall Avenue: a red van."), base=handset.INLINE_BASE, call=caller(), webhooks=FixtureLine())
    assert said(step) == ["Alert for Clayhall Avenue: a red van.", "Again: Alert for Clayhall Avenue: a red van."]
    assert any(l.kind == "pause" for l in step.lines) and step.ended


def test_a_say_in_american_english_is_flagged_by_its_language():
    step = handset.play(twiml("say", "Hello"), base=handset.INLINE_BASE, call=caller(), webhooks=FixtureLine())
    assert step.lines[0].kind == "say" and step.lines[0].language is None

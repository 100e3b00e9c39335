"""What a caller hears next, as data: a Turn of sentences and the Prompt that listens for the answer.

The voice menu and alert calls decide Turns; `render` turns one into TwiML with the helper library.
Every document it builds ends in a Redirect (no answer) or a Hangup, so a call never dead-ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from twilio.twiml.voice_response import VoiceResponse

from hotline import translations

KEY_TIMEOUT = 8  # seconds to wait for a key: older callers take their time
RECORD_SECONDS = 90
SAY_MAX = 4000  # Twilio refuses a <Say> much longer than this
# Characters XML 1.0 cannot carry at all: one NUL in a text read out would make the whole document invalid.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def voice(code: str | None) -> dict:
    """<Say> attributes for a member's language (<Say> alone would be American English)."""
    lang = translations.LANGUAGES[translations.known(code)]
    return {"voice": lang.voice, "language": lang.say_language}


def speakable(text: str) -> str:
    """Text that can go into a <Say>: no characters XML cannot carry, one space between words, not too long."""
    return " ".join(_NOT_XML.sub(" ", text or "").split())[:SAY_MAX]


@dataclass
class Prompt:
    """Ask, then listen. `state` and `params` name the step the answer goes to; `tries` counts failures."""

    state: str
    say: list  # sentences; a (sentence, language code) pair is said in that language's voice
    listen: str = "dtmf"  # dtmf (one key) | speech | dtmf speech (digits ending in #, or words) | record
    tries: int = 0
    params: dict = field(default_factory=dict)
    hints: list[str] = field(default_factory=list)


@dataclass
class Turn:
    """Sentences said first, then a Prompt, or no Prompt: the call ends politely."""

    say: list = field(default_factory=list)  # as Prompt.say
    prompt: Prompt | None = None
    queued: int = 0  # deliveries written to the outbox, so the dispatcher can be woken
    language: str | None = None  # the caller's: the voice of every <Say>, the recogniser of every <Gather>


@dataclass
class Heard:
    """What came with one step of a call: who, which step, and the key, words or recording, if any."""

    sid: str
    phone: str | None  # E.164; None when the number is withheld
    step: int = 0  # 0 on Twilio's first request of the call, then one more on every step we answer
    tries: int = 0
    params: dict = field(default_factory=dict)
    digits: str | None = None  # None: no key came (as opposed to "" when only # was pressed)
    speech: str | None = None
    recording_url: str | None = None
    recording_seconds: int = 0
    answered_by: str | None = None
    language: str | None = None  # the language of the turn that asked for this step (`l` in its URL; English without one)

    @property
    def silent(self) -> bool:
        return self.digits is None and self.speech is None and self.recording_url is None

    def number(self, name: str) -> int:
        value = str(self.params.get(name, ""))
        # ASCII only ("²".isdigit() is true, int("²") fails), and within a database integer: a row id.
        return min(int(value), 10**9) if value.isascii() and value.isdigit() else 0


# url(state, tries, params) -> the URL Twilio should request next (relative to the current one is fine)
UrlFor = Callable[[str, int, dict], str]


def _gather(response: VoiceResponse, prompt: Prompt, action: str, language: str):
    speech = translations.LANGUAGES[language].speech
    options = {"input": prompt.listen, "language": speech, "action": action, "method": "POST", "timeout": KEY_TIMEOUT}
    if prompt.listen == "dtmf":
        options["num_digits"] = 1
    if "speech" in prompt.listen:
        options["speech_timeout"] = "auto"
    if prompt.listen == "dtmf speech":
        options["finish_on_key"] = "#"
    if prompt.hints:
        options["hints"] = ", ".join(speakable(h).replace(",", " ") for h in prompt.hints)[:2000]
    return response.gather(**options)


def _say(verb, lines: list, language: str) -> None:
    for line in lines:
        text, code = line if isinstance(line, tuple) else (line, language)
        text = speakable(text)
        if text:  # an empty <Say> is an error at Twilio
            verb.say(text, **voice(code))


def render(turn: Turn, url: UrlFor) -> VoiceResponse:
    language = translations.known(turn.language)
    response = VoiceResponse()
    _say(response, turn.say, language)
    prompt = turn.prompt
    if prompt is None:
        response.hangup()
        return response
    # The call's language rides in the step URLs (`l`), so a step that fails before it can read the caller
    # (the database away) still apologises in their language. English, the usual case, adds nothing.
    params = prompt.params if language == translations.DEFAULT else {**prompt.params, "l": language}
    action = url(prompt.state, prompt.tries, params)
    if prompt.listen == "record":
        _say(response, prompt.say, language)
        response.record(
            action=action, method="POST", max_length=RECORD_SECONDS, timeout=5,
            finish_on_key="#", play_beep=True, trim="trim-silence",
        )
    else:
        gather = _gather(response, prompt, action, language)
        _say(gather, prompt.say, language)
    # Reached only when nothing came: the same step again, one try further on.
    response.redirect(url(prompt.state, prompt.tries + 1, params), method="POST")
    return response


def farewell(*lines: str, language: str | None = None) -> VoiceResponse:
    """Say something and hang up: for when even the menu cannot be reached (database down, a bug)."""
    return render(Turn(list(lines), language=language), lambda *_: "")

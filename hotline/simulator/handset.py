"""A pretend handset on a call: follows the hotline's TwiML the way Twilio would, one step at a time.

Say, Play and Pause are shown as lines; Gather and Record wait for the caller; Redirect is followed;
Hangup, Reject or the end of the document ends the call. Between steps nothing is kept here: what the
call waits for (and the rest of the document, played if the caller stays silent) travels in a `Wait`.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Protocol
from urllib.parse import urljoin, urlsplit
from xml.etree import ElementTree

INLINE_BASE = "/twilio/voice"  # what relative URLs in an outbound call's inline TwiML are resolved against
MAX_HOPS = 10  # Redirects in a row with nothing to wait for: a loop, not a menu
APPLICATION_ERROR = "We are sorry, an application error has occurred. Goodbye."  # what Twilio says then


class Webhooks(Protocol):
    def fetch(self, url: str, method: str, form: dict) -> tuple[int, str]: ...


@dataclass
class Call:
    """Who is on the line, as Twilio describes it to every webhook of the call."""

    sid: str
    from_: str
    to: str
    direction: str = "inbound"  # inbound | outbound-api
    account_sid: str = ""
    answered_by: str | None = None

    @classmethod
    def new(cls, *, from_: str, to: str, account_sid: str, direction: str = "inbound") -> "Call":
        return cls(sid="CA" + uuid.uuid4().hex, from_=from_, to=to, direction=direction, account_sid=account_sid)

    def form(self, status: str = "in-progress") -> dict:
        form = {
            "CallSid": self.sid, "AccountSid": self.account_sid, "From": self.from_, "To": self.to,
            "Caller": self.from_, "Called": self.to, "CallStatus": status, "Direction": self.direction,
            "ApiVersion": "2010-04-01", "FromCountry": "GB", "ToCountry": "GB",
        }
        if self.answered_by:
            form["AnsweredBy"] = self.answered_by
        return form


@dataclass
class Line:
    kind: str  # say | play | pause | note | error
    text: str
    language: str | None = None


@dataclass
class Wait:
    """A Gather or a Record the caller has to answer (or stay silent at)."""

    kind: str  # gather | record
    action: str  # the path to post the answer to
    method: str = "POST"
    input: list[str] = field(default_factory=lambda: ["dtmf"])  # dtmf and/or speech
    num_digits: int | None = None
    finish_on_key: str = "#"
    action_on_empty: bool = False
    rest: str = "<Response />"  # the verbs after this one, played when the caller stays silent
    base: str = INLINE_BASE  # the URL the document came from
    transcribe_callback: str | None = None
    recording_status_callback: str | None = None


@dataclass
class Step:
    lines: list[Line]
    wait: Wait | None = None

    @property
    def ended(self) -> bool:
        return self.wait is None

    def to_dict(self) -> dict:
        return {"lines": [asdict(line) for line in self.lines], "wait": asdict(self.wait) if self.wait else None, "ended": self.ended}


class _Stop(Exception):
    """The call cannot go on (an application error, a URL outside the hotline): Twilio hangs up."""


def resolve(base: str, url: str | None) -> str:
    """The local path (and query) of an action or redirect URL; only the hotline's /twilio/… routes."""
    target = urlsplit(urljoin(base, (url or "").strip() or base))
    if not target.path.startswith("/twilio/"):
        raise _Stop(f"the simulator follows only the hotline's /twilio/… URLs, not {url!r}")
    return target.path + (f"?{target.query}" if target.query else "")


def play(document: str, *, base: str, call: Call, webhooks: Webhooks) -> Step:
    """Play a TwiML document from the top until the call waits for the caller or ends."""
    lines: list[Line] = []
    try:
        return _play(document, base, call, webhooks, lines, hops=0)
    except _Stop as stop:
        return _ended(lines, str(stop))


def fetch(url: str, *, call: Call, webhooks: Webhooks, method: str = "POST", extra: dict | None = None, lines=None) -> Step:
    """Ask the hotline for the next document (a webhook, an action, a redirect) and play it."""
    lines = [] if lines is None else lines
    try:
        return _fetch(url, method, call, webhooks, extra or {}, lines, hops=0)
    except _Stop as stop:
        return _ended(lines, str(stop))


def respond(wait: Wait, *, call: Call, webhooks: Webhooks, digits: str = "", speech: str = "") -> Step:
    """The caller answered a Gather (keys, words) or stayed silent (neither)."""
    extra = {}
    if digits and "dtmf" in wait.input:
        extra["Digits"] = digits
    if speech and "speech" in wait.input:
        extra.update(SpeechResult=speech, Confidence="0.92")
    if not extra and not wait.action_on_empty:
        return play(wait.rest, base=wait.base, call=call, webhooks=webhooks)
    return fetch(wait.action, call=call, webhooks=webhooks, method=wait.method, extra=extra)


def record(wait: Wait, *, call: Call, webhooks: Webhooks, words: str, recording_url: str, hung_up: bool = False) -> Step:
    """The caller spoke `words` into a Record and pressed a key (or hung up)."""
    if not words.strip():
        return play(wait.rest, base=wait.base, call=call, webhooks=webhooks)
    sid = "RE" + uuid.uuid4().hex
    duration = str(max(1, round(len(words.split()) / 2.5)))
    url = recording_url.replace("{sid}", sid)
    recording = {"RecordingSid": sid, "RecordingUrl": url, "RecordingDuration": duration}
    step = fetch(wait.action, call=call, webhooks=webhooks, method=wait.method, extra={**recording, "Digits": "hangup" if hung_up else "#"})
    if wait.recording_status_callback:
        _callback(webhooks, wait, wait.recording_status_callback, {**call.form(), **recording, "RecordingStatus": "completed", "RecordingChannels": "1", "RecordingSource": "RecordVerb"})
    if wait.transcribe_callback:
        transcription = {"TranscriptionSid": "TR" + uuid.uuid4().hex, "TranscriptionText": words.strip(), "TranscriptionStatus": "completed"}
        _callback(webhooks, wait, wait.transcribe_callback, {**call.form(), **recording, **transcription})
    return Step([], None) if hung_up else step


def _callback(webhooks: Webhooks, wait: Wait, url: str, form: dict) -> None:
    try:
        webhooks.fetch(resolve(wait.base, url), "POST", form)
    except _Stop:
        pass  # a callback elsewhere is not ours to simulate


def _ended(lines: list[Line], error: str | None = None) -> Step:
    if error:
        lines.append(Line("error", f"{error}. Twilio would say: “{APPLICATION_ERROR}”"))
    lines.append(Line("note", "The call has ended."))
    return Step(lines, None)


def _fetch(url: str, method: str, call: Call, webhooks: Webhooks, extra: dict, lines: list[Line], hops: int) -> Step:
    if hops >= MAX_HOPS:
        raise _Stop(f"{MAX_HOPS} redirects in a row without waiting for the caller")
    form = {**call.form(), **extra}
    status, body = webhooks.fetch(url, method.upper(), form)
    if status != 200:
        raise _Stop(f"HTTP {status} from {url}")
    return _play(body, url.split("?")[0], call, webhooks, lines, hops + 1)


def _play(document: str, base: str, call: Call, webhooks: Webhooks, lines: list[Line], hops: int) -> Step:
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError as exc:
        raise _Stop(f"not TwiML ({exc})") from exc
    if root.tag != "Response":
        raise _Stop(f"not TwiML (<{root.tag}> instead of <Response>)")
    verbs = list(root)
    for position, verb in enumerate(verbs):
        if verb.tag in ("Say", "Play", "Pause"):
            lines.extend(_sound(verb))
        elif verb.tag == "Gather":
            for inner in verb:
                lines.extend(_sound(inner))
            return Step(lines, _gather(verb, base, verbs[position + 1 :]))
        elif verb.tag == "Record":
            lines.append(Line("note", "Recording after the beep…"))
            return Step(lines, _record(verb, base, verbs[position + 1 :]))
        elif verb.tag == "Redirect":
            target = resolve(base, verb.text)
            return _fetch(target, verb.get("method", "POST"), call, webhooks, {}, lines, hops)
        elif verb.tag in ("Hangup", "Reject"):
            break
        else:
            lines.append(Line("note", f"(the simulator skips <{verb.tag}>)"))
    return _ended(lines)


def _sound(verb) -> list[Line]:
    if verb.tag == "Say":
        text = " ".join("".join(verb.itertext()).split())
        loop = int(verb.get("loop") or 1)
        return [Line("say", text, verb.get("language"))] * max(1, min(loop, 3))
    if verb.tag == "Play":
        return [Line("play", f"♪ plays {verb.text or 'a sound'}")]
    if verb.tag == "Pause":
        return [Line("pause", f"(pause, {verb.get('length', '1')} s)")]
    return [Line("note", f"(the simulator skips <{verb.tag}>)")]


def _rest(verbs) -> str:
    response = ElementTree.Element("Response")
    response.extend(verbs)
    return ElementTree.tostring(response, encoding="unicode")


def _gather(verb, base: str, after) -> Wait:
    digits = verb.get("numDigits")
    return Wait(
        kind="gather",
        action=resolve(base, verb.get("action")),
        method=verb.get("method", "POST"),
        input=(verb.get("input") or "dtmf").split(),
        num_digits=int(digits) if digits and digits.isdigit() else None,
        finish_on_key=verb.get("finishOnKey", "#"),
        action_on_empty=(verb.get("actionOnEmptyResult") or "").lower() == "true",
        rest=_rest(after),
        base=base,
    )


def _record(verb, base: str, after) -> Wait:
    transcribe = verb.get("transcribeCallback")
    return Wait(
        kind="record",
        action=resolve(base, verb.get("action")),
        method=verb.get("method", "POST"),
        input=["speech"],
        finish_on_key=verb.get("finishOnKey", "1234567890*#"),
        rest=_rest(after),
        base=base,
        transcribe_callback=transcribe,
        recording_status_callback=verb.get("recordingStatusCallback"),
    )

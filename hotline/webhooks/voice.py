"""POST /twilio/voice and its steps under /twilio/voice/…: the voice menu, and answered alert calls.

Each step reads the form, lets the domain (`voice.menu`, `delivery.calls`) decide the Turn, and renders it.
Every URL we hand Twilio carries the step number `s`: a step that came with a key, words or a
recording is kept as InboundEvent `call:<CallSid>:<s>` with its answer, so a step Twilio delivers
twice has its effect once and is answered the same. Whatever fails, the caller hears a polite goodbye
in valid TwiML with status 200: a 5xx would make Twilio read out "an application error has occurred".
"""

from __future__ import annotations

import logging

from flask import Response, request, url_for
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from hotline import messages, phones, runtime, translations
from hotline.db import session_scope
from hotline.delivery import calls
from hotline.models import InboundEvent
from hotline.voice import menu, spoken
from hotline.voice.spoken import Heard
from hotline.webhooks.blueprint import bp

log = logging.getLogger(__name__)
PARAMS = {"street", "f", "r", "i", "u"}  # a prompt's own query parameters (besides the step `s` and tries `n`)


@bp.route("/voice", methods=["GET", "POST"])
def voice_call():
    """The hotline number rings: greeting and the home menu for whoever is calling."""
    return _answer(lambda session, config, heard: menu.start(session=session, config=config, heard=heard), _menu_url)


@bp.route("/voice/<state>", methods=["GET", "POST"])
def voice_step(state: str):
    def decide(session, config, heard):
        return menu.answer(session=session, config=config, state=state, heard=heard)

    return _answer(decide, _menu_url)


@bp.route("/voice/alert/<int:delivery_id>", methods=["GET", "POST"])
def voice_alert(delivery_id: int):
    """An alert call was answered (Twilio sends AnsweredBy), or its listener pressed a key."""

    def decide(session, config, heard):
        return calls.answer_alert(session=session, config=config, delivery_id=delivery_id, heard=heard)

    def url(heard: Heard):
        return lambda state, tries, params: url_for(
            "webhooks.voice_alert", delivery_id=delivery_id, s=heard.step + 1, n=tries, **params
        )

    return _answer(decide, url)


def _menu_url(heard: Heard):
    return lambda state, tries, params: url_for("webhooks.voice_step", state=state, s=heard.step + 1, n=tries, **params)


def _small_number(value: str | None) -> int:
    value = (value or "").strip()
    return min(int(value), 10**6) if value.isascii() and value.isdigit() else 0


def _clean(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL, and no telephone sends one: drop it rather than fail the step."""
    return value.replace("\x00", "") if value is not None else None


def _heard() -> Heard:
    form = {name: _clean(value) for name, value in request.values.items()}
    try:
        phone = phones.from_twilio(form.get("From"))
    except phones.InvalidPhone:  # withheld: "anonymous", "+266696687", "Restricted" …
        phone = None
    return Heard(
        sid=(form.get("CallSid") or "").strip()[:40],
        phone=phone,
        step=_small_number(request.args.get("s")),
        tries=_small_number(request.args.get("n")),
        params={k: v for k, v in request.args.items() if k in PARAMS},
        digits=form.get("Digits"),
        speech=form.get("SpeechResult"),
        recording_url=form.get("RecordingUrl"),
        recording_seconds=_small_number(form.get("RecordingDuration")),
        answered_by=form.get("AnsweredBy"),
        language=translations.known(request.args.get("l")),
    )


def _xml(body: str) -> Response:
    return Response(body, mimetype="text/xml")


def _sorry(language: str | None = None) -> str:
    """The apology when a step fails, in the language the call was in (known from the step's URL, not the database)."""
    with translations.speaking_aloud(language):
        return str(spoken.farewell(messages.voice_error(), language=language))


def _answer(decide, url_for_step) -> Response:
    rt = runtime.current()
    heard = _heard()
    if not heard.sid:
        log.warning("a voice request without a CallSid to %s", request.path)
        return _xml(_sorry(heard.language))
    key = None if heard.silent else f"call:{heard.sid}:{heard.step}"
    queued = 0
    try:
        with session_scope(rt.engine) as session:
            event = session.get(InboundEvent, key) if key else None
            if event is not None:
                return _xml(event.reply or _sorry(heard.language))
            if key:
                event = InboundEvent(key=key, kind="call", phone=heard.phone)  # the number, so erasure finds it
                session.add(event)
                session.flush()  # a concurrent twin now waits on (or fails at) this row instead of acting twice
            turn = decide(session, rt.config, heard)
            body, queued = str(spoken.render(turn, url_for_step(heard))), turn.queued
            if event is not None:
                event.reply = body
    except IntegrityError:
        body = _twin_reply(rt.engine, key, heard.language)
    except Exception:
        log.exception("voice step %s of call %s failed; the caller hears an apology", request.path, heard.sid)
        body = _sorry(heard.language)
    if queued:
        rt.outbox_changed()
    return _xml(body)


def _twin_reply(engine, key: str | None, language: str | None) -> str:
    """The same step was committed by a concurrent request: answer as it did, do nothing."""
    try:
        with Session(engine) as session:
            event = session.get(InboundEvent, key) if key else None
        return event.reply if event is not None and event.reply else _sorry(language)
    except Exception:
        log.exception("could not read the twin of voice step %s", key)
        return _sorry(language)

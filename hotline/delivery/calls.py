"""Alert calls to landlines: what an answered alert call says (by who or what answered), the keys it
offers (1 hear again, 2 stop these calls), and moving a delivery between SMS and call."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlmodel import Session, func, select
from twilio.twiml.voice_response import VoiceResponse

from hotline import messages, phones, translations
from hotline.db import utcnow
from hotline.delivery.carrier.base import CarrierError
from hotline.delivery.quiet_hours import call_release_time
from hotline.models import AlertChannel, Channel, Delivery, DeliveryState, Incident, Member, Report, ReportKind, Street
from hotline.residents import members
from hotline.voice.spoken import Prompt, Turn, render, speakable, voice

# Twilio refused a call for its 'From': not verified, invalid, missing. Every call will fail the same way.
CALLER_ID_ERRORS = {21210, 21212, 21213}
log = logging.getLogger(__name__)
MACHINE_ENDS = {"machine_end_beep", "machine_end_silence", "machine_end_other"}
MAX_REPLAYS = 3  # "1 to hear it again", at most this often: a stuck key must not keep a call open
MAX_ALERT_TRIES = 2  # no key or a wrong key: the options once more, then goodbye


def alert_twiml(spoken: str, language: str | None = None) -> str:
    """Inline TwiML for when Twilio cannot reach us (no HOTLINE_PUBLIC_URL): no keys, so read the
    alert twice, so an answering machine that picks up late still records it whole."""
    spoken = speakable(spoken)
    with translations.speaking_aloud(language):
        again = messages.voice_again()
    response = VoiceResponse()
    response.pause(length=1)
    response.say(spoken, **voice(language))
    response.pause(length=1)
    response.say(f"{again} {spoken}", **voice(language))
    response.hangup()
    return str(response)


def language_of(session: Session, delivery: Delivery) -> str:
    return translations.known(delivery.language)


def alert_path(delivery_id: int) -> str:
    return f"/twilio/voice/alert/{delivery_id}"


def alert_url(config, delivery_id: int) -> str | None:
    """The signed URL Twilio fetches when the call is answered, with AnsweredBy; None without a public URL."""
    return f"{config.public_url}{alert_path(delivery_id)}" if config.public_url else None


def outbound_twiml(config, delivery: Delivery) -> str:
    """The inline TwiML given with the call. The simulator's pretend phones follow relative URLs of ours."""
    language = translations.known(delivery.language)
    if config.simulator:
        path = alert_path(delivery.id)
        with translations.speaking_aloud(language):
            turn = alert_turn(config, delivery, answered_by="human")
        turn.language = language
        return str(render(turn, lambda state, tries, params: f"{path}?{urlencode({'s': 1, 'n': tries, **params})}"))
    return alert_twiml(delivery.body, language)


def _options(delivery: Delivery, *, say_alert: bool, tries: int = 0, replays: int = 0, before: list[str] = ()) -> Turn:
    lines = ([delivery.body] if say_alert else []) + [messages.voice_alert_options()]
    return Turn(list(before), Prompt("alert", lines, tries=tries, params={"r": replays}))


def alert_turn(config, delivery: Delivery, *, answered_by: str | None) -> Turn:
    """The first thing an answered alert call says. A machine gets the message after its beep and no keys."""
    answered_by = (answered_by or "unknown").lower()
    if answered_by in MACHINE_ENDS:
        return Turn([delivery.body, messages.voice_alert_left_on_machine(config.scheme_name)])
    if answered_by == "machine_start":  # the beep is still to come: say it twice so the recording catches it
        again = f"{messages.voice_again()} {delivery.body}"
        return Turn([delivery.body, again, messages.voice_alert_left_on_machine(config.scheme_name)])
    return _options(delivery, say_alert=True)  # human, unknown, anything new: a person may be listening


def answer_alert(*, session: Session, config, delivery_id: int, heard) -> Turn:
    """One step of an answered alert call, in the language of the member called."""
    delivery = session.get(Delivery, delivery_id)
    language = language_of(session, delivery) if delivery is not None else None
    with translations.speaking_aloud(language):
        turn = _answer_alert(session, config, delivery, heard)
    turn.language = language
    return turn


def _answer_alert(session: Session, config, delivery: Delivery | None, heard) -> Turn:
    """Twilio's first request (AnsweredBy) or a key pressed."""
    if delivery is None or delivery.channel != Channel.CALL:
        return Turn([messages.voice_alert_gone(config.scheme_name)])
    if heard.step == 0:
        if (heard.answered_by or "").lower() == "fax":
            _fail(session, delivery, "answered by a fax machine")
            return Turn()
        return alert_turn(config, delivery, answered_by=heard.answered_by)
    replays = heard.number("r")
    if heard.digits in ("1", "9"):
        thanks = []
        if heard.digits == "1" and delivery.acknowledged_at is None:  # "press 1 to say you have heard this"
            delivery.acknowledged_at, delivery.acknowledged_by = utcnow(), "call"
            session.add(delivery)
            thanks = [messages.voice_alert_heard()]
        if replays >= MAX_REPLAYS:
            return Turn([*thanks, messages.voice_alert_goodbye()])
        return _options(delivery, say_alert=True, replays=replays + 1, before=thanks)
    if heard.digits == "2":
        said, queued = stop_calls(session=session, config=config, delivery=delivery)
        return Turn([said], queued=queued)
    tries = heard.tries + 1 if heard.digits is not None else heard.tries
    if tries >= MAX_ALERT_TRIES:
        return Turn([messages.voice_alert_goodbye()])
    sorry = messages.voice_wrong_key() if heard.digits is not None else None
    return _options(delivery, say_alert=False, tries=tries, replays=replays, before=[sorry] if sorry else [])


def _fail(session: Session, delivery: Delivery, why: str) -> None:
    delivery.state, delivery.error_message, delivery.updated_at = DeliveryState.FAILED, why, utcnow()
    session.add(delivery)


def stop_calls(*, session: Session, config, delivery: Delivery) -> tuple[str, int]:
    """Key 2 on an alert call: no more calls. A mobile gets alerts by text instead (and a text saying so);
    a landline, which has no other way, is opted out until it calls back. Returns (what to say, queued)."""
    member = session.get(Member, delivery.member_id) if delivery.member_id else None
    if member is None or not phones.is_mobile(member.phone):
        members.opt_out(session, member.phone if member else delivery.phone)
        return messages.voice_calls_stopped(config.scheme_name), 0
    if member.alerts != AlertChannel.CALL:
        return messages.voice_calls_stopped_to_text(), 0
    members.set_alerts(session, member, AlertChannel.SMS)
    waiting = session.exec(
        select(Delivery).where(
            Delivery.member_id == member.id, Delivery.channel == Channel.CALL, Delivery.state == DeliveryState.QUEUED
        )
    )
    for other in waiting:
        convert_to_sms(session, config, other)
    with translations.speaking(member.language):  # a text: the catalogue itself, whatever the voice says
        body = messages.stopped_calls_sms()
    session.add(Delivery(member_id=member.id, phone=member.phone, channel=Channel.SMS, body=body, language=translations.known(member.language)))
    return messages.voice_calls_stopped_to_text(), 1


def _report_and_street(session: Session, delivery: Delivery) -> tuple[Report | None, Street | None]:
    report = session.get(Report, delivery.report_id) if delivery.report_id else None
    street = session.get(Street, delivery.street_id) if delivery.street_id else None
    return report, street


def _bodies(session: Session, config, report: Report, street: Street, language: str) -> tuple[str, str]:
    """(text, words for a call) of a report's alert as its kind has them: an alert, an update, an all-clear,
    in the member's language."""
    with translations.speaking(language):
        sms = _bodies_now(session, config, report, street)[0]
    with translations.speaking_aloud(language):
        call = _bodies_now(session, config, report, street)[1]
    return sms, call


def _bodies_now(session: Session, config, report: Report, street: Street) -> tuple[str, str]:
    local = report.created_at.astimezone(config.timezone)
    text = phones.scrub(report.text or "", report.phone) if report.phone else (report.text or "")
    incident = session.get(Incident, report.incident_id) if report.incident_id else None
    ref = incident.ref if incident else report.ref
    if report.kind == ReportKind.UPDATE:
        return (messages.update_alert(ref, local, text, urgent=report.urgent),
                messages.update_call(config.scheme_name, street.name, local, text))
    if report.kind == ReportKind.ALL_CLEAR:
        opening = session.get(Report, incident.report_id) if incident else report
        alert_time = opening.created_at.astimezone(config.timezone)
        return messages.all_clear(ref, report.text), messages.all_clear_call(config.scheme_name, street.name, alert_time, report.text)
    return (messages.broadcast(street.name, ref, local, text, urgent=report.urgent),
            messages.alert_call(config.scheme_name, street.name, local, text))


def convert_to_call(session: Session, config, delivery: Delivery) -> None:
    """Twilio said the number is not a mobile: the same alert goes out again, as a call (after quiet hours).
    A non-urgent update is not worth a call (calls stay rare): it is cancelled, and heard on the menu."""
    report, street = _report_and_street(session, delivery)
    if report is not None and report.kind == ReportKind.UPDATE and not report.urgent:
        delivery.state, delivery.lease_until, delivery.sid, delivery.needs_lookup = DeliveryState.CANCELLED, None, None, False
        delivery.error_message, delivery.updated_at = "not a mobile: a call member hears updates on the phone menu", utcnow()
        session.add(delivery)
        return
    if report is not None and street is not None:
        delivery.body = _bodies(session, config, report, street, language_of(session, delivery))[1]
    delivery.channel = Channel.CALL
    delivery.state, delivery.lease_until, delivery.attempts = DeliveryState.QUEUED, None, 0
    # A new message: the SMS's SID and look-up are not the call's. A late callback for the SMS ("failed")
    # must not land on the call, and a look-up must not find the SMS and take it for the call.
    delivery.sid, delivery.needs_lookup = None, False
    delivery.updated_at = utcnow()
    delivery.next_attempt_at = call_release_time(config, delivery.updated_at, delivery.urgent)
    session.add(delivery)


def convert_to_sms(session: Session, config, delivery: Delivery) -> None:
    """A member stopped alert calls from a mobile: alerts still waiting to ring go out as texts, now."""
    report, street = _report_and_street(session, delivery)
    if report is not None and street is not None:
        delivery.body = _bodies(session, config, report, street, language_of(session, delivery))[0]
    delivery.channel, delivery.attempts = Channel.SMS, 0
    delivery.sid, delivery.needs_lookup = None, False  # as in convert_to_call: a new message
    delivery.next_attempt_at = delivery.updated_at = utcnow()
    session.add(delivery)


def retry_at(config, delivery: Delivery, now: datetime | None = None) -> datetime:
    """Busy or no answer: ring again a few minutes later (2, then 4), never into quiet hours unless urgent."""
    now = now or utcnow()
    at = now + timedelta(minutes=2 * max(1, delivery.attempts))
    return call_release_time(config, at, delivery.urgent) if config is not None else at


def check_caller(carrier) -> str | None:
    """At start (serve, worker): say which number alert calls ring from, or that none can be placed."""
    try:
        number = carrier.caller_id()
    except CarrierError as exc:
        log.error("ALERT CALLS CANNOT BE PLACED: %s. Landline members and CALL ME members will get nothing.", exc)
        return None
    log.info("alert calls ring from %s", phones.mask(number))
    return number


def caller_trouble(session: Session, now: datetime) -> int:
    """Alert calls Twilio refused in the past day because of the number they ring from: the coordinators'
    pages say so, because every other call will fail the same way until an operator fixes it."""
    return session.exec(
        select(func.count(Delivery.id)).where(
            Delivery.channel == Channel.CALL.value, Delivery.state == DeliveryState.FAILED.value,
            Delivery.error_code.in_(CALLER_ID_ERRORS), Delivery.updated_at > now - timedelta(days=1),
        )
    ).one()

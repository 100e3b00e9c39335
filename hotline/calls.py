"""Alert calls to landlines: the TwiML an outbound alert call plays, and turning an SMS into a call."""

from __future__ import annotations

from sqlmodel import Session
from twilio.twiml.voice_response import VoiceResponse

from hotline import messages
from hotline.db import utcnow
from hotline.models import Channel, Delivery, DeliveryState, Report, Street

VOICE = {"voice": "Polly.Amy", "language": "en-GB"}


def alert_twiml(spoken: str) -> str:
    """Read the alert twice, so an answering machine that picks up late still records it whole."""
    response = VoiceResponse()
    response.pause(length=1)
    response.say(spoken, **VOICE)
    response.pause(length=1)
    response.say("Again: " + spoken, **VOICE)
    response.hangup()
    return str(response)


def convert_to_call(session: Session, config, delivery: Delivery) -> None:
    """Twilio said the number is not a mobile: the same alert goes out again, as a call."""
    report = session.get(Report, delivery.report_id) if delivery.report_id else None
    street = session.get(Street, delivery.street_id) if delivery.street_id else None
    if report is not None and street is not None:
        local = report.created_at.astimezone(config.timezone)
        delivery.body = messages.alert_call(config.scheme_name, street.name, local, report.text or "")
    delivery.channel = Channel.CALL
    delivery.state, delivery.lease_until, delivery.attempts = DeliveryState.QUEUED, None, 0
    delivery.next_attempt_at = delivery.updated_at = utcnow()
    session.add(delivery)

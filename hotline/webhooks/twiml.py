"""Small shared pieces of the webhook views: TwiML responses and the database-down answer."""

from __future__ import annotations

from flask import Response
from twilio.twiml.messaging_response import MessagingResponse

_NO_REPLY = str(MessagingResponse())  # past the reply caps most answers under a flood are this


def sms_reply(text: str | None) -> Response:
    if not text:
        return Response(_NO_REPLY, mimetype="text/xml")
    response = MessagingResponse()
    response.message(text)
    return Response(str(response), mimetype="text/xml")


def unavailable() -> Response:
    """503 makes Twilio try the number's fallback URL instead of losing the message."""
    return Response("database unavailable", status=503, mimetype="text/plain", headers={"Retry-After": "5"})

"""The Twilio-facing blueprint: /twilio/sms, /twilio/voice/…, /twilio/status. Signed, CSRF-exempt."""

from flask import Blueprint

bp = Blueprint("webhooks", __name__, url_prefix="/twilio")

from hotline.webhooks import signature, sms, status, voice  # noqa: E402,F401  (routes register on import)

"""The Twilio-facing blueprint (/twilio/…): the sms, voice and status modules register their routes on it."""

from flask import Blueprint

bp = Blueprint("webhooks", __name__, url_prefix="/twilio")

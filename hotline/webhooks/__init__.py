"""The Twilio-facing blueprint: /twilio/sms, /twilio/voice/…, /twilio/status. Signed, CSRF-exempt.

Each module registers its routes on `blueprint.bp` when imported here; create_app registers `bp`.
"""

from hotline.webhooks import signature, sms, status, voice  # noqa: F401
from hotline.webhooks.blueprint import bp  # noqa: F401

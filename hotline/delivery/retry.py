"""When to try a delivery again, and the Twilio error codes the dispatcher and the status callbacks act on."""

from __future__ import annotations

import random
from datetime import timedelta

OPTED_OUT = 21610  # the recipient texted STOP to our number: Twilio will not send to it
NOT_MOBILE = 21614  # not a mobile number: an SMS cannot reach it, a call can
INVALID_NUMBER = 21211  # not a phone number at all
LANDLINE = 30006  # the carrier says landline or unreachable: an SMS cannot reach it, a call can
# Undelivered for a reason that may pass: unreachable handset, queue overflow, congestion, unknown.
RETRYABLE_ERRORS = {30001, 30003, 30008, 30017}


def backoff(attempts: int, base: float = 5.0) -> timedelta:
    """Exponential with jitter: 5 s, 10 s, 20 s … capped at 10 minutes, each ±50 %."""
    delay = min(600.0, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=delay * random.uniform(0.5, 1.5))


# What a coordinator reads for an error code on the report page ("undelivered 19:04, handset off").
ERROR_WORDS = {
    30001: "queue overflow", 30003: "handset off or out of reach", 30004: "blocked by the recipient", 30005: "unknown number",
    30006: "landline or unreachable network", 30007: "filtered as spam", 30008: "network error", 30017: "network busy",
    21610: "opted out (STOP)", 21614: "not a mobile", 21211: "not a valid number", 21213: "no number to ring from",
    20429: "Twilio busy", 20500: "Twilio error",
}

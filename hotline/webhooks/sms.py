"""POST /twilio/sms: an incoming text. Parse the form, hand it to the inbox, answer with TwiML."""

from __future__ import annotations

import logging

from flask import request
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session

from hotline import messages, phones, runtime
from hotline.db import session_scope
from hotline.models import InboundEvent
from hotline.reports import inbox
from hotline.reports.inbox import Reply
from hotline.webhooks.blueprint import bp
from hotline.webhooks.twiml import sms_reply, unavailable

log = logging.getLogger(__name__)


@bp.post("/sms")
def incoming_sms():
    sid = request.form.get("MessageSid") or request.form.get("SmsSid")
    if not sid or not request.form.get("From"):
        return "MessageSid and From are required", 400
    try:
        sender = phones.from_twilio(request.form["From"])
    except phones.InvalidPhone:
        log.info("ignored an SMS from a sender we cannot answer (MessageSid %s)", sid)
        return sms_reply(None)
    body = request.form.get("Body", "").replace("\x00", "")  # PostgreSQL text cannot hold NUL; no handset sends one
    rt = runtime.current()
    try:
        reply = _receive(rt, sender, body, sid)
    except DBAPIError:
        log.exception("database error on an incoming SMS (MessageSid %s); answered 503", sid)
        return unavailable()
    except Exception:
        log.exception("could not handle an incoming SMS (MessageSid %s); logging it raw", sid)
        reply = _salvage(rt, sender, body, sid)
    if reply.queued:
        rt.outbox_changed(notified=True)  # a worker was sent NOTIFY with the commit; this wakes an in-process one
    return sms_reply(reply.text)


def _receive(rt, sender: str, body: str, sid: str, attempts: int = 3) -> Reply:
    """One transaction; a unique-key race is either a twin of this MessageSid (answer as it did) or
    a concurrent write for the same number (a JOIN creating the member): then simply run again."""
    for attempt in range(attempts):
        try:
            with session_scope(rt.engine) as session:
                reply = inbox.receive_sms(session=session, config=rt.config, sender=sender, body=body, sid=sid)
                if reply.queued:
                    rt.outbox_changing(session.connection())
                return reply
        except IntegrityError:
            with Session(rt.engine) as session:
                event = session.get(InboundEvent, f"sms:{sid}")
            if event is not None:
                return Reply(event.reply, duplicate=True)
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _salvage(rt, sender: str, body: str, sid: str) -> Reply:
    """A bug must not lose a report: keep the raw text for the coordinators and say sorry."""
    try:
        with session_scope(rt.engine) as session:
            return Reply(inbox.salvage(session=session, sender=sender, body=body, sid=sid))
    except Exception:
        log.exception("could not even log the raw SMS (MessageSid %s)", sid)
        return Reply(messages.sorry_try_later())

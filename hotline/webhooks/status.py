"""POST /twilio/status: delivery status callbacks for messages and calls."""

from __future__ import annotations

import logging
import re

from flask import request
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from hotline import runtime
from hotline.delivery import receipts, writers
from hotline.webhooks.blueprint import bp
from hotline.webhooks.twiml import unavailable

log = logging.getLogger(__name__)
SID = re.compile(r"[A-Z]{2}[0-9a-f]{32}")
RACES = 3  # tries of a callback that meets a concurrent write to the rows it read (see below)


@bp.post("/status")
def delivery_status():
    form = request.form
    sid = form.get("MessageSid") or form.get("SmsSid") or form.get("CallSid")
    status = form.get("MessageStatus") or form.get("SmsStatus") or form.get("CallStatus")
    if not sid or not status:
        return "a SID and a status are required", 400
    if not SID.fullmatch(sid):
        return "not a Twilio SID", 400
    code = form.get("ErrorCode", "")
    error_code = int(code) if code.isascii() and code.isdigit() and len(code) <= 6 else None
    rt = runtime.current()
    for attempt in range(1, RACES + 1):
        try:
            with writers.turn(rt.engine, crowd=True), rt.engine.begin() as connection:  # one transaction, committed here
                matched = receipts.apply_on(
                    connection, sid=sid, status=status, error_code=error_code,
                    max_attempts=rt.config.max_send_attempts, config=rt.config,
                )
            break
        except (StaleDataError, IntegrityError):
            # Another writer changed what this callback read, and committed: the recorder applied (and deleted) the
            # status kept for this SID, or a twin callback kept one first. Rolled back; done again, it sees theirs.
            if attempt == RACES:
                log.exception("a status callback for %s lost the race %d times", sid, RACES)
                return unavailable()
            log.info("a status callback for %s met a concurrent write; done again", sid)
        except DBAPIError:
            log.exception("database error on a status callback for %s", sid)
            return unavailable()
    if not matched:
        log.info("status %r for unknown SID %s kept until its send is recorded", status[:20], sid)
    if receipts.wakes_dispatcher(sid, status):
        rt.outbox_changed()
    return "", 204

"""Simulator mode's carrier: every SMS and call is kept in the database, nothing leaves the machine.

It also plays the phone network's part (`SimulatedNetwork`): the status callbacks Twilio would send,
a short step apart, posted through the app's own `/twilio/status` route.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import uuid
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import update
from sqlmodel import Session, select

from hotline.db import utcnow
from hotline.delivery.carrier.base import Accepted
from hotline.models import Channel, SimulatedMessage, SimulatedPhone

log = logging.getLogger(__name__)

ACCOUNT_SID = "AC" + "0" * 32  # what the simulator puts in AccountSid: no real account
HOTLINE_NUMBER = "+447700900000"  # the hotline's number when HOTLINE_FROM_NUMBER is unset (an Ofcom drama number)
LANDLINE_SMS_ERROR = 30006  # Twilio: "landline or unreachable carrier"
MAX_CALL_SECONDS = 600  # an answered call nobody hangs up (the page was closed) ends after this
RINGING = ("queued", "initiated", "ringing")


class SimulatedNetwork:
    """Twilio's side of a simulated send: message statuses queued → sent → delivered, and calls that ring
    until a pretend handset answers (or the answering machine does after `ring_seconds`).

    Each change is a conditional UPDATE of the SimulatedMessage row, so two processes (web and worker)
    never post the same callback twice; `attach()` gives it the app to post callbacks through.
    """

    def __init__(self, engine, *, step_seconds: float, ring_seconds: float, hotline_number: str):
        self.engine = engine
        self.step, self.ring = step_seconds, ring_seconds
        self.hotline_number = hotline_number
        self.post = None  # post(path, form): set by attach()
        self._queue: list = []
        self._order = itertools.count()
        self._cv = threading.Condition()
        self._running = 0
        self._answered: dict[str, float] = {}  # call SID -> when this process's handset picked up
        self._thread: threading.Thread | None = None

    def attach(self, post) -> None:
        """Start posting callbacks through `post(path, form)`, and finish what a previous run left open."""
        self.post = post
        with Session(self.engine) as session:
            unfinished = session.exec(
                select(SimulatedMessage).where(SimulatedMessage.status.in_(["queued", "sent", *RINGING, "in-progress"]))
            ).all()
        for message in unfinished:
            if message.kind == Channel.SMS and message.from_ == "hotline":
                self.message_sent(message.sid, message.to)
            elif message.kind == Channel.CALL and message.status == "in-progress":
                self.later(self.step, lambda sid=message.sid: self.hang_up(sid, duration=0))
            elif message.kind == Channel.CALL:
                self.later(self.step, lambda sid=message.sid: self._pick_up_by_machine(sid))

    # --- the clock ------------------------------------------------------------------------

    def later(self, delay: float, action) -> None:
        with self._cv:
            heapq.heappush(self._queue, (time.monotonic() + delay, next(self._order), action))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="simulated-network", daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue or self._queue[0][0] > time.monotonic():
                    self._cv.wait(self._queue[0][0] - time.monotonic() if self._queue else None)
                _, _, action = heapq.heappop(self._queue)
                self._running += 1
            try:
                action()
            except Exception:
                log.exception("simulated network: a callback failed")
            finally:
                with self._cv:
                    self._running -= 1
                    self._cv.notify_all()

    def settle(self, timeout: float = 10.0, *, horizon: float = 5.0) -> bool:
        """Wait until nothing is running and nothing is due within `horizon` seconds (for tests)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._running or (self._queue and self._queue[0][0] < time.monotonic() + horizon):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(min(left, 0.05))
        return True

    # --- messages -------------------------------------------------------------------------

    def message_sent(self, sid: str, to: str, callback_path: str = "/twilio/status") -> None:
        landline = self._is_pretend_landline(to)
        self.later(self.step, lambda: self._message_status(sid, to, "queued", ("queued",), callback_path))
        self.later(2 * self.step, lambda: self._message_status(sid, to, "sent", ("queued",), callback_path))
        final = "undelivered" if landline else "delivered"
        error = LANDLINE_SMS_ERROR if landline else None
        self.later(3 * self.step, lambda: self._message_status(sid, to, final, ("sent",), callback_path, error))

    def _message_status(self, sid, to, status, after, path, error_code=None) -> None:
        if self.post is None or not self._move(sid, status, after):
            return
        form = {
            "MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
            "AccountSid": ACCOUNT_SID, "From": self.hotline_number, "To": to, "ApiVersion": "2010-04-01",
        }
        if error_code:
            form["ErrorCode"] = str(error_code)
        self._post(path, form)

    # --- calls ----------------------------------------------------------------------------

    def call_placed(self, sid: str, to: str, callback_path: str = "/twilio/status") -> None:
        self.later(self.step, lambda: self._call_status(sid, "initiated", ("queued",), path=callback_path))
        self.later(2 * self.step, lambda: self._call_status(sid, "ringing", ("initiated",), path=callback_path))
        self.later(2 * self.step + self.ring, lambda: self._pick_up_by_machine(sid, callback_path))

    def answer(self, sid: str, *, answered_by: str = "human") -> bool:
        """A handset (or the answering machine) picked up: False if the call is not ringing any more."""
        if not self._call_status(sid, "in-progress", RINGING, AnsweredBy=answered_by):
            return False
        self._answered[sid] = time.monotonic()
        self.later(MAX_CALL_SECONDS, lambda: self.hang_up(sid))
        return True

    def hang_up(self, sid: str, *, duration: float | None = None) -> bool:
        """The call ends (either side hung up, or its TwiML ran out): `completed`, with its length."""
        answered = self._answered.pop(sid, None)
        if duration is None:
            duration = time.monotonic() - answered if answered else 1
        seconds = str(max(1, int(duration)))
        return self._call_status(sid, "completed", ("in-progress",), CallDuration=seconds, Duration=seconds)

    def decline(self, sid: str) -> bool:
        return self._call_status(sid, "busy", RINGING)

    def _pick_up_by_machine(self, sid: str, path: str = "/twilio/status") -> None:
        """Nobody answered: the answering machine takes the message (the alert is read to it)."""
        if self._call_status(sid, "in-progress", RINGING, path=path, AnsweredBy="machine_end_beep"):
            self.later(self.step, lambda: self._call_status(sid, "completed", ("in-progress",), path=path, CallDuration="20", Duration="20"))

    def _call_status(self, sid: str, status: str, after: tuple, *, path: str = "/twilio/status", **extra) -> bool:
        if self.post is None or not self._move(sid, status, after):
            return False
        with Session(self.engine) as session:
            to = session.exec(select(SimulatedMessage.to).where(SimulatedMessage.sid == sid)).first()
        form = {
            "CallSid": sid, "CallStatus": status, "AccountSid": ACCOUNT_SID, "From": self.hotline_number,
            "To": to or "", "Direction": "outbound-api", "ApiVersion": "2010-04-01",
            "CallbackSource": "call-progress-events", "Timestamp": utcnow().strftime("%a, %d %b %Y %H:%M:%S +0000"),
            **extra,
        }
        self._post(path, form)
        return True

    # --- shared ---------------------------------------------------------------------------

    def _move(self, sid: str, status: str, after: tuple) -> bool:
        with Session(self.engine) as session:
            result = session.execute(
                update(SimulatedMessage)
                .where(SimulatedMessage.sid == sid, SimulatedMessage.status.in_(after))
                .values(status=status)
            )
            session.commit()
            return result.rowcount == 1  # rows matched, so queued → queued counts too

    def _post(self, path: str, form: dict) -> None:
        post = self.post
        if post is not None:
            post(path, form)

    def _is_pretend_landline(self, number: str) -> bool:
        with Session(self.engine) as session:
            phone = session.exec(select(SimulatedPhone).where(SimulatedPhone.number == number)).first()
        return phone is not None and phone.kind == "landline"


def _callback_path(url: str | None) -> str:
    """In simulator mode the app posts callbacks to itself, so only the path of the callback URL counts."""
    path = urlsplit(url).path if url else ""
    return path if path.startswith("/twilio/") else "/twilio/status"


class SimulatorCarrier:
    def __init__(self, engine, network: SimulatedNetwork | None = None):
        self.engine = engine
        self.network = network

    def _store(self, kind: Channel, to: str, body: str) -> Accepted:
        prefix = "SM" if kind == Channel.SMS else "CA"
        sid = prefix + uuid.uuid4().hex
        with Session(self.engine) as session:
            session.add(SimulatedMessage(sid=sid, kind=kind, to=to, from_="hotline", body=body))
            session.commit()
        return Accepted(sid=sid, status="queued")

    def send_sms(self, *, to: str, body: str, status_callback: str | None, pace=None) -> Accepted:
        if pace is not None:  # main's dispatcher paces at the request itself
            pace()
        accepted = self._store(Channel.SMS, to, body)
        if self.network:
            self.network.message_sent(accepted.sid, to, _callback_path(status_callback))
        return accepted

    def place_call(self, *, to: str, twiml: str, status_callback: str | None, pace=None, url: str | None = None) -> Accepted:
        """Twilio would fetch `url` when there is one; the pretend handset plays the inline `twiml`, which
        the dispatcher always gives (and makes interactive in simulator mode)."""
        if pace is not None:
            pace()
        accepted = self._store(Channel.CALL, to, twiml)
        if self.network:
            self.network.call_placed(accepted.sid, to, _callback_path(status_callback))
        return accepted

    def _find(self, kind: Channel, to: str, body: str | None, since: datetime, exclude=frozenset()) -> Accepted | None:
        with Session(self.engine) as session:
            query = select(SimulatedMessage).where(
                SimulatedMessage.kind == kind, SimulatedMessage.to == to, SimulatedMessage.created_at >= since
            )
            for message in session.exec(query):
                if (body is None or message.body == body) and message.sid not in exclude:
                    return Accepted(sid=message.sid, status=message.status)
        return None

    def find_sms(self, *, to: str, body: str, since: datetime, exclude=frozenset()) -> Accepted | None:
        return self._find(Channel.SMS, to, body, since, exclude)

    def find_call(self, *, to: str, since: datetime, exclude=frozenset()) -> Accepted | None:
        return self._find(Channel.CALL, to, None, since, exclude)

    def delete_recording(self, url: str) -> bool:
        """The simulator's "recordings" are made up on the fly from the report: nothing is kept to delete."""
        return True

    def caller_id(self) -> str:
        return self.network.hotline_number if self.network is not None else HOTLINE_NUMBER

    def fetch_status(self, *, channel: str, sid: str) -> tuple[str, int | None] | None:
        with Session(self.engine) as session:
            message = session.exec(select(SimulatedMessage).where(SimulatedMessage.sid == sid)).first()
        return (message.status, None) if message is not None else None

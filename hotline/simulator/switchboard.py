"""Twilio's part when a pretend phone texts or calls: the same webhook routes, the same form parameters.

Every request goes through the app's own WSGI stack (Flask's test client), so what works here works
when Twilio sends it. Only the webhooks under /twilio/ are ever called.
"""

from __future__ import annotations

import uuid
from xml.etree import ElementTree

from flask import Flask
from sqlmodel import Session, select

from hotline.db import session_scope
from hotline.delivery import segments
from hotline.delivery.carrier.simulator import ACCOUNT_SID, SimulatedNetwork
from hotline.models import Channel, SimulatedMessage
from hotline.simulator import handset
from hotline.simulator.handset import Call, Step, Wait


class CallOver(Exception):
    """The call is no longer ringing: answered elsewhere, declined, or taken by the answering machine."""


class Switchboard:
    def __init__(self, app: Flask, network: SimulatedNetwork):
        self.app = app
        self.network = network
        self.hotline_number = network.hotline_number

    def fetch(self, url: str, method: str, form: dict) -> tuple[int, str]:
        """One webhook request, as Twilio makes it (handset.Webhooks)."""
        if not url.startswith("/twilio/"):
            raise ValueError(f"the simulator calls only /twilio/… routes, not {url}")
        client = self.app.test_client()
        if method == "GET":
            response = client.get(url, query_string=form)
        else:
            response = client.post(url, data=form)
        return response.status_code, response.get_data(as_text=True)

    def post(self, path: str, form: dict) -> None:
        """For the network's status callbacks: fire and forget."""
        self.fetch(path, "POST", form)

    # --- texts ----------------------------------------------------------------------------

    def text(self, phone: str, body: str) -> list[str]:
        """A pretend phone texts the hotline: the inbound SMS and the hotline's TwiML replies are kept."""
        sid = "SM" + uuid.uuid4().hex
        with session_scope(self.network.engine) as session:
            session.add(SimulatedMessage(sid=sid, kind=Channel.SMS, to=self.hotline_number, from_=phone, body=body, status="received"))
        form = {
            "MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": ACCOUNT_SID,
            "From": phone, "To": self.hotline_number, "Body": body, "NumMedia": "0",
            "NumSegments": str(segments.count(body)), "SmsStatus": "received", "ApiVersion": "2010-04-01",
            "FromCountry": "GB", "ToCountry": "GB",
        }
        status, answer = self.fetch("/twilio/sms", "POST", form)
        if status != 200:
            self._set_status(sid, "failed")
            return []
        replies = _messages(answer)
        with session_scope(self.network.engine) as session:
            for reply in replies:
                session.add(SimulatedMessage(sid="SM" + uuid.uuid4().hex, kind=Channel.SMS, to=phone, from_="hotline", body=reply, status="delivered"))
        return replies

    # --- calls ----------------------------------------------------------------------------

    def call(self, phone: str) -> tuple[Call, Step]:
        """A pretend phone rings the hotline."""
        call = Call.new(from_=phone, to=self.hotline_number, account_sid=ACCOUNT_SID)
        return call, handset.fetch("/twilio/voice", call=call, webhooks=self, extra={"CallStatus": "ringing"})

    def answer(self, sid: str) -> tuple[Call, Step]:
        """A pretend phone answers an alert call: the call's own TwiML plays."""
        with Session(self.network.engine) as session:
            message = session.exec(select(SimulatedMessage).where(SimulatedMessage.sid == sid, SimulatedMessage.kind == Channel.CALL)).first()
        if message is None or not self.network.answer(sid):
            raise CallOver(sid)
        call = Call(sid=sid, from_=self.hotline_number, to=message.to, direction="outbound-api", account_sid=ACCOUNT_SID, answered_by="human")
        return call, self._ending(call, handset.play(message.body, base=handset.INLINE_BASE, call=call, webhooks=self))

    def decline(self, sid: str) -> bool:
        return self.network.decline(sid)

    def respond(self, call: Call, wait: Wait, *, digits: str = "", speech: str = "") -> Step:
        return self._ending(call, handset.respond(wait, call=call, webhooks=self, digits=digits, speech=speech))

    def record(self, call: Call, wait: Wait, *, words: str, recording_url: str) -> Step:
        return self._ending(call, handset.record(wait, call=call, webhooks=self, words=words, recording_url=recording_url))

    def hang_up(self, call: Call, wait: Wait | None, *, words: str = "", recording_url: str = "") -> None:
        """The caller hangs up: a Record in progress is still posted (as Twilio does), an alert call completes."""
        if wait is not None and wait.kind == "record" and words.strip():
            handset.record(wait, call=call, webhooks=self, words=words, recording_url=recording_url, hung_up=True)
        if call.direction == "outbound-api":
            self.network.hang_up(call.sid)

    def _ending(self, call: Call, step: Step) -> Step:
        """The TwiML ran out or hung up: Twilio ends the call, and an alert call reports `completed`."""
        if step.ended and call.direction == "outbound-api":
            self.network.hang_up(call.sid)
        return step

    def _set_status(self, sid: str, status: str) -> None:
        with session_scope(self.network.engine) as session:
            message = session.exec(select(SimulatedMessage).where(SimulatedMessage.sid == sid)).one()
            message.status = status
            session.add(message)


def _messages(twiml: str) -> list[str]:
    """The texts of a MessagingResponse's <Message> verbs (bare text or a <Body> child)."""
    try:
        root = ElementTree.fromstring(twiml)
    except ElementTree.ParseError:
        return []
    texts = []
    for message in root.iter("Message"):
        text = message.findtext("Body") if message.find("Body") is not None else message.text
        if text and text.strip():
            texts.append(text.strip())
    return texts

"""/simulator: the page of pretend phones and the small JSON API its script talks to.

Each action is handed to the switchboard, which calls the real /twilio/… webhooks. A call in progress
lives in the page: a signed token carries who is on the line and what the call is waiting for.
"""

from __future__ import annotations

import io
import wave
from dataclasses import asdict

from flask import Response, current_app, jsonify, render_template, request, url_for
from flask import session as cookie_session
from flask_wtf.csrf import generate_csrf
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from hotline import phones, runtime
from hotline.db import session_scope
from hotline.models import SimulatedPhone
from hotline.simulator import phonebook
from hotline.simulator.blueprint import bp
from hotline.simulator.handset import Call, Step, Wait
from hotline.simulator.switchboard import CallOver, Switchboard

MAX_TEXT = 1600  # Twilio's longest inbound SMS
CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; frame-ancestors 'none'"


def _board() -> Switchboard:
    return current_app.extensions["simulator"]


def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="simulator-call")


def _answer(call: Call, step: Step) -> Response:
    token = _signer().dumps({"call": asdict(call), "wait": asdict(step.wait) if step.wait else None})
    return jsonify(token=token, step=step.to_dict())


def _call_from_token():
    try:
        data = _signer().loads((request.get_json(silent=True) or {}).get("token", ""))
    except BadSignature:
        return None, None
    return Call(**data["call"]), Wait(**data["wait"]) if data["wait"] else None


def _phone(phone_id: int) -> SimulatedPhone | None:
    with Session(runtime.current().engine) as session:
        return session.get(SimulatedPhone, phone_id)


def _field(name: str) -> str:
    return str((request.get_json(silent=True) or {}).get(name) or "")


def _recording_url() -> str:
    return request.host_url.rstrip("/") + url_for("simulator.recording", sid="RE0").replace("RE0", "{sid}")


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.get("")
def page():
    return render_template("simulator/phones.html", hotline_number=phones.national(_board().hotline_number))


@bp.get("/state")
def state():
    rt = runtime.current()
    with Session(rt.engine) as session:
        snapshot = phonebook.snapshot(session, timezone=rt.config.timezone)
    # The page's CSRF token, fresh: logging in or out in another tab starts a new session (and token), and a token
    # expires after an hour. Only a token the session already holds is signed, so the poll never rewrites the
    # session cookie the coordinators' pages share.
    if current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token") in cookie_session:
        snapshot["csrf"] = generate_csrf()
    return jsonify(snapshot)


@bp.post("/phones")
def add_phone():
    try:
        with session_scope(runtime.current().engine) as session:
            phone = phonebook.add(session, _field("number"), kind=_field("kind") or "mobile", label=_field("label"))
            added = {"id": phone.id, "number": phone.number}
    except (ValueError, IntegrityError) as exc:  # InvalidPhone, PhoneTaken, a bad kind, a twin request
        message = str(exc) if not isinstance(exc, IntegrityError) else "that number is taken"
        return jsonify(error=message), 400
    return jsonify(added), 201


@bp.post("/phones/<int:phone_id>/delete")
def remove_phone(phone_id: int):
    with session_scope(runtime.current().engine) as session:
        removed = phonebook.remove(session, phone_id)
    return ("", 204) if removed else (jsonify(error="no such phone"), 404)


@bp.post("/phones/<int:phone_id>/text")
def send_text(phone_id: int):
    phone, body = _phone(phone_id), _field("body").strip()
    if phone is None or phone.kind != "mobile":
        return jsonify(error="only a pretend mobile can text"), 400
    if not body or len(body) > MAX_TEXT:
        return jsonify(error=f"a text has 1 to {MAX_TEXT} characters"), 400
    return jsonify(replies=_board().text(phone.number, body))


@bp.post("/phones/<int:phone_id>/call")
def call_hotline(phone_id: int):
    phone = _phone(phone_id)
    if phone is None:
        return jsonify(error="no such phone"), 404
    call, step = _board().call(phone.number)
    return _answer(call, step)


@bp.post("/calls/<sid>/answer")
def answer(sid: str):
    try:
        call, step = _board().answer(sid)
    except CallOver:
        return jsonify(error="this call is not ringing any more"), 409
    return _answer(call, step)


@bp.post("/calls/<sid>/decline")
def decline(sid: str):
    return ("", 204) if _board().decline(sid) else (jsonify(error="this call is not ringing any more"), 409)


@bp.post("/calls/step")
def step():
    call, wait = _call_from_token()
    if call is None or wait is None:
        return jsonify(error="this call has ended"), 400
    if wait.kind == "record":
        result = _board().record(call, wait, words=_field("speech"), recording_url=_recording_url())
    else:
        result = _board().respond(call, wait, digits=_field("digits"), speech=_field("speech"))
    return _answer(call, result)


@bp.post("/calls/hangup")
def hang_up():
    call, wait = _call_from_token()
    if call is None:
        return jsonify(error="this call has ended"), 400
    _board().hang_up(call, wait, words=_field("speech"), recording_url=_recording_url())
    return "", 204


@bp.get("/recordings/<sid>")
def recording(sid: str):
    """A simulated recording is a second of silence: the words the caller typed went to the webhooks."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(1)
        audio.setframerate(8000)
        audio.writeframes(b"\x80" * 8000)
    return Response(buffer.getvalue(), mimetype="audio/wav")

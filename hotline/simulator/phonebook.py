"""The pretend phones: adding and removing them, and what each one shows (its texts, its calls)."""

from __future__ import annotations

from xml.etree import ElementTree

from sqlalchemy import or_
from sqlmodel import Session, select

from hotline import phones, translations
from hotline.models import Channel, Member, SimulatedMessage, SimulatedPhone

KINDS = ("mobile", "landline")
THREAD_LENGTH = 40  # texts shown per phone
CALL_LOG_LENGTH = 5
TRAFFIC_LENGTH = 30


class PhoneTaken(ValueError):
    """There is a pretend phone with this number already."""


def add(session: Session, number: str, *, kind: str = "mobile", label: str = "") -> SimulatedPhone:
    """A new pretend phone; the number is read as a person types it (drama numbers are fine here)."""
    if kind not in KINDS:
        raise ValueError(f"a pretend phone is a mobile or a landline, not {kind!r}")
    e164 = phones.parse(number, strict=False)
    if session.exec(select(SimulatedPhone).where(SimulatedPhone.number == e164)).first():
        raise PhoneTaken(f"there is a pretend phone with {phones.national(e164)} already")
    phone = SimulatedPhone(number=e164, kind=kind, label=label.strip()[:60])
    session.add(phone)
    session.flush()
    return phone


def ensure(session: Session, number: str, *, kind: str, label: str) -> SimulatedPhone:
    """The pretend phone with this number, added if missing (demo seeding runs more than once)."""
    existing = session.exec(select(SimulatedPhone).where(SimulatedPhone.number == number)).first()
    return existing or add(session, number, kind=kind, label=label)


def remove(session: Session, phone_id: int) -> bool:
    phone = session.get(SimulatedPhone, phone_id)
    if phone is None:
        return False
    session.delete(phone)
    return True


def spoken(twiml: str) -> str:
    """What an alert call says, for a handset's call log and a missed call's answering machine."""
    try:
        root = ElementTree.fromstring(twiml)
    except ElementTree.ParseError:
        return ""
    seen: list[str] = []
    for say in root.iter("Say"):
        text = " ".join("".join(say.itertext()).split())
        if text and not any(earlier in text for earlier in seen):  # "Again: …" repeats the alert
            seen.append(text)
    return " ".join(seen)


def _message(message: SimulatedMessage, timezone) -> dict:
    return {
        "id": message.id,
        "sid": message.sid,
        "incoming": message.from_ == "hotline",  # from the phone's point of view
        "body": message.body,
        "status": message.status,
        "time": message.created_at.astimezone(timezone).strftime("%H:%M:%S"),
    }


def _call(message: SimulatedMessage, timezone) -> dict:
    return {
        "id": message.id,
        "sid": message.sid,
        "status": message.status,
        "spoken": spoken(message.body),
        "time": message.created_at.astimezone(timezone).strftime("%H:%M:%S"),
    }


def snapshot(session: Session, *, timezone) -> dict:
    """Everything the page shows: each phone with its texts and alert calls, and the other traffic."""
    book = list(session.exec(select(SimulatedPhone).order_by(SimulatedPhone.id)))
    numbers = {phone.number for phone in book}
    spoken_in = dict(session.exec(select(Member.phone, Member.language).where(Member.phone.in_(numbers or {""}))).all())
    result = []
    for phone in book:
        mine = or_(SimulatedMessage.to == phone.number, SimulatedMessage.from_ == phone.number)
        texts = session.exec(
            select(SimulatedMessage).where(mine, SimulatedMessage.kind == Channel.SMS).order_by(SimulatedMessage.id.desc()).limit(THREAD_LENGTH)
        ).all()
        calls = session.exec(
            select(SimulatedMessage)
            .where(SimulatedMessage.to == phone.number, SimulatedMessage.kind == Channel.CALL)
            .order_by(SimulatedMessage.id.desc())
            .limit(CALL_LOG_LENGTH)
        ).all()
        language = translations.LANGUAGES[translations.known(spoken_in.get(phone.number))]
        result.append({
            "id": phone.id,
            "number": phone.number,
            "display": phones.national(phone.number),
            "kind": phone.kind,
            "language": {"code": language.code, "name": language.english, "native": language.native,
                         "say_language": language.say_language},
            "label": phone.label,
            "texts": [_message(m, timezone) for m in reversed(texts)],
            "calls": [_call(m, timezone) for m in calls],
        })
    others = session.exec(
        select(SimulatedMessage)
        .where(SimulatedMessage.to.not_in(numbers or {""}), SimulatedMessage.from_.not_in(numbers or {""}))
        .order_by(SimulatedMessage.id.desc())
        .limit(TRAFFIC_LENGTH)
    ).all()
    traffic = [
        {
            "id": m.id,
            "kind": m.kind,
            "to": phones.mask(m.to) if m.from_ == "hotline" else "hotline",
            "from": "hotline" if m.from_ == "hotline" else phones.mask(m.from_),
            "text": spoken(m.body) if m.kind == Channel.CALL else m.body,
            "status": m.status,
            "time": m.created_at.astimezone(timezone).strftime("%H:%M:%S"),
        }
        for m in others
    ]
    return {"phones": result, "traffic": traffic}

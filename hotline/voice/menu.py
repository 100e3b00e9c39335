"""The voice menu as a state machine: each step gets what the caller pressed or said (a `Heard`) and
returns the next `Turn`. The home menu depends on who calls (member, pending, opted out, unknown:
`steps.py`); reporting by phone lives in `reporting.py`. The README's key table describes every state."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from hotline import messages, phones, translations
from hotline.db import utcnow
from hotline.models import AlertChannel, Delivery, MembershipStatus, Street
from hotline.reports import incidents
from hotline.residents import languages, members, streets
from hotline.voice import reporting
from hotline.voice.spoken import Heard, Prompt, Turn
from hotline.voice.steps import ACTIVE, OPTED_OUT, PENDING, UNKNOWN, WITHHELD, Step, again, ask, home, identify, spoken_to


def start(*, session: Session, config, heard: Heard, now: datetime | None = None) -> Turn:
    """The call comes in: greet by street, remind of 999, then the home menu for this caller, in their language."""
    step = Step(session, config, heard, now or utcnow(), identify(session, heard.phone))
    return spoken_to(step, _start)


def _start(step: Step) -> Turn:
    session, config, now = step.session, step.config, step.now
    if step.caller.kind == WITHHELD:
        return Turn([messages.voice_withheld(config.scheme_name)])
    names = step.caller.names if step.caller.kind == ACTIVE else []
    before = [messages.voice_greeting(config.scheme_name, names), *_outcomes_to_tell(step)]
    missed = incidents.unconfirmed(session, step.caller.phone, now) if step.caller.kind == ACTIVE else None
    if missed is not None:  # the answering machine told them: "call this number and press 1"
        return ask_confirm(step, missed, before=before)
    return home(step, before=before)


def ask_confirm(step: Step, delivery: Delivery, *, tries: int = 0, sorry: str | None = None, before: list[str] = ()) -> Turn:
    when = messages.spoken_when(delivery.created_at.astimezone(step.config.timezone), step.now.astimezone(step.config.timezone))
    prompt = Prompt("confirm", [messages.voice_unconfirmed(when, delivery.body)], tries=tries, params={"i": delivery.id})
    return ask(prompt, list(before), sorry)


def on_confirm(step: Step) -> Turn:
    """1: they heard the alert (recorded as by call); 0: the menu; 9: hear it again."""
    delivery = step.session.get(Delivery, step.heard.number("i"))
    if delivery is None or delivery.phone != step.caller.phone or step.caller.kind != ACTIVE:
        return home(step)
    key = step.heard.digits
    if key == "1":
        incidents.confirm(step.session, delivery, how="call", now=step.now)
        return home(step, before=[messages.voice_confirmed()])
    if key == "0":
        return home(step)
    if key == "9":
        return ask_confirm(step, delivery, tries=step.heard.tries)
    return again(step, _ask_confirm_again, delivery)


def _ask_confirm_again(step: Step, delivery: Delivery, *, tries: int, sorry: str | None) -> Turn:
    return ask_confirm(step, delivery, tries=tries, sorry=sorry)


def _outcomes_to_tell(step: Step) -> list[str]:
    """A reporter with no mobile hears what became of their reports first thing on their next call."""
    if step.caller.member is None:
        return []
    said = []
    for incident in incidents.untold_outcomes(step.session, step.caller.member):
        said.append(messages.voice_outcome(incident.ref, incident.outcome, incident.outcome_note))
        incident.outcome_told_at = step.now
        step.session.add(incident)
    return said


def answer(*, session: Session, config, state: str, heard: Heard, now: datetime | None = None) -> Turn:
    """One later step: `state` is where the prompt's answer was sent."""
    step = Step(session, config, heard, now or utcnow(), identify(session, heard.phone))
    if step.caller.kind == WITHHELD:
        return spoken_to(step, lambda step: Turn([messages.voice_withheld(config.scheme_name)]))
    if state == "language":
        return on_language(step)
    handlers = {
        "home": on_home, "settings": on_settings, "leave": on_leave, "join": on_join,
        "report": reporting.on_report, "check": reporting.on_check, "recording": reporting.on_recording,
        "kind": reporting.on_kind, "confirm": on_confirm,
    }
    return spoken_to(step, handlers.get(state, lambda s: home(s)))


def on_home(step: Step) -> Turn:
    kind, key = step.caller.kind, step.heard.digits
    if step.heard.silent:
        return again(step, home)
    if kind == UNKNOWN:
        return _street_heard(step)
    if key == "9":
        return home(step, tries=step.heard.tries)
    if kind == OPTED_OUT and key == "1":
        members.opt_in(step.session, step.caller.phone)
        step.refresh()
        return home(step, before=[messages.voice_opted_in(step.config.scheme_name)])
    if kind in (ACTIVE, PENDING) and key == "1":
        return reporting.ask_report(step, failures=0)
    if kind == ACTIVE and key == "2":
        return home(step, before=reporting.latest_alerts(step))
    if kind == ACTIVE and key == "3":
        return ask_settings(step)
    if kind in (ACTIVE, PENDING) and key == "8":
        return ask_language(step)
    return again(step, home)


# --- choosing a language (8) -----------------------------------------------------------------------


def ask_language(step: Step, *, tries: int = 0, sorry: str | None = None) -> Turn:
    """Each choice said in its own language by its own voice, then how to go back in the caller's."""
    lines = []
    for number, (code, lang) in enumerate(translations.LANGUAGES.items(), start=1):
        with translations.speaking(lang.speaks):
            lines.append((messages.voice_language_choice(number, lang), code))
    return ask(Prompt("language", [*lines, messages.voice_language_more()], tries=tries), sorry=sorry)


def on_language(step: Step) -> Turn:
    """1–8: that language from now on, and the menu in it; 0 back; 9 again. Outside `spoken_to`: the answer
    is in the language just chosen."""
    key = step.heard.digits or ""
    if step.caller.kind not in (ACTIVE, PENDING):
        return spoken_to(step, home)
    if key.isascii() and key.isdigit() and 1 <= int(key) <= len(translations.CODES):
        chosen = translations.CODES[int(key) - 1]
        languages.set_language(step.session, step.caller.member, chosen)
        return spoken_to(step, lambda step: home(step, before=[messages.voice_language_set()]), language=chosen)
    if key == "0":
        return spoken_to(step, home)
    if key == "9":
        return spoken_to(step, lambda step: ask_language(step, tries=step.heard.tries))
    return spoken_to(step, lambda step: again(step, ask_language))


# --- changing how alerts come, and leaving -----------------------------------------------------


def ask_settings(step: Step, *, tries: int = 0, sorry: str | None = None) -> Turn:
    member = step.caller.member
    said = messages.voice_settings(member.alerts == AlertChannel.CALL, phones.is_mobile(member.phone), step.caller.names)
    return ask(Prompt("settings", [said], tries=tries), sorry=sorry)


def on_settings(step: Step) -> Turn:
    if step.caller.kind != ACTIVE:
        return home(step)
    key, member = step.heard.digits, step.caller.member
    if key == "1":
        if not phones.is_mobile(member.phone):
            return home(step, before=[messages.voice_cannot_text()])
        members.set_alerts(step.session, member, AlertChannel.SMS)
        return home(step, before=[messages.voice_alerts_by_text()])
    if key == "2":
        members.set_alerts(step.session, member, AlertChannel.CALL)
        return home(step, before=[messages.voice_alerts_by_call()])
    if key == "3":
        return ask_leave(step)
    if key == "0":
        return home(step)
    if key == "9":
        return ask_settings(step, tries=step.heard.tries)
    return again(step, ask_settings)


def ask_leave(step: Step, *, tries: int = 0, sorry: str | None = None) -> Turn:
    return ask(Prompt("leave", [messages.voice_leave_confirm(step.caller.names)], tries=tries), sorry=sorry)


def on_leave(step: Step) -> Turn:
    if step.caller.kind != ACTIVE:
        return home(step)
    key = step.heard.digits
    if key == "1":
        return Turn([messages.voice_left(members.leave(step.session, step.caller.member))])
    if key in ("2", "0"):
        return home(step)
    if key == "9":
        return ask_leave(step, tries=step.heard.tries)
    return again(step, ask_leave)


# --- joining by phone ----------------------------------------------------------------------------


def _street_heard(step: Step) -> Turn:
    """An unknown caller keyed a code (then #) or said a street's name."""
    tries = step.heard.tries + 1
    if step.heard.digits is not None:
        code = step.heard.digits.strip("#")
        if not code.isdecimal():  # not isdigit(): "²" is a digit, and int("²") fails
            return home(step, tries=tries, sorry=messages.voice_code_not_digits())
        query = code
    else:
        query = (step.heard.speech or "").strip()
    try:
        street = streets.find(step.session, query)
    except streets.AmbiguousStreet as exc:
        return home(step, tries=tries, sorry=messages.voice_street_ambiguous(exc.candidates))
    except streets.StreetNotFound as exc:
        spoken = step.heard.digits is None
        return home(step, tries=tries, sorry=messages.voice_street_unknown(exc.candidates if spoken else []))
    return ask_join(step, street)


def ask_join(step: Step, street: Street, *, tries: int = 0, sorry: str | None = None) -> Turn:
    prompt = Prompt("join", [messages.voice_join_confirm(street.name)], tries=tries, params={"street": street.id})
    return ask(prompt, sorry=sorry)


def on_join(step: Step) -> Turn:
    street = step.session.get(Street, step.heard.number("street"))
    if street is None or step.caller.kind != UNKNOWN:
        return home(step)
    key = step.heard.digits
    if key == "1":
        # Members who join by phone get alerts by phone call unless they choose otherwise.
        member = members.get_or_create(step.session, step.caller.phone, alerts=AlertChannel.CALL)
        membership = members.join(step.session, member, street, now=step.now)
        if membership.status != MembershipStatus.ACTIVE:
            return Turn([messages.voice_joined_pending(street.name)])
        step.refresh()
        return home(step, before=[messages.voice_joined_active(street.name, member.alerts == AlertChannel.CALL)])
    if key == "2":
        return home(step)
    if key == "9":
        return ask_join(step, street, tries=step.heard.tries)
    return again(step, ask_join, street)

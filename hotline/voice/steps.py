"""What every step of the voice menu stands on: who is calling (a `Caller`), the `Step` a handler gets,
asking again after silence or a wrong key, and the home menu each kind of caller hears."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, select

from hotline import messages, translations
from hotline.models import Member, MembershipStatus, Street
from hotline.residents import members
from hotline.voice.spoken import Heard, Prompt, Turn

MAX_TRIES = 3  # a wrong key or silence at the same step this often ends the call politely

ACTIVE, PENDING, OPTED_OUT, UNKNOWN, WITHHELD = "active", "pending", "opted_out", "unknown", "withheld"


@dataclass
class Caller:
    kind: str
    phone: str | None
    member: Member | None = None
    streets: list[Street] = field(default_factory=list)  # active ones, or pending ones when pending

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.streets]

    @property
    def language(self) -> str:
        return translations.known(self.member.language if self.member else None)


def identify(session: Session, phone: str | None) -> Caller:
    if not phone:
        return Caller(WITHHELD, None)
    member = members.find(session, phone)
    if member is None:
        return Caller(UNKNOWN, phone)
    if member.opted_out:
        return Caller(OPTED_OUT, phone, member)
    joined = members.memberships(session, member, MembershipStatus.ACTIVE, MembershipStatus.PENDING)
    active = [s for m, s in joined if m.status == MembershipStatus.ACTIVE]
    if active:
        return Caller(ACTIVE, phone, member, active)
    pending = [s for _, s in joined]
    return Caller(PENDING, phone, member, pending) if pending else Caller(UNKNOWN, phone, member)


@dataclass
class Step:
    """One step of one call, as the state handlers see it."""

    session: Session
    config: object
    heard: Heard
    now: datetime
    caller: Caller

    def refresh(self) -> None:
        self.caller = identify(self.session, self.heard.phone)


def ask(prompt: Prompt, before: list[str] = (), sorry: str | None = None) -> Turn:
    """The prompt, or after MAX_TRIES failures a polite goodbye instead."""
    if prompt.tries >= MAX_TRIES:
        return Turn([*before, messages.voice_goodbye()])
    return Turn([*before, *([sorry] if sorry else [])], prompt)


def again(step: Step, asker, *args) -> Turn:
    """Silence (the no-input redirect has counted it already) or a key that is not a choice (count it)."""
    if step.heard.silent:
        sorry = messages.voice_no_input() if step.heard.tries else None
        return asker(step, *args, tries=step.heard.tries, sorry=sorry)
    return asker(step, *args, tries=step.heard.tries + 1, sorry=messages.voice_wrong_key())


def home(step: Step, *, tries: int = 0, before: list[str] = (), sorry: str | None = None) -> Turn:
    caller = step.caller
    if caller.kind == ACTIVE:
        prompt = Prompt("home", [messages.voice_main_menu()], tries=tries)
    elif caller.kind == PENDING:
        prompt = Prompt("home", [messages.voice_pending(caller.names)], tries=tries)
    elif caller.kind == OPTED_OUT:
        prompt = Prompt("home", [messages.voice_opted_out(step.config.scheme_name)], tries=tries)
    else:
        # The street names (and aliases) help the recogniser hear the one a caller says.
        hints = [name for s in step.session.exec(select(Street).order_by(Street.name)) for name in [s.name, *(s.aliases or [])]]
        prompt = Prompt("home", [messages.voice_join_prompt()], "dtmf speech", tries, hints=hints)
    return ask(prompt, list(before), sorry)


def spoken_to(step: Step, handler, language: str | None = None) -> Turn:
    """Run a handler with `messages` in the caller's language (or `language`, just chosen), and mark the
    Turn so every <Say> has that language's voice and every <Gather> its recogniser."""
    code = translations.known(language or step.caller.language)
    with translations.speaking_aloud(code):
        turn = handler(step)
    turn.language = code
    return turn

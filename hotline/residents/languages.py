"""Which language a member reads and hears: set by LANGUAGE, the voice menu's 8, their page, the CLI or a
CSV column; looked up wherever the hotline writes or speaks to a number."""

from __future__ import annotations

from sqlalchemy import case, literal
from sqlmodel import Session, select

from hotline import translations
from hotline.models import Member


class UnknownLanguage(ValueError):
    """Not one of the codes in hotline/translations."""


def code(value: str | None) -> str:
    """A code given by a coordinator (page, CLI, CSV): one of ours, or UnknownLanguage naming the choices."""
    wanted = (value or "").strip().lower()
    if wanted in translations.LANGUAGES:
        return wanted
    raise UnknownLanguage(f"unknown language {value!r}: one of {', '.join(translations.CODES)}")


def set_language(session: Session, member: Member, language: str) -> None:
    member.language = code(language)
    session.add(member)


def of_phone(session: Session, phone: str | None) -> str:
    """The language of whoever has this number (a member, or a coordinator who is also one); else English."""
    if not phone:
        return translations.DEFAULT
    found = session.exec(select(Member.language).where(Member.phone == phone)).first()
    return translations.known(found)


def body_for(bodies: dict[str, str], column=Member.language):
    """SQL choosing each member's text by their language (`column`), for set-based writes into the outbox."""
    choices = [(column == lang, literal(text)) for lang, text in bodies.items() if lang != translations.DEFAULT]
    english = literal(bodies[translations.DEFAULT])
    return case(*choices, else_=english) if choices else english  # a CASE with no WHEN is not SQL


def known(column=Member.language):
    """SQL for a member's language as the outbox records it: one of ours, else English."""
    return case((column.in_(translations.CODES), column), else_=literal(translations.DEFAULT))

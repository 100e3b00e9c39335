"""The languages the hotline speaks, and their gettext catalogues (`<code>/LC_MESSAGES/messages.po`).

Catalogues are compiled in memory the first time a language is used (Babel reads the .po file and
writes the .mo into a buffer), so there is no build step: the README's two commands are all it takes.
Which language is spoken is a context (`speaking(code)`), set where the hotline knows who it answers.
"""

from __future__ import annotations

import gettext as _gettext
import io
import logging
import re
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from pathlib import Path

HERE = Path(__file__).parent
DOMAIN = "messages"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1, as stored on Member.language
    english: str  # the name a coordinator reads, and one a resident may text (LANGUAGE URDU)
    native: str  # the name in its own script: how the choice is offered
    voice: str  # Twilio <Say> voice
    say_language: str  # Twilio <Say> language attribute
    speech: str  # Twilio <Gather> speech-recognition language
    speaks: str  # the catalogue a call is spoken from: the language itself, or the fallback README explains
    also: tuple[str, ...] = ()  # other names a resident may text


# The order is the numbered list LANGUAGE answers with (LANGUAGE 2 = Urdu). Voices: Twilio's text-to-speech
# table (Amazon Polly for English, Polish, Romanian; Google for the Indian languages). Twilio has no voice
# that reads Urdu script, so Urdu callers hear English from the English voice while the recogniser
# listens for Urdu (README, "Languages").
LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in (
        Language("en", "English", "English", "Polly.Amy", "en-GB", "en-GB", "en"),
        Language("ur", "Urdu", "اردو", "Polly.Amy", "en-GB", "ur-PK", "en"),
        Language("pa", "Punjabi", "ਪੰਜਾਬੀ", "Google.pa-IN-Standard-A", "pa-IN", "pa-guru-IN", "pa", ("PANJABI",)),
        Language("bn", "Bengali", "বাংলা", "Google.bn-IN-Standard-A", "bn-IN", "bn-IN", "bn", ("BANGLA",)),
        Language("gu", "Gujarati", "ગુજરાતી", "Google.gu-IN-Standard-A", "gu-IN", "gu-IN", "gu"),
        Language("ta", "Tamil", "தமிழ்", "Google.ta-IN-Standard-A", "ta-IN", "ta-IN", "ta"),
        Language("pl", "Polish", "Polski", "Polly.Ewa", "pl-PL", "pl-PL", "pl"),
        Language("ro", "Romanian", "Română", "Polly.Carmen", "ro-RO", "ro-RO", "ro", ("ROMANA",)),
    )
}
DEFAULT = "en"
CODES = tuple(LANGUAGES)
TRANSLATED = tuple(code for code in CODES if code != DEFAULT)

_current: ContextVar[str] = ContextVar("hotline_language", default=DEFAULT)


def known(code: str | None) -> str:
    """A stored or given code, or English for anything unknown (a catalogue removed, a typo in a CSV)."""
    code = (code or "").strip().lower()
    return code if code in LANGUAGES else DEFAULT


def current() -> str:
    return _current.get()


@contextmanager
def speaking(code: str | None):
    """Everything `messages` writes inside this block is in `code`'s language."""
    token = _current.set(known(code))
    try:
        yield
    finally:
        _current.reset(token)


def speaking_aloud(code: str | None):
    """As `speaking`, for words a call says: the catalogue that language's voice can say (README: Urdu)."""
    return speaking(LANGUAGES[known(code)].speaks)


def catalogue_path(code: str) -> Path:
    return HERE / code / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def _translations(code: str) -> _gettext.NullTranslations:
    if code == DEFAULT:
        return _gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    try:
        with catalogue_path(code).open("rb") as po:
            catalogue = read_po(po, locale=code)
    except (OSError, ValueError):
        log.exception("the %s catalogue cannot be read: falling back to English", code)
        return _gettext.NullTranslations()
    buffer = io.BytesIO()
    write_mo(buffer, catalogue)  # fuzzy entries are left out: they fall back to English
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


def translations(code: str | None = None) -> _gettext.NullTranslations:
    return _translations(known(code) if code else current())


def review_status(code: str) -> str:
    """`reviewed …` or `unreviewed …`: the catalogue's `# Review-Status:` comment, read as written (a comment,
    because `pybabel update` keeps comments but drops unknown header fields)."""
    if code == DEFAULT:
        return "source language"
    try:
        header = catalogue_path(code).read_text(encoding="utf-8")[:4000]
    except OSError:
        return "missing"
    found = re.search(r"^# Review-Status: (.*)$", header, re.MULTILINE)
    return found.group(1) if found else "unreviewed (no review status in the header)"


def choice(text: str) -> str | None:
    """The language a resident chose with `LANGUAGE <text>`: a list number, a code, or a name in English
    or in its own script; None when the text is not one of them (then the message is a report)."""
    wanted = " ".join(text.split()).strip(" .!").casefold()
    if not wanted:
        return None
    if wanted.isascii() and wanted.isdigit():
        number = int(wanted)
        return CODES[number - 1] if 1 <= number <= len(CODES) else None
    for lang in LANGUAGES.values():
        names = {lang.code, lang.english, lang.native, *lang.also}
        if wanted in {name.casefold() for name in names}:
            return lang.code
    return None


def each(build, *, spoken: bool = False, only=None) -> dict[str, str]:
    """`build()` once per language (or per language in `only`, and English): {code: text}. Spoken text
    uses the catalogue the call's voice can say."""
    made = {}
    for code, lang in LANGUAGES.items():
        if only is not None and code != DEFAULT and code not in only:
            continue
        with speaking(lang.speaks if spoken else code):
            made[code] = build()
    return made

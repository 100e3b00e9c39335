"""Phone numbers: parse (UK national or E.164) to E.164, format, mask, and scrub from text."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

REGION = "GB"
_DIGIT_RUN = re.compile(r"\+?\d[\d\s().\-]{5,}\d")
# Ofcom's drama range for mobiles, 07700 900000 to 900999: libphonenumber calls these invalid, but they are mobiles
# (the simulator's pretend mobiles and the demo's members use them; no real phone has one).
_DRAMA_MOBILES = re.compile(r"\+447700900\d{3}")
# A number inside free text (an error message, a URL): not part of a word or a SID, `%2B` for an encoded `+`.
_NUMBER_IN_TEXT = re.compile(r"(?:(?<=%2B)|(?<![A-Za-z0-9%]))\+?\d[\d\s()]{7,}\d(?![A-Za-z0-9])")


class InvalidPhone(ValueError):
    """What was typed is not a phone number we can text or call."""


def parse(text: str, *, strict: bool = True) -> str:
    """E.164 from a number a person typed. `strict` demands a valid number, as for what a coordinator types."""
    try:
        number = phonenumbers.parse((text or "").strip(), REGION)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"not a phone number: {text!r}") from exc
    ok = phonenumbers.is_valid_number(number) if strict else phonenumbers.is_possible_number(number)
    if not ok:
        raise InvalidPhone(f"not a valid phone number: {text!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=4096)
def from_twilio(value: str | None) -> str:
    """Twilio's `From`/`To`, taken as Twilio sends it (E.164), only tidied; drama numbers included.
    Remembered: every webhook asks it, of a few hundred numbers (~0.1 ms a parse)."""
    value = (value or "").strip()
    if not value:
        raise InvalidPhone("no number")
    try:
        return parse(value, strict=False)
    except InvalidPhone:
        if re.fullmatch(r"\+\d{6,15}", value):
            return value
        raise


def national(e164: str) -> str:
    try:
        number = phonenumbers.parse(e164, REGION)
    except phonenumbers.NumberParseException:
        return e164
    if number.country_code == 44:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def mask(e164: str | None) -> str:
    """`07700 9•• •01`: enough for a coordinator to tell numbers apart, not enough to ring them."""
    if not e164:
        return "—"
    if e164.startswith("+44") and len(e164) == 13:
        digits = "0" + e164[3:]
        return f"{digits[:5]} {digits[5]}•• •{digits[9:]}"
    shown = national(e164)
    positions = [i for i, ch in enumerate(shown) if ch.isdigit()]
    hidden = set(positions[len(positions) // 2 - 1 : -2])
    return "".join("•" if i in hidden else ch for i, ch in enumerate(shown))


def mask_all(text: str | None) -> str | None:
    """Every phone number in a text masked: for what others wrote (Twilio's error messages name the number,
    a failed look-up's URL carries it) before we store or show it."""
    if not text:
        return text

    def _mask(match: re.Match) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        if not 9 <= len(digits) <= 15:
            return match.group(0)
        if digits.startswith("44") and len(digits) == 12:
            return mask("+" + digits)
        if digits.startswith("0") and len(digits) == 11:
            return mask("+44" + digits[1:])
        return digits[:2] + "•" * (len(digits) - 4) + digits[-2:]

    return _NUMBER_IN_TEXT.sub(_mask, text)


def is_mobile(e164: str) -> bool:
    if _DRAMA_MOBILES.fullmatch(e164 or ""):
        return True
    try:
        kind = phonenumbers.number_type(phonenumbers.parse(e164, REGION))
    except phonenumbers.NumberParseException:
        return False
    return kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)


def scrub(text: str, e164: str, replacement: str = "[number removed]") -> str:
    """Remove every writing of one number from a text (07700 900123, +44 7700 900123, 447700900123 …)."""
    significant = _significant(e164)
    if len(significant) < 6:
        return text

    def _replace(match: re.Match) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return replacement if significant in digits else match.group(0)

    return _DIGIT_RUN.sub(_replace, text)


@lru_cache(maxsize=4096)
def _significant(e164: str) -> str:
    """The digits of a number that any writing of it contains (every report's alert is scrubbed of its sender's)."""
    try:
        return str(phonenumbers.parse(e164, REGION).national_number)
    except phonenumbers.NumberParseException:
        return re.sub(r"\D", "", e164)

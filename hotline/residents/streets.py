"""Streets: finding the one a resident means (names, aliases, codes, postcodes, abbreviations and typos),
coordinators editing them, and the `Scope` of streets a coordinator may see."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, select

from hotline.models import Street

ABBREVIATIONS = {
    "ave": "avenue", "av": "avenue", "rd": "road", "st": "street", "str": "street", "ln": "lane",
    "cl": "close", "cres": "crescent", "cresc": "crescent", "cr": "crescent", "dr": "drive",
    "gdns": "gardens", "gdn": "gardens", "pl": "place", "sq": "square", "ct": "court", "crt": "court",
    "gr": "grove", "gro": "grove", "tce": "terrace", "ter": "terrace", "pk": "park", "wy": "way",
    "hts": "heights", "mt": "mount", "pde": "parade", "wlk": "walk", "mws": "mews", "hl": "hill",
}
STREET_TYPES = set(ABBREVIATIONS.values()) | {"row", "rise", "vale", "view", "green", "end", "gate"}
POSTCODE = re.compile(r"^[A-Z]{1,2}\d[A-Z\d]?\d[A-Z]{2}$")


class StreetNotFound(LookupError):
    """No street matches; `candidates` holds the closest names."""

    def __init__(self, query: str, candidates: list[str]):
        super().__init__(query)
        self.candidates = candidates


class AmbiguousStreet(LookupError):
    """More than one street matches equally well."""

    def __init__(self, query: str, candidates: list[str]):
        super().__init__(query)
        self.candidates = candidates


def normalise(text: str) -> str:
    """`Clayhall Ave.` and `clayhall   AVENUE` both become `clayhall avenue`."""
    words = re.sub(r"[^\w\s]", " ", text.lower().replace("'", "")).split()
    return " ".join(ABBREVIATIONS.get(word, word) for word in words)


def without_type(name: str) -> str:
    words = name.split()
    return " ".join(words[:-1]) if len(words) > 1 and words[-1] in STREET_TYPES else name


def postcode_key(text: str) -> str:
    return re.sub(r"\s+", "", text.upper())


def distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions, swapped neighbours."""
    previous2, previous = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if previous2 is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def _allowed_typos(text: str) -> int:
    return 0 if len(text) < 4 else 1 if len(text) < 8 else 2


@dataclass
class _Names:
    street: Street
    names: set[str]


def _names(street: Street) -> _Names:
    names = {normalise(street.name)} | {normalise(a) for a in street.aliases or [] if a.strip()}
    return _Names(street, names | {without_type(n) for n in names})


def _unique(query: str, streets: list[Street]) -> Street:
    unique = {s.id: s for s in streets}
    if len(unique) == 1:
        return next(iter(unique.values()))
    raise AmbiguousStreet(query, sorted(s.name for s in unique.values()))


def find(session: Session, query: str) -> Street:
    """The one street `query` names, or StreetNotFound / AmbiguousStreet with candidates."""
    query = (query or "").strip()
    streets = list(session.exec(select(Street).order_by(Street.name)))
    if not query:
        raise StreetNotFound(query, [])
    digits = query.lstrip("#").rstrip("#").strip()
    if digits.isdecimal():  # not isdigit(): "²" is a digit, and int("²") fails
        by_code = [s for s in streets if s.code == int(digits)]
        if by_code:
            return by_code[0]
    key = postcode_key(query)
    if POSTCODE.match(key):
        by_postcode = [s for s in streets if key in {postcode_key(p) for p in s.postcodes or []}]
        if by_postcode:
            return _unique(query, by_postcode)

    wanted = normalise(query)
    table = [_names(s) for s in streets]
    exact = [t.street for t in table if wanted in t.names]
    if exact:
        full = [s for s in exact if normalise(s.name) == wanted]
        return _unique(query, full or exact)

    scored = sorted(
        ((min(distance(wanted, n) for n in t.names), t.street) for t in table), key=lambda pair: pair[0]
    )
    if scored and scored[0][0] <= _allowed_typos(wanted):
        best = scored[0][0]
        return _unique(query, [s for d, s in scored if d == best])
    raise StreetNotFound(query, [s.name for d, s in scored[:3] if d <= max(3, len(wanted) // 2)])


# --- coordinators editing streets, and what they may see -----------------------------------------


@dataclass(frozen=True)
class Scope:
    """The streets a coordinator looks after; `street_ids` is None for an admin (every street)."""

    street_ids: frozenset[int] | None

    @property
    def everything(self) -> bool:
        return self.street_ids is None

    def allows(self, street_id: int | None) -> bool:
        return self.everything or street_id in self.street_ids

    def allows_all(self, street_ids) -> bool:
        return self.everything or set(street_ids) <= self.street_ids


class StreetError(ValueError):
    """A street's name or code is taken, or something typed for it cannot be used."""


@dataclass



class StreetFields:
    name: str
    code: int | None
    aliases: list[str]
    postcodes: list[str]
    open: bool
    moderated: bool



def split_list(text: str) -> list[str]:
    """`Clayhall, Clayhall Rd` or one per line: the words a coordinator typed, tidied, no blanks."""
    parts = (text or "").replace("\n", ",").split(",")
    return [" ".join(p.split()) for p in parts if p.strip()]



def save_street(*, session: Session, street: Street | None, fields: StreetFields) -> Street:
    """Create (street None) or edit a street; names and codes stay unique."""
    name = " ".join(fields.name.split())
    if not name:
        raise StreetError("a street needs a name")
    clash = session.exec(select(Street).where(func.lower(Street.name) == name.lower())).first()
    if clash is not None and (street is None or clash.id != street.id):
        raise StreetError(f"a street called {name!r} exists already")
    code = fields.code
    if code is None:
        code = street.code if street else (session.exec(select(func.max(Street.code))).one() or 100) + 1
    taken = session.exec(select(Street).where(Street.code == code)).first()
    if taken is not None and (street is None or taken.id != street.id):
        raise StreetError(f"street code {code} is taken by {taken.name}")
    street = street or Street(name=name, code=code)
    street.name, street.code = name, code
    street.aliases = fields.aliases
    street.postcodes = [p.upper() for p in fields.postcodes]
    street.open, street.moderated = fields.open, fields.moderated
    session.add(street)
    session.flush()
    return street

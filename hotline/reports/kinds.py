"""What a report is about, for the meeting pack: a small keyword list, easy to edit, read in order.

A report's kind is the first kind (in KINDS' order) any of whose keywords it contains as whole words;
a keyword ending in * matches any word starting with it ("burglar*": burglar, burglars, burglary).
Reports with none of them, and recordings without text, are "other". The same rule runs in the
database (`sql_kind`, for the counts) and in Python (`kind_of`, for tests and one-off checks).
"""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import case, func, literal, or_

# Edit freely: the order decides a report naming both a van and a break-in (burglary comes first).
KINDS: dict[str, tuple[str, ...]] = {
    "burglary": ("burglar*", "break-in", "broke in", "breaking in", "broken into", "forced", "intruder*", "jemmy", "jemmied"),
    "theft": ("theft*", "thief", "thieves", "stole*", "stolen", "nicked", "shoplift*", "pinched", "taken"),
    "damage": ("damage*", "smashed", "vandal*", "graffiti", "scratched", "keyed", "fire", "arson"),
    "antisocial": ("antisocial", "anti-social", "asb", "noise", "noisy", "drunk*", "fight*", "shouting", "drug*", "loud", "fireworks"),
    "vehicle": ("car", "cars", "van", "vans", "vehicle*", "motorbike*", "moped*", "scooter*", "lorry", "truck*", "reg", "plate*", "driving", "parked"),
    "person": ("man", "men", "woman", "women", "person", "people", "youth*", "lad*", "boy*", "girl*", "hoodie*", "someone", "stranger*", "suspicious"),
}
OTHER = "other"
VERSION = hashlib.sha256(repr(list(KINDS.items())).encode()).hexdigest()[:16]  # ClassifiedReport.keywords: which list
SHOWN = ["vehicle", "person", "burglary", "theft", "damage", "antisocial", OTHER]  # the page's order
# Characters read as spaces before matching, so "van," and "(van)" are the word van. The hyphen is kept: anti-social.
SEPARATORS = ".,;:!?()[]\"'/\n\r\t"


def _pattern(keyword: str) -> str:
    return " " + re.escape(keyword.rstrip("*")) + ("" if keyword.endswith("*") else " ")


_COMPILED = {kind: re.compile("|".join(_pattern(k) for k in words)) for kind, words in KINDS.items()}


def kind_of(text: str | None) -> str:
    """The kind of one report's text (the Python twin of `sql_kind`)."""
    spaced = " " + "".join(" " if c in SEPARATORS else c for c in (text or "").lower()) + " "
    for kind, pattern in _COMPILED.items():
        if pattern.search(spaced):
            return kind
    return OTHER


def spaced_words(text_column):
    """The text as `sql_kind` reads it: lowered, separators turned into spaces, a space each side."""
    spaced = func.lower(text_column)
    for c in SEPARATORS:
        spaced = func.replace(spaced, c, " ")
    return literal(" ") + func.coalesce(spaced, "") + literal(" ")


def sql_kind(spaced):
    """A CASE expression giving a report's kind in the database from its `spaced_words`: LIKE '% van %' (or
    '% burglar%' for a prefix). Select `spaced_words` in a subquery the planner cannot merge, or every LIKE
    computes the lowering and replacing again."""
    whens = []
    for kind, words in KINDS.items():
        likes = [spaced.like(f"% {w.rstrip('*')}%" if w.endswith("*") else f"% {w} %") for w in words]
        whens.append((or_(*likes), kind))
    return case(*whens, else_=OTHER)

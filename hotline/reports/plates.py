"""UK number plates in what residents text or say: found, kept in one form (AB12CDE), shown spaced (AB12 CDE).

Current (AB12 CDE), prefix (A123 BCD), suffix (ABC 123D), Northern Irish (ABZ 1234) and dateless
(ABC 123, 1234 AB) plates, in any case and spacing, typed or as speech recognition writes them: NATO
words (Alfa, Juliett and X-ray too), letters and digits one by one, number words, "oh", "double D".

A plate is a few neighbouring tokens (runs of letters and digits) that together have a plate's shape
and keep the DVLA's rules for that format. What only looks like one is left alone: a road (A406, M11),
a house or flat number (no 12), a time (14:32), a price (£20), a postcode (IG5 0AA), ordinary words
either side of a number ("at 10 the"). Where it is unclear, a plate is missed rather than a word flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial

REGIONS = set("ABCDEFGHKLMNOPRSVWY")  # first letter of a current plate (the DVLA's regions)
YEAR_LETTERS = set("ABCDEFGHJKLMNPRSTVWXY")  # prefix and suffix age letters: never I, O, Q, U or Z
NI_CODES = set(
    "AZ BZ CZ DZ EZ FZ GZ HZ JZ KZ LZ MZ NZ OZ PZ RZ SZ TZ UZ VZ WZ XZ YZ IA IB IG IJ IL IW JI OI UI XI".split()
)
NATO = {
    "alpha": "A", "alfa": "A", "bravo": "B", "charlie": "C", "delta": "D", "echo": "E", "foxtrot": "F",
    "golf": "G", "hotel": "H", "india": "I", "juliet": "J", "juliett": "J", "kilo": "K", "lima": "L",
    "mike": "M", "november": "N", "oscar": "O", "papa": "P", "quebec": "Q", "romeo": "R", "sierra": "S",
    "tango": "T", "uniform": "U", "victor": "V", "whiskey": "W", "whisky": "W", "xray": "X", "yankee": "Y",
    "zulu": "Z", "zed": "Z",
}
NUMBERS = {
    "zero": "0", "nought": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13",
    "fourteen": "14", "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19",
}
TENS = {"twenty": "2", "thirty": "3", "forty": "4", "fifty": "5", "sixty": "6", "seventy": "7", "eighty": "8", "ninety": "9"}
REPEATS = {"double": 2, "treble": 3, "triple": 3}
EITHER = "o"  # "oh" said or typed alone: the letter O or the digit 0, whichever the plate's shape wants there
# Words that stand beside a number in ordinary sentences (and makes, units, days, months, police ranks):
# a token that is one of these is never part of a plate, which costs the rare plate that spells one.
STOPWORDS = set("""
am an as at be by do go he hi if in is it me my no of oh ok on or ox so to up us we ye yo ah eh er ha hm um uh
mr ms dr st rd ln av pm hr yr mo tv pc ps dc di uk gp ft km kg mm cm mi ml lb oz nr id rm cc mg vw yd
the and for are but not you all any can had her was our out day get has him his how man new now old see way
who boy did its let put say she too use ago yet off own why try ask big end far few got lot may men met run
saw set sit top win won yes bad red low hot due per via yrs mon tue wed thu fri sat sun jan feb mar apr jun
jul aug sep oct nov dec min hrs sec yds mph kph kms mtr lbs van car cab bus suv hgv lgv mpv bmw kia gti tdi
amg ncr scr rbt ave rte nos tel mob ext ref box apt flt blk sgt dci lad guy kid dog cat bag hat cap bin pub
age lol omg thx pls plz btw ive led lit ran pin est num nhs fax hmm cad log crn job inc ph phn
""".split())
ROAD_CUES = {"the", "on", "onto", "off", "via", "along", "up", "down", "towards", "toward", "near", "from", "to", "joined"}
POSTCODE = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{1,2}\d[A-Za-z\d]?\s*\d[A-Za-z]{2}(?![A-Za-z0-9])")
ROAD = re.compile(r"[abm]\d{1,4}")
ORDINAL = re.compile(r"\d+(st|nd|rd|th)")
TOKEN = re.compile(r"[A-Za-z0-9]+")
JOIN = re.compile(r"\s+|\s*-\s*")  # between the parts of one plate: spaces, or a hyphen
SOFT = re.compile(r"\s*[,.]\s*")  # "A, B, 1, 2", "A. B.": only between characters said one by one
CLOSE_BEFORE = set("£$€#@/\\%&*+=_~^|<>")  # a token straight after one of these is not a plate's part
CLOSE_AFTER = set("%/\\@&+=_~^|<>")
MAX_CHARS = 7

SHAPES: dict[str, list[str]] = {}  # "LLDDLLL" (letter, digit) → the formats with that shape, the likeliest first
for _kind, _shape in (
    [("current", "LLDDLLL")]
    + [("prefix", "L" + "D" * n + "LLL") for n in (1, 2, 3)]
    + [("suffix", "LLL" + "D" * n + "L") for n in (1, 2, 3)]
    + [("dateless", "L" * a + "D" * n) for a in (1, 2, 3) for n in (1, 2, 3, 4)]
    + [("dateless", "D" * n + "L" * a) for a in (1, 2, 3) for n in (1, 2, 3, 4)]
):
    SHAPES.setdefault(_shape, []).append(_kind)
SPOKEN = set(NATO) | set(NUMBERS) | set(TENS) | set(REPEATS) | {"x", "oh", "o"}
# A plate needs a digit: a text without one (or a number said as a word) is not read any further.
NUMERIC = re.compile(r"\d|\b(?:" + "|".join(sorted(set(NUMBERS) | set(TENS) | {"oh", "o"})) + r")\b", re.IGNORECASE)
BEFORE = re.compile(r"([A-Za-z]+)[ \t]+$")
INWARD = re.compile(r"\d[A-Za-z]{2}(?![A-Za-z0-9])")  # where a postcode could end: only there is POSTCODE tried


@dataclass
class Found:
    """A plate in a text: where it is (start, end) and what it is (normalised, e.g. AB12CDE)."""

    start: int
    end: int
    plate: str
    kind: str  # current | prefix | suffix | ni | dateless


@dataclass
class _Token:
    start: int
    end: int
    chars: str  # what it stands for in a plate: capitals, digits, EITHER
    spelled: bool  # one character alone, or a spoken word for characters (alpha, seven, double D)
    word: str  # the word as written (lower case) when it is letters only and not spelled


def _blocked(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    if before in CLOSE_BEFORE or after in CLOSE_AFTER or before.isalnum() or after.isalnum():
        return True  # £20, 50%, a/b, café: glued to something that is not a plate
    if before in "'’" and start >= 2 and text[start - 2].isalnum():
        return True  # the t of don't, the s of Jo's
    if before in ".,:" and start >= 2 and text[start - 2].isdigit():
        return True  # 14:32, 1.50, 1,000
    return after in ".,:" and end + 1 < len(text) and text[end + 1].isdigit()


def _spoken(word: str) -> str | None:
    """What a word said for a plate's characters stands for: alpha A, seven 7, oh EITHER."""
    return NATO.get(word) or NUMBERS.get(word) or (EITHER if word in ("oh", "o") else None)


def _read(word: str, following: str) -> tuple[str | None, int]:
    """(characters, words used) for words that speech recognition writes for characters; (None, 1) otherwise."""
    if word == "x" and following == "ray":
        return "X", 2
    if word in TENS:
        unit = NUMBERS.get(following, "")
        return (TENS[word] + unit, 2) if len(unit) == 1 and unit != "0" else (TENS[word] + "0", 1)
    if word == "double" and following in ("u", "you"):
        return "W", 2
    repeated = _spoken(following) or (following.upper() if len(following) == 1 else "")
    if word in REPEATS and len(repeated) == 1:
        return repeated * REPEATS[word], 2
    return _spoken(word), 1


def _postcodes(text: str) -> list[tuple[int, int]]:
    found = []
    for inward in INWARD.finditer(text):
        postcode = POSTCODE.search(text, max(0, inward.start() - 6), inward.end())
        if postcode:
            found.append(postcode.span())
    return found


def _tokens(text: str) -> list[_Token | None]:
    """Each token read for what it stands for in a plate; None for one that can never be in a plate."""
    raw = list(TOKEN.finditer(text))
    postcodes = _postcodes(text)
    tokens: list[_Token | None] = []
    i = 0
    while i < len(raw):
        match = raw[i]
        written = match.group()
        word = written.lower()
        if written.isalpha() and (len(written) > 3 or word in STOPWORDS) and word not in SPOKEN:
            tokens.append(None)  # most words: no plate has four letters in a row, and stopwords are never part of one
            i += 1
            continue
        chars, used = None, 1
        if word in SPOKEN:
            joined = i + 1 < len(raw) and JOIN.fullmatch(text[match.end() : raw[i + 1].start()])
            chars, used = _read(word, raw[i + 1].group().lower() if joined else "")
        start, end = match.start(), raw[i + used - 1].end()
        spelled = chars is not None or len(word) == 1
        token = _Token(start, end, chars or written.upper(), spelled, word if not spelled and written.isalpha() else "")
        if (
            len(token.chars) > MAX_CHARS
            or (chars is None and written.isalpha() and len(written) > 3)  # "double" before a word: double decker
            or (written.isdigit() and len(written) > 4)
            or ORDINAL.fullmatch(word)
            or _blocked(text, start, end)
            or any(a < end and start < b for a, b in postcodes)
        ):
            token = None
        tokens.append(token)
        i += used
    return tokens


def _joins(text: str, left: _Token, right: _Token) -> bool:
    """Whether two tokens can be parts of one plate: spaces or a hyphen between them, or a comma or full stop
    between characters said one by one."""
    gap = text[left.end : right.start]
    if JOIN.fullmatch(gap):
        return True
    characters = (left.spelled or left.chars.isdigit()) and (right.spelled or right.chars.isdigit())
    return characters and SOFT.fullmatch(gap) is not None


def _shapes(chars: str) -> list[tuple[str, str]]:
    """(shape, characters) for each way of reading the characters: EITHER is read as O or as 0."""
    if EITHER not in chars:
        return [("".join("D" if c.isdigit() else "L" for c in chars), chars)]
    found = []
    for shape in SHAPES:
        if len(shape) == len(chars) and all((c == EITHER) or (c.isdigit() == (k == "D")) for c, k in zip(chars, shape)):
            found.append((shape, "".join(("O" if k == "L" else "0") if c == EITHER else c for c, k in zip(chars, shape))))
    return found


def _rules(kind: str, plate: str, loose: bool) -> str | None:
    """The format's own rules; `loose`: written as one token or said one by one, not as words and a number."""
    if kind == "current":
        ok = plate[0] in REGIONS and plate[1] not in "IQZ" and plate[2:4] not in ("00", "01") and not set(plate[4:]) & set("IQ")
        return kind if ok else None
    if kind in ("prefix", "suffix"):
        digits = plate[1:-3] if kind == "prefix" else plate[3:-1]
        year, area = (plate[0], plate[-2:]) if kind == "prefix" else (plate[-1], plate[1:3])
        ok = year in YEAR_LETTERS and not digits.startswith("0") and not set(area) & set("IQZ")
        return kind if ok else None
    letters, digits = re.sub(r"\d", "", plate), re.sub(r"\D", "", plate)
    if digits.startswith("0") or len(letters) == 1:  # A406, M11, B1234: roads, never taken for plates
        return None
    if len(letters) == 2 and len(digits) < 3:  # IG5, SE17, NO 12: postcode districts and house numbers
        return None
    if letters.lower() in STOPWORDS:
        return None  # 100yds, 1000cc, bus123: a number and a unit or a word, even typed as one
    if plate[0].isdigit() and not (loose and len(digits) >= 3):
        return None  # "100 yds", 3ish, 2day: a number and a word; 1234AB typed as one, or said, is a plate
    northern = plate[0].isalpha() and letters[-2:] in NI_CODES
    if len(letters) == 3 and len(digits) < 3 and not (loose or northern):
        return None  # "Jan 12", "BBC 1": three letters and a small number are words far more often than plates
    return "ni" if northern else kind


def _match(tokens: list[_Token], before) -> tuple[str, str] | None:
    """The plate these tokens spell, if any: (normalised plate, kind). `before()`: the word before them."""
    chars = "".join(t.chars for t in tokens)
    if len(chars) < 4:
        return None
    loose = len(tokens) == 1 or all(t.spelled for t in tokens)
    for shape, plate in _shapes(chars):
        for kind in SHAPES.get(shape, ()):
            if kind == "prefix" and len(tokens) > 1 and ROAD.fullmatch(tokens[0].chars.lower()) and before() in ROAD_CUES:
                continue  # "on the A406 NCR": a road and a word, not A406 NCR
            found = _rules(kind, plate, loose)
            if found:
                return plate, found
    return None


def spans(text: str | None) -> list[Found]:
    """Every plate in the text, left to right; each the longest reading that starts where it does."""
    text = text or ""
    if not NUMERIC.search(text):
        return []
    tokens = _tokens(text)
    found: list[Found] = []
    i = 0
    while i < len(tokens):
        best, length, j = None, 0, i
        if tokens[i] is not None:
            before = partial(_word_before, text, tokens[i].start)
            while j < len(tokens) and tokens[j] is not None and length + len(tokens[j].chars) <= MAX_CHARS:
                if j > i and not _joins(text, tokens[j - 1], tokens[j]):
                    break
                length += len(tokens[j].chars)
                match = _match(tokens[i : j + 1], before)
                if match:
                    best = (j, *match)
                j += 1
        if best:
            last, plate, kind = best
            found.append(Found(tokens[i].start, tokens[last].end, plate, kind))
            i = last + 1
        else:
            i += 1
    return found


def _word_before(text: str, start: int) -> str:
    """The word just before a plate's first token ("the" in "on the A406 NCR")."""
    before = BEFORE.search(text, max(0, start - 12), start)
    return before.group(1).lower() if before else ""


def find(text: str | None) -> list[str]:
    """The plates a text names, normalised, each once, in the order they first appear."""
    return list(dict.fromkeys(f.plate for f in spans(text)))


def pieces(text: str | None) -> list[tuple[str, str | None]]:
    """The text cut around its plates, for a page to mark them: (words, None) and (plate as written, plate)."""
    text, out, at = text or "", [], 0
    for found in spans(text):
        if found.start > at:
            out.append((text[at : found.start], None))
        out.append((text[found.start : found.end], found.plate))
        at = found.end
    if at < len(text):
        out.append((text[at:], None))
    return out


def parse(text: str | None) -> str | None:
    """What a coordinator typed for a plate (any case and spacing), normalised; None when it is not one."""
    compact = re.sub(r"[\s-]+", "", text or "").upper()
    if not re.fullmatch(r"[A-Z0-9]{4,7}", compact):
        return None
    match = _match([_Token(0, len(compact), compact, False, "")], str)
    return match[0] if match else None


def spaced(plate: str) -> str:
    """AB12CDE as it is printed on the car: AB12 CDE, A123 BCD, ABC 123D, ABZ 1234."""
    shape = "".join("D" if c.isdigit() else "L" for c in plate)
    if re.fullmatch(r"LLDDLLL|LD{1,3}LLL", shape):
        return plate[:-3] + " " + plate[-3:]
    if re.fullmatch(r"LLLD{1,3}L", shape):
        return plate[:3] + " " + plate[3:]
    split = re.fullmatch(r"([A-Z]+)(\d+)|(\d+)([A-Z]+)", plate)
    return " ".join(part for part in split.groups() if part) if split else plate

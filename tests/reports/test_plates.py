"""The plate recogniser: a table of what residents text and what Twilio's speech recognition writes, with the
plates each names (spaced as printed) — and the many things that only look like plates."""

from __future__ import annotations

import pytest

from hotline.reports import plates

PLATES = [
    # current format (2001 on), any spacing and case
    ("AB12 CDE", ["AB12 CDE"]),
    ("ab12cde", ["AB12 CDE"]),
    ("AB12CDE", ["AB12 CDE"]),
    ("ab 12 cde", ["AB12 CDE"]),
    ("AB12-CDE outside no 4", ["AB12 CDE"]),
    ("Silver Ford Focus AB12 CDE parked outside 14, two men inside", ["AB12 CDE"]),
    ("WHITE VAN REG WR61 KZT", ["WR61 KZT"]),
    ("Vauxhall Astra 1.6 reg LB07SXR", ["LB07 SXR"]),
    ("Reg: LB07SXR!", ["LB07 SXR"]),
    ("(AB12 CDE)", ["AB12 CDE"]),
    ("'AB12 CDE' again", ["AB12 CDE"]),
    ("white van AB12 CDE and silver golf LY34 ZZZ", ["AB12 CDE", "LY34 ZZZ"]),
    ("AB12 CDE came back, AB12CDE again at 9", ["AB12 CDE"]),
    ("the plate was ab 12 cde i think", ["AB12 CDE"]),
    # prefix (1983-2001), suffix (1963-1983), Northern Irish, dateless
    ("red van A123 BCD by the shops", ["A123 BCD"]),
    ("P7 HVW", ["P7 HVW"]),
    ("a12 bcd", ["A12 BCD"]),
    ("old Jag ABC 123D again", ["ABC 123D"]),
    ("abc123d", ["ABC 123D"]),
    ("ABZ 1234 from Belfast", ["ABZ 1234"]),
    ("Merc with IA 1234", ["IA 1234"]),
    ("XYZ 1234", ["XYZ 1234"]),
    ("ABC123", ["ABC 123"]),
    ("1234AB", ["1234 AB"]),
    # Twilio's speech recognition writing a spoken plate
    ("a b 12 c d e", ["AB12 CDE"]),
    ("A B 12 C D E.", ["AB12 CDE"]),
    ("alpha bravo one two charlie delta echo", ["AB12 CDE"]),
    ("Alfa Bravo 12 Charlie Delta Echo.", ["AB12 CDE"]),
    ("A, B, 1, 2, C, D, E.", ["AB12 CDE"]),
    ("A. B. 1. 2. C. D. E.", ["AB12 CDE"]),
    ("a b twelve c d e", ["AB12 CDE"]),
    ("L G zero seven S X R", ["LG07 SXR"]),
    ("lima golf oh seven sierra x-ray romeo", ["LG07 SXR"]),
    ("lima golf oh seven sierra x ray romeo", ["LG07 SXR"]),
    ("lima golf 07 sierra xray romeo", ["LG07 SXR"]),
    ("a b 12 double d e", ["AB12 DDE"]),
    ("lima golf 07 double sierra romeo", ["LG07 SSR"]),
    ("kilo juliett sixty one hotel victor whiskey", ["KJ61 HVW"]),
    ("Kilo Juliet 61 Hotel Victor Whisky", ["KJ61 HVW"]),
    ("w r sixty one k z t", ["WR61 KZT"]),
    ("papa seven hotel victor whiskey", ["P7 HVW"]),
    ("I saw a car with the number plate a b 12 c d e going towards the park", ["AB12 CDE"]),
    ("one two three four a b", ["1234 AB"]),
    ("a b c one two three d", ["ABC 123D"]),
    ("the car was AB12 CDE 3 men got out", ["AB12 CDE"]),
    ("saw 2 cars GX63 ABC and a moped", ["GX63 ABC"]),
    ("PLATE: WR61 KZT", ["WR61 KZT"]),
]

NOT_PLATES = [
    # roads
    "seen on the A406 by ikea",
    "M11 southbound",
    "queue on the A12",
    "B1234 is closed",
    "near J4 of the M11",
    "It's on the M25 J27",
    "on the A406 NCR",
    "M11 and A406",
    "THREE MEN IN A WHITE VAN ON THE A12 AT 2AM",
    # house and flat numbers
    "lives at no 12",
    "flat 3 round the back",
    "number 42 again",
    "no. 42",
    "house 42a",
    "flats 1-12 Beehive Lane",
    "tried door of no 7 at 3 am",
    # times, dates, prices, measures
    "at 14:32 a man",
    "at 10pm",
    "around 9.30pm",
    "22:15 two lads",
    "at 1430 hrs",
    "on 20 Jan",
    "paid £20 to him",
    "cost me £1,500 quid",
    "he was 6 ft",
    "man 6ft 2 in a grey tracksuit",
    "approx 5'10 tall",
    "100 yds away",
    "24/7",
    "aged 30-40",
    # postcodes
    "IG5 0AA",
    "E17 4RT",
    "flat 12B, Clayhall Ave IG5 0AA",
    "my postcode is E17 4RT thanks",
    # words beside a number
    "ON 2ND",
    "SAW HIM AT 10 THE OTHER NIGHT",
    "at 10 the van came back",
    "bus 123 stops",
    "the 15 bus",
    "BMW 320d parked up",
    "2 men in a van",
    "two men one in a red hoodie",
    "ring PC 1234",
    "NHS 111",
    "dial 999 if needed",
    "rang 101 at 10.15",
    "Kia Sportage 2019",
    "Ford Transit 350 white",
    "Ford Focus RS 2.3 black",
    "VW 1234 hmm",
    "3 or 4 times",
    "about 10 of them",
    "age 14 or 15, hood up",
    "ABC 1",
    "don't 2 men",
    "at around 3ish",
    "2day at 10ish",
    "walked 100yds with a 1000cc bike",
    "police ref CAD 1234",
    "log 1234 given",
    "crime ref 01/1234/25",
    "PC 4321 attended",
    "the W12 bus",
    "route 275",
    "text back 07700 900123",
    "a 2019 BMW X5",
    "tues 4th at 10",
    "reg number started with LB07",
    "",
]


@pytest.mark.parametrize("text, expected", PLATES)
def test_a_plate_is_recognised_whatever_its_spacing_case_or_speech(text, expected):
    assert [plates.spaced(p) for p in plates.find(text)] == expected


@pytest.mark.parametrize("text", NOT_PLATES)
def test_roads_house_numbers_times_prices_postcodes_and_words_are_not_plates(text):
    assert plates.find(text) == []


def test_the_corpus_has_at_least_sixty_cases_of_both_kinds():
    assert len(PLATES) + len(NOT_PLATES) >= 60 and len(PLATES) >= 30 and len(NOT_PLATES) >= 30


def test_a_plate_is_stored_in_one_form_and_shown_spaced():
    assert plates.find("ab 12 cde") == ["AB12CDE"]
    shown = {"AB12CDE": "AB12 CDE", "A123BCD": "A123 BCD", "ABC123D": "ABC 123D", "ABZ1234": "ABZ 1234", "1234AB": "1234 AB"}
    assert {p: plates.spaced(p) for p in shown} == shown


def test_spans_say_where_each_plate_is_in_the_text():
    text = "van AB12 CDE then a b 12 c d e"
    found = plates.spans(text)
    assert [(text[f.start : f.end], f.plate, f.kind) for f in found] == [
        ("AB12 CDE", "AB12CDE", "current"),
        ("a b 12 c d e", "AB12CDE", "current"),
    ]


@pytest.mark.parametrize(
    "typed, expected",
    [("ab12 cde", "AB12CDE"), (" AB12CDE ", "AB12CDE"), ("abz 1234", "ABZ1234"), ("a123-bcd", "A123BCD"),
     ("A406", None), ("M11", None), ("hello", None), ("", None), ("AB12 CDE FG", None)],
)
def test_what_a_coordinator_types_for_a_plate_is_read_as_the_recogniser_reads_it(typed, expected):
    assert plates.parse(typed) == expected

"""Languages by SMS and in the catalogues: every catalogue covers every message and keeps its placeholders,
LANGUAGE lists and sets a member's language (anything else after it is a report), alerts are framed in
each member's language with the resident's words as written, keywords stay English and answer in the
member's language, UCS-2 bodies are counted and capped, announcements are previewed and written per language."""

from __future__ import annotations

import gettext
import re
import string
from datetime import datetime, timedelta
from xml.etree import ElementTree

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from sqlmodel import Session, select

from hotline import messages, translations
from hotline.coordination import announcements
from hotline.db import utcnow
from hotline.delivery import outbox, segments
from hotline.models import AlertChannel, Channel, Delivery, Member, Membership, MembershipStatus, Report
from hotline.residents import members
from hotline.translations import CODES, LANGUAGES, TRANSLATED, speaking
from tests.conftest import LANDLINES, NUMBERS, add_members, add_street, speaks

HERE = translations.HERE
TEMPLATE = HERE / "messages.pot"
SOURCE = HERE.parent / "messages.py"
KEYWORDS = {"_": None, "_n": (1, 2), "N_": None}  # as README's `pybabel extract -k _n:1,2 -k N_`
BENGALI = "আমাদের রাস্তায় একটি লাল গাড়ি দাঁড়িয়ে আছে"  # all in the Basic Multilingual Plane: one UTF-16 unit each


def _template():
    with TEMPLATE.open("rb") as pot:
        return read_po(pot)


def _catalogue(code: str):
    with translations.catalogue_path(code).open("rb") as po:
        return read_po(po, locale=code)


def _fields(text: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:  # an unbalanced brace: str.format would fail on it too
        pytest.fail(f"unbalanced braces in {text!r}: {exc}")


def _forms_for_one_only(catalogue) -> set[int]:
    """The singular: the plural form the language uses for n == 1 and for no n above 1. Only it may leave
    {count} out, as the English singular may ("Here is the latest alert."). In bn, gu and pa that form
    is also 0's, a number these sentences are never said of (0 alerts is "no alerts" in its own words)."""
    rule = gettext.c2py(catalogue.plural_expr)
    used = {}
    for n in range(1000):
        used.setdefault(rule(n), set()).add(n)
    return {form for form, ns in used.items() if 1 in ns and ns <= {0, 1}}


def _ids(catalogue) -> set[str]:
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalogue if m.id}


# --- the catalogues -----------------------------------------------------------------------------


def test_the_template_holds_every_sentence_messages_py_marks():
    """A sentence added to messages.py without `pybabel extract` would be English in every language."""
    marked = {(found[1] if isinstance(found[1], str) else found[1][0])
              for found in extract_from_file("python", str(SOURCE), keywords=KEYWORDS)}
    assert marked, "nothing extracted from messages.py"
    template = _ids(_template())
    assert marked - template == set(), "in messages.py, missing from messages.pot (run pybabel extract, then update)"
    assert template - marked == set(), "in messages.pot, no longer in messages.py"


def test_there_is_one_catalogue_per_language_and_no_other():
    on_disk = {path.parent.parent.name for path in HERE.glob("*/LC_MESSAGES/messages.po")}
    assert on_disk == set(TRANSLATED)
    assert set(CODES) == {"en", "ur", "pa", "bn", "gu", "ta", "pl", "ro"}


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_catalogue_covers_every_message_none_empty_or_fuzzy(code):
    template, catalogue = _template(), _catalogue(code)
    assert not catalogue.fuzzy, f"{code}: the header is marked fuzzy"
    missing, empty, fuzzy = [], [], []
    for wanted in template:
        if not wanted.id:
            continue
        message = catalogue.get(wanted.id)
        if message is None:
            missing.append(wanted.id)
            continue
        if isinstance(wanted.id, tuple):
            forms = message.string if isinstance(message.string, tuple) else (message.string,)
            if len(forms) != catalogue.num_plurals or not all(form.strip() for form in forms):
                empty.append(wanted.id)
        elif not (message.string or "").strip():
            empty.append(wanted.id)
        if message.fuzzy:
            fuzzy.append(wanted.id)
    assert (missing, empty, fuzzy) == ([], [], []), code


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_catalogue_keeps_the_placeholders_of_every_message(code):
    """Each {field} of the English is in the translation, and no other: a renamed or dropped field would
    fall back to English at run time (or, for {count}, say a number-less sentence of any number)."""
    catalogue = _catalogue(code)
    for_one_only = _forms_for_one_only(catalogue)
    broken = []
    for message in catalogue:
        if not message.id or not message.string:
            continue
        if isinstance(message.id, str):
            if _fields(message.string) != _fields(message.id):
                broken.append((message.id, message.string))
            continue
        singular, plural = message.id
        allowed = _fields(singular) | _fields(plural) | {"count"}
        for form, text in enumerate(message.string):
            needed = _fields(plural) - ({"count"} if form in for_one_only else set())
            if not needed <= _fields(text) <= allowed:
                broken.append((plural, form, text))
    assert broken == [], code


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_catalogue_says_it_is_an_unreviewed_draft(code):
    """Drafts are honest drafts: marking one reviewed means editing its `# Review-Status:` line (and this test)."""
    header = translations.catalogue_path(code).read_text(encoding="utf-8").split('msgid ""')[0]
    lines = re.findall(r"^# Review-Status: (.*)$", header, re.MULTILINE)
    assert lines, f"{code}: no '# Review-Status:' line in the header comment"
    assert translations.review_status(code) == lines[0]
    assert translations.review_status(code).startswith("unreviewed")
    assert translations.review_status("en") == "source language"


@pytest.mark.parametrize("code", TRANSLATED)
def test_the_catalogue_compiles_and_translates(code):
    compiled = translations.translations(code)
    assert isinstance(compiled, gettext.GNUTranslations)
    assert compiled.gettext("Emergency? Call 999") != "Emergency? Call 999"
    catalogue = _catalogue(code)
    for message in catalogue:  # every entry made it into the compiled catalogue, as written
        if message.id and isinstance(message.id, str):
            assert compiled.gettext(message.id) == message.string, message.id
    assert compiled.ngettext("{count} new report", "{count} new reports", 5) != "{count} new reports"


def test_the_language_menu_names_each_language_in_its_own_script():
    assert [LANGUAGES[c].native for c in CODES] == ["English", "اردو", "ਪੰਜਾਬੀ", "বাংলা", "ગુજરાતી", "தமிழ்", "Polski", "Română"]


# --- LANGUAGE by SMS ------------------------------------------------------------------------------


def reply_text(response) -> str:
    assert response.status_code == 200, response.data
    root = ElementTree.fromstring(response.data)
    assert root.tag == "Response"
    return " ".join(m.text or "" for m in root.iter("Message"))


def dispatch(rt) -> int:
    with Session(rt.engine) as session:
        return outbox.dispatch_due(session=session, carrier=rt.carrier, config=rt.config, limit=1000, now=utcnow())


def member(session, phone: str) -> Member:
    session.expire_all()
    return session.exec(select(Member).where(Member.phone == phone)).one()


def said(code: str, build):
    with speaking(code):
        return build()


@pytest.fixture
def street(session):
    clayhall = add_street(session, "Clayhall Avenue", 101, aliases=["Clayhall"], postcodes=["IG5 0AA"])
    add_members(session, clayhall, NUMBERS[:4])
    return clayhall


@pytest.fixture
def scheme(rt):
    return rt.config.scheme_name


def test_language_alone_lists_the_choices_numbered_each_in_its_own_script(rt, twilio, street, scheme):
    reply = reply_text(twilio.sms(NUMBERS[1], "LANGUAGE"))
    assert reply == said("en", messages.language_choices)
    for number, code in enumerate(CODES, start=1):
        assert f"{number} {LANGUAGES[code].native}" in reply


def test_language_alone_asks_in_the_members_language_but_names_each_choice_in_its_own(rt, session, twilio, street):
    speaks(session, street, NUMBERS[5], "pl")
    reply = reply_text(twilio.sms(NUMBERS[5], "language"))
    assert reply == said("pl", messages.language_choices) != said("en", messages.language_choices)
    assert all(f"{n} {LANGUAGES[c].native}" in reply for n, c in enumerate(CODES, start=1))
    assert member(session, NUMBERS[5]).language == "pl"


@pytest.mark.parametrize(
    "before, body, chosen",
    [
        ("en", "LANGUAGE 3", "pa"),
        ("en", "LANGUAGE URDU", "ur"),
        ("en", "language polski", "pl"),
        ("en", "Language বাংলা", "bn"),
        ("en", "LANGUAGE ta", "ta"),
        ("en", "language romana.", "ro"),
        ("gu", "LANGUAGE 1", "en"),
        ("ro", "language english", "en"),
    ],
)
def test_language_and_a_choice_sets_the_language_and_answers_in_it(rt, session, twilio, street, scheme, before, body, chosen):
    speaks(session, street, NUMBERS[5], before)
    reply = reply_text(twilio.sms(NUMBERS[5], body))
    assert member(session, NUMBERS[5]).language == chosen
    assert reply == said(chosen, lambda: messages.language_set(scheme))
    if chosen != "en":
        assert reply != said("en", lambda: messages.language_set(scheme))
    assert session.exec(select(Report)).all() == []  # a choice is not a report


@pytest.mark.parametrize("body", ["LANGUAGE they used was aggressive", "Language 9", "language 0", "LANGUAGE klingon"])
@pytest.mark.parametrize("language", ["en", "pl"])
def test_language_followed_by_anything_else_is_a_report_to_the_street(rt, session, twilio, twilio_api, street, body, language):
    speaks(session, street, NUMBERS[5], language)
    reply = reply_text(twilio.sms(NUMBERS[5], body))
    report = session.exec(select(Report)).one()
    assert report.text == body and report.phone == NUMBERS[5]
    assert reply == said(language, lambda: messages.report_ack(report.ref, 4))
    assert member(session, NUMBERS[5]).language == language
    assert dispatch(rt) == 4
    for number in NUMBERS[:4]:
        [sent] = twilio_api.to(number)
        assert body in sent["Body"]


# --- alerts, HELP, STOP and the other keywords in every language -----------------------------------


@pytest.mark.parametrize("code", CODES)
def test_a_member_in_each_language_gets_the_alert_framed_in_it_with_the_words_as_written(rt, session, twilio, twilio_api, street, code):
    speaks(session, street, NUMBERS[5], code)
    text = "two men trying car doors, one in a red hoodie"
    reply_text(twilio.sms(NUMBERS[0], text))
    assert dispatch(rt) == 4
    report = session.exec(select(Report)).one()
    local = report.created_at.astimezone(rt.config.timezone)
    expected = said(code, lambda: messages.broadcast("Clayhall Avenue", report.ref, local, text))
    english = said("en", lambda: messages.broadcast("Clayhall Avenue", report.ref, local, text))
    [sent] = twilio_api.to(NUMBERS[5])
    assert sent["Body"] == expected
    assert text in sent["Body"] and report.ref in sent["Body"] and "999" in sent["Body"]
    assert segments.count(sent["Body"]) <= messages.MAX_BROADCAST_SEGMENTS
    if code != "en":
        assert expected != english  # the frame is translated
    assert all(twilio_api.to(n)[0]["Body"] == english for n in NUMBERS[1:4])
    delivery = session.exec(select(Delivery).where(Delivery.phone == NUMBERS[5])).one()
    assert delivery.language == code and delivery.body == expected


@pytest.mark.parametrize("code", CODES)
def test_a_member_in_each_language_reporting_gets_the_thanks_in_it(rt, session, twilio, twilio_api, street, code):
    speaks(session, street, NUMBERS[5], code)
    text = "ladder against the back of number 12"
    reply = reply_text(twilio.sms(NUMBERS[5], text))
    report = session.exec(select(Report)).one()
    assert report.text == text
    assert reply == said(code, lambda: messages.report_ack(report.ref, 4))
    assert dispatch(rt) == 4
    assert all(text in twilio_api.to(n)[0]["Body"] for n in NUMBERS[:4])


@pytest.mark.parametrize("code", CODES)
def test_help_from_a_member_in_each_language_answers_in_it_and_names_language(rt, session, twilio, street, scheme, code):
    speaks(session, street, NUMBERS[5], code)
    reply = reply_text(twilio.sms(NUMBERS[5], "HELP"))
    assert reply == said(code, lambda: messages.help_text(scheme))
    assert "LANGUAGE" in reply and "STOP" in reply
    if code != "en":
        assert reply != said("en", lambda: messages.help_text(scheme))


@pytest.mark.parametrize("code, body", [(code, "STOP") for code in CODES] + [("bn", "stop"), ("ro", "Stop."), ("ur", "unsubscribe")])
def test_stop_from_a_member_in_each_language_opts_them_out_and_answers_in_it(rt, session, twilio, twilio_api, street, scheme, code, body):
    speaks(session, street, NUMBERS[5], code)
    reply = reply_text(twilio.sms(NUMBERS[5], body))
    assert member(session, NUMBERS[5]).opted_out_at is not None
    assert reply == said(code, lambda: messages.opted_out(scheme))
    if code != "en":
        assert reply != said("en", lambda: messages.opted_out(scheme))
    reply_text(twilio.sms(NUMBERS[0], "someone looking into cars with a torch"))
    dispatch(rt)
    assert twilio_api.to(NUMBERS[5]) == []  # opted out: no alert


@pytest.mark.parametrize("code", CODES)
def test_english_keywords_work_for_a_member_in_each_language_and_answer_in_it(rt, session, twilio, street, scheme, code):
    beehive = add_street(session, "Beehive Lane", 102)
    speaks(session, street, NUMBERS[5], code)

    reply = reply_text(twilio.sms(NUMBERS[5], "JOIN Beehive Lane"))
    assert reply == said(code, lambda: messages.join_pending("Beehive Lane"))
    session.expire_all()
    joined = session.exec(select(Membership).join(Member).where(Member.phone == NUMBERS[5], Membership.street_id == beehive.id)).one()
    assert joined.status == MembershipStatus.PENDING

    assert reply_text(twilio.sms(NUMBERS[5], "CALL ME")) == said(code, messages.alerts_by_call)
    assert member(session, NUMBERS[5]).alerts == AlertChannel.CALL
    assert reply_text(twilio.sms(NUMBERS[5], "TEXT ME")) == said(code, messages.alerts_by_text)
    assert member(session, NUMBERS[5]).alerts == AlertChannel.SMS

    assert reply_text(twilio.sms(NUMBERS[5], "STOP")) == said(code, lambda: messages.opted_out(scheme))
    reply = reply_text(twilio.sms(NUMBERS[5], "START"))
    assert member(session, NUMBERS[5]).opted_out_at is None
    assert reply == said(code, lambda: messages.opted_in(scheme, ["Clayhall Avenue"]))

    assert reply_text(twilio.sms(NUMBERS[5], "LEAVE")) == said(code, lambda: messages.left(["Beehive Lane", "Clayhall Avenue"]))
    assert member(session, NUMBERS[5]).language == code  # no keyword changes the language


def test_a_stranger_texting_language_and_a_choice_is_answered_in_it(rt, session, twilio, scheme):
    reply = reply_text(twilio.sms(NUMBERS[50], "LANGUAGE 7"))
    assert member(session, NUMBERS[50]).language == "pl"
    assert reply == said("pl", lambda: messages.language_set(scheme))
    assert reply_text(twilio.sms(NUMBERS[50], "HELP")) == said("pl", lambda: messages.help_text(scheme))


def test_updates_and_the_all_clear_reach_each_member_framed_in_their_language(rt, session, twilio, twilio_api, street):
    from hotline.models import Coordinator, CoordinatorStreet, ReportKind

    person = Coordinator(email="c@example.org", password_hash="x", phone=NUMBERS[90])
    session.add(person)
    session.flush()
    session.add(CoordinatorStreet(coordinator_id=person.id, street_id=street.id))
    session.commit()
    for n, code in enumerate(CODES):
        speaks(session, street, NUMBERS[10 + n], code)
    reply_text(twilio.sms(NUMBERS[0], "white van outside number 12"))
    reply_text(twilio.sms(NUMBERS[1], "R1 police have arrived"))
    reply_text(twilio.sms(NUMBERS[90], "CLEAR R1 they were delivering a sofa"))
    dispatch(rt)
    session.expire_all()
    update = session.exec(select(Report).where(Report.kind == ReportKind.UPDATE)).one()
    clear = session.exec(select(Report).where(Report.kind == ReportKind.ALL_CLEAR)).one()
    local = update.created_at.astimezone(rt.config.timezone)
    for n, code in enumerate(CODES):
        got = {d.report_id: d for d in session.exec(select(Delivery).where(Delivery.phone == NUMBERS[10 + n]))}
        assert got[update.id].body == said(code, lambda: messages.update_alert("R1", local, "police have arrived"))
        assert got[clear.id].body == said(code, lambda: messages.all_clear("R1", clear.text))
        assert "police have arrived" in got[update.id].body and "they were delivering a sofa" in got[clear.id].body
        assert got[update.id].language == got[clear.id].language == code
        if code != "en":
            assert got[clear.id].body != said("en", lambda: messages.all_clear("R1", clear.text))


# --- segments -------------------------------------------------------------------------------------


@pytest.mark.parametrize("length, expected", [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)])
def test_ucs2_segments_are_70_then_67_characters(length, expected):
    text = (BENGALI * 10)[:length]
    assert len(text) == length and not segments.is_gsm(text)
    assert segments.count(text) == expected


def test_gsm_segments_are_160_then_153_and_one_ucs2_character_makes_the_whole_text_ucs2():
    assert [segments.count("a" * n) for n in (160, 161, 306, 307)] == [1, 2, 2, 3]
    assert segments.count("a" * 69 + "ক") == 1 and segments.count("a" * 70 + "ক") == 2


LONG_REPORTS = {
    "english": ("two men with a ladder going from garden to garden, " * 30)[:1000],
    "bengali": (BENGALI + " ") * 30,
    "emoji": "🚨 " * 500,
}


@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("report", LONG_REPORTS)
@pytest.mark.parametrize("urgent", [False, True])
def test_every_alert_body_of_every_language_stays_within_three_segments(code, report, urgent):
    text = LONG_REPORTS[report][:1000]
    assert len(text) >= 1000 or report == "emoji"
    when = datetime(2026, 11, 29, 14, 32)
    with speaking(code):
        bodies = {
            "alert": messages.broadcast("Clayhall Avenue", "R42", when, text, urgent=urgent),
            "update": messages.update_alert("R42", when, text, urgent=urgent),
            "all clear": messages.all_clear("R42", text),
        }
        head = messages.broadcast("Clayhall Avenue", "R42", when, "x").split("x")[0]
    for kind, body in bodies.items():
        assert segments.count(body) <= messages.MAX_BROADCAST_SEGMENTS, (kind, segments.count(body), body)
    assert bodies["alert"].startswith(head) and "R42" in bodies["alert"]
    assert text[:20] in bodies["alert"]  # the resident's words, as written, cut only at the end


def test_a_long_report_reaches_a_member_of_every_language_in_their_frame_within_three_segments(rt, session, twilio, twilio_api, street):
    for n, code in enumerate(CODES):
        speaks(session, street, NUMBERS[10 + n], code)
    text = LONG_REPORTS["english"]
    reply_text(twilio.sms(NUMBERS[0], text))
    assert dispatch(rt) == 3 + len(CODES)
    report = session.exec(select(Report)).one()
    local = report.created_at.astimezone(rt.config.timezone)
    bodies = set()
    for n, code in enumerate(CODES):
        delivery = session.exec(select(Delivery).where(Delivery.phone == NUMBERS[10 + n])).one()
        assert delivery.language == code
        assert delivery.body == said(code, lambda: messages.broadcast("Clayhall Avenue", report.ref, local, text))
        assert segments.count(delivery.body) <= messages.MAX_BROADCAST_SEGMENTS
        assert twilio_api.to(NUMBERS[10 + n])[0]["Body"] == delivery.body
        bodies.add(delivery.body)
    assert len(bodies) == len(CODES)  # one body per language


# --- announcements --------------------------------------------------------------------------------


def test_the_announce_preview_counts_recipients_per_language(rt, session, street):
    speaks(session, street, NUMBERS[10], "pl")
    speaks(session, street, NUMBERS[11], "bn")
    speaks(session, street, NUMBERS[12], "bn")
    speaks(session, street, LANDLINES[0], "bn", alerts=AlertChannel.CALL)
    speaks(session, street, LANDLINES[1], "ur", alerts=AlertChannel.CALL)
    members.opt_out(session, NUMBERS[3])  # not reached, not counted
    session.commit()
    text = "Street meeting on Thursday at 7 in the church hall"
    shown = announcements.preview(session=session, config=rt.config, text=text, street_ids=[street.id])
    assert shown.recipients == 8 and shown.by_call == 2
    counted = [(share.code, share.recipients, share.by_call) for share in shown.languages]
    assert counted == [("en", 3, 0), ("ur", 1, 1), ("bn", 3, 1), ("pl", 1, 0)]  # in the order of the LANGUAGE list
    for share in shown.languages:
        assert share.name == LANGUAGES[share.code].english
        assert share.segments == segments.count(said(share.code, lambda: messages.announcement(rt.config.scheme_name, text)))
    assert shown.segments == max(share.segments for share in shown.languages)


def test_an_announcement_is_written_to_each_member_in_their_language(rt, session, street):
    scheme = rt.config.scheme_name
    for n, code in enumerate(CODES):
        speaks(session, street, NUMBERS[10 + n], code)
        speaks(session, street, LANDLINES[n], code, alerts=AlertChannel.CALL)
    text = "Street meeting on Thursday at 7 in the church hall"
    made = announcements.create(session=session, config=rt.config, text=text, street_ids=[street.id], send_at=None, created_by=None)
    written = announcements.release(session=session, config=rt.config, announcement=made, now=utcnow() + timedelta(seconds=1))
    session.commit()
    assert written == 4 + 2 * len(CODES)
    for n, code in enumerate(CODES):
        sms = session.exec(select(Delivery).where(Delivery.phone == NUMBERS[10 + n])).one()
        call = session.exec(select(Delivery).where(Delivery.phone == LANDLINES[n])).one()
        assert (sms.channel, sms.language, call.channel, call.language) == (Channel.SMS, code, Channel.CALL, code)
        assert sms.body == said(code, lambda: messages.announcement(scheme, text))
        assert call.body == said(LANGUAGES[code].speaks, lambda: messages.announcement_call(scheme, text))
        assert text in call.body
        if LANGUAGES[code].speaks != "en":
            assert call.body != said("en", lambda: messages.announcement_call(scheme, text))
    assert {d.language for d in session.exec(select(Delivery).where(Delivery.phone.in_(NUMBERS[:4])))} == {"en"}

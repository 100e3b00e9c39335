"""The log's queries as they were shaped for a big scheme (bench/scale.py): the export's keyset paging,
the street-first word search, the street choices, all returning exactly what the plain reading would."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hotline.coordination import accounts
from hotline.models import Report, ReportStreet
from hotline.reports import logbook
from hotline.residents.streets import Scope
from tests.conftest import NUMBERS, add_street

ZONE = ZoneInfo("Europe/London")
NOON = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


def put(session, text: str, street, at: datetime) -> Report:
    report = Report(phone=NUMBERS[0], text=text, created_at=at)
    session.add(report)
    session.flush()
    if street is not None:
        session.add(ReportStreet(report_id=report.id, street_id=street.id))
    session.commit()
    return report


def test_export_walks_every_report_once_across_batches_even_when_times_tie(session, scheme):
    street = scheme["clayhall"]
    made = [put(session, f"tied {n}", street, NOON) for n in range(5)]
    made += [put(session, f"earlier {n}", street, NOON - timedelta(minutes=n + 1)) for n in range(4)]

    walked = [e.report.id for e in logbook.every(session, logbook.LogFilter(), Scope(None), ZONE, batch=2)]

    newest_first = sorted(made, key=lambda r: (r.created_at, r.id), reverse=True)
    assert walked == [r.id for r in newest_first]
    paged = [e.report.id for e in logbook.page(session, logbook.LogFilter(), Scope(None), ZONE, size=100)]
    assert walked == paged


def test_words_within_a_street_and_dates_match_only_that_streets_reports(session, scheme):
    clayhall, beehive = scheme["clayhall"], scheme["beehive"]
    wanted_ids = {put(session, "White VAN by the garages", clayhall, NOON).id, put(session, "van again", clayhall, NOON - timedelta(days=1)).id}
    put(session, "van, but too old", clayhall, NOON - timedelta(days=40))
    put(session, "van on the wrong street", beehive, NOON)
    put(session, "a car on the right street", clayhall, NOON)
    put(session, "van from a stranger", None, NOON)
    wanted = logbook.LogFilter(street_id=clayhall.id, since=date(2026, 3, 1), until=date(2026, 3, 31), words="van")

    for scope in (Scope(None), Scope(frozenset({clayhall.id, beehive.id}))):
        found = logbook.page(session, wanted, scope, ZONE)
        assert {e.report.id for e in found} == wanted_ids
        assert logbook.count(session, wanted, scope, ZONE) == 2
        assert {e.report.id for e in logbook.every(session, wanted, scope, ZONE, batch=1)} == wanted_ids


def test_a_coordinators_word_search_stays_on_their_streets(session, scheme):
    clayhall, beehive = scheme["clayhall"], scheme["beehive"]
    mine = put(session, "ladder against the back wall", clayhall, NOON)
    put(session, "ladder on the wrong street", beehive, NOON)
    put(session, "ladder, no street", None, NOON)

    found = logbook.page(session, logbook.LogFilter(words="ladder"), Scope(frozenset({clayhall.id})), ZONE)

    assert [e.report.id for e in found] == [mine.id]
    assert logbook.count(session, logbook.LogFilter(words="ladder"), Scope(None), ZONE) == 3


def test_street_choices_are_the_scopes_streets_by_name(session, scheme):
    extra = add_street(session, "Aldborough Road", 103)
    everyone = accounts.street_choices(session, Scope(None))
    assert [(s.id, s.name) for s in everyone] == [(extra.id, "Aldborough Road"), (scheme["beehive"].id, "Beehive Lane"), (scheme["clayhall"].id, "Clayhall Avenue")]
    assert [s.name for s in accounts.street_choices(session, Scope(frozenset({scheme["clayhall"].id})))] == ["Clayhall Avenue"]
    assert accounts.street_choices(session, Scope(frozenset())) == []


def test_log_page_offers_the_streets_and_keeps_the_chosen_one(admin, scheme):
    html = admin.get(f"/?street={scheme['beehive'].id}").get_data(as_text=True)
    assert f'<option value="{scheme["beehive"].id}" selected>Beehive Lane</option>' in html
    assert f'<option value="{scheme["clayhall"].id}" >Clayhall Avenue</option>' in html

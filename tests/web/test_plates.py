"""The plate pages: /plates (seen more than once in 90 days, the watch list) and /plates/<PLATE>, scoped like
the log; the log's word search for a plate in any spacing; the report page marking the plates it found."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import select

from hotline.db import utcnow
from hotline.models import Report, WatchedPlate
from hotline.reports import intake
from hotline.residents import members
from tests.conftest import NUMBERS
from tests.web.conftest import text_in


def report_id(session, text: str) -> int:
    session.expire_all()
    return session.exec(select(Report.id).where(Report.text == text)).one()


def links(html: str) -> set[str]:
    return set(re.findall(r'href="(/reports/\d+)"', html))


def test_plates_seen_more_than_once_are_listed_with_streets_dates_and_references(admin, rt, session, scheme):
    text_in(rt, NUMBERS[0], "white van AB12 CDE")
    text_in(rt, NUMBERS[10], "van ab12cde back again")
    text_in(rt, NUMBERS[1], "LB07 SXR seen once only")
    html = admin.get("/plates").get_data(as_text=True)
    row = re.search(r'<tr data-plate="AB12CDE">.*?</tr>', html, re.S).group()
    assert "AB12 CDE" in row and "Clayhall Avenue" in row and "Beehive Lane" in row
    assert links(row) == {f"/reports/{report_id(session, 'white van AB12 CDE')}", f"/reports/{report_id(session, 'van ab12cde back again')}"}
    assert 'data-plate="LB07SXR"' not in html


def test_a_street_coordinator_sees_another_streets_report_by_street_and_date_only(clay, rt, session, scheme):
    text_in(rt, NUMBERS[0], "white van AB12 CDE at number 4")
    text_in(rt, NUMBERS[10], "AB12 CDE outside the Beehive pub with two men")
    mine, theirs = report_id(session, "white van AB12 CDE at number 4"), report_id(session, "AB12 CDE outside the Beehive pub with two men")
    for page in ("/plates", "/plates/AB12CDE"):
        html = clay.get(page).get_data(as_text=True)
        assert f"/reports/{mine}" in html and f"/reports/{theirs}" not in html, page
        assert "Beehive Lane" in html and "another street" in html, page
        assert "Beehive pub" not in html and f"R{theirs}" not in html, page
    assert "white van AB12 CDE at number 4" in clay.get("/plates/AB12CDE").get_data(as_text=True)


def test_a_street_coordinator_cannot_look_up_a_plate_never_reported_on_their_streets(clay, admin, rt, scheme):
    text_in(rt, NUMBERS[10], "LB07 SXR by the garages")
    text_in(rt, NUMBERS[11], "LB07 SXR again")
    assert 'data-plate="LB07SXR"' not in clay.get("/plates").get_data(as_text=True)
    assert clay.get("/plates/LB07SXR").status_code == 404
    assert 'data-plate="LB07SXR"' in admin.get("/plates").get_data(as_text=True)
    assert admin.get("/plates/LB07SXR").status_code == 200


def test_plates_last_seen_more_than_ninety_days_ago_are_not_listed(admin, rt, session, scheme):
    long_ago = utcnow() - timedelta(days=91)
    for phone in (NUMBERS[0], NUMBERS[10]):
        intake.submit(session=session, config=rt.config, phone=phone, text="AB12 CDE", member=members.find(session, phone), now=long_ago)
    session.commit()
    assert 'data-plate="AB12CDE"' not in admin.get("/plates").get_data(as_text=True)
    assert admin.get("/plates/AB12CDE").get_data(as_text=True).count("<li>") == 2  # its own page keeps them


def test_a_plate_page_takes_any_spacing_and_is_a_404_for_what_is_no_plate(admin, rt, scheme):
    text_in(rt, NUMBERS[0], "AB12 CDE")
    assert admin.get("/plates/ab12%20cde").headers["Location"].endswith("/plates/AB12CDE")
    assert admin.get("/plates/find?plate=a+b+12+c+d+e").headers["Location"].endswith("/plates/AB12CDE")
    assert admin.get("/plates/A406").status_code == 404
    wrong = admin.get("/plates/find?plate=M11", follow_redirects=True).get_data(as_text=True)
    assert "not a number plate" in wrong


def test_the_log_search_finds_a_plate_whatever_its_spacing(admin, rt, session, scheme):
    texts = ("van AB12 CDE parked", "a b 12 c d e going slowly", "ab12cde again", "AB12 was all I saw")
    for hours, text in enumerate(texts):  # hours apart: four reports, not one incident and its updates
        member = members.find(session, NUMBERS[0])
        intake.submit(session=session, config=rt.config, phone=NUMBERS[0], text=text, member=member, now=utcnow() - timedelta(hours=3 * hours))
        session.commit()
    for query in ("ab12cde", "AB12 CDE", "ab 12 cde"):
        html = admin.get("/", query_string={"q": query}).get_data(as_text=True)
        assert "3 reports match" in html, query
        assert "AB12 was all I saw" not in html
    assert "1 report matches" in admin.get("/", query_string={"q": "AB12CDE parked"}).get_data(as_text=True)
    assert "1 report matches" in admin.get("/", query_string={"q": "AB12 was"}).get_data(as_text=True)


def test_the_report_page_marks_the_plates_it_found(admin, rt, session, scheme):
    text_in(rt, NUMBERS[0], "van a b 12 c d e then LB07SXR <b>")
    html = admin.get(f"/reports/{report_id(session, 'van a b 12 c d e then LB07SXR <b>')}").get_data(as_text=True)
    assert '<a class="plate-mark" href="/plates/AB12CDE" title="number plate AB12 CDE"><mark>a b 12 c d e</mark></a>' in html
    assert '<mark>LB07SXR</mark>' in html and "&lt;b&gt;" in html


def test_a_coordinator_adds_a_plate_to_the_watch_list_with_a_note(clay, session, scheme):
    assert clay.post("/plates/watch", {"plate": "ab 12 cde", "note": "grey Transit, cold callers"}).status_code == 302
    entry = session.exec(select(WatchedPlate)).one()
    assert (entry.plate, entry.note, entry.added_by) == ("AB12CDE", "grey Transit, cold callers", scheme["people"]["clayhall"].id)
    html = clay.get("/plates").get_data(as_text=True)
    assert "AB12 CDE" in html and "clay@example.org" in html and "grey Transit" in html
    again = clay.post("/plates/watch", {"plate": "AB12CDE", "note": ""})
    assert again.status_code == 400 and "on the watch list already" in again.get_data(as_text=True)
    not_one = clay.post("/plates/watch", {"plate": "A406", "note": ""})
    assert not_one.status_code == 400 and "not a number plate" in not_one.get_data(as_text=True)
    assert clay.post("/plates/watch", {"plate": "LB07SXR"}, csrf=False).status_code == 400
    assert len(session.exec(select(WatchedPlate)).all()) == 1


def test_only_whoever_added_a_watched_plate_or_an_admin_takes_it_off(clay, admin, sim_app, session, scheme):
    from tests.web.conftest import Web

    bee = Web(sim_app)
    bee.login("bee@example.org")
    clay.post("/plates/watch", {"plate": "AB12CDE", "note": "clay's"})
    entry = session.exec(select(WatchedPlate)).one()
    remove = f'action="/plates/watch/{entry.id}/remove"'
    assert remove in clay.get("/plates").get_data(as_text=True) and remove in admin.get("/plates").get_data(as_text=True)
    assert remove not in bee.get("/plates").get_data(as_text=True)
    refused = bee.post(f"/plates/watch/{entry.id}/remove")
    assert refused.status_code == 403 and "Only the coordinator who added" in refused.get_data(as_text=True)
    assert bee.get("/plates/AB12CDE").status_code == 200  # a watched plate is everyone's to look up
    assert admin.post(f"/plates/watch/{entry.id}/remove").status_code == 302
    session.expire_all()
    assert session.exec(select(WatchedPlate)).all() == []


def test_the_nav_links_to_the_plates_page(clay, scheme):
    html = clay.get("/").get_data(as_text=True)
    assert '<a href="/plates"' in html
    assert 'href="/plates" aria-current="page"' in clay.get("/plates").get_data(as_text=True)

"""The plate pages in a real browser: the nav link, a plate seen on two streets, the watch list's add and its
Remove (asked first, by static/web.js), the report page's marked plate — with no CSP violation anywhere."""

from __future__ import annotations

import os
import shutil

from sqlmodel import select

from hotline.models import Report
from tests.browser.log.conftest import login
from tests.browser.log.test_screenshots import DOCS, shoot
from tests.conftest import NUMBERS


def test_a_coordinator_finds_a_plate_seen_on_two_streets_and_keeps_a_watch_list(page, live, streets, tmp_path):
    live.sms(NUMBERS[0], "white van AB12 CDE outside no. 23, two lads looking into cars")
    live.sms(NUMBERS[10], "a b 12 c d e parked by the shops with the engine running")
    live.sms(NUMBERS[1], "silver Golf LB07SXR going slowly, third time today")
    live.sms(NUMBERS[11], "LB07 SXR again by the garages")
    with live.session() as session:
        first = session.exec(select(Report).order_by(Report.id)).first()
    login(page)
    page.wait_for_url("**/")
    page.click("nav >> text=Plates")
    page.wait_for_url("**/plates")
    row = page.locator('tr[data-plate="AB12CDE"]')
    assert "Clayhall Avenue" in row.inner_text() and "Beehive Lane" in row.inner_text()
    assert row.locator('a[href^="/reports/"]').count() == 2

    page.fill('form[action="/plates/watch"] input[name=plate]', "wr61 kzt")
    page.fill('form[action="/plates/watch"] input[name=note]', "grey Transit, cold callers")
    page.click("text=Add to the watch list")
    page.wait_for_url("**/plates")
    watched = page.locator('.watch-list tr[data-plate="WR61KZT"]')
    assert "grey Transit, cold callers" in watched.inner_text() and "admin@example.org" in watched.inner_text()
    shots = [shoot(page, "plates", tmp_path)]

    page.once("dialog", lambda dialog: dialog.dismiss())  # asked first: "no" keeps it
    watched.locator("text=Remove").click()
    assert page.locator('.watch-list tr[data-plate="WR61KZT"]').count() == 1
    page.once("dialog", lambda dialog: dialog.accept())
    watched.locator("text=Remove").click()
    page.wait_for_selector("text=is off the watch list")
    assert page.locator('.watch-list tr[data-plate="WR61KZT"]').count() == 0

    page.goto(f"/reports/{first.id}")
    mark = page.locator("a.plate-mark mark")
    assert mark.inner_text() == "AB12 CDE"
    mark.click()
    page.wait_for_url("**/plates/AB12CDE")
    assert page.locator("ul.sightings li").count() == 2
    if os.environ.get("HOTLINE_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copy(shot, DOCS / shot.name)

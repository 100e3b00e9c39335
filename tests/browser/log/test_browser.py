"""The coordinators' pages in a real browser: login, a report arriving in the log without a reload,
filter and CSV download, approving a member, scheduling an announcement, and an XSS attempt."""

from __future__ import annotations

import csv
from datetime import timedelta

from sqlmodel import select

from hotline.db import utcnow
from hotline.models import Announcement, AnnouncementState, Membership, MembershipStatus
from tests.browser.log.conftest import login
from tests.conftest import NUMBERS


def test_login_wrong_password_then_right_then_logout(page, streets):
    page.goto("/")
    assert "/login" in page.url
    login(page, password="wrong password")
    assert page.locator(".flash-error").inner_text() == "That email and password do not match."
    login(page)
    page.wait_for_url("**/")
    assert page.locator("h1").inner_text() == "Log"
    assert "admin@example.org" in page.locator(".who").inner_text()
    page.click("text=Log out")
    page.wait_for_url("**/login")
    page.goto("/approvals")
    assert "/login" in page.url


def test_a_report_appears_in_the_log_without_a_reload(page, live, streets):
    login(page)
    page.wait_for_url("**/")
    assert "No reports" in page.locator("#log-live").inner_text()
    page.evaluate("window.__same_page = true")
    live.sms(NUMBERS[0], "man trying car door handles, red hoodie")
    row = page.locator("#log-live tr", has_text="man trying car door handles")
    row.wait_for(timeout=10_000)
    assert page.evaluate("window.__same_page") is True  # swapped in by the page's script, not a reload
    assert "07911 1•• •00" in row.inner_text() and "Clayhall Avenue" in row.inner_text()


def test_filter_then_download_exactly_the_filtered_rows_as_csv(page, live, streets, tmp_path):
    live.sms(NUMBERS[0], "red van outside number 12")
    live.sms(NUMBERS[10], "RED bicycle taken from the garden")
    live.sms(NUMBERS[1], "blue car idling")
    login(page)
    page.wait_for_url("**/")
    page.fill("input[name=q]", "red")
    page.click("button:text('Filter')")
    page.wait_for_url("**q=red**")
    table = page.locator("#log-live tbody")
    assert table.locator("tr").count() == 2 and "blue car" not in table.inner_text()
    with page.expect_download() as download:
        page.click("#export")
    saved = tmp_path / "log.csv"
    download.value.save_as(saved)
    rows = list(csv.DictReader(saved.read_text(encoding="utf-8-sig").splitlines()))
    assert sorted(r["text"] for r in rows) == ["RED bicycle taken from the garden", "red van outside number 12"]
    # The filter survives the page's own refresh.
    live.sms(NUMBERS[2], "another red thing")
    page.locator("#log-live tr", has_text="another red thing").wait_for()
    assert "blue car" not in page.locator("#log-live").inner_text()


def test_approving_a_member_with_one_click(page, live, streets):
    live.sms(NUMBERS[50], "JOIN Clayhall Ave")
    login(page, "clay@example.org")
    page.wait_for_url("**/")
    page.click("nav >> text=Approvals")
    row = page.locator("tr", has_text="07911 1•• •50")
    row.locator("button:text('Approve')").click()
    page.locator(".flash-ok").wait_for()
    assert "welcome text" in page.locator(".flash-ok").inner_text()
    assert page.locator("tr", has_text="07911 1•• •50").count() == 0
    with live.session() as session:
        assert session.exec(select(Membership.status).where(Membership.member_id.isnot(None), Membership.status == MembershipStatus.PENDING)).all() == []


def test_scheduling_an_announcement_then_cancelling_it(page, live, streets):
    login(page)
    page.wait_for_url("**/")
    page.click("nav >> text=Announce")
    page.fill("textarea[name=text]", "Residents' meeting on Sunday at 3pm, St Mary's hall.")
    page.check(f"input[name=streets][value='{streets['clayhall'].id}']")
    page.check("input[name=when][value=later]")
    when = (utcnow() + timedelta(days=3)).astimezone(live.rt.config.timezone).replace(hour=15, minute=0)
    page.fill("input[name=at]", when.strftime("%Y-%m-%dT%H:%M"))
    live_counts = page.locator("#announce-live")
    live_counts.filter(has_text="Goes to 4 members").wait_for()
    assert "1 text message each" in live_counts.inner_text()
    page.click("#check")
    assert page.locator("#preview-recipients").inner_text() == "4"
    assert page.locator("#preview-segments").inner_text() == "1"
    page.click("#confirm")
    page.locator(".flash-ok", has_text="scheduled").wait_for()
    scheduled = page.locator("#scheduled tr", has_text="Residents' meeting")
    assert when.strftime("%a %d %b %Y 15:00") in scheduled.inner_text()
    with live.session() as session:
        kept = session.exec(select(Announcement)).one()
        assert kept.state == AnnouncementState.SCHEDULED and kept.street_ids == [streets["clayhall"].id]
    scheduled.locator("button:text('Cancel')").click()
    page.locator(".flash-ok", has_text="Cancelled").wait_for()
    assert page.locator("#scheduled").count() == 0
    with live.session() as session:
        assert session.exec(select(Announcement)).one().state == AnnouncementState.CANCELLED


XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


def test_script_in_an_sms_is_shown_as_text_and_never_runs(page, live, streets):
    live.sms(NUMBERS[0], XSS)
    login(page)
    page.wait_for_url("**/")
    cell = page.locator("#log-live td.text").first
    assert cell.inner_text() == XSS
    live.sms(NUMBERS[1], "second " + XSS)  # and again through the live refresh (innerHTML)
    page.locator("#log-live td.text", has_text="second").wait_for()
    page.wait_for_timeout(300)
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("#log-live img").count() == 0
    page.click("#log-live a >> nth=0")
    page.wait_for_url("**/reports/*")
    assert XSS in page.locator(".facts").inner_text()
    assert page.evaluate("typeof window.__xss") == "undefined"

"""The log: every report newest first, masked reporters, filters, pages, refresh rows, CSV export,
and a report's page with each delivery and the broadcast's progress."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import select

from hotline.delivery import outbox
from hotline.models import Delivery, DeliveryState, Report, ReportStreet
from hotline.reports import logbook
from tests.conftest import NUMBERS
from tests.web.conftest import text_in


@pytest.fixture(autouse=True)
def every_text_a_new_report(rt):
    """These tests fill the log with several reports from one street in a minute; within
    HOTLINE_INCIDENT_MINUTES an alerted neighbour's text would be an update of the first (tests/web/test_incidents.py)."""
    rt.config = rt.config.with_overrides(incident_minutes=0)


def page(client, url="/"):
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def test_log_shows_reports_newest_first_with_masked_reporter_and_counts(admin, rt, scheme):
    text_in(rt, NUMBERS[0], "first: van with ladders")
    text_in(rt, NUMBERS[1], "second: shed door forced")
    html = page(admin)
    assert html.index("second: shed door forced") < html.index("first: van with ladders")
    assert "07911 1•• •01" in html  # NUMBERS[1] = +447911100101
    assert "+447911100101" not in html and "07911 100101" not in html
    assert "Clayhall Avenue" in html and "SMS" in html
    assert "0/3 delivered" in html and "3 on their way" in html
    assert ">sent<" in html


def test_states_held_dropped_and_not_broadcast_are_labelled(admin, rt, session, scheme):
    text_in(rt, NUMBERS[60], "a stranger writes in")
    html = page(admin)
    assert "not broadcast" in html and "(stranger)" in html
    assert "no street" in html  # a stranger's report belongs to no street: only admins see it


def test_html_in_a_report_is_shown_as_text(admin, rt, scheme):
    text_in(rt, NUMBERS[0], '<script>alert("x")</script><img src=x onerror=alert(1)>')
    html = page(admin)
    assert '<script>alert("x")</script>' not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_filter_by_street_words_and_dates(admin, rt, session, scheme):
    text_in(rt, NUMBERS[0], "Clayhall: red hoodie at the bins")
    text_in(rt, NUMBERS[10], "Beehive: RED van idling")
    text_in(rt, NUMBERS[11], "Beehive: blue car")
    old = session.exec(select(Report).where(Report.text.contains("blue car"))).one()
    old.created_at = datetime(2024, 3, 2, 12, 0, tzinfo=timezone.utc)
    session.add(old)
    session.commit()

    by_street = page(admin, f"/?street={scheme['beehive'].id}")
    assert "RED van" in by_street and "blue car" in by_street and "red hoodie" not in by_street
    words = page(admin, "/?q=red")
    assert "red hoodie" in words and "RED van" in words and "blue car" not in words
    both = page(admin, f"/?q=red&street={scheme['beehive'].id}")
    assert "RED van" in both and "red hoodie" not in both
    dates = page(admin, "/?from=2024-03-01&to=2024-03-02")
    assert "blue car" in dates and "red hoodie" not in dates
    assert "1 report match" in dates
    assert "blue car" not in page(admin, "/?to=2024-03-01")


def test_words_filter_treats_percent_and_underscore_literally(admin, rt, scheme):
    text_in(rt, NUMBERS[0], "100% sure it was him, plate AB_12")
    text_in(rt, NUMBERS[1], "nothing special here, plate ABX12")
    assert "nothing special" not in page(admin, "/?q=%25")
    assert "100% sure" in page(admin, "/?q=%25")
    underscore = page(admin, "/?q=AB_12")
    assert "100% sure" in underscore and "nothing special" not in underscore


def test_bad_filter_values_are_ignored_not_errors(admin, rt, scheme):
    text_in(rt, NUMBERS[0], "still shown")
    assert "still shown" in page(admin, "/?from=yesterday&to=2024-13-45&page=-3")


def test_log_paginates(admin, rt, session, scheme):
    street = scheme["clayhall"]
    for n in range(logbook.PAGE_SIZE + 5):
        report = Report(phone=NUMBERS[0], text=f"report number {n:03d}", created_at=datetime.now(timezone.utc) - timedelta(minutes=n))
        session.add(report)
        session.flush()
        session.add(ReportStreet(report_id=report.id, street_id=street.id))
    session.commit()
    first = page(admin)
    assert "page 1 of 2" in first and "report number 000" in first and "report number 054" not in first
    second = page(admin, "/?page=2")
    assert "report number 054" in second and "report number 000" not in second
    assert 'href="/?page=1"' in second


def test_refresh_rows_keep_the_filters_and_show_new_reports(admin, rt, scheme):
    text_in(rt, NUMBERS[0], "bins on fire")
    html = page(admin, "/?q=fire")
    assert 'data-refresh-url="/log/rows?page=1&amp;q=fire"' in html
    text_in(rt, NUMBERS[1], "second fire, by the garages")
    text_in(rt, NUMBERS[2], "unrelated cat")
    rows = page(admin, "/log/rows?page=1&q=fire")
    assert "second fire" in rows and "unrelated cat" not in rows
    assert "<html" not in rows  # only the table, for the page's script to swap in


def read_csv(response) -> list[dict]:
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True).lstrip("\ufeff")
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_export_has_exactly_the_filtered_rows_across_pages(admin, rt, session, scheme):
    street = scheme["clayhall"]
    for n in range(logbook.PAGE_SIZE + 10):
        report = Report(phone=NUMBERS[0], text=f"export me {n}", created_at=datetime.now(timezone.utc) - timedelta(seconds=n))
        session.add(report)
        session.flush()
        session.add(ReportStreet(report_id=report.id, street_id=street.id))
    session.add(Report(phone=NUMBERS[1], text="leave me out"))
    session.commit()
    rows = read_csv(admin.get("/log.csv?q=export"))
    assert len(rows) == logbook.PAGE_SIZE + 10
    assert [r["text"] for r in rows[:2]] == ["export me 0", "export me 1"]
    assert all(r["reporter"] == "07911 1•• •00" for r in rows)
    assert rows[0]["streets"] == "Clayhall Avenue"


def test_csv_export_neutralises_formulas(admin, rt, scheme):
    for danger in ("=HYPERLINK(\"http://evil\")", "+44 calls", "-1+1", "@SUM(A1)"):
        text_in(rt, NUMBERS[0], danger)
    texts = {r["text"] for r in read_csv(admin.get("/log.csv"))}
    assert texts == {"'=HYPERLINK(\"http://evil\")", "'+44 calls", "'-1+1", "'@SUM(A1)"}
    assert logbook.csv_cell("\tcmd") == "'\tcmd" and logbook.csv_cell("\rcmd") == "'\rcmd"
    assert logbook.csv_cell("plain") == "plain" and logbook.csv_cell(None) == ""


def test_csv_export_is_streamed(admin, rt, scheme):
    text_in(rt, NUMBERS[0], "streamed")
    response = admin.get("/log.csv", buffered=False)
    assert response.is_streamed


def test_report_page_lists_every_recipient_masked_with_state(admin, rt, session, scheme):
    rt.carrier.network.step = 3600  # the states below are set by hand: no simulated status callback 1.5 s in (a slow run saw one)
    text_in(rt, NUMBERS[0], "ladder against number 4")
    report = session.exec(select(Report)).one()
    outbox.dispatch_due(session=session, carrier=rt.carrier, config=rt.config)
    failed = session.exec(select(Delivery).where(Delivery.phone == NUMBERS[3])).one()
    failed.state, failed.error_code, failed.error_message = DeliveryState.FAILED, 30003, "Unreachable destination handset"
    session.add(failed)
    session.commit()
    html = page(admin, f"/reports/{report.id}")
    for number in NUMBERS[1:4]:
        assert "07911 1•• •0" + number[-1] in html
    assert "+447911100101" not in html
    assert "30003" in html and "Unreachable destination handset" in html
    assert "0 of 3 delivered, 1 failed" in html
    progress = admin.get(f"/reports/{report.id}/progress").get_json()
    assert progress == {"total": 3, "delivered": 0, "failed": 1, "cancelled": 0, "pending": 2, "state": "sent"}
    for delivery in session.exec(select(Delivery).where(Delivery.state != DeliveryState.FAILED)):
        delivery.state = DeliveryState.DELIVERED
        session.add(delivery)
    session.commit()
    assert admin.get(f"/reports/{report.id}/progress").get_json()["delivered"] == 2


def test_report_page_of_an_unknown_report_is_404(admin, scheme):
    assert admin.get("/reports/999").status_code == 404


def test_recording_links_are_only_http(admin, session, scheme):
    session.add(Report(phone=NUMBERS[0], text=None, recording_url="javascript:alert(1)", channel="call"))
    session.add(Report(phone=NUMBERS[1], text=None, recording_url="https://api.twilio.com/rec/RE1", channel="call"))
    session.commit()
    html = page(admin)
    assert "javascript:" not in html
    assert 'href="https://api.twilio.com/rec/RE1"' in html


def test_street_coordinator_sees_only_deliveries_on_their_street(clay, admin, rt, session, scheme):
    both = scheme["beehive"]
    from hotline.residents import members as member_book

    member_book.add(session, NUMBERS[0], both, alerts="sms", active=True)  # the reporter is on both streets
    session.commit()
    text_in(rt, NUMBERS[0], "seen from both streets")
    report = session.exec(select(Report)).one()
    assert admin.get(f"/reports/{report.id}/progress").get_json()["total"] == 6
    assert clay.get(f"/reports/{report.id}/progress").get_json()["total"] == 3
    assert "07911 1•• •10" not in page(clay, f"/reports/{report.id}")

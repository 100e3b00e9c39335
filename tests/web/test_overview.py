"""Overview: reports per street per week for 12 weeks as an SVG chart, and what needs attention."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from xml.etree import ElementTree

from sqlmodel import select

from hotline.models import Delivery, DeliveryState, Report, ReportStreet
from hotline.reports import logbook
from hotline.residents.streets import Scope
from tests.conftest import NUMBERS
from tests.web.conftest import text_in

SVG = "{http://www.w3.org/2000/svg}"


def add_report(session, street, when: datetime, text="x"):
    report = Report(phone=NUMBERS[0], text=text, created_at=when)
    session.add(report)
    session.flush()
    session.add(ReportStreet(report_id=report.id, street_id=street.id))


def test_weekly_counts_bucket_by_local_monday_weeks(rt, session, scheme):
    zone = rt.config.timezone
    clay = scheme["clayhall"]
    today = date(2025, 6, 18)  # a Wednesday
    add_report(session, clay, datetime(2025, 6, 16, 0, 30, tzinfo=zone))  # this Monday, local
    add_report(session, clay, datetime(2025, 6, 15, 23, 30, tzinfo=zone))  # last Sunday, local
    add_report(session, clay, datetime(2025, 3, 1, 12, 0, tzinfo=zone))  # too old for 12 weeks
    session.commit()
    weeks, rows = logbook.weekly(session, Scope(None), zone, weeks=12, today=today)
    assert weeks[-1] == date(2025, 6, 16) and weeks[0] == date(2025, 3, 31) and len(weeks) == 12
    counts = dict((street.name, c) for street, c in rows)
    assert counts["Clayhall Avenue"][-1] == 1 and counts["Clayhall Avenue"][-2] == 1 and sum(counts["Clayhall Avenue"]) == 2
    assert sum(counts["Beehive Lane"]) == 0


def test_overview_chart_is_an_svg_with_a_cell_per_street_and_week(admin, rt, session, scheme):
    now = datetime.now(timezone.utc)
    for n in range(3):
        add_report(session, scheme["clayhall"], now - timedelta(minutes=n))
    add_report(session, scheme["beehive"], now - timedelta(days=14))
    session.commit()
    html = admin.get("/overview").get_data(as_text=True)
    start, end = html.index("<svg"), html.index("</svg>") + len("</svg>")
    svg = ElementTree.fromstring(html[start:end])
    cells = [r for r in svg.iter(f"{SVG}rect") if "cell" in r.get("class", "")]
    assert len(cells) == 2 * 12
    titles = [r.find(f"{SVG}title").text for r in cells]
    assert any(t.startswith("Clayhall Avenue") and t.endswith(": 3") for t in titles)
    assert any(t.startswith("Beehive Lane") and t.endswith(": 1") for t in titles)
    assert "3 reports this week" in " ".join(html.split()).replace("<strong>", "").replace("</strong>", "")


def test_overview_shows_pending_held_and_failed_at_a_glance(admin, rt, session, scheme):
    text_in(rt, NUMBERS[60], "JOIN Clayhall")
    text_in(rt, NUMBERS[0], "a sighting")
    delivery = session.exec(select(Delivery)).first()
    delivery.state = DeliveryState.FAILED
    session.add(delivery)
    session.commit()
    flat = " ".join(admin.get("/overview").get_data(as_text=True).replace("<strong>", "").replace("</strong>", "").split())
    assert "1 waiting for approval" in flat and "0 reports held" in flat and "1 failed delivery in 7 days" in flat


def test_street_coordinator_overview_has_only_their_streets(clay, scheme):
    html = clay.get("/overview").get_data(as_text=True)
    assert "Clayhall Avenue" in html and "Beehive Lane" not in html

"""The meeting pack: a period's counts on one printable page and as a PDF, equal to the database's own counts,
scoped to a coordinator's streets, and with no phone number or name anywhere on it."""

from __future__ import annotations

import io
import re
import sys
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func
from sqlmodel import select

from hotline.models import Delivery, DeliveryState, Incident, Member, Membership, MembershipStatus, Report, ReportKind, ReportStreet
from hotline.reports import kinds, summary
from hotline.residents.streets import Scope
from tests.conftest import NUMBERS
from tests.web.conftest import text_in

TEXTS = [
    "White van, no plates, slowly up and down",  # vehicle
    "Man trying car door handles by the bins",  # person comes after vehicle: vehicle
    "Shed broken into overnight, mower gone",  # burglary
    "Parcel stolen from the porch at 2pm",  # theft
    "Graffiti on the bus shelter again",  # damage
    "Loud party, fireworks at midnight",  # antisocial
    "The streetlight outside 14 is out",  # other
]


@pytest.fixture(autouse=True)
def every_text_a_new_report(rt):
    rt.config = rt.config.with_overrides(incident_minutes=0)


def page(client, url="/summary") -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def moved(session, report_id: int, when: datetime) -> None:
    """Put a report (and the incident it opened, and its deliveries) at another moment."""
    report = session.get(Report, report_id)
    report.created_at = when
    for incident in session.exec(select(Incident).where(Incident.report_id == report_id)):
        incident.opened_at = incident.last_activity_at = when
    session.commit()


def seeded(rt, session, scheme) -> list[int]:
    """Reports of every kind on both streets over the last three weeks, with outcomes, acknowledgements and a leaver."""
    now = datetime.now(timezone.utc)
    for n, body in enumerate(TEXTS):
        text_in(rt, NUMBERS[n % 4], body)  # Clayhall members
        text_in(rt, NUMBERS[10 + n % 3], body + " (Beehive)")
    text_in(rt, NUMBERS[200], "a stranger: van again")  # no street: the admin's only
    ids = list(session.exec(select(Report.id).order_by(Report.id)))
    for n, report_id in enumerate(ids):
        moved(session, report_id, now - timedelta(days=n, hours=n * 5 % 24))
    deliveries = list(session.exec(select(Delivery).order_by(Delivery.id)))
    for n, delivery in enumerate(deliveries):
        delivery.state = [DeliveryState.DELIVERED, DeliveryState.UNDELIVERED, DeliveryState.DELIVERED, DeliveryState.FAILED][n % 4].value
        if n % 3 == 0:
            delivery.acknowledged_at, delivery.acknowledged_by = now, "sms"
    first = session.exec(select(Incident).order_by(Incident.id)).first()
    first.outcome, first.outcome_note, first.outcome_at = "police_informed", "PC Gillian Hargreaves took it, ring 07700 900461", now
    leaver = session.exec(select(Membership).where(Membership.street_id == scheme["clayhall"].id)).first()
    leaver.status, leaver.decided_at = MembershipStatus.LEFT.value, now - timedelta(days=2)
    session.commit()
    return ids


def direct_counts(session, scope_streets: set[int] | None, since: datetime) -> dict:
    """The same figures counted straight from the rows, without the summary's queries."""
    reports = [
        r for r in session.exec(select(Report).where(Report.kind == ReportKind.REPORT.value, Report.created_at >= since))
        if scope_streets is None or set(session.exec(select(ReportStreet.street_id).where(ReportStreet.report_id == r.id))) & scope_streets
    ]
    ids = {r.id for r in reports}
    deliveries = [
        d for d in session.exec(select(Delivery).join(Report, Report.id == Delivery.report_id).where(Report.created_at >= since))
        if scope_streets is None or d.street_id in scope_streets
    ]
    incidents = [i for i in session.exec(select(Incident)) if i.report_id in ids]
    by_kind = {k: 0 for k in kinds.SHOWN}
    for r in reports:
        by_kind[kinds.kind_of(r.text)] += 1
    return {
        "reports": len(reports), "incidents": len(incidents), "by_kind": by_kind,
        "delivered": sum(d.state == "delivered" for d in deliveries),
        "undelivered": sum(d.state in ("undelivered", "failed") for d in deliveries),
        "acknowledged": sum(d.acknowledged_at is not None for d in deliveries),
        "police_informed": sum(i.outcome == "police_informed" for i in incidents),
    }


def test_counts_on_the_page_equal_counts_from_the_database(admin, rt, session, scheme):
    seeded(rt, session, scheme)
    zone = rt.config.timezone
    today = datetime.now(timezone.utc).astimezone(zone).date()
    period = summary.default_period(today)
    since = datetime.combine(period.since, datetime.min.time(), tzinfo=zone)
    figures = summary.build(session, period, Scope(None), zone)
    expected = direct_counts(session, None, since)
    assert figures.reports == expected["reports"] == 15
    assert figures.incident_count == expected["incidents"] == 14  # the stranger's report alerted nobody
    assert figures.by_kind == expected["by_kind"]
    assert figures.by_kind == {"vehicle": 5, "person": 0, "burglary": 2, "theft": 2, "damage": 2, "antisocial": 2, "other": 2}
    assert (figures.alerts.delivered, figures.alerts.undelivered, figures.alerts.acknowledged) == (
        expected["delivered"], expected["undelivered"], expected["acknowledged"])
    assert figures.outcomes["police_informed"] == expected["police_informed"] == 1
    assert sum(sum(row) for row in figures.grid) == figures.reports
    assert figures.left == 1
    html = page(admin)
    assert f"<strong>{expected['reports']}</strong> reports" in html
    assert f"<strong>{expected['incidents']}</strong> incidents alerted" in html
    assert f"<strong>{expected['delivered']}</strong> delivered" in html
    assert f"<strong>{expected['acknowledged']}</strong> acknowledged" in html
    assert "<strong>1</strong> left" in html and "<strong>1</strong> police informed" in html


def test_the_period_and_street_come_from_the_query_like_the_log(admin, rt, session, scheme):
    seeded(rt, session, scheme)
    zone = rt.config.timezone
    today = datetime.now(timezone.utc).astimezone(zone).date()
    html = page(admin, f"/summary?street={scheme['beehive'].id}&from={today - timedelta(days=3)}&to={today}")
    since = datetime.combine(today - timedelta(days=3), datetime.min.time(), tzinfo=zone)
    expected = direct_counts(session, {scheme["beehive"].id}, since)
    assert 0 < expected["reports"] < 7
    assert f"<strong>{expected['reports']}</strong> report" in html
    assert "Beehive Lane" in html


def test_the_hour_grid_is_in_local_time(admin, rt, session, scheme):
    text_in(rt, NUMBERS[0], "van at the corner")
    report_id = session.exec(select(Report.id)).first()
    moved(session, report_id, datetime(2024, 7, 1, 22, 30, tzinfo=timezone.utc))  # Monday 23:30 in London (BST)
    figures = summary.build(session, summary.Period(date(2024, 6, 24), date(2024, 7, 7)), Scope(None), rt.config.timezone)
    assert figures.grid[0][23] == 1 and sum(map(sum, figures.grid)) == 1
    assert figures.reports_per_week == [0, 1]


def test_no_phone_number_or_name_appears_on_the_page_or_in_the_pdf(admin, rt, session, scheme):
    for member in session.exec(select(Member)):
        member.name = f"Resident Fairweather{member.id}"
    session.commit()
    text_in(rt, NUMBERS[0], "Saw Desmond Pargeter at number 12, his mobile 07700 900461, red Astra AB12 CDE")
    text_in(rt, NUMBERS[1], "Desmond Pargeter again, call me on 07911 100101, AB12CDE")
    seeded(rt, session, scheme)
    html = page(admin)
    pdf = admin.get("/summary.pdf")
    assert pdf.status_code == 200
    from pypdf import PdfReader

    pdf_text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "AB12 CDE" in html and "AB12" in pdf_text  # the repeated plate is there; the people are not
    body = html.split("<main>", 1)[1]  # the nav's own account link shows who is logged in, and is not printed
    phones = set(NUMBERS[:20]) | {"+447700900461", "+447911100101"}
    for text in (body, pdf_text):
        flat = re.sub(r"[\s•]", "", text)
        for number in phones:
            assert number not in flat and "0" + number[3:] not in flat and number[-6:] not in flat
        for name in ("Desmond", "Pargeter", "Fairweather", "Gillian", "Hargreaves", "@example.org"):
            assert name not in text


def test_a_street_coordinator_sees_only_their_streets(clay, rt, session, scheme):
    seeded(rt, session, scheme)
    zone = rt.config.timezone
    today = datetime.now(timezone.utc).astimezone(zone).date()
    since = datetime.combine(summary.default_period(today).since, datetime.min.time(), tzinfo=zone)
    expected = direct_counts(session, {scheme["clayhall"].id}, since)
    html = page(clay)
    assert f"<strong>{expected['reports']}</strong> reports" in html and expected["reports"] == 7
    assert f"<strong>{expected['delivered']}</strong> delivered" in html
    assert "Clayhall Avenue" in html and "Beehive Lane" not in html


def test_another_street_in_the_query_is_a_404(clay, scheme):
    for path in ("/summary", "/summary.pdf"):
        assert clay.get(f"{path}?street={scheme['beehive'].id}").status_code == 404
        assert clay.get(f"{path}?street={scheme['clayhall'].id}").status_code == 200


def test_the_pdf_is_a_real_multi_page_pdf(admin, rt, session, scheme):
    seeded(rt, session, scheme)
    today = datetime.now(timezone.utc).astimezone(rt.config.timezone).date()
    response = admin.get(f"/summary.pdf?from={today - timedelta(days=365)}&to={today}")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF") and len(response.data) > 10_000
    from pypdf import PdfReader

    pages = PdfReader(io.BytesIO(response.data)).pages
    assert len(pages) >= 2
    assert 590 < float(pages[0].mediabox.width) < 600 and 838 < float(pages[0].mediabox.height) < 846  # A4 in points
    assert "Reports and incidents per week" in pages[0].extract_text()


def test_without_weasyprint_the_pdf_answers_503_naming_what_to_install(admin, monkeypatch):
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # `import weasyprint` now raises ImportError
    response = admin.get("/summary.pdf")
    assert response.status_code == 503
    message = response.get_data(as_text=True)
    assert "libpango-1.0-0" in message and "fonts-dejavu-core" in message
    assert admin.get("/summary").status_code == 200  # the page itself does not need it


def test_the_page_prints_on_a4_without_the_navigation(admin, sim_app):
    html = page(admin)
    assert 'href="/summary.pdf' in html and ">Meeting pack</a>" in html
    assert "<script" not in html.split("</head>", 1)[1]  # charts are SVG drawn by the template, no script
    assert html.count("<svg") == 3
    css = (sim_app.static_folder + "/summary.css")
    text = open(css).read()
    assert "size: A4" in text and re.search(r"@media print\s*{[^}]*nav", text)


def test_kinds_are_the_same_in_the_database_and_in_python(rt, session, scheme):
    texts = [*TEXTS, "VAN!", "caravan parked", "anti-social lads", "burglars", "a scared cat", None, "(car)", "two men, one woman"]
    for text in texts:
        session.add(Report(text=text))
    session.commit()
    words = select(Report.id, kinds.spaced_words(Report.text).label("words")).subquery()
    in_database = dict(session.exec(select(words.c.id, kinds.sql_kind(words.c.words))).all())
    assert {r.id: kinds.kind_of(r.text) for r in session.exec(select(Report))} == in_database
    assert kinds.kind_of("caravan parked") == "vehicle" and kinds.kind_of("a scared cat") == "other"
    assert session.exec(select(func.count()).select_from(Report)).one() == len(texts)

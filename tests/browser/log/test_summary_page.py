"""The meeting pack (/summary) in a real browser, from a realistic month: the headline counts a coordinator
reads equal the database's own, the three charts are drawn, printing hides the navigation, no phone number or
name is on it, and no script error. With HOTLINE_UPDATE_SCREENSHOTS=1 it also writes docs/screenshots/summary.png
and the first page of /summary.pdf as docs/screenshots/summary-pdf.png (pdftoppm, from Debian's poppler-utils)."""

from __future__ import annotations

import io
import os
import random
import re
import shutil
import subprocess
from datetime import UTC, datetime, time, timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import func
from sqlmodel import select

from hotline.db import utcnow
from hotline.models import (
    Delivery,
    DeliveryState,
    Incident,
    Member,
    Membership,
    MembershipStatus,
    Outcome,
    Report,
    ReportKind,
    ReportState,
)
from tests.browser.log.conftest import login
from tests.browser.log.test_screenshots import DOCS, seed, shoot

NAMES = ["Margaret Okafor", "Dev Patel", "Siobhan Byrne", "Tomasz Nowak"]  # members with names: none may show
NOTE = "PC Gillian Hargreaves took it, crime ref 01/234567/25, she is on 07700 900461"  # an outcome note: never shown
PHONE = re.compile(r"(\+44|\b0)\s?7\d{3}\s?\d{3}\s?\d{3}")  # a UK mobile, however spaced


def seed_month(live) -> None:
    """test_screenshots' scheme (six streets, members, 12 weeks of reports at all hours and their deliveries),
    plus what the meeting pack reads: the incidents the broadcast reports opened, their outcomes (notes naming
    people), acknowledgements, members who joined over the weeks and two who left, and a van's plate texted
    in from two streets, a noisy night and a dark corner."""
    streets = seed(live)
    rng = random.Random(16)
    now = utcnow()
    with live.session() as session:
        for n, membership in enumerate(session.exec(select(Membership).order_by(Membership.id)).all()):
            membership.joined_at = now - timedelta(days=rng.randint(1, 84), hours=rng.randint(0, 23))
            if n in (3, 17):
                membership.status, membership.decided_at = MembershipStatus.LEFT.value, now - timedelta(days=2 + n)
        for name, member in zip(NAMES, session.exec(select(Member).order_by(Member.id)).all()):
            member.name = name
        sent = session.exec(select(Report).where(Report.state == ReportState.SENT.value).order_by(Report.created_at.desc())).all()
        for n, report in enumerate(sent):
            incident = Incident(report_id=report.id, opened_at=report.created_at, last_activity_at=report.created_at)
            if n >= 2:  # the two newest are still open
                incident.closed_at = report.created_at + timedelta(hours=rng.randint(1, 20))
                incident.closed_by = rng.choice(["all_clear", "quiet"])
                incident.outcome = rng.choice([*(o.value for o in Outcome), None])
                if incident.outcome:
                    incident.outcome_at = incident.closed_at
                    incident.outcome_note = NOTE if incident.outcome == Outcome.POLICE_INFORMED else "neighbour's visitor"
            session.add(incident)
            session.flush()
            report.incident_id = incident.id
        for delivery in session.exec(select(Delivery).where(Delivery.state == DeliveryState.DELIVERED.value)).all():
            if rng.random() < 0.3:
                delivery.acknowledged_at, delivery.acknowledged_by = delivery.created_at + timedelta(minutes=4), "sms"
        session.commit()
        first, second, third = (
            session.exec(
                select(Member.phone).join(Membership, Membership.member_id == Member.id)
                .where(Membership.street_id == street_id, Membership.status == MembershipStatus.ACTIVE.value).order_by(Member.id)
            ).first()
            for street_id in (streets[0].id, streets[1].id, streets[2].id)
        )
    live.sms(first, "White Transit van AB12 CDE parked up with two men watching the houses")
    live.sms(second, "that van ab12cde is back by the shops, engine running")
    live.sms(third, "Loud music and fireworks in the park again, a crowd by the swings")  # antisocial
    live.sms(third, "The streetlight on the corner by the alley has been out for a week")  # none of the kinds: other


def expected(live) -> dict[str, int]:
    """The headline figures counted straight from the rows, for the default period: the last 28 days, today
    included, from local midnight (the meeting pack's contract)."""
    zone = live.rt.config.timezone
    today = utcnow().astimezone(zone).date()
    start = datetime.combine(today - timedelta(days=27), time(0), tzinfo=zone).astimezone(UTC)
    with live.session() as session:
        def count(query):
            return session.exec(query).one()

        return {
            "reports": count(select(func.count()).select_from(Report).where(Report.kind == ReportKind.REPORT.value, Report.created_at >= start)),
            "incidents": count(select(func.count()).select_from(Incident).where(Incident.opened_at >= start)),
            "delivered": count(select(func.count()).select_from(Delivery).join(Report, Report.id == Delivery.report_id)
                               .where(Report.created_at >= start, Delivery.state == DeliveryState.DELIVERED.value)),
            "joined": count(select(func.count()).select_from(Membership).where(Membership.joined_at >= start)),
            "left": count(select(func.count()).select_from(Membership).where(
                Membership.status == MembershipStatus.LEFT.value, Membership.decided_at >= start)),
            "open": count(select(func.count()).select_from(Incident).where(Incident.opened_at >= start, Incident.closed_at.is_(None))),
            "members": count(select(func.count()).select_from(Membership).where(Membership.status == MembershipStatus.ACTIVE.value)),
        }


def test_a_coordinator_reads_the_meeting_pack_of_a_month(page, live, tmp_path):
    seed_month(live)
    want = expected(live)
    assert want["reports"] > 10 and want["incidents"] > 5 and want["joined"] > 10 and want["left"] == 2  # a month worth showing
    with live.session() as session:
        phones = list(session.exec(select(Member.phone)))
    login(page)
    page.wait_for_url("**/")
    page.click("nav >> text=Meeting pack")
    page.wait_for_url("**/summary")

    pack = page.locator("article.pack")
    assert "every street" in pack.locator(".pack-period").inner_text()
    glance = [item.strip() for item in pack.locator("ul.pack-glance").first.locator("li").all_inner_texts()]
    assert glance == [
        f"{want['reports']} reports", f"{want['incidents']} incidents alerted", f"{want['delivered']} alerts delivered",
        f"{want['joined']} joined · {want['left']} left", f"{want['members']} members now",
    ]
    outcomes = pack.locator("#outcomes ul.pack-glance").inner_text()
    assert f"{want['open']} still open" in outcomes
    assert pack.locator("#incidents tbody tr").count() == want["incidents"]
    assert "AB12 CDE" in pack.locator("#plates").inner_text()

    charts = pack.locator("svg.pack-chart")
    assert charts.count() == 3
    for n in range(3):
        box = charts.nth(n).bounding_box()
        assert box and box["width"] > 400 and box["height"] > 80  # drawn, not collapsed
    assert pack.locator("#hours svg rect").count() == 7 * 24
    assert pack.locator("#kinds svg rect").count() == 7
    assert "0" not in pack.locator("#kinds .kind-count").all_inner_texts()  # every kind was reported this month

    assert page.locator('link[rel=stylesheet][href$="/summary.css"]').count() == 1
    page.emulate_media(media="print")  # what the browser's print shows: the pack alone
    assert page.locator("header.top").is_hidden() and page.locator("form.pack-controls").is_hidden()
    assert pack.is_visible()
    page.emulate_media(media="screen")

    text, html = page.locator("body").inner_text(), page.content()
    assert not PHONE.search(text) and not PHONE.search(html)
    for phone in phones:
        assert phone not in html and phone[-6:] not in text  # whole, or its last digits as a masked number shows
    for name in [*NAMES, "Gillian", "Hargreaves", "01/234567/25", "neighbour's visitor"]:
        assert name not in html
    assert "@" not in pack.inner_text()  # no coordinator either (the header shows who is logged in, the pack does not)
    shots = [shoot(page, "summary", tmp_path)]

    response = page.request.get("/summary.pdf")
    assert response.status == 200, response.text()
    assert response.headers["content-type"] == "application/pdf"
    pdf = tmp_path / "summary.pdf"
    pdf.write_bytes(response.body())
    reader = PdfReader(io.BytesIO(response.body()))
    assert len(reader.pages) >= 2
    first_page = reader.pages[0].extract_text()
    assert f"{want['reports']} reports" in first_page and not PHONE.search(first_page)
    assert page.problems == []  # no script error, nothing refused by the Content-Security-Policy

    if os.environ.get("HOTLINE_UPDATE_SCREENSHOTS") == "1":
        if not shutil.which("pdftoppm"):
            pytest.skip("HOTLINE_UPDATE_SCREENSHOTS=1 needs pdftoppm for summary-pdf.png (apt-get install -y poppler-utils); "
                        "neither summary.png nor summary-pdf.png was written")
        subprocess.run(["pdftoppm", "-png", "-r", "100", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(tmp_path / "summary-pdf")],
                       check=True, timeout=60)
        shots.append(tmp_path / "summary-pdf.png")
        assert shots[-1].stat().st_size > 20_000
        DOCS.mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copy(shot, DOCS / shot.name)

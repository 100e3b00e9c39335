"""Screenshots of the log, a report's page and the overview, from a realistic scheme. Saved under the
test's temporary folder; with HOTLINE_UPDATE_SCREENSHOTS=1 also into docs/screenshots/ for README."""

from __future__ import annotations

import os
import random
import shutil
from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from hotline.db import utcnow
from hotline.models import Channel, Delivery, DeliveryState, Report, ReportState, ReportStreet, Street
from hotline.residents import members
from tests.browser.log.conftest import login
from tests.conftest import NUMBERS
from tests.web.conftest import make_coordinator

DOCS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
STREETS = ["Clayhall Avenue", "Beehive Lane", "Redbridge Lane East", "Woodford Avenue", "Ethelbert Gardens", "Roding Lane South"]
SIGHTINGS = [
    "two lads trying car door handles, one in a red hoodie, heading towards the park",
    "white Transit van, no markings, slowly circling for the third time",
    "side gate at no. 14 found open this morning, nothing taken",
    "someone on the roof of the garages behind the shops",
    "moped riders without plates cutting through the alley",
    "car alarm going off for 20 minutes on the corner, nobody about",
    "man knocking on doors claiming to be from the water board, no ID",
    "shed broken into overnight, lawnmower and bike gone",
    "bins set alight by the bus stop, fire brigade called",
    "suspicious parcel left by the post box",
]


def seed(live):
    rng = random.Random(7)
    now = utcnow()
    with live.session() as session:
        streets = []
        for code, name in enumerate(STREETS, start=101):
            street = Street(name=name, code=code, moderated=(name == "Woodford Avenue"))
            session.add(street)
            session.flush()
            streets.append(street)
        number = iter(NUMBERS)
        for street in streets:
            for _ in range(rng.randint(8, 14)):
                members.add(session, next(number), street, alerts=rng.choice(["sms"] * 4 + ["call"]), active=True)
        make_coordinator(session, "admin@example.org", admin=True)
        for week in range(12):
            for _ in range(rng.randint(1, 6) + (3 if week in (2, 3) else 0)):
                street = rng.choice(streets)
                when = now - timedelta(weeks=week, hours=rng.randint(1, 160))
                report = Report(
                    phone=NUMBERS[rng.randint(0, 60)], text=rng.choice(SIGHTINGS), created_at=when,
                    state=rng.choice([ReportState.SENT] * 6 + [ReportState.NOT_BROADCAST, ReportState.DROPPED]),
                    channel=rng.choice([Channel.SMS] * 5 + [Channel.CALL]),
                )
                report.reason = "stranger" if report.state == ReportState.NOT_BROADCAST else None
                session.add(report)
                session.flush()
                session.add(ReportStreet(report_id=report.id, street_id=street.id))
                if report.state == ReportState.SENT:
                    for n in range(rng.randint(8, 13)):
                        state = DeliveryState.DELIVERED if rng.random() > 0.04 else DeliveryState.UNDELIVERED
                        session.add(Delivery(report_id=report.id, street_id=street.id, phone=NUMBERS[n], body="-", state=state, attempts=1, created_at=when, updated_at=when))
        session.commit()
        return streets


def settle_deliveries(live, report_id: int):
    """As status callbacks would: most delivered, one failed, a few still on their way."""
    with live.session() as session:
        deliveries = session.exec(select(Delivery).where(Delivery.report_id == report_id).order_by(Delivery.id)).all()
        for n, delivery in enumerate(deliveries):
            if n == 2:
                delivery.state, delivery.error_code, delivery.error_message = DeliveryState.UNDELIVERED, 30003, "Unreachable destination handset"
            elif n < len(deliveries) - 3:
                delivery.state = DeliveryState.DELIVERED
            else:
                delivery.state = DeliveryState.ACCEPTED if delivery.channel == Channel.SMS else DeliveryState.QUEUED
            delivery.attempts = 1 if delivery.state != DeliveryState.QUEUED else 0
            session.add(delivery)
        session.commit()


def shoot(page, name: str, folder: Path, *, full_page: bool = True) -> Path:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 20_000  # a real page, not a blank one
    return path


def test_screenshots_of_the_log_a_report_and_the_overview(page, live, tmp_path):
    seed(live)
    live.sms(NUMBERS[0], "Man in a red hoodie trying car door handles outside no. 23, now walking towards Beehive Lane")
    with live.session() as session:
        latest = session.exec(select(Report).order_by(Report.id.desc())).first()
    settle_deliveries(live, latest.id)
    login(page)
    page.wait_for_url("**/")
    shots = [shoot(page, "log", tmp_path, full_page=False)]
    page.goto(f"/reports/{latest.id}")
    assert "delivered, 1 failed" in page.locator(".progress-text").inner_text()
    shots.append(shoot(page, "report", tmp_path))
    page.goto("/overview")
    assert page.locator("#weekly-chart rect.cell").count() == len(STREETS) * 12
    shots.append(shoot(page, "overview", tmp_path))
    if os.environ.get("HOTLINE_UPDATE_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copy(shot, DOCS / shot.name)

"""An incident on the coordinators' pages: one row in the log, a timeline, who is on it, the all-clear
button and the outcome."""

from __future__ import annotations

import csv
import io

from sqlmodel import select

from hotline.models import Delivery, Incident, Report, ReportKind
from tests.conftest import NUMBERS
from tests.web.conftest import text_in


def incident_with_an_update(rt, session):
    text_in(rt, NUMBERS[0], "white van parked outside no 12")
    text_in(rt, NUMBERS[0], "they have gone towards Beehive Lane")  # the reporter's follow-up: an update
    session.expire_all()
    opening = session.exec(select(Report).where(Report.kind == ReportKind.REPORT)).one()
    return opening


def test_the_log_shows_an_incident_as_one_row_with_its_updates_counted(clay, rt, session, scheme):
    opening = incident_with_an_update(rt, session)
    html = clay.get("/").get_data(as_text=True)
    assert html.count('data-ref="R') == 1 and f'data-ref="{opening.ref}"' in html
    assert "1 update" in html and "open" in html and "they have gone towards" not in html


def test_the_report_page_shows_the_timeline_and_the_all_clear_button_closes_it(clay, rt, session, scheme):
    opening = incident_with_an_update(rt, session)
    page = clay.get(f"/reports/{opening.id}").get_data(as_text=True)
    assert 'data-what="report"' in page and 'data-what="update"' in page and "they have gone towards Beehive Lane" in page
    assert "07911 1•• •00" in page and NUMBERS[0] not in page
    response = clay.post(f"/reports/{opening.id}/all-clear", {"words": "police spoke to them, all fine"}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "All clear for R1 is going to" in page and 'data-what="all_clear"' in page and "clay@example.org" in page
    session.expire_all()
    assert session.exec(select(Incident)).one().closed_by == "all_clear"
    bodies = [d.body for d in session.exec(select(Delivery).join(Report, Report.id == Delivery.report_id).where(Report.kind == ReportKind.ALL_CLEAR))]
    assert bodies and all(b == "All clear R1: police spoke to them, all fine. Thank you for looking out." for b in bodies)
    assert "Send the all-clear" not in page


def test_taking_an_incident_shows_who_is_on_it_and_a_second_coordinator_cannot_take_it_over(clay, admin, rt, session, scheme):
    opening = incident_with_an_update(rt, session)
    clay.post(f"/reports/{opening.id}/take")
    page = admin.post(f"/reports/{opening.id}/take", follow_redirects=True).get_data(as_text=True)
    assert "Someone else is already on R1" in page and "Taken by <strong>clay@example.org</strong>" in page
    session.expire_all()
    assert session.exec(select(Incident)).one().taken_by_id == scheme["people"]["clayhall"].id


def test_the_outcome_is_recorded_and_texted_to_the_reporter(clay, rt, session, scheme):
    opening = incident_with_an_update(rt, session)
    page = clay.post(f"/reports/{opening.id}/outcome", {"outcome": "police_informed", "note": "ref 01/2345/26"},
                     follow_redirects=True).get_data(as_text=True)
    assert "Outcome recorded; the reporter is told by text" in page and "the police have been informed" in page
    told = session.exec(select(Delivery).where(Delivery.phone == NUMBERS[0])).one()
    assert "your report R1" in told.body and "01/2345/26" in told.body


def test_another_streets_coordinator_cannot_touch_the_incident(sim_app, rt, session, scheme):
    from tests.web.conftest import Web

    opening = incident_with_an_update(rt, session)
    bee = Web(sim_app)
    bee.login("bee@example.org")
    for action in ("take", "all-clear", "outcome"):
        assert bee.post(f"/reports/{opening.id}/{action}", {"outcome": "resolved"}).status_code == 404
    session.expire_all()
    incident = session.exec(select(Incident)).one()
    assert incident.closed_at is None and incident.taken_by_id is None and incident.outcome is None


def test_incident_forms_need_the_csrf_token(clay, rt, session, scheme):
    opening = incident_with_an_update(rt, session)
    assert clay.post(f"/reports/{opening.id}/all-clear", {}, csrf=False).status_code == 400
    session.expire_all()
    assert session.exec(select(Incident)).one().closed_at is None


def test_the_csv_export_has_the_incident_columns(clay, rt, session, scheme):
    opening = incident_with_an_update(rt, session)
    clay.post(f"/reports/{opening.id}/outcome", {"outcome": "false_alarm", "note": ""})
    rows = list(csv.reader(io.StringIO(clay.get("/log.csv").get_data(as_text=True).lstrip("\ufeff"))))
    header, row = rows[0], rows[1]
    assert header[-4:] == ["incident", "updates", "outcome", "outcome note"] and len(rows) == 2
    assert row[-4:] == ["open", "1", "false_alarm", ""]

"""Who sees what: every coordinator page needs a login, admins' pages need an admin, and a street
coordinator cannot reach another street's reports, members, exports or forms, even by URL."""

from __future__ import annotations

import pytest
from sqlmodel import select

from hotline.models import Membership, Report, ReportState
from tests.conftest import NUMBERS
from tests.web.conftest import text_in

OPEN = {"web.login", "web.logout"}


def coordinator_urls(app) -> list[tuple[str, str]]:
    """Every route of the web blueprint, as (method, url), with 1 for each id."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("web.") or rule.endpoint in OPEN:
            continue
        values = {name: "approve" if name == "decision" else 1 for name in rule.arguments}
        url = rule.build(values)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, url))
    return found


def test_the_crawl_finds_every_area(sim_app):
    urls = {url for _, url in coordinator_urls(sim_app)}
    for expected in ("/", "/log.csv", "/reports/1", "/approvals", "/streets", "/streets/1", "/members/1", "/import", "/announce", "/overview", "/coordinators"):
        assert expected in urls


def test_every_coordinator_url_redirects_to_login_when_logged_out(web, scheme):
    for method, url in coordinator_urls(web.client.application):
        response = web.get(url) if method == "GET" else web.post(url, {})
        assert response.status_code == 302, (method, url, response.status_code)
        assert response.headers["Location"].startswith("/login"), (method, url)


def test_logged_out_post_without_token_is_refused_before_anything(web, scheme):
    assert web.post("/approvals/members/1/approve", csrf=False).status_code == 400


ADMIN_ONLY = ["/coordinators", "/coordinators/new", "/coordinators/1", "/streets/new"]


@pytest.mark.parametrize("url", ADMIN_ONLY)
def test_admin_pages_are_forbidden_to_street_coordinators(clay, url):
    assert clay.get(url).status_code == 403
    if url != "/coordinators":
        assert clay.post(url, {"email": "x@example.org", "name": "Sneaky Street"}).status_code == 403
    assert clay.post("/coordinators/1/delete").status_code == 403


def test_admin_pages_open_for_admins(admin):
    for url in ADMIN_ONLY:
        assert admin.get(url).status_code == 200, url


@pytest.fixture
def beehive_things(rt, session, scheme):
    """A report, a pending member and a held report on Beehive Lane, which Clayhall's coordinator does not look after."""
    text_in(rt, NUMBERS[10], "Beehive only: bike thief by the garages")
    report = session.exec(select(Report).where(Report.text.contains("bike thief"))).one()
    text_in(rt, NUMBERS[50], "JOIN Beehive Lane")
    pending = session.exec(select(Membership).where(Membership.status == "pending")).one()
    scheme["beehive"].moderated = True
    session.add(scheme["beehive"])
    session.commit()
    text_in(rt, NUMBERS[11], "held on beehive: ladder against number 9")
    held = session.exec(select(Report).where(Report.state == ReportState.HELD)).one()
    return {"report": report, "pending": pending, "held": held, "member_id": pending.member_id}


def test_street_coordinator_cannot_see_another_streets_report_member_or_export(clay, scheme, beehive_things):
    beehive = scheme["beehive"]
    assert clay.get(f"/reports/{beehive_things['report'].id}").status_code == 404
    assert clay.get(f"/reports/{beehive_things['report'].id}/progress").status_code == 404
    assert clay.get(f"/members/{beehive_things['member_id']}").status_code == 404
    assert clay.get(f"/streets/{beehive.id}").status_code == 404
    assert clay.get(f"/log.csv?street={beehive.id}").status_code == 404
    assert clay.get(f"/?street={beehive.id}").status_code == 404
    assert clay.get(f"/log/rows?street={beehive.id}").status_code == 404
    assert "bike thief" not in clay.get("/log.csv").get_data(as_text=True)
    assert "bike thief" not in clay.get("/").get_data(as_text=True)
    assert "Beehive" not in clay.get("/streets").get_data(as_text=True)
    assert "ladder" not in clay.get("/approvals").get_data(as_text=True)


def test_street_coordinator_cannot_act_on_another_streets_things(clay, rt, session, scheme, beehive_things):
    held, pending = beehive_things["held"], beehive_things["pending"]
    assert clay.post(f"/approvals/members/{pending.id}/approve").status_code == 404
    assert clay.post(f"/reports/{held.id}/send").status_code == 404
    assert clay.post(f"/reports/{held.id}/drop").status_code == 404
    assert clay.post(f"/memberships/{pending.id}/remove").status_code == 404
    assert clay.post(f"/streets/{scheme['beehive'].id}", {"name": "Renamed"}).status_code == 404
    assert clay.post(f"/streets/{scheme['beehive'].id}/members", {"phone": "07911 100500"}).status_code == 404
    assert clay.post(f"/members/{pending.member_id}/alerts", {"alerts": "call"}).status_code == 404
    session.expire_all()
    assert session.get(Membership, pending.id).status == "pending"
    assert session.get(Report, held.id).state == ReportState.HELD


def test_street_coordinator_cannot_move_a_member_onto_another_street(clay, session, scheme):
    mine = session.exec(select(Membership).where(Membership.street_id == scheme["clayhall"].id)).first()
    assert clay.post(f"/memberships/{mine.id}/move", {"street": scheme["beehive"].id}).status_code in (400, 404)
    session.expire_all()
    assert session.get(Membership, mine.id).street_id == scheme["clayhall"].id
    assert session.get(Membership, mine.id).status == "active"


def test_admin_sees_every_street(admin, scheme, beehive_things):
    assert admin.get(f"/reports/{beehive_things['report'].id}").status_code == 200
    assert admin.get(f"/members/{beehive_things['member_id']}").status_code == 200
    assert "bike thief" in admin.get("/log.csv").get_data(as_text=True)

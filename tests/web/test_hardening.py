"""Nobody let in, found by enumerating app.url_map so a new route cannot escape: every POST outside
/twilio/ needs a CSRF token, every page sends the security headers, every URL that names a thing
refuses a street coordinator another street's thing; and what residents typed is shown as text."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import SQLModel, select
from werkzeug.routing import IntegerConverter

from hotline.coordination import announcements
from hotline.db import utcnow
from hotline.models import Delivery, Member, Membership, Report, ReportState, SimulatedPhone, WatchedPlate
from hotline.web.access import CSP as WEB_CSP
from tests.conftest import NUMBERS
from tests.web.conftest import text_in

CSRF_REFUSAL = "This form had expired or was sent from another site"


def snapshot(rt) -> dict:
    """Every row of every table, to show that nothing changed."""
    with rt.engine.connect() as connection:
        return {t.name: sorted(map(repr, connection.execute(t.select()).all())) for t in SQLModel.metadata.sorted_tables}


def rules(app, method: str, *, twilio: bool = False):
    for rule in app.url_map.iter_rules():
        if method in rule.methods and rule.rule.startswith("/twilio/") == twilio:
            yield rule


def build(rule, things: dict) -> str:
    missing = set(rule.arguments) - set(things)
    assert not missing, f"{rule.rule}: say which thing {missing} should name in this test"
    return rule.build({name: things[name] for name in rule.arguments})[1]


@pytest.fixture
def things(rt, session, scheme):
    """One of everything on Beehive Lane (which Clayhall's coordinator does not look after), by URL argument."""
    beehive = scheme["beehive"]
    text_in(rt, NUMBERS[10], "bike thief by the garages")
    report = session.exec(select(Report).where(Report.text.contains("bike thief"))).one()
    text_in(rt, NUMBERS[50], "JOIN Beehive Lane")
    pending = session.exec(select(Membership).where(Membership.status == "pending")).one()
    beehive.moderated = True
    session.add(beehive)
    session.commit()
    text_in(rt, NUMBERS[11], "ladder against number 9")
    held = session.exec(select(Report).where(Report.state == ReportState.HELD)).one()
    news = announcements.create(session=session, config=rt.config, text="Beehive meeting", street_ids=[beehive.id],
                                send_at=utcnow() + timedelta(hours=1), created_by=None)
    phone = SimulatedPhone(number=NUMBERS[90], label="test")
    session.add(phone)
    session.commit()
    text_in(rt, NUMBERS[12], "van LB07 SXR by the garages")  # a plate seen on Beehive Lane only
    watched = WatchedPlate(plate="WR61KZT", note="beehive's", added_by=scheme["people"]["beehive"].id)
    session.add(watched)
    session.commit()
    delivery = session.exec(select(Delivery).where(Delivery.report_id == report.id)).first()
    return {
        "report_id": held.id, "membership_id": pending.id, "member_id": pending.member_id, "street_id": beehive.id,
        "announcement_id": news.id, "person_id": scheme["people"]["beehive"].id, "decision": "approve",
        "phone_id": phone.id, "sid": "CA" + "0" * 32, "delivery_id": delivery.id, "state": "home", "filename": "web.js",
        "sent_report_id": report.id, "plate": "LB07SXR", "entry_id": watched.id,
    }


# What a form would carry if it were meant: enough that a view without its checks would act on it.
FORM = {"name": "Renamed Lane", "code": "999", "phone": "07911 100500", "alerts": "call", "text": "forged news",
        "everywhere": "y", "when": "now", "confirm": "yes", "email": "sneaky@example.org", "password": "x" * 20,
        "content": "phone,street\n07911 100501,Beehive Lane\n", "body": "forged text"}


def test_every_post_outside_twilio_is_refused_without_a_csrf_token(admin, rt, scheme, things):
    posts = list(rules(admin.client.application, "POST"))
    assert len(posts) >= 20 and any(r.rule.startswith("/simulator") for r in posts)  # the crawl found them all
    before = snapshot(rt)
    for rule in posts:
        response = admin.post(build(rule, things), {**FORM, "street": scheme["clayhall"].id}, csrf=False)
        assert response.status_code == 400, (rule.rule, response.status_code)
        assert CSRF_REFUSAL in response.get_data(as_text=True), rule.rule
        forged = admin.post(build(rule, things), FORM, csrf=False, headers={"X-CSRFToken": "forged"})
        assert forged.status_code == 400, rule.rule
    assert snapshot(rt) == before
    assert admin.get("/").status_code == 200  # still logged in: the refusals were CSRF, not a lost session


def test_only_the_twilio_routes_go_without_a_token(sim_app, scheme, things):
    client = sim_app.test_client()  # simulator mode: no signature needed, so only CSRF could refuse them
    for rule in rules(sim_app, "POST", twilio=True):
        response = client.post(build(rule, things), data={})
        assert CSRF_REFUSAL not in response.get_data(as_text=True) and response.status_code < 500, rule.rule


def test_every_page_sends_the_security_headers(admin, web, rt, scheme, things):
    app = admin.client.application
    seen = []
    for rule in rules(app, "GET"):
        response = admin.get(build(rule, {**things, "report_id": things["sent_report_id"]}))
        seen.append((rule.rule, response))
    seen += [("/login, logged out", web.get("/login")), ("an unknown URL", admin.get("/no/such/page")),
             ("GET on a POST route", admin.get("/logout")), ("a CSRF refusal", admin.post("/logout", csrf=False))]
    html = 0
    for where, response in seen:
        assert response.headers.get("X-Content-Type-Options") == "nosniff", where
        assert response.headers.get("X-Frame-Options") == "DENY", where
        if response.mimetype == "text/html":
            html += 1
            policy = response.headers.get("Content-Security-Policy", "")
            script = next(p for p in policy.split(";") if p.strip().startswith(("script-src", "default-src")))
            assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy, where
            assert script.split()[1:] == ["'self'"] and "frame-ancestors 'none'" in policy, (where, policy)
            page = response.get_data(as_text=True)  # and nothing the policy would block, so no page breaks
            assert all('src="' in attrs and not body.strip() for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)), where
            assert not re.search(r"<[^>]+\son[a-z]+=", page), where
    assert html >= 15
    # The coordinators' pages keep their own policy (recordings play from Twilio over https).
    assert admin.get("/").headers["Content-Security-Policy"] == WEB_CSP


def test_the_simulator_page_is_not_framed_or_sniffed(sim_app):
    response = sim_app.test_client().get("/simulator")
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


INJECTED = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_html_a_resident_sent_is_shown_as_text_on_every_page_that_shows_it(admin, clay, rt, session, scheme):
    scheme["clayhall"].moderated = True
    session.add(scheme["clayhall"])
    session.commit()
    text_in(rt, NUMBERS[0], INJECTED)
    report = session.exec(select(Report)).one()
    assert clay.post(f"/streets/{scheme['clayhall'].id}/members", {"phone": "07911 100777", "name": INJECTED, "alerts": "sms"}).status_code == 302
    member = session.exec(select(Member).where(Member.name.is_not(None))).one()
    for page in ("/", "/log/rows", f"/reports/{report.id}", "/approvals", f"/streets/{scheme['clayhall'].id}", f"/members/{member.id}"):
        html = admin.get(page).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html, page
        assert "&lt;script&gt;alert(" in html or "&lt;img src=x" in html, page


def test_a_street_coordinator_is_refused_every_url_naming_another_streets_thing(clay, rt, session, scheme, things):
    app = clay.client.application
    before = snapshot(rt)
    tried = 0
    for method in ("GET", "POST"):
        for rule in rules(app, method):
            if not rule.endpoint.startswith("web.") or not set(rule.arguments) - {"decision"}:
                continue
            for report in {things["report_id"], things["sent_report_id"]}:
                url = build(rule, {**things, "report_id": report})
                response = clay.get(url) if method == "GET" else clay.post(url, {**FORM, "street": scheme["clayhall"].id})
                assert response.status_code in (403, 404), (method, url, response.status_code)
                tried += 1
    # Forms whose target is named in the form, not the URL.
    assert clay.post("/import/confirm", FORM).status_code == 400
    assert clay.post("/announce", {**FORM, "everywhere": "", "streets": scheme["beehive"].id}).status_code == 400
    assert tried >= 15
    assert snapshot(rt) == before


def test_an_id_beyond_any_row_is_a_404_not_a_database_error(admin, rt, scheme, things):
    """PostgreSQL refuses 99999999999999999999 as an integer (SQLite beyond 2**63): that was a 500."""
    huge = "99999999999999999999"
    tried = 0
    for method in ("GET", "POST"):
        for rule in rules(admin.client.application, method):
            ids = {name for name, converter in rule._converters.items() if isinstance(converter, IntegerConverter)}
            if not ids:
                continue
            url = rule.build({name: int(huge) if name in ids else things[name] for name in rule.arguments})[1]
            response = admin.get(url) if method == "GET" else admin.post(url, FORM)
            assert response.status_code in (404, 405), (method, url, response.status_code)  # no such route
            tried += 1
    assert tried >= 15
    for url in (f"/?street={huge}", f"/log/rows?street={huge}", f"/log.csv?street={huge}", f"/?page={huge}", f"/announce/preview?text=x&streets={huge}"):
        assert admin.get(url).status_code == 200, url  # a filter nobody could mean is ignored, as other bad filter values are


def test_a_request_without_a_session_cookie_builds_no_signer_yet_sessions_work(sim_app, web, scheme, monkeypatch):
    from hotline.hardening import CookieSessions

    built = []
    real = CookieSessions.get_signing_serializer
    monkeypatch.setattr(CookieSessions, "get_signing_serializer", lambda self, app: built.append(1) or real(self, app))
    assert isinstance(sim_app.session_interface, CookieSessions)
    assert web.get("/healthz").status_code == 200  # no cookie: the empty session, no signer
    assert built == []
    assert web.login("admin@example.org").status_code == 302  # the session is still signed and saved ...
    assert built
    built.clear()
    page = web.get("/")  # ... and read back from its cookie
    assert page.status_code == 200 and "admin@example.org" in page.get_data(as_text=True)
    assert built
    web.client.delete_cookie(sim_app.config.get("SESSION_COOKIE_NAME", "session"))
    assert web.get("/").status_code == 302  # without it, logged out again

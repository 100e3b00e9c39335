"""Simulator mode: nothing leaves the machine, status callbacks come back through /twilio/status, and the
pretend phones drive the hotline only through its real webhooks."""

from __future__ import annotations

import re
import time
from xml.etree import ElementTree

import pytest
import responses
from sqlmodel import Session, select

from hotline import create_app
from hotline.delivery import outbox
from hotline.models import (
    AlertChannel,
    Channel,
    Delivery,
    DeliveryState,
    Member,
    Membership,
    Report,
    SimulatedMessage,
    SimulatedPhone,
)
from hotline.residents import members
from tests.conftest import NUMBERS, add_members, add_street, build_app
from tests.web.conftest import PASSWORD, make_coordinator

SID = re.compile(r"[A-Z]{2}[0-9a-f]{32}")
NO_QUIET_HOURS = {"HOTLINE_QUIET_HOURS": "00:00-00:00"}


@pytest.fixture
def sim(tmp_path):
    """Simulator mode with a fast network: callbacks 20 ms apart, alert calls ring for 30 s."""
    app = build_app(tmp_path, twilio=False, simulator_step_seconds=0.02, simulator_ring_seconds=30, environ=NO_QUIET_HOURS)
    yield app
    app.extensions["hotline"].carrier.network.settle(5)
    app.extensions["hotline"].engine.dispose()


@pytest.fixture
def callbacks(sim):
    """Every status callback the simulated network posts, in order."""
    network = sim.extensions["hotline"].carrier.network
    seen, post = [], network.post

    def spy(path, form):
        seen.append((path, dict(form)))
        post(path, form)

    network.post = spy
    return seen


@pytest.fixture
def page(sim):
    """The simulator's JSON API with the page's CSRF token."""
    client = sim.test_client()
    html = client.get("/simulator").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)

    class Page:
        def post(self, path, data=None):
            return client.post("/simulator" + path, json=data or {}, headers={"X-CSRFToken": token})

        def state(self):
            return client.get("/simulator/state").get_json()

    return Page()


def rt_of(app):
    return app.extensions["hotline"]


def dispatch(app) -> int:
    rt = rt_of(app)
    with Session(rt.engine) as session:
        return outbox.dispatch_due(session=session, carrier=rt.carrier, config=rt.config, limit=100)


def settle(app, timeout=5.0, horizon=1.0):
    assert rt_of(app).carrier.network.settle(timeout, horizon=horizon)


def deliveries(app) -> list[Delivery]:
    with Session(rt_of(app).engine) as session:
        return list(session.exec(select(Delivery).order_by(Delivery.id)))


def street_with(app, numbers, *, landlines=()):
    with Session(rt_of(app).engine, expire_on_commit=False) as session:
        street = add_street(session, "Clayhall Avenue", 101, aliases=["Clayhall"])
        add_members(session, street, list(numbers))
        add_members(session, street, list(landlines), alerts=AlertChannel.CALL)
    return street


def add_phone(page, number, kind="mobile", label=""):
    response = page.post("/phones", {"number": number, "kind": kind, "label": label})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def statuses(callbacks, sid, key):
    return [form[key] for _, form in callbacks if form.get("MessageSid", form.get("CallSid")) == sid]


# --- nothing leaves the machine --------------------------------------------------------------


def test_simulator_mode_never_calls_the_twilio_api(sim, page):
    street_with(sim, NUMBERS[:2], landlines=[NUMBERS[2]])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as no_internet:  # no URL is registered
        reporter = add_phone(page, NUMBERS[0])
        landline = add_phone(page, NUMBERS[2], "landline")
        assert page.post(f"/phones/{reporter}/text", {"body": "man trying car door handles"}).status_code == 200
        assert dispatch(sim) == 2
        settle(sim)
        ringing = page.state()["phones"][1]["calls"][0]
        answered = page.post(f"/calls/{ringing['sid']}/answer")
        assert answered.status_code == 200
        assert page.post("/calls/hangup", {"token": answered.get_json()["token"]}).status_code == 204
        page.post(f"/phones/{landline}/call")
        settle(sim)
        assert len(no_internet.calls) == 0
    assert {d.state for d in deliveries(sim)} == {DeliveryState.DELIVERED}


def test_unsigned_webhooks_are_refused_once_credentials_are_set(app, rt, twilio_api):
    client = app.test_client()
    sms = {"From": NUMBERS[0], "To": "+447400123456", "Body": "JOIN Clayhall", "MessageSid": "SM" + "1" * 32, "AccountSid": "AC" + "0" * 32}
    assert client.post("/twilio/sms", data=sms).status_code == 403
    status = {"MessageSid": "SM" + "2" * 32, "MessageStatus": "delivered", "AccountSid": "AC" + "0" * 32}
    assert client.post("/twilio/status", data=status).status_code == 403
    with Session(rt.engine) as session:
        assert session.exec(select(Member)).all() == []
    assert client.get("/simulator").status_code == 404  # no pretend phones with a real account
    assert twilio_api.requests == []


def test_simulator_mode_takes_unsigned_webhooks(sim):
    sms = {"From": NUMBERS[0], "To": "+447700900000", "Body": "HELP", "MessageSid": "SM" + "1" * 32}
    response = sim.test_client().post("/twilio/sms", data=sms)
    assert response.status_code == 200 and "JOIN" in ElementTree.fromstring(response.data).findtext("Message")


# --- status callbacks --------------------------------------------------------------------------


def test_each_text_reports_queued_then_sent_then_delivered_through_the_status_webhook(sim, page, callbacks):
    street_with(sim, NUMBERS[:3])
    reporter = add_phone(page, NUMBERS[0])
    page.post(f"/phones/{reporter}/text", {"body": "ladder against no 12"})
    assert dispatch(sim) == 2
    settle(sim)
    for delivery in deliveries(sim):
        assert statuses(callbacks, delivery.sid, "MessageStatus") == ["queued", "sent", "delivered"]
        assert delivery.state == DeliveryState.DELIVERED
    assert {path for path, _ in callbacks} == {"/twilio/status"}
    form = callbacks[0][1]
    assert SID.fullmatch(form["MessageSid"]) and form["AccountSid"].startswith("AC") and form["To"] in NUMBERS


def test_a_text_to_a_pretend_landline_is_undelivered_and_the_alert_becomes_a_call(sim, page, callbacks):
    street_with(sim, NUMBERS[:2])
    reporter = add_phone(page, NUMBERS[0])
    add_phone(page, NUMBERS[1], "landline")
    page.post(f"/phones/{reporter}/text", {"body": "someone in the garages"})
    dispatch(sim)
    settle(sim)
    [delivery] = deliveries(sim)
    assert delivery.channel == Channel.CALL and delivery.state == DeliveryState.QUEUED  # switched, to go again as a call
    assert any(form.get("ErrorCode") == "30006" for _, form in callbacks)
    with Session(rt_of(sim).engine) as session:
        assert session.exec(select(Member).where(Member.phone == NUMBERS[1])).one().alerts == AlertChannel.CALL


def test_an_alert_call_rings_until_the_handset_answers_and_plays_the_alert(sim, page, callbacks):
    street_with(sim, [NUMBERS[0]], landlines=[NUMBERS[1]])
    reporter = add_phone(page, NUMBERS[0])
    add_phone(page, NUMBERS[1], "landline")
    page.post(f"/phones/{reporter}/text", {"body": "red van, no plates"})
    dispatch(sim)
    settle(sim)
    [call] = page.state()["phones"][1]["calls"]
    assert call["status"] == "ringing" and "red van, no plates" in call["spoken"]
    assert deliveries(sim)[0].state == DeliveryState.CALLING

    answered = page.post(f"/calls/{call['sid']}/answer").get_json()
    spoken = [line["text"] for line in answered["step"]["lines"] if line["kind"] == "say"]
    assert any("red van, no plates" in text for text in spoken)
    assert page.post("/calls/hangup", {"token": answered["token"]}).status_code == 204  # unless the TwiML ended it first
    settle(sim)
    assert statuses(callbacks, call["sid"], "CallStatus") == ["initiated", "ringing", "in-progress", "completed"]
    assert [f.get("AnsweredBy") for _, f in callbacks if f.get("CallStatus") == "in-progress"] == ["human"]
    assert deliveries(sim)[0].state == DeliveryState.DELIVERED
    assert page.post(f"/calls/{call['sid']}/answer").status_code == 409  # answered once only


def test_an_unanswered_alert_call_is_taken_by_the_answering_machine(tmp_path):
    app = build_app(tmp_path, twilio=False, simulator_step_seconds=0.02, simulator_ring_seconds=0.1, environ=NO_QUIET_HOURS)
    street_with(app, [NUMBERS[0]], landlines=[NUMBERS[1]])
    sms = {"From": NUMBERS[0], "To": "+447700900000", "Body": "smoke from no 3", "MessageSid": "SM" + "3" * 32}
    app.test_client().post("/twilio/sms", data=sms)
    dispatch(app)
    settle(app)
    [delivery] = deliveries(app)
    assert delivery.state == DeliveryState.DELIVERED
    with Session(rt_of(app).engine) as session:
        assert session.exec(select(SimulatedMessage.status).where(SimulatedMessage.sid == delivery.sid)).one() == "completed"


def test_a_declined_alert_call_is_busy_and_tried_again_later(sim, page, callbacks):
    street_with(sim, [NUMBERS[0]], landlines=[NUMBERS[1]])
    reporter = add_phone(page, NUMBERS[0])
    add_phone(page, NUMBERS[1], "landline")
    page.post(f"/phones/{reporter}/text", {"body": "dog barking for an hour"})
    dispatch(sim)
    settle(sim)
    [call] = page.state()["phones"][1]["calls"]
    assert page.post(f"/calls/{call['sid']}/decline").status_code == 204
    settle(sim)
    assert statuses(callbacks, call["sid"], "CallStatus")[-1] == "busy"
    [delivery] = deliveries(sim)
    assert delivery.state == DeliveryState.QUEUED and delivery.sid is None  # the spine's retry for busy lines


# --- the pretend phones ------------------------------------------------------------------------


def test_a_pretend_phone_texts_what_twilio_would_post(sim, page):
    board = sim.extensions["simulator"]
    seen, fetch = [], board.fetch
    board.fetch = lambda url, method, form: (seen.append((url, method, form)), fetch(url, method, form))[1]
    phone = add_phone(page, "07700 900555")
    replies = page.post(f"/phones/{phone}/text", {"body": "JOIN Nowhere Street"}).get_json()["replies"]
    [(url, method, form)] = seen
    assert (url, method) == ("/twilio/sms", "POST")
    assert form["From"] == "+447700900555" and form["To"] == board.hotline_number and form["Body"] == "JOIN Nowhere Street"
    assert SID.fullmatch(form["MessageSid"]) and form["AccountSid"].startswith("AC") and form["NumMedia"] == "0"
    assert replies and "don't know that street" in replies[0]
    thread = page.state()["phones"][0]["texts"]
    assert [(t["incoming"], t["body"]) for t in thread] == [(False, "JOIN Nowhere Street"), (True, replies[0])]


def test_join_approve_report_from_pretend_phones(sim, page):
    street_with(sim, NUMBERS[:2])
    joiner = add_phone(page, "07700 900555", label="new neighbour")
    reply = page.post(f"/phones/{joiner}/text", {"body": "join clayhall"}).get_json()["replies"][0]
    assert "with a coordinator" in reply
    with Session(rt_of(sim).engine) as session:
        membership = session.exec(select(Membership).join(Member).where(Member.phone == "+447700900555")).one()
        members.decide(session, membership, approve=True)
        session.commit()
    ack = page.post(f"/phones/{joiner}/text", {"body": "two lads trying car doors"}).get_json()["replies"][0]
    assert "sent to 2 neighbours" in ack
    assert dispatch(sim) == 2
    with Session(rt_of(sim).engine) as session:
        assert session.exec(select(Report)).one().text == "two lads trying car doors"


def test_adding_a_phone_checks_the_number_and_the_kind(sim, page):
    assert page.post("/phones", {"number": "not a number"}).status_code == 400
    assert page.post("/phones", {"number": "07700 900555", "kind": "fax"}).status_code == 400
    add_phone(page, "07700 900555")
    taken = page.post("/phones", {"number": "+447700900555"})
    assert taken.status_code == 400 and "already" in taken.get_json()["error"]


def test_only_a_mobile_can_text(sim, page):
    landline = add_phone(page, "020 7946 0123", "landline")
    assert page.post(f"/phones/{landline}/text", {"body": "hello"}).status_code == 400


def test_simulator_actions_need_the_pages_csrf_token(sim):
    response = sim.test_client().post("/simulator/phones", json={"number": "07700 900555"})
    assert response.status_code == 400
    with Session(rt_of(sim).engine) as session:
        assert session.exec(select(SimulatedPhone)).all() == []


def test_logging_in_in_another_tab_does_not_break_the_pretend_phones(sim):
    """README's walk logs in as a coordinator while /simulator is open: the login starts a fresh session (and CSRF
    token), so the page takes the current token from its state poll, which never writes the session itself."""
    client = sim.test_client()
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/simulator").get_data(as_text=True)).group(1)
    with Session(rt_of(sim).engine) as session:
        make_coordinator(session, "admin@example.org", admin=True)
    form = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    assert client.post("/login", data={"email": "admin@example.org", "password": PASSWORD, "csrf_token": form}).status_code == 302
    polled = client.get("/simulator/state")
    assert "csrf" not in polled.get_json() and "Set-Cookie" not in polled.headers  # no token in the new session yet
    client.get("/")  # the page after the login signs its forms with the new session's token
    assert client.post("/simulator/phones", json={"number": "07700 900555"}, headers={"X-CSRFToken": token}).status_code == 400
    polled = client.get("/simulator/state")
    assert "Set-Cookie" not in polled.headers
    fresh = polled.get_json()["csrf"]
    assert client.post("/simulator/phones", json={"number": "07700 900555"}, headers={"X-CSRFToken": fresh}).status_code == 201


def test_a_forged_call_token_is_refused(sim, page):
    assert page.post("/calls/step", {"token": "forged"}).status_code == 400


def test_removing_a_phone(sim, page):
    phone = add_phone(page, "07700 900555")
    assert page.post(f"/phones/{phone}/delete").status_code == 204
    assert page.state()["phones"] == []


def test_the_page_shows_the_banner_and_runs_no_inline_script(sim):
    response = sim.test_client().get("/simulator")
    html = response.get_data(as_text=True)
    assert "Simulator — nothing is sent." in html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="' in attrs and not body.strip() for attrs, body in scripts)
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers either


def test_every_template_can_ask_for_simulator_mode(sim, app):
    assert sim.jinja_env.globals["simulator_mode"] is True
    assert app.jinja_env.globals["simulator_mode"] is False


def test_callbacks_left_unfinished_by_a_stopped_server_are_finished_on_start(tmp_path):
    app = build_app(tmp_path, twilio=False, simulator_step_seconds=0.02, environ=NO_QUIET_HOURS)
    street_with(app, NUMBERS[:2])
    app.extensions["hotline"].carrier.network.post = None  # as if the process stopped before any callback
    app.test_client().post("/twilio/sms", data={"From": NUMBERS[0], "Body": "gate left open", "MessageSid": "SM" + "4" * 32})
    dispatch(app)
    time.sleep(0.2)
    assert deliveries(app)[0].state == DeliveryState.ACCEPTED
    restarted = create_app(  # not build_app: the same database, not a fresh one
        {"testing": True, "simulator_step_seconds": 0.02},
        instance_path=tmp_path / "instance",
        environ={"HOTLINE_DATABASE_URL": str(rt_of(app).engine.url.render_as_string(hide_password=False)), "HOTLINE_SECRET_KEY": "test-secret", **NO_QUIET_HOURS},
    )
    settle(restarted)
    assert deliveries(restarted)[0].state == DeliveryState.DELIVERED

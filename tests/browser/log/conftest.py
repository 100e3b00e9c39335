"""Browser tests: the app served on 127.0.0.1 (a random port) in a thread, driven by Playwright
through Debian's Chromium (/usr/bin/chromium; never `playwright install`)."""

from __future__ import annotations

import itertools
import threading

import pytest
import requests
from sqlmodel import Session
from werkzeug.serving import make_server

from tests.conftest import NUMBERS, add_members, add_street, build_app
from tests.web.conftest import PASSWORD, make_coordinator

_sids = itertools.count(1)


class Live:
    """The running app: its URL, its database, and a way to text the hotline like a phone would."""

    def __init__(self, app, url: str):
        self.app, self.url = app, url
        self.rt = app.extensions["hotline"]

    def session(self) -> Session:
        return Session(self.rt.engine, expire_on_commit=False)

    def sms(self, sender: str, body: str) -> str:
        response = requests.post(
            self.url + "/twilio/sms", data={"From": sender, "Body": body, "MessageSid": f"SMbrowser{next(_sids):024d}"}, timeout=10
        )
        response.raise_for_status()
        return response.text


@pytest.fixture
def live(tmp_path):
    # Several reports from one street within a minute: without follow-ups, each is a row of its own
    # (within HOTLINE_INCIDENT_MINUTES an alerted neighbour's text would be an update of the first).
    app = build_app(tmp_path, twilio=False, extra={"log_refresh_seconds": 1}, incident_minutes=0)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-app", daemon=True)
    thread.start()
    yield Live(app, f"http://127.0.0.1:{server.server_port}")
    server.shutdown()
    thread.join(5)
    app.extensions["hotline"].engine.dispose()


@pytest.fixture
def streets(live):
    """Two streets with members, an admin and a coordinator for Clayhall Avenue."""
    with live.session() as session:
        clayhall = add_street(session, "Clayhall Avenue", 101, aliases=["Clayhall"], postcodes=["IG5 0AA"])
        beehive = add_street(session, "Beehive Lane", 102)
        add_members(session, clayhall, NUMBERS[:4])
        add_members(session, beehive, NUMBERS[10:13])
        make_coordinator(session, "admin@example.org", admin=True)
        make_coordinator(session, "clay@example.org", streets=[clayhall])
        return {"clayhall": clayhall, "beehive": beehive}


@pytest.fixture
def page(browser, live):
    """A fresh browser context (its own cookies) with a page; CSP violations and script errors fail the test."""
    context = browser.new_context(base_url=live.url, accept_downloads=True, viewport={"width": 1280, "height": 900}, locale="en-GB", timezone_id="Europe/London")
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.problems = problems
    yield page
    context.close()
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems


def login(page, email="admin@example.org", password=PASSWORD):
    page.goto("/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")

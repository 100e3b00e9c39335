"""The simulator in a real browser: a neighbour joins and reports by text, the street's phones get the
alert, the landline rings and reads it out; and a handset follows an interactive TwiML menu.

`HOTLINE_SCREENSHOT=docs/simulator.png pytest tests/browser` also saves the README's screenshot.
"""

from __future__ import annotations

import time

from flask import request
from playwright.sync_api import expect
from sqlmodel import Session, select
from twilio.twiml.voice_response import Gather, VoiceResponse

from hotline import phones
from hotline.models import Delivery, DeliveryState
from hotline.simulator import demo
from tests.browser.simulator.conftest import screenshot_path

REPORT = "two lads trying car door handles, one in a red hoodie"
NEWCOMER = "+447700900555"
CLAYHALL_MOBILES = ["+447700900101", "+447700900102", "+447700900103"]
CLAYHALL_LANDLINE = "+442079460101"
BEEHIVE_MOBILE = "+447700900201"
GB = {"language": "en-GB", "voice": "Polly.Amy"}


def phone(page, number):
    return page.locator(f'article.phone[data-number="{number}"]')


def text_from(card, body):
    card.locator(".compose input").fill(body)
    card.locator(".compose button").click()


def seed_demo(live):
    with Session(live.rt.engine) as session:
        login = demo.seed(session)
        session.commit()
    return login


def log_in(page, live, login):
    page.goto(live.url + "/login")
    page.fill("input[name=email]", login.email)
    page.fill("input[name=password]", login.password)
    page.click("button[type=submit]")
    page.wait_for_url(live.url + "/")


def approve_in_the_log(page, live, number):
    """The coordinator's one click on the approvals page, in a second tab as a coordinator would."""
    page.goto(live.url + "/approvals")
    page.locator("tr", has_text=phones.mask(number)).locator("button:text('Approve')").click()
    page.locator(".flash-ok").wait_for()


def wait_for_deliveries(live, expected: int, timeout: float = 10.0) -> list[Delivery]:
    deadline = time.monotonic() + timeout
    while True:
        with Session(live.rt.engine) as session:
            found = session.exec(select(Delivery)).all()
        if len(found) == expected and all(d.state == DeliveryState.DELIVERED for d in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_a_neighbour_joins_reports_and_the_street_hears_it(live, page):
    login = seed_demo(live)
    coordinator = page.context.new_page()
    log_in(coordinator, live, login)
    page.goto(live.url + "/simulator")
    expect(page.locator(".simulator-banner")).to_contain_text("nothing is sent")
    expect(page.locator("article.phone")).to_have_count(len(demo.MEMBERS))

    page.fill("#add-phone input[name=number]", "07700 900555")
    page.fill("#add-phone input[name=label]", "New neighbour")
    page.click("#add-phone button[type=submit]")
    newcomer = phone(page, NEWCOMER)
    expect(newcomer).to_be_visible()

    text_from(newcomer, "JOIN Clayhall")
    expect(newcomer.locator(".thread .incoming").last).to_contain_text("with a coordinator")
    approve_in_the_log(coordinator, live, NEWCOMER)
    expect(newcomer.locator(".thread .incoming").last).to_contain_text("You're now in Clayhall Avenue Watch")

    text_from(newcomer, REPORT)
    expect(newcomer.locator(".thread .incoming").last).to_contain_text("sent to 4 neighbours")
    for number in CLAYHALL_MOBILES:
        alert = phone(page, number).locator(".thread .incoming").last
        expect(alert).to_contain_text(REPORT)
        expect(alert).to_contain_text("Clayhall Avenue Watch")
        expect(alert).to_have_attribute("data-status", "delivered")
    expect(phone(page, BEEHIVE_MOBILE).locator(".thread .text")).to_have_count(0)

    landline = phone(page, CLAYHALL_LANDLINE)
    expect(landline.locator(".ringing")).to_be_visible()
    landline.locator(".answer").click()
    expect(landline.locator(".transcript")).to_contain_text(REPORT)
    expect(landline.locator(".transcript")).to_contain_text("alert for Clayhall Avenue")
    if screenshot_path():
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(screenshot_path()), full_page=True)
    landline.locator(".hangup").click()  # hangs up, or closes a call whose TwiML has ended it
    expect(landline.locator(".call-log li").first).to_have_attribute("data-status", "completed")

    delivered = [d for d in wait_for_deliveries(live, expected=5) if d.report_id is not None]
    assert sorted(d.phone for d in delivered) == sorted([*CLAYHALL_MOBILES, CLAYHALL_LANDLINE])
    assert {d.state for d in delivered} == {DeliveryState.DELIVERED}

    coordinator.goto(live.url + "/")  # the log: the report, and its four deliveries delivered
    row = coordinator.locator("tr", has_text=REPORT)
    expect(row).to_contain_text("4/4 delivered")
    expect(row).to_contain_text("Clayhall Avenue")
    expect(row).not_to_contain_text("900555")  # the reporter is masked
    assert page.problems == []  # no script errors, nothing refused by the Content-Security-Policy


def fixture_menu():
    """A small interactive call, standing in for any TwiML the hotline may play."""
    response = VoiceResponse()
    response.say("Fixture menu.", **GB)
    gather = Gather(action="/twilio/fixture/choice", input="dtmf speech", num_digits=1, language="en-GB")
    gather.say("Press 1, or say report.", **GB)
    response.append(gather)
    response.say("Nothing heard. Goodbye.", **GB)
    return str(response)


def fixture_choice():
    response = VoiceResponse()
    if request.form.get("Digits") == "1":
        gather = Gather(action="/twilio/fixture/heard", input="speech", language="en-GB")
        gather.say("Say what you saw.", **GB)
        response.append(gather)
    else:
        response.say(f"You pressed {request.form.get('Digits', 'nothing')}.", **GB)
    return str(response)


def fixture_heard():
    response = VoiceResponse()
    response.say(f"You said: {request.form.get('SpeechResult', '')}.", **GB)
    response.hangup()
    return str(response)


def test_a_handset_presses_keys_and_speaks_through_an_interactive_call(live, page):
    csrf = live.app.extensions["csrf"]
    for name, view in (("choice", fixture_choice), ("heard", fixture_heard)):
        live.app.add_url_rule(f"/twilio/fixture/{name}", f"fixture_{name}", csrf.exempt(view), methods=["POST"])
    page.goto(live.url + "/simulator")
    page.fill("#add-phone input[name=number]", "020 7946 0999")
    page.select_option("#add-phone select[name=kind]", "landline")
    page.click("#add-phone button[type=submit]")
    landline = phone(page, "+442079460999")
    expect(landline).to_be_visible()
    expect(landline.locator(".compose")).to_have_count(0)  # a landline cannot text

    live.rt.carrier.place_call(to="+442079460999", twiml=fixture_menu(), status_callback=None)
    expect(landline.locator(".ringing")).to_be_visible()
    landline.locator(".answer").click()
    transcript = landline.locator(".transcript")
    expect(transcript).to_contain_text("Press 1, or say report.")
    expect(landline.locator(".prompt")).to_contain_text("press keys or say something")

    landline.locator(".keypad button", has_text="1").click()
    expect(transcript).to_contain_text("Say what you saw.")
    expect(landline.locator(".keypad")).to_be_hidden()  # speech only now
    landline.locator(".speech input").fill("a fox in the bins")
    landline.locator(".speech button").click()
    expect(transcript).to_contain_text("You said: a fox in the bins.")
    expect(transcript).to_contain_text("The call has ended.")
    assert page.problems == []

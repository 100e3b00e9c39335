"""README's simulator walk, the whole life of an incident in a real browser: Joan texts a sighting from her
pretend phone and the rest of Clayhall Avenue hears it (Mr Okafor's landline by a call); Arthur's `Thanks`
goes nowhere; Joan's follow-up reaches the street as `Update R1 …` without ringing the landline; the admin
opens R1 in the log, takes it, sends the all-clear (the landline by a call) and records an outcome, which
Joan is told by text.
"""

from __future__ import annotations

import time

from playwright.sync_api import expect
from sqlalchemy import func
from sqlmodel import Session, select

from hotline import phones
from hotline.models import Channel, Delivery, DeliveryState, Report, ReportKind, SimulatedMessage
from tests.browser.simulator.test_simulator_page import log_in, phone, seed_demo, text_from

REPORT = "two lads trying car door handles, one in a red hoodie"
UPDATE = "they have gone towards Beehive Lane"
ALL_CLEAR_WORDS = "police spoke to them on the corner"
NOTE = "crime reference 4711/23"
JOAN, ARTHUR, PRIYA = "+447700900101", "+447700900102", "+447700900103"
OKAFOR = "+442079460101"  # Clayhall's landline: alerts by call
OTHER_STREETS = ["+447700900201", "+447700900202", "+442079460201", "+447700900301", "+447700900302"]
QUIET_SECONDS = 2.0  # 20 dispatcher polls and simulator steps (0.1 s each): anything queued would have been sent


def watch_console(tab, problems: list[str]) -> None:
    tab.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: problems.append(str(error)))


def hotline_sent(live, number: str | None = None, kind: Channel = Channel.SMS) -> list[SimulatedMessage]:
    """What the hotline sent through the simulated carrier (all of it, or to one number), oldest first.
    TwiML replies to a pretend phone's text are stored here too."""
    with Session(live.rt.engine) as session:
        query = select(SimulatedMessage).where(SimulatedMessage.from_ == "hotline", SimulatedMessage.kind == kind)
        if number is not None:
            query = query.where(SimulatedMessage.to == number)
        return list(session.exec(query.order_by(SimulatedMessage.id)))


def bodies(live, number: str, kind: Channel = Channel.SMS) -> list[str]:
    return [m.body for m in hotline_sent(live, number, kind)]


def outbound_count(live) -> tuple[int, int]:
    """(messages and calls the hotline has sent, deliveries it has written): any new alert moves one of them."""
    with Session(live.rt.engine) as session:
        sent = session.exec(select(func.count(SimulatedMessage.id)).where(SimulatedMessage.from_ == "hotline")).one()
        written = session.exec(select(func.count(Delivery.id))).one()
    return sent, written


def wait_until(condition, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def stays_quiet(live, before: tuple[int, int], seconds: float = QUIET_SECONDS) -> None:
    """Nothing new goes out for `seconds`: polled, so the first stray message fails at once."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert outbound_count(live) == before, "the hotline sent something"
        time.sleep(0.1)


def nothing_queued(live) -> bool:
    with Session(live.rt.engine) as session:
        return session.exec(select(func.count(Delivery.id)).where(Delivery.state == DeliveryState.QUEUED.value)).one() == 0


def texted(page, number: str, body: str) -> list[str]:
    """Text the hotline from a pretend phone; returns the hotline's replies once the webhook has answered."""
    with page.expect_response(lambda r: r.url.endswith("/text") and r.request.method == "POST") as answered:
        text_from(phone(page, number), body)
    assert answered.value.ok
    return answered.value.json()["replies"]


def assert_begin(texts: list[str], beginnings: list[str]) -> None:
    assert len(texts) == len(beginnings) and all(t.startswith(b) for t, b in zip(texts, beginnings)), texts


def last_incoming(page, number: str):
    return phone(page, number).locator(".thread .incoming").last


def test_an_incident_from_the_first_text_to_its_outcome(live, page):
    login = seed_demo(live)
    page.goto(live.url + "/simulator")
    expect(page.locator(".simulator-banner")).to_contain_text("nothing is sent")
    expect(phone(page, JOAN)).to_be_visible()

    # 1. Joan reports; Arthur and Priya get the alert by text, Mr Okafor's landline rings with it.
    replies = texted(page, JOAN, REPORT)
    assert len(replies) == 1 and replies[0].startswith("Thanks, report R1 sent to 3 neighbours")
    expect(last_incoming(page, JOAN)).to_contain_text("report R1 sent to 3 neighbours")
    for number in (ARTHUR, PRIYA):
        alert = last_incoming(page, number)
        expect(alert).to_contain_text("Clayhall Avenue Watch R1 ")
        expect(alert).to_contain_text(REPORT)
        expect(alert).to_have_attribute("data-status", "delivered")
    landline = phone(page, OKAFOR)
    expect(landline.locator(".ringing")).to_be_visible()
    landline.locator(".answer").click()
    expect(landline.locator(".transcript")).to_contain_text(REPORT)
    landline.locator(".hangup").click()
    expect(landline.locator(".call-log li")).to_have_count(1)
    expect(landline.locator(".call-log li").first).to_have_attribute("data-status", "completed")
    wait_until(lambda: nothing_queued(live), what="the alert's deliveries to leave the outbox")

    # 2. Arthur replies `Thanks`: recorded against his alert, never broadcast, never answered. The webhook has
    # answered (so whatever it queued is committed) before the quiet watch starts.
    received = page.locator(".thread .incoming").count()
    before = outbound_count(live)
    assert texted(page, ARTHUR, "Thanks") == []
    stays_quiet(live, before)
    expect(phone(page, ARTHUR).locator(".thread .text").last).to_contain_text("Thanks")
    expect(last_incoming(page, ARTHUR)).to_contain_text("Clayhall Avenue Watch R1 ")  # still the alert
    expect(page.locator(".thread .incoming")).to_have_count(received)
    with Session(live.rt.engine) as session:
        assert session.exec(select(func.count(Report.id))).one() == 1  # not a report, not an update
        arthurs = session.exec(select(Delivery).where(Delivery.phone == ARTHUR, Delivery.report_id == 1)).one()
        assert arthurs.acknowledged_at is not None and arthurs.acknowledged_by == "sms"

    # 3. Joan's follow-up is an update: to the street by text, but no call for a non-urgent update.
    replies = texted(page, JOAN, UPDATE)
    assert len(replies) == 1 and replies[0].startswith("Thanks, your update to R1 is sent to 2 neighbours")
    for number in (ARTHUR, PRIYA):
        update = last_incoming(page, number)
        expect(update).to_contain_text("Update R1 ")
        expect(update).to_contain_text(UPDATE)
        expect(update).to_have_attribute("data-status", "delivered")
    with Session(live.rt.engine) as session:
        update_report = session.exec(select(Report).where(Report.id != 1)).one()
        assert (update_report.kind, update_report.incident_id) == (ReportKind.UPDATE, 1)
        assert sorted(session.exec(select(Delivery.phone).where(Delivery.report_id == update_report.id))) == [ARTHUR, PRIYA]
    wait_until(lambda: nothing_queued(live), what="the update's deliveries to leave the outbox")
    assert len(hotline_sent(live, OKAFOR, Channel.CALL)) == 1  # still only the first alert's call
    expect(landline.locator(".call-log li")).to_have_count(1)
    expect(landline.locator(".ringing")).to_be_hidden()

    # 4. The admin opens the log: R1 is one row, open, with its update counted.
    coordinator = page.context.new_page()
    watch_console(coordinator, page.problems)
    log_in(coordinator, live, login)
    rows = coordinator.locator("#log-live tr[data-ref]")
    expect(rows).to_have_count(1)  # the update is shown under R1, not as a row of its own
    r1 = coordinator.locator('#log-live tr[data-ref="R1"]')
    expect(r1).to_contain_text(REPORT)
    expect(r1).to_contain_text("open")
    expect(r1).to_contain_text("1 update")

    # 5. R1's page: the timeline, "I'm on it", then the all-clear.
    r1.get_by_role("link", name="R1").click()
    coordinator.wait_for_url("**/reports/1")
    timeline = coordinator.locator("#incident li[data-what]")
    expect(timeline).to_have_count(2)
    expect(timeline.nth(0)).to_have_attribute("data-what", "report")
    expect(timeline.nth(0)).to_contain_text(REPORT)
    expect(timeline.nth(1)).to_have_attribute("data-what", "update")
    expect(timeline.nth(1)).to_contain_text(UPDATE)
    expect(coordinator.locator("#acknowledged")).to_contain_text("Acknowledged by 1 of 3")  # Arthur's Thanks
    expect(coordinator.locator("tr", has_text=phones.mask(ARTHUR))).to_contain_text("by text")

    coordinator.get_by_role("button", name="I'm on it").click()
    expect(coordinator.get_by_role("status")).to_contain_text("You are on R1.")
    expect(coordinator.locator('#incident li[data-what="taken"]')).to_contain_text(login.email)
    expect(coordinator.get_by_role("button", name="I'm on it")).to_have_count(0)

    coordinator.get_by_label("All-clear message").fill(ALL_CLEAR_WORDS)
    coordinator.get_by_role("button", name="Send the all-clear").click()
    expect(coordinator.get_by_role("status")).to_contain_text("All clear for R1 is going to 3 people; R1 is closed.")
    expect(coordinator.locator('#incident li[data-what="all_clear"]')).to_contain_text(ALL_CLEAR_WORDS)
    expect(coordinator.get_by_role("button", name="Send the all-clear")).to_have_count(0)

    # Everyone the alert reached hears the all-clear on the channel they got it: texts, and a call to the landline.
    # (Answering it is the simulator page's first action since the login in the other tab replaced the session.)
    for number in (ARTHUR, PRIYA):
        clear = last_incoming(page, number)
        expect(clear).to_contain_text(f"All clear R1: {ALL_CLEAR_WORDS}")
        expect(clear).to_have_attribute("data-status", "delivered")
    expect(landline.locator(".call-log li")).to_have_count(2)
    expect(landline.locator(".ringing")).to_be_visible()
    landline.locator(".answer").click()
    expect(landline.locator(".transcript")).to_contain_text("All clear for Clayhall Avenue")
    expect(landline.locator(".transcript")).to_contain_text(ALL_CLEAR_WORDS)
    landline.locator(".hangup").click()
    expect(landline.locator(".call-log li").first).to_have_attribute("data-status", "completed")

    coordinator.goto(live.url + "/")
    expect(rows).to_have_count(1)
    expect(r1).to_contain_text("all clear")
    expect(r1).not_to_contain_text("open")
    expect(r1).to_contain_text("1 update")

    # 6. The outcome: recorded on R1's page and told to Joan by text.
    r1.get_by_role("link", name="R1").click()
    coordinator.wait_for_url("**/reports/1")
    coordinator.locator("select[name=outcome]").select_option("police_informed")
    coordinator.locator("textarea[name=note]").fill(NOTE)
    coordinator.get_by_role("button", name="Record the outcome").click()
    expect(coordinator.get_by_role("status")).to_contain_text("the reporter is told by text")
    outcome = coordinator.locator('#incident li[data-what="outcome"]')
    expect(outcome).to_contain_text("the police have been informed")
    expect(outcome).to_contain_text(NOTE)
    expect(outcome).to_contain_text("reporter told")
    told = last_incoming(page, JOAN)
    expect(told).to_contain_text("about your report R1, the police have been informed")
    expect(told).to_contain_text(NOTE)
    expect(told).to_have_attribute("data-status", "delivered")
    coordinator.goto(live.url + "/")
    expect(r1).to_contain_text("police informed")

    # The whole incident, phone by phone: nothing more, nothing less (Thanks sent nothing to anyone).
    wait_until(lambda: nothing_queued(live), what="the outbox to empty")
    assert_begin(bodies(live, JOAN), ["Thanks, report R1 sent", "Thanks, your update to R1", "Street Watch: about your report R1"])
    for number in (ARTHUR, PRIYA):
        assert_begin(bodies(live, number), ["Clayhall Avenue Watch R1 ", "Update R1 ", "All clear R1: "])
    assert bodies(live, OKAFOR) == []
    calls = hotline_sent(live, OKAFOR, Channel.CALL)
    assert len(calls) == 2 and REPORT in calls[0].body and ALL_CLEAR_WORDS in calls[1].body
    assert all(bodies(live, number) == [] and hotline_sent(live, number, Channel.CALL) == [] for number in OTHER_STREETS)
    assert page.problems == []  # no script errors on the simulator or the coordinators' pages

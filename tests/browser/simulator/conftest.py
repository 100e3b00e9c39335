"""Browser tests: the app served on a free local port (web, webhooks, dispatcher) and Debian's Chromium.

Playwright drives /usr/bin/chromium (`apt-get install chromium`); it never downloads a browser of its own.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect
from werkzeug.serving import make_server

from hotline.delivery.outbox import Dispatcher
from tests.conftest import build_app


class LiveServer:
    def __init__(self, app):
        self.app = app
        self.rt = app.extensions["hotline"]
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.rt.dispatcher = Dispatcher(engine=self.rt.engine, carrier=self.rt.carrier, config=self.rt.config).start()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.rt.dispatcher.stop()
        self.rt.carrier.network.settle(5)
        self.rt.engine.dispose()


@pytest.fixture
def live(tmp_path):
    """Simulator mode, callbacks 100 ms apart, no quiet hours (an alert call rings whatever the time)."""
    app = build_app(
        tmp_path, twilio=False, simulator_step_seconds=0.1, simulator_ring_seconds=120,
        environ={"HOTLINE_QUIET_HOURS": "00:00-00:00"},
    )
    with LiveServer(app) as server:
        yield server


@pytest.fixture(autouse=True)
def patient_expect():
    """Two shared cores (four test processes while scripts/test runs both passes at once) and a page that polls once
    a second: expect() waits up to 15 s here, not Playwright's 5 (a guard against a hang, not a measure)."""
    expect.set_options(timeout=15_000)
    yield
    expect.set_options(timeout=5_000)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.problems = problems
    yield page
    context.close()


def screenshot_path() -> Path | None:
    """HOTLINE_SCREENSHOT=docs/simulator.png makes the walk save the README's screenshot."""
    target = os.environ.get("HOTLINE_SCREENSHOT")
    return Path(target) if target else None

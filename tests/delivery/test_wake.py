"""The dispatcher is woken by new deliveries, not by a fast poll: in one process by an event, across
processes on PostgreSQL by NOTIFY. The safety-net poll in these tests is an hour: anything sent within the
test's generous wait was woken."""

from __future__ import annotations

import threading
import time

import pytest
from sqlmodel import Session, select

from hotline.db import make_engine
from hotline.delivery import wake
from hotline.delivery.outbox import Dispatcher
from hotline.models import Delivery, DeliveryState
from tests.conftest import NUMBERS, SignedClient, add_members, add_street, build_app

HOUR = 3600.0


def wait_for(condition, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_report_wakes_the_dispatcher_in_the_same_process(tmp_path, twilio_api):
    app = build_app(tmp_path, twilio=True, dispatch_poll_seconds=HOUR, environ={"HOTLINE_QUIET_HOURS": "00:00-00:00"})
    rt = app.extensions["hotline"]
    with Session(rt.engine) as session:
        add_members(session, add_street(session, "Clayhall Avenue", 101), NUMBERS[:3])
    rt.dispatcher = Dispatcher(engine=rt.engine, carrier=rt.carrier, config=rt.config).start()
    try:
        time.sleep(0.3)  # the dispatcher has looked once and gone to sleep for its hour
        SignedClient(app).sms(NUMBERS[0], "van with its lights off outside no 2")
        assert wait_for(lambda: len(twilio_api.sent) == 2)
    finally:
        rt.dispatcher.stop()
        rt.engine.dispose()


@pytest.mark.postgres
def test_notify_from_the_web_process_wakes_the_workers_listener(postgres_url, tmp_path):
    from hotline import create_app

    environ = {"HOTLINE_DATABASE_URL": postgres_url, "HOTLINE_SECRET_KEY": "x"}
    web = create_app({"testing": True}, instance_path=tmp_path / "web", environ=environ).extensions["hotline"]
    worker_engine = create_app({"testing": True}, instance_path=tmp_path / "worker", environ=environ).extensions["hotline"].engine
    woken = threading.Event()
    listener = wake.Listener(worker_engine, woken.set).start()
    try:
        assert woken.wait(10)  # on connecting: anything written while it was not listening
        woken.clear()
        web.outbox_changed()  # no dispatcher in this process: NOTIFY
        assert woken.wait(10)
    finally:
        listener.stop()
        web.engine.dispose()
        worker_engine.dispose()


@pytest.mark.postgres
def test_a_report_to_the_web_process_wakes_the_workers_listener_with_its_commit(postgres_url, tmp_path):
    """The webhook sends its NOTIFY inside the report's own transaction (PostgreSQL delivers it at the commit)."""
    web_app = build_app(tmp_path / "web", twilio=True)
    web = web_app.extensions["hotline"]
    worker_engine = make_engine(postgres_url)
    with Session(web.engine) as session:
        add_members(session, add_street(session, "Clayhall Avenue", 101), NUMBERS[:3])
    woken = threading.Event()
    listener = wake.Listener(worker_engine, woken.set).start()
    try:
        assert woken.wait(10)  # on connecting
        woken.clear()
        SignedClient(web_app).sms(NUMBERS[0], "HELP")  # nothing for the outbox: no NOTIFY
        assert not woken.wait(0.5)
        SignedClient(web_app).sms(NUMBERS[0], "van with its lights off outside no 2")
        assert woken.wait(10)
        with Session(web.engine) as session:
            assert len(session.exec(select(Delivery).where(Delivery.state == DeliveryState.QUEUED)).all()) == 2
    finally:
        listener.stop()
        web.engine.dispose()
        worker_engine.dispose()


def test_notify_does_nothing_on_sqlite_and_never_raises(tmp_path):
    app = build_app(tmp_path, twilio=False)
    rt = app.extensions["hotline"]
    wake.notify(rt.engine)  # no error, nothing to do
    with Session(rt.engine) as session:
        assert session.exec(select(Delivery).where(Delivery.state == DeliveryState.QUEUED)).all() == []
    rt.engine.dispose()

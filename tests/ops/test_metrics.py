"""GET /metrics: what Prometheus scrapes to see trouble coming (a backlog, a job that stopped, slow webhooks),
and who may read it (a bearer token, or only this machine when none is set)."""

from __future__ import annotations

import urllib.request
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from hotline.db import make_engine, utcnow
from hotline.models import Delivery
from hotline.ops import jobs
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, NUMBERS, add_members, add_street, build_app
from tests.standin.processes import Hotline
from tests.standin.twilio import TwilioStandIn


def scrape(client, **kw) -> dict[tuple, float]:
    response = client.get("/metrics", **kw)
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/plain"
    return samples(response.get_data(as_text=True))


def samples(text: str) -> dict[tuple, float]:
    """{(name, (label, value), …): value} for every sample."""
    return {
        (sample.name, *sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def webhook_count(found: dict, route: str, status: str) -> float:
    return found.get(("hotline_webhook_duration_seconds_count", ("route", route), ("status", status)), 0.0)


def test_metrics_show_the_outbox_its_oldest_due_delivery_and_deliveries_by_state(app, twilio, session):
    add_members(session, add_street(session, "Clayhall Avenue", 101), NUMBERS[:5])
    client = app.test_client()
    before = scrape(client)
    assert twilio.sms(NUMBERS[0], "van with no plates outside 12").status_code == 200
    assert twilio.sms(NUMBERS[50], "HELP").status_code == 200
    assert twilio.post("/twilio/status", {"MessageSid": "SM" + "a" * 32, "MessageStatus": "delivered"}).status_code == 204
    session.exec(update(Delivery).where(Delivery.id == 1).values(next_attempt_at=utcnow() - timedelta(minutes=7)))
    session.exec(update(Delivery).where(Delivery.id == 2).values(state="delivered"))
    session.commit()

    found = scrape(client)
    assert found[("hotline_database_up",)] == 1
    assert found[("hotline_outbox_depth", ("channel", "sms"))] == 3 and found[("hotline_outbox_depth", ("channel", "call"))] == 0
    assert 7 * 60 <= found[("hotline_outbox_oldest_due_age_seconds", ("channel", "sms"))] < 8 * 60
    assert found[("hotline_outbox_oldest_due_age_seconds", ("channel", "call"))] == 0
    assert found[("hotline_deliveries", ("state", "queued"))] == 3 and found[("hotline_deliveries", ("state", "delivered"))] == 1
    assert found[("hotline_deliveries", ("state", "failed"))] == 0
    assert webhook_count(found, "sms", "200") - webhook_count(before, "sms", "200") == 2
    assert webhook_count(found, "status", "204") - webhook_count(before, "status", "204") == 1


def test_metrics_show_when_each_job_last_ran_and_how_often_it_should(app, rt):
    started = utcnow() - timedelta(seconds=3)
    jobs.record_run(rt.engine, "outbox_sweep", started=started)
    jobs.record_run(rt.engine, "retention", started=started, error="OperationalError: database is locked")
    found = scrape(app.test_client())
    sweep = found[("hotline_job_last_success_timestamp_seconds", ("job", "outbox_sweep"))]
    assert started.timestamp() <= sweep <= utcnow().timestamp()
    assert found[("hotline_job_failures", ("job", "retention"))] == 1
    assert ("hotline_job_last_success_timestamp_seconds", ("job", "retention")) not in found  # never succeeded
    assert ("hotline_job_last_run_timestamp_seconds", ("job", "retention")) in found
    assert ("hotline_job_last_run_timestamp_seconds", ("job", "daily_digest")) not in found  # never ran: no sample
    assert found[("hotline_job_interval_seconds", ("job", "outbox_sweep"))] == 60
    assert found[("hotline_job_interval_seconds", ("job", "backup"))] == 24 * 3600
    assert {dict(key[1:])["job"] for key in found if key[0] == "hotline_job_interval_seconds"} == {j.id for j in jobs.schedule(rt.config)}


def test_without_a_token_only_this_machine_may_read_them(app):
    client = app.test_client()
    assert client.get("/metrics").status_code == 200  # the test client comes from 127.0.0.1
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 403
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403  # through a local proxy
    assert client.post("/metrics").status_code == 405


def test_with_a_token_anyone_with_it_may_read_them_and_nobody_without(tmp_path):
    app = build_app(tmp_path, twilio=False, environ={"HOTLINE_METRICS_TOKEN": "s3cret-scrape-token"})
    client = app.test_client()
    far = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/metrics", environ_base=far, headers={"Authorization": "Bearer s3cret-scrape-token"}).status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-scrape-token"}):
        refused = client.get("/metrics", environ_base=far, headers=headers)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/metrics").status_code == 401  # the token counts from this machine too
    app.extensions["hotline"].engine.dispose()


def test_with_the_database_away_metrics_say_so_instead_of_failing(app, twilio):
    twilio.sms(NUMBERS[0], "HELP")
    app.extensions["hotline"].engine = make_engine("sqlite:////nonexistent/dir/hotline.db")
    found = scrape(app.test_client())
    assert found[("hotline_database_up",)] == 0
    assert webhook_count(found, "sms", "200") >= 1


@pytest.mark.slow
def test_under_gunicorn_every_scrape_counts_every_worker_s_webhooks(tmp_path):
    """Two gunicorn workers each answer some texts and some scrapes: prometheus_client's multiprocess files
    make every scrape add up both."""
    with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN) as standin:
        hotline = Hotline(tmp_path, database_url=f"sqlite:///{tmp_path / 'hotline.db'}", standin=standin)
        try:
            hotline.start_web(workers=2)
            for n in range(12):
                assert hotline.sms(NUMBERS[n], "HELP", f"SM{n:032x}")[0] == 200
            def count() -> float:
                with urllib.request.urlopen(hotline.public_url + "/metrics", timeout=10) as response:
                    return webhook_count(samples(response.read().decode()), "sms", "200")

            assert [count() for _ in range(6)] == [12.0] * 6
        finally:
            hotline.stop()
    assert (tmp_path / "instance" / f"metrics-{hotline.port}").is_dir()

"""GET /metrics for Prometheus: the outbox, deliveries, webhook latency and the scheduled jobs' last runs.

The outbox, delivery and job figures are read from the database at each scrape, so any process answers
for all of them. Webhook latency is a histogram observed around every /twilio/… request; under gunicorn
(`hotline web`) each worker writes its share to prometheus_client's multiprocess files and a scrape adds
them up. Readable with `Authorization: Bearer HOTLINE_METRICS_TOKEN`, or, with no token set, only from
the machine itself (loopback, and not relayed by a proxy).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from datetime import datetime, timedelta

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import and_, func, or_
from sqlmodel import Session, select

from hotline import runtime
from hotline.db import utcnow
from hotline.models import Channel, Delivery, DeliveryState, JobRun
from hotline.ops import jobs

log = logging.getLogger(__name__)
bp = Blueprint("metrics", __name__)

# Registered in no registry of its own: each scrape builds one (see `metrics`).
WEBHOOK_SECONDS = Histogram(
    "hotline_webhook_duration_seconds", "Time to answer a Twilio webhook (Twilio gives up at 15 s)", ["route", "status"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 8.0, 15.0), registry=None,
)


def install(app: Flask) -> None:
    """The /metrics route, and the clock around every webhook."""
    app.register_blueprint(bp)
    app.before_request(_start_clock)
    app.after_request(_stop_clock)


def _start_clock() -> None:
    if request.blueprint == "webhooks":
        g.hotline_webhook_started = time.perf_counter()


def _stop_clock(response: Response) -> Response:
    started = g.pop("hotline_webhook_started", None)
    if started is not None:
        route = request.path.split("/")[2] if request.path.count("/") >= 2 else "twilio"  # sms, voice, status
        WEBHOOK_SECONDS.labels(route, str(response.status_code)).observe(time.perf_counter() - started)
    return response


@bp.get("/metrics")
def metrics():
    rt = runtime.current()
    refusal = _refusal(rt.config)
    if refusal is not None:
        return refusal
    registry = CollectorRegistry()
    if rt.config.metrics_multiprocess_dir:
        MultiProcessCollector(registry, path=rt.config.metrics_multiprocess_dir)
    else:
        registry.register(WEBHOOK_SECONDS)
    registry.register(DatabaseCollector(rt.engine, rt.config))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def _refusal(config) -> Response | None:
    if config.metrics_token:
        given = request.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode(), f"Bearer {config.metrics_token}".encode()):
            return None
        return Response("a bearer token is needed\n", status=401, mimetype="text/plain", headers={"WWW-Authenticate": "Bearer"})
    try:
        local = ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        local = False
    if local and "X-Forwarded-For" not in request.headers:  # a proxy on this machine would make everyone local
        return None
    return Response("/metrics is for this machine only: set HOTLINE_METRICS_TOKEN to read it from elsewhere\n", status=403, mimetype="text/plain")


class DatabaseCollector:
    """What the database says at this scrape; `hotline_database_up 0` (and nothing else) when it cannot say."""

    def __init__(self, engine, config):
        self.engine, self.config = engine, config

    def collect(self):
        up = GaugeMetricFamily("hotline_database_up", "1 when the database answered this scrape")
        try:
            with Session(self.engine) as session:
                families = self._families(session, utcnow())
        except Exception:
            log.warning("/metrics could not read the database", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self, session: Session, now: datetime) -> list:
        return [*self._outbox(session, now), self._deliveries(session), *self._jobs(session, now)]

    def _outbox(self, session: Session, now: datetime) -> list:
        waiting = Delivery.state.in_([DeliveryState.QUEUED.value, DeliveryState.SENDING.value])
        due = or_(
            and_(Delivery.state == DeliveryState.QUEUED.value, Delivery.next_attempt_at <= now),
            and_(Delivery.state == DeliveryState.SENDING.value, Delivery.lease_until < now),  # its worker died
        )
        depth = dict(session.exec(select(Delivery.channel, func.count(Delivery.id)).where(waiting).group_by(Delivery.channel)).all())
        oldest = dict(session.exec(select(Delivery.channel, func.min(Delivery.next_attempt_at)).where(due).group_by(Delivery.channel)).all())
        depth_family = GaugeMetricFamily(
            "hotline_outbox_depth", "Deliveries not yet handed to Twilio (queued, held for quiet hours, or being sent)", labels=["channel"]
        )
        age_family = GaugeMetricFamily(
            "hotline_outbox_oldest_due_age_seconds", "How long the longest-waiting due delivery has waited (0: none due)", labels=["channel"]
        )
        for channel in Channel:
            depth_family.add_metric([channel.value], depth.get(channel.value, 0))
            since = oldest.get(channel.value)
            age_family.add_metric([channel.value], max(0.0, (now - since).total_seconds()) if since else 0.0)
        return [depth_family, age_family]

    def _deliveries(self, session: Session) -> GaugeMetricFamily:
        counts = dict(session.exec(select(Delivery.state, func.count(Delivery.id)).group_by(Delivery.state)).all())
        family = GaugeMetricFamily(
            "hotline_deliveries", "Deliveries in each state; delivered, undelivered, failed and cancelled are final", labels=["state"]
        )
        for state in DeliveryState:
            family.add_metric([state.value], counts.get(state.value, 0))
        return family

    def _jobs(self, session: Session, now: datetime) -> list:
        runs = {run.job_id: run for run in session.exec(select(JobRun))}
        interval = GaugeMetricFamily("hotline_job_interval_seconds", "How often each scheduled job is meant to run", labels=["job"])
        finished = GaugeMetricFamily("hotline_job_last_run_timestamp_seconds", "When each job last finished, well or not", labels=["job"])
        succeeded = GaugeMetricFamily("hotline_job_last_success_timestamp_seconds", "When each job last finished without an error", labels=["job"])
        failures = GaugeMetricFamily("hotline_job_failures", "Runs in a row that ended in an error", labels=["job"])
        for job in jobs.schedule(self.config):
            interval.add_metric([job.id], _interval(job.trigger, now))
            run = runs.get(job.id)
            if run is None:  # never ran here yet: no sample, rather than a time of 0 that looks like an outage
                continue
            if run.finished_at:
                finished.add_metric([job.id], run.finished_at.timestamp())
            if run.succeeded_at:
                succeeded.add_metric([job.id], run.succeeded_at.timestamp())
            failures.add_metric([job.id], run.failures)
        return [interval, finished, succeeded, failures]


def _interval(trigger, now: datetime) -> float:
    first = trigger.get_next_fire_time(None, now)
    second = trigger.get_next_fire_time(first, first + timedelta(microseconds=1))
    return (second - first).total_seconds()

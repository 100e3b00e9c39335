"""Scheduled work on APScheduler 3: outbox sweep, daily digest, expiry of JOINs, retention, erasure, backup,
escalation and check-on-me, incidents closing, and forgetting what finished calls, unmatched status
callbacks and deleted reports' recordings left behind, counting once what the meeting pack needs — each job, and when it runs. Running them (the job
store in the database, one process of several leading) is scheduler.py's.

Call alerts held by quiet hours need no job: they are Delivery rows whose next_attempt_at is the end of
quiet hours, and the dispatcher claims them like any retry once that time has come. The sweep counts them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import and_, func, or_
from sqlmodel import Session, select

from hotline import phones
from hotline.coordination import announcements, digest, escalation
from hotline.db import session_scope, utcnow
from hotline.delivery import outbox, reconcile
from hotline.delivery.carrier.base import CarrierError
from hotline.models import Channel, Delivery, DeliveryState, JobRun
from hotline.ops import backup as backups
from hotline.ops import housekeeping
from hotline.reports import incidents, tally

log = logging.getLogger(__name__)

BEHIND = timedelta(minutes=5)  # a delivery due longer ago than this means no dispatcher is keeping up


# --- the jobs: thin, a controllable `now`, a summary dict that is logged -------------------------


def outbox_sweep(rt, *, now: datetime | None = None) -> dict:
    """Safety net under the dispatcher: count what waits, wake it, and send ourselves if it is not running."""
    now = now or utcnow()
    with Session(rt.engine) as session:
        due = session.exec(
            select(func.count(Delivery.id)).where(
                or_(
                    and_(Delivery.state == DeliveryState.QUEUED.value, Delivery.next_attempt_at <= now),
                    and_(Delivery.state == DeliveryState.SENDING.value, Delivery.lease_until < now),
                )
            )
        ).one()
        behind = session.exec(
            select(func.count(Delivery.id)).where(
                Delivery.state == DeliveryState.QUEUED.value, Delivery.next_attempt_at <= now - BEHIND
            )
        ).one()
        held_calls = session.exec(
            select(func.count(Delivery.id)).where(
                Delivery.state == DeliveryState.QUEUED.value, Delivery.channel == Channel.CALL.value, Delivery.next_attempt_at > now
            )
        ).one()
        summary = {"due": due, "behind": behind, "calls_waiting_for_quiet_hours_to_end": held_calls, "sent_by_sweep": 0}
        dispatcher = rt.dispatcher
        if dispatcher is not None and dispatcher.thread is not None and dispatcher.thread.is_alive():
            dispatcher.wake()
        elif due:
            summary["sent_by_sweep"] = outbox.dispatch_due(session=session, carrier=rt.carrier, config=rt.config, now=now)
    if behind:
        log.warning("%s deliveries are more than %s overdue: is a worker running?", behind, BEHIND)
    return _logged("outbox_sweep", summary)


def daily_digest(rt, *, now: datetime | None = None) -> dict:
    with session_scope(rt.engine) as session:
        written = digest.queue_digests(session=session, config=rt.config, now=now or utcnow())
    if written:
        rt.outbox_changed()
    return _logged("daily_digest", {"digests": written})


def release_announcements(rt, *, now: datetime | None = None) -> dict:
    """Announcements whose time has come: their deliveries go to the outbox (each kept in the database,
    so one scheduled for Sunday survives any restart before then)."""
    with session_scope(rt.engine) as session:
        released = announcements.release_due(session=session, config=rt.config, now=now or utcnow())
    if released:
        rt.outbox_changed()
    return _logged("release_announcements", {"deliveries": released})


def expire_pending(rt, *, now: datetime | None = None) -> dict:
    with session_scope(rt.engine) as session:
        expired = housekeeping.expire_pending(session=session, config=rt.config, now=now or utcnow())
    return _logged("expire_pending", {"expired": expired})


def retention(rt, *, now: datetime | None = None) -> dict:
    with session_scope(rt.engine) as session:
        summary = housekeeping.redact_old_reports(session=session, config=rt.config, now=now or utcnow())
    return _logged("retention", summary)


def erase_opted_out(rt, *, now: datetime | None = None) -> dict:
    with session_scope(rt.engine) as session:
        erased = housekeeping.erase_opted_out(session=session, now=now or utcnow())
    return _logged("erase_opted_out", {"erased": erased})


def delete_recordings(rt, *, now: datetime | None = None) -> dict:
    """Recordings stay at Twilio until deleted: delete the ones we no longer keep, one request each, outside
    any transaction; a failure is left for the next run."""
    with Session(rt.engine) as session:
        due = housekeeping.recordings_to_delete(session=session, config=rt.config, now=now or utcnow())
    deleted = failed = 0
    for report_id, url in due:
        try:
            gone = rt.carrier.delete_recording(url)
        except CarrierError as exc:
            log.warning("could not delete the recording of report %s yet: %s", report_id, phones.mask_all(str(exc)))
            gone = False
        if not gone:
            failed += 1
            continue
        with session_scope(rt.engine) as session:
            housekeeping.recording_deleted(session=session, report_id=report_id, url=url)
        deleted += 1
    return _logged("delete_recordings", {"deleted": deleted, "failed": failed})


def reconcile_deliveries(rt, *, now: datetime | None = None) -> dict:
    """Deliveries whose final callback never came: their status fetched from Twilio and applied."""
    summary = reconcile.reconcile(engine=rt.engine, carrier=rt.carrier, config=rt.config, now=now or utcnow())
    if summary["applied"]:
        rt.outbox_changed()  # an undelivered text may be due again
    return _logged("reconcile_deliveries", summary)


def escalate(rt, *, now: datetime | None = None) -> dict:
    """Held reports and JOINs nobody handled in time go to the street's coordinators, then the admins."""
    with session_scope(rt.engine) as session:
        written = escalation.escalate(session=session, config=rt.config, now=now or utcnow())
    if written:
        rt.outbox_changed()
    return _logged("escalate", {"texts": written})


def check_on_me(rt, *, now: datetime | None = None) -> dict:
    """"Check on me" members silent after an urgent alert are named to their street's coordinators."""
    with session_scope(rt.engine) as session:
        written = escalation.check_on_me(session=session, config=rt.config, now=now or utcnow())
    if written:
        rt.outbox_changed()
    return _logged("check_on_me", {"texts": written})


def close_quiet_incidents(rt, *, now: datetime | None = None) -> dict:
    with session_scope(rt.engine) as session:
        closed = incidents.close_quiet(session=session, now=now or utcnow())
    return _logged("close_quiet_incidents", {"closed": closed})


def forget_finished_calls(rt, *, now: datetime | None = None) -> dict:
    with session_scope(rt.engine) as session:
        summary = housekeeping.forget_finished_calls(session=session, now=now or utcnow())
    return _logged("forget_finished_calls", summary)


def expire_unmatched_statuses(rt, *, now: datetime | None = None) -> dict:
    with session_scope(rt.engine) as session:
        expired = housekeeping.expire_unmatched_statuses(session=session, now=now or utcnow())
    return _logged("expire_unmatched_statuses", {"expired": expired})


def tally_meeting_pack(rt, *, now: datetime | None = None) -> dict:
    """What the meeting pack counts once (reports/tally.py): deliveries that can no longer change, reports' kinds."""
    with session_scope(rt.engine) as session:
        rows = tally.settle(session=session, now=now or utcnow())
        classified = tally.classify(session=session)
    return _logged("tally_meeting_pack", {"tallied": rows, "classified": classified})


def backup(rt, *, now: datetime | None = None) -> dict:
    """A copy of the whole database in HOTLINE_BACKUP_DIR; the newest HOTLINE_BACKUP_KEEP are kept."""
    return _logged("backup", backups.scheduled(engine=rt.engine, config=rt.config, now=now or utcnow()))


def _logged(name: str, summary: dict) -> dict:
    log.info("job %s: %s", name, summary)
    return summary


# --- when they run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    id: str
    function: object  # fn(rt, *, now=None) -> dict
    trigger: object
    misfire_grace_time: int | None  # seconds late a run may still start; None: however late (caught up once)


def schedule(config) -> list[Job]:
    """Every job, with its timing. Daily jobs run in HOTLINE_TIMEZONE."""
    zone = config.timezone
    return [
        Job("outbox_sweep", outbox_sweep, IntervalTrigger(minutes=1, timezone=zone), 60),
        Job("release_announcements", release_announcements, IntervalTrigger(seconds=30, timezone=zone), 3600),
        Job("expire_pending", expire_pending, IntervalTrigger(hours=1, timezone=zone), None),
        Job("reconcile_deliveries", reconcile_deliveries, IntervalTrigger(minutes=5, timezone=zone), 300),
        Job("escalate", escalate, IntervalTrigger(minutes=1, timezone=zone), 60),
        Job("check_on_me", check_on_me, IntervalTrigger(minutes=1, timezone=zone), 60),
        Job("close_quiet_incidents", close_quiet_incidents, IntervalTrigger(minutes=10, timezone=zone), None),
        Job("delete_recordings", delete_recordings, IntervalTrigger(hours=1, timezone=zone), None),
        Job("forget_finished_calls", forget_finished_calls, IntervalTrigger(hours=1, timezone=zone), None),
        Job("expire_unmatched_statuses", expire_unmatched_statuses, IntervalTrigger(hours=1, timezone=zone), None),
        Job("tally_meeting_pack", tally_meeting_pack, IntervalTrigger(hours=1, timezone=zone), None),
        Job("daily_digest", daily_digest, CronTrigger(hour=8, minute=0, timezone=zone), 6 * 3600),
        Job("retention", retention, CronTrigger(hour=3, minute=30, timezone=zone), None),
        Job("erase_opted_out", erase_opted_out, CronTrigger(hour=3, minute=45, timezone=zone), None),
        Job("backup", backup, CronTrigger(hour=4, minute=0, timezone=zone), None),  # after retention and erasure
    ]


_runtime = None  # the Runtime of the process whose scheduler is running (one per process, see scheduler.py)


def bind(rt) -> None:
    """The Runtime whose jobs run_job runs: set by the process whose scheduler leads."""
    global _runtime
    _runtime = rt


def run_job(job_id: str) -> dict:
    """What the job store keeps a reference to (as hotline.ops.jobs:run_job, so it stays here): looks the job
    up by id, so stored jobs outlive code changes.
    Each run is recorded (JobRun), so /metrics in any process can tell when a job stopped running."""
    job = next(j for j in schedule(_runtime.config) if j.id == job_id)
    started = utcnow()
    try:
        summary = job.function(_runtime)
    except Exception as exc:
        record_run(_runtime.engine, job_id, started=started, error=phones.mask_all(f"{type(exc).__name__}: {exc}")[:500])
        raise
    record_run(_runtime.engine, job_id, started=started)
    return summary


def record_run(engine, job_id: str, *, started: datetime, error: str | None = None) -> None:
    """Best effort: a database that is away must not turn a job's own outcome into another error."""
    try:
        with session_scope(engine) as session:
            run = session.get(JobRun, job_id) or JobRun(job_id=job_id, started_at=started)
            run.started_at, run.finished_at, run.error = started, utcnow(), error
            run.failures = run.failures + 1 if error else 0
            if error is None:
                run.succeeded_at = run.finished_at
            session.add(run)
    except Exception:
        log.exception("could not record the run of job %s", job_id)

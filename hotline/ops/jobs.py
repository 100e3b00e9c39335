"""Scheduled work on APScheduler 3: outbox sweep, daily digest, expiry of JOINs, retention, erasure, backup.

The jobs are kept in the app's database (SQLAlchemyJobStore, table `apscheduler_jobs`), so they survive a
restart; a run missed while no worker was up is caught up once (coalesce) on the next start. The
scheduler is started by `hotline worker` and `hotline serve` only, never by create_app (so never once per
gunicorn worker), and of several such processes only the one holding the scheduler lock runs jobs:
APScheduler does not coordinate between processes itself.

Call alerts held by quiet hours need no job: they are Delivery rows whose next_attempt_at is the end of
quiet hours, and the dispatcher claims them like any retry once that time has come. The sweep counts them.
"""

from __future__ import annotations

import fcntl
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import and_, func, or_, text
from sqlmodel import Session, select

from hotline.coordination import announcements, digest
from hotline.db import session_scope, utcnow
from hotline.delivery import outbox
from hotline.models import Channel, Delivery, DeliveryState, JobRun
from hotline.ops import backup as backups
from hotline.ops import housekeeping

log = logging.getLogger(__name__)

JOB_TABLE = "apscheduler_jobs"
SCHEDULER_LOCK = 0x686F746D  # pg_try_advisory_lock key for "running hotline's scheduler"
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
        Job("daily_digest", daily_digest, CronTrigger(hour=8, minute=0, timezone=zone), 6 * 3600),
        Job("retention", retention, CronTrigger(hour=3, minute=30, timezone=zone), None),
        Job("erase_opted_out", erase_opted_out, CronTrigger(hour=3, minute=45, timezone=zone), None),
        Job("backup", backup, CronTrigger(hour=4, minute=0, timezone=zone), None),  # after retention and erasure
    ]


_runtime = None  # the Runtime of the process whose scheduler is running (one per process, see Scheduler)


def run_job(job_id: str) -> dict:
    """What the job store keeps a reference to: looks the job up by id, so stored jobs outlive code changes.
    Each run is recorded (JobRun), so /metrics in any process can tell when a job stopped running."""
    job = next(j for j in schedule(_runtime.config) if j.id == job_id)
    started = utcnow()
    try:
        summary = job.function(_runtime)
    except Exception as exc:
        record_run(_runtime.engine, job_id, started=started, error=f"{type(exc).__name__}: {exc}"[:500])
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


def _timing(trigger) -> str:
    """What a trigger means, to tell whether a stored job's timing changed (an interval's start date does not count)."""
    if isinstance(trigger, IntervalTrigger):
        return f"interval {trigger.interval} {trigger.timezone}"
    return repr(trigger)


def reconcile(aps: BackgroundScheduler, jobs: list[Job]) -> None:
    """Make the stored jobs match `jobs` without touching a stored job's next run: that keeps a missed run due."""
    wanted = {job.id: job for job in jobs}
    for stored in aps.get_jobs():
        if stored.id not in wanted:
            aps.remove_job(stored.id)
    for job in jobs:
        stored = aps.get_job(job.id)
        if stored is None:
            aps.add_job(
                run_job, job.trigger, args=[job.id], id=job.id, name=job.id,
                misfire_grace_time=job.misfire_grace_time, coalesce=True, max_instances=1,
            )
            continue
        if _timing(stored.trigger) != _timing(job.trigger):
            stored.reschedule(job.trigger)  # new timing: the next run counts from now
        if stored.misfire_grace_time != job.misfire_grace_time:
            stored.modify(misfire_grace_time=job.misfire_grace_time)


class SchedulerLock:
    """At most one process runs the scheduler: a PostgreSQL advisory lock held by a connection of its own,
    or a file lock beside an SQLite database. A process that dies lets go of either."""

    def __init__(self, engine):
        self.engine = engine
        self.connection = None
        self.handle = None

    def acquire(self) -> bool:
        if self.engine.dialect.name == "postgresql":
            connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            if connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": SCHEDULER_LOCK}).scalar():
                self.connection = connection
                return True
            connection.close()
            return False
        database = self.engine.url.database
        if not database or database == ":memory:":
            return True
        handle = open(f"{database}.scheduler-lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self.handle = handle
        return True

    def still_held(self) -> bool:
        if self.connection is None:
            return True
        try:
            self.connection.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def release(self) -> None:
        if self.connection is not None:
            try:
                self.connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEDULER_LOCK})
            except Exception:  # the connection is gone, and the lock with it
                pass
            self.connection.close()
            self.connection = None
        if self.handle is not None:
            self.handle.close()  # closing the file releases the flock
            self.handle = None


class Scheduler:
    """Runs the jobs while this process holds the scheduler lock; otherwise waits, ready to take over."""

    def __init__(self, rt, *, check_seconds: float = 15.0):
        self.rt, self.check_seconds = rt, check_seconds
        self.lock = SchedulerLock(rt.engine)
        self.aps: BackgroundScheduler | None = None
        self.executed: dict[str, int] = {}  # runs per job id since this process took the lead
        self.leading = threading.Event()
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> "Scheduler":
        self.thread = threading.Thread(target=self._run, name="scheduler-lock", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self.thread:
            self.thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.aps is None and self.lock.acquire():
                    self._lead()
                elif self.aps is not None and not self.lock.still_held():
                    log.error("lost the scheduler lock (database connection gone); standing by")
                    self._step_down()
            except Exception:
                log.exception("scheduler check failed; trying again in %ss", self.check_seconds)
            self._stop.wait(self.check_seconds)
        self._step_down()

    def _lead(self) -> None:
        global _runtime
        _runtime = self.rt
        from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED

        aps = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self.rt.engine, tablename=JOB_TABLE)},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=self.rt.config.timezone,
        )
        aps.add_listener(self._executed, EVENT_JOB_EXECUTED)
        aps.add_listener(lambda event: log.warning("job %s missed its run at %s", event.job_id, event.scheduled_run_time), EVENT_JOB_MISSED)
        aps.start(paused=True)  # reconcile before anything runs, so a missed run stays due and runs once
        try:
            reconcile(aps, schedule(self.rt.config))
        except Exception:
            aps.shutdown(wait=False)
            self.lock.release()
            raise
        aps.resume()
        self.aps = aps
        self.leading.set()
        log.info("scheduler running: %s", ", ".join(job.id for job in aps.get_jobs()))

    def _executed(self, event) -> None:
        self.executed[event.job_id] = self.executed.get(event.job_id, 0) + 1

    def _step_down(self) -> None:
        if self.aps is not None:
            self.aps.shutdown(wait=True)
            self.aps = None
        self.lock.release()
        self.leading.clear()

"""Running the scheduled jobs (jobs.py) on APScheduler 3, in one process of several.

The jobs are kept in the app's database (SQLAlchemyJobStore, table `apscheduler_jobs`), so they survive a
restart; a run missed while no worker was up is caught up once (coalesce) on the next start. The
scheduler is started by `hotline worker` and `hotline serve` only, never by create_app (so never once per
gunicorn worker), and of several such processes only the one holding the scheduler lock runs jobs:
APScheduler does not coordinate between processes itself.
"""

from __future__ import annotations

import fcntl
import logging
import threading

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import text

from hotline.ops import jobs as scheduled
from hotline.ops.jobs import Job

log = logging.getLogger(__name__)

JOB_TABLE = "apscheduler_jobs"
SCHEDULER_LOCK = 0x686F746D  # pg_try_advisory_lock key for "running hotline's scheduler"


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
                scheduled.run_job, job.trigger, args=[job.id], id=job.id, name=job.id,
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
        scheduled.bind(self.rt)
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
            reconcile(aps, scheduled.schedule(self.rt.config))
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

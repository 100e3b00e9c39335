"""The scheduler: jobs kept in the database survive a restart, a missed run runs once, one process leads."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import inspect
from sqlmodel import Session

from hotline import create_app
from hotline.db import utcnow
from hotline.models import JobRun, Report
from hotline.ops import jobs, scheduler
from tests.conftest import NUMBERS

JOB_IDS = {
    "outbox_sweep", "release_announcements", "expire_pending", "daily_digest", "retention", "erase_opted_out", "backup",
    "forget_finished_calls", "expire_unmatched_statuses", "delete_recordings", "close_quiet_incidents", "escalate", "check_on_me",
    "reconcile_deliveries", "tally_meeting_pack",
}


def wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _store(engine) -> SQLAlchemyJobStore:
    """The job store opened the way a new process opens it, with no scheduler thread to run anything."""
    store = SQLAlchemyJobStore(engine=engine, tablename=scheduler.JOB_TABLE)
    store.start(BackgroundScheduler(), "default")
    return store


def stored_jobs(engine) -> dict:
    return {job.id: job.next_run_time for job in _store(engine).get_all_jobs()}


def move_next_run(engine, job_id: str, when) -> None:
    store = _store(engine)
    job = store.lookup_job(job_id)
    job._modify(next_run_time=when)
    store.update_job(job)


def restarted(app, tmp_path):
    """A second process's app on the same database (create_app again, its own engine)."""
    rt = app.extensions["hotline"]
    url = rt.engine.url.render_as_string(hide_password=False)
    return create_app({"testing": True}, instance_path=tmp_path / "again", environ={"HOTLINE_DATABASE_URL": url}).extensions["hotline"]


def test_create_app_starts_no_scheduler(sim_app, tmp_path):
    before = {t.name for t in threading.enumerate()}
    rt = restarted(sim_app, tmp_path)
    started = {t.name for t in threading.enumerate()} - before
    assert not [name for name in started if "scheduler" in name.lower() or "APScheduler" in name]
    assert scheduler.JOB_TABLE not in inspect(rt.engine).get_table_names()
    rt.engine.dispose()


def test_jobs_survive_a_restart_and_a_missed_run_runs_once(sim_app, tmp_path):
    first = scheduler.Scheduler(sim_app.extensions["hotline"], check_seconds=0.1).start()
    assert wait_for(first.leading.is_set)
    first.stop()
    engine = sim_app.extensions["hotline"].engine
    assert set(stored_jobs(engine)) == JOB_IDS

    # Down for three days: three nightly retention runs were missed.
    with Session(engine) as session:
        session.add(Report(phone=NUMBERS[0], text="a sighting from last spring", created_at=utcnow() - timedelta(days=200)))
        session.commit()
    move_next_run(engine, "retention", utcnow() - timedelta(days=3))

    rt = restarted(sim_app, tmp_path)
    second = scheduler.Scheduler(rt, check_seconds=0.1).start()
    try:
        assert wait_for(lambda: second.executed.get("retention", 0) >= 1)
        time.sleep(1.0)  # time for any further (wrong) catch-up runs to show
        assert second.executed.get("retention") == 1
    finally:
        second.stop()
    with Session(engine) as session:
        report = session.get(Report, 1)
        assert report.text is None and report.redacted_at is not None
    after = stored_jobs(engine)
    assert set(after) == JOB_IDS  # the restart kept one copy of each job
    assert after["retention"] > utcnow()
    with Session(engine) as session:  # and the run is on record, for /metrics
        run = session.get(JobRun, "retention")
        assert run.succeeded_at is not None and run.failures == 0 and run.error is None
    rt.engine.dispose()


def test_every_run_of_a_job_is_recorded_a_failure_too(sim_app, monkeypatch):
    rt = sim_app.extensions["hotline"]
    monkeypatch.setattr(jobs, "_runtime", rt)
    assert jobs.run_job("expire_pending") == {"expired": 0}
    with Session(rt.engine) as session:
        good = session.get(JobRun, "expire_pending")
    assert good.finished_at >= good.started_at and good.succeeded_at == good.finished_at

    def broken(session, config, now):
        raise RuntimeError("disk full")

    monkeypatch.setattr(jobs.housekeeping, "expire_pending", broken)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            jobs.run_job("expire_pending")
    with Session(rt.engine) as session:
        bad = session.get(JobRun, "expire_pending")
    assert bad.failures == 2 and bad.error == "RuntimeError: disk full"
    assert bad.succeeded_at == good.succeeded_at and bad.finished_at > good.finished_at


def test_a_restart_keeps_each_job_s_next_run(sim_app, tmp_path):
    first = scheduler.Scheduler(sim_app.extensions["hotline"], check_seconds=0.1).start()
    assert wait_for(first.leading.is_set)
    first.stop()
    engine = sim_app.extensions["hotline"].engine
    before = stored_jobs(engine)
    rt = restarted(sim_app, tmp_path)
    second = scheduler.Scheduler(rt, check_seconds=0.1).start()
    assert wait_for(second.leading.is_set)
    second.stop()
    assert stored_jobs(engine) == before
    rt.engine.dispose()


def test_only_one_process_runs_the_scheduler_and_another_takes_over(sim_app, tmp_path):
    rt = sim_app.extensions["hotline"]
    other = restarted(sim_app, tmp_path)
    leader = scheduler.Scheduler(rt, check_seconds=0.1).start()
    assert wait_for(leader.leading.is_set)
    standby = scheduler.Scheduler(other, check_seconds=0.1).start()
    try:
        time.sleep(0.5)
        assert not standby.leading.is_set() and standby.aps is None
        leader.stop()
        assert wait_for(standby.leading.is_set, timeout=5)
    finally:
        leader.stop()
        standby.stop()
        other.engine.dispose()

"""`hotline db backup` while reports arrive, `hotline db restore` into an empty database (and never into one
holding data), and the daily backup the scheduler keeps. On the suite's database: SQLite, or PostgreSQL."""

from __future__ import annotations

import collections
import re
import stat
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, inspect
from sqlmodel import Session, select

from hotline import create_app, migrations
from hotline.cli import main
from hotline.db import make_engine, utcnow
from hotline.models import Delivery, DeliveryState, InboundEvent, Member, Report, ReportState, ReportStreet, Street
from hotline.ops import backup, jobs
from tests.conftest import NUMBERS, SignedClient, _fresh, add_members, add_street, build_app
from tests.delivery.test_faults import record

STREET = NUMBERS[:30]  # each may broadcast 5 reports an hour: enough for the reports arriving below
HISTORY = 3000  # reports already in the database, 29 deliveries each
NOON = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def live(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the commands' instance folder
    app = build_app(tmp_path, twilio=True)
    rt = app.extensions["hotline"]
    with Session(rt.engine) as session:
        add_members(session, add_street(session, "Clayhall Avenue", 101), STREET)
    yield app
    rt.engine.dispose()


def hotline(url: str, *args: str):
    return CliRunner().invoke(main, list(args), env={"HOTLINE_DATABASE_URL": url, "HOTLINE_SECRET_KEY": "test-secret"})


class Reporters(threading.Thread):
    """Members texting reports through the signed webhook, one after another, until stopped."""

    def __init__(self, app):
        super().__init__(daemon=True)
        self.app, self.stop = app, threading.Event()
        self.answered: list[tuple[str, int, float]] = []  # (MessageSid, status, when the answer came)

    def run(self) -> None:
        client, n = SignedClient(self.app), 0
        while not self.stop.is_set():
            sid = f"SM{n:032x}"
            response = client.sms(STREET[n % len(STREET)], f"report {n}: someone trying car doors", sid=sid)
            self.answered.append((sid, response.status_code, time.monotonic()))
            n += 1

    def before(self, moment: float) -> set[str]:
        return {f"sms:{sid}" for sid, status, at in self.answered if status == 200 and at < moment}


def seed_history(url: str, reports: int) -> None:
    """Last month's reports, each sent to the whole street: a database worth copying (bulk SQL, for speed,
    on an engine without the app's time limit: 87,000 rows in one go is no webhook)."""
    then = utcnow() - timedelta(days=30)
    engine = make_engine(url)
    with engine.begin() as connection:
        street_id = connection.execute(select(Street.id)).scalar_one()
        members = dict(connection.execute(select(Member.phone, Member.id)).all())
        report_rows = [
            {"phone": STREET[n % len(STREET)], "channel": "sms", "text": f"old report {n}: gate open", "urgent": False,
             "state": ReportState.SENT.value, "created_at": then, "fanout_pending": False}
            for n in range(reports)
        ]
        ids = connection.execute(insert(Report).returning(Report.id, Report.phone, sort_by_parameter_order=True), report_rows).all()
        connection.execute(insert(ReportStreet), [{"report_id": report_id, "street_id": street_id} for report_id, _ in ids])
        connection.execute(insert(Delivery), [
            {"report_id": report_id, "member_id": members[phone], "street_id": street_id, "phone": phone, "channel": "sms",
             "body": "Clayhall Avenue Watch: gate open", "urgent": False, "state": DeliveryState.DELIVERED.value, "attempts": 1,
             "next_attempt_at": then, "needs_lookup": False, "created_at": then, "updated_at": then}
            for report_id, reporter in ids for phone in STREET if phone != reporter
        ])
    engine.dispose()


def snapshot(url: str) -> dict[str, tuple[str, list[str]]]:
    """Every report (by its MessageSid's event, or `old:<id>` for the history) with its state and the numbers it
    went to, each checked whole: a broadcast report went to every neighbour once and never to its reporter."""
    engine = make_engine(url)
    with Session(engine) as session:
        deliveries = collections.defaultdict(list)
        for report_id, phone in session.exec(select(Delivery.report_id, Delivery.phone)):
            deliveries[report_id].append(phone)
        events = set(session.exec(select(InboundEvent.key)).all())
        seen = {}
        for report in session.exec(select(Report)):
            phones = sorted(deliveries[report.id])
            if report.state == ReportState.SENT:
                assert len(phones) == len(set(phones)) == len(STREET) - 1 and report.phone not in phones
            else:
                assert phones == []
            texted = re.fullmatch(r"report (\d+): .*", report.text)
            key = f"sms:SM{int(texted.group(1)):032x}" if texted else f"old:{report.id}"
            assert key in events or not texted  # a texted report is there with its event, or not at all
            seen[key] = (report.state, phones)
        assert events == {key for key in seen if key.startswith("sms:")}
    engine.dispose()
    return seen


def fresh_database(tmp_path, live_url: str) -> str:
    """Somewhere empty to restore into: a new SQLite file, or the suite's PostgreSQL database emptied."""
    if live_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'restored' / 'hotline.db'}"
    _fresh(live_url)
    return live_url


def test_a_backup_taken_while_reports_arrive_restores_every_report_and_delivery(live, tmp_path):
    rt = live.extensions["hotline"]
    url = rt.engine.url.render_as_string(hide_password=False)
    seed_history(url, HISTORY)
    reporters = Reporters(live)
    reporters.start()
    while len(reporters.answered) < 20:
        time.sleep(0.05)
    started = time.monotonic()
    made = hotline(url, "db", "backup", str(tmp_path / "copy"))
    finished = time.monotonic()
    time.sleep(0.3)
    reporters.stop.set()
    reporters.join()
    assert made.exit_code == 0, made.output
    assert "backed up to" in made.output and stat.S_IMODE((tmp_path / "copy").stat().st_mode) == 0o600

    refused = hotline(url, "db", "restore", str(tmp_path / "copy"))  # into the live database: it holds data
    assert refused.exit_code == 1 and "refused: the database already holds data" in refused.output
    assert "report" in refused.output and "delivery" in refused.output
    everything = snapshot(url)
    rt.engine.dispose()

    target = fresh_database(tmp_path, url)
    restored = hotline(target, "db", "restore", str(tmp_path / "copy"))
    assert restored.exit_code == 0, restored.output
    copy = snapshot(target)
    before = reporters.before(started)
    lost = before - set(copy)
    assert lost == set()  # every report answered before the backup began is there …
    assert all(everything[key] == copy[key] for key in copy)  # … each with all its deliveries, as they were
    assert set(copy) <= set(everything)
    during = {f"sms:{sid}" for sid, status, at in reporters.answered if started <= at <= finished}

    again = create_app({"testing": True}, instance_path=tmp_path / "again", environ={"HOTLINE_DATABASE_URL": target})
    engine = again.extensions["hotline"].engine
    with engine.connect() as connection:
        assert migrations.current(connection) == migrations.head()
    response = SignedClient(again).sms(STREET[0], "after the restore: van outside 12", sid="SM" + "f" * 32)
    assert response.status_code == 200 and b"sent to 29 neighbours" in response.data  # ids carry on from the copy
    engine.dispose()
    deliveries = sum(len(phones) for _, phones in copy.values())
    texted = sum(key.startswith("sms:") for key in copy)
    record("backup while reports arrive, restored into an empty database", history=HISTORY, texted_before_backup=len(before),
           answered_during_backup=len(during), texted_in_backup=texted, reports_in_backup=len(copy), deliveries_in_backup=deliveries,
           texted_after_backup=len(everything) - len(copy), backup_bytes=(tmp_path / "copy").stat().st_size,
           backup_s=round(finished - started, 2), lost=len(lost))


def test_a_refused_restore_changes_nothing(live, tmp_path):
    rt = live.extensions["hotline"]
    url = rt.engine.url.render_as_string(hide_password=False)
    assert hotline(url, "db", "backup", str(tmp_path / "copy")).exit_code == 0
    SignedClient(live).sms(STREET[0], "ladder against number 9", sid="SM" + "9" * 32)
    before = backup.row_counts(rt.engine)
    refused = hotline(url, "db", "restore", str(tmp_path / "copy"))
    assert refused.exit_code == 1 and "Restore only into an empty database" in refused.output
    assert backup.row_counts(rt.engine) == before and before["report"] == 1 and before["delivery"] == 29


def test_an_empty_database_a_hotline_has_started_on_is_restored_into(live, tmp_path):
    """An operator's new server: `hotline worker` started once (schema, jobs, job runs), nothing of the scheme's yet."""
    rt = live.extensions["hotline"]
    url = rt.engine.url.render_as_string(hide_password=False)
    assert hotline(url, "db", "backup", str(tmp_path / "copy")).exit_code == 0
    rt.engine.dispose()
    target = fresh_database(tmp_path, url)
    started = create_app({"testing": True}, instance_path=tmp_path / "new", environ={"HOTLINE_DATABASE_URL": target}).extensions["hotline"]
    jobs.record_run(started.engine, "outbox_sweep", started=NOON)
    started.engine.dispose()
    restored = hotline(target, "db", "restore", str(tmp_path / "copy"))
    assert restored.exit_code == 0, restored.output
    assert "1 street, 30 member" in restored.output


def test_a_backup_of_the_other_kind_or_no_backup_at_all_is_refused(live, tmp_path):
    rt = live.extensions["hotline"]
    url = rt.engine.url.render_as_string(hide_password=False)
    rt.engine.dispose()
    target = fresh_database(tmp_path, url)
    other = tmp_path / "other"
    other.write_bytes(b"PGDMP\x01\x0e\x00" if target.startswith("sqlite") else backup.SQLITE_MAGIC + bytes(100))
    wrong = hotline(target, "db", "restore", str(other))
    assert wrong.exit_code == 1 and "is a backup of" in wrong.output
    junk = tmp_path / "notes.txt"
    junk.write_text("not a backup")
    assert "is not a hotline backup" in hotline(target, "db", "restore", str(junk)).output


def test_the_daily_backup_keeps_the_newest_and_leaves_other_files_alone(tmp_path):
    folder = tmp_path / "backups"
    app = build_app(tmp_path, twilio=False, environ={"HOTLINE_BACKUP_DIR": str(folder), "HOTLINE_BACKUP_KEEP": "2"})
    rt = app.extensions["hotline"]
    folder.mkdir()
    (folder / "before-the-upgrade.db").write_bytes(b"the operator's own copy")
    summaries = [jobs.backup(rt, now=NOON + timedelta(days=day)) for day in range(4)]
    assert [s["removed"] for s in summaries] == [0, 0, 1, 1]
    suffix = "db" if rt.engine.dialect.name == "sqlite" else "dump"
    assert sorted(p.name for p in folder.iterdir()) == [
        "before-the-upgrade.db", f"hotline-20260117T120000Z.{suffix}", f"hotline-20260118T120000Z.{suffix}"
    ]
    newest = folder / f"hotline-20260118T120000Z.{suffix}"
    assert backup.backup_kind(newest) == rt.engine.dialect.name and stat.S_IMODE(newest.stat().st_mode) == 0o600
    rt.engine.dispose()


def test_backups_go_to_the_instance_folder_seven_kept_at_four_in_the_morning(sim_app):
    rt = sim_app.extensions["hotline"]
    assert rt.config.backup_dir == rt.config.instance_path / "backups" and rt.config.backup_keep == 7
    job = next(job for job in jobs.schedule(rt.config) if job.id == "backup")
    assert (str(job.trigger.fields[5]), str(job.trigger.fields[6])) == ("4", "0")  # hour, minute
    assert job.misfire_grace_time is None  # a backup missed while the worker was down runs when it is back


def test_a_sqlite_backup_is_one_self_contained_file(tmp_path):
    """Whatever the suite's database: the embedded database's copy is a single file, no -wal beside it."""
    environ = {"HOTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'live.db'}"}
    rt = create_app({"testing": True}, instance_path=tmp_path / "instance", environ=environ).extensions["hotline"]
    path = backup.backup(engine=rt.engine, target=tmp_path / "copy.db")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("copy")) == ["copy.db"]
    engine = make_engine(f"sqlite:///{path}")
    assert "report" in inspect(engine).get_table_names()
    engine.dispose()
    rt.engine.dispose()

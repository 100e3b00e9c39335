"""Fill a hotline database at scale, fast: streets, members spread unevenly over them, a year of reports,
their deliveries, an admin and a street coordinator. Bulk rows go in with COPY on PostgreSQL (executemany
on SQLite); deliveries are one INSERT … SELECT run by the database itself.

    python -m bench.seed --database-url postgresql+psycopg://…   # 2,000 streets, 100,000 members, 200,000 reports
    python -m bench.seed --database-url sqlite:///scale.db --streets 20 --members 500 --reports 1000

The schema is dropped and rebuilt through the app's own migrations, so the indexes measured are the shipped ones.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import String, case, cast, insert, literal, select, text
from werkzeug.security import generate_password_hash

PASSWORD = "bench password 1234"
ADMIN, COORDINATOR = "admin@bench.example.org", "street@bench.example.org"
RETENTION_DAYS = 180  # the default: older reports are seeded already redacted, as the retention job leaves them
NAMES = ("Clayhall Beehive Woodford Roding Redbridge Gants Barkingside Wanstead Snaresbrook Chigwell Hainault Fullwell "
         "Aldborough Seven Kings Goodmayes Newbury Ley Street Cranbrook Valentines Fairlop Tomswood Manor Elm Oak Ash "
         "Birch Cedar Willow Holly Hazel Rowan Alder Chestnut Maple Poplar Laurel Juniper Heather Ivy Clover").split()
KINDS = ["Avenue", "Road", "Lane", "Close", "Gardens", "Crescent", "Drive", "Way", "Grove", "Walk"]
WHO = ["man", "woman", "two men", "group of youths", "person", "couple", "lad on a bike", "delivery driver", "someone"]
DOING = ["trying car door handles", "looking over fences", "taking photos of houses", "checking doors",
         "sitting in a white van", "carrying a ladder", "hanging round the bins", "ringing doorbells", "on the scaffolding"]
DETAIL = ["red hoodie", "grey tracksuit", "black cap", "blue van no plates", "dark jacket", "silver car", "white van",
          "moped no lights", "hi-vis vest", "two dogs"]


@dataclass
class Size:
    streets: int = 2_000
    members: int = 100_000
    reports: int = 200_000
    delivery_days: int = 365  # broadcast reports of the last this many days get their deliveries written (all of them)


@dataclass
class Seeded:
    """What the measurements need to know about the seeded data."""

    size: Size
    coordinator_streets: list[int] = field(default_factory=list)
    busiest_street: int = 0
    deliveries: int = 0
    seconds: float = 0.0


def reset(engine) -> None:
    """An empty schema; the app's migrations rebuild it (create_app runs them)."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    else:
        from sqlmodel import SQLModel

        from hotline.migrations import target_metadata

        target_metadata()
        with engine.begin() as connection:
            SQLModel.metadata.drop_all(connection)
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
            connection.execute(text("DROP TABLE IF EXISTS apscheduler_jobs"))


def bulk(connection, table, columns: list[str], rows) -> int:
    """COPY on PostgreSQL (psycopg 3), executemany elsewhere."""
    rows = list(rows)
    if connection.dialect.name == "postgresql":
        driver = connection.connection.driver_connection
        quoted = ", ".join(f'"{c}"' for c in columns)
        with driver.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(tuple(json.dumps(v) if isinstance(v, list) else v for v in row))
    elif rows:
        connection.execute(insert(table), [dict(zip(columns, row)) for row in rows])
    return len(rows)


def _street_names(count: int) -> list[str]:
    base = len(NAMES) * len(KINDS)
    return [f"{NAMES[i % len(NAMES)]} {KINDS[(i // len(NAMES)) % len(KINDS)]}" + (f" {i // base + 1}" if i >= base else "") for i in range(count)]


def _sighting(rng: random.Random) -> str:
    return f"{rng.choice(WHO)} {rng.choice(DOING)}, {rng.choice(DETAIL)}"


def seed(engine, size: Size, *, now: datetime | None = None, rng: random.Random | None = None) -> Seeded:
    """Rows for `size`, in one transaction; then VACUUM ANALYZE so the planner knows the tables."""
    from hotline.models import Coordinator, CoordinatorStreet, Member, Membership, Report, ReportStreet, Street

    started, rng = time.monotonic(), rng or random.Random(8)
    now = now or datetime.now(timezone.utc)
    year = timedelta(days=365)
    out = Seeded(size=size)
    with engine.begin() as c:
        names = _street_names(size.streets)
        bulk(c, Street.__table__, ["id", "name", "code", "aliases", "postcodes", "open", "moderated", "created_at"],
             [(i + 1, name, 1000 + i, [], [f"IG{i % 9 + 1} {i % 10}AB"], i % 5 == 0, i % 50 == 0, now - year - year) for i, name in enumerate(names)])
        weights = [rng.lognormvariate(0, 0.8) for _ in range(size.streets)]  # some streets big, most middling
        home = rng.choices(range(1, size.streets + 1), weights, k=size.members)
        bulk(c, Member.__table__, ["id", "phone", "alerts", "opted_out_at", "created_at"],
             [(m, f"+4479{m:08d}", "call" if rng.random() < 0.1 else "sms", now - timedelta(days=rng.randrange(1, 300)) if rng.random() < 0.01 else None,
               now - timedelta(days=rng.randrange(1, 700))) for m in range(1, size.members + 1)])
        memberships, active = [], []
        for m, street in enumerate(home, start=1):
            streets = {street, rng.randrange(1, size.streets + 1)} if rng.random() < 0.05 else {street}
            for s in streets:
                roll = rng.random()
                status = "active" if roll < 0.92 else "pending" if roll < 0.95 else "left"
                memberships.append((len(memberships) + 1, m, s, status, now - timedelta(days=rng.randrange(1, 700))))
                if status == "active":
                    active.append((m, s))
        bulk(c, Membership.__table__, ["id", "member_id", "street_id", "status", "joined_at"], memberships)

        moments = sorted(now - timedelta(seconds=rng.uniform(60, year.total_seconds())) for _ in range(size.reports))
        moderated = {i + 1 for i in range(size.streets) if i % 50 == 0}
        reports, links = [], []
        for rid, created in enumerate(moments, start=1):
            old = created < now - timedelta(days=RETENTION_DAYS)
            roll = rng.random()
            if roll < 0.9:  # an active member: broadcast, or held on a moderated street, now and then over a limit
                member_id, street = rng.choice(active)
                recent = created > now - timedelta(days=7)
                state, reason = ("held" if recent else rng.choice(["sent", "sent", "dropped"])), "moderated"
                if street not in moderated:
                    state, reason = ("not_broadcast", rng.choice(["duplicate", "over_hour", "over_day"])) if roll > 0.88 else ("sent", None)
                links.append((rid, street))
            else:  # a stranger or a pending member: logged only
                member_id, street, state, reason = None, None, "not_broadcast", "stranger"
            channel = "call" if rng.random() < 0.08 else "sms"
            phone = None if old else (f"+4479{member_id:08d}" if member_id else f"+4477{rng.randrange(10**8):08d}")
            body = None if old else _sighting(rng)
            recording = None if old or channel == "sms" or rng.random() < 0.7 else f"https://api.twilio.com/recordings/RE{rid:032d}"
            reports.append((rid, member_id, phone, channel, body, recording, rng.random() < 0.03, state, reason, created,
                            created + timedelta(days=RETENTION_DAYS) if old else None, False))
        bulk(c, Report.__table__, ["id", "member_id", "phone", "channel", "text", "recording_url", "urgent", "state", "reason",
                                   "created_at", "redacted_at", "fanout_pending"], reports)
        bulk(c, ReportStreet.__table__, ["report_id", "street_id"], links)
        out.deliveries = _deliveries(c, now - timedelta(days=size.delivery_days))

        counted = {}
        for _, street in links:
            counted[street] = counted.get(street, 0) + 1
        out.busiest_street = max(counted, key=counted.get) if counted else 1
        ordinary = sorted(counted, key=counted.get)[len(counted) // 2:][:3]  # three middling streets
        out.coordinator_streets = ordinary or [1]
        hashed = generate_password_hash(PASSWORD)
        bulk(c, Coordinator.__table__, ["id", "email", "password_hash", "is_admin", "created_at"],
             [(1, ADMIN, hashed, True, now), (2, COORDINATOR, hashed, False, now)])
        bulk(c, CoordinatorStreet.__table__, ["coordinator_id", "street_id"], [(2, s) for s in out.coordinator_streets])
        if c.dialect.name == "postgresql":  # COPY with explicit ids leaves the sequences at 1
            for table in ("street", "member", "membership", "report", "coordinator"):
                c.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    from sqlmodel import Session

    from hotline.reports import tally

    with Session(engine) as session:  # what the hourly tally_meeting_pack job leaves in a year-old database
        tally.settle(session=session, now=now)
        tally.classify(session=session)
        session.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        # VACUUM too: autovacuum would have marked a year-old table all-visible, which index-only scans rely on
        c.execute(text("VACUUM ANALYZE" if c.dialect.name == "postgresql" else "ANALYZE"))
    out.seconds = time.monotonic() - started
    return out


def _deliveries(c, since: datetime) -> int:
    """Each broadcast report's deliveries since `since` (all but the reporter on its street), mostly delivered, as the database
    would hold them after the status callbacks; redacted reports' bodies are already blank."""
    from hotline.models import Delivery, Member, Membership, Report, ReportStreet

    roll = (Report.id * 31 + Member.id) % 100
    rows = (
        select(
            Report.id, Member.id, ReportStreet.street_id, Member.phone, Member.alerts,
            case((Report.redacted_at.is_(None), literal("Street Watch R") + cast(Report.id, String) + literal(": ") + Report.text), else_=literal("")),
            Report.urgent,
            case((roll < 2, literal("undelivered")), (roll < 3, literal("failed")), (roll < 5, literal("cancelled")), else_=literal("delivered")),
            literal(1), Report.created_at, literal(False),
            case((roll < 5, None), else_=literal("SM") + cast(Report.id, String) + literal("x") + cast(Member.id, String)),
            Report.created_at, Report.created_at, Report.created_at,
        )
        .select_from(Report)
        .join(ReportStreet, ReportStreet.report_id == Report.id)
        .join(Membership, (Membership.street_id == ReportStreet.street_id) & (Membership.status == "active"))
        .join(Member, Member.id == Membership.member_id)
        .where(Report.state == "sent", Member.id != Report.member_id, Report.created_at >= since)
    )
    columns = ["report_id", "member_id", "street_id", "phone", "channel", "body", "urgent", "state", "attempts",
               "next_attempt_at", "needs_lookup", "sid", "created_at", "updated_at", "sent_at"]
    statement = insert(Delivery).from_select(columns, rows).execution_options(preserve_rowcount=True)
    return c.execute(statement).rowcount


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--streets", type=int, default=Size.streets)
    parser.add_argument("--members", type=int, default=Size.members)
    parser.add_argument("--reports", type=int, default=Size.reports)
    parser.add_argument("--delivery-days", type=int, default=Size.delivery_days, help="broadcast reports of the last N days get deliveries")
    args = parser.parse_args(argv)
    from hotline import create_app
    from hotline.db import make_engine

    engine = make_engine(args.database_url)
    reset(engine)
    app = create_app(instance_path=tempfile.mkdtemp(prefix="bench-seed-"), environ={"HOTLINE_DATABASE_URL": args.database_url, "HOTLINE_SECRET_KEY": "bench"})
    app.extensions["hotline"].engine.dispose()
    seeded = seed(engine, Size(args.streets, args.members, args.reports, args.delivery_days))
    print(f"seeded {args.streets:,} streets, {args.members:,} members, {args.reports:,} reports, {seeded.deliveries:,} deliveries"
          f" in {seeded.seconds:.0f} s; log in as {ADMIN} or {COORDINATOR}, password {PASSWORD!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

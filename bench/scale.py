"""Scale: the coordinators' log and the dispatcher on a big database, served by the real processes.

    python -m bench.scale --database-url postgresql+psycopg://…   # full: 2,000 streets, 100,000 members, 200,000 reports
    python -m bench.scale --smoke                                  # CI-sized, seconds (SQLite unless --database-url)
    python -m bench.scale --database-url … --no-seed               # measure again what an earlier run seeded
    python -m bench.scale --database-url … --no-seed --parts summary   # the meeting pack alone

It seeds (bench/seed.py), starts `hotline web` (gunicorn, 2 workers) and `hotline worker` pointed at the
Twilio stand-in, logs in over HTTP as the admin and as a street coordinator and times each page with
sequential requests (the meeting pack too, a year of it); exports the CSV of a small and a large filter while watching the serving workers'
peak RSS (reset through /proc/PID/clear_refs before each export); then sends one report to a street of
--recipients neighbours and watches the worker's RSS until the stand-in has accepted every message.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import requests
from sqlalchemy import func, select, text

from bench import seed as seeding
from bench.broadcast import broadcast
from bench.memory import peak_growth, reset_peaks, rss_mb, workers_of

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.standin: the Twilio stand-in and the process helpers

from tests.standin.processes import Hotline  # noqa: E402
from tests.standin.twilio import TwilioStandIn  # noqa: E402

WORD = "van"  # in about one sighting in four
PARTS = ["pages", "summary", "exports", "broadcast"]  # summary: the meeting pack alone (pages include it)
SUMMARY = "meeting pack (/summary), a year"


@dataclass
class Timing:
    """Latencies (ms) of one kind of request, every run pooled; `p95s` holds each run's own p95."""

    name: str
    role: str
    samples: list[float] = field(default_factory=list)
    p95s: list[float] = field(default_factory=list)
    failures: int = 0

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        return statistics.median(self.p95s)


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]


def login(base: str, email: str) -> requests.Session:
    web = requests.Session()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', web.get(base + "/login").text).group(1)
    answer = web.post(base + "/login", data={"email": email, "password": seeding.PASSWORD, "csrf_token": token}, allow_redirects=False)
    assert answer.status_code == 302, f"login as {email} failed: {answer.status_code}"
    return web


def time_pages(web: requests.Session, base: str, timing: Timing, paths: list[str], *, runs: int, requests_per_run: int, marker: str) -> Timing:
    for path in paths[:2]:
        web.get(base + path)  # warm-up: templates compiled, connections in the pool
    for _ in range(runs):
        run = []
        for n in range(requests_per_run):
            started = time.perf_counter()
            answer = web.get(base + paths[n % len(paths)])
            run.append((time.perf_counter() - started) * 1000)
            timing.failures += answer.status_code != 200 or marker not in answer.text
        timing.samples += run
        timing.p95s.append(p95(run))
    return timing


def facts(engine) -> dict:
    """What the pages are asked for: the coordinator's streets, a busy street, reports to open."""
    from hotline.models import CoordinatorStreet, Report, ReportStreet

    with engine.connect() as c:
        mine = list(c.execute(select(CoordinatorStreet.street_id).where(CoordinatorStreet.coordinator_id == 2)).scalars())
        busiest = c.execute(select(ReportStreet.street_id).group_by(ReportStreet.street_id).order_by(func.count().desc()).limit(1)).scalar()
        sent = select(Report.id).where(Report.state == "sent").order_by(Report.created_at.desc()).limit(200)
        everyone = list(c.execute(sent).scalars())
        theirs = list(c.execute(sent.join(ReportStreet, ReportStreet.report_id == Report.id).where(ReportStreet.street_id.in_(mine))).scalars())
    return {"mine": mine, "busiest": busiest, "reports": everyone, "their_reports": theirs}


def measure_pages(base: str, known: dict, args, today) -> list[Timing]:
    since = (today - timedelta(days=90)).isoformat()
    rng = random.Random(3)
    timings = []
    only_summary = "pages" not in args.parts
    for role, email, street, reports in (
        ("admin", seeding.ADMIN, known["busiest"], known["reports"]),
        ("street coordinator", seeding.COORDINATOR, known["mine"][0], known["their_reports"]),
    ):
        web = login(base, email)
        filtered = f"/?street={street}&from={since}&to={today.isoformat()}&q={WORD}"
        opened = [f"/reports/{i}" for i in rng.sample(reports, min(len(reports), 50))]
        for name, paths, marker in () if only_summary else (
            ("log, first page", ["/"], 'class="log"'),
            ("log, refresh (every 5 s per open page)", ["/log/rows"], 'class="log"'),
            ("log, filtered: street + 90 days + word", [filtered], 'class="log"'),
            ("report page", opened, "Deliveries"),
        ):
            timings.append(time_pages(web, base, Timing(name, role), paths, runs=args.runs, requests_per_run=args.requests, marker=marker))
        if role != "admin" and not only_summary:  # their whole log: a coordinator's export is small; the admin's is measured for memory below
            timings.append(time_pages(web, base, Timing("CSV export, all their reports", role), ["/log.csv"], runs=args.runs,
                                      requests_per_run=max(2, args.requests // 5), marker="ref,time"))
        # The meeting pack: the whole scheme (or all their streets) for a year, each figure a GROUP BY over that year
        year = f"/summary?from={(today - timedelta(days=364)).isoformat()}&to={today.isoformat()}"
        timings.append(time_pages(web, base, Timing(SUMMARY, role), [year], runs=args.runs,
                                  requests_per_run=max(2, args.requests // 5), marker='id="weekly"'))
        for t in timings[-6:]:
            if t.role == role:
                print(f"{role:>18} | {t.name:<42} p50 {t.p50:7.1f} ms  p95 {t.p95:7.1f} ms  failures {t.failures}", flush=True)
    return timings


def _from_for(engine, rows: int, zone):
    """The local date whose `from` filter keeps about `rows` reports (whole days, so a few fewer)."""
    from hotline.models import Report

    with engine.connect() as c:
        moment = c.execute(select(Report.created_at).order_by(Report.created_at.desc()).offset(rows - 1).limit(1)).scalar()
    return None if moment is None else moment.astimezone(zone).date() + timedelta(days=1)


def measure_exports(base: str, engine, web_pid: int, sizes: list[int], args) -> list[dict]:
    """The admin's CSV of ~sizes[i] rows, streamed and counted, with the serving workers' peak RSS growth."""
    from sqlmodel import Session

    from hotline.reports import logbook
    from hotline.residents.streets import Scope

    zone = args.zone
    web = login(base, seeding.ADMIN)
    results = []
    for target in sizes:
        since = _from_for(engine, target, zone)
        query = f"?from={since.isoformat()}" if since else ""
        with Session(engine) as session:
            expected = logbook.count(session, logbook.LogFilter(since=since), Scope(None), zone)
        for _ in range(args.export_runs):
            workers = workers_of(web_pid)
            before = {pid: rss_mb(pid) for pid in workers}
            reset_peaks(workers)
            started = time.perf_counter()
            lines = size = 0
            try:
                with web.get(base + "/log.csv" + query, stream=True) as answer:
                    for chunk in answer.iter_content(64 * 1024):
                        lines += chunk.count(b"\n")
                        size += len(chunk)
                status = answer.status_code
            except requests.RequestException as exc:  # e.g. gunicorn killed the worker at its timeout, mid-stream
                status = type(exc).__name__
            seconds = time.perf_counter() - started
            growth = peak_growth(before)
            results.append({"target": target, "rows": lines - 1, "expected": expected, "seconds": seconds, "mb": size / 1e6,
                            "growth": growth, "status": status, "rss": max(before.values())})
            print(f"export ~{target:>7,}: {lines - 1:>7,} rows (expected {expected:,}) {size / 1e6:6.1f} MB in {seconds:5.1f} s;"
                  f" serving worker peak RSS +{growth:.1f} MB{'' if status == 200 else f'; {status}'}", flush=True)
    return results


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url")
    parser.add_argument("--no-seed", action="store_true", help="measure what an earlier run seeded")
    parser.add_argument("--streets", type=int, default=seeding.Size.streets)
    parser.add_argument("--members", type=int, default=seeding.Size.members)
    parser.add_argument("--reports", type=int, default=seeding.Size.reports)
    parser.add_argument("--delivery-days", type=int, default=seeding.Size.delivery_days)
    parser.add_argument("--runs", type=int, default=5, help="runs of each page measurement (medians reported)")
    parser.add_argument("--requests", type=int, default=40, help="sequential requests a run")
    parser.add_argument("--exports", type=int, nargs="+", default=[10_000, 100_000, 200_000], help="rows of the admin's exports (the last: the whole log)")
    parser.add_argument("--export-runs", type=int, default=3)
    parser.add_argument("--recipients", type=int, default=5_000)
    parser.add_argument("--send-rate", type=float, default=100)
    parser.add_argument("--api-latency", type=float, default=0.15, help="seconds the stand-in takes to answer a send")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=PARTS, help="what to measure (default: all)")
    parser.add_argument("--smoke", action="store_true", help="CI-sized: seconds, not minutes")
    args = parser.parse_args(argv)
    if args.smoke:
        args.streets, args.members, args.reports, args.delivery_days = 20, 600, 1_000, 90
        args.runs, args.requests, args.exports, args.export_runs = 1, 4, [100, 1_000], 1
        args.recipients, args.send_rate, args.api_latency = 510, 500, 0.02  # over fanout.INLINE_LIMIT: the worker writes them
    args.settle = 0.5 if args.smoke else 2.0  # seconds the worker idles before its baseline RSS is read
    return args


def main(argv=None) -> int:
    args = parse(argv)
    load = os.getloadavg()[0]
    results = run(args)
    print(f"\n{os.cpu_count()} cores; load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (other work shares the machine)")
    print_table(results, args)
    return 0 if results["ok"] else 1


def run(args) -> dict:
    """Seed, serve, measure; returns every figure (the smoke test reads them)."""
    from zoneinfo import ZoneInfo

    from hotline.db import make_engine, utcnow

    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'scale.db'}"
    engine = make_engine(database_url)
    args.zone = ZoneInfo("Europe/London")
    seeded = None
    if args.no_seed:
        print(f"not seeded: measuring what is there ({_rows(engine)})", flush=True)
    else:
        seeding.reset(engine)
    standin = TwilioStandIn("AC" + "5" * 32, "bench-scale-token", status_callbacks=False, latency=args.api_latency).start()
    hotline = Hotline(workdir, database_url=database_url, standin=standin, HOTLINE_SEND_RATE=str(args.send_rate))
    try:
        hotline.run("db", "upgrade")
        if not args.no_seed:
            size = seeding.Size(args.streets, args.members, args.reports, args.delivery_days)
            seeded = seeding.seed(engine, size)
            print(f"seeded {size.streets:,} streets, {size.members:,} members, {size.reports:,} reports,"
                  f" {seeded.deliveries:,} deliveries in {seeded.seconds:.0f} s", flush=True)
        web = hotline.start_web(workers=2)
        today = utcnow().astimezone(args.zone).date()
        pages = measure_pages(hotline.public_url, facts(engine), args, today) if {"pages", "summary"} & set(args.parts) else []
        exports = measure_exports(hotline.public_url, engine, web.pid, args.exports, args) if "exports" in args.parts else []
        sent = broadcast(hotline, engine, standin, args) if "broadcast" in args.parts else None
    finally:
        hotline.stop()
        standin.stop()
        engine.dispose()
        shutil.rmtree(workdir, ignore_errors=True)
    ok = (not any(t.failures for t in pages) and all(e["status"] == 200 and e["rows"] == e["expected"] for e in exports)
          and (sent is None or sent["accepted"] == sent["unique"] == args.recipients))
    return {"pages": pages, "exports": exports, "broadcast": sent, "seeded": seeded, "ok": ok}


def _rows(engine) -> str:
    """What an earlier seed left (--no-seed reuses a database seeded once: the full seed takes ~15 minutes)."""
    from sqlalchemy import inspect

    if "report" not in inspect(engine).get_table_names():
        return "an empty database: run once without --no-seed"
    with engine.connect() as c:
        names = {"street": "streets", "member": "members", "report": "reports", "delivery": "deliveries"}
        return ", ".join(f"{c.execute(select(func.count()).select_from(text(t))).scalar():,} {n}" for t, n in names.items())


def print_table(results: dict, args) -> None:
    if results["pages"]:
        print_pages(results["pages"])
    if results["exports"]:
        print_exports(results["exports"], args)
    if results["broadcast"]:
        print_broadcast(results["broadcast"], args)


def print_pages(pages: list[Timing]) -> None:
    print("\n| page | as | p50 ms | p95 ms | target |")
    print("|---|---|---:|---:|---|")
    for t in pages:
        limit = 150 if t.name.startswith("log") else 2000 if t.name == SUMMARY else None
        target = f"p95 < {limit:,} ms" if limit else ""
        mark = (" ✓" if t.p95 < limit else " ✗") if limit else ""
        print(f"| {t.name} | {t.role} | {t.p50:.0f} | {t.p95:.0f} | {target}{mark} |")


def print_exports(exports: list[dict], args) -> None:
    print("\n| admin's CSV export | rows | seconds | MB | serving worker's RSS before | its peak RSS growth |")
    print("|---|---:|---:|---:|---:|---:|")
    for target in args.exports:
        mine = [e for e in exports if e["target"] == target]
        short = [e for e in mine if e["rows"] != e["expected"] or e["status"] != 200]
        rows = f"{mine[0]['rows']:,}" + (f" ✗ {len(short)} of {len(mine)} cut short (of {mine[0]['expected']:,})" if short else "")
        print(f"| ~{target:,} rows | {rows} | {statistics.median(e['seconds'] for e in mine):.1f} |"
              f" {mine[0]['mb']:.1f} | {statistics.median(e['rss'] for e in mine):.0f} MB | {statistics.median(e['growth'] for e in mine):.1f} MB |")


def print_broadcast(b: dict, args) -> None:
    print(f"\n| broadcast | recipients | accepted (each once) | seconds | ideal at {args.send_rate:g}/s | worker RSS before | peak growth |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| one report, one street | {args.recipients:,} | {b['unique']:,} | {b['seconds']:.1f} | {args.recipients / args.send_rate:.1f} |"
          f" {b['baseline']:.0f} MB | {b['growth']:.1f} MB {'✓' if b['growth'] < 50 else '✗'} |")
    if b.get("report_page_ms"):
        print(f"\nThat report's page ({args.recipients:,} deliveries listed), as the admin: median {b['report_page_ms']:.0f} ms")


if __name__ == "__main__":
    sys.exit(main())

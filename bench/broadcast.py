"""The dispatcher's memory on a big broadcast: one report to a street of N members, sent by a real
`hotline worker` to the Twilio stand-in, the worker's RSS watched from its idle start to the last send."""

from __future__ import annotations

import time

from sqlalchemy import insert, select

from bench.memory import Sampler, peak_mb, reset_peaks, rss_mb


def big_street(engine, members: int) -> list[str]:
    """A street of `members` active SMS members (new numbers); returns their numbers."""
    from hotline.db import utcnow
    from hotline.models import Member, Membership, Street

    now = utcnow()
    numbers = [f"+4478{n:08d}" for n in range(members)]
    with engine.begin() as c:
        if c.execute(select(Street.id).where(Street.name == "Broadcast Close")).scalar():  # an earlier run's (--no-seed)
            return numbers
        street_id = c.execute(insert(Street).values(name="Broadcast Close", code=99_999, aliases=[], postcodes=[], open=False,
                                                    moderated=False, created_at=now).returning(Street.id)).scalar()
        c.execute(insert(Member), [{"phone": p, "alerts": "sms", "created_at": now} for p in numbers])
        ids = c.execute(select(Member.id).where(Member.phone.in_(numbers))).scalars().all()
        c.execute(insert(Membership), [{"member_id": i, "street_id": street_id, "status": "active", "joined_at": now} for i in ids])
    return numbers


def broadcast(hotline, engine, standin, args) -> dict:
    """Post one signed report from the street's first member; wait until each of the `args.recipients` neighbours' SMS is accepted."""
    numbers = big_street(engine, args.recipients + 1)  # the reporter and their neighbours
    worker = hotline.start_worker()
    worker.wait_for("hotline worker sending at")
    time.sleep(args.settle)  # let start-up settle (scheduler's first jobs, the dispatcher's first idle polls)
    baseline = rss_mb(worker.pid)
    reset_peaks([worker.pid])
    wanted = args.recipients
    timeout = 60 + 3 * wanted / args.send_rate
    with Sampler(worker.pid) as sampler:
        started = time.perf_counter()
        stamp = f"{time.time_ns():032d}"  # a new MessageSid and text each run: a repeat would be a retry or a duplicate
        status, _ = hotline.sms(numbers[0], f"man trying car door handles on every car, red hoodie ({stamp[-6:]})", "SM" + stamp)
        assert status == 200, status
        while len(standin.messages) < wanted and time.perf_counter() - started < timeout:
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        time.sleep(min(1.0, args.settle))  # the last sends' records are committed after the stand-in answers
    growth = peak_mb(worker.pid) - baseline
    worker.stop()
    accepted = [m["to"] for m in standin.messages]
    report_ms = _report_page_ms(hotline.public_url, engine)
    print(f"broadcast: {len(set(accepted)):,} of {wanted:,} accepted in {seconds:.1f} s; worker RSS {baseline:.0f} MB,"
          f" peak +{growth:.1f} MB (sampled max +{max(sampler.values) - baseline:.1f} MB); {worker.output.splitlines()[-1]}", flush=True)
    return {"accepted": len(accepted), "unique": len(set(accepted)), "seconds": seconds, "baseline": baseline, "growth": growth,
            "report_page_ms": report_ms}


def _report_page_ms(base: str, engine) -> float:
    """The broadcast's own page, every recipient listed, as the admin (median of three)."""
    from bench.scale import login
    from bench.seed import ADMIN
    from hotline.models import Report

    with engine.connect() as c:
        report_id = c.execute(select(Report.id).order_by(Report.id.desc()).limit(1)).scalar()
    web = login(base, ADMIN)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        assert web.get(f"{base}/reports/{report_id}").status_code == 200
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)[1]

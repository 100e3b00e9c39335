"""Fan-out: from a report's webhook to the last neighbour's accepted message, against the send rate.

    python -m bench.fanout                 # 500-member street, API answering after 150 ms, rate 100; then rate 1
    python -m bench.fanout --smoke         # CI-sized: 60 members at rate 50, then 4 at rate 1
    python -m bench.fanout --database-url postgresql+psycopg://…

Real processes: `hotline web` (gunicorn) and `hotline worker`, with the Twilio stand-in of
tests/standin/ in this process, so the webhook's start and each request's arrival share one clock.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, NUMBERS, _fresh
from tests.standin.processes import Hotline, wait_until
from tests.standin.twilio import TwilioStandIn


def max_in_any_window(stamps: list[float], width: float = 1.0) -> int:
    stamps = sorted(stamps)
    return max((sum(1 for t in stamps if start <= t < start + width) for start in stamps), default=0)


def one_run(*, members: int, rate: float, latency: float, database_url: str | None, run: int) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-fanout-{members}-{run}-"))
    url = database_url or f"sqlite:///{workdir / 'bench.db'}"
    _fresh(url)
    standin = TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN, status_callbacks=False, latency=latency).start()
    hotline = Hotline(workdir, database_url=url, standin=standin, HOTLINE_SEND_RATE=str(rate))
    try:
        hotline.run("street", "add", "Clayhall Avenue", "--code", "101")
        numbers = NUMBERS[:members]
        (workdir / "members.csv").write_text("phone,street\n" + "".join(f"{n},Clayhall Avenue\n" for n in numbers))
        hotline.run("member", "import", str(workdir / "members.csv"))
        hotline.start_web(workers=2)
        worker = hotline.start_worker()
        worker.wait_for("hotline worker sending")
        for n in range(4):  # warm both gunicorn workers (imports, first connection) before the clock starts
            hotline.sms(numbers[-1], "HELP", f"SMwarm{run:04d}{n:024d}")
        started = time.monotonic()
        status, body = hotline.sms(numbers[0], "man trying car door handles, red hoodie", f"SM{run:032d}")
        answered = time.monotonic()
        assert status == 200 and f"sent to {members - 1} neighbour".encode() in body, body
        assert wait_until(lambda: len(standin.messages) >= members - 1, timeout=(members / rate) * 3 + 30, interval=0.02)
        posts = sorted(r.at for r in standin.posts())
        last = posts[members - 2] + latency  # accepted: the stand-in answers `latency` after the request arrives
        time.sleep(min(2.0, 2 / rate + latency))  # anything extra (a duplicate) would show up now
        seconds = last - started
        ideal = (members - 1) / rate
        return {
            "members": members, "rate": rate, "latency_ms": latency * 1000, "webhook_ms": (answered - started) * 1000,
            "seconds": seconds, "ideal": ideal, "achieved": (members - 1) / seconds, "share": ideal / seconds,
            "max_per_second": max_in_any_window([r.at for r in standin.posts()]),
            "sent": len(standin.messages), "distinct": len({m["to"] for m in standin.messages}),
        }
    finally:
        hotline.stop()
        standin.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--members", type=int, help="one street of this size only (with --rate and --latency)")
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--latency", type=float, default=0.15, help="seconds the stand-in API takes to answer")
    args = parser.parse_args(argv)
    plans = [(500, 100, 0.15, args.runs), (21, 1, 0.15, 1), (101, 10, 0.15, 1)]
    if args.smoke:
        plans = [(60, 50, 0.15, 1), (4, 1, 0.15, 1)]
    elif args.members:
        plans = [(args.members, args.rate, args.latency, args.runs)]
    rows = []
    for members, rate, latency, runs in plans:
        for run in range(runs):
            row = one_run(members=members, rate=rate, latency=latency, database_url=args.database_url, run=run)
            rows.append(row)
            print(f"{members} members at {rate}/s: {row['seconds']:.2f} s for {members - 1} (ideal {row['ideal']:.2f} s,"
                  f" {row['share']:.0%} of the rate), webhook {row['webhook_ms']:.0f} ms, most in one second {row['max_per_second']},"
                  f" sent {row['sent']} to {row['distinct']} numbers", flush=True)
    print("\n| members | rate /s | API latency | webhook ms | seconds to last | ideal s | share of rate | most in any 1 s | duplicates |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    failed = False
    for members, rate, latency, _ in plans:
        mine = [r for r in rows if r["members"] == members and r["rate"] == rate]
        med = lambda key: statistics.median(r[key] for r in mine)  # noqa: E731
        dupes = sum(r["sent"] - r["distinct"] for r in mine)
        print(f"| {members} | {rate:g} | {latency * 1000:.0f} ms | {med('webhook_ms'):.0f} | {med('seconds'):.2f} | {med('ideal'):.2f} |"
              f" {med('share'):.0%} | {max(r['max_per_second'] for r in mine)} | {dupes} |")
        failed |= dupes > 0 or max(r["max_per_second"] for r in mine) > rate + (0 if rate == 1 else 1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

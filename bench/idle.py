"""What the hotline costs when nothing happens, and what a command costs to start.

    .venv/bin/python -m bench.idle               # `hotline serve` idle: CPU over 30 s, three runs; `hotline --help`
    .venv/bin/python -m bench.idle --smoke       # 3 s, one run (the test suite runs this)

CPU is read from /proc/PID/stat (user + system ticks) of the serving process after it has started and
settled; start-up is the wall time of `hotline --help` against `python -c "import flask, sqlalchemy"`,
the median of several runs; the CPU of the dispatcher's claim when nothing is due (what its safety poll runs)
is read in this process. Linux only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.standin.processes import free_port

HOTLINE = str(Path(sys.executable).parent / "hotline")
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def idle_cpu(seconds: float, settle: float = 8.0) -> float:
    """Fraction of one core `hotline serve` uses while nothing happens (a fresh SQLite database)."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    environ = {**os.environ, "HOTLINE_DATABASE_URL": f"sqlite:///{workdir / 'idle.db'}", "HOTLINE_SECRET_KEY": "bench"}
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        environ.pop(name, None)
    process = subprocess.Popen([HOTLINE, "serve", "--port", str(free_port())], cwd=workdir, env=environ,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(settle)  # migrations, the scheduler's first look, the dispatcher's first tick
        before = _cpu_seconds(process.pid)
        time.sleep(seconds)
        return (_cpu_seconds(process.pid) - before) / seconds
    finally:
        process.terminate()
        process.wait(10)


def empty_claim_ms(claims: int, runs: int) -> list[float]:
    """CPU of one claim that finds nothing due (what the dispatcher's safety poll runs, per channel, every second),
    in this process on a fresh SQLite database: a session, the claim, its commit. Medians per run of `claims`."""
    from sqlmodel import Session

    from hotline import create_app
    from hotline.db import make_engine, utcnow
    from hotline.delivery.outbox import claim_batch

    workdir = Path(tempfile.mkdtemp(prefix="bench-claim-"))
    url = f"sqlite:///{workdir / 'claim.db'}"
    create_app(instance_path=workdir / "instance", environ={"HOTLINE_DATABASE_URL": url, "HOTLINE_SECRET_KEY": "bench"})
    engine = make_engine(url)
    per_run = []
    try:
        for _ in range(runs):
            started = time.process_time()
            for _ in range(claims):
                with Session(engine) as session:
                    claim_batch(session=session, limit=200, now=utcnow(), lease_seconds=30, channel="sms")
            per_run.append((time.process_time() - started) / claims * 1000)
    finally:
        engine.dispose()
    return per_run


def wall(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a short run, for the test suite")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    seconds, runs, starts = (3.0, 1, 3) if args.smoke else (args.seconds, args.runs, 9)
    shares = [idle_cpu(seconds, settle=4.0 if args.smoke else 8.0) for _ in range(runs)]
    help_s = wall([HOTLINE, "--help"], starts)
    imports_s = wall([sys.executable, "-c", "import flask, sqlalchemy"], starts)
    claim = empty_claim_ms(50 if args.smoke else 500, 1 if args.smoke else 5)
    print("| measure | median | runs |")
    print("|---|---|---|")
    print(f"| `hotline serve` idle, share of one core over {seconds:.0f} s | {statistics.median(shares) * 100:.2f} % "
          f"({min(shares) * 100:.2f}–{max(shares) * 100:.2f}) | {runs} |")
    print(f"| `hotline --help` | {help_s:.2f} s | {starts} |")
    print(f"| `python -c 'import flask, sqlalchemy'` | {imports_s:.2f} s (ratio {help_s / imports_s:.2f}) | {starts} |")
    print(f"| the dispatcher's claim finding nothing due, CPU in process | {statistics.median(claim):.2f} ms "
          f"({min(claim):.2f}–{max(claim):.2f}) | {len(claim)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the hotline costs when nothing happens, and what a command costs to start.

    .venv/bin/python -m bench.idle               # `hotline serve` idle: CPU over 30 s, three runs; `hotline --help`
    .venv/bin/python -m bench.idle --smoke       # 3 s, one run (the test suite runs this)

CPU is read from /proc/PID/stat (user + system ticks) of the serving process after it has started and
settled; start-up is the wall time of `hotline --help` against `python -c "import flask, sqlalchemy"`,
the median of several runs. Linux only.
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
    print("| measure | median | runs |")
    print("|---|---|---|")
    print(f"| `hotline serve` idle, share of one core over {seconds:.0f} s | {statistics.median(shares) * 100:.2f} % "
          f"({min(shares) * 100:.2f}–{max(shares) * 100:.2f}) | {runs} |")
    print(f"| `hotline --help` | {help_s:.2f} s | {starts} |")
    print(f"| `python -c 'import flask, sqlalchemy'` | {imports_s:.2f} s (ratio {help_s / imports_s:.2f}) | {starts} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

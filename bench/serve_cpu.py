"""CPU of `hotline serve` per fanned-out message: one report to a street, its sends, their status callbacks.

    python -m bench.serve_cpu                       # 500 members at 100/s, 150 ms stand-in, 3 runs
    python -m bench.serve_cpu --profile out.json    # the same, once, with py-spy (--gil: only the thread holding
                                                    # the GIL, i.e. where Python's CPU goes) recording the serve process
    python -m bench.serve_cpu --cprofile out.pstats # once, every thread of the serve process under cProfile

The process's user + system CPU (from /proc/PID/stat) is read just before the report's webhook and again once every
send has been answered and every status callback applied (each delivery `delivered`); the difference, less the
same process's CPU over an idle second measured before (its scheduler and checkpointer), divided by the messages
sent. CPU time, not wall time: a busy machine moves it far less than it moves the fan-out's seconds.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.fanout import delivered, one_street
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, _fresh
from tests.standin.processes import Hotline, wait_until
from tests.standin.twilio import TwilioStandIn

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    user, system = cpu_split(pid)
    return user + system


def cpu_split(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK  # utime, stime


def switches(pid: int) -> int:
    """Context switches of all the process's threads (voluntary and not)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (task / "status").read_text().splitlines():
                if line.endswith("ctxt_switches:") or "ctxt_switches:" in line:
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def one_run(*, members: int, rate: float, latency: float, run: int, profile: str | None = None,
            cprofile: str | None = None) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-servecpu-{run}-"))
    url = f"sqlite:///{workdir / 'bench.db'}"
    _fresh(url)
    standin = TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN, latency=latency, callback_workers=64).start()
    hotline = Hotline(workdir, database_url=url, standin=standin, HOTLINE_SEND_RATE=str(rate))
    spy = None
    try:
        numbers = one_street(hotline, workdir, members)
        if cprofile:  # every thread of `hotline serve` under cProfile from the webhook to the last callback (slower: not the figure)
            hotline.environ["SERVECPU_PROFILE"] = str(Path(cprofile).resolve())
            hotline.environ["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(Path(__file__).parent / "profile_site"), os.environ.get("PYTHONPATH")]))
        pid = hotline.start_serve().pid
        for n in range(4):
            hotline.sms(numbers[-1], "HELP", f"SMwarm{run:04d}{n:024d}")
        time.sleep(1.0)
        idle_from = cpu_seconds(pid)
        time.sleep(2.0)
        idle = (cpu_seconds(pid) - idle_from) / 2.0  # CPU seconds a second with nothing to do
        if profile:
            spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--gil", "-r", "1000", "-o", profile,
                                    "--format", "speedscope", "--pid", str(pid)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
            time.sleep(1.0)
        before_messages = len(standin.messages)
        if cprofile:
            os.kill(pid, signal.SIGUSR1)
            time.sleep(0.2)
        start_split, start_switches = cpu_split(pid), switches(pid)
        start_cpu, started = cpu_seconds(pid), time.monotonic()
        status, body = hotline.sms(numbers[0], "man trying car door handles, red hoodie", f"SM{run:032d}")
        assert status == 200, body
        assert wait_until(lambda: len(standin.messages) - before_messages >= members - 1, timeout=members / rate * 3 + 30, interval=0.02)
        assert wait_until(lambda: len(standin.callback_results) >= 2 * len(standin.messages), timeout=60, interval=0.05)
        assert wait_until(lambda: delivered(url) >= members - 1, timeout=30, interval=0.2)
        cpu, seconds = cpu_seconds(pid) - start_cpu, time.monotonic() - started
        system = cpu_split(pid)[1] - start_split[1]
        switched = switches(pid) - start_switches  # threads that ended meanwhile are not counted
        if cprofile:
            os.kill(pid, signal.SIGUSR2)
            assert wait_until(lambda: Path(str(cprofile) + ".done").exists(), timeout=60)
        if spy is not None:
            spy.send_signal(2)
            spy.wait(60)
        sent = len(standin.messages) - before_messages
        net = cpu - idle * seconds
        early = sum(line.count("kept until its send is recorded") for p in hotline.processes for line in p.lines)
        return {"sent": sent, "early": early, "system": system, "switches": switched, "cpu": cpu, "seconds": seconds, "idle": idle, "ms_per_message": 1000 * net / sent,
                "errors": len(standin.callback_errors)}
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
        hotline.stop()
        standin.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--latency", type=float, default=0.15)
    parser.add_argument("--profile", help="record the (single) run with py-spy into this speedscope file")
    parser.add_argument("--cprofile", help="one run with every thread of the serve process under cProfile: pstats to this file")
    args = parser.parse_args(argv)
    runs = 1 if args.profile or args.cprofile else args.runs
    rows = []
    for run in range(runs):
        row = one_run(members=args.members, rate=args.rate, latency=args.latency, run=run, profile=args.profile,
                     cprofile=args.cprofile)
        rows.append(row)
        print(f"run {run}: {row['sent']} messages, {row['cpu']:.2f} s CPU in {row['seconds']:.2f} s (idle {row['idle'] * 1000:.0f} ms/s),"
              f" {row['ms_per_message']:.2f} ms CPU a message"
              f" ({row['system'] / row['sent'] * 1000:.2f} of it system), {row['switches'] / row['sent']:.0f} context switches a message, {row['errors']} callbacks not 2xx,"
              f" {row['early']} before their send was recorded", flush=True)
    per = [r["ms_per_message"] for r in rows]
    print(f"median {statistics.median(per):.2f} ms of CPU a message ({', '.join(f'{p:.2f}' for p in per)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Webhook throughput and latency: the real app under gunicorn against bare Flask (the ceiling).

    python -m bench.webhook                      # full run: streets of 10, 1,000, 10,000; 5 runs of 10 s
    python -m bench.webhook --smoke              # CI-sized: one street of 10, 1 run of 2 s
    python -m bench.webhook --database-url postgresql+psycopg://…
    python -m bench.webhook --in-process 400 --runs 3   # CPU and SQL statements per report, test client, SQLite

Each run measures the ceiling and the app back to back with the same wrk script (signed inbound SMS
reports from members of the street, every MessageSid new), so each ratio compares like with like
on a noisy machine. Only the web side runs: the dispatcher would share the same two cores.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from bench.ceiling import create_inbox
from tests.standin.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL = "AC" + "b" * 32, "bench-token", "https://bench.example.org"


def app_environ(database_url: str) -> dict:
    return {
        **os.environ,
        "HOTLINE_DATABASE_URL": database_url,
        "HOTLINE_SECRET_KEY": "bench",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "HOTLINE_FROM_NUMBER": "+447400123456",
        "HOTLINE_PUBLIC_URL": PUBLIC_URL,
        # the benchmark sends thousands of reports from a few members: lift the abuse caps
        "HOTLINE_REPORTS_PER_HOUR": "10000000",
        "HOTLINE_REPORTS_PER_DAY": "10000000",
        "HOTLINE_REPLIES_PER_HOUR": "10000000",
    }


def seed(workdir: Path, environ: dict, size: int) -> list[str]:
    """A fresh schema and one street of `size` active SMS members; returns their numbers."""
    from sqlalchemy import insert
    from sqlmodel import Session, SQLModel

    from hotline import create_app
    from hotline.models import Member, Membership, Street

    app = create_app(instance_path=workdir / "instance", environ=environ)
    engine = app.extensions["hotline"].engine
    SQLModel.metadata.drop_all(engine)
    SQLModel.metadata.create_all(engine)
    numbers = [f"+4479{n:08d}" for n in range(10_000_000, 10_000_000 + size)]
    with Session(engine) as session:
        session.add(Street(name="Clayhall Avenue", code=101))
        session.commit()
        session.execute(insert(Member), [{"phone": p, "alerts": "sms"} for p in numbers])
        session.execute(insert(Membership), [{"member_id": i + 1, "street_id": 1, "status": "active"} for i in range(size)])
        session.commit()
    engine.dispose()
    return numbers


def lua_script(path: Path, numbers: list[str], count: int, run: int, target: str = "/twilio/sms") -> None:
    """`count` signed requests; wrk threads take interleaved slices so no MessageSid repeats."""
    validator = RequestValidator(AUTH_TOKEN)
    bodies, signatures = [], []
    for n in range(count):
        form = {
            "AccountSid": ACCOUNT_SID, "MessageSid": f"SM{run:04d}{n:028d}", "From": random.choice(numbers),
            "To": "+447400123456", "Body": f"sighting {run}-{n}: man trying car door handles, red hoodie", "NumMedia": "0",
        }
        bodies.append(urlencode(form))
        signatures.append(validator.compute_signature(PUBLIC_URL + "/twilio/sms", form))
    quote = lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'  # noqa: E731
    path.write_text(
        "local bodies = {" + ",".join(map(quote, bodies)) + "}\n"
        "local sigs = {" + ",".join(map(quote, signatures)) + "}\n"
        f"PATH = '{target}'\n"
        "local counter = 0\n"
        "function setup(thread) thread:set('tid', counter); counter = counter + 1 end\n"
        "function init(args) idx = tid end\n"
        "function request()\n"
        "  local k = (idx % #bodies) + 1\n"
        "  idx = idx + 2\n"
        "  return wrk.format('POST', PATH, {['Content-Type'] = 'application/x-www-form-urlencoded',"
        " ['X-Twilio-Signature'] = sigs[k]}, bodies[k])\n"
        "end\n"
    )


def start_gunicorn(target: str, environ: dict, workdir: Path, workers: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}", "--log-level", "warning", target],
        cwd=workdir, env={**environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/twilio/sms", data=b"", timeout=1)
        except urllib.error.HTTPError:
            return process, port  # any HTTP answer means it is up
        except OSError:
            time.sleep(0.2)
            continue
        return process, port
    process.kill()
    raise RuntimeError(f"gunicorn {target} did not start")


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(port: int, script: Path, seconds: float, connections: int) -> dict:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script), f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, check=True,
    ).stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": _ms(latency["50"]), "p99": _ms(latency["99"]),
        "non2xx": int(errors.group(1)) if errors else 0,
    }


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def measure(size: int, args) -> list[dict]:
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-webhook-{size}-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    environ = app_environ(database_url)
    numbers = seed(workdir, environ, size)
    rows = []
    app, app_port = start_gunicorn("hotline:create_app()", environ, workdir, args.workers)
    create_inbox(database_url)
    ceiling, ceiling_port = start_gunicorn("bench.ceiling:app", environ, workdir, args.workers)
    try:
        for run in range(args.runs):
            script = workdir / f"run{run}.lua"
            lua_script(script, numbers, args.requests, run)
            wrk(app_port, script, 1, args.connections)  # warm-up (its MessageSids are then replays for a few)
            lua_script(script, numbers, args.requests, run + 1000)
            top = wrk(ceiling_port, script, args.seconds, args.connections)
            real = wrk(app_port, script, args.seconds, args.connections)
            write_script = workdir / f"run{run}-write.lua"
            lua_script(write_script, numbers, 2000, run, target="/write/sms")
            write = wrk(ceiling_port, write_script, args.seconds, args.connections)
            rows.append({"size": size, "run": run, "ceiling": top, "app": real, "write": write, "ratio": real["rps"] / top["rps"]})
            print(f"size {size:>6} run {run}: app {real['rps']:7.0f} req/s p50 {real['p50']:5.1f} ms p99 {real['p99']:5.1f} ms"
                  f" | ceiling {top['rps']:7.0f} req/s p99 {top['p99']:5.1f} ms | one write {write['rps']:6.0f} req/s"
                  f" | ratio {rows[-1]['ratio']:.2f} | non-2xx {real['non2xx']}", flush=True)
    finally:
        stop(app)
        stop(ceiling)
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def in_process(reports: int, runs: int) -> int:
    """CPU per report and SQL statements per update through Flask's test client on SQLite (no gunicorn, no wrk):
    a street of 10, 50 reports to warm up, then `reports` more; a fresh database each run."""
    import logging

    from sqlalchemy import event

    from hotline import create_app

    logging.disable(logging.WARNING)
    validator, cpu, counts = RequestValidator(AUTH_TOKEN), [], []
    for run in range(runs):
        workdir = Path(tempfile.mkdtemp(prefix="bench-webhook-inproc-"))
        environ = app_environ(f"sqlite:///{workdir / 'bench.db'}")
        numbers = seed(workdir, environ, 10)
        app = create_app(instance_path=workdir / "instance", environ=environ)
        client, seen = app.test_client(), []
        event.listen(app.extensions["hotline"].engine, "before_cursor_execute", lambda *args: seen.append(args[2]))

        def post(n: int) -> None:
            form = {"AccountSid": ACCOUNT_SID, "MessageSid": f"SM{run:04d}{n:028d}", "From": random.choice(numbers),
                    "To": "+447400123456", "Body": f"sighting {n}: man trying car door handles, red hoodie", "NumMedia": "0"}
            signature = validator.compute_signature(PUBLIC_URL + "/twilio/sms", form)
            assert client.post("/twilio/sms", data=form, headers={"X-Twilio-Signature": signature}).status_code == 200

        for n in range(50):
            post(n)
        times = []
        for n in range(50, 50 + reports):
            seen.clear()
            started = time.process_time()
            post(n)
            times.append(time.process_time() - started)
            counts.append(len(seen))
        cpu.append(statistics.median(times))
        print(f"run {run}: CPU per report {cpu[-1] * 1000:.2f} ms (median of {reports}), statements {statistics.median(counts):.0f}", flush=True)
        app.extensions["hotline"].engine.dispose()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nCPU per report, median of {runs} runs: {statistics.median(cpu) * 1000:.2f} ms;"
          f" SQL statements per report (most are updates): {statistics.median(counts):.0f}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1000, 10000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=40000, help="signed requests generated a run")
    parser.add_argument("--database-url")
    parser.add_argument("--smoke", action="store_true", help="CI-sized: seconds, not minutes")
    parser.add_argument("--in-process", type=int, metavar="REPORTS",
                        help="instead: CPU and SQL statements per report through Flask's test client (SQLite)")
    args = parser.parse_args(argv)
    if args.in_process:
        return in_process(args.in_process, args.runs)
    if args.smoke:
        args.sizes, args.runs, args.seconds, args.requests = [10], 1, 2, 5000
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    rows = [row for size in args.sizes for row in measure(size, args)]
    print("\n| members | app req/s | app p50 ms | app p99 ms | ceiling req/s | ratio | one-write req/s | one-write p99 ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        mine = [r for r in rows if r["size"] == size]
        med = lambda key, side: statistics.median(r[side][key] for r in mine)  # noqa: E731
        print(f"| {size:,} | {med('rps', 'app'):.0f} | {med('p50', 'app'):.1f} | {med('p99', 'app'):.1f} |"
              f" {med('rps', 'ceiling'):.0f} | {statistics.median(r['ratio'] for r in mine):.2f} |"
              f" {med('rps', 'write'):.0f} | {med('p99', 'write'):.1f} |")
    failures = sum(r["app"]["non2xx"] for r in rows)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

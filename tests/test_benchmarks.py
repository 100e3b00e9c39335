"""The benchmarks' CI-sized runs, so the scripts in bench/ never rot (the full runs are manual)."""

from __future__ import annotations

import os
import shutil
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import fanout, webhook, wire

pytestmark = pytest.mark.slow
# Each on an SQLite file of its own whatever the suite's database (no --database-url): the same test in both of
# scripts/test's passes, so it runs in the SQLite pass only (`no_database`, pyproject.toml). Not the plates
# benchmark: it builds its app with tests.conftest.build_app, on the suite's database.
on_its_own_sqlite = pytest.mark.no_database
ACCOUNT = "0" * 32


@on_its_own_sqlite
def test_webhook_benchmark_smoke_run(capsys):
    if not shutil.which("wrk"):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("wrk is missing: apt-get install wrk (.ci/run installs it)")
        pytest.skip("wrk is not installed (apt-get install wrk)")
    assert webhook.main(["--smoke"]) == 0
    table = capsys.readouterr().out
    assert "| members | app req/s |" in table and "| 10 |" in table


@on_its_own_sqlite
def test_webhook_in_process_benchmark_smoke_run(capsys):
    assert webhook.main(["--in-process", "20", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    assert "CPU per report, median of 1 runs" in out and "SQL statements per report (most are updates): 9" in out


@on_its_own_sqlite
def test_fanout_benchmark_smoke_run(capsys):
    assert fanout.main(["--smoke"]) == 0  # non-zero: a duplicate, or a neighbour never sent to
    assert "| 60 | 50 |" in capsys.readouterr().out


@pytest.mark.no_database  # no database at all
@pytest.mark.skipif(not wire.can_capture(), reason="capturing packets needs CAP_NET_RAW (root); CI runs as root")
def test_the_wire_counts_each_send_request_once_stamped_by_the_kernel():
    class Quiet(BaseHTTPRequestHandler):
        def _answer(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_GET = _answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/2010-04-01/Accounts/AC{ACCOUNT}"
    try:
        wire = fanout.Wire(server.server_address[1])
        assert wire.ready
        started = time.time()
        for path, data in [("/Messages.json", b"To=1"), ("/Calls.json", b"To=2"), ("/Messages.json", None),
                           ("/Messages/SM1.json", b"Status=canceled"), ("/Messages.json", b"To=3")]:
            urllib.request.urlopen(urllib.request.Request(base + path, data=data), timeout=5).close()
        finished = time.time()
        stamps = wire.stamps()
    finally:
        server.shutdown()
        server.server_close()
    # Three sends (two messages, one call): not the GET, not the update of a message, each once though lo shows
    # every packet twice (leaving and arriving).
    assert len(stamps) == 3
    assert all(started - 0.05 <= t <= finished + 0.05 for t in stamps) and stamps == sorted(stamps)


@on_its_own_sqlite
def test_fanout_benchmark_smoke_run_against_hotline_serve(capsys):
    assert fanout.main(["--smoke", "--serve"]) == 0  # every neighbour once, every status callback answered
    out = capsys.readouterr().out
    assert "hotline serve, callbacks on" in out and "| 60 | 50 |" in out and "| 59/59 |" in out


def test_plates_benchmark_smoke_run(capsys):
    from bench import plates

    assert plates.main(["--smoke"]) == 0
    out = capsys.readouterr().out
    assert "| 1,600 characters |" in out and "| without plates |" in out


@on_its_own_sqlite
def test_idle_and_start_up_benchmark_smoke_run(capsys):
    from bench import idle

    assert idle.main(["--smoke"]) == 0
    table = capsys.readouterr().out
    assert "`hotline serve` idle" in table and "`hotline --help`" in table and "claim finding nothing due" in table


@on_its_own_sqlite
def test_serve_cpu_benchmark_smoke_run(capsys, tmp_path):
    from bench import serve_cpu

    profile = tmp_path / "serve.pstats"  # one run, profiled: the CPU figures are printed all the same
    assert serve_cpu.main(["--members", "21", "--rate", "20", "--cprofile", str(profile)]) == 0
    out = capsys.readouterr().out
    assert "run 0: 20 messages" in out and "ms CPU a message" in out and "0 callbacks not 2xx" in out
    import pstats

    functions = {name for _file, _line, name in pstats.Stats(str(profile)).stats}
    assert {"delivery_status", "send_sms"} <= functions  # the callbacks' and the sends' threads were profiled

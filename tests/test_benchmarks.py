"""The benchmarks' CI-sized runs, so the scripts in bench/ never rot (the full runs are manual)."""

from __future__ import annotations

import os
import shutil

import pytest

from bench import fanout, webhook

pytestmark = pytest.mark.slow
# Each on an SQLite file of its own whatever the suite's database (no --database-url): the same test in both of
# scripts/test's passes, so it runs in the SQLite pass only (`no_database`, pyproject.toml). Not the plates
# benchmark: it builds its app with tests.conftest.build_app, on the suite's database.
on_its_own_sqlite = pytest.mark.no_database


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
    assert "CPU per report, median of 1 runs" in out and "SQL statements per report (most are updates): 11" in out


@on_its_own_sqlite
def test_fanout_benchmark_smoke_run(capsys):
    assert fanout.main(["--smoke"]) == 0  # non-zero: a duplicate, or more than the rate in some second
    assert "| 60 | 50 |" in capsys.readouterr().out


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
    assert "`hotline serve` idle" in table and "`hotline --help`" in table


@on_its_own_sqlite
def test_serve_cpu_benchmark_smoke_run(capsys, tmp_path):
    from bench import serve_cpu

    assert serve_cpu.main(["--members", "21", "--rate", "20", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    assert "run 0: 20 messages" in out and "ms CPU a message" in out and "0 callbacks not 2xx" in out
    profile = tmp_path / "serve.pstats"
    assert serve_cpu.main(["--members", "11", "--rate", "20", "--cprofile", str(profile)]) == 0
    import pstats

    functions = {name for _file, _line, name in pstats.Stats(str(profile)).stats}
    assert {"delivery_status", "send_sms"} <= functions  # the callbacks' and the sends' threads were profiled

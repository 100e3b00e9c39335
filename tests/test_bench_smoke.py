"""The scale benchmark's CI-sized run, so `python -m bench.scale` never rots: every page it times
answers with its content, each export holds exactly the filtered rows, and the broadcast reaches
every neighbour once through a real worker."""

from __future__ import annotations

import pytest

from bench import scale
from tests.conftest import TEST_DATABASE_URL


@pytest.mark.slow
def test_scale_benchmark_smoke_run_measures_every_page_export_and_the_broadcast(tmp_path, capsys):
    url = TEST_DATABASE_URL or f"sqlite:///{tmp_path / 'scale.db'}"
    args = scale.parse(["--smoke", "--database-url", url])

    results = scale.run(args)
    scale.print_table(results, args)

    pages = results["pages"]
    assert {(t.role, t.name) for t in pages} >= {("admin", "log, first page"), ("street coordinator", "report page")}
    assert all(t.failures == 0 and len(t.samples) >= args.runs * 2 for t in pages)
    small, large = results["exports"]
    assert 0 < small["rows"] == small["expected"] < large["rows"] == large["expected"]
    assert results["broadcast"]["accepted"] == results["broadcast"]["unique"] == args.recipients
    assert results["broadcast"]["growth"] > 0
    assert results["ok"]
    table = capsys.readouterr().out
    assert "| log, first page | admin |" in table and "| one report, one street | 510 |" in table

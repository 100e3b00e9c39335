"""`hotline --help` and every command start without loading the database layer or the app's rooms until
a command needs them (the time is measured in docs/benchmarks.md, not here)."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Its own SQLite file, and no database at all for --help: the same test in both passes (`no_database`, pyproject.toml).
pytestmark = pytest.mark.no_database


def test_the_command_line_loads_no_database_layer_to_show_its_help():
    script = (
        "import sys; from click.testing import CliRunner; import hotline.cli as cli; "
        "result = CliRunner().invoke(cli.main, ['--help']); assert result.exit_code == 0, result.output; "
        "print(sorted(m for m in ('sqlalchemy', 'sqlmodel', 'phonenumbers', 'twilio', 'hotline.models') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_every_command_still_finds_what_it_imports_when_it_runs(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from hotline import cli

    monkeypatch.chdir(tmp_path)  # the instance folder goes beside the working directory

    env = {"HOTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "HOTLINE_SECRET_KEY": "x"}
    runner = CliRunner(env=env)
    assert runner.invoke(cli.main, ["street", "add", "Clayhall Avenue", "--code", "101"]).exit_code == 0
    assert runner.invoke(cli.main, ["member", "add", "07911 123456", "--street", "Clayhall", "--active"]).exit_code == 0
    listed = runner.invoke(cli.main, ["street", "list"])
    assert listed.exit_code == 0 and "Clayhall Avenue" in listed.output and "1 active" in listed.output
    (tmp_path / "m.csv").write_text("phone,street\n07911 123457,101\n")
    assert runner.invoke(cli.main, ["member", "import", str(tmp_path / "m.csv")]).exit_code == 0
    added = runner.invoke(cli.main, ["coordinator", "add", "c@example.org", "--password-stdin", "--street", "101"], input="long enough\n")
    assert added.exit_code == 0, added.output

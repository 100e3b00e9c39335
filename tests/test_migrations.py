"""Alembic migrations: `hotline db upgrade`, first start, several processes at once, models ≡ migrations."""

from __future__ import annotations

import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import inspect
from sqlmodel import SQLModel

from hotline import create_app, migrations
from hotline.cli import main
from hotline.db import make_engine
from hotline.migrations import upgrade

REGENERATE = (
    "rm hotline/migrations/versions/0001_*.py && "
    'HOTLINE_DATABASE_URL=sqlite:///$(mktemp -d)/empty.db .venv/bin/hotline db revision "initial schema" --rev-id 0001'
)


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return migrations.current(connection)
    finally:
        engine.dispose()


def test_models_and_migrations_agree(empty_database_url):
    engine = make_engine(empty_database_url)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_name": migrations.include_name}
            )
            differences = compare_metadata(context, migrations.target_metadata())
    finally:
        engine.dispose()
    assert differences == [], (
        "The models and the migrations disagree (first differences below). Before anything is deployed, "
        f"regenerate the initial migration:\n    {REGENERATE}\n"
        "Once a database depends on it, add a new migration instead (see hotline/migrations/env.py).\n"
        + "\n".join(map(str, differences[:20]))
    )


def test_db_upgrade_on_an_empty_database_creates_every_table(empty_database_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["db", "upgrade"], env={"HOTLINE_DATABASE_URL": empty_database_url})
    assert result.exit_code == 0, result.output
    assert "up to date (upgraded)" in result.output
    assert set(migrations.target_metadata().tables) <= _tables(empty_database_url)
    assert _revision(empty_database_url) == migrations.head()


def test_db_upgrade_on_an_up_to_date_database_changes_nothing(empty_database_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {"HOTLINE_DATABASE_URL": empty_database_url}
    CliRunner().invoke(main, ["db", "upgrade"], env=env)
    again = CliRunner().invoke(main, ["db", "upgrade"], env=env)
    assert again.exit_code == 0, again.output
    assert "already up to date" in again.output
    assert _revision(empty_database_url) == migrations.head()


def test_first_start_creates_the_schema_with_no_extra_command(empty_database_url, tmp_path):
    app = create_app({"testing": True}, instance_path=tmp_path / "instance", environ={"HOTLINE_DATABASE_URL": empty_database_url})
    app.extensions["hotline"].engine.dispose()
    assert "report" in _tables(empty_database_url)
    assert _revision(empty_database_url) == migrations.head()


def test_a_database_made_before_migrations_is_adopted_not_recreated(empty_database_url):
    engine = make_engine(empty_database_url)
    try:
        migrations.target_metadata()
        SQLModel.metadata.create_all(engine)
        assert upgrade(engine) == "stamped"
        assert upgrade(engine) == "current"
    finally:
        engine.dispose()
    assert _revision(empty_database_url) == migrations.head()


def test_processes_starting_together_migrate_once(empty_database_url):
    script = "import sys; from hotline.db import make_engine; from hotline.migrations import upgrade; print(upgrade(make_engine(sys.argv[1])))"
    starts = [subprocess.Popen([sys.executable, "-c", script, empty_database_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outcomes = []
    for process in starts:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        outcomes.append(out.strip())
    assert sorted(outcomes) == ["current", "current", "upgraded"]
    assert _revision(empty_database_url) == migrations.head()

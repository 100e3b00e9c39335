"""`hotline db …`: the database's schema (upgrade, revision), backups and restores. Each command works on
the configured database without building the app, which would bring the schema to head by itself."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def db():
    """Database schema, backups and restores."""


def _engine():
    """The configured database without building the app (which would bring the schema to head itself)."""
    from hotline import config as config_module
    from hotline.db import make_engine

    try:
        config = config_module.load(Path.cwd() / "instance")
        return make_engine(config.database_url, timeout=config.db_timeout_seconds)
    except ValueError as exc:  # ConfigError
        raise click.ClickException(str(exc)) from exc


@db.command("upgrade")
def db_upgrade():
    """Apply the migrations the database has not had yet (alembic upgrade head)."""
    from hotline.migrations import upgrade

    engine = _engine()
    outcome = upgrade(engine)
    engine.dispose()
    click.echo({"current": "database was already up to date"}.get(outcome, f"database is up to date ({outcome})"))


@db.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def db_backup(file):
    """A consistent copy of the whole database, taken while the hotline runs (SQLite's backup API, or pg_dump)."""
    from hotline.ops import backup

    engine = _engine()
    try:
        path = backup.backup(engine=engine, target=file)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
    click.echo(f"backed up to {path} ({path.stat().st_size:,} bytes)")


@db.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def db_restore(file):
    """Restore a backup into an empty database (refused when it holds any data), then bring the schema up to date."""
    from hotline.ops import backup

    engine = _engine()
    try:
        counts = backup.restore(engine=engine, source=file)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        engine.dispose()
    click.echo(f"restored {file}: " + ", ".join(f"{counts.get(t, 0)} {t}" for t in ("street", "member", "report", "delivery")))


@db.command("revision")
@click.argument("message")
@click.option("--rev-id", help="the new revision's id (default: random)")
def db_revision(message, rev_id):
    """For developers: write a migration from the models' difference with this up-to-date database."""
    from hotline import migrations

    engine = _engine()
    migrations.revision(engine, message, rev_id)
    engine.dispose()

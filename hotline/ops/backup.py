"""Backups: a consistent copy of the whole database taken while the hotline runs, restoring one into an
empty database, and the daily copy the scheduler keeps (HOTLINE_BACKUP_DIR, the newest HOTLINE_BACKUP_KEEP).

SQLite is copied with its online backup API in one step, inside one read transaction: a snapshot, while
webhooks and the dispatcher go on writing (WAL). PostgreSQL is copied with `pg_dump --format=custom`,
which reads everything in one snapshot too, and restored with `pg_restore` in one transaction.
A copy is written beside its name and renamed into place when whole, readable by its owner only:
it holds what the database holds (sightings are criminal-offence data).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator

from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, Engine

from hotline.migrations import FOREIGN_TABLES, target_metadata, upgrade

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
# Not the scheme's data: written by any hotline that has run once (its jobs, its schema's version), so a
# database holding only these still counts as empty and is replaced by the backup's.
BOOKKEEPING = {"jobrun", "alembic_version"} | FOREIGN_TABLES
SCHEDULED_NAME = re.compile(r"hotline-\d{8}T\d{6}Z\.(db|dump)")
DUMP_TIMEOUT = 3 * 3600  # seconds: a pg_dump on a database that stopped answering must not hold the job for ever


class BackupError(Exception):
    """A backup or restore that could not be done; the message tells the operator why."""


def backup(*, engine: Engine, target: Path, timeout: float | None = None) -> Path:
    """Copy the whole database to `target`, replacing it only once the copy is whole."""
    target = Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    draft = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        draft.touch(mode=0o600)
        if engine.dialect.name == "sqlite":
            _sqlite_copy(_sqlite_file(engine), draft)
        else:
            _run("pg_dump", "--format=custom", "--no-password", f"--file={draft}", url=engine.url, timeout=timeout)
        draft.chmod(0o600)
        os.replace(draft, target)
    finally:
        draft.unlink(missing_ok=True)
    return target


def restore(*, engine: Engine, source: Path) -> dict:
    """Restore `source` into the database of `engine` if it holds no data, then bring its schema to head.
    Returns the rows restored per table. Refuses (and changes nothing) when any hotline table has rows."""
    source = Path(source)
    kind = backup_kind(source)
    if kind != engine.dialect.name:
        raise BackupError(f"{source} is a backup of {_NAMES[kind]} database, but HOTLINE_DATABASE_URL is {_NAMES[engine.dialect.name]} one")
    if kind == "sqlite":
        Path(_sqlite_file(engine)).parent.mkdir(parents=True, exist_ok=True)  # a new database's folder
    holding = tables_with_rows(engine)
    if holding:
        raise BackupError(
            f"refused: the database already holds data ({', '.join(holding)}). Restore only into an empty database: "
            "create a new one (or move this one aside) and point HOTLINE_DATABASE_URL at it."
        )
    engine.dispose()  # no pooled connection may outlive the tables under it
    if kind == "sqlite":
        with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as copy:
            _check(copy, source)
            with closing(sqlite3.connect(_sqlite_file(engine), timeout=30)) as live:
                copy.backup(live)
    else:
        _drop_empty_tables(engine)
        _run("pg_restore", "--no-owner", "--no-privileges", "--clean", "--if-exists", "--single-transaction",
             "--exit-on-error", "--no-password", str(source), url=engine.url, timeout=None)
    engine.dispose()
    upgrade(engine)
    return row_counts(engine)


def backup_kind(path: Path) -> str:
    """"sqlite" or "postgresql", from the file's first bytes."""
    with open(path, "rb") as handle:
        head = handle.read(len(SQLITE_MAGIC))
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "postgresql"
    raise BackupError(f"{path} is not a hotline backup (neither an SQLite database nor a pg_dump custom-format file)")


_NAMES = {"sqlite": "an SQLite", "postgresql": "a PostgreSQL"}


def tables_with_rows(engine: Engine) -> list[str]:
    """The hotline tables in this database that hold at least one row (bookkeeping aside)."""
    existing = set(inspect(engine).get_table_names())
    ours = sorted((set(target_metadata().tables) & existing) - BOOKKEEPING)
    with engine.connect() as connection:
        return [name for name in ours if connection.execute(text(f'SELECT 1 FROM "{name}" LIMIT 1')).first()]


def row_counts(engine: Engine) -> dict[str, int]:
    existing = set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        return {
            name: connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar()
            for name in sorted(set(target_metadata().tables) & existing)
        }


def scheduled(*, engine: Engine, config, now: datetime) -> dict:
    """The daily backup: a new copy in HOTLINE_BACKUP_DIR, then only the newest HOTLINE_BACKUP_KEEP of ours kept."""
    folder = Path(config.backup_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    suffix = "db" if engine.dialect.name == "sqlite" else "dump"
    path = backup(engine=engine, target=folder / f"hotline-{now:%Y%m%dT%H%M%SZ}.{suffix}", timeout=DUMP_TIMEOUT)
    removed = prune(folder, keep=config.backup_keep)
    return {"file": str(path), "bytes": path.stat().st_size, "removed": len(removed)}


def prune(folder: Path, *, keep: int) -> list[Path]:
    """Delete all but the newest `keep` scheduled backups; files named otherwise (an operator's) are left alone."""
    ours = sorted(path for path in Path(folder).iterdir() if SCHEDULED_NAME.fullmatch(path.name))  # names sort by time (UTC)
    old = ours[:-keep] if keep > 0 else ours
    for path in old:
        path.unlink()
    return old


# --- SQLite --------------------------------------------------------------------------------------


def _sqlite_file(engine: Engine) -> str:
    database = engine.url.database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return database


def _sqlite_copy(source: str, draft: Path) -> None:
    with closing(sqlite3.connect(source, timeout=30)) as live, closing(sqlite3.connect(draft)) as copy:
        live.backup(copy)  # pages=-1: every page in one step, so one consistent snapshot
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        _check(copy, draft)


def _check(connection: sqlite3.Connection, path: Path) -> None:
    try:
        verdict = connection.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a readable SQLite database: {exc}") from exc
    if verdict != "ok":
        raise BackupError(f"{path} is damaged: {verdict}")


# --- PostgreSQL ----------------------------------------------------------------------------------


def _drop_empty_tables(engine: Engine) -> None:
    """Tables an empty database already has (a hotline started on it once) would clash with the backup's,
    or survive beside an older schema: they hold no rows (checked), so drop them first."""
    existing = set(inspect(engine).get_table_names())
    with engine.begin() as connection:
        target_metadata().drop_all(connection, checkfirst=True)
        for name in sorted(BOOKKEEPING & existing):
            connection.execute(text(f'DROP TABLE IF EXISTS "{name}"'))


def pg_tool(name: str) -> str:
    """pg_dump or pg_restore: on PATH, else the newest under Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda path: int(Path(path).parts[-3]))
    if not candidates:
        raise BackupError(f"{name} not found: install PostgreSQL's client programs (Debian: apt-get install postgresql-client)")
    return candidates[-1]


def _run(tool: str, *args: str, url: URL, timeout: float | None) -> None:
    with _passfile(url) as passfile:
        # libpq's own URL; the password goes in a passfile of ours, where `ps` cannot show it.
        query = {**url.query, **({"passfile": passfile} if passfile else {})}
        libpq = url.set(drivername="postgresql", password=None, query=query).render_as_string(hide_password=False)
        try:
            done = subprocess.run([pg_tool(tool), *args, f"--dbname={libpq}"], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise BackupError(f"{tool} did not finish within {timeout:g} s") from exc
    if done.returncode != 0:
        raise BackupError(f"{tool} failed: {done.stderr.strip() or done.stdout.strip()}")


@contextmanager
def _passfile(url: URL) -> Iterator[str | None]:
    if not url.password:
        yield None
        return
    secret = str(url.password).replace("\\", "\\\\").replace(":", "\\:")
    with tempfile.NamedTemporaryFile("w", prefix="hotline-pgpass-") as handle:  # created readable by us only
        handle.write(f"*:*:*:*:{secret}\n")
        handle.flush()
        yield handle.name

"""`pitwall backup FILE` / `pitwall restore FILE` for SQLite deployments.

Backups use SQLite's online backup API in one step: it reads one consistent
snapshot while the worker keeps writing (WAL lets writers go on), so every
transaction committed before the backup started is in the copy and none is
half in it. The copy is written beside the target and renamed into place, then
checked (`PRAGMA integrity_check`) and its migration level recorded.

PostgreSQL deployments use `pg_dump` / `pg_restore` (docs/DEPLOY.md); these
commands refuse with that pointer rather than do a worse job.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from app.migrate import alembic_config

PG_DUMP_HINT = (
    "PostgreSQL is backed up with its own tools: "
    '`pg_dump -Fc -f pitwall.dump "$PITWALL_DATABASE_URL"` and restored with '
    "`pg_restore --clean --if-exists -d <url> pitwall.dump` (see docs/DEPLOY.md, Backups)"
)


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says what to do."""


@dataclass(frozen=True)
class BackupReport:
    """What was written or restored."""

    path: Path
    size_bytes: int
    revision: str | None
    head: str
    tables: int

    @property
    def current(self) -> bool:
        return self.revision == self.head


def sqlite_path(database_url: str) -> Path:
    """The file behind a sqlite:/// URL; BackupError for PostgreSQL or in-memory databases."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        raise BackupError(PG_DUMP_HINT)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise BackupError(f"cannot back up {url.render_as_string()}: not a SQLite file")
    return Path(url.database)


def _head() -> str:
    # The URL only feeds env.py; reading the script directory never connects.
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or ""


def _known_revision(revision: str) -> bool:
    try:
        return (
            ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(revision)
            is not None
        )
    except Exception:  # alembic raises several types for an unknown id
        return False


def inspect_copy(path: Path) -> tuple[str | None, int]:
    """(migration revision, table count) of a SQLite file; BackupError if it is damaged."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"{path}: cannot open as SQLite: {exc}") from None
    try:
        try:
            verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{path}: not a SQLite database ({exc})") from None
        if verdict != "ok":
            raise BackupError(f"{path}: integrity check failed: {verdict}")
        tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            row = None
        return (row[0] if row else None), int(tables[0])
    finally:
        conn.close()


def backup_sqlite(database_url: str, destination: Path, *, overwrite: bool = False) -> BackupReport:
    """Copy the live database to `destination` (consistent while the worker writes)."""
    source = sqlite_path(database_url)
    if not source.exists():
        raise BackupError(f"no database at {source}; check PITWALL_DATABASE_URL")
    if destination.exists() and not overwrite:
        raise BackupError(f"{destination} exists; choose another file name or delete it first")
    if destination.resolve() == source.resolve():
        raise BackupError("the backup file cannot be the database itself")
    partial = destination.with_name(destination.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(str(source), timeout=30)
    dst = sqlite3.connect(str(partial))
    try:
        # pages=-1: the whole database in one step, i.e. one read snapshot.
        src.backup(dst, pages=-1)
        # A backup is one self-contained file: no -wal beside it.
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()
    os.replace(partial, destination)
    revision, tables = inspect_copy(destination)
    return BackupReport(destination, destination.stat().st_size, revision, _head(), tables)


def _assert_no_writer(target: Path) -> None:
    """Refuse while another process holds the database (a running serve or worker)."""
    conn = sqlite3.connect(str(target), timeout=0.5, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        raise BackupError(
            f"{target} is in use ({exc}); stop `pitwall serve` and every `pitwall worker` first"
        ) from None
    finally:
        conn.close()


def restore_sqlite(database_url: str, backup: Path, *, force: bool = False) -> BackupReport:
    """Replace the database with `backup` after checking the backup's integrity and level.

    Needs `force` when the database exists. Stop the web app and the workers first:
    a process that still has the old file open would keep writing to it.
    """
    target = sqlite_path(database_url)
    if not backup.exists():
        raise BackupError(f"{backup}: no such file")
    revision, _ = inspect_copy(backup)
    head = _head()
    if revision is None:
        raise BackupError(
            f"{backup} has no migration level (alembic_version): not a Pitwall backup"
        )
    if revision != head and not _known_revision(revision):
        raise BackupError(
            f"{backup} is at revision {revision}, unknown to this version of Pitwall "
            f"(newest {head}); restore it with the version that made it"
        )
    if target.exists():
        if not force:
            raise BackupError(f"{target} exists; pass --force to overwrite it with {backup}")
        _assert_no_writer(target)
    src = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    dst = sqlite3.connect(str(target), timeout=30)
    try:
        # Through SQLite, not a file copy: a stale -wal beside the target is reset too.
        src.backup(dst, pages=-1)
        dst.execute("PRAGMA journal_mode=WAL")
    finally:
        dst.close()
        src.close()
    restored_revision, restored_tables = inspect_copy(target)
    return BackupReport(target, target.stat().st_size, restored_revision, head, restored_tables)

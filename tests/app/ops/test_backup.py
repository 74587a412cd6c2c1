"""Backups: taken while messages are being written, restored, nothing committed before lost."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from app.db import make_engine, make_session_factory
from app.dealers.models import Rooftop
from app.deps import Database
from app.messaging.models import OutboundMessage
from app.ops.backup import BackupError, backup_sqlite, restore_sqlite
from app.ops.cli import backup_command, restore_command
from tests.db_support import is_postgres_run
from tests.support import load_sample_dealer

sqlite_only = pytest.mark.skipif(
    is_postgres_run(), reason="SQLite backups; PostgreSQL uses pg_dump"
)


class Sender(threading.Thread):
    """Keeps enqueueing messages, one committed transaction each, until stopped."""

    def __init__(self, database: Database, rooftop_id: int) -> None:
        super().__init__(daemon=True)
        self.database = database
        self.rooftop_id = rooftop_id
        self.committed: list[str] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        n = 0
        try:
            while not self.stop.is_set():
                n += 1
                key = f"backup-test:{n}"
                with self.database.transaction() as session:
                    session.add(
                        OutboundMessage(
                            rooftop_id=self.rooftop_id,
                            kind="status",
                            purpose="status",
                            dedupe_key=key,
                            channel="sms",
                            body="Your car is ready " * 20,
                        )
                    )
                self.committed.append(key)
        except BaseException as exc:  # reported by the test
            self.error = exc


def keys_in(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            return set(session.scalars(select(OutboundMessage.dedupe_key)))
    finally:
        engine.dispose()


@sqlite_only
def test_backup_while_sending_then_restore_loses_nothing(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    load_sample_dealer(database)
    with database.sessions() as session:
        rooftop_id = session.scalars(select(Rooftop.id)).first()
    assert rooftop_id is not None
    sender = Sender(database, rooftop_id)
    sender.start()
    try:
        while len(sender.committed) < 50 and sender.error is None and sender.is_alive():
            threading.Event().wait(0.01)
        before = list(sender.committed)
        report = backup_sqlite(database_url, tmp_path / "pitwall-backup.db")
        while len(sender.committed) < len(before) + 20 and sender.error is None:
            threading.Event().wait(0.01)  # the worker kept writing during and after
    finally:
        sender.stop.set()
        sender.join(10)
    assert sender.error is None
    assert report.current and report.tables > 10
    backed_up = keys_in(f"sqlite:///{report.path}")
    assert set(before) <= backed_up
    assert backed_up <= set(sender.committed)

    restored_url = f"sqlite:///{tmp_path / 'restored.db'}"
    restored = restore_sqlite(restored_url, report.path)
    assert restored.current
    assert keys_in(restored_url) == backed_up
    verdict = sqlite3.connect(tmp_path / "restored.db").execute("PRAGMA integrity_check")
    assert verdict.fetchone()[0] == "ok"


@sqlite_only
def test_restore_needs_force_and_a_sound_backup(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    load_sample_dealer(database)
    backup = backup_sqlite(database_url, tmp_path / "b.db").path
    with pytest.raises(BackupError, match="exists; pass --force"):
        restore_sqlite(database_url, backup)
    with pytest.raises(BackupError, match="exists; choose another file name"):
        backup_sqlite(database_url, backup)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(BackupError, match=r"not a SQLite database|cannot open"):
        restore_sqlite(database_url, garbage, force=True)
    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(BackupError, match="not a Pitwall backup"):
        restore_sqlite(database_url, foreign, force=True)
    database.engine.dispose()
    restored = restore_sqlite(database_url, backup, force=True)
    assert restored.current


@sqlite_only
def test_restore_refuses_while_a_writer_holds_the_database(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    backup = backup_sqlite(database_url, tmp_path / "b.db").path
    with database.engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")  # the engine begins with BEGIN IMMEDIATE: a writer
        with pytest.raises(BackupError, match="is in use"):
            restore_sqlite(database_url, backup, force=True)
        conn.rollback()


def test_postgresql_points_at_pg_dump(tmp_path: Path) -> None:
    url = "postgresql+psycopg://pitwall:pw@db/pitwall"
    with pytest.raises(BackupError, match="pg_dump"):
        backup_sqlite(url, tmp_path / "x.db")
    with pytest.raises(BackupError, match="pg_restore"):
        restore_sqlite(url, tmp_path / "x.db")


def test_the_commands(
    database: Database, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PITWALL_DATABASE_URL", database_url)
    app = typer.Typer()
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)
    runner = CliRunner()
    target = tmp_path / "cli-backup.db"
    done = runner.invoke(app, ["backup", str(target)])
    if is_postgres_run():
        assert done.exit_code == 2 and "pg_dump" in done.output
        return
    assert done.exit_code == 0, done.output
    assert "integrity ok" in done.output
    refused = runner.invoke(app, ["restore", str(target)])
    assert refused.exit_code == 2 and "--force" in refused.output
    database.engine.dispose()
    restored = runner.invoke(app, ["restore", str(target), "--force"])
    assert restored.exit_code == 0, restored.output

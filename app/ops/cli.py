"""Operations commands, mounted by app/cli.py: doctor, twilio connect, backup, restore.

Each is a unit of work of its own. Exit codes: 0 fine, 1 the command ran and found
(or left) a problem, 2 it could not run (bad settings, unreadable file, refused).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

# Each command imports what it uses: `pitwall --help` (and every other command) then
# starts without the backup's Alembic, the doctor, the Twilio numbers port or FastAPI.
if TYPE_CHECKING:
    from app.config import Settings
    from app.db import Database
    from integrations.twilio.numbers import PhoneNumberDirectory

__all__ = ["backup_command", "doctor_command", "restore_command", "twilio_app"]

F = TypeVar("F", bound=Callable[..., Any])

twilio_app = typer.Typer(help="Twilio account set-up.", no_args_is_help=True)


class OpsError(Exception):
    """An expected failure: printed as one line, exit code 2."""


def _expected_errors(fn: F) -> F:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            message = _expected(exc)
            if message is None:
                raise
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


def _expected(exc: Exception) -> str | None:
    """The line an expected failure prints, or None for a bug. The classes are looked up
    among the modules already imported: one never imported cannot have raised."""
    backup = sys.modules.get("app.ops.backup")
    numbers = sys.modules.get("integrations.twilio.numbers")
    pydantic = sys.modules.get("pydantic")
    if isinstance(exc, OpsError) or (backup is not None and isinstance(exc, backup.BackupError)):
        return str(exc)
    if numbers is not None and isinstance(exc, numbers.NumbersError):
        return str(exc.message)
    if pydantic is not None and isinstance(exc, pydantic.ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        return f"{where}: {first['msg']}"
    return None


def _settings() -> Settings:
    from app.config import Settings

    return Settings()


@contextmanager
def _database(settings: Settings) -> Iterator[Database]:
    from app.db import Database, make_engine, make_session_factory

    engine = make_engine(settings.database_url)
    try:
        yield Database(engine=engine, sessions=make_session_factory(engine))
    finally:
        engine.dispose()


def _phone_numbers(settings: Settings) -> PhoneNumberDirectory:
    """The phone-number port, built by the composition root."""
    from app import wiring

    return wiring.build_phone_numbers(settings)


# --- doctor -----------------------------------------------------------------------


@_expected_errors
def doctor_command() -> None:
    """Check settings, database, dealer config, Twilio numbers and each DMS; exit 1 on a problem."""
    from app.ops.doctor import has_problems, render_table, run_doctor
    from app.repair_orders.jobs import AdapterCache
    from app.wiring import build_gateway

    settings = _settings()
    gateway = build_gateway(settings)
    numbers = _phone_numbers(settings)
    adapters = AdapterCache()
    try:
        with _database(settings) as database:
            findings = run_doctor(
                settings, database=database, gateway=gateway, numbers=numbers, adapters=adapters
            )
    finally:
        for resource in (adapters, gateway, numbers):
            close = getattr(resource, "close", None)
            if callable(close):
                close()
    typer.echo(render_table(findings))
    if has_problems(findings):
        raise typer.Exit(code=1)


# --- twilio connect ---------------------------------------------------------------


@twilio_app.command("connect")
@_expected_errors
def connect_command(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show what would change, change nothing")
    ] = False,
) -> None:
    """Point each rooftop number's SMS, voice and status URLs at PITWALL_PUBLIC_URL."""
    from app.ops.connect import apply_connect, describe_plan, plan_connect
    from app.ops.doctor import WebhookUrls, check_database, load_rooftops

    settings = _settings()
    urls = WebhookUrls.for_public_url(settings.public_url)
    with _database(settings) as database:
        found, ready = check_database(settings, database)
        if not ready:
            raise OpsError(next(f.detail for f in found if f.status == "problem"))
        rooftops = load_rooftops(database)
    if not rooftops:
        raise OpsError("no rooftops loaded; run `pitwall config load FILE` first")
    numbers = _phone_numbers(settings)
    try:
        targets = plan_connect(rooftops, numbers, urls)
        typer.echo(f"Twilio webhooks for {settings.public_url}:")
        for line in describe_plan(targets):
            typer.echo(f"  {line}")
        pending = [t for t in targets if t.changes and not t.problem]
        problems = [t for t in targets if t.problem]
        if dry_run:
            typer.echo(f"dry run: {len(pending)} to change, nothing changed.")
            raise typer.Exit(code=1 if problems else 0)
        if not pending:
            typer.echo("nothing to change.")
            raise typer.Exit(code=1 if problems else 0)
        failures = apply_connect(targets, numbers, urls, echo=typer.echo)
    finally:
        numbers.close()
    typer.echo(f"{len(pending) - failures} updated, {failures} failed.")
    if failures or problems:
        raise typer.Exit(code=1)


# --- backup / restore -------------------------------------------------------------


@_expected_errors
def backup_command(
    file: Annotated[Path, typer.Argument(help="where to write the backup (a new file)")],
) -> None:
    """Copy the SQLite database to FILE while Pitwall keeps running (PostgreSQL: pg_dump)."""
    from app.ops.backup import backup_sqlite

    settings = _settings()
    report = backup_sqlite(settings.database_url, file)
    typer.echo(
        f"backed up to {report.path} ({report.size_bytes} bytes, {report.tables} tables, "
        f"revision {report.revision}); integrity ok"
    )


@_expected_errors
def restore_command(
    file: Annotated[Path, typer.Argument(help="a file written by `pitwall backup`")],
    force: Annotated[bool, typer.Option("--force", help="overwrite the existing database")] = False,
) -> None:
    """Replace the SQLite database with FILE. Stop `serve` and every `worker` first."""
    from app.ops.backup import restore_sqlite

    settings = _settings()
    report = restore_sqlite(settings.database_url, file, force=force)
    typer.echo(f"restored {file} into {report.path}; integrity ok, revision {report.revision}")
    if not report.current:
        typer.echo(
            f"the backup is at an older revision: run `pitwall db upgrade` (to {report.head})"
        )

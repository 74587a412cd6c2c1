"""What every `pitwall` command shares: one-line errors, settings, a transaction, logging.

Domain commands (app/<domain>/cli.py) import these from here, and app/cli.py mounts
the commands: no command module imports app/cli.py.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:  # imported where used: `pitwall --help` loads neither (start-up time)
    from app.config import Settings
    from app.db import Database

F = TypeVar("F", bound=Callable[..., Any])


class CliError(Exception):
    """An expected failure: printed as one line, exit code 2."""


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def one_line_errors(fn: F) -> F:
    """Turn expected failures into `error: ...` and exit code 2."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            expected = _expected(exc)
            if expected is None:
                raise
            raise fail(expected) from None

    return wrapper  # type: ignore[return-value]


def _expected(exc: Exception) -> str | None:
    """The one line an expected failure prints, or None for a bug (a traceback).

    The exception classes are looked up in the modules already imported: an error of a
    module never imported cannot have been raised, and importing pydantic, SQLAlchemy
    or the settings only to compare would slow every command's start-up.
    """
    config, pydantic = sys.modules.get("app.config"), sys.modules.get("pydantic")
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    if isinstance(exc, CliError | LookupError) or (
        config is not None and isinstance(exc, config.ConfigError)
    ):
        return str(exc).strip("'\"")
    if pydantic is not None and isinstance(exc, pydantic.ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        return f"{where}: {first['msg']}"
    if sqlalchemy_exc is not None and isinstance(exc, sqlalchemy_exc.OperationalError):
        return f"cannot reach the database: {_first_line(exc.orig or exc)}"
    return None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def load_settings(**overrides: Any) -> Settings:
    from app.config import Settings

    return Settings(**overrides)


def open_database(settings: Settings) -> Database:
    """Connect and check the database answers, with a one-line error if not."""
    from sqlalchemy.exc import SQLAlchemyError

    import app.models  # noqa: F401  # every mapper known before the first session
    from app.db import Database, make_engine, make_session_factory, ping, redact_url

    try:
        engine = make_engine(settings.database_url)
        ping(engine)
    except (SQLAlchemyError, ValueError) as exc:
        raise CliError(
            f"cannot reach the database at {redact_url(settings.database_url)}: "
            f"{_first_line(getattr(exc, 'orig', None) or exc)}"
        ) from None
    return Database(engine=engine, sessions=make_session_factory(engine))


@contextmanager
def transaction(settings: Settings) -> Iterator[Any]:
    database = open_database(settings)
    try:
        with database.transaction() as session:
            yield session
    finally:
        database.engine.dispose()


def configure_logging(settings: Settings, level: int = logging.INFO) -> None:
    """Readable lines, or JSON when PITWALL_LOG_FORMAT=json; secrets and phones masked."""
    from app.ops.logging import configure_logging as configure

    configure(
        json=settings.log_format == "json",
        level=level,
        secrets=[settings.twilio_auth_token, settings.secret_key],
    )
    # One line per tick or per HTTP call drowns what matters; their warnings still show.
    for chatty in ("apscheduler", "httpx", "httpcore", "twilio.http_client"):
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))
    # A tick skipped because the last one (paced sending) still runs is by design.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)

"""What every `pitwall` command shares: one-line errors, settings, a transaction, logging.

Domain commands (app/<domain>/cli.py) import these from here, and app/cli.py mounts
the commands: no command module imports app/cli.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from app.config import ConfigError, Settings
from app.db import make_engine, make_session_factory, ping, redact_url
from app.deps import Database

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
        except (CliError, ConfigError, LookupError) as exc:
            raise fail(str(exc).strip("'\"")) from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "settings"
            raise fail(f"{where}: {first['msg']}") from None
        except OperationalError as exc:
            raise fail(f"cannot reach the database: {_first_line(exc.orig or exc)}") from None

    return wrapper  # type: ignore[return-value]


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)


def open_database(settings: Settings) -> Database:
    """Connect and check the database answers, with a one-line error if not."""
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

"""Engine, sessions and the column types shared by every domain.

Units of work (a CLI command, a scheduled job, a request) own the transaction:
they open `unit_of_work(...)`, call services, and the block commits once at the
end. Services never commit.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, TypeVar

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    MetaData,
    String,
    all_,
    any_,
    create_engine,
    event,
    literal,
    literal_column,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always hands back an aware UTC datetime, on SQLite too.

    Naive datetimes are refused: a naive time in this code base is a bug.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given; use an aware UTC time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is UTC:
            return value  # PostgreSQL sessions run in UTC (see PG_CONNECT_ARGS)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# An execution option naming a connection that only reads (see `Database.reading`).
READ_ONLY = "pitwall_read_only"


def _sqlite_begin_immediate(conn: Any) -> None:
    # Take the write lock at BEGIN so two writers queue on busy_timeout instead of
    # failing later with "database is locked" when a read transaction upgrades.
    # A read-only unit of work begins deferred: in WAL mode it reads beside a writer.
    read_only = conn.get_execution_options().get(READ_ONLY, False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


# Seconds to wait for PostgreSQL to answer a new connection.
CONNECT_TIMEOUT = 5
# libpq connection parameters, passed through psycopg (seconds; tcp_user_timeout in ms).
# A session in UTC hands back timestamps whose tzinfo is `datetime.UTC` itself, which
# UTCDateTime passes through untouched (a zoneinfo "Etc/UTC" costs ~8 us per value).
PG_CONNECT_ARGS: dict[str, int | str] = {
    "options": "-c TimeZone=UTC",
    "connect_timeout": CONNECT_TIMEOUT,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 60_000,
}


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    """Build an engine; SQLite gets WAL, foreign keys, a busy timeout and eager write locks."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 10, "isolation_level": None},
            # SQLAlchemy's default pool for a file (a QueuePool): a unit of work reuses an
            # open connection. A new one per unit of work (NullPool) paid a connect, four
            # PRAGMAs and, as the last connection closed, a WAL checkpoint each time.
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    # psycopg waits 130 s for a host that went silent: /readyz would hang, not answer 503.
    # A connection that dies mid-query without a FIN would hang forever (and with it the
    # dispatch job, which never runs twice at once): keepalives and a TCP user timeout
    # make the kernel give up on it. Settings in the URL win.
    connect_args = {key: value for key, value in PG_CONNECT_ARGS.items() if f"{key}=" not in url}
    engine = create_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args=connect_args,
    )
    _ping_idle_connections(engine)
    return engine


# A pooled connection idle longer than this is pinged before it is handed out (HikariCP's
# rule): a restarted or vanished server is noticed before a request uses the connection,
# while a busy pool, whose connections come back within milliseconds, pays no round trip.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_idle_connections(engine: Engine) -> None:
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("checked_in_at")
        if returned is None or time.monotonic() - returned < PING_AFTER_IDLE_SECONDS:
            return  # new, or just used
        try:
            dialect.do_ping(dbapi_connection)
            dbapi_connection.rollback()  # the ping's SELECT opened a transaction
        except dialect.loaded_dbapi.Error as exc:
            # The pool replaces this connection, and every other one older than now.
            raise InvalidatePoolError(f"pooled connection is gone: {exc}") from exc


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commits when the block ends normally, rolls back otherwise."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def ping(engine: Engine) -> None:
    """Raise if the database does not answer."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


_CONSTANT = re.compile(r"[a-z_|]*")


def sql_constant(value: str) -> ColumnElement[str]:
    """One of the code's own constants (a stage, a state, a kind) written into the SQL.

    Not a bound parameter: an IN list of bound values is expanded, and the statement's
    text rendered again, on every execution, and every value dumped by the driver.
    """
    if not _CONSTANT.fullmatch(value):
        raise ValueError(f"{value!r} is not a plain SQL constant")
    return literal_column(f"'{value}'", String)


def one_of_constants(column: Any, values: Iterable[str]) -> ColumnElement[bool]:
    """`column IN (the constants)`, written into the SQL (`sql_constant`)."""
    result: ColumnElement[bool] = column.in_([sql_constant(value) for value in values])
    return result


_PASSWORD = re.compile(r"(://[^:/@]+:)[^@]+@")


def redact_url(url: str) -> str:
    """A database URL safe to print: the password replaced by ***."""
    return _PASSWORD.sub(r"\1***@", url)


T = TypeVar("T")

BOUND_PARAMETERS = 900  # items a statement may bind: under every backend's parameter limit


def chunks(items: Sequence[T], size: int = BOUND_PARAMETERS) -> list[Sequence[T]]:
    """`items` in slices small enough for any backend's bound-parameter limit."""
    return [items[start : start + size] for start in range(0, len(items), size)]


def is_postgres(session_or_engine: Session | Engine) -> bool:
    bind = (
        session_or_engine.get_bind()
        if isinstance(session_or_engine, Session)
        else session_or_engine
    )
    return bind.dialect.name == "postgresql"


def one_of(
    session: Session,
    column: InstrumentedAttribute[Any] | ColumnElement[Any],
    values: Iterable[Any],
    *,
    negate: bool = False,
) -> ColumnElement[bool]:
    """`column IN (values)` (or NOT IN); on PostgreSQL as ONE array parameter.

    psycopg re-parses every statement with more than 50 parameters on every execution
    (its query cache skips them) and never prepares it: an IN list of a claimed batch's
    hundred ids cost ~600 us of CPU per query where `= ANY(:array)` costs ~230.
    """
    values = list(values)
    if not is_postgres(session):
        return column.not_in(values) if negate else column.in_(values)
    array = literal(values, ARRAY(column.type))
    return column != all_(array) if negate else column == any_(array)


@dataclass(frozen=True)
class Database:
    """The engine and session factory of this process.

    Here, not beside the web's dependencies: the worker and the CLI use it without
    importing FastAPI. Whoever builds one imports `app.models` first (every mapper known
    before the first session).
    """

    engine: Engine
    sessions: sessionmaker[Session]

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: the job, command or request handler is the edge that commits."""
        with unit_of_work(self.sessions) as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A unit of work that only reads, and so never waits for a writer.

        On SQLite it begins deferred instead of taking the write lock (WAL lets it read
        beside a writer). On PostgreSQL it runs in autocommit, each statement with its own
        snapshot: no BEGIN and ROLLBACK round trips around a lookup.
        """
        session = self.sessions(bind=self._reading_engine)
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    @contextmanager
    def one_statement(self) -> Iterator[Connection]:
        """A unit of work that is one writing statement, atomic by itself.

        On PostgreSQL it runs in autocommit: the statement is its own transaction, with
        no BEGIN and COMMIT round trips around it (each of which a busy worker's
        dispatcher waits on, and then waits again for its send threads to hand back the
        interpreter). On SQLite it is a transaction as `transaction`'s (BEGIN IMMEDIATE).
        """
        if self.engine.dialect.name != "postgresql":
            with self.engine.begin() as connection:
                yield connection
            return
        with self._autocommit_engine.connect() as connection:
            yield connection

    @cached_property
    def _autocommit_engine(self) -> Engine:
        return self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @cached_property
    def _reading_engine(self) -> Engine:
        """The engine with `reading`'s execution options, made once (a poll asks per page)."""
        options: dict[str, Any] = {READ_ONLY: True}
        if self.engine.dialect.name == "postgresql":
            options["isolation_level"] = "AUTOCOMMIT"
        return self.engine.execution_options(**options)

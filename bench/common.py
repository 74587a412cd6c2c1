"""What every benchmark module returns, and small helpers they share.

Contract: each module ``bench/<name>.py`` exposes
``run(*, quick: bool, pg_url: str, sqlite_dir: Path) -> list[BenchResult]``.
Targets are ratios or bounds measured in the same run on the same machine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from app.deps import Database

Figure = float | int | str


@dataclass(frozen=True)
class Target:
    """One pass/fail check: ``value op bound`` (e.g. a ratio >= 0.8, an RSS <= 150 MB).

    ``value`` is the measured figure unrounded: the table rounds it for reading, the
    verdict never (2.495x is not 2.50x)."""

    name: str
    value: float
    bound: float
    op: Literal[">=", "<="] = "<="
    unit: str = "x"

    @property
    def ok(self) -> bool:
        return self.value >= self.bound if self.op == ">=" else self.value <= self.bound


@dataclass
class BenchResult:
    """One benchmark's measured figures (for the table and JSON) and its targets."""

    name: str
    figures: dict[str, Figure] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(target.ok for target in self.targets)


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """Measure wall time of a block: ``with stopwatch() as elapsed: ...; elapsed[0]`` (seconds)."""
    box = [0.0]
    started = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - started


def long_run() -> bool:
    """`python -m bench --long` (`make bench-long`, PITWALL_BENCH_LONG=1): the long sizes.

    `make bench` keeps every benchmark, both databases and every yardstick, but trims
    sizes and repetitions so that a full run fits in about 15-25 minutes on a shared
    2-core machine: dispatch 2,000 texts a run (long: 5,000), end to end 2 rounds (3),
    the peer 1,000 jobs a side (2,000; 3 rounds either way), webhooks 250,000 customers
    for 20 s (1,000,000 for 60 s), memory 20,000 sends then a 90 s soak (100,000, 600 s),
    scale-out 1,500 texts (3,000)."""
    return os.environ.get("PITWALL_BENCH_LONG") == "1"


def ratio(numerator: float, denominator: float) -> float:
    """A ratio that is 0.0 instead of a ZeroDivisionError when the denominator is 0."""
    return numerator / denominator if denominator else 0.0


# --- databases ------------------------------------------------------------------------

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DEALER = ROOT / "config" / "sample-dealer.toml"


def backends() -> list[str]:
    """The backends to measure, PostgreSQL first: PITWALL_BENCH_BACKENDS (comma-separated)."""
    chosen = os.environ.get("PITWALL_BENCH_BACKENDS", "postgresql,sqlite")
    return [b.strip() for b in chosen.split(",") if b.strip()]


def _admin_engine(pg_url: str) -> Engine:
    return create_engine(make_url(pg_url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def create_pg_database(pg_url: str, name: str) -> str:
    """(Re)create database `name` on pg_url's server; return its URL (password kept)."""
    admin = _admin_engine(pg_url)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(pg_url).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(pg_url: str, name: str) -> None:
    admin = _admin_engine(pg_url)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def bench_database(backend: str, *, pg_url: str, sqlite_dir: Path, name: str) -> Iterator[str]:
    """A fresh database migrated to head for one benchmark; dropped (or deleted) afterwards.

    backend is "postgresql" (database `pitwall_bench_<name>` on pg_url's server) or
    "sqlite" (a file in sqlite_dir). Yields the URL.
    """
    from app.migrate import upgrade_to_head

    if backend == "postgresql":
        db_name = f"pitwall_bench_{name}_{os.getpid()}"  # two runs at once never collide
        url = create_pg_database(pg_url, db_name)
        try:
            upgrade_to_head(url)
            yield url
        finally:
            drop_pg_database(pg_url, db_name)
        return
    path = sqlite_dir / f"bench_{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    try:
        upgrade_to_head(url)
        yield url
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def settle(engine: Engine, *tables: str) -> None:
    """Leave the database as a running system would find it before a timed step.

    A bench's own setup (seeding, resetting rows, undoing a yardstick's change) rewrites
    rows wholesale: on PostgreSQL that leaves dead row versions for the next timed step
    to step over and for autovacuum to clean up in the middle of it, and on either
    database a write-ahead log whose checkpoint then lands mid-measurement. After a bulk
    seed, autovacuum also comes round (within its one-minute nap) to every table that
    took more than a thousand inserts and vacuums it in the middle of whatever is timed
    then. `tables` (none named: the whole database) are vacuumed and analysed
    (PostgreSQL) and the log checkpointed, so every timed step starts from the same
    state; what the step itself writes stays in its figures.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in tables:
                conn.execute(text(f'VACUUM (ANALYZE) "{table}"'))
            if not tables:
                conn.execute(text("VACUUM (ANALYZE)"))
            conn.execute(text("CHECKPOINT"))
        return
    # Outside a transaction (the engine's connections begin IMMEDIATE on their own).
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.fetchall()
        cursor.close()
    finally:
        raw.close()


def open_database(url: str, *, pool_size: int = 10) -> Database:
    """The engine and session factory a Pitwall process would build for `url`."""
    from app.db import make_engine, make_session_factory
    from app.deps import Database

    engine = make_engine(url, pool_size=pool_size)
    return Database(engine=engine, sessions=make_session_factory(engine))


def load_sample_dealer(database: Database) -> None:
    """Load config/sample-dealer.toml (Bayview Toyota and Bayview Ford) in one unit of work."""
    from app.config import load_dealer_config
    from app.dealers.service import apply_dealer_config

    config = load_dealer_config(SAMPLE_DEALER)
    with database.transaction() as session:
        apply_dealer_config(session, config=config, source=str(SAMPLE_DEALER))

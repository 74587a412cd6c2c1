"""The benchmarks still run and still count right: tiny sizes, correctness only, never timing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.deps import Database
from bench import dispatch, e2e, memory, scale
from bench.__main__ import main as bench_main
from bench.common import settle
from tests.db_support import backend_url, is_postgres_run
from tests.support import load_sample_dealer

pytestmark = pytest.mark.slow


def backend() -> str:
    return "postgresql" if is_postgres_run() else "sqlite"


def test_the_runner_writes_its_table_as_json_with_zero_duplicates_and_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PITWALL_BENCH_BACKENDS", backend())
    monkeypatch.setattr(dispatch, "QUICK_MESSAGES", 120)
    output = tmp_path / "bench-results.json"

    bench_main(
        ["--quick", "--only", "dispatch", "--pg-url", backend_url(), "--output", str(output)]
    )

    report = json.loads(output.read_text())
    assert report["errors"] == {} and report["quick"] is True
    (result,) = report["results"]
    assert result["name"] == f"dispatch ({backend()})"
    assert result["figures"]["duplicates"] == 0 and result["figures"]["lost"] == 0
    assert {t["name"] for t in result["targets"]} >= {"duplicates", "lost"}
    assert result["figures"]["pitwall_3w_50ms_msg_s"] > 0
    assert result["figures"]["own_client_loop_0ms_msg_s"] > 0  # both plain loops run
    assert result["figures"]["requests_loop_50ms_msg_s"] > 0
    assert result["figures"]["yardstick_0ms"] in ("requests_loop", "own_client_loop")
    # The database server's own CPU per text, where it is a process on this machine.
    server = "pitwall_1w_0ms_db_server_us_per_text" in result["figures"]
    assert server == (backend() == "postgresql")
    # The kernel's share of a text beside the interpreter's, for the loop and the worker.
    assert result["figures"]["pitwall_1w_0ms_switches_per_text"] > 0
    assert result["figures"]["pitwall_1w_0ms_sys_us_per_text"] > 0


def test_the_memory_bench_samples_a_worker_that_keeps_sending(tmp_path: Path) -> None:
    pytest.importorskip("psutil", reason="psutil comes with the test extra")
    result = memory.measure(backend(), backend_url(), tmp_path, count=200, soak=2)

    assert float(result.figures["rss_after_first_pass_mb"]) > 0
    assert int(result.figures["soak_messages"]) > 0


@pytest.mark.postgres_only
def test_three_workers_share_one_outbox_once_each(tmp_path: Path) -> None:
    shared = scale.shared_outbox(backend_url(), tmp_path, 150)

    assert sum(shared["per_worker_sent"]) == 150
    assert shared["duplicates"] == 0 and shared["lost"] == 0


def test_end_to_end_new_ros_on_the_bridge_become_texts_accepted_once_each(tmp_path: Path) -> None:
    runs = e2e.measure(backend(), pg_url=backend_url(), sqlite_dir=tmp_path, count=20, rounds=1)

    # `pitwall worker --once` raised if any of the 20 texts was missing or sent twice.
    assert runs["pitwall_poll_to_last_accept"][0] > 0 and runs["pitwall_first_poll"][0] > 0
    assert runs["pitwall_startup"][0] > 0
    assert runs["requests_loop"][0] > 0 and runs["own-client_loop"][0] > 0


def test_settling_vacuums_what_setup_rewrote_and_empties_the_write_ahead_log(
    database: Database, database_url: str
) -> None:
    """`bench.common.settle`, run before each timed step of the dispatch and ingest benches:
    no dead row versions left by the setup's rewrite (PostgreSQL), no log left to check-
    point mid-measurement (SQLite's -wal file emptied)."""
    load_sample_dealer(database)
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE rooftop SET name = name || ''"))

    settle(database.engine, "rooftop")

    if database.engine.dialect.name == "postgresql":
        with database.engine.connect() as connection:
            dead, vacuums = connection.execute(
                text(
                    "SELECT n_dead_tup, vacuum_count FROM pg_stat_user_tables"
                    " WHERE relname = 'rooftop'"
                )
            ).one()
        assert (dead, vacuums) == (0, 1)
    else:
        wal = Path(f"{make_url(database_url).database}-wal")
        assert wal.exists() and wal.stat().st_size == 0

"""The ingest and webhook benchmarks run end to end on small data: correctness, never timing."""

from __future__ import annotations

import pytest

from bench import ingest, webhooks


def test_ingest_counts_changes_and_writes_nothing_for_an_unchanged_poll(database_url: str) -> None:
    figures = ingest.measure(database_url, 400)

    assert figures["unchanged_counts"]["unchanged"] == 400
    assert figures["unchanged_data_rows_written"] == 0
    assert figures["full_changed"] == 20  # every 20th RO moved on: 5%
    assert figures["incremental_changed"] == 20
    written = figures["incremental_rows_written"]
    assert written["repair_order"] == 20 and written["ro_event"] >= 1
    assert "customer" not in written and "ro_line" not in written  # unchanged parts untouched
    assert figures["first_poll_new_ros"] == 100


@pytest.mark.postgres_only
@pytest.mark.slow
def test_webhooks_answer_every_signed_text_without_errors(database_url: str) -> None:
    figures = webhooks.measure(
        database_url, customers=2_000, extra_phones=400, seconds=2, closed_seconds=1
    )

    for run in ("pitwall_100rps", "pitwall_closed", "bare_100rps", "bare_closed"):
        assert figures[f"{run}_errors"] == 0, run
        assert figures[f"{run}_requests"] > 0, run
    assert figures["pitwall_100rps_requests"] == 200  # open loop: 100/s for 2 s, all answered

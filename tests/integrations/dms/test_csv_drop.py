"""The CSV drop folder: grouping rows into ROs, processed/ and failed/ moves."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from integrations.dms.base import DmsError, MalformedRecord
from integrations.dms.csv_drop import CsvDropAdapter
from integrations.dms.registry import build_adapter

COLUMNS = {
    "ro_number": "RO#",
    "status": "Status",
    "opened_at": "Opened",
    "promised_at": "Promised",
    "customer_id": "Cust#",
    "first_name": "First",
    "last_name": "Last",
    "mobile_phone": "Cell",
    "sms_consent": "Texts OK",
    "vin": "VIN",
    "op_code": "Op",
    "description": "Description",
    "amount": "Amount",
    "line_status": "Line Status",
}
HEADER = (
    "RO#,Status,Opened,Promised,Cust#,First,Last,Cell,Texts OK,VIN,Op,Description,Amount,"
    "Line Status\n"
)


def _adapter(folder: Path) -> CsvDropAdapter:
    adapter = build_adapter(
        "csv",
        {"path": str(folder), "columns": COLUMNS, "datetime_format": "%m/%d/%Y %H:%M"},
        rooftop_slug="bayview-toyota",
        timezone="America/Los_Angeles",
    )
    assert isinstance(adapter, CsvDropAdapter)
    return adapter


def test_rows_are_grouped_by_ro_and_the_file_moves_on_ack(tmp_path: Path) -> None:
    (tmp_path / "open_ros.csv").write_text(
        HEADER + "5001,WIP,11/22/2026 07:45,11/22/2026 16:30,C1,Sam,Lee,(415) 555-0142,Y,"
        "JTMW1RFV5MD012345,OILCHG,Oil and filter,89.95,approved\n"
        + "5001,WIP,11/22/2026 07:45,11/22/2026 16:30,C1,Sam,Lee,(415) 555-0142,Y,"
        'JTMW1RFV5MD012345,BRKPAD,Front brake pads,"1,234.50",declined\n'
        + "5002,OPEN,11/22/2026 08:10,,C2,Ana,Ruiz,4155550143,,,,,,\n",
        encoding="utf-8",
    )
    adapter = _adapter(tmp_path)
    (page,) = list(adapter.fetch_changed(None))
    ros = [adapter.normalise(r) for r in page.records]
    assert [ro.ro_number for ro in ros] == ["5001", "5002"]
    assert ros[0].promised_at == datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
    assert [(li.op_code, li.amount_cents, li.status) for li in ros[0].lines] == [
        ("OILCHG", 8995, "approved"),
        ("BRKPAD", 123450, "declined"),
    ]
    assert ros[1].lines == () and ros[1].customer is not None
    assert ros[1].customer.sms_consent is None
    assert (tmp_path / "open_ros.csv").exists()  # not moved until the poller commits
    assert page.ack is not None
    page.ack()
    assert not (tmp_path / "open_ros.csv").exists()
    assert (tmp_path / "processed" / "open_ros.csv").exists()
    assert list(adapter.fetch_changed(None)) == []  # each file is processed once


def test_a_recurring_file_name_never_overwrites_a_processed_one(tmp_path: Path) -> None:
    adapter = _adapter(tmp_path)
    for _ in range(2):
        (tmp_path / "open_ros.csv").write_text(HEADER, encoding="utf-8")
        for page in adapter.fetch_changed(None):
            assert page.ack is not None
            page.ack()
    assert len(list((tmp_path / "processed").iterdir())) == 2


def test_a_bad_row_is_a_malformed_record_not_a_failed_file(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(
        HEADER
        + "5001,WIP,11/22/2026 07:45,tomorrow,C1,Sam,Lee,,,,OILCHG,Oil,89.95,approved\n"
        + "5002,WIP,11/22/2026 07:45,,C1,Sam,Lee,,,,OILCHG,Oil,eighty,approved\n"
        + ",WIP,11/22/2026 07:45,,C1,Sam,Lee,,,,OILCHG,Oil,1.00,approved\n"
        + "5003,WIP,11/22/2026 07:45,,C1,Sam,Lee,,,,OILCHG,Oil,1.00,approved\n",
        encoding="utf-8",
    )
    adapter = _adapter(tmp_path)
    (page,) = list(adapter.fetch_changed(None))
    reasons = []
    for record in page.records:
        try:
            adapter.normalise(record)
        except MalformedRecord as exc:
            reasons.append(exc.reason)
    assert reasons == [
        "promised_at: not a %m/%d/%Y %H:%M time: 'tomorrow' (a.csv, row 2)",
        "amount: not an amount: 'eighty' (a.csv, row 3)",
        "ro_number: missing (a.csv, row 4)",
    ]
    assert len(page.records) == 4  # the good RO 5003 is still there
    assert not (tmp_path / "failed").exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "the file is empty (no header row)"),
        (b"RO#,Status\n5001,WIP\n", "missing required columns: opened_at (column 'Opened')"),
        (b"RO#,Status,Opened\n\xff\xfe\x00bad", "not utf-8-sig text"),
    ],
)
def test_an_unreadable_file_goes_to_failed_with_its_reason(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    (tmp_path / "broken.csv").write_bytes(content)
    (tmp_path / "good.csv").write_text(HEADER, encoding="utf-8")
    pages = list(_adapter(tmp_path).fetch_changed(None))
    assert len(pages) == 1  # the good file is still read
    assert (tmp_path / "failed" / "broken.csv").exists()
    written = (tmp_path / "failed" / "broken.csv.reason.txt").read_text("utf-8")
    assert written.startswith(reason)


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    adapter = _adapter(tmp_path / "nope")
    with pytest.raises(DmsError, match=r"rooftop 'bayview-toyota' \(csv\): dms.path .* is not a"):
        adapter.check()


def test_iso_times_without_offset_are_local(tmp_path: Path) -> None:
    adapter = CsvDropAdapter(path=str(tmp_path), rooftop_slug="r", timezone="America/New_York")
    (tmp_path / "x.csv").write_text(
        "ro_number,status,opened_at\nR1,OPEN,2026-07-01T09:00:00\n", encoding="utf-8"
    )
    (page,) = list(adapter.fetch_changed(None))
    assert adapter.normalise(page.records[0]).opened_at == datetime(2026, 7, 1, 13, tzinfo=UTC)

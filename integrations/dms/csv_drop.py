"""CSV drop folder (``kind = "csv"``) for small dealers who can only export a file.

Format: one row per RO *line*; rows with the same RO number (in one file) are
one repair order, whose RO-level fields come from its first row. Header names
are mapped to Pitwall fields by ``columns`` (``{ro_number = "RO#", ...}``;
unmapped fields default to a header of the same name). Required: ``ro_number``,
``status``, ``opened_at``. Times are ISO 8601, or ``datetime_format``
(strptime) when set; times without an offset are the rooftop's local time.
Amounts may be written "1,234.50" or "$89.95". ``line_status`` accepts
approved/declined/pending/completed (or A/D/P/C, yes/no, recommended).

Files: every ``*.csv`` directly in ``path`` (exporters should write under
another name and rename, so a half-written file is never read). Each file is
one DmsPage; its ``ack`` moves it to ``processed/``. A file that cannot be read
at all (encoding, no header, missing required columns) is moved to ``failed/``
with ``<name>.reason.txt`` beside it. A bad row is not a bad file: it becomes a
MalformedRecord on normalise and is quarantined by the poller.
"""

from __future__ import annotations

import csv
import functools
import os
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from integrations.dms import parsing as p
from integrations.dms.base import (
    DmsCustomer,
    DmsError,
    DmsLine,
    DmsPage,
    DmsVehicle,
    LineStatus,
    MalformedRecord,
    RawRecord,
    RepairOrderRecord,
    utcnow,
)

COLUMN_FIELDS = frozenset(
    {
        "ro_number",
        "status",
        "opened_at",
        "updated_at",
        "promised_at",
        "closed_at",
        "advisor_id",
        "advisor_name",
        "customer_id",
        "first_name",
        "last_name",
        "phone",
        "mobile_phone",
        "home_phone",
        "work_phone",
        "email",
        "language",
        "sms_consent",
        "marketing_consent",
        "vin",
        "year",
        "make",
        "model",
        "mileage",
        "line_code",
        "op_code",
        "description",
        "amount",
        "line_status",
    }
)
REQUIRED_COLUMNS = ("ro_number", "status", "opened_at")
_LINE_STATUS: dict[str, LineStatus] = {
    **dict.fromkeys(("approved", "a", "yes", "y"), "approved"),
    **dict.fromkeys(("declined", "d", "no", "n", "refused"), "declined"),
    **dict.fromkeys(("pending", "p", "recommended", "r"), "pending"),
    **dict.fromkeys(("completed", "c", "complete", "done"), "completed"),
}


class UnreadableFile(Exception):
    """The whole file is unusable; the reason goes into ``failed/<name>.reason.txt``."""


class CsvDropAdapter:
    """Reads CSV exports dropped into a folder."""

    kind = "csv"
    snapshot = False

    def __init__(
        self,
        *,
        path: str,
        rooftop_slug: str,
        timezone: str,
        columns: Mapping[str, str] | None = None,
        delimiter: str = ",",
        encoding: str = "utf-8-sig",  # -sig: Excel's exports start with a BOM
        datetime_format: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.folder = Path(path)
        self.rooftop_slug = rooftop_slug
        self.zone = ZoneInfo(timezone)
        self.columns = {field: field for field in COLUMN_FIELDS} | dict(columns or {})
        self.delimiter, self.encoding = delimiter, encoding
        self.datetime_format = datetime_format
        self.clock = clock

    def _error(self, detail: str) -> DmsError:
        return DmsError(detail, rooftop_slug=self.rooftop_slug, kind=self.kind)

    def fetch_changed(self, since: datetime | None) -> Iterator[DmsPage]:
        """One page per readable file, oldest name first; unreadable files go to failed/."""
        self.check()
        for file in sorted(f for f in self.folder.glob("*.csv") if f.is_file()):
            try:
                records = self._read(file)
            except UnreadableFile as exc:
                self._move(file, "failed", reason=str(exc))
                continue
            yield DmsPage(records=records, ack=functools.partial(self._move, file, "processed"))

    def _read(self, file: Path) -> list[RawRecord]:
        try:
            with file.open(newline="", encoding=self.encoding) as handle:
                reader = csv.DictReader(handle, delimiter=self.delimiter)
                header = reader.fieldnames
                if not header:
                    raise UnreadableFile("the file is empty (no header row)")
                missing = [
                    f"{field} (column {self.columns[field]!r})"
                    for field in REQUIRED_COLUMNS
                    if self.columns[field] not in header
                ]
                if missing:
                    raise UnreadableFile("missing required columns: " + ", ".join(missing))
                rows = [(reader.line_num, dict(row)) for row in reader]
        except UnicodeDecodeError as exc:
            raise UnreadableFile(f"not {self.encoding} text: {exc}") from exc
        except csv.Error as exc:
            raise UnreadableFile(f"not valid CSV: {exc}") from exc
        modified = datetime.fromtimestamp(file.stat().st_mtime, UTC).isoformat()
        groups: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        records: list[RawRecord] = []
        for line, row in rows:
            number = (row.get(self.columns["ro_number"]) or "").strip()
            if not number:
                # Cannot be grouped; quarantine the row on its own.
                payload = {
                    "file": file.name,
                    "file_modified": modified,
                    "rows": [row],
                    "lines": [line],
                }
                records.append(RawRecord(payload=payload, ro_number=None))
                continue
            groups.setdefault(number, []).append((line, row))
        for number, group in groups.items():
            payload = {
                "file": file.name,
                "file_modified": modified,
                "rows": [row for _, row in group],
                "lines": [line for line, _ in group],
            }
            records.append(RawRecord(payload=payload, ro_number=number))
        # Keep the file's order, so quarantine reports read top to bottom.
        return sorted(records, key=lambda record: record.payload["lines"][0])

    def _move(self, file: Path, folder: str, reason: str | None = None) -> None:
        target_dir = self.folder / folder
        target_dir.mkdir(exist_ok=True)
        target = target_dir / file.name
        if target.exists():
            # The same export name can recur (e.g. "open_ros.csv" hourly); never overwrite.
            stamp = self.clock().strftime("%Y%m%dT%H%M%S%f")
            target = target_dir / f"{file.stem}.{stamp}{file.suffix}"
        os.replace(file, target)
        if reason is not None:
            target.with_name(target.name + ".reason.txt").write_text(reason + "\n", "utf-8")

    def fetch_one(self, ro_number: str) -> RawRecord | None:
        """A drop folder cannot be asked about one RO."""
        return None

    def check(self) -> None:
        """The drop folder exists and Pitwall may move files out of it."""
        if not self.folder.is_dir():
            raise self._error(f"dms.path {str(self.folder)!r} is not a directory")
        if not os.access(self.folder, os.R_OK | os.W_OK | os.X_OK):
            raise self._error(f"dms.path {str(self.folder)!r} is not readable and writable")

    def close(self) -> None:
        """Nothing to release."""

    def normalise(self, record: RawRecord) -> RepairOrderRecord:
        """Turn one RO's rows into Pitwall's type (raises MalformedRecord naming row and field)."""
        rows = p.sequence(record.payload.get("rows"), "rows")
        lines = record.payload.get("lines") or [0] * len(rows)
        if not rows:
            raise MalformedRecord("rows: no rows")
        first = rows[0]
        where = f"row {lines[0]}"

        def get(row: dict[str, Any], field: str) -> Any:
            return row.get(self.columns[field])

        try:
            number = p.required_text(get(first, "ro_number"), "ro_number")
            opened_at = self._time(get(first, "opened_at"), "opened_at")
            if opened_at is None:
                raise MalformedRecord("opened_at: missing")
            header: dict[str, Any] = {
                "raw_status": p.required_text(get(first, "status"), "status"),
                "updated_at": self._time(get(first, "updated_at"), "updated_at")
                or p.iso_time(record.payload.get("file_modified"), "file_modified"),
                "promised_at": self._time(get(first, "promised_at"), "promised_at"),
                "closed_at": self._time(get(first, "closed_at"), "closed_at"),
                "advisor_id": p.text(get(first, "advisor_id"), "advisor_id"),
                "advisor_name": p.text(get(first, "advisor_name"), "advisor_name"),
                "customer": self._customer(first),
                "vehicle": self._vehicle(first),
            }
            parsed: list[DmsLine] = []
            for line, row in zip(lines, rows, strict=False):
                where = f"row {line}"
                if p.text(get(row, "op_code"), "op_code") is not None:
                    parsed.append(self._line(row, len(parsed)))
        except MalformedRecord as exc:
            raise MalformedRecord(f"{exc.reason} ({record.payload.get('file')}, {where})") from exc
        return RepairOrderRecord(
            ro_number=number, opened_at=opened_at, lines=tuple(parsed), **header
        )

    def _time(self, value: Any, field: str) -> datetime | None:
        raw = p.text(value, field)
        if raw is None or self.datetime_format is None:
            return p.iso_time(raw, field, local=self.zone)
        return p.local_time(raw, self.datetime_format, field, self.zone)

    def _customer(self, row: dict[str, Any]) -> DmsCustomer | None:
        external_id = p.text(row.get(self.columns["customer_id"]), "customer_id")
        if external_id is None:
            return None
        phones = [
            phone
            for field, kind in (
                ("mobile_phone", "mobile"),
                ("phone", None),
                ("home_phone", "home"),
                ("work_phone", "work"),
            )
            if (phone := p.phone(row.get(self.columns[field]), kind, field)) is not None
        ]
        return DmsCustomer(
            external_id=external_id,
            first_name=p.text(row.get(self.columns["first_name"]), "first_name"),
            last_name=p.text(row.get(self.columns["last_name"]), "last_name"),
            phones=tuple(phones),
            email=p.text(row.get(self.columns["email"]), "email"),
            language=p.language(row.get(self.columns["language"])),
            sms_consent=p.consent(row.get(self.columns["sms_consent"]), "sms_consent"),
            marketing_consent=p.consent(
                row.get(self.columns["marketing_consent"]), "marketing_consent"
            ),
        )

    def _vehicle(self, row: dict[str, Any]) -> DmsVehicle | None:
        values = {f: row.get(self.columns[f]) for f in ("vin", "year", "make", "model", "mileage")}
        if not any(values.values()):
            return None
        return DmsVehicle(
            vin=p.vin(values["vin"]),
            year=p.integer(values["year"], "year", low=1900, high=2100),
            make=p.text(values["make"], "make"),
            model=p.text(values["model"], "model"),
            mileage=p.integer(values["mileage"], "mileage"),
        )

    def _line(self, row: dict[str, Any], index: int) -> DmsLine:
        raw_status = p.required_text(row.get(self.columns["line_status"]), "line_status")
        status = _LINE_STATUS.get(raw_status.lower())
        if status is None:
            raise MalformedRecord(f"line_status: unknown line status {raw_status!r}")
        return DmsLine(
            line_code=p.text(row.get(self.columns["line_code"]), "line_code") or str(index + 1),
            op_code=p.required_text(row.get(self.columns["op_code"]), "op_code"),
            description=p.text(row.get(self.columns["description"]), "description") or "",
            amount_cents=p.cents(row.get(self.columns["amount"]) or "0", "amount"),
            status=status,
        )

"""The DMS port: the only module the app imports from ``integrations.dms``.

Every adapter (REST bridge, CDK, Tekion, Dealertrack, CSV drop, simulator) turns
its vendor's shapes into the frozen records below; nothing vendor-specific
crosses this line. Stage mapping is not done here: ``raw_status`` is passed on
as the DMS wrote it and the app maps it through the rooftop's status map.
"""

from __future__ import annotations

import hashlib
import marshal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, runtime_checkable

import msgspec

LineStatus = Literal["approved", "declined", "pending", "completed"]
LINE_STATUSES: tuple[LineStatus, ...] = ("approved", "declined", "pending", "completed")


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime (the default adapter clock)."""
    return datetime.now(UTC)


class _Record(msgspec.Struct, frozen=True, gc=False):
    """A normalised record's base: immutable, hashable, compared by value.

    A msgspec Struct rather than a frozen dataclass: a poll builds six of these per
    RO it reads, and a frozen dataclass's ``__init__`` (an ``object.__setattr__`` per
    field) took 5.7 of the 10.5 us that normalising a bridge RO cost. They hold only
    values and tuples of records (no cycles), so the collector need not track them.
    Copy one with changes through ``msgspec.structs.replace``.
    """


class DmsPhone(_Record, frozen=True):
    """A phone number exactly as the DMS holds it; the app parses it to E.164."""

    number: str
    kind: str | None = None  # "mobile" | "home" | "work" | None


class DmsCustomer(_Record, frozen=True):
    """The customer on a repair order, under the DMS's own id for them."""

    external_id: str
    first_name: str | None = None
    last_name: str | None = None
    phones: tuple[DmsPhone, ...] = ()
    email: str | None = None
    language: str | None = None  # lowercase ISO 639-1 ("en", "es", "fr") or None
    sms_consent: bool | None = None  # None: the DMS does not say; rooftop policy decides
    marketing_consent: bool | None = None

    def content(self) -> tuple[Any, ...]:
        """Everything the DMS says about the customer, as plain tuples for a hash."""
        return (
            self.external_id,
            self.first_name,
            self.last_name,
            tuple([(phone.number, phone.kind) for phone in self.phones]),
            self.email,
            self.language,
            self.sms_consent,
            self.marketing_consent,
        )


class DmsVehicle(_Record, frozen=True):
    """The vehicle on a repair order; ``vin`` is None unless it is a well-formed VIN."""

    vin: str | None = None
    year: int | None = None
    make: str | None = None
    model: str | None = None
    mileage: int | None = None


class DmsLine(_Record, frozen=True):
    """One job line. Money is always integer cents.

    ``note`` is what the technician wrote about the line where the DMS carries it
    (CDK's ``line.cause``/``storyText``, Dealertrack's further detail ``Comments``,
    the REST bridge's optional ``note``): the customer's page shows it beside the price.
    """

    line_code: str
    op_code: str
    description: str
    amount_cents: int
    status: LineStatus
    note: str | None = None


class RepairOrderRecord(_Record, frozen=True):
    """A normalised repair order. All datetimes are aware and in UTC."""

    ro_number: str
    raw_status: str
    opened_at: datetime
    updated_at: datetime | None = None
    promised_at: datetime | None = None
    closed_at: datetime | None = None
    advisor_id: str | None = None
    advisor_name: str | None = None
    customer: DmsCustomer | None = None
    vehicle: DmsVehicle | None = None
    lines: tuple[DmsLine, ...] = ()

    def content(self) -> tuple[Any, ...]:
        """Everything but ``updated_at``, as plain tuples: what `content_hash` hashes.

        Positions 8, 9 and 10 are the customer's `DmsCustomer.content()`, the vehicle
        (VIN, year, make, model, mileage) and `lines_content(lines)`, so a caller that
        also hashes those parts (the poller) builds them once.
        """
        customer, vehicle = self.customer, self.vehicle
        return (
            "ro:1",
            self.ro_number,
            self.raw_status,
            _instant(self.opened_at),
            _instant(self.promised_at),
            _instant(self.closed_at),
            self.advisor_id,
            self.advisor_name,
            None if customer is None else customer.content(),
            None
            if vehicle is None
            else (vehicle.vin, vehicle.year, vehicle.make, vehicle.model, vehicle.mileage),
            lines_content(self.lines),
        )

    def content_hash(self) -> str:
        """SHA-256 of everything but ``updated_at`` (`content`), stable across processes.

        ``updated_at`` is left out so that a re-read of an unchanged RO (an
        overlap window, a snapshot DMS that stamps fetch time) hashes the same
        and costs the poller zero writes. A poll hashes every record it reads, so
        the canonical form is marshal (version 2: no interning flags, so equal
        content gives equal bytes in every process) of plain tuples, with times as
        POSIX seconds (equal instants in any zone hash the same).
        """
        return hashlib.sha256(marshal.dumps(self.content(), 2)).hexdigest()


def lines_content(lines: tuple[DmsLine, ...]) -> tuple[tuple[Any, ...], ...]:
    """The job lines as plain tuples, for a hash.

    A line without a note hashes as it did before notes existed, so an upgrade does
    not make every stored RO look changed on its first poll.
    """
    return tuple(
        [  # a list first: tuple() of a generator costs a quarter of a microsecond more
            (line.line_code, line.op_code, line.description, line.amount_cents, line.status)
            if line.note is None
            else (
                line.line_code,
                line.op_code,
                line.description,
                line.amount_cents,
                line.status,
                line.note,
            )
            for line in lines
        ]
    )


def _instant(value: datetime | None) -> float | None:
    # POSIX seconds are exact to the microsecond for any date a DMS holds.
    return None if value is None else value.timestamp()


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as the vendor sent it, kept JSON-serialisable for quarantine."""

    payload: dict[str, Any]
    ro_number: str | None = None  # best-effort hint, for quarantine and logs


@dataclass(slots=True)
class DmsPage:
    """A batch of raw records; the poller calls ``ack()`` once it has committed them.

    ``watermark`` (on the last page of a read, never earlier) says the DMS has been read
    up to that instant: every change before it is in this page or an earlier one. The
    poller moves its cursor there once the page is committed, so a vendor whose records
    carry no modification time (Fortellis) or a quiet window with no changes at all still
    moves the cursor, and the next read asks only for what changed since.
    """

    records: list[RawRecord]
    ack: Callable[[], None] | None = field(default=None)
    watermark: datetime | None = None


class MalformedRecord(Exception):
    """A record that cannot be normalised; ``reason`` names the field and the value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DmsError(Exception):
    """The DMS could not be read. The message names the rooftop and the DMS kind."""

    def __init__(
        self, detail: str, *, rooftop_slug: str | None = None, kind: str | None = None
    ) -> None:
        self.detail = detail
        self.rooftop_slug = rooftop_slug
        self.kind = kind
        prefix = ""
        if rooftop_slug is not None:
            prefix = f"rooftop '{rooftop_slug}'" + (f" ({kind})" if kind else "") + ": "
        elif kind is not None:
            prefix = f"{kind}: "
        super().__init__(prefix + detail)

    def doing(self, what: str) -> DmsError:
        """The same failure (same class, rooftop and kind), saying what was being done."""
        return type(self)(f"{what}: {self.detail}", rooftop_slug=self.rooftop_slug, kind=self.kind)


class DmsAuthError(DmsError):
    """Credentials were refused (401/403 or the vendor's equivalent); retrying will not help."""


class DmsUnavailable(DmsError):
    """The DMS did not answer usefully after bounded retries; try again next poll."""


@runtime_checkable
class DmsAdapter(Protocol):
    """What the poller needs from any DMS.

    ``snapshot`` is True when the last ``fetch_changed`` returned the full set of
    open ROs; the poller reads it after the last page, then diffs by content hash
    and asks ``fetch_one`` about ROs that vanished from the snapshot. An adapter
    that reads changes most polls and the full set now and then (Dealertrack) sets
    it per read.
    """

    kind: str
    snapshot: bool

    def fetch_changed(self, since: datetime | None) -> Iterator[DmsPage]:
        """Yield pages of ROs changed after ``since`` (every open RO when None)."""
        ...

    def normalise(self, record: RawRecord) -> RepairOrderRecord:
        """Turn one raw record into Pitwall's type; raise MalformedRecord if it cannot."""
        ...

    def fetch_one(self, ro_number: str) -> RawRecord | None:
        """Look one RO up by number; None when the DMS does not know it (or cannot say)."""
        ...

    def check(self) -> None:
        """Make one authenticated request; raise DmsError with a clear message on failure."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class LineAnswer(_Record, frozen=True):
    """A customer's answer to one line, to write back: the line as shown and the choice."""

    line_code: str
    op_code: str
    amount_cents: int
    choice: Literal["approved", "declined"]


@runtime_checkable
class WritesLineAnswers(Protocol):
    """An adapter that can write customers' approvals and declines back into the DMS.

    Only where a vendor documents a write of a line's status and the dealer has said
    which of its codes mean approved and declined (``writes_answers`` is then True);
    everywhere else the advisor's task says to enter the answer.
    """

    writes_answers: bool

    def write_line_answers(self, ro_number: str, answers: Sequence[LineAnswer]) -> None:
        """Set each line's status; raise DmsError naming what the DMS refused."""
        ...

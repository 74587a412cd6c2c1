"""Calls to Dealertrack OpenTrack's ServiceAPI (SOAP), with their sources in ``soap.py``.

How Pitwall polls [I, built on the [V] operations]: most polls ask
``OpenRepairOrderLookup`` with ``ModifiedAfter`` = the cursor minus
``modified_margin_minutes`` (the content hash still decides what changed); every
``full_read_minutes`` (and on the first poll of a process) it reads the whole open list
instead and says so (``snapshot``), so the poller can ask about open ROs that left the
list. ``fetch_one`` looks an RO up in the open list first, then with
``GetClosedRepairOrderDetails``: a closed RO comes back with its final lines (for
declined-work recovery). ``ModifiedAfter`` only covers open ROs [V], so closes are learnt
that way, within one full-read interval.

Endpoints [V D1]: production ``https://ot.dms.dealertrack.com/ServiceAPI.asmx``; staging
``https://otstaging.arkona.com/opentrack/ServiceAPI.asmx``; certification
``https://otcert.arkona.com/OpenTrack/ServiceAPI.asmx``. No paging parameters exist [V].
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from xml.etree.ElementTree import Element, ParseError
from zoneinfo import ZoneInfo

import httpx
from defusedxml import DefusedXmlException

from integrations.dms.base import (
    DmsAuthError,
    DmsError,
    DmsPage,
    LineAnswer,
    LineStatus,
    RawRecord,
    RepairOrderRecord,
    utcnow,
)
from integrations.dms.dealertrack import fields, soap
from integrations.dms.http import DEFAULT_TIMEOUT, RetryableResponse, RetryPolicy, VendorHttp

OPENTRACK_URL = "https://ot.dms.dealertrack.com/ServiceAPI.asmx"


class DealertrackAdapter:
    """Reads one Dealertrack dealer (enterprise, company and server) through OpenTrack."""

    kind = "dealertrack"

    def __init__(
        self,
        *,
        enterprise_code: str,
        company_number: str,
        server_name: str,
        username: str,
        password: str,
        rooftop_slug: str,
        timezone: str,
        base_url: str = OPENTRACK_URL,
        line_status_map: Mapping[str, LineStatus] | None = None,
        write_back_codes: Mapping[str, str] | None = None,
        modified_margin_minutes: float = 10.0,
        full_read_minutes: float = 60.0,
        clock: Callable[[], datetime] = utcnow,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = base_url
        # The element order of the operation pages.
        self.dealer = {
            "CompanyNumber": company_number,
            "EnterpriseCode": enterprise_code,
            "ServerName": server_name,
        }
        self._username, self._password = username, password
        self.zone = ZoneInfo(timezone)
        self.line_status_map = dict(line_status_map or {})
        # The dealer's LineStatus codes for an approved and a declined line: what they are
        # is the dealer's setup [U], so nothing is written back until they are named.
        self.write_back_codes = dict(write_back_codes or {})
        self.writes_answers = bool(self.write_back_codes)
        self.margin = timedelta(minutes=modified_margin_minutes)
        self.full_read_every = timedelta(minutes=full_read_minutes)
        self.clock = clock
        self.snapshot = False
        self._last_full_read: datetime | None = None
        self.http = VendorHttp(
            kind=self.kind, rooftop_slug=rooftop_slug, retry=retry, timeout=timeout,
            transport=transport,
        )  # fmt: skip

    # -- SOAP -----------------------------------------------------------------------

    def _call(
        self,
        operation: str,
        *,
        closed: bool,
        parms: Mapping[str, str | None],
        extra_xml: str = "",
    ) -> Element:
        body = soap.envelope(
            operation,
            dealer_tag="dealer" if closed else "Dealer",
            dealer=self.dealer,
            parms_tag="request" if closed else "LookupParms",
            parms=parms,
            username=self._username,
            password=self._password,
            now=self.clock(),
            extra_xml=extra_xml,
        )
        response = self.http.request(
            "POST",
            self.url,
            content=body,
            headers=lambda: {
                "Content-Type": "text/xml; charset=utf-8",
                "SOAPAction": soap.soap_action(operation),
            },
            inspect=lambda answer: self._inspect(operation, answer),
        )
        root = self._parse(response)
        self._raise_errors(operation, root)
        return root

    def _parse(self, response: httpx.Response) -> Element:
        try:
            return soap.parse_xml(response.content)
        except DefusedXmlException as exc:
            raise self.http.error(
                DmsError, f"refused an XML answer containing a DTD or entities ({exc!r})"
            ) from exc
        except ParseError as exc:
            raise self.http.error(DmsError, f"answer is not well-formed XML: {exc}") from exc

    def _inspect(self, operation: str, response: httpx.Response) -> None:
        """SOAP faults arrive as HTTP 500; only a Server fault is worth retrying."""
        if response.status_code < 500 or b"Fault" not in response.content:
            return
        fault = soap.find(self._parse(response), "Fault")
        if fault is None:
            return
        code, reason = soap.text_of(fault, "faultcode"), soap.text_of(fault, "faultstring")
        if code.endswith("Server"):
            raise RetryableResponse(response)
        lowered = reason.lower()
        if soap.NO_ACCESS_CODE in reason or "auth" in lowered or "password" in lowered:
            raise self.http.error(DmsAuthError, f"{operation} refused: {code} {reason}")
        raise self.http.error(DmsError, f"{operation} refused: {code} {reason}")

    def _raise_errors(self, operation: str, root: Element) -> None:
        for error in root.iter():
            if soap.local(error.tag) != "Error":
                continue
            code, message = soap.text_of(error, "Code"), soap.text_of(error, "Message")
            if code == soap.NO_ACCESS_CODE:
                raise self.http.error(
                    DmsAuthError,
                    f"{operation}: error 311, the dealer has not granted this vendor access "
                    f"to enterprise {self.dealer['EnterpriseCode']} / company "
                    f"{self.dealer['CompanyNumber']} ({message})",
                )

    def _open_lookup(self, **parms: str | None) -> list[dict[str, Any]]:
        root = self._call("OpenRepairOrderLookup", closed=False, parms=parms)
        result = soap.find(root, "OpenRepairOrderLookupResult")
        if result is None:
            raise self.http.error(DmsError, "lookup answer has no OpenRepairOrderLookupResult")
        return [soap.flatten(r) for r in result if soap.local(r.tag) == "Result"]

    # -- the port -------------------------------------------------------------------

    def fetch_changed(self, since: datetime | None) -> Iterator[DmsPage]:
        """Open ROs modified after ``since`` (minus the margin), or the whole open list."""
        now = self.clock()
        full = (
            since is None
            or self._last_full_read is None
            or now - self._last_full_read >= self.full_read_every
        )
        modified_after = None if full or since is None else soap.wire_time(since - self.margin)
        self.snapshot = False
        orders = self._open_lookup(ModifiedAfter=modified_after)
        if full:
            self._last_full_read = now
        self.snapshot = full
        yield DmsPage(records=[_raw(order) for order in orders], watermark=now)

    def fetch_one(self, ro_number: str) -> RawRecord | None:
        """The open RO by number, else its closed record; None when OpenTrack knows neither."""
        for order in self._open_lookup(RepairOrderNumber=ro_number):
            if order.get("RepairOrderNumber") == ro_number:
                return _raw(order)
        root = self._call(
            "GetClosedRepairOrderDetails", closed=True, parms={"RepairOrderNumber": ro_number}
        )
        closed = soap.find(root, "ClosedRepairOrder")
        if closed is None or not soap.text_of(closed, "RepairOrderNumber"):
            return None
        return RawRecord(payload={"ClosedRepairOrder": soap.flatten(closed)}, ro_number=ro_number)

    def write_line_answers(self, ro_number: str, answers: Sequence[LineAnswer]) -> None:
        """Set each answered line's LineStatus with ``UpdateRepairOrderLines`` [V D1 WSDL].

        Its request takes ``dealer`` and ``request`` {RepairOrderNumber, LineItems}; its
        answer is ``UpdateRepairOrderLinesResult`` with ``Success{Message}`` or
        ``Failure{Message, Errors/Error{Code, Message}}``. Writing the same status twice
        changes nothing, so a retry after an ambiguous failure is safe.
        """
        if not self.writes_answers:
            raise self.http.error(DmsError, "dms.write_back_codes is not set: nothing written")
        items = []
        for answer in answers:
            if not answer.line_code.isdigit():
                raise self.http.error(
                    DmsError,
                    f"RO {ro_number}: line {answer.line_code!r} is not an OpenTrack "
                    "ServiceLineNumber",
                )
            dollars, cents = divmod(answer.amount_cents, 100)
            code = self.write_back_codes[answer.choice]
            items.append((answer.op_code, answer.line_code, code, f"{dollars}.{cents:02d}"))
        operation = "UpdateRepairOrderLines"
        root = self._call(
            operation,
            closed=True,
            parms={"RepairOrderNumber": ro_number},
            extra_xml=soap.update_line_items(items),
        )
        failure = soap.find(root, "Failure")
        if failure is not None:
            errors = [
                f"{soap.text_of(e, 'Code')} {soap.text_of(e, 'Message')}".strip()
                for e in failure.iter()
                if soap.local(e.tag) == "Error"
            ]
            detail = "; ".join([soap.text_of(failure, "Message"), *errors]).strip("; ")
            raise self.http.error(DmsError, f"{operation} RO {ro_number} refused: {detail}")
        if soap.find(root, "Success") is None:
            raise self.http.error(DmsError, f"{operation} answer has neither Success nor Failure")

    def check(self) -> None:
        """One authenticated lookup: open ROs modified in the last minute."""
        try:
            self._open_lookup(ModifiedAfter=soap.wire_time(self.clock() - timedelta(minutes=1)))
        except DmsError as exc:
            raise exc.doing(f"OpenRepairOrderLookup at {self.url}") from exc

    def close(self) -> None:
        """Close connections."""
        self.http.close()

    def normalise(self, record: RawRecord) -> RepairOrderRecord:
        """Turn one OpenTrack RO into Pitwall's type (raises MalformedRecord)."""
        return fields.normalise(
            record.payload, zone=self.zone, line_status_map=self.line_status_map
        )


def _raw(order: dict[str, Any]) -> RawRecord:
    number = order.get("RepairOrderNumber")
    return RawRecord(payload=order, ro_number=str(number) if number else None)

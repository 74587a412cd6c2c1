"""A fake of Dealertrack OpenTrack's ServiceAPI.asmx in its sourced envelopes.

The wire format and its sources are in ``integrations/dms/dealertrack/soap.py``. The
fake answers ``OpenRepairOrderLookup`` (``RepairOrderNumber`` and ``ModifiedAfter``
honoured) with ``OpenRepairOrderLookupResult/Result`` rows, and
``GetClosedRepairOrderDetails`` with ``GetClosedRepairOrderDetailsResult/ClosedRepairOrder``,
and ``UpdateRepairOrderLines`` (the LineStatus of an open RO's lines) with ``Success`` or
``Failure``.
It checks the WS-Security ``UsernameToken`` (a ``PasswordText`` password) and the
dealer block: a wrong password is a ``soap:Client`` fault, a dealer that has not granted
access answers error 311, and ``faults`` with status 500 answer ``soap:Server`` faults.

``open_orders`` maps RepairOrderNumber to a Result row as `soap.flatten` reads it (the
D1 sample's element names, in its order; ``Details`` a list of rows);
``closed_orders`` maps it to a ClosedRepairOrder. ``close(number, closed)`` moves an RO
from one to the other. ``raw_answer`` answers every operation with any bytes (e.g. a
billion-laughs document); ``raw_answers[operation]`` just that one (a sourced sample).

Run standalone: ``python -m integrations.dms.fakes.dealertrack_fake --port 9103``
(enterprise ``ZE``, company ``ZE7``, server ``ot-fake``, user ``pitwall`` / ``secret``).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from integrations.dms.dealertrack import soap
from integrations.dms.fakes.common import FaultQueue

PATH = "/ServiceAPI.asmx"
_HEAD = (
    '<?xml version="1.0" encoding="utf-8"?><soap:Envelope '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    f'xmlns:soap="{soap.SOAP_NS}"><soap:Body>'
)
_TAIL = "</soap:Body></soap:Envelope>"


def _fault(code: str, reason: str) -> Response:
    body = (
        f"{_HEAD}<soap:Fault><faultcode>soap:{code}</faultcode>"
        f"<faultstring>{escape(reason)}</faultstring></soap:Fault>{_TAIL}"
    )
    return Response(body, status_code=500, media_type="text/xml")


def _wrapped(action: str, inner: str) -> Response:
    """``<Op>Response/<Op>Result`` around ``inner``, as the closed and update operations answer."""
    return Response(
        f'{_HEAD}<{action}Response xmlns="{soap.NS}"><{action}Result>{inner}'
        f"</{action}Result></{action}Response>{_TAIL}",
        media_type="text/xml",
    )


def _first(root: Element, *names: str) -> Element | None:
    for name in names:
        found = soap.find(root, name)
        if found is not None:  # an element with no children is falsy
            return found
    return None


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class DealertrackFake:
    """In-memory OpenTrack dealer."""

    def __init__(
        self,
        *,
        enterprise_code: str = "ZE",
        company_number: str = "ZE7",
        server_name: str = "ot-fake",
        username: str = "pitwall",
        password: str = "secret",
    ) -> None:
        self.dealer = {
            "CompanyNumber": company_number,
            "EnterpriseCode": enterprise_code,
            "ServerName": server_name,
        }
        self.username, self.password = username, password
        self.open_orders: dict[str, dict[str, Any]] = {}
        self.closed_orders: dict[str, dict[str, Any]] = {}
        self.raw_answer: bytes | None = None
        self.raw_answers: dict[str, bytes] = {}  # per operation, e.g. a sourced sample
        self.faults = FaultQueue()
        self.calls: list[tuple[str, dict[str, str]]] = []  # (operation, parameters)
        self.updates: list[tuple[str, list[dict[str, str]]]] = []  # (RO, LineItems) written
        self.app = Starlette(routes=[Route(PATH, self._service, methods=["POST"])])

    def put(self, *orders: dict[str, Any]) -> None:
        """Add or replace open ROs by ``RepairOrderNumber``."""
        for order in orders:
            self.open_orders[order["RepairOrderNumber"]] = order

    def close(self, number: str, closed: dict[str, Any]) -> None:
        """The RO leaves the open list and is found by GetClosedRepairOrderDetails."""
        self.open_orders.pop(number, None)
        self.closed_orders[number] = closed

    async def _service(self, request: Request) -> Response:
        action = request.headers.get("soapaction", "").strip('"').rsplit("/", 1)[-1]
        try:
            envelope = soap.parse_xml(await request.body())
        except Exception:
            return _fault("Client", "request is not a valid SOAP envelope")
        password = soap.find(envelope, "Password")
        if (
            soap.text_of(envelope, "Username") != self.username
            or password is None
            or (password.text or "") != self.password
            or password.get("Type") != soap.PASSWORD_TEXT
        ):
            return _fault("Client", "Authentication failed: bad username or password")
        body = soap.find(envelope, action)
        if body is None:
            return _fault("Client", f"SOAPAction {action!r} does not match the body")
        block = _first(body, "Dealer", "dealer")
        given = {k: soap.text_of(block, k) for k in self.dealer} if block is not None else {}
        parms_element = _first(body, "LookupParms", "request")
        parms = soap.flatten(parms_element) if parms_element is not None else {}
        self.calls.append((action, parms))
        if given != self.dealer:
            return self._answer(action, errors=[("311", "Dealer has not granted access")])
        fault = self.faults.take()
        if fault is not None:
            if fault.status_code >= 500:
                return _fault("Server", "Service temporarily unavailable")
            return fault
        raw = self.raw_answers.get(action, self.raw_answer)
        if raw is not None:
            return Response(raw, media_type="text/xml")
        if action == "OpenRepairOrderLookup":
            return self._open(parms)
        if action == "GetClosedRepairOrderDetails":
            return self._closed(parms.get("RepairOrderNumber", ""))
        if action == "UpdateRepairOrderLines":
            return self._update_lines(parms)
        return _fault("Client", f"operation {action!r} is not served by this fake")

    def _update_lines(self, parms: dict[str, Any]) -> Response:
        """Set LineStatus on the service line's A rows; the RO reads as modified now."""
        number = parms.get("RepairOrderNumber", "")
        order = self.open_orders.get(number)
        if order is None:
            return self._result("UpdateRepairOrderLines", f"RO {number} is not open", "404")
        items = parms.get("LineItems") or []
        details = order.get("Details") or []
        known = {row.get("ServiceLineNumber") for row in details}
        for item in items:
            if item.get("ServiceLineNumber") not in known:
                line = item.get("ServiceLineNumber")
                return self._result("UpdateRepairOrderLines", f"line {line} not on RO", "405")
        for item in items:
            for row in details:
                same = row.get("ServiceLineNumber") == item.get("ServiceLineNumber")
                if same and (row.get("LineType") or "").upper() == "A":
                    row["LineStatus"] = item.get("LineStatus", "")
        order["LastModified"] = soap.wire_time(datetime.now(UTC))
        self.updates.append((number, [dict(item) for item in items]))
        return self._result("UpdateRepairOrderLines", None, None)

    def _result(self, action: str, failure: str | None, code: str | None) -> Response:
        """``<Op>Result`` with ``Success{Message}`` or ``Failure{Message, Errors}``."""
        if failure is None:
            inner = "<Success><Message>Lines updated</Message></Success>"
        else:
            errors = soap.render("Errors", [{"Code": code, "Message": failure}])
            inner = f"<Failure><Message>{escape(failure)}</Message>{errors}</Failure>"
        return _wrapped(action, inner)

    def _open(self, parms: dict[str, Any]) -> Response:
        rows = list(self.open_orders.values())
        if parms.get("RepairOrderNumber"):
            rows = [r for r in rows if r["RepairOrderNumber"] == parms["RepairOrderNumber"]]
        if parms.get("ModifiedAfter"):
            after = _instant(parms["ModifiedAfter"])
            rows = [r for r in rows if _instant(r["LastModified"]) > after]
        inner = "".join(soap.render("Result", row) for row in rows)
        return Response(
            f'{_HEAD}<OpenRepairOrderLookupResult xmlns="{soap.NS}/transitional">'
            f"{inner}</OpenRepairOrderLookupResult>{_TAIL}",
            media_type="text/xml",
        )

    def _closed(self, number: str) -> Response:
        closed = self.closed_orders.get(number)
        if closed is None:
            return self._answer(
                "GetClosedRepairOrderDetails", errors=[("404", f"RO {number} not found")]
            )
        return self._answer("GetClosedRepairOrderDetails", closed=closed)

    def _answer(
        self,
        action: str,
        *,
        closed: dict[str, Any] | None = None,
        errors: list[tuple[str, str]] = (),  # type: ignore[assignment]
    ) -> Response:
        inner = ""
        if closed is not None:
            inner += soap.render("ClosedRepairOrder", closed, soap.CLOSED_ROW_NAMES)
        if errors:
            inner += soap.render("Errors", [{"Code": c, "Message": m} for c, m in errors])
        if action == "OpenRepairOrderLookup":
            return Response(
                f'{_HEAD}<OpenRepairOrderLookupResult xmlns="{soap.NS}/transitional">'
                f"{inner}</OpenRepairOrderLookupResult>{_TAIL}",
                media_type="text/xml",
            )
        return _wrapped(action, inner)


def main() -> None:
    """Serve an empty OpenTrack fake until interrupted."""
    import uvicorn

    parser = argparse.ArgumentParser(description="Dealertrack OpenTrack fake")
    parser.add_argument("--port", type=int, default=9103)
    args = parser.parse_args()
    uvicorn.run(DealertrackFake().app, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()

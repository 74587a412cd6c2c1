"""A fake of Dealertrack OpenTrack's SOAP ``OpenRepairOrderLookup``.

The wire format is in ``dealertrack.py``. ``records`` maps RONumber to a flat
dict of element names (``Details`` a list of dicts); ROs without
``ClosedFlag == "Y"`` are open. Set ``raw_answer`` to answer with any bytes
(e.g. a billion-laughs document). Auth failures and ``faults`` with status 500
answer SOAP faults, as OpenTrack does.

Run standalone: ``python -m integrations.dms.fakes.dealertrack_fake --port 9103``
(dealer ``DT1``, user ``pitwall`` / ``secret``; an empty dataset).
"""

from __future__ import annotations

import argparse
from typing import Any
from xml.sax.saxutils import escape

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from integrations.dms.dealertrack import parse_xml
from integrations.dms.fakes.common import FaultQueue

_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"


def _fault(code: str, reason: str) -> Response:
    body = (
        f'<soap:Envelope xmlns:soap="{_SOAP}"><soap:Body><soap:Fault>'
        f"<faultcode>soap:{code}</faultcode><faultstring>{escape(reason)}</faultstring>"
        "</soap:Fault></soap:Body></soap:Envelope>"
    )
    return Response(body, status_code=500, media_type="text/xml")


def _element(name: str, value: Any) -> str:
    if isinstance(value, list):
        inner = "".join(
            "<Detail>" + "".join(_element(k, v) for k, v in d.items()) + "</Detail>" for d in value
        )
        return f"<{name}>{inner}</{name}>"
    return f"<{name}>{escape(str(value))}</{name}>"


class DealertrackFake:
    """In-memory OpenTrack dealer."""

    def __init__(
        self, *, dealer_id: str = "DT1", username: str = "pitwall", password: str = "secret"
    ) -> None:
        self.dealer_id, self.username, self.password = dealer_id, username, password
        self.records: dict[str, dict[str, Any]] = {}
        self.raw_answer: bytes | None = None
        self.faults = FaultQueue()
        self.calls = 0
        self.app = Starlette(
            routes=[Route("/opentrack/ServiceAPI", self._lookup, methods=["POST"])]
        )

    def put(self, *records: dict[str, Any]) -> None:
        """Add or replace records by ``RONumber``."""
        for record in records:
            self.records[record["RONumber"]] = record

    async def _lookup(self, request: Request) -> Response:
        self.calls += 1
        try:
            envelope = parse_xml(await request.body())
        except Exception:
            return _fault("Client", "request is not a valid SOAP envelope")
        found = {e.tag.rsplit("}", 1)[-1]: (e.text or "").strip() for e in envelope.iter()}
        if (found.get("Username"), found.get("Password")) != (self.username, self.password):
            return _fault("Client", "Authentication failed: bad username or password")
        if found.get("DealerId") != self.dealer_id:
            return _fault("Client", f"Unknown dealer {found.get('DealerId')!r}")
        fault = self.faults.take()
        if fault is not None:
            return _fault("Server", "Service temporarily unavailable")
        if self.raw_answer is not None:
            return Response(self.raw_answer, media_type="text/xml")
        wanted = found.get("RepairOrderNumber") or None
        orders = [
            r
            for r in self.records.values()
            if r.get("ClosedFlag") != "Y" and (wanted is None or r["RONumber"] == wanted)
        ]
        body = "".join(
            "<RepairOrder>"
            + "".join(_element(k, v) for k, v in r.items() if k != "ClosedFlag")
            + "</RepairOrder>"
            for r in orders
        )
        return Response(
            f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{_SOAP}">'
            '<soap:Body><OpenRepairOrderLookupResponse xmlns="opentrack.dealertrack.com">'
            f"<OpenRepairOrderLookupResult><RepairOrders>{body}</RepairOrders>"
            "</OpenRepairOrderLookupResult></OpenRepairOrderLookupResponse>"
            "</soap:Body></soap:Envelope>",
            media_type="text/xml",
        )


def main() -> None:
    """Serve an empty Dealertrack fake until interrupted."""
    import uvicorn

    parser = argparse.ArgumentParser(description="Dealertrack OpenTrack fake")
    parser.add_argument("--port", type=int, default=9103)
    args = parser.parse_args()
    uvicorn.run(DealertrackFake().app, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()

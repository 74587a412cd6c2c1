"""One dealer's DMS per vendor, served by its fake over real HTTP, driven in Pitwall's words.

Each world opens, moves and closes repair orders in its vendor's own shape (the sourced
records of ``sources/``), and says which ``[rooftop.dms]`` table points a rooftop at it.
The end-to-end and reliability tests run the same story through every world.
"""

from __future__ import annotations

import asyncio
import copy
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from starlette.types import ASGIApp, Receive, Scope, Send

from integrations.dms.fakes import cdk_fake, dealertrack_fake, star_fake, tekion_fake
from integrations.dms.fakes.common import FaultQueue
from integrations.dms.fakes.server import FakeServer
from tests.integrations.dms.vendor_support import (
    opentrack_line,
    opentrack_row,
    source_json,
    star_order,
    tekion_ro,
)

ZONE = ZoneInfo("America/Los_Angeles")
SECRET = "vendor-secret-7f3a9c41"  # every world's client secret / password / secret key
KINDS = ("cdk", "dealertrack", "tekion", "star")


@dataclass(frozen=True)
class Line:
    """A job line in Pitwall's words: ``status`` is approved, declined or completed."""

    code: str
    op_code: str
    dollars: str
    status: str = "approved"


class Slow:
    """ASGI wrapper: the next ``times`` requests answer only after ``seconds`` (a DMS slower
    than the adapter's timeout)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app, self.times, self.seconds = app, 0, 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.times > 0:
            self.times -= 1
            await asyncio.sleep(self.seconds)
        await self.app(scope, receive, send)


class VendorWorld:
    """What every vendor world offers the tests."""

    kind: str
    statuses: ClassVar[dict[str, str]]  # Pitwall word -> the vendor's raw status
    line_codes: ClassVar[dict[str, str]]  # Pitwall line status -> the vendor's line code
    faults: FaultQueue

    def __init__(self) -> None:
        self._stack = ExitStack()
        self.slow: Slow | None = None
        self.url = ""

    def serve(self, app: ASGIApp) -> None:
        self.slow = Slow(app)
        self.url = self._stack.enter_context(FakeServer(self.slow)).url

    def close_server(self) -> None:
        self._stack.close()

    def status_map(self) -> str:
        stages = {"open": "checked_in", "ready": "ready_for_pickup", "closed": "closed"}
        return "\n".join(f'"{self.statuses[k]}" = "{v}"' for k, v in stages.items())

    def line_status_map(self) -> str:
        return ", ".join(f'"{code}" = "{status}"' for status, code in self.line_codes.items())

    def dms_table(self) -> str:
        raise NotImplementedError

    def open(self, number: str, *, phone: str, vin: str, lines: list[Line]) -> None:
        raise NotImplementedError

    def move(self, number: str, word: str) -> None:
        raise NotImplementedError

    def close(self, number: str) -> None:
        raise NotImplementedError

    def open_malformed(self, number: str) -> None:
        """An RO the adapter cannot normalise (its opening date is not a date)."""
        raise NotImplementedError


def _now() -> datetime:
    return datetime.now(UTC)


class CdkWorld(VendorWorld):
    kind = "cdk"
    statuses: ClassVar[dict[str, str]] = {"open": "OPEN", "ready": "READY", "closed": "CLOSED"}
    line_codes: ClassVar[dict[str, str]] = {"approved": "A", "declined": "D", "completed": "C"}

    def __init__(self) -> None:
        super().__init__()
        self.fake = cdk_fake.CdkFake(client_secret=SECRET)
        self.fake.check_status_after = 0
        self.faults = self.fake.faults
        self.serve(self.fake.app)

    def dms_table(self) -> str:
        return (
            f'kind = "cdk"\nbase_url = "{self.url}{cdk_fake.BASE_PATH}"\n'
            f'token_url = "{self.url}{cdk_fake.TOKEN_PATH}"\nclient_id = "pitwall"\n'
            f'client_secret = "{SECRET}"\nsubscription_id = "sub-1"\n'
            f"line_status_map = {{ {self.line_status_map()} }}\n"
        )

    def open(self, number: str, *, phone: str, vin: str, lines: list[Line]) -> None:
        record = copy.deepcopy(source_json("fortellis_sro_v1_result.json")["data"][0])
        local = _now().astimezone(ZONE)
        record.update(roNumber=number, statusCode="OPEN", openDate=f"{local:%Y-%m-%d}",
                      openTime=f"{local:%H:%M}", promisedDate="", promisedTime="")  # fmt: skip
        record["customer"]["phoneNumbers"] = [
            {"number": phone, "extension": "", "description": "Cell"}
        ]
        record["vehicle"]["vin"] = vin
        template = record["operations"][0]
        record["operations"] = []
        for line in lines:
            operation = copy.deepcopy(template)
            operation["line"].update(lineCode=line.code, statusCode=self.line_codes[line.status])
            operation["line"]["laborOperations"][0].update(
                opCode=line.op_code, opCodeDesc=line.op_code, sale=line.dollars
            )
            record["operations"].append(operation)
        self.fake.put(record)

    def move(self, number: str, word: str) -> None:
        record = copy.deepcopy(self.fake.records[number])
        record["statusCode"] = self.statuses[word]
        self.fake.put(record)

    def close(self, number: str) -> None:
        record = copy.deepcopy(self.fake.records[number])
        record.update(statusCode="CLOSED", closedDate=f"{_now().astimezone(ZONE):%Y-%m-%d}")
        self.fake.put(record)

    def open_malformed(self, number: str) -> None:
        self.open(number, phone="4155550199", vin="JTMW1RFV5MD099999", lines=[])
        self.fake.records[number]["openDate"] = "2026-13-45"


class DealertrackWorld(VendorWorld):
    kind = "dealertrack"
    statuses: ClassVar[dict[str, str]] = {"open": "1", "ready": "2", "closed": "CLOSED"}
    line_codes: ClassVar[dict[str, str]] = {"approved": "I", "declined": "D", "completed": "C"}

    def __init__(self) -> None:
        super().__init__()
        self.fake = dealertrack_fake.DealertrackFake(password=SECRET)
        self.faults = self.fake.faults
        self.serve(self.fake.app)
        self.billed: dict[str, list[Line]] = {}

    def dms_table(self) -> str:
        return (
            f'kind = "dealertrack"\nbase_url = "{self.url}{dealertrack_fake.PATH}"\n'
            'enterprise_code = "ZE"\ncompany_number = "ZE7"\nserver_name = "ot-fake"\n'
            f'username = "pitwall"\npassword = "{SECRET}"\nfull_read_minutes = 0\n'
            f"line_status_map = {{ {self.line_status_map()} }}\n"
        )

    def open(self, number: str, *, phone: str, vin: str, lines: list[Line]) -> None:
        local = _now().astimezone(ZONE)
        details = []
        for line in lines:
            details += opentrack_line(
                line.code, line.op_code, line.dollars, self.line_codes[line.status]
            )
        self.billed[number] = [line for line in lines if line.status != "declined"]
        self.fake.put(
            opentrack_row(
                number, ROStatus="1", OpenTransactionDate=f"{local:%Y%m%d}",
                TimeIn=f"{local:%H%M}", PromisedDateTime="0", CustomerPhoneNumber=phone,
                VIN=vin, Details=details, LastModified=_now().isoformat(),
            )
        )  # fmt: skip

    def move(self, number: str, word: str) -> None:
        row = self.fake.open_orders[number]
        row.update(ROStatus=self.statuses[word], LastModified=_now().isoformat())

    def close(self, number: str) -> None:
        row = self.fake.open_orders[number]
        today = f"{_now().astimezone(ZONE):%Y%m%d}"
        details = [
            {"LineNumber": line.code,
             "LaborDetails": [{"LaborOpCode": line.op_code, "LaborAmount": line.dollars}]}
            for line in self.billed[number]
        ]  # fmt: skip
        self.fake.close(
            number,
            {
                "RepairOrderNumber": number,
                "CustomerKey": row["CustomerKey"],
                "CustomerName": row["CustomerName"],
                "CustomerPhoneNumber": row["CustomerPhoneNumber"],
                "OpenDate": row["OpenTransactionDate"],
                "CloseDate": today,
                "FinalCloseDate": today,
                "VIN": row["VIN"],
                "Details": details,
            },
        )

    def open_malformed(self, number: str) -> None:
        self.open(number, phone="4155550199", vin="JHLRD1852VC899999", lines=[])
        self.fake.open_orders[number]["OpenTransactionDate"] = "20261345"


class TekionWorld(VendorWorld):
    kind = "tekion"
    statuses: ClassVar[dict[str, str]] = {
        "open": "OPEN",
        "ready": "READY_FOR_INVOICE",
        "closed": "CLOSED",
    }
    line_codes: ClassVar[dict[str, str]] = {
        "approved": "OPEN",
        "declined": "DECLINED",
        "completed": "COMPLETED",
    }

    def __init__(self) -> None:
        super().__init__()
        self.fake = tekion_fake.TekionFake(secret_key=SECRET)
        self.faults = self.fake.faults
        self.serve(self.fake.app)

    def dms_table(self) -> str:
        return (
            f'kind = "tekion"\nbase_url = "{self.url}{tekion_fake.BASE_PATH}"\n'
            f'app_id = "pitwall-app"\nsecret_key = "{SECRET}"\ndealer_id = "techmotors_4_0"\n'
            f"line_status_map = {{ {self.line_status_map()} }}\n"
        )

    def open(self, number: str, *, phone: str, vin: str, lines: list[Line]) -> None:
        now = int(_now().timestamp() * 1000)
        record = tekion_ro(number, now, status="OPEN", vin=vin, creationTime=now)
        jobs = [
            {"id": f"{number}-{line.code}", "jobNumber": line.code, "description": line.op_code,
             "status": self.line_codes[line.status],
             "operations": [{"opcode": line.op_code,
                             "labor": {"saleAmount": int(float(line.dollars) * 100)}}]}
            for line in lines
        ]  # fmt: skip
        customer = {"id": f"rc-{number}", "firstName": "Sam", "lastName": "Lee", "phone": phone}
        self.fake.put(record, jobs=jobs, customer=customer)

    def _touch(self, number: str, **changes: Any) -> None:
        record = self.fake.records[f"ro-{number}"]
        record.update(modifiedTime=int(_now().timestamp() * 1000), **changes)

    def move(self, number: str, word: str) -> None:
        self._touch(number, status=self.statuses[word])

    def close(self, number: str) -> None:
        self._touch(number, status="CLOSED", closedTime=int(_now().timestamp() * 1000))

    def open_malformed(self, number: str) -> None:
        self.open(number, phone="4155550199", vin="1FTEW1E45KF999999", lines=[])
        self._touch(number, creationTime="yesterday")


class StarWorld(VendorWorld):
    kind = "star"
    statuses: ClassVar[dict[str, str]] = {"open": "OPEN", "ready": "READY", "closed": "CLOSED"}
    line_codes: ClassVar[dict[str, str]] = {
        "approved": "APPROVED",
        "declined": "DECLINED",
        "completed": "COMPLETED",
    }

    def __init__(self) -> None:
        super().__init__()
        self.fake = star_fake.StarFake(token=SECRET)
        self.faults = self.fake.faults
        self.serve(self.fake.app)

    def dms_table(self) -> str:
        return (
            f'kind = "star"\nurl = "{self.url}{star_fake.PATH}"\ntoken = "{SECRET}"\n'
            f"line_status_map = {{ {self.line_status_map()} }}\n"
        )

    def open(self, number: str, *, phone: str, vin: str, lines: list[Line]) -> None:
        order = star_order(
            number, RepairOrderOpenedDate=_now().isoformat(), PromisedRepairCompletionDate=""
        )
        header = order["RepairOrderHeader"]
        person = header["CustomerParty"]["SpecifiedPerson"]
        person["TelephoneCommunication"] = [{"UseCode": "Mobile", "CompleteNumber": phone}]
        header["CustomerParty"]["PartyID"] = f"C-{number}"
        header["RepairOrderVehicleLineItem"]["Vehicle"]["VehicleID"] = vin
        order["Job"] = [
            {"JobNumberString": line.code, "OperationID": line.op_code,
             "OperationName": line.op_code, "JobStatusCode": self.line_codes[line.status],
             "Price": {"ChargeAmount": {"@currencyID": "USD", "#text": line.dollars}}}
            for line in lines
        ]  # fmt: skip
        self.fake.put(order)

    def move(self, number: str, word: str) -> None:
        order = copy.deepcopy(self.fake.orders[number])
        order["RepairOrderHeader"]["RepairOrderStatus"]["StatusCode"] = self.statuses[word]
        self.fake.put(order)

    def close(self, number: str) -> None:
        order = copy.deepcopy(self.fake.orders[number])
        order["RepairOrderHeader"]["RepairOrderStatus"]["StatusCode"] = "CLOSED"
        order["RepairOrderHeader"]["RepairOrderInvoiceDate"] = _now().isoformat()
        self.fake.put(order)

    def open_malformed(self, number: str) -> None:
        self.open(number, phone="4155550199", vin="JTMW1RFV5MD099999", lines=[])
        order = copy.deepcopy(self.fake.orders[number])
        order["RepairOrderHeader"]["RepairOrderOpenedDate"] = "2026-13-45"
        self.fake.put(order)


WORLDS: dict[str, type[VendorWorld]] = {
    "cdk": CdkWorld,
    "dealertrack": DealertrackWorld,
    "tekion": TekionWorld,
    "star": StarWorld,
}

"""Contract tests: payloads reconstructed field by field from the public sources parse, and
each fake answers in the same envelope and field names, so a fake cannot drift from them.

The payloads live in ``sources/`` with a comment or a name saying where they come from
(facts/dms.md lists the sources C1-C4, D1-D2, T1-T5, R1-R2).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from integrations.dms.base import RawRecord
from integrations.dms.cdk import CdkAdapter
from integrations.dms.dealertrack import DealertrackAdapter, parse_xml, soap
from integrations.dms.fakes import cdk_fake, tekion_fake
from integrations.dms.fakes.cdk_fake import CdkFake
from integrations.dms.fakes.dealertrack_fake import PATH, DealertrackFake
from integrations.dms.fakes.server import FakeServer
from integrations.dms.fakes.tekion_fake import TekionFake
from integrations.dms.http import RetryPolicy
from integrations.dms.star import StarAdapter, bod
from integrations.dms.tekion import TekionAdapter
from tests.integrations.dms.vendor_support import source_bytes, source_json

LA = "America/Los_Angeles"
NY = "America/New_York"


def _keys(value: Any) -> Any:
    """The shape of a JSON value: keys all the way down, values left out."""
    if isinstance(value, dict):
        return {k: _keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keys(value[0])] if value else []
    return None


# -- CDK / Fortellis (C1) ---------------------------------------------------------------


@pytest.fixture
def cdk() -> Iterator[tuple[CdkFake, CdkAdapter]]:
    fake = CdkFake()
    fake.check_status_after = 0
    with FakeServer(fake.app) as server:
        adapter = CdkAdapter(
            client_id="pitwall",
            client_secret="secret",
            subscription_id="sub-1",
            rooftop_slug="bayview-toyota",
            timezone=LA,
            base_url=server.url + cdk_fake.BASE_PATH,
            token_url=server.url + cdk_fake.TOKEN_PATH,
            line_status_map={"C": "completed", "D": "declined"},
            retry=RetryPolicy(sleep=lambda _s: None),
        )
        yield fake, adapter
        adapter.close()


def test_the_fortellis_result_from_c1_parses_field_by_field(
    cdk: tuple[CdkFake, CdkAdapter],
) -> None:
    fake, adapter = cdk
    (sourced,) = source_json("fortellis_sro_v1_result.json")["data"]
    fake.put(sourced)
    (page,) = list(adapter.fetch_changed(None))
    assert [r.payload for r in page.records] == [sourced]  # the fake hands it over untouched
    ro = adapter.normalise(page.records[0])
    assert (ro.ro_number, ro.raw_status, ro.advisor_id) == ("123456", "OPEN", "4021")
    assert ro.opened_at == datetime(2026, 11, 22, 15, 45, tzinfo=UTC)  # 07:45 PST
    assert ro.promised_at == datetime(2026, 11, 23, 0, 30, tzinfo=UTC)  # 16:30 PST
    assert ro.updated_at is None and ro.closed_at is None
    assert ro.customer is not None
    assert (ro.customer.external_id, ro.customer.first_name, ro.customer.last_name) == (
        "1000267",
        "SAM",
        "LEE",
    )
    assert [(ph.number, ph.kind) for ph in ro.customer.phones] == [("4155550142", "mobile")]
    assert ro.customer.email == "sam@example.com"
    assert ro.vehicle is not None
    assert (ro.vehicle.vin, ro.vehicle.year, ro.vehicle.make, ro.vehicle.mileage) == (
        "JTMW1RFV5MD012345",
        2021,
        "Toyota",
        41230,
    )
    assert [(li.line_code, li.op_code, li.amount_cents, li.status) for li in ro.lines] == [
        ("A", "OILCHG", 8995, "completed"),
        ("B", "BRKPAD", 41200, "declined"),
    ]


def test_the_cdk_fake_speaks_c1s_operation_and_token_envelopes(
    cdk: tuple[CdkFake, CdkAdapter],
) -> None:
    fake, adapter = cdk
    token = httpx.post(
        adapter.token_url,
        data={"grant_type": "client_credentials", "scope": "anonymous"},
        auth=("pitwall", "secret"),
    )
    assert _keys(token.json()) == _keys(source_json("fortellis_token.json"))
    headers = {
        "Authorization": f"Bearer {token.json()['access_token']}",
        "Subscription-Id": "sub-1",
        "Request-Id": "r-1",
    }
    answer = httpx.get(f"{adapter.base_url}/open", headers=headers)
    assert answer.status_code == 202
    assert _keys(answer.json()) == _keys(source_json("fortellis_operation.json"))
    root = adapter.base_url[: -len(cdk_fake.BASE_PATH)]
    status = httpx.get(root + answer.json()["_links"]["status"]["href"], headers=headers)
    assert _keys(status.json()) == _keys(source_json("fortellis_operation.json"))
    assert fake.request_ids == ["r-1", "r-1"]


# -- Dealertrack OpenTrack (D1, D2) ------------------------------------------------------


@pytest.fixture
def opentrack() -> Iterator[tuple[DealertrackFake, DealertrackAdapter]]:
    fake = DealertrackFake()
    with FakeServer(fake.app) as server:
        adapter = DealertrackAdapter(
            enterprise_code="ZE",
            company_number="ZE7",
            server_name="ot-fake",
            username="pitwall",
            password="secret",
            rooftop_slug="bayview-toyota",
            timezone=NY,
            base_url=server.url + PATH,
            retry=RetryPolicy(sleep=lambda _s: None),
        )
        yield fake, adapter
        adapter.close()


def _sourced_results() -> list[dict[str, Any]]:
    root = parse_xml(source_bytes("opentrack_open_repair_order_lookup.xml"))
    result = soap.find(root, "OpenRepairOrderLookupResult")
    assert result is not None
    return [soap.flatten(r) for r in result if soap.local(r.tag) == "Result"]


def test_the_opentrack_sample_ro_from_d1_in_d2s_envelope_parses(
    opentrack: tuple[DealertrackFake, DealertrackAdapter],
) -> None:
    fake, adapter = opentrack
    fake.raw_answers["OpenRepairOrderLookup"] = source_bytes(
        "opentrack_open_repair_order_lookup.xml"
    )
    (page,) = list(adapter.fetch_changed(None))
    records = {r.ro_number: adapter.normalise(r) for r in page.records}
    assert set(records) == {"6000551", "6000082"}
    ro = records["6000082"]
    assert (ro.raw_status, ro.advisor_id) == ("3", "DT")
    assert ro.opened_at == datetime(2012, 10, 3, 14, 26, tzinfo=UTC)  # 10:26 EDT
    assert ro.promised_at == datetime(2012, 10, 15, 1, 0, tzinfo=UTC)  # 21:00 EDT
    assert ro.updated_at == datetime(2013, 2, 4, 20, 58, 32, tzinfo=UTC)
    assert ro.customer is not None
    assert (ro.customer.external_id, ro.customer.first_name, ro.customer.last_name) == (
        "1000267",
        "JOHN",
        "DOE",
    )
    assert ro.customer.phones == ()  # CustomerPhoneNumber "0": no phone
    assert ro.vehicle is not None
    assert (ro.vehicle.vin, ro.vehicle.year, ro.vehicle.mileage) == (
        "JHLRD1852VC809994",
        1997,
        499478,
    )
    # Service line 1: its LineType A row names LABOR (LineStatus C); the TT row bills 750.
    assert [(li.line_code, li.op_code, li.amount_cents, li.status) for li in ro.lines] == [
        ("1", "LABOR", 75000, "completed")
    ]
    other = records["6000551"]
    assert other.customer is not None and [p.number for p in other.customer.phones] == ["5551234"]
    assert other.promised_at is None  # 201302060000: a date with no time
    assert {li.status for li in other.lines} == {"approved"}  # LineStatus I or empty


def test_the_opentrack_fake_renders_the_sample_element_for_element(
    opentrack: tuple[DealertrackFake, DealertrackAdapter],
) -> None:
    fake, adapter = opentrack
    sourced = _sourced_results()
    for row in sourced:
        fake.put(copy.deepcopy(row))
    (page,) = list(adapter.fetch_changed(None))
    assert [r.payload for r in page.records] == sourced
    # Element names and order of the fake's answer are the sample's.
    rendered = soap.render("Result", sourced[1])
    original = source_bytes("opentrack_open_repair_order_lookup.xml").decode()
    block = original[original.index("<Result>", original.index("6000551")) :]
    names = [soap.local(e.tag) for e in parse_xml(rendered)]
    assert names == [soap.local(e.tag) for e in parse_xml(block[: block.index("</Result>") + 9])]


def test_the_closed_ro_from_d2_and_the_d1_wsdl_parses(
    opentrack: tuple[DealertrackFake, DealertrackAdapter],
) -> None:
    fake, adapter = opentrack
    fake.raw_answers["GetClosedRepairOrderDetails"] = source_bytes(
        "opentrack_closed_repair_order_details.xml"
    )
    found = adapter.fetch_one("6000082")  # not open: asked of GetClosedRepairOrderDetails
    assert found is not None
    ro = adapter.normalise(found)
    assert (ro.ro_number, ro.raw_status) == ("6000082", "CLOSED")
    assert ro.closed_at == datetime(2013, 2, 4, 5, tzinfo=UTC)  # local midnight, EST
    assert [(li.line_code, li.op_code, li.amount_cents, li.status) for li in ro.lines] == [
        ("1", "A013", 75000, "completed")
    ]
    assert [op for op, _ in fake.calls] == ["OpenRepairOrderLookup", "GetClosedRepairOrderDetails"]


# -- Tekion (T1, T2, T4) -----------------------------------------------------------------


def test_the_tekion_search_result_from_t4_parses_with_its_jobs_and_customer() -> None:
    fake = TekionFake()
    (sourced,) = source_json("tekion_repair_orders_search.json")["data"]["results"]
    now = sourced["modifiedTime"]
    fake.put(
        sourced,
        jobs=source_json("tekion_repair_order_jobs.json")["data"],
        customer=source_json("tekion_ro_customer.json")["data"],
    )
    with FakeServer(fake.app) as server:
        adapter = TekionAdapter(
            app_id="pitwall-app",
            secret_key="secret",
            dealer_id="techmotors_4_0",
            rooftop_slug="bayview-toyota",
            base_url=server.url + tekion_fake.BASE_PATH,
            line_status_map={"COMPLETED": "completed", "DECLINED": "declined"},
            clock=lambda: datetime.fromtimestamp(now / 1000 + 60, UTC),
            retry=RetryPolicy(sleep=lambda _s: None),
        )
        token = httpx.post(
            f"{adapter.base_url}/public/tokens",
            data={"app_id": "pitwall-app", "secret_key": "secret"},
        ).json()
        headers = {
            "Authorization": f"Bearer {token['data']['access_token']}",
            "app_id": "pitwall-app",
            "dealer_id": "techmotors_4_0",
        }
        answer = httpx.post(
            f"{adapter.base_url}/v4.0.0/repair-orders:search",
            json=source_json("tekion_search_request.json"),
            headers=headers,
        ).json()
        pages = list(adapter.fetch_changed(None))
        adapter.close()
    assert _keys(token) == _keys(source_json("tekion_token.json"))
    assert _keys(answer["meta"]) == _keys(source_json("tekion_repair_orders_search.json")["meta"])
    assert answer["data"]["results"] == [sourced]
    (record,) = [r for page in pages for r in page.records]
    ro = adapter.normalise(record)
    assert (ro.ro_number, ro.raw_status, ro.advisor_id) == (
        "100303",
        "READY_FOR_INVOICE",
        "5e0c9a1c-3f1e-4c8e-9d8e-1b2a3c4d5e6f",
    )
    assert ro.opened_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert ro.updated_at == datetime(2026, 1, 1, 0, 40, tzinfo=UTC)
    assert ro.vehicle is not None and ro.vehicle.vin == "1FTEW1E45KFA12349"
    assert ro.customer is not None
    assert (ro.customer.external_id, ro.customer.first_name, ro.customer.phones[0].number) == (
        "rc-001",
        "John",
        "+14155550142",
    )
    assert [(li.line_code, li.op_code, li.amount_cents, li.status) for li in ro.lines] == [
        ("job-001", "OIL_CHG", 8995, "completed"),
        ("job-002", "TIRE_ROT", 4999, "declined"),
    ]


# -- STAR (R1, R2) -----------------------------------------------------------------------


def test_the_star_show_repair_order_parses(tmp_path: Path) -> None:
    (tmp_path / "ro.xml").write_bytes(source_bytes("star_show_repair_order.xml"))
    adapter = StarAdapter(
        path=str(tmp_path),
        rooftop_slug="bayview-toyota",
        timezone=LA,
        line_status_map={"COMPLETED": "completed", "DECLINED": "declined"},
    )
    (page,) = list(adapter.fetch_changed(None))
    ro = adapter.normalise(page.records[0])
    assert (ro.ro_number, ro.raw_status, ro.advisor_id, ro.advisor_name) == (
        "R5501",
        "OPEN",
        "A7",
        "Dana Ruiz",
    )
    assert ro.opened_at == datetime(2026, 11, 22, 15, 45, tzinfo=UTC)
    assert ro.promised_at == datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
    assert ro.customer is not None and ro.customer.phones[0].kind == "mobile"
    assert ro.vehicle is not None and (ro.vehicle.vin, ro.vehicle.mileage) == (
        "JTMW1RFV5MD012345",
        41230,
    )
    assert [(li.op_code, li.amount_cents, li.status) for li in ro.lines] == [
        ("OILCHG", 8995, "completed"),
        ("BRKPAD", 41200, "declined"),
    ]
    # What the fakes write reads back the same.
    again = bod.repair_orders(
        bod.show_repair_order([page.records[0].payload], bod_id="b", created="t")
    )
    assert again == [page.records[0].payload]
    assert isinstance(page.records[0], RawRecord)

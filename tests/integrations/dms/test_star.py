"""The STAR adapter: ShowRepairOrder documents from a drop folder or a middleware's HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from integrations.dms.base import DmsAuthError, DmsError, MalformedRecord, RawRecord
from integrations.dms.fakes.server import FakeServer
from integrations.dms.fakes.star_fake import PATH, StarFake, write_drop_file
from integrations.dms.http import RetryPolicy
from integrations.dms.registry import build_adapter, validate_settings
from integrations.dms.star import StarAdapter
from tests.integrations.dms.vendor_support import Clock, star_order

NOW = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)


def _folder_adapter(path: Path) -> StarAdapter:
    adapter = build_adapter(
        "star",
        {"path": str(path), "line_status_map": {"DECLINED": "declined"}},
        rooftop_slug="bayview-toyota",
        timezone="America/Los_Angeles",
        clock=Clock(NOW),
    )
    assert isinstance(adapter, StarAdapter)
    return adapter


def test_each_dropped_file_is_a_page_moved_to_processed_once_committed(tmp_path: Path) -> None:
    write_drop_file(tmp_path, "001.xml", [star_order("R1"), star_order("R2")])
    write_drop_file(tmp_path, "002.xml", [star_order("R3")])
    (tmp_path / "003.xml").write_text("<html>not a BOD</html>")
    (tmp_path / "004.xml").write_text("<ShowRepairOrder><unclosed>")
    adapter = _folder_adapter(tmp_path)
    pages = list(adapter.fetch_changed(None))
    assert [[r.ro_number for r in page.records] for page in pages] == [["R1", "R2"], ["R3"]]
    assert [adapter.normalise(r).lines[1].status for r in pages[0].records] == [
        "declined",
        "declined",
    ]
    for page in pages:
        assert page.ack is not None
        page.ack()
    assert sorted(f.name for f in (tmp_path / "processed").iterdir()) == ["001.xml", "002.xml"]
    failed = sorted(f.name for f in (tmp_path / "failed").iterdir())
    assert failed == ["003.xml", "003.xml.reason.txt", "004.xml", "004.xml.reason.txt"]
    assert "not a ShowRepairOrder document" in (tmp_path / "failed/003.xml.reason.txt").read_text()
    assert list(adapter.fetch_changed(None)) == []


def test_a_missing_folder_is_named_by_check(tmp_path: Path) -> None:
    with pytest.raises(DmsError, match=r"\(star\): dms.path '.*nowhere' is not a directory"):
        _folder_adapter(tmp_path / "nowhere").check()


@pytest.fixture
def served() -> Iterator[tuple[StarFake, FakeServer]]:
    fake = StarFake()
    with FakeServer(fake.app) as server:
        yield fake, server


def _http_adapter(server: FakeServer, **overrides: Any) -> StarAdapter:
    settings = {"url": server.url + PATH, "token": "star-token", **overrides}
    adapter = build_adapter(
        "star", settings, rooftop_slug="bayview-toyota", timezone="America/Los_Angeles",
        clock=Clock(NOW), retry=RetryPolicy(sleep=lambda _s: None),
    )  # fmt: skip
    assert isinstance(adapter, StarAdapter)
    return adapter


def test_over_http_since_is_sent_and_the_answer_carries_the_watermark(
    served: tuple[StarFake, FakeServer],
) -> None:
    fake, server = served
    fake.put(star_order("R1"), at=NOW - timedelta(hours=2))
    fake.put(star_order("R2"), at=NOW - timedelta(minutes=10))
    adapter = _http_adapter(server)
    (everything,) = list(adapter.fetch_changed(None))
    (recent,) = list(adapter.fetch_changed(NOW - timedelta(hours=1)))
    assert [r.ro_number for r in everything.records] == ["R1", "R2"]
    assert [r.ro_number for r in recent.records] == ["R2"]
    assert recent.watermark == NOW
    assert fake.requests == [{}, {"since": "2026-11-22T19:00:00Z"}]


def test_over_http_a_wrong_token_and_a_non_bod_answer_are_named(
    served: tuple[StarFake, FakeServer],
) -> None:
    fake, server = served
    with pytest.raises(DmsAuthError, match="401"):
        _http_adapter(server, token="wrong-token-value").check()
    fake.raw_answer = b"<html>maintenance</html>"
    with pytest.raises(DmsError, match="not a ShowRepairOrder document"):
        _http_adapter(server).check()


def test_exactly_one_of_path_and_url() -> None:
    problem = "dms.path: give either path (a drop folder) or url (an HTTP endpoint)"
    assert validate_settings("star", {}) == [problem]
    assert validate_settings("star", {"path": "/x", "url": "http://x"}) == [problem]
    assert validate_settings("star", {"url": "ftp://x"}) == [
        "dms.url: expected an http(s) URL, got 'ftp://x'"
    ]


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ({"RepairOrderOpenedDate": ""}, "RepairOrderOpenedDate: missing"),
        ({"RepairOrderStatus": {"StatusCode": ""}}, "RepairOrderStatus.StatusCode: missing"),
        ({"PromisedRepairCompletionDate": "soon"}, "PromisedRepairCompletionDate: not a date"),
        ({"DocumentIdentificationGroup": {}}, "RepairOrderHeader.DocumentIdentificationGroup"),
    ],
)
def test_malformed_nouns_name_the_field(
    tmp_path: Path, header: dict[str, Any], reason: str
) -> None:
    with pytest.raises(MalformedRecord) as caught:
        _folder_adapter(tmp_path).normalise(RawRecord(payload=star_order("R1", **header)))
    assert caught.value.reason.startswith(reason)

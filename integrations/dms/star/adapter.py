"""STAR ShowRepairOrder documents from a drop folder or an HTTP endpoint (``kind = "star"``).

STAR's own transport pushes BODs (ProcessMessage); several DMSes and middlewares can
instead write ShowRepairOrder documents to a folder or serve them over HTTP, and that is
what this adapter reads:

- ``path``: every ``*.xml`` file in the folder is one page, oldest name first; once its
  ROs are committed it moves to ``processed/``, and a file that is not a ShowRepairOrder
  document moves to ``failed/`` with the reason beside it.
- ``url``: ``GET {url}?since=<ISO 8601 UTC>`` (``since`` left out on the first read),
  with ``Authorization: Bearer {token}`` when a token is set, answering one
  ShowRepairOrder document with the ROs changed since then. This query is Pitwall's
  convention for the middleware to implement, not part of STAR. The page's watermark
  is the time of the request.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError
from zoneinfo import ZoneInfo

import httpx
from defusedxml import DefusedXmlException

from integrations.dms import parsing as p
from integrations.dms.base import (
    DmsError,
    DmsPage,
    LineStatus,
    RawRecord,
    RepairOrderRecord,
    utcnow,
)
from integrations.dms.http import DEFAULT_TIMEOUT, RetryPolicy, VendorHttp
from integrations.dms.star import bod, fields


class StarAdapter:
    """Reads one rooftop's STAR RepairOrder documents."""

    kind = "star"
    snapshot = False

    def __init__(
        self,
        *,
        rooftop_slug: str,
        timezone: str,
        path: str | None = None,
        url: str | None = None,
        token: str | None = None,
        line_status_map: Mapping[str, LineStatus] | None = None,
        clock: Callable[[], datetime] = utcnow,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if (path is None) == (url is None):
            raise ValueError("give either path or url")
        self.folder = Path(path) if path is not None else None
        self.url, self._token = url, token
        self.rooftop_slug = rooftop_slug
        self.zone = ZoneInfo(timezone)
        self.line_status_map = dict(line_status_map or {})
        self.clock = clock
        self.http = VendorHttp(
            kind=self.kind, rooftop_slug=rooftop_slug, retry=retry, timeout=timeout,
            transport=transport,
        )  # fmt: skip

    def _error(self, detail: str) -> DmsError:
        return DmsError(detail, rooftop_slug=self.rooftop_slug, kind=self.kind)

    def _records(self, document: bytes) -> list[RawRecord]:
        try:
            orders = bod.repair_orders(document)
        except DefusedXmlException as exc:
            raise ValueError(f"refused a document containing a DTD or entities ({exc!r})") from exc
        except ParseError as exc:
            raise ValueError(f"not well-formed XML: {exc}") from exc
        return [RawRecord(payload=order, ro_number=fields.ro_number(order)) for order in orders]

    def fetch_changed(self, since: datetime | None) -> Iterator[DmsPage]:
        """One page per dropped file, or one per HTTP answer."""
        if self.folder is None:
            yield self._fetch_http(since)
            return
        self.check()
        for file in sorted(f for f in self.folder.glob("*.xml") if f.is_file()):
            try:
                records = self._records(file.read_bytes())
            except (OSError, ValueError) as exc:
                self._move(file, "failed", reason=str(exc))
                continue
            yield DmsPage(records=records, ack=functools.partial(self._move, file, "processed"))

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/xml"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _fetch_http(self, since: datetime | None) -> DmsPage:
        assert self.url is not None
        now = self.clock()
        params = {"since": p.utc_z(since)} if since is not None else {}
        response = self.http.request("GET", self.url, params=params, headers=self._headers)
        try:
            records = self._records(response.content)
        except ValueError as exc:
            raise self._error(f"GET {self.url} answered {exc}") from exc
        return DmsPage(records=records, watermark=now)

    def _move(self, file: Path, folder: str, reason: str | None = None) -> None:
        assert self.folder is not None
        target_dir = self.folder / folder
        target_dir.mkdir(exist_ok=True)
        target = target_dir / file.name
        if target.exists():  # the same export name can recur: never overwrite
            target = target_dir / f"{file.stem}.{self.clock():%Y%m%dT%H%M%S%f}{file.suffix}"
        os.replace(file, target)
        if reason is not None:
            target.with_name(target.name + ".reason.txt").write_text(reason + "\n", "utf-8")

    def fetch_one(self, ro_number: str) -> RawRecord | None:
        """STAR documents arrive; they cannot be asked about one RO here."""
        return None

    def check(self) -> None:
        """The folder is there and writable, or the endpoint answers a ShowRepairOrder."""
        if self.folder is None:
            try:
                self._fetch_http(self.clock())
            except DmsError as exc:
                raise type(exc)(
                    f"GET {self.url}: {exc.detail}", rooftop_slug=self.rooftop_slug, kind=self.kind
                ) from exc
            return
        if not self.folder.is_dir():
            raise self._error(f"dms.path {str(self.folder)!r} is not a directory")
        if not os.access(self.folder, os.R_OK | os.W_OK | os.X_OK):
            raise self._error(f"dms.path {str(self.folder)!r} is not readable and writable")

    def close(self) -> None:
        """Close connections."""
        self.http.close()

    def normalise(self, record: RawRecord) -> RepairOrderRecord:
        """Turn one RepairOrder noun into Pitwall's type (raises MalformedRecord)."""
        payload: dict[str, Any] = record.payload
        return fields.normalise(payload, zone=self.zone, line_status_map=self.line_status_map)

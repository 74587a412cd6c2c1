"""The vehicles of a page of repair orders: matched by VIN in the group, written set-based."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app import bulk
from app.repair_orders import writes
from app.repair_orders.changes import KnownRo
from integrations.dms.base import DmsVehicle


@dataclass(slots=True)
class PageVehicle:
    """A vehicle row as the page sees it; `id` is None until a new one is inserted."""

    id: int | None
    vin: str | None
    year: int | None
    make: str | None
    model: str | None
    customer_id: int | None
    dirty: bool = False


class PageVehicles:
    """The page's vehicles: the ROs' own and the group's by VIN, read in one query."""

    def __init__(self, session: Session, *, group_id: int, vins: set[str], ids: set[int]) -> None:
        self.group_id = group_id
        self.by_id: dict[int, PageVehicle] = {}
        self.by_vin: dict[str, PageVehicle] = {}
        self.new: list[PageVehicle] = []
        for row in writes.vehicles_of(session, group_id=group_id, vins=vins, ids=ids):
            vehicle = PageVehicle(**row)
            self.by_id[row["id"]] = vehicle
            if row["vin"] in vins:
                self.by_vin[row["vin"]] = vehicle

    def _current(self, stored: KnownRo | None) -> PageVehicle | None:
        if stored is None or stored.vehicle_id is None:
            return None
        return self.by_id.get(stored.vehicle_id)

    def place(
        self, stored: KnownRo | None, dms_vehicle: DmsVehicle | None, *, customer_id: int | None
    ) -> PageVehicle | None:
        """The RO's vehicle (by VIN in the group), created or updated as the DMS says."""
        vehicle = self._current(stored)
        if dms_vehicle is not None:
            vin = dms_vehicle.vin
            if vin is not None and (vehicle is None or vehicle.vin != vin):
                vehicle = self.by_vin.get(vin)
            if vehicle is None or (vin is None and vehicle.vin is not None):
                # No VIN: the RO keeps a vehicle of its own rather than guessing a match.
                vehicle = PageVehicle(None, vin, None, None, None, None)
                self.new.append(vehicle)
                if vin is not None:
                    self.by_vin[vin] = vehicle
            for name in ("year", "make", "model"):
                value = getattr(dms_vehicle, name)
                if value is not None and getattr(vehicle, name) != value:
                    setattr(vehicle, name, value)
                    vehicle.dirty = True
        if vehicle is not None and vehicle.customer_id is None and customer_id is not None:
            vehicle.customer_id = customer_id
            vehicle.dirty = True
        return vehicle

    def write(self, session: Session) -> None:
        """Insert the new vehicles (their ids filled in) and update the changed ones."""
        rows = [
            {
                "group_id": self.group_id,
                "vin": v.vin,
                "year": v.year,
                "make": v.make,
                "model": v.model,
                "customer_id": v.customer_id,
            }
            for v in self.new
        ]
        ids = bulk.insert_returning_ids(session, writes.VEHICLE_TABLE, rows)
        for vehicle, vehicle_id in zip(self.new, ids, strict=True):
            vehicle.id = vehicle_id
        changed = [
            {name: getattr(v, name) for name in writes.VEHICLE_COLUMNS}
            for v in self.by_id.values()
            if v.dirty
        ]
        bulk.update_by_id(session, writes.VEHICLE_TABLE, changed, writes.VEHICLE_COLUMNS)

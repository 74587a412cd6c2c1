"""JSON shapes of a customer, their phones and consent, for any API that shows them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class PhoneOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    e164: str | None
    as_typed: str
    kind: str | None
    textable: bool
    not_textable_reason: str | None
    shared: bool = False  # more than one customer on this number (a household)


class CustomerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    first_name: str | None
    last_name: str | None
    email: str | None
    language: str | None
    phones: list[PhoneOut] = []

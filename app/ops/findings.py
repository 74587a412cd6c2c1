"""One line of `pitwall doctor`'s table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "warn", "problem"]


@dataclass(frozen=True)
class Finding:
    """One line of the doctor's table."""

    check: str
    rooftop: str
    status: Status
    detail: str
    fix: str = ""

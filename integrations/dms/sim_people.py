"""The simulator's cast: customers, vehicles (with valid VINs), advisors and the op catalogue.

Everything is drawn from a ``random.Random`` seeded with a string, which is
deterministic across processes (string seeds are hashed with SHA-512, not
Python's randomised ``hash``), so the same seed always gives the same people.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

ADVISORS: tuple[tuple[str, str], ...] = (
    ("A7", "Dana Ruiz"),
    ("A3", "Marcus Bell"),
    ("A9", "Priya Natarajan"),
    ("A12", "Tom Okafor"),
)

FIRST_NAMES = (
    "Sam",
    "Maria",
    "James",
    "Aisha",
    "Wei",
    "Carlos",
    "Emily",
    "Hiroshi",
    "Fatima",
    "Noah",
    "Sofia",
    "Liam",
    "Grace",
    "Mateo",
    "Chloe",
    "Ethan",
    "Ava",
    "Diego",
    "Hannah",
    "Kwame",
    "Olivia",
    "Raj",
    "Isabella",
    "Lucas",
    "Mei",
    "Andre",
    "Zoe",
    "Omar",
    "Julia",
    "Nina",
)
LAST_NAMES = (
    "Lee",
    "Garcia",
    "Johnson",
    "Khan",
    "Chen",
    "Martinez",
    "Nguyen",
    "Tanaka",
    "Okoye",
    "Smith",
    "Rossi",
    "Patel",
    "Brown",
    "Lopez",
    "Dubois",
    "Kim",
    "Wilson",
    "Hernandez",
    "Cohen",
    "Mensah",
    "Walker",
    "Singh",
    "Moreno",
    "Baker",
    "Ivanova",
    "Murphy",
)

# (make, model, WMI, first model year, last model year)
VEHICLES: tuple[tuple[str, str, str, int, int], ...] = (
    ("Toyota", "RAV4", "JTM", 2016, 2025),
    ("Toyota", "Camry", "4T1", 2015, 2025),
    ("Toyota", "Tacoma", "3TM", 2016, 2024),
    ("Toyota", "Corolla", "5YF", 2014, 2025),
    ("Toyota", "Highlander", "5TD", 2017, 2025),
    ("Toyota", "Prius", "JTD", 2013, 2023),
    ("Lexus", "RX 350", "2T2", 2016, 2024),
    ("Honda", "Civic", "2HG", 2014, 2024),
    ("Ford", "F-150", "1FT", 2015, 2025),
)

# Customer-requested work, approved at write-up: (op code, description, amount).
PRIMARY_OPS: tuple[tuple[str, str, str], ...] = (
    ("OILCHG", "Oil and filter change", "89.95"),
    ("OILCHG", "Oil and filter change", "89.95"),
    ("MPI", "Multi-point inspection", "0.00"),
    ("DIAG", "Check engine light diagnosis", "165.00"),
    ("SVC30K", "30,000 mile service", "389.00"),
    ("RECALL", "Recall campaign", "0.00"),
    ("BATT", "Battery replacement", "229.00"),
    ("NOISE", "Diagnose noise from front end", "145.00"),
)

# Work the technician recommends; BRKPAD listed twice so it comes up often, as it does.
RECOMMENDED_OPS: tuple[tuple[str, str, str], ...] = (
    ("BRKPAD", "Front brake pads", "412.00"),
    ("BRKPAD", "Front brake pads", "412.00"),
    ("TIREROT", "Tire rotation", "39.95"),
    ("CABINFLT", "Cabin air filter", "64.50"),
    ("ENGFLT", "Engine air filter", "49.95"),
    ("WIPERS", "Wiper blades", "42.00"),
    ("ALIGN", "Four-wheel alignment", "149.99"),
    ("COOLFLUSH", "Coolant flush", "189.00"),
    ("TRANSFL", "Transmission fluid service", "249.00"),
    ("BRKFLUSH", "Brake fluid flush", "129.00"),
)

# What the technician writes on a recommended line (CDK's line.cause, Dealertrack's Comments):
# the simulated DMS sends it as the REST bridge's optional lines[].note.
TECH_NOTES: dict[str, str] = {
    "BRKPAD": "Front pads at 3 mm (new is 10 mm). Rotors within spec.",
    "TIREROT": "Fronts worn 2/32 more than rears.",
    "CABINFLT": "Filter dark and full of leaves.",
    "ENGFLT": "Filter dirty; restricts air flow.",
    "WIPERS": "Blades streak and chatter.",
    "ALIGN": "Pulls right on road test; inner edge wear on front tires.",
    "COOLFLUSH": "Coolant tests weak (protects to -5 F).",
    "TRANSFL": "Fluid dark, burnt smell; due by mileage.",
    "BRKFLUSH": "Brake fluid tests at 3% moisture.",
}

# 555-0100..0199 is reserved for fiction; 0100, 0101, 0199 are the rooftop's own lines.
_AREA_CODES = ("415", "650", "510", "408", "925", "707")
_FIRST_LINE, _LINE_COUNT = 102, 97

_VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_VIN_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY"  # model years 2010..2030


def vin_check_digit(vin: str) -> str:
    """The ISO 3779 / NHTSA check digit (position 9) for a 17-character VIN."""
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def make_vin(rng: random.Random, wmi: str, year: int) -> str:
    """A North American-valid VIN (correct check digit) for the given maker and year."""
    vds = "".join(rng.choice(_VIN_ALPHABET) for _ in range(5))
    plant = rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ")
    serial = f"{rng.randrange(1_000_000):06d}"
    draft = f"{wmi}{vds}0{_YEAR_CODES[year - 2010]}{plant}{serial}"
    return draft[:8] + vin_check_digit(draft) + draft[9:]


def phone_digits(index: int, seed: int = 1) -> tuple[str, str]:
    """(area code, line) for customer ``index``; unique for the first ~580 customers.

    Each seed starts one area code further on, so two simulated rooftops do not
    hand their customers the same numbers (seed 1 is unchanged).
    """
    index += (seed - 1) * _LINE_COUNT
    area = _AREA_CODES[(index // _LINE_COUNT) % len(_AREA_CODES)]
    return area, f"01{_FIRST_LINE + index % _LINE_COUNT - 100:02d}"


def typed_phone(rng: random.Random, area: str, line: str) -> str:
    """A US number written the way advisors really type them."""
    style = rng.randrange(5)
    if style == 0:
        return f"({area}) 555-{line}"
    if style == 1:
        return f"{area}.555.{line}"
    if style == 2:
        return f"{area}555{line}"
    if style == 3:
        return f"+1 {area} 555 {line}"
    return f"{area}-555-{line}"


@dataclass(frozen=True)
class Person:
    """A simulated customer with their vehicle, in bridge-contract shape."""

    customer: dict[str, Any]
    vehicle: dict[str, Any]


def make_person(seed: int, index: int) -> Person:
    """Customer ``index`` of the world for ``seed``; a pure function of its arguments."""
    rng = random.Random(f"pitwall-sim:{seed}:person:{index}")
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    area, line = phone_digits(index, seed)
    kind = rng.choice(["mobile"] * 5 + ["home"])
    phones = [{"number": typed_phone(rng, area, line), "kind": kind}]
    if rng.random() < 0.15:
        work_area, work_line = phone_digits(index + 300, seed)
        phones.append({"number": typed_phone(rng, work_area, work_line), "kind": "work"})
    roll = rng.random()
    language = "es" if roll < 0.12 else "fr" if roll < 0.15 else "en"
    sms = rng.choices([True, None, False], weights=[80, 12, 8])[0]
    marketing = rng.choices([True, False, None], weights=[50, 25, 25])[0]
    customer: dict[str, Any] = {
        "id": f"C-{10000 + index}",
        "first_name": first,
        "last_name": last,
        "phones": phones,
        "email": f"{first}.{last}{index}@example.com".lower() if rng.random() < 0.7 else None,
        "language": language,
    }
    # Absent consent is part of the contract ("the rooftop's policy decides"), so omit, not null.
    if sms is not None:
        customer["sms_consent"] = sms
    if marketing is not None:
        customer["marketing_consent"] = marketing
    make, model, wmi, first_year, last_year = rng.choice(VEHICLES)
    year = rng.randint(first_year, last_year)
    vehicle = {
        "vin": make_vin(rng, wmi, year),
        "year": year,
        "make": make,
        "model": model,
        "mileage": max(5, (2026 - year)) * rng.randint(8_000, 14_000) + rng.randrange(1000),
    }
    return Person(customer=customer, vehicle=vehicle)


def cast(seed: int, ro_count: int) -> list[Person]:
    """One person per RO, with the real-world wrinkles the matcher must survive.

    - households: ROs 5 and 6 (and 17 and 18) are two people sharing one phone;
    - a duplicate: RO 11's customer is RO 3's person under a second external id;
    - RO 4's customer has refused status texts.
    """
    people = [make_person(seed, i) for i in range(ro_count)]
    for a, b in ((5, 6), (17, 18)):
        if b < ro_count:
            shared = people[a].customer["phones"][0]
            rng = random.Random(f"pitwall-sim:{seed}:household:{a}")
            area, line = phone_digits(a, seed)
            customer = dict(people[b].customer, last_name=people[a].customer["last_name"])
            customer["phones"] = [{"number": typed_phone(rng, area, line), "kind": shared["kind"]}]
            people[b] = Person(customer=customer, vehicle=people[b].vehicle)
    if ro_count > 11:
        twin = dict(people[3].customer, id=f"C-{20000 + 3}")
        people[11] = Person(customer=twin, vehicle=people[11].vehicle)
    if ro_count > 4:
        refused = dict(people[4].customer, sms_consent=False)
        people[4] = Person(customer=refused, vehicle=people[4].vehicle)
    return people

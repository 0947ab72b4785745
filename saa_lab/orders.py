"""Order context: what the clinic told us about a sample (drug, dose time, protocol).

Issue 2 takes it from the worklist's optional columns; HL7 orders (ORM/OML)
will fill the same value later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, tzinfo

__all__ = [
    "FORMULATIONS",
    "FORMULATION_NAMES",
    "OrderContext",
    "merge_orders",
    "normalize_formulation",
    "parse_time",
]

# Canonical formulation codes and the spellings we accept for them.
FORMULATIONS: dict[str, tuple[str, ...]] = {
    "peg-asparaginase": ("peg", "peg-asparaginase", "pegaspargase", "oncaspar", "peg-asp"),
    "calaspargase-pegol": ("calaspargase", "calaspargase-pegol", "asparlas"),
    "erwinia": ("erwinia", "crisantaspase", "erwinase", "erwinaze", "erwinia-asparaginase"),
    "recombinant-erwinia": (
        "recombinant-erwinia",
        "rylaze",
        "jzp-458",
        "recombinant-crisantaspase",
    ),
    "native-e-coli": (
        "native-e-coli",
        "native",
        "e-coli",
        "ecoli",
        "native-asparaginase",
        "kidrolase",
    ),
}
_ALIASES = {alias: code for code, aliases in FORMULATIONS.items() for alias in aliases}

FORMULATION_NAMES = {
    "peg-asparaginase": "PEG-asparaginase",
    "calaspargase-pegol": "calaspargase pegol",
    "erwinia": "Erwinia asparaginase",
    "recombinant-erwinia": "recombinant Erwinia asparaginase",
    "native-e-coli": "native E. coli asparaginase",
}


def normalize_formulation(text: str) -> str | None:
    """The canonical code for a formulation as clinics write it, or None if unknown."""
    key = re.sub(r"[\s_.]+", "-", text.strip().lower()).strip("-")
    key = key.replace("e-coli", "e-coli").replace("--", "-")
    return _ALIASES.get(key)


def parse_time(text: str, zone: tzinfo) -> datetime | None:
    """ISO 8601 date-time (``2026-11-14T09:30``, ``2026-11-14 09:30:00+01:00``).

    A time without an offset is in the lab's time zone. Returns None when the
    text is not such a time.
    """
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


@dataclass(frozen=True)
class OrderContext:
    """What is known about the order behind one specimen; every field may be unknown.

    Filled from HL7 ORM^O01/OML^O21 orders (``source="hl7"``) or from a worklist's
    optional columns (``source="worklist"``).
    """

    accession: str  # the specimen id the lab's worklist uses
    patient_id: str | None = None
    formulation: str | None = None  # a code of FORMULATIONS
    dose_time: datetime | None = None
    collection_time: datetime | None = None
    protocol: str | None = None
    clinic: str | None = None
    placer_order_number: str | None = None
    source: str = "worklist"
    patient_family_name: str | None = None
    patient_given_name: str | None = None
    birth_date: date | None = None
    sex: str | None = None
    ordering_provider: str | None = None
    dose_iu_per_m2: float | None = None
    route: str | None = None  # IV, IM, SC
    reaction: bool | None = None  # an infusion/allergic reaction to the dose
    reaction_time: datetime | None = None
    reaction_grade: int | None = None  # CTCAE grade 1-5
    message_control_id: str | None = None  # MSH-10 of the order message

    @property
    def is_empty(self) -> bool:
        return not any(
            (self.patient_id, self.formulation, self.dose_time, self.collection_time, self.protocol)
        )


def merge_orders(hl7: OrderContext | None, worklist: OrderContext | None) -> OrderContext | None:
    """The HL7 order, with gaps filled from the worklist's columns (or either alone)."""
    if hl7 is None or worklist is None:
        return hl7 or worklist
    filled = {
        name: getattr(worklist, name)
        for name in OrderContext.__dataclass_fields__
        if getattr(hl7, name) is None and getattr(worklist, name) is not None
    }
    return replace(hl7, **filled) if filled else hl7

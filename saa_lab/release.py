"""Release: what a result's report says, when it may leave without a person, and its
HL7 message.

A result's :class:`ReportContent` is stored with it, so its message can be built
when it is released (OBX-11 ``F``), sent early as preliminary (``P``), withdrawn
(``X``) or corrected (``C``), long after the pipeline that made it has finished.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import date, datetime
from typing import Any

from .config import AppConfig, AutoVerificationRule
from .interpret import Interpretation
from .orders import FORMULATION_NAMES, OrderContext
from .records import OutgoingMessage

__all__ = [
    "AutoDecision",
    "ReportContent",
    "build_message",
    "decide",
    "new_control_id",
    "order_from_json",
    "order_to_json",
]


def new_control_id() -> str:
    """A message control id (MSH-10): 20 characters, unique, kept across retries."""
    import uuid

    return uuid.uuid4().hex[:20].upper()


def order_to_json(order: OrderContext) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in asdict(order).items():
        out[key] = value.isoformat() if isinstance(value, date | datetime) else value
    return out


_DATETIME_FIELDS = ("dose_time", "collection_time", "reaction_time")


def order_from_json(data: dict[str, Any]) -> OrderContext:
    known = {f.name for f in fields(OrderContext)}
    values = {k: v for k, v in data.items() if k in known}
    for key in _DATETIME_FIELDS:
        if values.get(key):
            values[key] = datetime.fromisoformat(values[key])
    if values.get("birth_date"):
        values["birth_date"] = date.fromisoformat(values["birth_date"])
    return OrderContext(**values)


@dataclass(frozen=True)
class ReportContent:
    """Everything a result's message says besides its status, control id and time."""

    accession: str
    activity_u_per_l: float | None  # None: no result (OBX-11 X)
    comparator: str
    abnormal_flag: str  # OBX-8
    threshold_u_per_l: float
    target_band_u_per_l: tuple[float, float] | None
    comments: tuple[str, ...]  # one NTE each
    order: OrderContext | None
    analysis_time: datetime  # OBX-19: when the plate was calibrated
    lab_comments: tuple[str, ...] = ()  # added by people at release or correction
    correction_note: str | None = None  # what a corrected report replaces

    @property
    def notes(self) -> tuple[str, ...]:
        """Every NTE of the message, in order."""
        extra = (self.correction_note,) if self.correction_note else ()
        return (*self.comments, *self.lab_comments, *extra)

    @classmethod
    def of(
        cls,
        accession: str,
        activity_u_per_l: float | None,
        comparator: str,
        interpretation: Interpretation,
        order: OrderContext | None,
        analysis_time: datetime,
    ) -> ReportContent:
        comments = tuple(c for c in (interpretation.comment, interpretation.recommendation) if c)
        return cls(
            accession=accession,
            activity_u_per_l=activity_u_per_l,
            comparator=comparator,
            abnormal_flag=interpretation.abnormal_flag,
            threshold_u_per_l=interpretation.threshold_u_per_l,
            target_band_u_per_l=interpretation.target_band_u_per_l,
            comments=comments,
            order=order,
            analysis_time=analysis_time,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "accession": self.accession,
            "activity_u_per_l": self.activity_u_per_l,
            "comparator": self.comparator,
            "abnormal_flag": self.abnormal_flag,
            "threshold_u_per_l": self.threshold_u_per_l,
            "target_band_u_per_l": list(self.target_band_u_per_l)
            if self.target_band_u_per_l
            else None,
            "comments": list(self.comments),
            "order": order_to_json(self.order) if self.order else None,
            "analysis_time": self.analysis_time.isoformat(),
            "lab_comments": list(self.lab_comments),
            "correction_note": self.correction_note,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReportContent:
        band = data.get("target_band_u_per_l")
        return cls(
            accession=data["accession"],
            activity_u_per_l=data.get("activity_u_per_l"),
            comparator=data.get("comparator") or "=",
            abnormal_flag=data.get("abnormal_flag") or "",
            threshold_u_per_l=float(data.get("threshold_u_per_l") or 100.0),
            target_band_u_per_l=(float(band[0]), float(band[1])) if band else None,
            comments=tuple(data.get("comments") or ()),
            order=order_from_json(data["order"]) if data.get("order") else None,
            analysis_time=datetime.fromisoformat(data["analysis_time"]),
            lab_comments=tuple(data.get("lab_comments") or ()),
            correction_note=data.get("correction_note"),
        )

    def withdrawn(self, reason: str) -> ReportContent:
        """The content of an ``X`` message taking back a preliminary result."""
        return replace(self, activity_u_per_l=None, comparator="=", abnormal_flag="",
                       comments=(reason,), lab_comments=(), correction_note=None)  # fmt: skip


def _hl7_sex(sex: str | None) -> str | None:
    """PID-8 from what the order said (HL7 table 0001), or None when not a table value."""
    code = (sex or "").strip().upper()[:1]
    return code if code in ("F", "M", "O", "U", "A", "N") else None


def destination_name(config: AppConfig, content: ReportContent) -> str:
    return config.destination_for(content.order.clinic if content.order else None).name


def build_message(
    config: AppConfig, content: ReportContent, status: str, now: datetime
) -> OutgoingMessage:
    """The ORU^R01 for one result: OBX-11 ``status`` (F, P, C; X when there is no value).

    Routed by the order's clinic; units and HL7 version are the destination's.
    """
    from .hl7 import ReportedResult, build_oru_r01

    hl7 = config.hl7
    order = content.order
    destination = config.destination_for(order.clinic if order else None)
    units = destination.units or hl7.units
    version = destination.version or hl7.version
    factor = 1000.0 if units == "U/mL" else 1.0
    threshold = content.threshold_u_per_l / factor
    band = content.target_band_u_per_l
    reference = (
        f"{band[0] / factor:g}-{band[1] / factor:g}" if band is not None else f">={threshold:g}"
    )
    value = content.activity_u_per_l / factor if content.activity_u_per_l is not None else None
    control_id = new_control_id()
    result = ReportedResult(
        message_control_id=control_id,
        message_time=now,
        sending_application=config.lab.sending_application,
        sending_facility=config.lab.sending_facility,
        receiving_application=destination.receiving_application or hl7.receiving_application,
        receiving_facility=(order.clinic if order and order.clinic else hl7.receiving_facility),
        accession=content.accession,
        patient_id=order.patient_id if order else None,
        patient_family_name=order.patient_family_name if order else None,
        patient_given_name=order.patient_given_name if order else None,
        birth_date=order.birth_date if order else None,
        sex=_hl7_sex(order.sex if order else None),
        placer_order_number=order.placer_order_number if order else None,
        ordering_clinic=order.clinic if order else None,
        collection_time=order.collection_time if order else None,
        observation_code=hl7.observation_code,
        observation_text=hl7.observation_text,
        coding_system=hl7.coding_system,
        value=value,
        comparator=content.comparator,
        units=units,
        reference_range=reference,
        abnormal_flag=content.abnormal_flag,
        result_status="F" if value is None else status,
        observation_time=order.collection_time if order else None,
        analysis_time=content.analysis_time,
        comments=content.notes,
        formulation=(FORMULATION_NAMES[order.formulation] if order and order.formulation else None),
        formulation_code=order.formulation if order and order.formulation else None,
        dose_time=order.dose_time if order else None,
        processing_id=hl7.processing_id,
    )
    payload = build_oru_r01(result, version=version)
    return OutgoingMessage(destination=destination.name, control_id=control_id, payload=payload)


@dataclass(frozen=True)
class AutoDecision:
    """Whether a result leaves without a person, under which rule set, and if not, why."""

    release: bool
    ruleset: str | None
    hold_reasons: tuple[str, ...]


def run_hold_reasons(
    accepted: bool,
    warnings: Sequence[str],
    statuses: Sequence[str],
    rule: AutoVerificationRule,
) -> list[str]:
    """Why a whole run waits for a person under ``rule`` (empty: it need not)."""
    reasons = []
    if not accepted:
        reasons.append("run rejected by QC")
    if rule.hold_on_qc_warnings and warnings:
        reasons.append("QC warnings: " + "; ".join(warnings))
    odd = sorted({s for s in statuses if s not in rule.run_statuses})
    if odd:
        reasons.append("the run has results that are " + ", ".join(odd))
    return reasons


def decide(
    config: AppConfig,
    *,
    assay: str,
    destination: str,
    accepted: bool,
    warnings: Sequence[str],
    statuses: Sequence[str],
    flag: str,
) -> AutoDecision:
    """Auto-verification of one result of a run (ISO 15189 5.7.1 / 7.4.1.2)."""
    rule = config.autoverification_rule(assay, destination)
    if rule is None:
        return AutoDecision(False, None, (f"no auto-verification rule for assay {assay!r} "
                                          f"and destination {destination!r}",))  # fmt: skip
    reasons = run_hold_reasons(accepted, warnings, statuses, rule)
    if flag in rule.hold_flags:
        reasons.append(f"flag {flag} is held for a person")
    return AutoDecision(not reasons, rule.version, tuple(reasons))

"""Interpret: what a sample's activity means for the clinic.

This first cut compares each result with the activity threshold (100 U/L =
0.1 IU/mL by default) and states what is known of the order (formulation, time
since dose). The protocol rules (day 7 / day 14 after PEG, 48 h / 72 h after
Erwinia, silent inactivation) extend :func:`interpret` through the same
``OrderContext``; every interpretation records the rule set it used.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .assay import PegBias
from .calibrate import SampleResult, SampleStatus
from .numbers import format_number
from .orders import FORMULATION_NAMES, OrderContext

__all__ = [
    "Flag",
    "Interpretation",
    "InterpretationRules",
    "apply_peg_bias",
    "format_activity",
    "interpret",
]


class Flag:
    """Result flags: stable codes that scripts and HL7 receivers rely on."""

    THERAPEUTIC = "therapeutic"
    BELOW_THRESHOLD = "below-threshold"
    BELOW_LLOQ = "below-lloq"
    ABOVE_ULOQ_RERUN = "above-uloq-rerun"
    ABOVE_REPORTABLE = "above-reportable-range"
    INVALID = "invalid"


@dataclass(frozen=True)
class InterpretationRules:
    threshold_u_per_l: float = 100.0
    rule_set: str = "threshold-v1"


@dataclass(frozen=True)
class Interpretation:
    flag: str
    comment: str
    rule_id: str
    abnormal_flag: str  # HL7 table 0078: L, N, <, > or empty


def format_activity(u_per_l: float, comparator: str = "") -> str:
    """``250 U/L (0.25 IU/mL)``: activity with both units clinicians use."""
    c = comparator
    return f"{c}{format_number(u_per_l)} U/L ({c}{format_number(u_per_l / 1000)} IU/mL)"


def apply_peg_bias(
    sample: SampleResult, order: OrderContext | None, bias: PegBias
) -> tuple[SampleResult, float | None]:
    """Correct a kit's over-reading of PEG-asparaginase, when the assay enables it.

    The measured activity (or ``<``/``>`` bound) is divided by ``factor_low`` up to
    the threshold and ``factor_high`` above it; the note states the arithmetic.
    """
    if not bias.enabled or sample.activity_u_per_l is None:
        return sample, None
    if order is None or order.formulation is None:
        note = "PEG bias correction not applied: the formulation is not known."
        return replace(sample, notes=(*sample.notes, note)), None
    if order.formulation not in bias.formulations:
        return sample, None
    measured = sample.activity_u_per_l
    factor = bias.factor_low if measured <= bias.threshold_u_per_l else bias.factor_high
    corrected = measured / factor
    note = (
        f"Corrected for the kit's PEG-asparaginase bias: measured {format_number(measured)} U/L "
        f"/ {factor:g} = {format_number(corrected)} U/L."
    )
    return replace(sample, activity_u_per_l=corrected, notes=(*sample.notes, note)), factor


def _since_dose(order: OrderContext) -> str | None:
    if order.dose_time is None or order.collection_time is None:
        return None
    hours = (order.collection_time - order.dose_time).total_seconds() / 3600
    drug = FORMULATION_NAMES.get(order.formulation or "", "asparaginase")
    return f"Collected {hours:.0f} h ({hours / 24:.1f} days) after the {drug} dose."


def interpret(
    sample: SampleResult, order: OrderContext | None, rules: InterpretationRules
) -> Interpretation:
    threshold = rules.threshold_u_per_l
    limit = format_activity(threshold)
    parts: list[str] = []
    rule = f"{rules.rule_set}:{sample.status}"

    if sample.status == SampleStatus.INVALID or sample.activity_u_per_l is None:
        why = "; ".join(sample.notes) or "no usable replicate"
        parts.append(f"No valid result: {why}. The sample will be re-assayed.")
        flag, hl7_flag = Flag.INVALID, ""
    elif sample.status == SampleStatus.BELOW_LLOQ:
        bound = sample.activity_u_per_l
        parts.append(
            f"Asparaginase activity below the lower limit of quantification: "
            f"{format_activity(bound, '<')}."
        )
        if bound <= threshold:
            parts.append(f"This is below the threshold of {limit}.")
            hl7_flag = "L"
        else:
            parts.append(
                f"At dilution 1:{sample.dilution:g} the limit is not below the threshold of "
                f"{limit}; re-assay at a lower dilution."
            )
            hl7_flag = "<"
        flag = Flag.BELOW_LLOQ
    elif sample.status == SampleStatus.ABOVE_ULOQ:
        step = f"1:{sample.reassay_dilution:g}" if sample.reassay_dilution else "a higher dilution"
        parts.append(
            f"Asparaginase activity above the upper limit of quantification "
            f"({format_activity(sample.activity_u_per_l, '>')} at 1:{sample.dilution:g}). "
            f"Not reported: the sample will be re-assayed at {step}."
        )
        flag, hl7_flag = Flag.ABOVE_ULOQ_RERUN, ">"
    elif sample.status == SampleStatus.ABOVE_REPORTABLE:
        parts.append(
            f"Asparaginase activity above the reportable range: "
            f"{format_activity(sample.activity_u_per_l, '>')} (at the highest validated "
            f"dilution, 1:{sample.dilution:g}), above the threshold of {limit}."
        )
        flag, hl7_flag = Flag.ABOVE_REPORTABLE, ">"
    elif sample.activity_u_per_l >= threshold:
        parts.append(
            f"Asparaginase activity {format_activity(sample.activity_u_per_l)} is at or above "
            f"the threshold of {limit}."
        )
        flag, hl7_flag = Flag.THERAPEUTIC, "N"
    else:
        parts.append(
            f"Asparaginase activity {format_activity(sample.activity_u_per_l)} is below "
            f"the threshold of {limit}."
        )
        flag, hl7_flag = Flag.BELOW_THRESHOLD, "L"

    if sample.status != SampleStatus.INVALID:
        parts.extend(n for n in sample.notes if not n.startswith("re-assay at"))
    if order is None or order.is_empty:
        parts.append(
            "No order details (formulation, dose time) were received; "
            "interpreted against the threshold only."
        )
    else:
        since = _since_dose(order)
        if since:
            parts.append(since)
        elif order.formulation:
            parts.append(f"Formulation: {FORMULATION_NAMES[order.formulation]}.")
    return Interpretation(flag=flag, comment=" ".join(parts), rule_id=rule, abnormal_flag=hl7_flag)

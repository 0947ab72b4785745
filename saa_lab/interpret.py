"""Interpret: what a sample's activity means for the clinic.

With a protocol (:mod:`saa_lab.protocols`), each result is read against the
rule set the order names (else the default, the 2016 consensus): the sampling
window relative to the dose decides which rule applies, the rule's comparison
decides the flag, and the patient's earlier results decide whether a low sample
only raises *possible* silent inactivation (repeat sample) or confirms it (the
previous qualifying sample was also low). A result without the formulation or
dose time is read against the threshold only and never claims inactivation.
Every interpretation records the protocol, its version and the rule id.

Without a protocol, :func:`interpret` keeps the first cut's behaviour: the
threshold only (rule set ``threshold-v1``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from .assay import AssayDefinition, PegBias
from .calibrate import SampleResult, SampleStatus
from .numbers import format_number
from .orders import FORMULATION_NAMES, OrderContext
from .protocols import LoadedProtocol, PriorResult, ProtocolDefinition, hours_between

__all__ = [
    "Flag",
    "Interpretation",
    "InterpretationRules",
    "apply_peg_bias",
    "format_activity",
    "hl7_abnormal_flag",
    "interpret",
]


class Flag:
    """Result flags: stable codes that storage, JSON and the HL7 NTE rely on."""

    THERAPEUTIC = "therapeutic"
    BELOW_THRESHOLD = "below-threshold"
    BELOW_LLOQ = "below-lloq"
    ABOVE_ULOQ_RERUN = "above-uloq-rerun"
    ABOVE_REPORTABLE = "above-reportable-range"
    POSSIBLE_SILENT_INACTIVATION = "possible-silent-inactivation"
    SILENT_INACTIVATION_CONFIRMED = "silent-inactivation-confirmed"
    TARGET_BAND_BELOW = "target-band-below"
    TARGET_BAND_ABOVE = "target-band-above"
    REACTION_ACTIVITY_PRESENT = "reaction-activity-present"
    OUTSIDE_SAMPLING_WINDOW = "outside-sampling-window"
    INVALID = "invalid"


_LOW_FLAGS = frozenset(
    {
        Flag.BELOW_THRESHOLD,
        Flag.BELOW_LLOQ,
        Flag.POSSIBLE_SILENT_INACTIVATION,
        Flag.SILENT_INACTIVATION_CONFIRMED,
        Flag.TARGET_BAND_BELOW,
    }
)
_PEG_FORMULATIONS = ("peg-asparaginase", "calaspargase-pegol")


def hl7_abnormal_flag(flag: str) -> str:
    """OBX-8 (table 0078): L low, N within range, H above a target band, > above the
    measuring range, empty where no range claim is made."""
    if flag in _LOW_FLAGS:
        return "L"
    if flag in (Flag.THERAPEUTIC, Flag.REACTION_ACTIVITY_PRESENT):
        return "N"
    if flag == Flag.TARGET_BAND_ABOVE:
        return "H"
    if flag in (Flag.ABOVE_ULOQ_RERUN, Flag.ABOVE_REPORTABLE):
        return ">"
    return ""


@dataclass(frozen=True)
class InterpretationRules:
    threshold_u_per_l: float = 100.0
    rule_set: str = "threshold-v1"


@dataclass(frozen=True)
class Interpretation:
    flag: str
    comment: str
    rule_id: str
    abnormal_flag: str  # HL7 table 0078: L, N, H, <, > or empty
    protocol: str = ""  # empty: threshold only (no protocol given)
    protocol_version: str = ""
    recommendation: str = ""
    hours_since_dose: float | None = None
    threshold_u_per_l: float = 100.0
    target_band_u_per_l: tuple[float, float] | None = None


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


def _calibrated_with_native_e_coli(assay: AssayDefinition) -> bool:
    calibrator = assay.calibrator.lower()
    if "coli" in calibrator and "peg" not in calibrator:
        return True
    return assay.method.strip().lower() == "maat"


def _method_note(
    assay: AssayDefinition | None, order: OrderContext | None, bias_factor: float | None
) -> str | None:
    """Whether an E. coli-calibrated kit's over-reading of PEG products was corrected."""
    formulation = order.formulation if order else None
    if assay is None or formulation not in _PEG_FORMULATIONS:
        return None
    if not _calibrated_with_native_e_coli(assay):
        return None
    drug = FORMULATION_NAMES[formulation]
    bias = assay.peg_bias
    over = (
        f"about +{(bias.factor_low - 1) * 100:.0f} % up to {format_number(bias.threshold_u_per_l)}"
        f" U/L and +{(bias.factor_high - 1) * 100:.0f} % above"
    )
    head = (
        f"Method {assay.method or assay.name} is calibrated with native E. coli asparaginase "
        f"and over-reads {drug} ({over}; Lanvers-Kaminsky et al., Ther Drug Monit 2018)"
    )
    if bias_factor is not None:
        return f"{head}; the configured bias factor {bias_factor:g} was applied."
    return (
        f"{head}; no bias correction was applied, so this value may overstate the activity "
        f"against thresholds set with the AHA method."
    )


def _sample_notes(sample: SampleResult) -> list[str]:
    return [n for n in sample.notes if not n.startswith("re-assay at")]


@dataclass(frozen=True)
class _Verdict:
    flag: str
    sentence: str
    recommendation: str
    key: str


def _status_verdict(sample: SampleResult, threshold: float) -> _Verdict | None:
    """Results that are not read against rules: invalid, above the ULOQ or the reportable
    range, and ``<`` bounds above the threshold (below the LLOQ only at a high dilution)."""
    limit = format_activity(threshold)
    value = sample.activity_u_per_l
    if sample.status == SampleStatus.INVALID or value is None:
        why = "; ".join(sample.notes) or "no usable replicate"
        text = f"No valid result: {why}. The sample will be re-assayed."
        return _Verdict(Flag.INVALID, text, "", "invalid")
    if sample.status == SampleStatus.BELOW_LLOQ and value > threshold:
        text = (
            f"Asparaginase activity below the lower limit of quantification: "
            f"{format_activity(value, '<')}. At dilution 1:{sample.dilution:g} the limit is not "
            f"below the threshold of {limit}; re-assay at a lower dilution."
        )
        return _Verdict(
            Flag.BELOW_LLOQ, text, "Re-assay at a lower dilution.", "below-lloq-dilution"
        )
    if sample.status == SampleStatus.ABOVE_ULOQ:
        step = f"1:{sample.reassay_dilution:g}" if sample.reassay_dilution else "a higher dilution"
        text = (
            f"Asparaginase activity above the upper limit of quantification "
            f"({format_activity(value, '>')} at 1:{sample.dilution:g}). "
            f"Not reported: the sample will be re-assayed at {step}."
        )
        return _Verdict(Flag.ABOVE_ULOQ_RERUN, text, f"Re-assay at {step}.", "above-uloq")
    if sample.status == SampleStatus.ABOVE_REPORTABLE:
        text = (
            f"Asparaginase activity above the reportable range: "
            f"{format_activity(value, '>')} (at the highest validated "
            f"dilution, 1:{sample.dilution:g}), above the threshold of {limit}."
        )
        return _Verdict(Flag.ABOVE_REPORTABLE, text, "", "above-reportable")
    return None


def _value_sentence(sample: SampleResult, threshold: float, *, compare: bool) -> str:
    """The measured value; with ``compare``, also where it stands against the threshold."""
    value = sample.activity_u_per_l
    assert value is not None
    limit = format_activity(threshold)
    if sample.comparator == "<":
        text = (
            f"Asparaginase activity below the lower limit of quantification: "
            f"{format_activity(value, '<')}."
        )
        return f"{text} This is below the threshold of {limit}." if compare else text
    if not compare:
        return f"Asparaginase activity {format_activity(value)}."
    where = "at or above" if value >= threshold else "below"
    return f"Asparaginase activity {format_activity(value)} is {where} the threshold of {limit}."


def _threshold_flag(sample: SampleResult, threshold: float) -> str:
    assert sample.activity_u_per_l is not None
    if sample.comparator == "<":
        return Flag.BELOW_LLOQ
    return Flag.THERAPEUTIC if sample.activity_u_per_l >= threshold else Flag.BELOW_THRESHOLD


def interpret(
    sample: SampleResult,
    order: OrderContext | None,
    rules: InterpretationRules,
    *,
    protocol: LoadedProtocol | None = None,
    history: Sequence[PriorResult] = (),
    assay: AssayDefinition | None = None,
    bias_factor: float | None = None,
) -> Interpretation:
    """What ``sample`` means for the clinic.

    ``protocol``: the rule set chosen for the order (``ProtocolCatalog.select(order.protocol)``);
    when given, its threshold governs and ``rules`` is not used. ``history``: the same
    patient's earlier results, any order. ``assay`` and ``bias_factor`` (from
    :func:`apply_peg_bias`) make the comment state an E. coli-calibrated kit's PEG bias.
    """
    if protocol is None:
        return _interpret_threshold_only(sample, order, rules, assay, bias_factor)
    return _Reading(sample, order, protocol, history, assay, bias_factor).interpret()


def _interpret_threshold_only(
    sample: SampleResult,
    order: OrderContext | None,
    rules: InterpretationRules,
    assay: AssayDefinition | None,
    bias_factor: float | None,
) -> Interpretation:
    """The first cut (``threshold-v1``): the threshold and what is known of the order."""
    threshold = rules.threshold_u_per_l
    status = _status_verdict(sample, threshold)
    if status is not None:
        flag, parts = status.flag, [status.sentence]
        hl7_flag = "<" if status.key == "below-lloq-dilution" else hl7_abnormal_flag(flag)
    else:
        flag = _threshold_flag(sample, threshold)
        parts = [_value_sentence(sample, threshold, compare=True)]
        hl7_flag = hl7_abnormal_flag(flag)
    if sample.status != SampleStatus.INVALID:
        parts.extend(_sample_notes(sample))
    method = _method_note(assay, order, bias_factor)
    if method:
        parts.append(method)
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
    return Interpretation(
        flag=flag,
        comment=" ".join(parts),
        rule_id=f"{rules.rule_set}:{sample.status}",
        abnormal_flag=hl7_flag,
        recommendation=status.recommendation if status else "",
        hours_since_dose=hours_between(order.dose_time, order.collection_time) if order else None,
        threshold_u_per_l=threshold,
    )


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else "unknown time"


class _Reading:
    """One sample read against one protocol; builds the flag, comment and recommendation."""

    def __init__(
        self,
        sample: SampleResult,
        order: OrderContext | None,
        protocol: LoadedProtocol,
        history: Sequence[PriorResult],
        assay: AssayDefinition | None,
        bias_factor: float | None,
    ) -> None:
        self.sample = sample
        self.order = order
        self.loaded = protocol
        self.protocol: ProtocolDefinition = protocol.definition
        self.history = history
        self.threshold = self.protocol.threshold_u_per_l
        self.hours = hours_between(order.dose_time, order.collection_time) if order else None
        self.formulation = order.formulation if order else None
        self.drug = FORMULATION_NAMES.get(self.formulation or "", "asparaginase")
        # Sentences after the value: sample notes, method, timing, protocol choice.
        self.context: list[str] = []
        if sample.status != SampleStatus.INVALID:
            self.context.extend(_sample_notes(sample))
        method = _method_note(assay, order, bias_factor)
        if method:
            self.context.append(method)
        since = _since_dose(order) if order else None
        if since:
            self.context.append(since)
        if order and order.protocol and not protocol.answers_to(order.protocol):
            self.context.append(
                f"Protocol {order.protocol!r} named on the order is not configured; "
                f"interpreted with the {protocol.name} rules (the default)."
            )

    # -- result -------------------------------------------------------------------

    def _result(
        self,
        flag: str,
        head: str,
        rule_id: str,
        *,
        tail: Sequence[str] = (),
        recommendation: str = "",
        band: tuple[float, float] | None = None,
        hl7_flag: str | None = None,
    ) -> Interpretation:
        parts = [head, *self.context, *tail]
        return Interpretation(
            flag=flag,
            comment=" ".join(p for p in parts if p),
            rule_id=rule_id,
            abnormal_flag=hl7_abnormal_flag(flag) if hl7_flag is None else hl7_flag,
            protocol=self.loaded.name,
            protocol_version=self.loaded.version,
            recommendation=recommendation,
            hours_since_dose=self.hours,
            threshold_u_per_l=self.threshold,
            target_band_u_per_l=band,
        )

    def interpret(self) -> Interpretation:
        status = _status_verdict(self.sample, self.threshold)
        if status is not None:
            hl7_flag = "<" if status.key == "below-lloq-dilution" else None
            return self._result(
                status.flag,
                status.sentence,
                status.key,
                recommendation=status.recommendation,
                hl7_flag=hl7_flag,
            )
        value, comparator = self.sample.activity_u_per_l, self.sample.comparator
        assert value is not None
        low = comparator == "<" or value < self.threshold
        reaction, reaction_notes = self._reaction()
        if not reaction:  # e.g. a reaction after this sample: said once, then read as usual
            self.context.extend(reaction_notes)
            reaction_notes = []

        if reaction and not low:
            settings = self.protocol.reaction
            return self._result(
                Flag.REACTION_ACTIVITY_PRESENT,
                _value_sentence(self.sample, self.threshold, compare=True),
                "reaction-activity-present",
                tail=[*reaction_notes, settings.activity_present_comment, *self._switch_note()],
                recommendation=settings.activity_present_recommendation,
            )
        missing = self._missing()
        if missing is not None:
            tail = [missing]
            if reaction:
                tail.append(
                    "A low value after the reported reaction cannot be assessed without the "
                    "formulation and dose time."
                )
            return self._result(
                _threshold_flag(self.sample, self.threshold),
                _value_sentence(self.sample, self.threshold, compare=True),
                "threshold-only",
                tail=[*reaction_notes, *tail, *self._switch_note()],
                recommendation=(
                    "Send the formulation and the dose and collection date/time with the order "
                    "for an interpretation against the protocol."
                ),
            )
        assert self.hours is not None and self.formulation is not None
        if self.hours < 0:
            return self._outside(
                "The collection time is before the dose time: check the order.", reaction_notes
            )
        match = self.protocol.match(self.formulation, self.hours, value, comparator)
        if not match.window:
            return self._outside(None, reaction_notes, reaction=reaction)
        first = match.window[0]
        where = f"Protocol {self.loaded.name}, {first.window_text}."
        band = next((r.band_u_per_l for r in match.window if r.band_u_per_l), None)

        if reaction:  # and low: activity present was handled above
            settings = self.protocol.reaction
            return self._result(
                _threshold_flag(self.sample, self.threshold),
                _value_sentence(self.sample, self.threshold, compare=True),
                "reaction-activity-low",
                tail=[where, *reaction_notes, settings.activity_low_comment, *self._switch_note()],
                recommendation=settings.activity_low_recommendation,
                band=band,
            )
        rule = match.fired
        head = _value_sentence(self.sample, self.threshold, compare=True)
        if rule is None:
            flag = _threshold_flag(self.sample, self.threshold)
            tail = [where]
            if flag == Flag.THERAPEUTIC and band is not None:
                low_band, high_band = band
                tail.append(
                    f"Within the target band of {format_number(low_band)}–"
                    f"{format_number(high_band)} U/L."
                )
            suffix = "not-met" if flag == Flag.THERAPEUTIC else "threshold"
            return self._result(flag, head, f"{first.id}:{suffix}", tail=tail, band=band)
        tail = [where, rule.comment]
        if rule.flag != Flag.POSSIBLE_SILENT_INACTIVATION:
            return self._result(
                rule.flag, head, rule.id, tail=tail, recommendation=rule.recommendation, band=band
            )
        confirmed, history_note = self._confirmation()
        if confirmed:
            confirmation = self.protocol.confirmation
            return self._result(
                Flag.SILENT_INACTIVATION_CONFIRMED,
                head,
                rule.id,
                tail=[*tail, history_note, confirmation.comment],
                recommendation=confirmation.recommendation,
                band=band,
            )
        tail += [
            "Possible silent inactivation (a single low sample): repeat sample recommended.",
            history_note,
        ]
        return self._result(
            Flag.POSSIBLE_SILENT_INACTIVATION,
            head,
            rule.id,
            tail=tail,
            recommendation=rule.recommendation or "Repeat sample recommended.",
            band=band,
        )

    # -- pieces -------------------------------------------------------------------

    def _missing(self) -> str | None:
        order = self.order
        if order is None or order.is_empty:
            return (
                "No order details (formulation, dose time) were received; interpreted against "
                "the threshold only, without an inactivation assessment."
            )
        absent = [
            name
            for name, value in (
                ("formulation", order.formulation),
                ("dose time", order.dose_time),
                ("collection time", order.collection_time),
            )
            if value is None
        ]
        if not absent:
            return None
        return (
            f"The order gives no {' or '.join(absent)}; interpreted against the threshold only, "
            f"without an inactivation assessment."
        )

    def _outside(
        self, why: str | None, reaction_notes: Sequence[str], *, reaction: bool = False
    ) -> Interpretation:
        assert self.formulation is not None
        windows = self.protocol.windows_for(self.formulation)
        if why is None:
            if windows:
                listed = "; ".join(r.window_text for r in windows)
                why = (
                    f"This is outside the sampling times of protocol {self.loaded.name} for "
                    f"{self.drug} ({listed})."
                )
            else:
                why = f"Protocol {self.loaded.name} has no sampling time for {self.drug}."
        tail = [
            *reaction_notes,
            why,
            f"The value is reported without an inactivation assessment (the threshold of "
            f"{format_activity(self.threshold)} applies at the protocol's sampling times).",
        ]
        if reaction:
            tail.append(
                "A low value after the reported reaction can only be assessed at a protocol "
                "sampling time."
            )
        points = " or ".join(dict.fromkeys(r.timepoint for r in windows))
        recommendation = (
            f"For an inactivation assessment, sample at a protocol time point: {points}."
            if windows
            else ""
        )
        return self._result(
            Flag.OUTSIDE_SAMPLING_WINDOW,
            _value_sentence(self.sample, self.threshold, compare=False),
            "outside-window",
            tail=tail,
            recommendation=recommendation,
        )

    def _reaction(self) -> tuple[bool, list[str]]:
        order = self.order
        if order is None or not order.reaction:
            return False, []
        grade = f" (grade {order.reaction_grade})" if order.reaction_grade else ""
        if order.reaction_time is not None and order.collection_time is not None:
            after = (order.collection_time - order.reaction_time).total_seconds() / 3600
            if after < 0:
                return False, [
                    f"The reported reaction{grade} occurred after this sample was collected; "
                    "this sample does not show the activity after the reaction."
                ]
            return True, [f"Collected {after:.0f} h after the reported reaction{grade}."]
        return True, [f"A reaction{grade} to the dose was reported."]

    def _switch_note(self) -> list[str]:
        order, settings = self.order, self.protocol.reaction
        if order is None or not order.reaction or not order.reaction_grade:
            return []
        if settings.switch_grade and order.reaction_grade >= settings.switch_grade:
            return [settings.switch_comment]
        return []

    def _confirmation(self) -> tuple[bool, str]:
        """Whether the patient's previous qualifying sample was also low (same formulation)."""
        order = self.order
        assert order is not None and order.collection_time is not None
        collected: datetime = order.collection_time
        earlier = sorted(
            (
                p
                for p in self.history
                if p.activity_u_per_l is not None
                and p.formulation == self.formulation
                and p.collection_time is not None
                and p.collection_time < collected
            ),
            key=lambda p: p.collection_time or collected,
            reverse=True,
        )
        for prior in earlier:
            assert prior.activity_u_per_l is not None and self.formulation is not None
            hours = hours_between(prior.dose_time, prior.collection_time)
            if hours is not None:
                match = self.protocol.match(
                    self.formulation, hours, prior.activity_u_per_l, prior.comparator
                )
                if not match.qualifies_for_inactivation:
                    continue
                low = match.low_for_inactivation
            elif prior.flag in (
                Flag.POSSIBLE_SILENT_INACTIVATION,
                Flag.SILENT_INACTIVATION_CONFIRMED,
            ):
                low = True  # no dose time stored: trust the flag it was given
            else:
                continue
            comparator = "<" if prior.comparator == "<" else ""
            desc = (
                f"The previous qualifying sample (collected {_when(prior.collection_time)}, "
                f"{format_activity(prior.activity_u_per_l, comparator)})"
            )
            if not low:
                return False, f"{desc} was not low: this is the first low sample."
            limit = self.protocol.confirmation.max_days_between_doses
            reference = prior.dose_time or prior.collection_time
            current = order.dose_time or collected
            if limit is not None and reference is not None:
                days = (current - reference).total_seconds() / 86400
                if days > limit:
                    return False, (
                        f"{desc} was also low, but its dose was {days:.0f} days before this one "
                        f"(more than {limit:g} days): not counted as confirmation."
                    )
            return True, f"{desc} was also low."
        return False, (
            "No earlier sample of this patient at a qualifying time point is on record: "
            "a single low sample does not prove silent inactivation."
        )

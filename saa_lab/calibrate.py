"""Calibrate: blank correction, the standard curve, run QC and sample activities.

Pure numpy; no I/O. A run is *accepted* only when its standards and controls
meet the assay's rules; the reasons for a rejection are listed. Sample values
are never extrapolated: below the LLOQ they are ``<`` LLOQ × dilution, above
the ULOQ ``>`` ULOQ × dilution with a re-assay flag.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .assay import AssayDefinition
from .domain import NoValueReason
from .mapping import MappedWell, Plate
from .wells import well_sort_key

__all__ = [
    "Calibration",
    "ControlResult",
    "CurveFit",
    "SampleResult",
    "SampleStatus",
    "StandardLevel",
    "calibrate",
]


class SampleStatus:
    QUANTIFIED = "quantified"
    BELOW_LLOQ = "below-lloq"
    ABOVE_ULOQ = "above-uloq"
    INVALID = "invalid"


@dataclass(frozen=True)
class CurveFit:
    """Blank-corrected signal = intercept + slope × activity (U/L)."""

    model: str
    intercept: float
    slope: float
    r_squared: float
    n_points: int
    residuals: tuple[float, ...]

    def activity(self, signal: float) -> float:
        return (signal - self.intercept) / self.slope


@dataclass(frozen=True)
class StandardLevel:
    nominal_u_per_l: float
    wells: tuple[str, ...]
    signals: tuple[float, ...]
    unreadable: tuple[str, ...]
    back_calculated_u_per_l: float | None
    recovery_percent: float | None
    tolerance_percent: float
    passed: bool


@dataclass(frozen=True)
class ControlResult:
    name: str
    wells: tuple[str, ...]
    measured_u_per_l: float | None
    low_u_per_l: float
    high_u_per_l: float
    passed: bool


@dataclass(frozen=True)
class SampleResult:
    accession: str
    wells: tuple[str, ...]
    dilution: float
    replicate_u_per_l: tuple[float | None, ...]
    mean_u_per_l: float | None
    cv_percent: float | None
    activity_u_per_l: float | None
    comparator: str
    status: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Calibration:
    accepted: bool
    reasons: tuple[str, ...]
    blank_mean: float | None
    blank_wells: tuple[str, ...]
    fit: CurveFit | None
    standards: tuple[StandardLevel, ...]
    controls: tuple[ControlResult, ...]
    lloq_u_per_l: float
    uloq_u_per_l: float
    samples: tuple[SampleResult, ...]


def _g(value: float) -> str:
    return f"{value:.4g}"


def _fit_linear(x: np.ndarray, y: np.ndarray) -> CurveFit:
    slope, intercept = np.polyfit(x, y, 1)
    predicted = intercept + slope * x
    residuals = y - predicted
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residuals**2)) / total if total > 0 else 0.0
    return CurveFit(
        model="linear",
        intercept=float(intercept),
        slope=float(slope),
        r_squared=r2,
        n_points=len(x),
        residuals=tuple(float(r) for r in residuals),
    )


def calibrate(plate: Plate, assay: AssayDefinition) -> Calibration:
    rules = assay.acceptance
    reasons: list[str] = []

    blanks = plate.with_role("blank")
    blank_values = [w.value for w in blanks if w.value is not None]
    blank_mean = float(np.mean(blank_values)) if blank_values else None
    if blank_mean is None:
        reasons.append("no readable blank well" if blanks else "the layout has no blank wells")

    by_level: dict[float, list[MappedWell]] = defaultdict(list)
    for well in plate.with_role("standard"):
        assert well.nominal_u_per_l is not None  # the layout guarantees it
        by_level[well.nominal_u_per_l].append(well)
    levels = sorted(by_level)

    fit: CurveFit | None = None
    if blank_mean is not None:
        xs = [w.nominal_u_per_l for lv in levels for w in by_level[lv] if w.value is not None]
        ys = [w.value - blank_mean for lv in levels for w in by_level[lv] if w.value is not None]
        readable_levels = {lv for lv in levels if any(w.value is not None for w in by_level[lv])}
        if len(readable_levels) < 2:
            reasons.append(f"only {len(readable_levels)} standard level(s) readable; need 2 to fit")
        else:
            fit = _fit_linear(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float))
            if not fit.slope > 0:
                reasons.append(f"the curve's slope is {_g(fit.slope)}; it must rise with activity")
                fit = None

    standards: list[StandardLevel] = []
    for index, level in enumerate(levels):
        wells = by_level[level]
        tolerance = (
            rules.standard_tolerance_lloq_percent
            if index == 0
            else rules.standard_tolerance_percent
        )
        signals = [
            w.value - blank_mean for w in wells if w.value is not None and blank_mean is not None
        ]
        back = recovery = None
        if fit is not None and signals:
            back = fit.activity(float(np.mean(signals)))
            recovery = 100.0 * back / level
        passed = recovery is not None and abs(recovery - 100.0) <= tolerance
        standards.append(
            StandardLevel(
                nominal_u_per_l=level,
                wells=tuple(w.well for w in wells),
                signals=tuple(signals),
                unreadable=tuple(w.well for w in wells if w.value is None),
                back_calculated_u_per_l=back,
                recovery_percent=recovery,
                tolerance_percent=tolerance,
                passed=passed,
            )
        )

    passing = [s for s in standards if s.passed]
    if fit is not None and standards:
        share = 100.0 * len(passing) / len(standards)
        if share < rules.min_standards_passing_percent:
            failed = ", ".join(
                f"{_g(s.nominal_u_per_l)} U/L ({_g(s.recovery_percent)} %)"
                if s.recovery_percent is not None
                else f"{_g(s.nominal_u_per_l)} U/L (unreadable)"
                for s in standards
                if not s.passed
            )
            reasons.append(
                f"{len(passing)} of {len(standards)} standard levels within tolerance "
                f"({share:.0f} %, need {rules.min_standards_passing_percent:g} %); "
                f"failing: {failed}"
            )
        if len(passing) < rules.min_standard_levels:
            reasons.append(
                f"{len(passing)} passing standard levels; the assay needs at least "
                f"{rules.min_standard_levels}"
            )

    # Never quantify outside the assay's limits nor outside the passing standards.
    lloq = assay.lloq_u_per_l
    uloq = assay.uloq_u_per_l
    if passing:
        lloq = max(lloq, min(s.nominal_u_per_l for s in passing))
        uloq = min(uloq, max(s.nominal_u_per_l for s in passing))

    controls = _controls(plate, fit, blank_mean)
    if len(controls) < 2:
        reasons.append(f"{len(controls)} control level(s) on the plate; at least 2 are required")
    for control in controls:
        if not control.passed:
            measured = (
                f"{_g(control.measured_u_per_l)} U/L"
                if control.measured_u_per_l is not None
                else "unreadable"
            )
            reasons.append(
                f"control {control.name} {measured} outside "
                f"{_g(control.low_u_per_l)}–{_g(control.high_u_per_l)} U/L"
            )

    samples = _samples(plate, fit, blank_mean, lloq, uloq, assay)
    return Calibration(
        accepted=not reasons,
        reasons=tuple(reasons),
        blank_mean=blank_mean,
        blank_wells=tuple(w.well for w in blanks),
        fit=fit,
        standards=tuple(standards),
        controls=tuple(controls),
        lloq_u_per_l=lloq,
        uloq_u_per_l=uloq,
        samples=tuple(samples),
    )


def _controls(plate: Plate, fit: CurveFit | None, blank: float | None) -> list[ControlResult]:
    groups: dict[str, list[MappedWell]] = defaultdict(list)
    for well in plate.with_role("control"):
        groups[well.control or "?"].append(well)
    results = []
    for name, wells in groups.items():
        values = [w.value for w in wells if w.value is not None]
        measured = None
        if fit is not None and blank is not None and values:
            measured = fit.activity(float(np.mean(values)) - blank)
        low = wells[0].low_u_per_l or 0.0
        high = wells[0].high_u_per_l or 0.0
        passed = measured is not None and low <= measured <= high
        results.append(
            ControlResult(
                name=name,
                wells=tuple(w.well for w in wells),
                measured_u_per_l=measured,
                low_u_per_l=low,
                high_u_per_l=high,
                passed=passed,
            )
        )
    return results


def _samples(
    plate: Plate,
    fit: CurveFit | None,
    blank: float | None,
    lloq: float,
    uloq: float,
    assay: AssayDefinition,
) -> list[SampleResult]:
    groups: dict[str, list[MappedWell]] = defaultdict(list)
    for well in plate.with_role("sample"):
        assert well.accession is not None  # unused sample wells are not mapped
        groups[well.accession].append(well)
    results = []
    for accession, wells in groups.items():
        wells_sorted = sorted(wells, key=lambda w: well_sort_key(w.well))
        results.append(_sample(accession, wells_sorted, fit, blank, lloq, uloq, assay))
    first_line = {acc: min(w.worklist_line for w in wells) for acc, wells in groups.items()}
    return sorted(results, key=lambda r: (first_line[r.accession], well_sort_key(r.wells[0])))


def _sample(
    accession: str,
    wells: list[MappedWell],
    fit: CurveFit | None,
    blank: float | None,
    lloq: float,
    uloq: float,
    assay: AssayDefinition,
) -> SampleResult:
    names = tuple(w.well for w in wells)
    dilution = max(w.dilution for w in wells)

    def result(
        status: str,
        *notes: str,
        replicates: tuple[float | None, ...] = (),
        mean: float | None = None,
        cv: float | None = None,
        activity: float | None = None,
        comparator: str = "=",
    ) -> SampleResult:
        return SampleResult(
            accession, names, dilution, replicates, mean, cv, activity, comparator, status, notes
        )

    if len({w.dilution for w in wells}) > 1:
        listed = ", ".join(f"{w.well} 1:{_g(w.dilution)}" for w in wells)
        return result(SampleStatus.INVALID, f"replicates have different dilutions ({listed})")
    if dilution > assay.max_dilution:
        note = f"dilution 1:{_g(dilution)} is beyond the validated 1:{_g(assay.max_dilution)}"
        return result(SampleStatus.INVALID, note)
    if fit is None or blank is None:
        return result(SampleStatus.INVALID, "no valid calibration curve for this run")

    unreadable = [w for w in wells if w.value is None]
    notes: tuple[str, ...] = ()
    if unreadable:
        listed = ", ".join(f"{w.well}: {w.reason} {w.raw!r}" for w in unreadable)
        notes = (f"{len(unreadable)} of {len(wells)} replicate wells unreadable ({listed})",)
    replicates = tuple(
        fit.activity(w.value - blank) if w.value is not None else None for w in wells
    )
    if any(w.reason == NoValueReason.OVERFLOW for w in unreadable):
        # A saturated well: the activity is above what the plate can measure.
        return result(
            SampleStatus.ABOVE_ULOQ, *notes, replicates=replicates,
            activity=uloq * dilution, comparator=">",
        )  # fmt: skip
    usable = [c for c in replicates if c is not None]
    if not usable:
        return result(SampleStatus.INVALID, "no readable replicate well", *notes)
    mean = float(np.mean(usable))
    cv = float(np.std(usable, ddof=1) / mean * 100.0) if len(usable) >= 2 and mean > 0 else None
    if mean < lloq:
        return result(
            SampleStatus.BELOW_LLOQ, *notes, replicates=replicates, mean=mean, cv=cv,
            activity=lloq * dilution, comparator="<",
        )  # fmt: skip
    if mean > uloq:
        return result(
            SampleStatus.ABOVE_ULOQ, *notes, replicates=replicates, mean=mean, cv=cv,
            activity=uloq * dilution, comparator=">",
        )  # fmt: skip
    rules = assay.acceptance
    near = mean < rules.near_lloq_factor * lloq
    limit = rules.replicate_cv_max_percent_near_lloq if near else rules.replicate_cv_max_percent
    if cv is not None and (math.isnan(cv) or cv > limit):
        note = f"replicate CV {cv:.1f} % exceeds the {limit:g} % limit"
        return result(SampleStatus.INVALID, note, *notes, replicates=replicates, mean=mean, cv=cv)
    return result(
        SampleStatus.QUANTIFIED, *notes, replicates=replicates, mean=mean, cv=cv,
        activity=mean * dilution,
    )  # fmt: skip

"""Calibrate: blank correction, the standard curve, run QC and sample activities.

Pure computation; no I/O. The steps, each configurable in the assay file:

1. **Signal**: reading × ``signal_scale`` (e.g. −1000 for a falling NADH rate in
   ΔmOD/min) minus the mean of the blank wells.
2. **Curve**: the assay's model (:mod:`saa_lab.curves`) fitted to every readable
   standard well. Every standard well is back-calculated; a well passes within
   ±15 % (±20 % at the LLOQ level, ±15 % at the ULOQ level; the ligand-binding
   regime uses 20/25/25 %). Failing wells are excluded and the curve refitted,
   and each exclusion recorded, only while the run would still meet the rules.
3. **Acceptance**: at least 75 % of standard wells and at least 6 levels pass (a
   level passes when half its replicates do); at least 2 control levels, 2/3 of
   all control wells and half of each level's within their limits; no Westgard
   rejection (:mod:`saa_lab.westgard`). Every failed rule is a stated reason.
4. **Samples**: replicate mean and CV; below the LLOQ → ``<`` LLOQ × dilution;
   above the ULOQ → a re-assay at a suggested dilution within the validated
   maximum (not reported); at the maximum dilution and still above → ``>`` the
   top of the reportable range. Nothing is ever extrapolated.

The effective LLOQ/ULOQ are the lowest/highest passing standard levels within
the assay's limits.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .assay import Acceptance, AssayDefinition
from .curves import CurveFitError, FittedCurve, fit_curve
from .domain import NoValueReason
from .mapping import MappedWell, Plate
from .wells import well_sort_key
from .westgard import WestgardResult, evaluate

__all__ = [
    "Calibration",
    "ControlResult",
    "SampleResult",
    "SampleStatus",
    "StandardLevel",
    "StandardWell",
    "calibrate",
]


class SampleStatus:
    QUANTIFIED = "quantified"
    BELOW_LLOQ = "below-lloq"
    ABOVE_ULOQ = "above-uloq"  # re-assay at a higher dilution; not reported
    ABOVE_REPORTABLE = "above-reportable"  # at the maximum dilution: reported as ">"
    INVALID = "invalid"


@dataclass(frozen=True)
class StandardWell:
    well: str
    nominal_u_per_l: float
    signal: float | None
    back_calculated_u_per_l: float | None
    recovery_percent: float | None
    tolerance_percent: float
    passed: bool
    excluded: bool
    reason: str | None = None


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
    excluded: tuple[str, ...] = ()


@dataclass(frozen=True)
class ControlResult:
    name: str
    wells: tuple[str, ...]
    measured_u_per_l: float | None
    low_u_per_l: float
    high_u_per_l: float
    passed: bool
    well_values: tuple[float | None, ...] = ()
    wells_passed: tuple[bool, ...] = ()
    lot: str = "default"


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
    reassay_dilution: float | None = None


@dataclass(frozen=True)
class Calibration:
    accepted: bool
    reasons: tuple[str, ...]
    blank_mean: float | None
    blank_wells: tuple[str, ...]
    fit: FittedCurve | None
    standards: tuple[StandardLevel, ...]
    controls: tuple[ControlResult, ...]
    lloq_u_per_l: float
    uloq_u_per_l: float
    samples: tuple[SampleResult, ...]
    standard_wells: tuple[StandardWell, ...] = ()
    exclusions: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    westgard: WestgardResult = field(default_factory=WestgardResult)
    control_failed: bool = False
    signal_unit: str = "OD"


SignalOf = Callable[[MappedWell], float | None]


def _g(value: float) -> str:
    return f"{value:.4g}"


@dataclass
class _Standard:
    well: MappedWell
    nominal: float
    signal: float | None
    reason: str | None = None


def _tolerance(
    nominal: float, low: float, high: float, tolerances: tuple[float, float, float]
) -> float:
    general, at_lloq, at_uloq = tolerances
    if nominal == low:
        return at_lloq
    if nominal == high:
        return at_uloq
    return general


def _evaluate(curve: FittedCurve, standards: Sequence[_Standard], included: set[str],
              tolerances: tuple[float, float, float]) -> list[StandardWell]:  # fmt: skip
    levels = [s.nominal for s in standards if s.well.well in included]
    low, high = (min(levels), max(levels)) if levels else (0.0, 0.0)
    out = []
    for s in standards:
        tol = _tolerance(s.nominal, low, high, tolerances)
        if s.signal is None:
            out.append(StandardWell(s.well.well, s.nominal, None, None, None, tol, False, True,
                                    s.reason))  # fmt: skip
            continue
        back = curve.activity(s.signal)
        recovery = 100.0 * back / s.nominal if math.isfinite(back) else None
        passed = recovery is not None and abs(recovery - 100.0) <= tol
        excluded = s.well.well not in included
        reason = s.reason
        if excluded and reason is None:
            reason = "excluded"
        out.append(StandardWell(s.well.well, s.nominal, s.signal,
                                back if math.isfinite(back) else None, recovery, tol,
                                passed and not excluded, excluded, reason))  # fmt: skip
    return out


def _deviation(well: StandardWell, fit: FittedCurve) -> float:
    """The well's weighted residual in signal units, as the fit itself weighs points.

    Ranking by residual (not by % recovery, which magnifies low standards) finds
    the point that bends the curve, e.g. a saturated top standard.
    """
    if well.signal is None:
        return math.inf
    residual = abs(well.signal - fit.predict(well.nominal_u_per_l))
    if fit.weighting == "1/x":
        return residual / math.sqrt(well.nominal_u_per_l)
    if fit.weighting == "1/x2":
        return residual / well.nominal_u_per_l
    return residual


def _best_exclusion(
    failing: Sequence[StandardWell], standards: Sequence[_Standard], included: set[str],
    assay: AssayDefinition, fit: FittedCurve, total: int,
) -> list[StandardWell]:  # fmt: skip
    """The failing well, or level of failing wells, whose exclusion lets most wells pass.

    Each candidate is tried with a refit (rather than taking the largest residual or
    % error): a high-leverage outlier such as a saturated top standard drags the
    line towards itself and hides its own residual, and its replicate does the same
    until both go. Ties go to the smaller exclusion, then the larger residual.
    """
    curve, rules = assay.curve, assay.acceptance
    tolerances = rules.tolerances()
    by_level: dict[float, list[StandardWell]] = defaultdict(list)
    for e in failing:
        by_level[e.nominal_u_per_l].append(e)
    candidates = [[e] for e in failing] + [group for group in by_level.values() if len(group) > 1]

    def score(group: list[StandardWell]) -> tuple[int, int, float]:
        kept = included - {e.well for e in group}
        if not _could_pass(standards, kept, total, rules):
            return (-1, 0, 0.0)
        points = [s for s in standards if s.well.well in kept]
        try:
            trial = fit_curve([s.nominal for s in points], [s.signal or 0.0 for s in points],
                              model=curve.model, weighting=curve.weighting,
                              segments=curve.segments)  # fmt: skip
        except CurveFitError:
            return (-1, 0, 0.0)
        passing = sum(e.passed for e in _evaluate(trial, standards, kept, tolerances))
        return (passing, -len(group), max(_deviation(e, fit) for e in group))

    return max(candidates, key=score)


def _search(
    standards: Sequence[_Standard], included: set[str], assay: AssayDefinition,
    *, one_at_a_time: bool | None,
) -> tuple[FittedCurve, list[StandardWell], list[StandardWell]]:  # fmt: skip
    """Fit, then exclude failing wells while the run could still pass, and refit.

    ``one_at_a_time``: True excludes the worst well per refit, False all failing
    wells at once, None none. Returns the fit, every well evaluated on it, and the
    excluded wells as they were judged when excluded.
    """
    rules, curve = assay.acceptance, assay.curve
    tolerances = rules.tolerances()
    total = len(standards)
    excluded: list[StandardWell] = []
    while True:
        points = [s for s in standards if s.well.well in included]
        fit = fit_curve([s.nominal for s in points], [s.signal or 0.0 for s in points],
                        model=curve.model, weighting=curve.weighting,
                        segments=curve.segments)  # fmt: skip
        evaluated = _evaluate(fit, standards, included, tolerances)
        failing = [e for e in evaluated if not e.excluded and not e.passed]
        if not failing or one_at_a_time is None or not rules.exclude_failing_standards:
            return fit, evaluated, excluded
        chosen = (
            _best_exclusion(failing, standards, included, assay, fit, total)
            if one_at_a_time
            else failing
        )
        remaining = included - {e.well for e in chosen}
        if not _could_pass(standards, remaining, total, rules):
            return fit, evaluated, excluded
        excluded.extend(chosen)
        included = remaining


def _acceptable(evaluated: Sequence[StandardWell], total: int, rules: Acceptance) -> bool:
    passing = sum(e.passed for e in evaluated)
    share = 100.0 * passing / total if total else 0.0
    levels = _levels_passing(evaluated, rules.level_min_passing_fraction)
    return share >= rules.min_standards_passing_percent and len(levels) >= rules.min_standard_levels


def _could_pass(standards: Sequence[_Standard], remaining: set[str], total: int,
                rules: Acceptance) -> bool:  # fmt: skip
    """Whether the run could still meet the standard rules with only these wells left."""
    if total == 0 or 100.0 * len(remaining) / total < rules.min_standards_passing_percent:
        return False
    by_level: dict[float, list[bool]] = defaultdict(list)
    for s in standards:
        by_level[s.nominal].append(s.well.well in remaining)
    levels = sum(
        1 for kept in by_level.values() if sum(kept) / len(kept) >= rules.level_min_passing_fraction
    )
    return levels >= rules.min_standard_levels


def _levels_passing(evaluated: Sequence[StandardWell], fraction: float) -> list[float]:
    by_level: dict[float, list[StandardWell]] = defaultdict(list)
    for e in evaluated:
        by_level[e.nominal_u_per_l].append(e)
    return sorted(
        level for level, wells in by_level.items()
        if sum(w.passed for w in wells) / len(wells) >= fraction
    )  # fmt: skip


def calibrate(
    plate: Plate,
    assay: AssayDefinition,
    *,
    control_history: Mapping[str, Sequence[float]] | None = None,
) -> Calibration:
    """Judge the run and compute every sample; ``control_history`` feeds Westgard."""
    rules = assay.acceptance
    reasons: list[str] = []
    warnings: list[str] = []
    scale = assay.signal_scale

    blanks = plate.with_role("blank")
    blank_values = [w.value * scale for w in blanks if w.value is not None]
    blank_mean = float(np.mean(blank_values)) if blank_values else None
    if blank_mean is None:
        reasons.append("no readable blank well" if blanks else "the layout has no blank wells")

    def signal(well: MappedWell) -> float | None:
        if well.value is None or blank_mean is None:
            return None
        return well.value * scale - blank_mean

    standards = []
    for well in sorted(
        plate.with_role("standard"), key=lambda w: (w.nominal_u_per_l or 0, well_sort_key(w.well))
    ):
        assert well.nominal_u_per_l is not None  # the layout guarantees it
        reason = None
        if well.value is None:
            reason = f"no reading ({well.reason} {well.raw!r})".replace(" ''", "")
        standards.append(_Standard(well, well.nominal_u_per_l, signal(well), reason))
    total_wells = len(standards)

    fit: FittedCurve | None = None
    evaluated: list[StandardWell] = []
    exclusions: list[str] = [f"standard {s.well.well} ({_g(s.nominal)} U/L): {s.reason}"
                             for s in standards if s.reason]  # fmt: skip
    included = {s.well.well for s in standards if s.signal is not None}
    if blank_mean is not None:
        included = {s.well.well for s in standards if s.signal is not None}
        try:
            fit, evaluated, excluded = _search(standards, included, assay, one_at_a_time=True)
            if rules.exclude_failing_standards and not _acceptable(evaluated, total_wells, rules):
                alternative = _search(standards, included, assay, one_at_a_time=False)
                if _acceptable(alternative[1], total_wells, rules):
                    fit, evaluated, excluded = alternative
            if excluded and not _acceptable(evaluated, total_wells, rules):
                # Exclusions stand only when they bring the run within the rules; a run
                # rejected anyway is reported on its first fit, with every well.
                fit, evaluated, excluded = _search(standards, included, assay, one_at_a_time=None)
        except CurveFitError as exc:
            reasons.append(f"calibration curve: {exc.message}")
            fit, evaluated, excluded = None, [], []
        for e in excluded:
            exclusions.append(
                f"standard {e.well} ({_g(e.nominal_u_per_l)} U/L) excluded: back-calculated "
                + (f"{e.recovery_percent:.1f} %" if e.recovery_percent is not None
                   else "beyond the curve")
                + f", limit ±{e.tolerance_percent:g} %"
            )  # fmt: skip
        excluded_wells = {e.well for e in excluded}
        evaluated = [
            replace(e, reason="excluded: outside tolerance, curve refitted")
            if e.well in excluded_wells else e
            for e in evaluated
        ]  # fmt: skip

    passing_levels: list[float] = []
    if fit is not None:
        passing = [e for e in evaluated if e.passed]
        share = 100.0 * len(passing) / total_wells if total_wells else 0.0
        passing_levels = _levels_passing(evaluated, rules.level_min_passing_fraction)
        if share < rules.min_standards_passing_percent:
            failed = ", ".join(
                f"{e.well} {_g(e.nominal_u_per_l)} U/L "
                + (f"({e.recovery_percent:.0f} %)" if e.recovery_percent is not None
                   else f"({e.reason or 'no value'})")
                for e in evaluated if not e.passed
            )  # fmt: skip
            reasons.append(
                f"{len(passing)} of {total_wells} standard wells within tolerance ({share:.0f} %, "
                f"need {rules.min_standards_passing_percent:g} %); failing: {failed}"
            )
        if len(passing_levels) < rules.min_standard_levels:
            reasons.append(
                f"{len(passing_levels)} standard levels pass; the assay needs at least "
                f"{rules.min_standard_levels}"
            )

    lloq, uloq = assay.lloq_u_per_l, assay.uloq_u_per_l
    if passing_levels:
        lloq = max(lloq, passing_levels[0])
        uloq = min(uloq, passing_levels[-1])

    controls = _controls(plate, fit, signal, assay)
    control_failed = False
    if fit is None:
        # Without a curve the controls cannot be judged; the curve is the reason.
        return _calibration(
            assay, reasons, warnings, blank_mean, blanks, fit, evaluated, standards,
            controls, lloq, uloq, exclusions, WestgardResult(), control_failed=False,
            samples=_samples(plate, fit, signal, lloq, uloq, assay),
        )  # fmt: skip
    if len(controls) < rules.min_control_levels:
        reasons.append(f"{len(controls)} control level(s) on the plate; at least "
                       f"{rules.min_control_levels} are required")  # fmt: skip
        control_failed = True
    all_control_wells = [p for c in controls for p in c.wells_passed]
    if all_control_wells:
        share = sum(all_control_wells) / len(all_control_wells)
        if share < rules.controls_min_passing_fraction - 1e-9:
            reasons.append(
                f"{sum(all_control_wells)} of {len(all_control_wells)} control wells within "
                f"limits; need {rules.controls_min_passing_fraction:.0%}"
            )
            control_failed = True
    for control in controls:
        if not control.passed:
            values = ", ".join("-" if v is None else _g(v) for v in control.well_values)
            reasons.append(
                f"control {control.name} outside {_g(control.low_u_per_l)}–"
                f"{_g(control.high_u_per_l)} U/L (wells {values} U/L)"
            )
            control_failed = True

    measured = {c.name: c.measured_u_per_l for c in controls if c.measured_u_per_l is not None}
    westgard = evaluate(measured, control_history or {}, assay.westgard)
    for finding in westgard.rejections:
        reasons.append(str(finding))
        control_failed = True
    warnings.extend(str(f) for f in westgard.warnings)
    warnings.extend(westgard.notes)

    return _calibration(
        assay, reasons, warnings, blank_mean, blanks, fit, evaluated, standards, controls,
        lloq, uloq, exclusions, westgard, control_failed=control_failed,
        samples=_samples(plate, fit, signal, lloq, uloq, assay),
    )  # fmt: skip


def _calibration(
    assay: AssayDefinition,
    reasons: list[str],
    warnings: list[str],
    blank_mean: float | None,
    blanks: list[MappedWell],
    fit: FittedCurve | None,
    evaluated: list[StandardWell],
    standards: list[_Standard],
    controls: list[ControlResult],
    lloq: float,
    uloq: float,
    exclusions: list[str],
    westgard: WestgardResult,
    *,
    control_failed: bool,
    samples: list[SampleResult],
) -> Calibration:
    rules = assay.acceptance
    return Calibration(
        accepted=not reasons,
        reasons=tuple(reasons),
        blank_mean=blank_mean,
        blank_wells=tuple(w.well for w in blanks),
        fit=fit,
        standards=_levels(
            evaluated, standards, rules.level_min_passing_fraction, rules.tolerances(), fit
        ),
        controls=tuple(controls),
        lloq_u_per_l=lloq,
        uloq_u_per_l=uloq,
        samples=tuple(samples),
        standard_wells=tuple(evaluated),
        exclusions=tuple(exclusions),
        warnings=tuple(warnings),
        westgard=westgard,
        control_failed=control_failed,
        signal_unit=assay.signal_unit,
    )


def _levels(
    evaluated: Sequence[StandardWell],
    standards: Sequence[_Standard],
    fraction: float,
    tolerances: tuple[float, float, float],
    fit: FittedCurve | None,
) -> tuple[StandardLevel, ...]:
    by_level: dict[float, list[_Standard]] = defaultdict(list)
    for s in standards:
        by_level[s.nominal].append(s)
    results = {e.well: e for e in evaluated}
    levels = sorted(by_level)
    out = []
    for level in levels:
        wells = by_level[level]
        evals = [results[s.well.well] for s in wells if s.well.well in results]
        signals = [s.signal for s in wells if s.signal is not None]
        back = recovery = None
        if fit is not None and signals:
            value = fit.activity(float(np.mean(signals)))
            if math.isfinite(value):
                back, recovery = value, 100.0 * value / level
        tol = (
            evals[0].tolerance_percent
            if evals
            else _tolerance(level, levels[0], levels[-1], tolerances)
        )
        passed = bool(evals) and sum(e.passed for e in evals) / len(wells) >= fraction
        out.append(StandardLevel(
            level, tuple(s.well.well for s in wells), tuple(signals),
            tuple(s.well.well for s in wells if s.signal is None), back, recovery, tol, passed,
            tuple(e.well for e in evals if e.excluded and e.signal is not None),
        ))  # fmt: skip
    return tuple(out)


def _controls(
    plate: Plate, fit: FittedCurve | None, signal: SignalOf, assay: AssayDefinition
) -> list[ControlResult]:
    rules = assay.acceptance
    groups: dict[str, list[MappedWell]] = defaultdict(list)
    for well in plate.with_role("control"):
        groups[well.control or "?"].append(well)
    results = []
    for name, wells in groups.items():
        wells = sorted(wells, key=lambda w: well_sort_key(w.well))
        low = wells[0].low_u_per_l or 0.0
        high = wells[0].high_u_per_l or 0.0
        values: list[float | None] = []
        for w in wells:
            s = signal(w)
            value = fit.activity(s) if fit is not None and s is not None else None
            values.append(value if value is not None and math.isfinite(value) else None)
        oks = tuple(v is not None and low <= v <= high for v in values)
        finite = [v for v in values if v is not None]
        measured = float(np.mean(finite)) if finite else None
        passed = sum(oks) / len(wells) >= rules.control_level_min_passing_fraction
        results.append(ControlResult(name, tuple(w.well for w in wells), measured, low, high,
                                     passed, tuple(values), oks,
                                     assay.westgard.control(name).lot))  # fmt: skip
    return results


def _samples(plate: Plate, fit: FittedCurve | None, signal: SignalOf, lloq: float, uloq: float,
             assay: AssayDefinition) -> list[SampleResult]:  # fmt: skip
    groups: dict[str, list[MappedWell]] = defaultdict(list)
    for well in plate.with_role("sample"):
        assert well.accession is not None  # unused sample wells are not mapped
        groups[well.accession].append(well)
    results = []
    for accession, wells in groups.items():
        ordered = sorted(wells, key=lambda w: well_sort_key(w.well))
        results.append(_sample(accession, ordered, fit, signal, lloq, uloq, assay))
    first_line = {acc: min(w.worklist_line for w in wells) for acc, wells in groups.items()}
    return sorted(results, key=lambda r: (first_line[r.accession], well_sort_key(r.wells[0])))


def suggest_dilution(estimate_u_per_l: float, current: float, uloq: float,
                     assay: AssayDefinition) -> float:  # fmt: skip
    """The smallest prepared dilution that brings the sample into the upper part of the range."""
    steps = sorted({*assay.dilution_steps, assay.max_dilution})
    steps = [s for s in steps if current < s <= assay.max_dilution]
    for step in steps:
        if math.isfinite(estimate_u_per_l) and estimate_u_per_l / step <= 0.8 * uloq:
            return step
    return assay.max_dilution


def _sample(
    accession: str,
    wells: list[MappedWell],
    fit: FittedCurve | None,
    signal: SignalOf,
    lloq: float,
    uloq: float,
    assay: AssayDefinition,
) -> SampleResult:
    names = tuple(w.well for w in wells)
    dilution = max(w.dilution for w in wells)

    def result(status: str, *notes: str, replicates: tuple[float | None, ...] = (),
               mean: float | None = None, cv: float | None = None,
               activity: float | None = None, comparator: str = "=",
               reassay: float | None = None) -> SampleResult:  # fmt: skip
        return SampleResult(accession, names, dilution, replicates, mean, cv, activity,
                            comparator, status, notes, reassay)  # fmt: skip

    if len({w.dilution for w in wells}) > 1:
        listed = ", ".join(f"{w.well} 1:{_g(w.dilution)}" for w in wells)
        return result(SampleStatus.INVALID, f"replicates have different dilutions ({listed})")
    if dilution > assay.max_dilution:
        note = f"dilution 1:{_g(dilution)} is beyond the validated 1:{_g(assay.max_dilution)}"
        return result(SampleStatus.INVALID, note)
    if fit is None:
        return result(SampleStatus.INVALID, "no valid calibration curve for this run")

    unreadable = [w for w in wells if w.value is None]
    notes: tuple[str, ...] = ()
    if unreadable:
        listed = ", ".join(f"{w.well}: {w.reason} {w.raw!r}" for w in unreadable)
        notes = (f"{len(unreadable)} of {len(wells)} replicate wells unreadable ({listed})",)
    replicates = tuple(fit.activity(s) if (s := signal(w)) is not None else None for w in wells)
    at_max = dilution >= assay.max_dilution
    top = min(uloq * dilution, assay.reportable_max_u_per_l)

    def above(estimate: float, *extra: str) -> SampleResult:
        finite = tuple(r if r is not None and math.isfinite(r) else None for r in replicates)
        if at_max:
            return result(SampleStatus.ABOVE_REPORTABLE, *extra, *notes, replicates=finite,
                          activity=top, comparator=">")  # fmt: skip
        step = suggest_dilution(estimate * dilution, dilution, uloq, assay)
        note = f"re-assay at 1:{_g(step)}"
        return result(SampleStatus.ABOVE_ULOQ, note, *extra, *notes, replicates=finite,
                      activity=top, comparator=">", reassay=step)  # fmt: skip

    if any(w.reason == NoValueReason.OVERFLOW for w in unreadable):
        return above(math.inf, "a replicate well overflowed (signal saturated)")
    usable = [r for r in replicates if r is not None]
    if not usable:
        return result(SampleStatus.INVALID, "no readable replicate well", *notes)
    beyond_top = [r for r in usable if r == math.inf]
    beyond_bottom = [r for r in usable if r == -math.inf]
    if beyond_top and len(beyond_top) == len(usable):
        return above(math.inf, "signal beyond the curve's upper asymptote")
    if beyond_top:
        return result(SampleStatus.INVALID, "replicates disagree: one beyond the curve's top",
                      *notes)  # fmt: skip
    values = [0.0 if r == -math.inf else r for r in usable]
    mean = float(np.mean(values))
    cv = float(np.std(values, ddof=1) / mean * 100.0) if len(values) >= 2 and mean > 0 else None
    finite = tuple(None if r is None or not math.isfinite(r) else r for r in replicates)
    if mean < lloq or (beyond_bottom and len(beyond_bottom) == len(usable)):
        return result(SampleStatus.BELOW_LLOQ, *notes, replicates=finite, mean=mean, cv=cv,
                      activity=lloq * dilution, comparator="<")  # fmt: skip
    rules = assay.acceptance
    limit = (rules.replicate_cv_max_percent_near_lloq if mean < rules.near_lloq_factor * lloq
             else rules.replicate_cv_max_percent)  # fmt: skip
    if mean > uloq:
        return above(mean)
    if cv is not None and (math.isnan(cv) or cv > limit):
        note = f"replicate CV {cv:.1f} % exceeds the {limit:g} % limit"
        return result(SampleStatus.INVALID, note, *notes, replicates=finite, mean=mean, cv=cv)
    if mean * dilution > assay.reportable_max_u_per_l:
        # Within the curve but beyond what the method may report (max_reportable_u_per_l).
        return result(SampleStatus.ABOVE_REPORTABLE, *notes, replicates=finite, mean=mean,
                      cv=cv, activity=assay.reportable_max_u_per_l, comparator=">")  # fmt: skip
    return result(SampleStatus.QUANTIFIED, *notes, replicates=finite, mean=mean, cv=cv,
                  activity=mean * dilution)  # fmt: skip

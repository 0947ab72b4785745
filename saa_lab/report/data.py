"""Gather everything a run report shows into one frozen :class:`RunReport`.

Read-only: the store is queried (no audit entry is written: looking at a run does
not change it) and the assay file is consulted only for what the store does not
keep (a two-segment curve's segment bounds). The renderers (:mod:`.html`,
:mod:`.pdf`) take the value and nothing else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..errors import ReportError, SaaLabError
from ..wells import well_sort_key

if TYPE_CHECKING:
    from ..config import AppConfig
    from ..store import Store
    from ..store.report_queries import ControlPoint, ResultExtras, WellLine
    from ..store.review import AuditLine, ResultView

__all__ = [
    "LJ_RUNS",
    "ControlLevel",
    "CurveInfo",
    "Finding",
    "RunReport",
    "SamplePoint",
    "StandardPoint",
    "load_run_report",
    "parse_finding",
]

LJ_RUNS = 30  # the Levey-Jennings charts show a control's last 30 runs
_FINDING = re.compile(r"^Westgard (?P<rule>\S+) \((?P<severity>\w+)\): (?P<detail>.*)$")


@dataclass(frozen=True)
class Finding:
    """A stored Westgard finding, read back from its text."""

    rule: str
    severity: str  # warning | rejection
    detail: str
    text: str

    def names(self, control: str, all_controls: Sequence[str]) -> bool:
        """Whether the finding is about ``control`` (the finding's text names it, or
        speaks of all controls)."""
        if self.detail.startswith("all controls"):
            return control in all_controls
        return re.search(rf"(?<![\w-]){re.escape(control)}(?![\w-])", self.detail) is not None


def parse_finding(text: str) -> Finding:
    found = _FINDING.match(text)
    if found is None:
        return Finding("?", "warning", text, text)
    return Finding(found["rule"], found["severity"], found["detail"], text)


@dataclass(frozen=True)
class StandardPoint:
    well: str
    nominal_u_per_l: float
    signal: float | None
    back_calculated_u_per_l: float | None
    recovery_percent: float | None
    tolerance_percent: float | None
    passed: bool
    excluded: bool
    reason: str | None


@dataclass(frozen=True)
class SamplePoint:
    """A sample on the curve: its mean signal and the activity in the well it reads as."""

    accession: str
    wells: tuple[str, ...]
    signal: float | None
    activity_in_well: float | None
    comparator: str


@dataclass(frozen=True)
class ControlLevel:
    name: str
    lot: str
    wells: tuple[str, ...]
    well_values_u_per_l: tuple[float | None, ...]
    measured_u_per_l: float | None
    low_u_per_l: float
    high_u_per_l: float
    passed: bool
    z_score: float | None
    mean_u_per_l: float | None
    sd_u_per_l: float | None
    stats_source: str | None
    # Its last LJ_RUNS runs (this one last) for the Levey-Jennings chart.
    history: tuple[ControlPoint, ...] = ()


@dataclass(frozen=True)
class CurveInfo:
    model: str | None
    weighting: str | None
    parameters: tuple[tuple[str, float], ...]
    r_squared: float | None
    lloq_u_per_l: float | None
    uloq_u_per_l: float | None
    signal_unit: str
    blank_mean: float | None
    # two-segment-linear: the segments' (low, high) in U/L, when known
    segments: tuple[tuple[float, float], ...] = ()
    segments_note: str | None = None

    def predict(self, activity: float) -> float | None:
        """The curve's signal at ``activity`` U/L in the well; None without a curve."""
        p = dict(self.parameters)
        try:
            if self.model == "linear":
                return p["intercept"] + p["slope"] * activity
            if self.model == "two-segment-linear":
                index = 1
                if self.segments and activity > self.segments[0][1]:
                    index = 2
                return p[f"segment{index}_intercept"] + p[f"segment{index}_slope"] * activity
            if self.model in ("4pl", "5pl"):
                a, b, c, d = p["a"], p["b"], p["c"], p["d"]
                g = p.get("g", 1.0)
                return float(d + (a - d) / (1.0 + (max(activity, 0.0) / c) ** b) ** g)
        except (KeyError, ZeroDivisionError, OverflowError, ValueError, TypeError):
            return None
        return None


@dataclass(frozen=True)
class RunReport:
    """One run as its report shows it (a frozen value: render it as often as needed)."""

    run_id: int
    source_name: str
    source_sha256: str
    source_format: str | None
    archive_path: str | None
    plate_index: int
    plate_id: str | None
    assay_name: str
    assay_version: str
    layout_name: str
    layout_version: str
    worklist_name: str | None
    wavelength_nm: float | None
    processed_at: datetime
    status: str  # accepted | rejected
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]
    exclusions: tuple[str, ...]
    review_status: str
    reviewed_by: str | None
    review_meaning: str | None
    review_note: str | None
    reviewed_at: datetime | None
    curve: CurveInfo
    standards: tuple[StandardPoint, ...]
    samples_on_curve: tuple[SamplePoint, ...]
    wells: tuple[WellLine, ...]
    plate_rows: int
    plate_columns: int
    controls: tuple[ControlLevel, ...]
    westgard_findings: tuple[Finding, ...]
    westgard_notes: tuple[str, ...]
    results: tuple[ResultView, ...]
    # per result id: bias factor, replicate CV and calibration status
    result_extras: Mapping[int, ResultExtras]
    audit: tuple[AuditLine, ...]
    zone: tzinfo = UTC
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def marker(self) -> str:
        """Written into every rendered report: a later render of the same run recognises
        its own file (and replaces it); any other file of that name is left alone."""
        return f"saa-lab-run-report:run={self.run_id}:source={self.source_sha256}"

    def local(self, when: datetime | None) -> str:
        if when is None:
            return "-"
        return when.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _plate_shape(wells: Sequence[WellLine]) -> tuple[int, int]:
    """Rows and columns of the smallest standard plate (6-1536) that holds the wells."""
    rows = cols = 0
    for w in wells:
        letter, col = well_sort_key(w.well)
        rows, cols = max(rows, letter - ord("A") + 1), max(cols, col)
    for r, c in ((2, 3), (3, 4), (4, 6), (6, 8), (8, 12), (16, 24), (32, 48)):
        if rows <= r and cols <= c:
            return r, c
    return max(rows, 1), max(cols, 1)


def _segments(
    config: AppConfig | None, assay: str, version: str, parameters: Mapping[str, float]
) -> tuple[tuple[tuple[float, float], ...], str | None]:
    """A two-segment curve's bounds: from the assay file (the store keeps only the lines)."""
    if config is not None:
        from ..assay import load_assay

        try:
            loaded = load_assay(assay, config.search_dirs("assays"))
        except SaaLabError:  # a missing or broken assay file only loses the bounds
            loaded = None
        if loaded is not None and loaded.definition.curve.segments:
            note = None
            if loaded.version != version:
                note = (
                    f"segment bounds from the current {assay} file (version "
                    f"{loaded.version}; the run used {version})"
                )
            return tuple(loaded.definition.curve.segments), note
    # Without the file: the lines meet near the shared bound.
    i1, s1 = parameters.get("segment1_intercept"), parameters.get("segment1_slope")
    i2, s2 = parameters.get("segment2_intercept"), parameters.get("segment2_slope")
    if None in (i1, s1, i2, s2) or s1 == s2:
        return (), "segment bounds unknown (assay file not found)"
    assert i1 is not None and s1 is not None and i2 is not None and s2 is not None
    cross = (i2 - i1) / (s1 - s2)
    return ((0.0, cross), (cross, math.inf)), "segments meet where the lines cross"


def _scale(
    standards: Sequence[StandardPoint], wells: Mapping[str, WellLine], blank: float | None
) -> float | None:
    """The assay's signal scale as the run used it: signal = reading × scale − blank."""
    if blank is None:
        return None
    for s in standards:
        well = wells.get(s.well)
        if s.signal is not None and well is not None and well.value:
            return (s.signal + blank) / well.value
    return None


def _samples_on_curve(
    results: Sequence[ResultView],
    wells: Mapping[str, WellLine],
    scale: float | None,
    blank: float | None,
    extras: Mapping[int, ResultExtras],
) -> tuple[SamplePoint, ...]:
    points = []
    seen: set[str] = set()
    for r in results:
        if r.result_uid in seen:
            continue  # a corrected result: its first version is the one read on the plate
        seen.add(r.result_uid)
        signals = [wells[w].value for w in r.wells if w in wells and wells[w].value is not None]
        signal = None
        if signals and scale is not None and blank is not None:
            signal = sum(v * scale for v in signals if v is not None) / len(signals) - blank
        in_well = None
        if r.activity_u_per_l is not None and r.dilution:
            extra = extras.get(r.id)
            bias = (extra.bias_factor if extra else None) or 1.0
            in_well = r.activity_u_per_l * bias / r.dilution
        points.append(SamplePoint(r.accession, r.wells, signal, in_well, r.comparator))
    return tuple(points)


def _signer(config: AppConfig | None, user: str | None) -> str | None:
    """A reviewer's printed name and user name, "Anna Kim (akim)" (21 CFR 11.50)."""
    if user is None or config is None:
        return user
    for known in config.users:
        if known.name == user:
            return f"{known.full_name} ({user})"
    return user


def load_run_report(
    store: Store, run_id: int, *, config: AppConfig | None = None, lj_runs: int = LJ_RUNS
) -> RunReport:
    """Everything the report of run ``run_id`` shows. Raises :class:`ReportError` when
    there is no such run, :class:`~saa_lab.errors.StoreError` when the database cannot
    be read."""
    from ..store import report_queries as q
    from ..store.review import run_view

    facts = q.run_facts(store, run_id)
    if facts is None:
        raise ReportError(f"there is no run {run_id} (see 'saa-lab status' or 'saa-lab review')")
    view = run_view(store, run_id)
    wells = tuple(q.run_wells(store, run_id))
    by_well = {w.well: w for w in wells}
    cal = view.calibration
    parameters = {
        str(k): float(v) for k, v in (cal.get("parameters") or {}).items() if _float(v) is not None
    }
    segments: tuple[tuple[float, float], ...] = ()
    segments_note = None
    if cal.get("model") == "two-segment-linear":
        segments, segments_note = _segments(config, view.assay_name, view.assay_version, parameters)
    curve = CurveInfo(
        model=cal.get("model"),
        weighting=cal.get("weighting"),
        parameters=tuple(parameters.items()),
        r_squared=_float(cal.get("r_squared")),
        lloq_u_per_l=_float(cal.get("lloq_u_per_l")),
        uloq_u_per_l=_float(cal.get("uloq_u_per_l")),
        signal_unit=str(cal.get("signal_unit") or "OD"),
        blank_mean=facts.blank_mean,
        segments=segments,
        segments_note=segments_note,
    )
    standards = tuple(
        StandardPoint(
            well=str(w.get("well")),
            nominal_u_per_l=float(w.get("nominal_u_per_l") or 0.0),
            signal=_float(w.get("signal")),
            back_calculated_u_per_l=_float(w.get("back_calculated_u_per_l")),
            recovery_percent=_float(w.get("recovery_percent")),
            tolerance_percent=_float(w.get("tolerance_percent")),
            passed=bool(w.get("passed")),
            excluded=bool(w.get("excluded")),
            reason=w.get("reason"),
        )
        for w in cal.get("standard_wells") or ()
    )
    westgard = cal.get("westgard") or {}
    stats = westgard.get("stats") or {}
    z_scores = westgard.get("z_scores") or {}
    series = q.control_series(store, run_id, limit=lj_runs)
    controls = []
    for c in cal.get("controls") or ():
        name = str(c.get("name"))
        st = stats.get(name) or {}
        controls.append(
            ControlLevel(
                name=name,
                lot=str(c.get("lot") or "default"),
                wells=tuple(c.get("wells") or ()),
                well_values_u_per_l=tuple(_float(v) for v in c.get("well_values_u_per_l") or ()),
                measured_u_per_l=_float(c.get("measured_u_per_l")),
                low_u_per_l=float(c.get("low_u_per_l") or 0.0),
                high_u_per_l=float(c.get("high_u_per_l") or 0.0),
                passed=bool(c.get("passed")),
                z_score=_float(z_scores.get(name)),
                mean_u_per_l=_float(st.get("mean")),
                sd_u_per_l=_float(st.get("sd")),
                stats_source=st.get("source"),
                history=tuple(series.get(name, ())),
            )
        )
    rows, cols = _plate_shape(wells)
    extras = q.result_extras(store, run_id)
    return RunReport(
        run_id=view.id,
        source_name=facts.source_name,
        source_sha256=facts.source_sha256,
        source_format=facts.source_format,
        archive_path=facts.archive_path,
        plate_index=view.plate_index,
        plate_id=view.plate_id,
        assay_name=view.assay_name,
        assay_version=view.assay_version,
        layout_name=facts.layout_name,
        layout_version=facts.layout_version,
        worklist_name=facts.worklist_name,
        wavelength_nm=facts.wavelength_nm,
        processed_at=view.created_at,
        status=view.status,
        reasons=view.reasons,
        warnings=view.warnings,
        exclusions=tuple(str(e) for e in cal.get("exclusions") or ()),
        review_status=view.review_status,
        reviewed_by=_signer(config, view.reviewed_by),
        review_meaning=view.review_meaning,
        review_note=view.review_note,
        reviewed_at=view.reviewed_at,
        curve=curve,
        standards=standards,
        samples_on_curve=_samples_on_curve(
            view.results,
            by_well,
            _scale(standards, by_well, facts.blank_mean),
            facts.blank_mean,
            extras,
        ),
        wells=wells,
        plate_rows=rows,
        plate_columns=cols,
        controls=tuple(controls),
        westgard_findings=tuple(parse_finding(str(f)) for f in westgard.get("findings") or ()),
        westgard_notes=tuple(str(n) for n in westgard.get("notes") or ()),
        results=view.results,
        result_extras=MappingProxyType(dict(extras)),
        audit=tuple(q.run_audit(store, run_id)),
        zone=config.lab.zone if config is not None else UTC,
    )

"""Each shipped assay calibrated on its own layout, checked against arithmetic done here.

Plates are built well by well (PlateRead + map_plate + a worklist). The expected
blank, curve parameters, back-calculated standards, control values and sample
activities are computed in this file from the readings: closed-form least
squares written out as sums (:func:`helpers.line_by_sums`), the two AHA
segments one by one, 4PL by its formula. The code under test only supplies the
numbers being checked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    CellValue,
    assay_definition,
    cv_percent,
    endpoint_read,
    kinetic_read,
    layout_named,
    line_by_sums,
    plate_of,
    worklist_of,
)

from saa_lab.assay import AssayDefinition, CurveSettings, PegBias, WestgardControl, load_assay
from saa_lab.calibrate import Calibration, SampleResult, SampleStatus, calibrate
from saa_lab.config import AppConfig, packaged_config_dir
from saa_lab.domain import PlateRead, SourceFile
from saa_lab.interpret import apply_peg_bias
from saa_lab.layout import load_layout
from saa_lab.mapping import map_plate, select_read
from saa_lab.orders import OrderContext
from saa_lab.pipeline import build_runs
from saa_lab.wells import ROWS_96
from saa_lab.worklist import Worklist

AHA = assay_definition("aha-indooxine")
MAAT = assay_definition("maat")
NADH = assay_definition("nadh-kinetic")

Samples = Sequence[tuple[str, float, Sequence[CellValue]]]  # accession, dilution, readings


def sample_wells(first: Sequence[str]) -> list[str]:
    return [*first, *(f"{r}{c}" for c in range(4, 13) for r in ROWS_96)]


def place(
    values: dict[str, CellValue], samples: Samples, wells: Sequence[str]
) -> list[tuple[str, str, float]]:
    """Put each sample's readings in the next free sample wells; the worklist rows."""
    free = iter(wells)
    rows = []
    for accession, dilution, readings in samples:
        for reading in readings:
            well = next(free)
            values[well] = reading
            rows.append((well, accession, dilution))
    return rows


def by_accession(cal: Calibration) -> dict[str, SampleResult]:
    return {s.accession: s for s in cal.samples}


def with_acceptance(assay: AssayDefinition, **changes: Any) -> AssayDefinition:
    return assay.model_copy(update={"acceptance": assay.acceptance.model_copy(update=changes)})


def g(value: float) -> str:
    return f"{value:.4g}"


# =====================================================================================
# AHA / indooxine: two-segment linear (5–100 and 100–1000 U/L), unweighted, OD at 710 nm
# =====================================================================================

AHA_LEVELS = {"A": 5.0, "B": 10.0, "C": 25.0, "D": 50.0, "E": 100.0, "F": 250.0, "G": 500.0,
              "H": 1000.0}  # fmt: skip
AHA_STANDARDS = [f"{row}{col}" for row in AHA_LEVELS for col in (1, 2)]
AHA_SAMPLE_WELLS = sample_wells(["G3", "H3"])
AHA_BLANK = 0.050  # mean of A3 (0.049) and B3 (0.051)
# Per-well deviations from the designed curve (OD), all well inside ±15 %.
AHA_WOBBLE = {
    "A1": 0.0003, "A2": -0.0002, "B1": -0.0004, "B2": 0.0005, "C1": 0.0010, "C2": -0.0006,
    "D1": -0.0012, "D2": 0.0015, "E1": 0.0030, "E2": -0.0020, "F1": -0.0040, "F2": 0.0050,
    "G1": 0.0060, "G2": -0.0045, "H1": -0.0080, "H2": 0.0070,
}  # fmt: skip


def aha_od(activity: float, deviation: float = 0.0) -> float:
    """The designed plate: blank + 0.002 + 0.0012·x up to 100 U/L, + 0.022 + 0.0010·x above."""
    signal = 0.002 + 0.0012 * activity if activity <= 100 else 0.022 + 0.0010 * activity
    return AHA_BLANK + signal + deviation


def aha_values(**overrides: CellValue) -> dict[str, CellValue]:
    values: dict[str, CellValue] = {
        w: aha_od(AHA_LEVELS[w[0]], AHA_WOBBLE[w]) for w in AHA_STANDARDS
    }
    values |= {"A3": 0.049, "B3": 0.051}
    values |= {"C3": aha_od(40, 0.001), "D3": aha_od(40, -0.001)}  # LOW 32–48 U/L
    values |= {"E3": aha_od(400, 0.004), "F3": aha_od(400, -0.004)}  # HIGH 340–460 U/L
    values |= overrides
    return values


@dataclass(frozen=True)
class TwoLines:
    """The AHA calibration computed by hand."""

    blank: float
    i1: float
    s1: float
    i2: float
    s2: float

    @property
    def limit(self) -> float:
        return self.i1 + self.s1 * 100  # the low line's signal at 100 U/L

    def activity(self, od: float) -> float:
        signal = od - self.blank
        if signal <= self.limit:
            return (signal - self.i1) / self.s1
        return (signal - self.i2) / self.s2


def aha_by_hand(values: Mapping[str, CellValue], leave_out: Sequence[str] = ()) -> TwoLines:
    blank = (float(values["A3"]) + float(values["B3"])) / 2
    points = [(AHA_LEVELS[w[0]], float(values[w]) - blank) for w in AHA_STANDARDS
              if w not in leave_out and isinstance(values[w], float)]  # fmt: skip
    low = [p for p in points if p[0] <= 100]
    high = [p for p in points if p[0] >= 100]
    i1, s1 = line_by_sums([x for x, _ in low], [y for _, y in low])
    i2, s2 = line_by_sums([x for x, _ in high], [y for _, y in high])
    return TwoLines(blank, i1, s1, i2, s2)


def aha_run(
    values: dict[str, CellValue], samples: Samples = (), assay: AssayDefinition = AHA,
    layout: str = "aha-96",
) -> Calibration:  # fmt: skip
    rows = place(values, samples, AHA_SAMPLE_WELLS)
    worklist = worklist_of(rows) if rows else None
    if layout.endswith(".toml"):
        plate = map_plate(endpoint_read(values), load_layout(layout, []), worklist)
    else:
        plate = plate_of(endpoint_read(values), layout, worklist)
    return calibrate(plate, assay)


def assert_two_lines(cal: Calibration, hand: TwoLines) -> None:
    assert cal.fit is not None and cal.fit.model == "two-segment-linear"
    p = cal.fit.parameters
    assert cal.blank_mean == pytest.approx(hand.blank, rel=1e-12)
    assert (p["segment1_intercept"], p["segment1_slope"]) == pytest.approx((hand.i1, hand.s1),
                                                                           rel=1e-9)  # fmt: skip
    assert (p["segment2_intercept"], p["segment2_slope"]) == pytest.approx((hand.i2, hand.s2),
                                                                           rel=1e-9)  # fmt: skip


def test_aha_activities_from_two_hand_fitted_segments() -> None:
    values = aha_values()
    hand = aha_by_hand(values)
    edge = hand.blank + hand.limit
    samples: Samples = [
        ("S-30", 1, [aha_od(30, 0.0005), aha_od(30, -0.0003)]),
        ("S-400", 1, [aha_od(400, 0.004), aha_od(400, -0.003)]),
        ("S-6000", 10, [aha_od(600, 0.005), aha_od(600, -0.002)]),
        # One replicate just under the segment limit, one just over: each on its own line.
        ("S-EDGE", 1, [edge - 0.0008, edge + 0.0008]),
    ]
    cal = aha_run(values, samples)
    assert cal.accepted, cal.reasons
    assert cal.reasons == () and cal.exclusions == ()
    assert_two_lines(cal, hand)
    assert (cal.lloq_u_per_l, cal.uloq_u_per_l) == (5, 1000)

    results = by_accession(cal)
    for accession, dilution, readings in samples:
        replicates = [hand.activity(float(od)) for od in readings]
        mean = sum(replicates) / len(replicates)
        result = results[accession]
        assert result.status == SampleStatus.QUANTIFIED and result.comparator == "="
        assert result.replicate_u_per_l == pytest.approx(replicates, rel=1e-9)
        assert result.mean_u_per_l == pytest.approx(mean, rel=1e-9)
        assert result.cv_percent == pytest.approx(cv_percent(replicates), rel=1e-9)
        assert result.activity_u_per_l == pytest.approx(mean * dilution, rel=1e-9)
    low_rep, high_rep = results["S-EDGE"].replicate_u_per_l
    s_low, s_high = edge - 0.0008 - hand.blank, edge + 0.0008 - hand.blank
    assert low_rep == pytest.approx((s_low - hand.i1) / hand.s1, rel=1e-9)
    assert high_rep == pytest.approx((s_high - hand.i2) / hand.s2, rel=1e-9)
    assert results["S-6000"].activity_u_per_l == pytest.approx(6000, rel=0.01)

    # Every standard well back-calculated (stored per run) and judged at its tolerance.
    assert [w.well for w in cal.standard_wells] == AHA_STANDARDS
    for well in cal.standard_wells:
        back = hand.activity(float(values[well.well]))
        assert well.back_calculated_u_per_l == pytest.approx(back, rel=1e-9)
        assert well.recovery_percent == pytest.approx(100 * back / well.nominal_u_per_l, rel=1e-9)
        assert well.tolerance_percent == (20 if well.nominal_u_per_l == 5 else 15)
        assert well.passed and not well.excluded
    for level in cal.standards:
        rows = [w for w in AHA_STANDARDS if AHA_LEVELS[w[0]] == level.nominal_u_per_l]
        mean_od = sum(float(values[w]) for w in rows) / 2
        assert level.back_calculated_u_per_l == pytest.approx(hand.activity(mean_od), rel=1e-9)
    # Residuals: signal minus the line of the standard's own segment.
    assert cal.fit is not None
    expected_residuals = [
        float(values[w]) - hand.blank
        - (hand.i1 + hand.s1 * x if (x := AHA_LEVELS[w[0]]) <= 100 else hand.i2 + hand.s2 * x)
        for w in AHA_STANDARDS
    ]  # fmt: skip
    assert cal.fit.residuals == pytest.approx(expected_residuals, abs=1e-12)
    # Controls: the mean of their wells, back-calculated.
    low, high = cal.controls
    assert low.name == "LOW" and low.passed
    assert low.measured_u_per_l == pytest.approx(
        (hand.activity(float(values["C3"])) + hand.activity(float(values["D3"]))) / 2, rel=1e-9
    )
    assert high.measured_u_per_l == pytest.approx(
        (hand.activity(float(values["E3"])) + hand.activity(float(values["F3"]))) / 2, rel=1e-9
    )


def test_a_negative_blank_corrected_signal_is_below_the_lloq() -> None:
    values = aha_values()
    hand = aha_by_hand(values)
    cal = aha_run(values, [("NEG", 1, [0.046, 0.048]), ("NEG5", 5, [0.047, 0.044])])
    neg, neg5 = cal.samples
    for result, ods, bound in ((neg, (0.046, 0.048), 5), (neg5, (0.047, 0.044), 25)):
        replicates = [hand.activity(od) for od in ods]
        assert all(r < 0 for r in replicates)  # below the blank: a negative activity
        assert result.replicate_u_per_l == pytest.approx(replicates, rel=1e-9)
        assert result.mean_u_per_l == pytest.approx(sum(replicates) / 2, rel=1e-9)
        assert (result.status, result.comparator) == (SampleStatus.BELOW_LLOQ, "<")
        assert result.activity_u_per_l == bound  # LLOQ × dilution
        assert result.cv_percent is None


def test_one_failing_lloq_standard_well_is_excluded_and_recorded() -> None:
    # A1 (5 U/L) reads 35 % high: outside the LLOQ's ±20 %.
    values = aha_values(A1=aha_od(5, 0.35 * 5 * 0.0012))
    first = aha_by_hand(values)
    recovery = 100 * first.activity(float(values["A1"])) / 5
    assert recovery > 120
    others = [w for w in AHA_STANDARDS if w != "A1"]
    tolerance = {w: 20 if w.startswith("A") else 15 for w in AHA_STANDARDS}
    assert all(abs(100 * first.activity(float(values[w])) / AHA_LEVELS[w[0]] - 100)
               <= tolerance[w] for w in others)  # fmt: skip
    refit = aha_by_hand(values, leave_out=["A1"])

    cal = aha_run(values, [("S", 1, [aha_od(7), aha_od(7)])])
    assert cal.accepted, cal.reasons
    assert_two_lines(cal, refit)
    assert cal.exclusions == (
        f"standard A1 (5 U/L) excluded: back-calculated {recovery:.1f} %, limit ±20 %",
    )
    a1 = cal.standard_wells[0]
    assert (a1.well, a1.excluded, a1.passed) == ("A1", True, False)
    assert a1.reason == "excluded: outside tolerance, curve refitted"
    assert cal.standards[0].passed and cal.standards[0].excluded == ("A1",)  # A2 carries it
    assert cal.lloq_u_per_l == 5
    (sample,) = cal.samples
    assert sample.activity_u_per_l == pytest.approx(refit.activity(aha_od(7)), rel=1e-9)


def test_a_failing_lloq_level_is_excluded_and_the_lloq_rises() -> None:
    high = 0.35 * 5 * 0.0012
    values = aha_values(A1=aha_od(5, high), A2=aha_od(5, high * 1.1))
    first = aha_by_hand(values)
    recoveries = [100 * first.activity(float(values[w])) / 5 for w in ("A1", "A2")]
    assert all(r > 120 for r in recoveries)
    refit = aha_by_hand(values, leave_out=["A1", "A2"])

    cal = aha_run(values, [("S7", 1, [aha_od(7), aha_od(7)]), ("S12", 1, [aha_od(12)] * 2)])
    assert cal.accepted, cal.reasons  # 14 of 16 wells, 7 levels: exclusion allowed
    assert_two_lines(cal, refit)
    # Both LLOQ wells are excluded and recorded (the worst first, each judged on the
    # fit it failed on; the first one's recovery is the hand-computed one).
    assert sorted(e.split(" ")[1] for e in cal.exclusions) == ["A1", "A2"]
    assert all(e.endswith("limit ±20 %") for e in cal.exclusions)
    first_out = cal.exclusions[0].split(" ")[1]
    expected_first = recoveries[("A1", "A2").index(first_out)]
    assert f"back-calculated {expected_first:.1f} %" in cal.exclusions[0]
    assert cal.lloq_u_per_l == 10
    assert not cal.standards[0].passed
    # 10 U/L is now the lowest level: it is judged at the LLOQ's ±20 %.
    assert [w.tolerance_percent for w in cal.standard_wells[2:4]] == [20, 20]
    s7, s12 = cal.samples
    assert (s7.status, s7.comparator, s7.activity_u_per_l) == ("below-lloq", "<", 10)
    assert s12.activity_u_per_l == pytest.approx(refit.activity(aha_od(12)), rel=1e-9)


LLOQ_FAILING = {"A1": aha_od(5, 0.0021), "A2": aha_od(5, 0.0023)}


def test_exclusion_refused_when_fewer_than_the_required_share_would_remain() -> None:
    values = aha_values(**LLOQ_FAILING)
    hand = aha_by_hand(values)
    recoveries = [100 * hand.activity(float(values[w])) / 5 for w in ("A1", "A2")]
    cal = aha_run(values, assay=with_acceptance(AHA, min_standards_passing_percent=90))
    assert not cal.accepted
    assert cal.exclusions == ()
    assert_two_lines(cal, hand)  # the failing wells stay in the fit
    assert cal.reasons[0] == (
        "14 of 16 standard wells within tolerance (88 %, need 90 %); failing: "
        f"A1 5 U/L ({recoveries[0]:.0f} %), A2 5 U/L ({recoveries[1]:.0f} %)"
    )


def test_exclusion_refused_when_too_few_levels_would_remain() -> None:
    values = aha_values(**LLOQ_FAILING)
    cal = aha_run(values, assay=with_acceptance(AHA, min_standard_levels=8))
    assert not cal.accepted
    assert cal.exclusions == ()
    assert_two_lines(cal, aha_by_hand(values))
    assert cal.reasons == ("7 standard levels pass; the assay needs at least 8",)


def test_no_exclusion_when_the_assay_forbids_it() -> None:
    values = aha_values(**LLOQ_FAILING)
    cal = aha_run(values, assay=with_acceptance(AHA, exclude_failing_standards=False))
    assert cal.accepted, cal.reasons  # 14 of 16 = 87.5 % and 7 levels pass as they are
    assert cal.exclusions == ()
    assert_two_lines(cal, aha_by_hand(values))
    assert [w.passed for w in cal.standard_wells[:2]] == [False, False]
    assert cal.lloq_u_per_l == 10


def failing_by_hand(values: Mapping[str, CellValue], hand: TwoLines) -> list[str]:
    return [w for w in AHA_STANDARDS
            if abs(100 * hand.activity(float(values[w])) / AHA_LEVELS[w[0]] - 100)
            > (20 if w[0] == "A" else 15)]  # fmt: skip


def test_75_percent_of_wells_is_enough_and_less_is_not() -> None:
    # Four failing wells, one in each of four levels: excluding them leaves 12 of 16 = 75 %
    # and every level keeps a passing well, so the exclusion is allowed.
    fails = {"A1": aha_od(5, 0.0025), "B2": aha_od(10, 0.004), "C1": aha_od(25, -0.009),
             "D2": aha_od(50, 0.016)}  # fmt: skip
    values = aha_values(**fails)
    assert failing_by_hand(values, aha_by_hand(values)) == ["A1", "B2", "C1", "D2"]
    refit = aha_by_hand(values, leave_out=list(fails))
    assert failing_by_hand(values, refit) == list(fails)  # the others still pass on the refit
    cal = aha_run(values)
    assert cal.accepted, cal.reasons
    assert sorted(e.split(" ")[1] for e in cal.exclusions) == sorted(fails)
    assert_two_lines(cal, refit)
    assert cal.lloq_u_per_l == 5  # A2 still carries the LLOQ level
    # A fifth failing well (B1, 10 U/L): 11 of 16 would remain, so no exclusion and the run
    # is rejected; the level 10 U/L fails too.
    values5 = aha_values(**fails, B1=aha_od(10, -0.004))
    hand5 = aha_by_hand(values5)
    assert failing_by_hand(values5, hand5) == ["A1", "B1", "B2", "C1", "D2"]
    cal5 = aha_run(values5)
    assert not cal5.accepted
    assert cal5.exclusions == ()
    assert_two_lines(cal5, hand5)
    assert cal5.reasons[0].startswith("11 of 16 standard wells within tolerance (69 %, need 75 %)")


def test_a_missing_standard_well_is_recorded_and_its_level_still_counts() -> None:
    for raw, reason in (("", "no reading (empty)"),
                        ("?????", "no reading (not calculable '?????')"),
                        ("MISSED", "no reading (not read 'MISSED')")):  # fmt: skip
        values = aha_values(C1=raw)
        cal = aha_run(values, [("S", 1, [aha_od(300), aha_od(300)])])
        assert cal.accepted, cal.reasons  # 15 of 16 wells; 25 U/L passes on C2 alone
        assert cal.exclusions == (f"standard C1 (25 U/L): {reason}",)
        hand = aha_by_hand(values, leave_out=["C1"])
        assert_two_lines(cal, hand)
        c1 = cal.standard_wells[4]
        assert (c1.well, c1.signal, c1.excluded, c1.passed) == ("C1", None, True, False)
        assert cal.standards[2].unreadable == ("C1",) and cal.standards[2].passed
        assert cal.samples[0].activity_u_per_l == pytest.approx(hand.activity(aha_od(300)))


def test_a_saturated_top_standard_lowers_the_uloq() -> None:
    values = aha_values(H1="OVRFLW", H2="OVRFLW")
    hand = aha_by_hand(values, leave_out=["H1", "H2"])
    readings = [aha_od(700, 0.002), aha_od(700, -0.002)]
    cal = aha_run(values, [("HI", 1, readings)])
    assert cal.accepted, cal.reasons  # 14 of 16 wells, 7 levels
    assert_two_lines(cal, hand)
    assert cal.exclusions == (
        "standard H1 (1000 U/L): no reading (overflow 'OVRFLW')",
        "standard H2 (1000 U/L): no reading (overflow 'OVRFLW')",
    )
    assert cal.uloq_u_per_l == 500 and not cal.standards[-1].passed
    (result,) = cal.samples
    estimate = sum(hand.activity(od) for od in readings) / 2  # about 700 U/L, above 500
    step = next(s for s in (2, 5, 10, 20) if estimate / s <= 0.8 * 500)
    assert step == 2
    assert (result.status, result.comparator) == (SampleStatus.ABOVE_ULOQ, ">")
    assert result.activity_u_per_l == 500  # not a number: "> ULOQ", to be re-assayed
    assert result.reassay_dilution == step and result.notes[0] == "re-assay at 1:2"


def test_a_badly_saturated_top_standard_does_not_pass_the_run() -> None:
    # The top standard reads as 500 U/L: no exclusion keeps 75 % within tolerance.
    values = aha_values(H1=aha_od(500), H2=aha_od(510))
    cal = aha_run(values)
    assert not cal.accepted
    # Only failing standards may be excluded; the bent curve then reads the HIGH
    # control far too high, so the run is rejected either way.
    assert any("standard wells within tolerance" in r or r.startswith("control HIGH")
               for r in cal.reasons)  # fmt: skip


def test_above_the_uloq_re_assay_dilutions_and_the_reportable_range() -> None:
    values = aha_values()
    hand = aha_by_hand(values)
    samples: Samples = [
        ("X1", 1, [aha_od(1800), aha_od(1800, 0.01)]),
        ("X10", 10, [aha_od(1500), aha_od(1500)]),
        ("X20", 20, [aha_od(1500), aha_od(1500)]),
        ("OVR", 1, ["OVRFLW", aha_od(300)]),
    ]
    cal = aha_run(values, samples)
    assert AHA.reportable_max_u_per_l == 1000 * 20  # ULOQ × maximum dilution
    results = by_accession(cal)
    for accession, dilution, readings in samples[:2]:
        serum = sum(hand.activity(float(od)) for od in readings) / 2 * dilution
        step = next(s for s in (2, 5, 10, 20) if s > dilution and serum / s <= 800)
        result = results[accession]
        assert (result.status, result.comparator) == (SampleStatus.ABOVE_ULOQ, ">")
        assert result.activity_u_per_l == 1000 * dilution
        assert result.reassay_dilution == step
    assert results["X1"].reassay_dilution == 5 and results["X10"].reassay_dilution == 20
    top = results["X20"]  # already at the validated maximum: reported as above the range
    assert (top.status, top.comparator, top.activity_u_per_l) == ("above-reportable", ">", 20000)
    assert top.reassay_dilution is None
    ovr = results["OVR"]  # an overflowed replicate: saturated, so above the ULOQ
    assert (ovr.status, ovr.reassay_dilution) == (SampleStatus.ABOVE_ULOQ, 20)
    assert "a replicate well overflowed (signal saturated)" in ovr.notes


def test_replicates_that_disagree() -> None:
    values = aha_values()
    hand = aha_by_hand(values)
    samples: Samples = [
        ("WIDE", 1, [aha_od(300), aha_od(400)]),  # CV about 20 %: over 15 %
        ("NEAR", 1, [aha_od(7), aha_od(9)]),  # near the LLOQ (< 10 U/L): 20 % allowed
        ("NEARWIDE", 1, [aha_od(6), aha_od(9.5)]),
        ("TIGHT", 1, [aha_od(300), aha_od(330)]),
    ]
    results = by_accession(aha_run(values, samples))
    for accession, _, readings in samples:
        replicates = [hand.activity(float(od)) for od in readings]
        cv = cv_percent(replicates)
        mean = sum(replicates) / 2
        limit = 20 if mean < 2 * 5 else 15
        result = results[accession]
        assert result.cv_percent == pytest.approx(cv, rel=1e-9)
        if cv > limit:
            assert result.status == SampleStatus.INVALID and result.activity_u_per_l is None
            assert result.notes == (f"replicate CV {cv:.1f} % exceeds the {limit:g} % limit",)
        else:
            assert result.status == SampleStatus.QUANTIFIED
            assert result.activity_u_per_l == pytest.approx(mean, rel=1e-9)
    assert [results[a].status for a in ("WIDE", "NEAR", "NEARWIDE", "TIGHT")] == [
        "invalid", "quantified", "invalid", "quantified",
    ]  # fmt: skip


def test_a_flat_curve_rejects_the_run_and_nothing_is_quantified() -> None:
    values = aha_values(**dict.fromkeys(AHA_STANDARDS, 0.300))
    cal = aha_run(values, [("S", 1, [aha_od(300), aha_od(300)])])
    assert not cal.accepted and cal.fit is None
    (reason,) = cal.reasons
    assert reason.startswith(
        "calibration curve: the curve on segment 1 (5–100 U/L) is flat or falling"
    )
    (sample,) = cal.samples
    assert sample.status == SampleStatus.INVALID
    assert sample.notes == ("no valid calibration curve for this run",)
    assert all(c.measured_u_per_l is None for c in cal.controls)


# -- acceptance regimes -----------------------------------------------------------

LINEAR_AHA = AHA.model_copy(update={"curve": CurveSettings(model="linear", weighting="1/x")})


def linear_od(activity: float, relative: float = 0.0) -> float:
    return AHA_BLANK + 0.0011 * activity * (1 + relative)


@pytest.mark.parametrize(
    ("regime", "tolerances"),
    [("chromatographic", (15, 20, 15)), ("ligand-binding", (20, 25, 25))],
)
def test_standard_tolerances_of_each_regime(regime: str, tolerances: tuple[int, ...]) -> None:
    general, at_lloq, at_uloq = tolerances
    # Each deviant well has a partner deviating the other way at the same level, so the
    # line stays the designed one and the recoveries are 100 % ± the deviation.
    deviations = {"A1": 0.22, "A2": -0.22, "D1": 0.17, "D2": -0.17, "H1": -0.18, "H2": 0.18}
    values = aha_values()
    values |= {w: linear_od(AHA_LEVELS[w[0]], deviations.get(w, 0.0)) for w in AHA_STANDARDS}
    # Weighted (1/x) least squares by hand, and each well's recovery.
    blank = (0.049 + 0.051) / 2
    xs = [AHA_LEVELS[w[0]] for w in AHA_STANDARDS]
    ys = [float(values[w]) - blank for w in AHA_STANDARDS]
    intercept, slope = line_by_sums(xs, ys, [1 / x for x in xs])
    recovery = {w: 100 * (y - intercept) / slope / x
                for w, x, y in zip(AHA_STANDARDS, xs, ys, strict=True)}  # fmt: skip
    # The plate is built so that each deviant well falls between the two regimes' limits.
    assert intercept == pytest.approx(0, abs=1e-12) and slope == pytest.approx(0.0011)
    for well, deviation in deviations.items():
        assert recovery[well] == pytest.approx(100 * (1 + deviation))
    assay = with_acceptance(LINEAR_AHA, regime=regime, exclude_failing_standards=False)
    cal = aha_run(values, assay=assay)
    assert cal.fit is not None
    assert (cal.fit.parameters["intercept"], cal.fit.parameters["slope"]) == pytest.approx(
        (intercept, slope), rel=1e-9
    )
    for well in cal.standard_wells:
        x = well.nominal_u_per_l
        tolerance = at_lloq if x == 5 else at_uloq if x == 1000 else general
        assert well.tolerance_percent == tolerance
        assert well.recovery_percent == pytest.approx(recovery[well.well], rel=1e-9)
        assert well.passed == (abs(recovery[well.well] - 100) <= tolerance)
    failed = [w.well for w in cal.standard_wells if not w.passed]
    if regime == "ligand-binding":
        assert failed == [] and cal.accepted, cal.reasons
    else:
        assert failed == ["A1", "A2", "D1", "D2", "H1", "H2"]
        assert not cal.accepted  # 10 of 16 wells (62 %) and 5 levels
        assert cal.reasons[1] == "5 standard levels pass; the assay needs at least 6"


def test_tolerances_can_be_set_per_assay() -> None:
    values = aha_values()
    deviation = {"D1": 0.17, "D2": -0.17}
    values |= {w: linear_od(AHA_LEVELS[w[0]], deviation.get(w, 0.0)) for w in AHA_STANDARDS}
    assay = with_acceptance(LINEAR_AHA, standard_tolerance_percent=18,
                            exclude_failing_standards=False)  # fmt: skip
    cal = aha_run(values, assay=assay)
    d1, d2 = (w for w in cal.standard_wells if w.well in deviation)
    assert (d1.recovery_percent, d2.recovery_percent) == pytest.approx((117, 83))
    assert d1.tolerance_percent == 18 and d1.passed and d2.passed
    assert cal.standard_wells[0].tolerance_percent == 20  # the LLOQ keeps its default


# -- controls ---------------------------------------------------------------------


def custom_layout(tmp_path: Path, old: str, new: str) -> str:
    text = (packaged_config_dir() / "layouts" / "aha-96.toml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "custom-96.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return str(path)


G3_SAMPLES = '[block.1x2.G3]\nrole = "sample"'
HIGH_BLOCK = ('[block.1x2.E3]\nrole = "control"\ncontrol = "HIGH"\nlow_u_per_l = 340\n'
              "high_u_per_l = 460")  # fmt: skip


def control_values(**wells: float) -> dict[str, CellValue]:
    return aha_values(**{w: aha_od(a) for w, a in wells.items()})


def test_two_thirds_of_all_control_wells_must_pass(tmp_path: Path) -> None:
    mid = '[block.1x2.G3]\nrole = "control"\ncontrol = "MID"\nlow_u_per_l = 160\nhigh_u_per_l = 240'
    three_levels = custom_layout(tmp_path, G3_SAMPLES, mid)
    # 4 of 6 wells (exactly 2/3), each level with half its wells: accepted.
    values = control_values(C3=40, D3=60, G3=200, H3=210, E3=400, F3=600)
    cal = aha_run(values, layout=three_levels)
    assert [c.name for c in cal.controls] == ["LOW", "HIGH", "MID"]
    assert [c.wells_passed for c in cal.controls] == [(True, False), (True, False), (True, True)]
    assert cal.accepted, cal.reasons
    # 3 of 6: every level still has half, but not 2/3 overall.
    values = control_values(C3=40, D3=60, G3=200, H3=300, E3=400, F3=600)
    cal = aha_run(values, layout=three_levels)
    assert not cal.accepted and cal.control_failed
    assert cal.reasons == ("3 of 6 control wells within limits; need 67%",)
    assert all(c.passed for c in cal.controls)


def test_half_of_each_control_level_must_pass(tmp_path: Path) -> None:
    four_low = custom_layout(tmp_path, G3_SAMPLES, '[block.1x2.G3]\nrole = "control"\n'
                             'control = "LOW"\nlow_u_per_l = 32\nhigh_u_per_l = 48')  # fmt: skip
    values = control_values(C3=40, D3=41, G3=39, H3=42, E3=520, F3=600)
    hand = aha_by_hand(values)
    cal = aha_run(values, layout=four_low)
    low, high = cal.controls
    assert low.wells == ("C3", "D3", "G3", "H3") and low.passed
    assert not high.passed  # 0 of 2, though 4 of 6 wells overall pass
    e3, f3 = hand.activity(float(values["E3"])), hand.activity(float(values["F3"]))
    assert high.well_values == pytest.approx((e3, f3), rel=1e-9)
    assert high.measured_u_per_l == pytest.approx((e3 + f3) / 2, rel=1e-9)
    assert cal.reasons == (f"control HIGH outside 340–460 U/L (wells {g(e3)}, {g(f3)} U/L)",)
    assert cal.control_failed
    # One of the two HIGH wells within limits: half the level, 5 of 6 overall.
    cal = aha_run(control_values(C3=40, D3=41, G3=39, H3=42, E3=400, F3=600), layout=four_low)
    assert cal.accepted, cal.reasons


def test_at_least_two_control_levels(tmp_path: Path) -> None:
    only_low = custom_layout(tmp_path, HIGH_BLOCK, '[block.1x2.E3]\nrole = "sample"')
    cal = aha_run(aha_values(), layout=only_low)
    assert [c.name for c in cal.controls] == ["LOW"] and cal.controls[0].passed
    assert cal.reasons == ("1 control level(s) on the plate; at least 2 are required",)
    assert cal.control_failed


def test_a_westgard_rejection_from_history_rejects_the_run() -> None:
    settings = AHA.westgard.model_copy(update={"controls": {
        "LOW": WestgardControl(mean_u_per_l=40.0, sd_u_per_l=1.0),
        "HIGH": WestgardControl(mean_u_per_l=400.0, sd_u_per_l=10.0),
    }})  # fmt: skip
    assay = AHA.model_copy(update={"westgard": settings})
    values = aha_values(C3=aha_od(42.5), D3=aha_od(42.5))  # LOW at about +2.5 SD
    hand = aha_by_hand(values)
    z = hand.activity(aha_od(42.5)) - 40.0
    assert 2 < z < 3
    plate = plate_of(endpoint_read(values), "aha-96", None)
    warned = calibrate(plate, assay, control_history={"LOW": [40.0, 40.5], "HIGH": [400.0]})
    assert warned.accepted and warned.warnings == (f"Westgard 1-2s (warning): LOW at {z:+.2f} SD",)
    rejected = calibrate(plate, assay, control_history={"LOW": [40.0, 42.3], "HIGH": [400.0]})
    assert not rejected.accepted and rejected.control_failed
    assert rejected.reasons == (
        f"Westgard 2-2s (rejection): LOW at +2.30 and {z:+.2f} SD in two runs",
    )


# =====================================================================================
# MAAT: linear, weighted 1/x, OD at 690 nm; the PEG-asparaginase bias
# =====================================================================================

MAAT_LEVELS = {"A": 30.0, "B": 60.0, "C": 100.0, "D": 200.0, "E": 300.0, "F": 450.0, "G": 600.0}
MAAT_STANDARDS = [f"{row}{col}" for row in MAAT_LEVELS for col in (1, 2)]
MAAT_SAMPLE_WELLS = sample_wells(["E3", "F3", "G3", "H3"])
MAAT_RELATIVE = [0.03, -0.02, -0.04, 0.02, 0.05, -0.03, 0.01, -0.05, -0.02, 0.04, 0.03, -0.01,
                 -0.04, 0.02]  # fmt: skip


def maat_od(activity: float, relative: float = 0.0) -> float:
    return 0.060 + 0.0020 * activity * (1 + relative)


def maat_values() -> dict[str, CellValue]:
    values: dict[str, CellValue] = {
        w: maat_od(MAAT_LEVELS[w[0]], e) for w, e in zip(MAAT_STANDARDS, MAAT_RELATIVE, strict=True)
    }
    values |= {"H1": 0.058, "H2": 0.062}  # blank mean 0.060
    values |= {"A3": maat_od(80, 0.02), "B3": maat_od(80, -0.01)}  # LOW 68–92
    values |= {"C3": maat_od(400, 0.03), "D3": maat_od(400, -0.02)}  # HIGH 340–460
    return values


def maat_by_hand(values: Mapping[str, CellValue]) -> tuple[float, float, float]:
    """(blank, intercept, slope): weighted 1/x least squares on blank-corrected OD."""
    blank = (float(values["H1"]) + float(values["H2"])) / 2
    xs = [MAAT_LEVELS[w[0]] for w in MAAT_STANDARDS]
    ys = [float(values[w]) - blank for w in MAAT_STANDARDS]
    intercept, slope = line_by_sums(xs, ys, [1 / x for x in xs])
    return blank, intercept, slope


def maat_plate(
    samples: Samples,
    values: dict[str, CellValue] | None = None,
    formulation: Mapping[str, str] | None = None,
) -> tuple[PlateRead, Worklist]:
    values = values if values is not None else maat_values()
    rows = place(values, samples, MAAT_SAMPLE_WELLS)
    read = endpoint_read(values, wavelength_nm=690)
    return read, worklist_of(rows, formulation=formulation)


def test_maat_activities_from_weighted_least_squares() -> None:
    values = maat_values()
    blank, intercept, slope = maat_by_hand(values)
    samples: Samples = [
        ("M-45", 1, [maat_od(45, 0.01), maat_od(45, -0.02)]),
        ("M-250", 1, [maat_od(250, 0.03), maat_od(250)]),
        ("M-2000", 5, [maat_od(400), maat_od(400, 0.02)]),
        ("M-LOW", 1, [maat_od(20), maat_od(20)]),
        ("M-HIGH", 1, [maat_od(700), maat_od(700)]),
    ]
    read, worklist = maat_plate(samples, values)
    cal = calibrate(plate_of(read, "maat-96", worklist), MAAT)
    assert cal.accepted, cal.reasons
    assert cal.fit is not None and (cal.fit.model, cal.fit.weighting) == ("linear", "1/x")
    assert cal.blank_mean == pytest.approx(blank, rel=1e-12)
    assert cal.fit.parameters["intercept"] == pytest.approx(intercept, rel=1e-9)
    assert cal.fit.parameters["slope"] == pytest.approx(slope, rel=1e-9)

    def activity(od: float) -> float:
        return (od - blank - intercept) / slope

    for well in cal.standard_wells:
        back = activity(float(values[well.well]))
        assert well.recovery_percent == pytest.approx(100 * back / well.nominal_u_per_l)
        assert well.tolerance_percent == (20 if well.nominal_u_per_l == 30 else 15)
    results = by_accession(cal)
    for accession, dilution, readings in samples[:3]:
        mean = sum(activity(float(od)) for od in readings) / 2
        assert results[accession].activity_u_per_l == pytest.approx(mean * dilution, rel=1e-9)
    assert (results["M-LOW"].comparator, results["M-LOW"].activity_u_per_l) == ("<", 30)
    high = results["M-HIGH"]
    assert (high.status, high.activity_u_per_l, high.reassay_dilution) == ("above-uloq", 600, 2)
    assert MAAT.reportable_max_u_per_l == 600 * 20


def _sample(activity: float, status: str = SampleStatus.QUANTIFIED,
            comparator: str = "=") -> SampleResult:  # fmt: skip
    return SampleResult("P", ("A4",), 1.0, (activity,), activity, None, activity, comparator,
                        status)  # fmt: skip


PEG = OrderContext("P", formulation="peg-asparaginase")
ENABLED = PegBias(enabled=True)


@pytest.mark.parametrize(("measured", "factor"), [
    (200.0, 1.23), (600.0, 1.23), (600.5, 1.42), (1500.0, 1.42), (31.0, 1.23),
])  # fmt: skip
def test_peg_bias_divides_by_1_23_up_to_600_and_1_42_above(measured: float, factor: float) -> None:
    corrected, used = apply_peg_bias(_sample(measured), PEG, ENABLED)
    assert used == factor
    assert corrected.activity_u_per_l == pytest.approx(measured / factor, rel=1e-12)
    assert corrected.notes[-1].startswith("Corrected for the kit's PEG-asparaginase bias: measured")
    assert f"/ {factor:g} = " in corrected.notes[-1]


def test_peg_bias_applies_only_where_it_should() -> None:
    sample = _sample(200.0)
    assert apply_peg_bias(sample, PEG, PegBias()) == (sample, None)  # disabled (the default)
    erwinia = OrderContext("P", formulation="erwinia")
    assert apply_peg_bias(sample, erwinia, ENABLED) == (sample, None)
    calaspargase = OrderContext("P", formulation="calaspargase-pegol")
    assert apply_peg_bias(sample, calaspargase, ENABLED)[1] == 1.23
    unknown, factor = apply_peg_bias(sample, None, ENABLED)
    assert factor is None and unknown.activity_u_per_l == 200
    assert unknown.notes == ("PEG bias correction not applied: the formulation is not known.",)
    # A "<" bound is divided too: < 30 U/L measured means < 24.4 U/L corrected.
    bound, factor = apply_peg_bias(_sample(30.0, SampleStatus.BELOW_LLOQ, "<"), PEG, ENABLED)
    assert factor == 1.23 and bound.comparator == "<"
    assert bound.activity_u_per_l == pytest.approx(30 / 1.23)
    invalid = replace(sample, activity_u_per_l=None, status=SampleStatus.INVALID)
    assert apply_peg_bias(invalid, PEG, ENABLED) == (invalid, None)


def test_maat_peg_bias_through_the_pipeline(tmp_path: Path) -> None:
    text = (packaged_config_dir() / "assays" / "maat.toml").read_text(encoding="utf-8")
    assert "[peg_bias]\nenabled = false" in text
    path = tmp_path / "maat.toml"
    path.write_text(text.replace("[peg_bias]\nenabled = false", "[peg_bias]\nenabled = true"),
                    encoding="utf-8")  # fmt: skip
    assay = load_assay(str(path), [])
    assert assay.definition.peg_bias.enabled

    values = maat_values()
    blank, intercept, slope = maat_by_hand(values)
    samples: Samples = [
        ("PEG-LOW", 1, [maat_od(200), maat_od(200, 0.01)]),
        ("PEG-HIGH", 2, [maat_od(450), maat_od(450, -0.01)]),  # 900 U/L in the serum
        ("ERW", 1, [maat_od(200), maat_od(200, 0.01)]),
        ("NONE", 1, [maat_od(200), maat_od(200, 0.01)]),
    ]
    read, worklist = maat_plate(samples, values, formulation={
        "PEG-LOW": "PEG", "PEG-HIGH": "Oncaspar", "ERW": "erwinia", "NONE": "",
    })  # fmt: skip
    (run,) = build_runs(
        AppConfig(), SourceFile(b"maat", "maat.csv"), [read], lambda _read: worklist,
        assay=assay, layout=layout_named("maat-96"), now=datetime.now(UTC),
    )  # fmt: skip
    assert run.calibration.accepted, run.calibration.reasons
    reported = {r.sample.accession: r for r in run.samples}

    def measured(accession: str) -> float:
        _, dilution, readings = next(s for s in samples if s[0] == accession)
        return sum((float(od) - blank - intercept) / slope for od in readings) / 2 * dilution

    for accession, factor in (("PEG-LOW", 1.23), ("PEG-HIGH", 1.42)):
        result = reported[accession]
        assert result.bias_factor == factor
        assert result.sample.activity_u_per_l == pytest.approx(
            measured(accession) / factor, abs=0.05
        )  # reported to 0.1 U/L
        assert "Corrected for the kit's PEG-asparaginase bias" in result.interpretation.comment
    assert reported["ERW"].bias_factor is None
    assert reported["ERW"].sample.activity_u_per_l == pytest.approx(measured("ERW"), abs=0.05)
    assert reported["NONE"].bias_factor is None
    assert "formulation is not known" in reported["NONE"].interpretation.comment


# =====================================================================================
# NADH-coupled kinetic: the rate (ΔOD/min × −1000 = mOD/min), linear weighted 1/x
# =====================================================================================

NADH_LEVELS = {"A": 25.0, "B": 50.0, "C": 100.0, "D": 250.0, "E": 500.0, "F": 1000.0,
               "G": 2200.0}  # fmt: skip
NADH_STANDARDS = [f"{row}{col}" for row in NADH_LEVELS for col in (1, 2)]
NADH_SAMPLE_WELLS = sample_wells(["E3", "F3", "G3", "H3"])
NADH_BLANK_RATES = {"H1": -0.0020, "H2": -0.0024}  # ΔOD/min: 2.2 mOD/min on average


def nadh_rate(activity: float, relative: float = 0.0) -> float:
    """ΔOD/min of a well: NADH falls by (2.2 + 0.05·U/L) mOD/min."""
    return -(2.2 + 0.05 * activity * (1 + relative)) / 1000


def nadh_slopes() -> dict[str, float | None]:
    slopes: dict[str, float | None] = {
        w: nadh_rate(NADH_LEVELS[w[0]], e)
        for w, e in zip(NADH_STANDARDS, MAAT_RELATIVE, strict=True)
    }
    slopes |= NADH_BLANK_RATES
    slopes |= {"A3": nadh_rate(100, 0.02), "B3": nadh_rate(100, -0.03)}  # LOW 85–115
    slopes |= {"C3": nadh_rate(1000, 0.01), "D3": nadh_rate(1000, 0.04)}  # HIGH 850–1150
    return slopes


RateSamples = Sequence[tuple[str, float, Sequence[float | None]]]


def nadh_run(
    slopes: dict[str, float | None], samples: RateSamples
) -> tuple[Calibration, Callable[[float], float]]:
    free = iter(NADH_SAMPLE_WELLS)
    rows = []
    for accession, dilution, rates in samples:
        for rate in rates:
            well = next(free)
            slopes[well] = rate
            rows.append((well, accession, dilution))
    (read,) = select_read([kinetic_read(slopes)], NADH, path="kinetic.xlsx")
    for well, slope in slopes.items():  # the rate of each well is the slope we chose
        if slope is not None:
            assert read.wells[well].value == pytest.approx(slope, rel=1e-9, abs=1e-12)
    cal = calibrate(plate_of(read, "nadh-96", worklist_of(rows)), NADH)
    # By hand: signal = rate × (−1000) − mean blank signal; 1/x weighted least squares.
    blank = sum(-1000 * r for r in NADH_BLANK_RATES.values()) / 2
    xs = [NADH_LEVELS[w[0]] for w in NADH_STANDARDS]
    ys = [-1000 * float(slopes[w] or 0) - blank for w in NADH_STANDARDS]
    intercept, slope = line_by_sums(xs, ys, [1 / x for x in xs])
    assert cal.blank_mean == pytest.approx(blank, rel=1e-9)
    assert cal.fit is not None
    assert cal.fit.parameters["intercept"] == pytest.approx(intercept, rel=1e-6, abs=1e-9)
    assert cal.fit.parameters["slope"] == pytest.approx(slope, rel=1e-9)
    return cal, lambda rate: (-1000 * rate - blank - intercept) / slope


def test_nadh_kinetic_activities_from_the_rates() -> None:
    samples = [
        ("K-80", 1.0, [nadh_rate(80, 0.02), nadh_rate(80, -0.01)]),
        ("K-1500", 1.0, [nadh_rate(1500), nadh_rate(1500, 0.03)]),
        ("K-3000", 2.0, [nadh_rate(1500), nadh_rate(1500, -0.02)]),
    ]
    cal, activity = nadh_run(nadh_slopes(), samples)
    assert cal.accepted, cal.reasons
    assert cal.signal_unit == "mOD/min"
    assert (cal.lloq_u_per_l, cal.uloq_u_per_l) == (25, 2200)
    results = by_accession(cal)
    for accession, dilution, rates in samples:
        replicates = [activity(r) for r in rates if r is not None]
        mean = sum(replicates) / len(replicates)
        assert results[accession].status == SampleStatus.QUANTIFIED
        assert results[accession].activity_u_per_l == pytest.approx(mean * dilution, rel=1e-9)
        assert results[accession].cv_percent == pytest.approx(cv_percent(replicates), rel=1e-9)
    low, high = cal.controls
    assert low.measured_u_per_l == pytest.approx(
        (activity(nadh_rate(100, 0.02)) + activity(nadh_rate(100, -0.03))) / 2, rel=1e-9
    )
    assert high.passed and low.passed


def test_nadh_above_the_uloq_and_the_capped_reportable_range() -> None:
    samples = [
        ("K-HI", 1.0, [nadh_rate(3000), nadh_rate(3000)]),
        ("K-HI2", 2.0, [nadh_rate(2600), nadh_rate(2600)]),
        ("K-GAP", 1.0, [None, nadh_rate(400)]),  # one well without a usable rate
    ]
    cal, activity = nadh_run(nadh_slopes(), samples)
    results = by_accession(cal)
    hi = results["K-HI"]
    assert (hi.status, hi.activity_u_per_l, hi.reassay_dilution) == ("above-uloq", 2200, 2)
    # At the maximum (1:2) the top of the reportable range is capped at 4000, not 2 × 2200.
    assert NADH.reportable_max_u_per_l == 4000
    hi2 = results["K-HI2"]
    assert (hi2.status, hi2.comparator, hi2.activity_u_per_l) == ("above-reportable", ">", 4000)
    gap = results["K-GAP"]
    assert gap.status == SampleStatus.QUANTIFIED
    assert gap.activity_u_per_l == pytest.approx(activity(nadh_rate(400)), rel=1e-9)
    assert gap.notes[0].startswith("1 of 2 replicate wells unreadable")
    assert "too few readings" in gap.notes[0]


# =====================================================================================
# A 4PL assay (ligand-binding regime) on the AHA plate
# =====================================================================================

LOGISTIC_TRUTH = {
    "4pl": {"a": 0.02, "b": 1.2, "c": 200.0, "d": 2.2},
    "5pl": {"a": 0.02, "b": 1.2, "c": 200.0, "d": 2.2, "g": 0.8},
}


def logistic_assay(model: str) -> AssayDefinition:
    curve = CurveSettings(model=model, weighting="1/x")  # type: ignore[arg-type]
    return with_acceptance(AHA.model_copy(update={"curve": curve}), regime="ligand-binding")


def logistic_od(activity: float, model: str = "4pl") -> float:
    """OD = blank + d + (a − d) / (1 + (x/c)^b)^g (g = 1 for 4PL)."""
    p = LOGISTIC_TRUTH[model]
    a, b, c, d, g = p["a"], p["b"], p["c"], p["d"], p.get("g", 1.0)
    return AHA_BLANK + d + (a - d) / (1 + (activity / c) ** b) ** g


def inverse_logistic(od: float, model: str) -> float:
    """x = c · (((a − d)/(y − d))^(1/g) − 1)^(1/b), ±inf beyond the asymptotes."""
    p = LOGISTIC_TRUTH[model]
    a, b, c, d, g = p["a"], p["b"], p["c"], p["d"], p.get("g", 1.0)
    signal = od - AHA_BLANK
    if signal <= a:
        return -math.inf
    if signal >= d:
        return math.inf
    return c * (((a - d) / (signal - d)) ** (1 / g) - 1) ** (1 / b)


def logistic_values(model: str = "4pl", **overrides: CellValue) -> dict[str, CellValue]:
    values = aha_values()
    values |= {w: logistic_od(AHA_LEVELS[w[0]], model) for w in AHA_STANDARDS}
    values |= {w: logistic_od(40, model) for w in ("C3", "D3")}
    values |= {w: logistic_od(400, model) for w in ("E3", "F3")}
    return values | overrides


@pytest.mark.parametrize("model", ["4pl", "5pl"])
def test_logistic_assay_reads_samples_by_the_inverse_formula(model: str) -> None:
    samples: Samples = [
        ("L-60", 1, [logistic_od(60, model), logistic_od(62, model)]),
        ("L-750", 1, [logistic_od(750, model), logistic_od(740, model)]),
        ("L-TOP", 1, [AHA_BLANK + 2.3, AHA_BLANK + 2.4]),  # above the upper asymptote
        ("L-SPLIT", 1, [AHA_BLANK + 2.3, logistic_od(600, model)]),
        ("L-NEG", 1, [AHA_BLANK - 0.01, AHA_BLANK - 0.02]),  # below the blank
    ]
    cal = aha_run(logistic_values(model), samples, assay=logistic_assay(model))
    assert cal.accepted, cal.reasons
    assert cal.fit is not None and cal.fit.model == model
    for name, value in LOGISTIC_TRUTH[model].items():
        assert cal.fit.parameters[name] == pytest.approx(value, rel=1e-3), name
    assert [w.tolerance_percent for w in cal.standard_wells[:4]] == [25, 25, 20, 20]
    assert [w.tolerance_percent for w in cal.standard_wells[-2:]] == [25, 25]
    for well in cal.standard_wells:
        assert well.recovery_percent == pytest.approx(100, rel=1e-3)
    results = by_accession(cal)
    for accession in ("L-60", "L-750"):
        _, _, readings = next(s for s in samples if s[0] == accession)
        mean = sum(inverse_logistic(float(od), model) for od in readings) / 2
        assert results[accession].activity_u_per_l == pytest.approx(mean, rel=1e-3)
    top = results["L-TOP"]
    assert (top.status, top.comparator, top.reassay_dilution) == ("above-uloq", ">", 20)
    assert "signal beyond the curve's upper asymptote" in top.notes
    split = results["L-SPLIT"]
    assert split.status == SampleStatus.INVALID
    assert split.notes == ("replicates disagree: one beyond the curve's top",)
    neg = results["L-NEG"]
    assert inverse_logistic(AHA_BLANK - 0.01, model) == -math.inf
    assert (neg.status, neg.comparator, neg.activity_u_per_l) == ("below-lloq", "<", 5)


def test_non_monotonic_4pl_standards_reject_the_run() -> None:
    values = logistic_values(H1=logistic_od(200), H2=logistic_od(210))  # a hook at the top
    cal = aha_run(values, [("S", 1, [logistic_od(100)] * 2)], assay=logistic_assay("4pl"))
    assert not cal.accepted and cal.fit is None
    (reason,) = cal.reasons
    assert reason.startswith("calibration curve: the standards' signal is not monotonic: 1000 U/L")
    assert cal.samples[0].status == SampleStatus.INVALID

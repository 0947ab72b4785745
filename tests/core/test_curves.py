"""Curve models against independent arithmetic.

Every expected number here is computed in the test: linear and weighted lines
from the closed-form normal equations written out as sums, the two-segment
lines the same way on each segment, and 4PL/5PL from signals generated with
the formula written below from known parameters. Nothing is taken from the
code under test.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from helpers import line_by_sums, weighted_r2

from saa_lab.curves import CurveFitError, FittedCurve, fit_curve

LEVELS = [5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0]
X2 = [x for x in LEVELS for _ in (1, 2)]  # duplicate wells per level


def four_pl(x: float, a: float, b: float, c: float, d: float) -> float:
    """y = d + (a − d) / (1 + (x/c)^b)"""
    return d + (a - d) / (1 + (x / c) ** b)


def five_pl(x: float, a: float, b: float, c: float, d: float, g: float) -> float:
    """y = d + (a − d) / (1 + (x/c)^b)^g"""
    return d + (a - d) / (1 + (x / c) ** b) ** g


def inverse_five_pl(y: float, a: float, b: float, c: float, d: float, g: float = 1.0) -> float:
    """x = c · (((a − d)/(y − d))^(1/g) − 1)^(1/b)"""
    return c * (((a - d) / (y - d)) ** (1 / g) - 1) ** (1 / b)


# Deterministic perturbations (OD) so no fit is exact.
WOBBLE = [0.0021, -0.0013, -0.0008, 0.0017, 0.0030, -0.0024, -0.0011, 0.0009,
          0.0042, -0.0035, 0.0060, -0.0041, -0.0052, 0.0071, 0.0085, -0.0066]  # fmt: skip


# -- linear ---------------------------------------------------------------------


def test_linear_published_worked_example() -> None:
    # The classic textbook example: x 1..5, y 2,4,5,4,5 → y = 2.2 + 0.6x, R² = 0.6,
    # residuals −0.8, 0.6, 1.0, −0.6, −0.2.
    curve = fit_curve([1, 2, 3, 4, 5], [2, 4, 5, 4, 5], model="linear")
    assert curve.parameters["intercept"] == pytest.approx(2.2, abs=1e-12)
    assert curve.parameters["slope"] == pytest.approx(0.6, abs=1e-12)
    assert curve.r_squared == pytest.approx(0.6, abs=1e-12)
    assert curve.residuals == pytest.approx([-0.8, 0.6, 1.0, -0.6, -0.2], abs=1e-12)
    assert curve.activity(5.2) == pytest.approx(5.0)
    assert curve.predict(10) == pytest.approx(8.2)


@pytest.mark.parametrize(
    ("weighting", "weight"),
    [("none", lambda x: 1.0), ("1/x", lambda x: 1 / x), ("1/x2", lambda x: 1 / x**2)],
)
def test_linear_and_weighted_least_squares_match_the_normal_equations(
    weighting: str, weight: Callable[[float], float]
) -> None:
    ys = [0.045 + 0.0011 * x + e for x, e in zip(X2, WOBBLE, strict=True)]
    ws = [weight(x) for x in X2]
    intercept, slope = line_by_sums(X2, ys, ws)
    curve = fit_curve(X2, ys, model="linear", weighting=weighting)
    assert curve.model == "linear" and curve.weighting == weighting
    assert curve.parameters["intercept"] == pytest.approx(intercept, rel=1e-9)
    assert curve.parameters["slope"] == pytest.approx(slope, rel=1e-9)
    predicted = [intercept + slope * x for x in X2]
    assert curve.r_squared == pytest.approx(weighted_r2(ys, predicted, ws), rel=1e-9)
    assert curve.residuals == pytest.approx(
        [y - p for y, p in zip(ys, predicted, strict=True)], abs=1e-12
    )
    for x, y in zip(X2, ys, strict=True):
        assert curve.activity(y) == pytest.approx((y - intercept) / slope, rel=1e-9)
        assert curve.predict(x) == pytest.approx(intercept + slope * x, rel=1e-9)


def test_weighting_favours_the_low_standards() -> None:
    # Heteroscedastic standards (5 % CV): 1/x² keeps the low end right, no weighting does not.
    ys = [0.0011 * x * (1 + 0.05 * (-1) ** i) for i, x in enumerate(X2)]
    ys[0], ys[1] = 0.0011 * 5 * 1.04, 0.0011 * 5 * 1.06  # the LLOQ reads 5 % high
    none = fit_curve(X2, ys, model="linear")
    inverse_square = fit_curve(X2, ys, model="linear", weighting="1/x2")
    low_signal = (ys[0] + ys[1]) / 2
    assert abs(inverse_square.activity(low_signal) / 5 - 1) < 0.1
    assert abs(none.activity(low_signal) / 5 - 1) > abs(inverse_square.activity(low_signal) / 5 - 1)
    for weighting in ("1/x", "1/x2"):
        ws = [1 / x if weighting == "1/x" else 1 / x**2 for x in X2]
        intercept, slope = line_by_sums(X2, ys, ws)
        fitted = fit_curve(X2, ys, model="linear", weighting=weighting)
        assert (fitted.parameters["intercept"], fitted.parameters["slope"]) == pytest.approx(
            (intercept, slope), rel=1e-9
        )


@pytest.mark.parametrize("weighting", ["1/x", "1/x2"])
def test_weighting_needs_standards_above_zero(weighting: str) -> None:
    with pytest.raises(CurveFitError, match=f"weighting {weighting} needs standards above 0"):
        fit_curve([0, 10, 20], [0.0, 0.1, 0.2], model="linear", weighting=weighting)


# -- two-segment linear ---------------------------------------------------------


def _two_segment_signals() -> list[float]:
    # 0.002 + 0.0012·x up to 100 U/L, 0.022 + 0.0010·x above (continuous at 100).
    return [
        (0.002 + 0.0012 * x if x <= 100 else 0.022 + 0.0010 * x) + e
        for x, e in zip(X2, WOBBLE, strict=True)
    ]


def test_two_segment_fits_each_segment_by_hand() -> None:
    ys = _two_segment_signals()
    low = [(x, y) for x, y in zip(X2, ys, strict=True) if 5 <= x <= 100]
    high = [(x, y) for x, y in zip(X2, ys, strict=True) if 100 <= x <= 1000]
    assert len(low) == 10 and len(high) == 8  # the 100 U/L wells belong to both
    i1, s1 = line_by_sums([x for x, _ in low], [y for _, y in low])
    i2, s2 = line_by_sums([x for x, _ in high], [y for _, y in high])
    curve = fit_curve(X2, ys, model="two-segment-linear", segments=[(5, 100), (100, 1000)])
    p = curve.parameters
    assert (p["segment1_intercept"], p["segment1_slope"]) == pytest.approx((i1, s1), rel=1e-9)
    assert (p["segment2_intercept"], p["segment2_slope"]) == pytest.approx((i2, s2), rel=1e-9)
    limit = i1 + s1 * 100  # the low line's signal at the top of its segment
    assert curve.segments[0].signal_limit == pytest.approx(limit, rel=1e-12)
    assert curve.segments[1].signal_limit == math.inf

    # Residuals and R² over all wells, each standard predicted on its own segment.
    predicted = [i1 + s1 * x if x <= 100 else i2 + s2 * x for x in X2]
    assert curve.residuals == pytest.approx([y - q for y, q in zip(ys, predicted, strict=True)])
    assert curve.r_squared == pytest.approx(weighted_r2(ys, predicted, [1.0] * len(ys)), rel=1e-9)

    # A signal is read on the segment it falls in: just below and just above the limit.
    below, above = limit - 0.004, limit + 0.004
    assert curve.activity(below) == pytest.approx((below - i1) / s1, rel=1e-9)
    assert curve.activity(above) == pytest.approx((above - i2) / s2, rel=1e-9)
    assert curve.activity(limit) == pytest.approx(100, rel=1e-9)
    # The two lines disagree off their segment, so the choice matters.
    far = 0.9
    assert curve.activity(far) == pytest.approx((far - i2) / s2, rel=1e-9)
    assert abs((far - i1) / s1 - (far - i2) / s2) > 50
    # Back-calculated % of every standard, by hand.
    for y in ys:
        expected = (y - i1) / s1 if y <= limit else (y - i2) / s2
        assert curve.activity(y) == pytest.approx(expected, rel=1e-9)


def test_two_segment_errors_name_the_segment() -> None:
    ys = _two_segment_signals()
    with pytest.raises(CurveFitError, match="needs two segments"):
        fit_curve(X2, ys, model="two-segment-linear", segments=[(5, 1000)])
    with pytest.raises(CurveFitError, match="segment 100–1000 U/L has fewer than 2 standard"):
        fit_curve(X2[:10], ys[:10], model="two-segment-linear", segments=[(5, 100), (100, 1000)])
    falling = [*ys[:10], 0.40, 0.40, 0.30, 0.30, 0.20, 0.20]
    with pytest.raises(
        CurveFitError, match=r"curve on segment 2 \(100–1000 U/L\) is flat or falling"
    ):
        fit_curve(X2, falling, model="two-segment-linear", segments=[(5, 100), (100, 1000)])


# -- 4PL / 5PL --------------------------------------------------------------------

TRUE_4PL = {"a": 0.05, "b": 1.3, "c": 150.0, "d": 2.5}
TRUE_5PL = {"a": 0.05, "b": 1.3, "c": 150.0, "d": 2.5, "g": 0.7}


@pytest.mark.parametrize("weighting", ["none", "1/x", "1/x2"])
def test_4pl_recovers_known_parameters_and_activities(weighting: str) -> None:
    ys = [four_pl(x, **TRUE_4PL) for x in X2]
    curve = fit_curve(X2, ys, model="4pl", weighting=weighting)
    assert set(curve.parameters) == {"a", "b", "c", "d"}
    for name, value in TRUE_4PL.items():
        assert curve.parameters[name] == pytest.approx(value, rel=1e-5), name
    assert curve.r_squared == pytest.approx(1.0, abs=1e-9)
    assert max(abs(r) for r in curve.residuals) < 1e-6
    # Back-calculation: the inverse formula from the true parameters, and each level itself.
    for x in [*LEVELS, 7.5, 333.0]:
        y = four_pl(x, **TRUE_4PL)
        assert inverse_five_pl(y, **TRUE_4PL) == pytest.approx(x, rel=1e-9)  # the formula
        assert curve.activity(y) == pytest.approx(x, rel=1e-4)
        assert curve.predict(x) == pytest.approx(y, rel=1e-6)


@pytest.mark.parametrize("weighting", ["none", "1/x", "1/x2"])
def test_5pl_recovers_known_parameters_and_activities(weighting: str) -> None:
    ys = [five_pl(x, **TRUE_5PL) for x in X2]
    curve = fit_curve(X2, ys, model="5pl", weighting=weighting)
    assert set(curve.parameters) == {"a", "b", "c", "d", "g"}
    for name, value in TRUE_5PL.items():
        assert curve.parameters[name] == pytest.approx(value, rel=1e-3), name
    for x in [*LEVELS, 7.5, 333.0]:
        y = five_pl(x, **TRUE_5PL)
        assert inverse_five_pl(y, **TRUE_5PL) == pytest.approx(x, rel=1e-9)
        assert curve.activity(y) == pytest.approx(x, rel=1e-3)


@pytest.mark.parametrize(("model", "truth"), [("4pl", TRUE_4PL), ("5pl", TRUE_5PL)])
@pytest.mark.parametrize("weighting", ["none", "1/x"])
def test_logistic_fit_of_noisy_standards(model: str, truth: dict[str, float],
                                         weighting: str) -> None:  # fmt: skip
    rng = random.Random(11)
    formula = four_pl if model == "4pl" else five_pl
    ys = [formula(x, **truth) * (1 + rng.gauss(0, 0.01)) for x in X2]  # 1 % CV
    curve = fit_curve(X2, ys, model=model, weighting=weighting)
    p = dict(curve.parameters)
    ws = [1.0 if weighting == "none" else 1 / x for x in X2]
    fitted = [formula(x, **p) for x in X2]

    # Least squares: the fit is at least as good as the parameters the data came from.
    def ssr(values: list[float]) -> float:
        return sum(w * (y - v) ** 2 for w, y, v in zip(ws, ys, values, strict=True))

    assert ssr(fitted) <= ssr([formula(x, **truth) for x in X2]) * (1 + 1e-9)
    assert curve.r_squared == pytest.approx(weighted_r2(ys, fitted, ws), rel=1e-9)
    assert curve.residuals == pytest.approx([y - v for y, v in zip(ys, fitted, strict=True)],
                                            abs=1e-9)  # fmt: skip
    assert p["d"] == pytest.approx(truth["d"], rel=0.1)
    assert p["a"] == pytest.approx(truth["a"], abs=0.03)
    # Every level back-calculates within 15 % of nominal (20 % at the LLOQ), as a run needs.
    for i in range(0, len(X2), 2):
        mean = (ys[i] + ys[i + 1]) / 2
        limit = 0.2 if i == 0 else 0.15
        assert curve.activity(mean) / X2[i] == pytest.approx(1, abs=limit), X2[i]
        assert curve.activity(mean) == pytest.approx(inverse_five_pl(mean, **{"g": 1.0, **p}),
                                                     rel=1e-9)  # fmt: skip


def test_4pl_with_a_zero_calibrator() -> None:
    xs = [0.0, 0.0, *X2]
    ys = [four_pl(x, **TRUE_4PL) for x in xs]
    curve = fit_curve(xs, ys, model="4pl")
    assert curve.parameters["c"] == pytest.approx(150, rel=1e-5)
    assert curve.parameters["a"] == pytest.approx(0.05, rel=1e-5)


def test_signals_beyond_the_asymptotes_are_infinite() -> None:
    curve = FittedCurve("4pl", "none", TRUE_4PL, 1.0, ())
    assert curve.activity(0.05) == -math.inf  # at the lower asymptote
    assert curve.activity(0.01) == -math.inf
    assert curve.activity(-0.3) == -math.inf  # a negative blank-corrected signal
    assert curve.activity(2.5) == math.inf
    assert curve.activity(3.1) == math.inf
    assert curve.activity(1.275) == pytest.approx(150)  # the midpoint reads c
    five = FittedCurve("5pl", "none", TRUE_5PL, 1.0, ())
    assert five.activity(0.049) == -math.inf and five.activity(2.6) == math.inf
    y = five_pl(40, **TRUE_5PL)
    assert five.activity(y) == pytest.approx(40, rel=1e-12)


# -- curves that cannot be fitted -------------------------------------------------


@pytest.mark.parametrize("weighting", ["none", "1/x", "1/x2"])
@pytest.mark.parametrize("model", ["linear", "two-segment-linear", "4pl", "5pl"])
def test_a_flat_curve_is_refused(model: str, weighting: str) -> None:
    # Equal signals; with 1/x² weighting the sums once left a slope of 1e-34 that passed.
    for level in (0.3, 0.1, 0.123, 0.7):
        with pytest.raises(CurveFitError) as caught:
            fit_curve(X2, [level] * len(X2), model=model, weighting=weighting,
                      segments=[(5, 100), (100, 1000)])  # fmt: skip
        assert any(s in str(caught.value) for s in ("is flat or falling", "does not rise"))


@pytest.mark.parametrize("model", ["linear", "4pl", "5pl"])
def test_a_falling_curve_is_refused(model: str) -> None:
    ys = [2.0 - 0.0015 * x for x in X2]
    with pytest.raises(CurveFitError, match=r"falling|does not rise"):
        fit_curve(X2, ys, model=model)


def test_linear_flat_message_names_the_slope() -> None:
    with pytest.raises(CurveFitError, match=r"the curve is flat or falling \(slope -0\.0015\)"):
        fit_curve(X2, [2.0 - 0.0015 * x for x in X2], model="linear")


@pytest.mark.parametrize("model", ["4pl", "5pl"])
def test_non_monotonic_logistic_data_is_refused(model: str) -> None:
    # A hook: the signal rises, then falls at the top levels (antigen excess).
    hook = [four_pl(x, **TRUE_4PL) for x in X2]
    hook[-2:] = [1.2, 1.2]  # 1000 U/L reads below 250 U/L
    with pytest.raises(CurveFitError, match=r"not monotonic: 1000 U/L reads 1\.2, below 500 U/L"):
        fit_curve(X2, hook, model=model)
    # A dip in the middle: 100 U/L reads well below 50 U/L.
    dip = [four_pl(x, **TRUE_4PL) for x in X2]
    dip[8:10] = [0.2, 0.2]
    with pytest.raises(CurveFitError, match=r"not monotonic: 100 U/L reads 0\.2, below 50 U/L"):
        fit_curve(X2, dip, model=model)


def test_replicate_noise_at_the_plateau_is_not_non_monotonic() -> None:
    # Two top levels on the plateau whose means differ by noise only (2 % of the span).
    xs = [*X2, 2000.0, 2000.0]
    ys = [four_pl(x, **TRUE_4PL) for x in xs]
    ys[-2:] = [ys[-3] - 0.02, ys[-3] - 0.03]
    fit_curve(xs, ys, model="4pl")  # no error


@pytest.mark.parametrize(
    ("model", "levels", "message"),
    [
        ("linear", [10, 10, 10], "1 standard level(s) with a reading; a curve needs at least 2"),
        ("4pl", [5, 10, 25, 50], "4pl needs at least 5 standard levels with a reading; got 4"),
        ("5pl", [5, 10, 25, 50, 100], "5pl needs at least 6 standard levels with a reading; got 5"),
        ("two-segment-linear", [5], "1 standard level(s)"),
    ],
)
def test_too_few_levels(model: str, levels: list[float], message: str) -> None:
    ys = [four_pl(x, **TRUE_4PL) for x in levels]
    with pytest.raises(CurveFitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fit_curve(levels, ys, model=model, segments=[(5, 100), (100, 1000)])


def test_unknown_model() -> None:
    with pytest.raises(CurveFitError, match="unknown curve model 'cubic'; use one of linear"):
        fit_curve([1, 2, 3], [1, 2, 3], model="cubic")

"""Calibration curve models: fit the standards, back-calculate any signal.

Models (``model`` in the assay file):

- ``linear``: signal = a + b·x by ordinary or weighted least squares.
- ``two-segment-linear``: one line per segment (e.g. 5–100 and 100–1000 U/L);
  a signal is read on the segment its value falls in.
- ``4pl``: signal = d + (a − d) / (1 + (x/c)^b)
- ``5pl``: signal = d + (a − d) / (1 + (x/c)^b)^g

Weighting (``weighting``): ``none``, ``1/x`` or ``1/x2`` on the nominal
activity, as bioanalytical guidance allows for heteroscedastic standards.
4PL/5PL use scipy's trust-region least squares with starting values from the
data (asymptotes from the lowest/highest signals, c at the geometric middle of
the standards, b = 1, g = 1) and bounds that keep the curve finite.

Activities are U/L; signals are whatever the assay reads (blank-corrected OD,
or the rate). A fit that cannot describe the standards raises
:class:`CurveFitError` with the reason; a signal the curve cannot invert
(beyond a 4PL asymptote) back-calculates to ``+inf`` or ``-inf``, which the
caller reports as above the ULOQ or below the LLOQ, never as a number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

import numpy as np

from .errors import CalibrationError

__all__ = [
    "MODELS",
    "WEIGHTINGS",
    "CurveFitError",
    "FittedCurve",
    "fit_curve",
    "five_pl",
    "four_pl",
]

Model = Literal["linear", "two-segment-linear", "4pl", "5pl"]
Weighting = Literal["none", "1/x", "1/x2"]
MODELS: tuple[str, ...] = ("linear", "two-segment-linear", "4pl", "5pl")
WEIGHTINGS: tuple[str, ...] = ("none", "1/x", "1/x2")


class CurveFitError(CalibrationError):
    """The standards cannot be described by the assay's curve model."""


def four_pl(x: np.ndarray, a: float, b: float, c: float, d: float) -> np.ndarray:
    result: np.ndarray = d + (a - d) / (1.0 + np.power(np.maximum(x, 0.0) / c, b))
    return result


def five_pl(x: np.ndarray, a: float, b: float, c: float, d: float, g: float) -> np.ndarray:
    result: np.ndarray = d + (a - d) / np.power(1.0 + np.power(np.maximum(x, 0.0) / c, b), g)
    return result


@dataclass(frozen=True)
class Segment:
    low: float
    high: float
    intercept: float
    slope: float
    # Signals at or below this value are read on this segment (the last: all above).
    signal_limit: float


@dataclass(frozen=True)
class FittedCurve:
    model: str
    weighting: str
    parameters: Mapping[str, float]
    r_squared: float
    residuals: tuple[float, ...]
    segments: tuple[Segment, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "parameters", MappingProxyType(dict(self.parameters)))

    def predict(self, activity: float) -> float:
        p = self.parameters
        if self.model == "linear":
            return p["intercept"] + p["slope"] * activity
        if self.model == "two-segment-linear":
            seg = next((s for s in self.segments if activity <= s.high), self.segments[-1])
            return seg.intercept + seg.slope * activity
        x = np.asarray([activity], dtype=float)
        if self.model == "4pl":
            return float(four_pl(x, p["a"], p["b"], p["c"], p["d"])[0])
        return float(five_pl(x, p["a"], p["b"], p["c"], p["d"], p["g"])[0])

    def activity(self, signal: float) -> float:
        """Back-calculate; ±inf where the curve cannot reach the signal."""
        p = self.parameters
        if self.model == "linear":
            return (signal - p["intercept"]) / p["slope"]
        if self.model == "two-segment-linear":
            seg = next((s for s in self.segments if signal <= s.signal_limit), self.segments[-1])
            return (signal - seg.intercept) / seg.slope
        a, b, c, d = p["a"], p["b"], p["c"], p["d"]
        g = p.get("g", 1.0)
        rising = d > a
        # Outside the open interval between the asymptotes there is no activity.
        if (signal <= a) if rising else (signal >= a):
            return -math.inf
        if (signal >= d) if rising else (signal <= d):
            return math.inf
        ratio = (a - d) / (signal - d)
        inner = ratio ** (1.0 / g) - 1.0
        if inner <= 0:
            return -math.inf
        return float(c * inner ** (1.0 / b))


def _weights(x: np.ndarray, weighting: str) -> np.ndarray:
    if weighting == "none":
        return np.ones_like(x)
    if np.any(x <= 0):
        msg = f"weighting {weighting} needs standards above 0 U/L"
        raise CurveFitError(msg)
    return 1.0 / x if weighting == "1/x" else 1.0 / x**2


def _r_squared(y: np.ndarray, predicted: np.ndarray, w: np.ndarray) -> float:
    mean = np.sum(w * y) / np.sum(w)
    total = float(np.sum(w * (y - mean) ** 2))
    return 1.0 - float(np.sum(w * (y - predicted) ** 2)) / total if total > 0 else 0.0


def _weighted_line(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Closed-form weighted least squares: (intercept, slope)."""
    sw = np.sum(w)
    mx, my = np.sum(w * x) / sw, np.sum(w * y) / sw
    sxx = np.sum(w * (x - mx) ** 2)
    if sxx <= 0:
        msg = "all standards have the same activity; a line needs at least two levels"
        raise CurveFitError(msg)
    slope = float(np.sum(w * (x - mx) * (y - my)) / sxx)
    return float(my - slope * mx), slope


def _check_rising(slope: float, x: np.ndarray, y: np.ndarray, where: str = "") -> None:
    # A rise over the standards' range within rounding of the signals is flat too
    # (equal signals can leave a slope of 1e-34 from floating-point sums).
    rise = slope * float(np.ptp(x))
    if not rise > 1e-9 * float(np.max(np.abs(y))):
        msg = (
            f"the curve{where} is flat or falling (slope {slope:.4g}); "
            "the signal must rise with activity"
        )
        raise CurveFitError(msg)


def fit_curve(
    activities: Sequence[float],
    signals: Sequence[float],
    *,
    model: str,
    weighting: str = "none",
    segments: Sequence[tuple[float, float]] = (),
) -> FittedCurve:
    """Fit the standards (one point per well) with the assay's model."""
    x = np.asarray(activities, dtype=float)
    y = np.asarray(signals, dtype=float)
    if len(np.unique(x)) < 2:
        msg = f"{len(np.unique(x))} standard level(s) with a reading; a curve needs at least 2"
        raise CurveFitError(msg)
    if model == "linear":
        w = _weights(x, weighting)
        intercept, slope = _weighted_line(x, y, w)
        _check_rising(slope, x, y)
        predicted = intercept + slope * x
        return FittedCurve(
            "linear", weighting, {"intercept": intercept, "slope": slope},
            _r_squared(y, predicted, w), tuple(map(float, y - predicted)),
        )  # fmt: skip
    if model == "two-segment-linear":
        return _fit_segments(x, y, weighting, segments)
    if model in ("4pl", "5pl"):
        return _fit_logistic(x, y, model, weighting)
    msg = f"unknown curve model {model!r}; use one of {', '.join(MODELS)}"
    raise CurveFitError(msg)


def _fit_segments(
    x: np.ndarray, y: np.ndarray, weighting: str, bounds: Sequence[tuple[float, float]]
) -> FittedCurve:
    if len(bounds) < 2:
        msg = "two-segment-linear needs two segments, e.g. [[5, 100], [100, 1000]]"
        raise CurveFitError(msg)
    fitted: list[tuple[float, float, float, float]] = []
    for index, (low, high) in enumerate(bounds):
        inside = (x >= low) & (x <= high)
        if len(np.unique(x[inside])) < 2:
            msg = f"segment {low:g}–{high:g} U/L has fewer than 2 standard levels with a reading"
            raise CurveFitError(msg)
        w = _weights(x[inside], weighting)
        intercept, slope = _weighted_line(x[inside], y[inside], w)
        _check_rising(
            slope, x[inside], y[inside], f" on segment {index + 1} ({low:g}–{high:g} U/L)"
        )
        fitted.append((low, high, intercept, slope))
    segments = []
    for index, (low, high, intercept, slope) in enumerate(fitted):
        limit = intercept + slope * high if index < len(fitted) - 1 else math.inf
        segments.append(Segment(low, high, intercept, slope, limit))
    curve = FittedCurve(
        "two-segment-linear", weighting,
        {f"segment{i + 1}_{k}": v for i, s in enumerate(segments)
         for k, v in (("intercept", s.intercept), ("slope", s.slope))},
        0.0, (), tuple(segments),
    )  # fmt: skip
    predicted = np.asarray([curve.predict(v) for v in x])
    w = _weights(x, weighting)
    return FittedCurve(
        curve.model, weighting, curve.parameters, _r_squared(y, predicted, w),
        tuple(map(float, y - predicted)), curve.segments,
    )  # fmt: skip


# A level's mean signal may fall below a lower level's by this share of the
# signal range (replicate noise on a plateau); more is a hook or a dip.
MAX_DIP_FRACTION = 0.10


def _check_monotonic(x: np.ndarray, y: np.ndarray, levels: np.ndarray, model: str) -> None:
    """A 4PL/5PL is monotonic: refuse standards whose level means are not."""
    means = [float(np.mean(y[x == level])) for level in levels]
    allowed = MAX_DIP_FRACTION * (max(means) - min(means))
    peak_level, peak = float(levels[0]), means[0]
    for level, mean in zip(levels, means, strict=True):
        if peak - mean > allowed:
            msg = (
                f"the standards' signal is not monotonic: {level:g} U/L reads {mean:.4g}, "
                f"below {peak_level:g} U/L at {peak:.4g}; a {model} curve cannot describe "
                "a hook or a dip"
            )
            raise CurveFitError(msg)
        if mean > peak:
            peak_level, peak = float(level), mean


def _fit_logistic(x: np.ndarray, y: np.ndarray, model: str, weighting: str) -> FittedCurve:
    from scipy.optimize import curve_fit

    five = model == "5pl"
    levels = np.unique(x)
    needed = 5 if five else 4
    if len(levels) < needed + 1:
        msg = (
            f"{model} needs at least {needed + 1} standard levels with a reading; got {len(levels)}"
        )
        raise CurveFitError(msg)
    w = _weights(x, weighting)
    sigma = 1.0 / np.sqrt(w)
    order = np.argsort(x)
    low_signal, high_signal = float(np.mean(y[order][:2])), float(np.mean(y[order][-2:]))
    if high_signal <= low_signal:
        msg = "the standards' signal does not rise from the lowest to the highest level"
        raise CurveFitError(msg)
    span = high_signal - low_signal
    _check_monotonic(x, y, levels, model)
    positive = levels[levels > 0]
    c0 = float(np.exp(np.mean(np.log(positive)))) if len(positive) else float(np.median(levels))
    a0, d0 = low_signal - 0.05 * span, high_signal + 0.05 * span
    xmax = float(np.max(x))
    lower = [low_signal - 10 * span, 0.2, xmax * 1e-4, low_signal]
    upper = [high_signal, 10.0, xmax * 100, high_signal + 10 * span]
    start = [a0, 1.0, min(max(c0, lower[2] * 1.01), upper[2] * 0.99), d0]
    if five:
        lower.append(0.1)
        upper.append(10.0)
        start.append(1.0)
    func = five_pl if five else four_pl
    try:
        params, _ = curve_fit(
            func, x, y, p0=start, sigma=sigma, bounds=(lower, upper),
            method="trf", maxfev=20000,
        )  # fmt: skip
    except (RuntimeError, ValueError) as exc:
        msg = f"the {model} fit did not converge on these standards ({exc})"
        raise CurveFitError(msg) from exc
    names = ("a", "b", "c", "d", "g") if five else ("a", "b", "c", "d")
    parameters = {n: float(v) for n, v in zip(names, params, strict=True)}
    predicted = func(x, *params)
    if not np.all(np.isfinite(predicted)):
        msg = f"the {model} fit gives non-finite signals"
        raise CurveFitError(msg)
    return FittedCurve(
        model, weighting, parameters, _r_squared(y, predicted, w),
        tuple(map(float, y - predicted)),
    )  # fmt: skip

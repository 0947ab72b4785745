"""Kinetic reads: the rate of change of each well's signal (ΔOD/min).

The rate is the slope of a least-squares line through the readings inside a
time window (by default the whole read), in signal units per minute. Readings
without a value are left out; a well with fewer than ``min_points`` usable
readings in the window has no rate, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .domain import KineticSeries, WellValue

__all__ = ["RateWindow", "rate", "rates"]


@dataclass(frozen=True)
class RateWindow:
    start_s: float = 0.0
    end_s: float | None = None
    min_points: int = 3


def rate(
    times_s: tuple[float, ...], readings: tuple[WellValue, ...], window: RateWindow
) -> WellValue:
    """ΔOD/min by linear regression over the window, or no value with the reason."""
    end = float("inf") if window.end_s is None else window.end_s
    points = [
        (t, r.value)
        for t, r in zip(times_s, readings, strict=True)
        if window.start_s <= t <= end and r.value is not None
    ]
    if len(points) < window.min_points:
        raw = f"{len(points)} readings in window"
        return WellValue(None, raw, "too few readings")
    t = np.fromiter((p[0] for p in points), dtype=float) / 60.0
    y = np.fromiter((p[1] for p in points), dtype=float)
    if np.ptp(t) == 0:
        return WellValue(None, "all readings at one time", "too few readings")
    slope = float(np.polyfit(t, y, 1)[0])
    return WellValue(slope, f"{slope:.6g}")


def rates(series: KineticSeries, window: RateWindow | None = None) -> dict[str, WellValue]:
    chosen = window or RateWindow()
    return {well: rate(series.times_s, values, chosen) for well, values in series.readings.items()}

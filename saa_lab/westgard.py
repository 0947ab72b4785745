"""Westgard multirules across runs, per control material and lot.

Each run contributes one value per control level: the mean of its replicate
wells, back-calculated to U/L. A control's mean and SD come from the assay file
(``[westgard.controls.<name>]``) or are established from its first
``establish_from_runs`` accepted runs; until then the rules are not applied to
it and the run says so. Rules (z = (value - mean) / SD), each looked at only
where the current run takes part:

- 1-2s: one value beyond ±2 SD (warning by default)
- 1-3s: one value beyond ±3 SD
- 2-2s: two consecutive values beyond 2 SD on the same side (one control in this
  and the previous run, or two controls in this run)
- R-4s: in this run one control beyond +2 SD and another beyond −2 SD
- 4-1s: four consecutive values beyond 1 SD on the same side (one control over
  four runs, or two controls over two runs)
- 10-x: ten consecutive values on the same side of the mean (one control over
  ten runs, or two controls over five runs)
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from .assay import WestgardSettings

__all__ = ["ControlStats", "WestgardFinding", "WestgardResult", "evaluate"]


@dataclass(frozen=True)
class ControlStats:
    mean: float
    sd: float
    source: str  # "config" or "established from N runs"


@dataclass(frozen=True)
class WestgardFinding:
    rule: str
    controls: tuple[str, ...]
    severity: str  # warning | rejection
    detail: str

    def __str__(self) -> str:
        return f"Westgard {self.rule} ({self.severity}): {self.detail}"


@dataclass(frozen=True)
class WestgardResult:
    findings: tuple[WestgardFinding, ...] = ()
    z_scores: Mapping[str, float] = field(default_factory=dict)
    stats: Mapping[str, ControlStats] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "z_scores", MappingProxyType(dict(self.z_scores)))
        object.__setattr__(self, "stats", MappingProxyType(dict(self.stats)))

    @property
    def rejections(self) -> tuple[WestgardFinding, ...]:
        return tuple(f for f in self.findings if f.severity == "rejection")

    @property
    def warnings(self) -> tuple[WestgardFinding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")


def _stats(name: str, history: Sequence[float], settings: WestgardSettings) -> ControlStats | None:
    control = settings.control(name)
    if control.mean_u_per_l is not None and control.sd_u_per_l is not None:
        return ControlStats(control.mean_u_per_l, control.sd_u_per_l, "config")
    needed = settings.establish_from_runs
    if len(history) < needed:
        return None
    baseline = history[:needed]
    sd = statistics.stdev(baseline)
    if sd <= 0:
        return None
    return ControlStats(statistics.fmean(baseline), sd, f"established from {needed} runs")


def evaluate(
    current: Mapping[str, float],
    history: Mapping[str, Sequence[float]],
    settings: WestgardSettings,
) -> WestgardResult:
    """Apply the rules to this run's control values, given each control's earlier values.

    ``history[name]`` lists the control's values in earlier accepted runs of the
    same lot, oldest first.
    """
    if not settings.enabled:
        return WestgardResult(notes=("Westgard rules are disabled for this assay",))
    stats: dict[str, ControlStats] = {}
    notes = []
    for name in current:
        found = _stats(name, history.get(name, ()), settings)
        if found is None:
            have = len(history.get(name, ()))
            notes.append(
                f"control {name}: mean/SD not yet established ({have} of "
                f"{settings.establish_from_runs} runs); Westgard rules not applied"
            )
        else:
            stats[name] = found
    z_now = {n: (current[n] - s.mean) / s.sd for n, s in stats.items()}
    z_past = {n: [(v - s.mean) / s.sd for v in history.get(n, ())] for n, s in stats.items()}
    raw: list[tuple[str, tuple[str, ...], str]] = []

    for name, z in z_now.items():
        if abs(z) > 3:
            raw.append(("1-3s", (name,), f"{name} at {z:+.2f} SD"))
        elif abs(z) > 2:
            raw.append(("1-2s", (name,), f"{name} at {z:+.2f} SD"))
        past = z_past[name]
        if abs(z) > 2 and past and abs(past[-1]) > 2 and (past[-1] > 0) == (z > 0):
            raw.append(("2-2s", (name,), f"{name} at {past[-1]:+.2f} and {z:+.2f} SD in two runs"))
        last4 = [*past[-3:], z]
        if len(last4) == 4 and (all(v > 1 for v in last4) or all(v < -1 for v in last4)):
            raw.append(("4-1s", (name,), f"{name} beyond 1 SD on one side in 4 runs"))
        last10 = [*past[-9:], z]
        if len(last10) == 10 and (all(v > 0 for v in last10) or all(v < 0 for v in last10)):
            raw.append(("10-x", (name,), f"{name} on one side of the mean in 10 runs"))

    names = sorted(z_now)
    if len(names) >= 2:
        high = [n for n in names if z_now[n] > 2]
        low = [n for n in names if z_now[n] < -2]
        for side in (high, low):
            if len(side) >= 2:
                raw.append(("2-2s", tuple(side), f"{' and '.join(side)} beyond 2 SD on one side"))
        if high and low:
            detail = f"{high[0]} at {z_now[high[0]]:+.2f} SD, {low[0]} at {z_now[low[0]]:+.2f} SD"
            raw.append(("R-4s", (high[0], low[0]), detail))
        previous = {n: z_past[n][-1] for n in names if z_past[n]}
        if len(previous) == len(names):
            four = [*previous.values(), *(z_now[n] for n in names)]
            if all(v > 1 for v in four) or all(v < -1 for v in four):
                raw.append(("4-1s", tuple(names), "all controls beyond 1 SD on one side in 2 runs"))
        runs = min(len(z_past[n]) for n in names) + 1
        if runs >= 5:
            ten = [v for n in names for v in [*z_past[n][-4:], z_now[n]]]
            if all(v > 0 for v in ten) or all(v < 0 for v in ten):
                raw.append(("10-x", tuple(names), "all controls on one side of the mean in 5 runs"))

    findings = []
    seen = set()
    for rule, controls, detail in raw:
        if (rule, controls) in seen:
            continue
        seen.add((rule, controls))
        if rule in settings.rejection_rules:
            severity = "rejection"
        elif rule in settings.warning_rules:
            severity = "warning"
        else:
            continue
        findings.append(WestgardFinding(rule, controls, severity, detail))
    return WestgardResult(tuple(findings), z_now, stats, tuple(notes))

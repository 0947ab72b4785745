"""Westgard multirules: each rule triggered and not, from histories built with known mean/SD.

A control value is written as mean + z·SD, so the z-score each rule sees is
chosen by the test. Mean and SD come from the assay's config or are established
from the first runs of the history (computed here by hand).
"""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from saa_lab.assay import WestgardControl, WestgardSettings
from saa_lab.westgard import WestgardResult, evaluate

MEANS = {"LOW": (40.0, 2.0), "HIGH": (400.0, 15.0)}
CONFIGURED = WestgardSettings(
    controls={n: WestgardControl(mean_u_per_l=m, sd_u_per_l=sd) for n, (m, sd) in MEANS.items()}
)


def at(name: str, *z: float) -> list[float]:
    mean, sd = MEANS[name]
    return [mean + v * sd for v in z]


def rules_of(
    result: WestgardResult, severity: str | None = None
) -> set[tuple[str, tuple[str, ...]]]:
    return {
        (f.rule, f.controls) for f in result.findings if severity is None or f.severity == severity
    }


def run(low: float | None = None, high: float | None = None,
        low_past: tuple[float, ...] = (), high_past: tuple[float, ...] = (),
        settings: WestgardSettings = CONFIGURED) -> WestgardResult:  # fmt: skip
    current: dict[str, float] = {}
    if low is not None:
        current["LOW"] = at("LOW", low)[0]
    if high is not None:
        current["HIGH"] = at("HIGH", high)[0]
    history = {"LOW": at("LOW", *low_past), "HIGH": at("HIGH", *high_past)}
    return evaluate(current, history, settings)


def test_in_control_run_has_no_findings_and_the_z_scores() -> None:
    result = run(0.5, -1.5)
    assert rules_of(result) == set()
    assert result.z_scores == pytest.approx({"LOW": 0.5, "HIGH": -1.5})
    stats = result.stats
    assert (stats["LOW"].mean, stats["LOW"].sd, stats["LOW"].source) == (40, 2, "config")


@pytest.mark.parametrize(("z", "expected"), [
    (1.9, set()), (-1.99, set()),
    (2.1, {("1-2s", ("LOW",))}), (-2.5, {("1-2s", ("LOW",))}),
    (2.99, {("1-2s", ("LOW",))}),
    (3.01, {("1-3s", ("LOW",))}), (-3.5, {("1-3s", ("LOW",))}),
])  # fmt: skip
def test_1_2s_warns_and_1_3s_rejects(z: float, expected: set[tuple[str, tuple[str, ...]]]) -> None:
    result = run(low=z)
    assert rules_of(result) == expected
    for finding in result.findings:
        assert finding.severity == ("warning" if finding.rule == "1-2s" else "rejection")
    if expected:
        (finding,) = result.findings
        assert f"LOW at {z:+.2f} SD" in str(finding)
        assert str(finding).startswith(f"Westgard {finding.rule} ({finding.severity}): ")


def test_2_2s_one_control_in_two_consecutive_runs() -> None:
    assert ("2-2s", ("LOW",)) in rules_of(run(low=2.4, low_past=(0.1, 2.3)), "rejection")
    assert ("2-2s", ("LOW",)) in rules_of(run(low=-2.2, low_past=(-2.1,)), "rejection")
    # Not: the previous run within 2 SD, opposite sides, or beyond 2 SD two runs ago.
    assert rules_of(run(low=2.4, low_past=(1.9,))) == {("1-2s", ("LOW",))}
    assert rules_of(run(low=2.4, low_past=(-2.3,))) == {("1-2s", ("LOW",))}
    assert rules_of(run(low=2.4, low_past=(2.3, 0.0))) == {("1-2s", ("LOW",))}


def test_2_2s_two_controls_in_this_run() -> None:
    result = run(low=2.2, high=2.3)
    assert ("2-2s", ("HIGH", "LOW")) in rules_of(result, "rejection")
    assert ("2-2s", ("HIGH", "LOW")) in rules_of(run(low=-2.2, high=-2.05), "rejection")
    assert ("2-2s", ("HIGH", "LOW")) not in rules_of(run(low=2.2, high=1.5))


def test_r_4s_one_control_high_the_other_low() -> None:
    result = run(low=2.1, high=-2.2)
    assert ("R-4s", ("LOW", "HIGH")) in rules_of(result, "rejection")
    assert "LOW at +2.10 SD, HIGH at -2.20 SD" in str(
        next(f for f in result.findings if f.rule == "R-4s")
    )
    # A range under 4 SD: only the 1-2s warning.
    assert rules_of(run(low=2.1, high=-1.8)) == {("1-2s", ("LOW",))}


def test_4_1s_one_control_over_four_runs() -> None:
    assert ("4-1s", ("LOW",)) in rules_of(run(low=1.3, low_past=(0.0, 1.2, 1.5, 1.1)), "rejection")
    assert ("4-1s", ("LOW",)) in rules_of(run(low=-1.3, low_past=(-1.2, -1.5, -1.1)))
    # Not: one of the four within 1 SD, one on the other side, or only three runs.
    assert rules_of(run(low=1.3, low_past=(1.2, 0.8, 1.1))) == set()
    assert rules_of(run(low=1.3, low_past=(1.2, -1.5, 1.1))) == set()
    assert rules_of(run(low=1.3, low_past=(1.2, 1.1))) == set()


def test_4_1s_two_controls_over_two_runs() -> None:
    result = run(low=1.4, high=1.1, low_past=(1.2,), high_past=(1.3,))
    assert rules_of(result, "rejection") == {("4-1s", ("HIGH", "LOW"))}
    assert rules_of(run(low=1.4, high=1.1, low_past=(1.2,), high_past=(0.9,))) == set()


def test_10_x_one_control_over_ten_runs() -> None:
    assert ("10-x", ("LOW",)) in rules_of(run(low=0.3, low_past=(0.5,) * 9), "rejection")
    assert ("10-x", ("LOW",)) in rules_of(run(low=-0.3, low_past=(-0.5,) * 9), "rejection")
    assert rules_of(run(low=0.3, low_past=(0.5,) * 8)) == set()  # nine runs only
    assert rules_of(run(low=0.3, low_past=(0.5,) * 4 + (-0.1,) + (0.5,) * 4)) == set()


def test_10_x_two_controls_over_five_runs() -> None:
    result = run(low=0.5, high=0.2, low_past=(0.4,) * 4, high_past=(0.6,) * 4)
    assert rules_of(result, "rejection") == {("10-x", ("HIGH", "LOW"))}
    assert rules_of(run(low=0.5, high=0.2, low_past=(0.4,) * 4,
                        high_past=(0.6, 0.6, -0.1, 0.6))) == set()  # fmt: skip
    assert rules_of(run(low=0.5, high=0.2, low_past=(0.4,) * 3, high_past=(0.6,) * 3)) == set()


def test_severities_follow_the_settings() -> None:
    strict = CONFIGURED.model_copy(update={
        "warning_rules": ("2-2s",), "rejection_rules": ("1-2s", "1-3s", "R-4s", "4-1s"),
    })  # fmt: skip
    assert rules_of(run(low=2.1, settings=strict), "rejection") == {("1-2s", ("LOW",))}
    assert rules_of(run(low=2.2, low_past=(2.1,), settings=strict), "warning") == {
        ("2-2s", ("LOW",))
    }
    # A rule in neither list is not applied.
    assert rules_of(run(low=0.3, low_past=(0.5,) * 9, settings=strict)) == set()


def test_unknown_rule_names_are_refused_with_a_suggestion() -> None:
    with pytest.raises(ValidationError, match=r"unknown Westgard rule '2-2S' \(did you mean"):
        WestgardSettings(rejection_rules=("2-2S",))


def test_disabled_rules_say_so_and_find_nothing() -> None:
    settings = CONFIGURED.model_copy(update={"enabled": False})
    result = run(low=5.0, high=-5.0, settings=settings)
    assert rules_of(result) == set()
    assert result.notes == ("Westgard rules are disabled for this assay",)


BASELINE = [38.0, 42.0] * 10  # mean 40, SD √(20·2²/19)


def test_mean_and_sd_established_from_the_first_runs() -> None:
    settings = WestgardSettings(establish_from_runs=20)
    mean = sum(BASELINE) / 20
    sd = math.sqrt(sum((v - mean) ** 2 for v in BASELINE) / 19)
    assert (mean, sd) == pytest.approx((40.0, math.sqrt(80 / 19)))
    # Later runs (not part of the baseline) do not move the mean/SD.
    history = [*BASELINE, 60.0, 61.0]
    value = mean + 3.2 * sd
    result = evaluate({"LOW": value}, {"LOW": history}, settings)
    stats = result.stats["LOW"]
    assert (stats.mean, stats.sd) == pytest.approx((mean, sd))
    assert stats.source == "established from 20 runs"
    assert result.z_scores["LOW"] == pytest.approx(3.2)
    # The established SD is used for the history too: 61 U/L was +10.2 SD, so 2-2s as well.
    assert (61 - mean) / sd == pytest.approx(10.24, abs=0.01)
    assert rules_of(result) == {("1-3s", ("LOW",)), ("2-2s", ("LOW",))}
    assert rules_of(evaluate({"LOW": mean + 2.1 * sd}, {"LOW": history}, settings)) == {
        ("1-2s", ("LOW",)), ("2-2s", ("LOW",)),
    }  # fmt: skip


def test_configured_mean_and_sd_win_over_the_history() -> None:
    result = evaluate({"LOW": 46.5}, {"LOW": BASELINE}, CONFIGURED)
    assert result.stats["LOW"].source == "config"
    assert result.z_scores["LOW"] == pytest.approx((46.5 - 40) / 2)
    assert rules_of(result) == {("1-3s", ("LOW",))}


def test_not_yet_established_is_a_note_and_no_rule_is_applied() -> None:
    settings = WestgardSettings(establish_from_runs=20)
    result = evaluate({"LOW": 100.0, "HIGH": 400.0}, {"LOW": BASELINE[:5]}, settings)
    assert rules_of(result) == set()
    assert result.z_scores == {}
    assert result.notes == (
        "control LOW: mean/SD not yet established (5 of 20 runs); Westgard rules not applied",
        "control HIGH: mean/SD not yet established (0 of 20 runs); Westgard rules not applied",
    )
    # A baseline without spread cannot give an SD: still not established.
    flat = evaluate({"LOW": 45.0}, {"LOW": [40.0] * 20}, settings)
    assert rules_of(flat) == set() and "not yet established" in flat.notes[0]


def test_one_control_established_the_other_not() -> None:
    settings = WestgardSettings(
        establish_from_runs=20, controls={"HIGH": WestgardControl(mean_u_per_l=400, sd_u_per_l=15)}
    )
    result = evaluate({"LOW": 100.0, "HIGH": 460.0}, {}, settings)
    assert rules_of(result) == {("1-3s", ("HIGH",))}
    assert [n.split(":")[0] for n in result.notes] == ["control LOW"]


def test_configured_control_needs_mean_and_sd_together() -> None:
    with pytest.raises(ValidationError, match="give both mean_u_per_l and sd_u_per_l"):
        WestgardControl(mean_u_per_l=40)

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from saa_lab.calibrate import SampleResult
from saa_lab.interpret import Flag, InterpretationRules, interpret
from saa_lab.orders import OrderContext

RULES = InterpretationRules()


def sample(activity: float | None, comparator: str = "=", status: str = "quantified",
           dilution: float = 1.0, notes: tuple[str, ...] = ()) -> SampleResult:  # fmt: skip
    return SampleResult("A1", ("A4", "B4"), dilution, (), activity, None, activity, comparator,
                        status, notes)  # fmt: skip


@pytest.mark.parametrize(
    ("result", "flag", "hl7"),
    [
        (sample(250), Flag.THERAPEUTIC, "N"),
        (sample(100), Flag.THERAPEUTIC, "N"),
        (sample(99.9), Flag.BELOW_THRESHOLD, "L"),
        (sample(5, "<", "below-lloq"), Flag.BELOW_LLOQ, "L"),
        (sample(1000, ">", "above-uloq"), Flag.ABOVE_ULOQ_RERUN, ">"),
        (sample(None, status="invalid", notes=("no readable replicate well",)), Flag.INVALID, ""),
    ],
)
def test_flags(result: SampleResult, flag: str, hl7: str) -> None:
    got = interpret(result, None, RULES)
    assert (got.flag, got.abnormal_flag) == (flag, hl7)
    assert got.rule_id.startswith("threshold-v1:")


def test_threshold_is_configurable() -> None:
    assert interpret(sample(150), None, InterpretationRules(200)).flag == Flag.BELOW_THRESHOLD


def test_comment_states_value_units_threshold_and_missing_order() -> None:
    comment = interpret(sample(60), None, RULES).comment
    assert "60 U/L (0.06 IU/mL) is below the threshold of 100 U/L (0.1 IU/mL)" in comment
    assert "No order details" in comment


def test_comment_states_time_since_dose() -> None:
    zone = ZoneInfo("Europe/Berlin")
    dose = datetime(2026, 11, 13, 9, 0, tzinfo=zone)
    order = OrderContext("A1", formulation="peg-asparaginase", dose_time=dose,
                         collection_time=dose + timedelta(days=7))  # fmt: skip
    comment = interpret(sample(60), order, RULES).comment
    assert "Collected 168 h (7.0 days) after the PEG-asparaginase dose." in comment
    assert "No order details" not in comment


def test_below_lloq_at_high_dilution_cannot_be_compared_with_the_threshold() -> None:
    got = interpret(sample(200, "<", "below-lloq", dilution=20), None, RULES)
    assert got.flag == Flag.BELOW_LLOQ
    assert got.abnormal_flag == "<"
    assert "re-assay at a lower dilution" in got.comment


def test_invalid_result_says_why_and_that_it_is_repeated() -> None:
    got = interpret(sample(None, status="invalid", notes=("replicate CV 35.1 % exceeds",)),
                    None, RULES)  # fmt: skip
    assert got.comment.startswith("No valid result: replicate CV 35.1 % exceeds")
    assert "re-assayed" in got.comment


def test_the_flag_follows_the_reported_number_at_the_threshold() -> None:
    from saa_lab.pipeline import _as_reported

    reported = _as_reported(sample(99.96))
    assert reported.activity_u_per_l == 100.0  # reported as "100" (one decimal at >= 10 U/L)
    got = interpret(reported, None, RULES)
    assert got.flag == Flag.THERAPEUTIC
    assert "100 U/L (0.1 IU/mL) is at or above the threshold" in got.comment
    assert interpret(_as_reported(sample(99.94)), None, RULES).flag == Flag.BELOW_THRESHOLD

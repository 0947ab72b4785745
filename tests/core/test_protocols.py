"""Protocol rule sets: loading, validation, versioning, and what each rule means.

The scenario table is written from the domain brief (§2.2-2.4) and the issue, not from
the code's output: for each formulation × sampling time × value × patient history ×
protocol × infusion reaction it states the flag, the HL7 abnormal flag and the phrases
the clinic must read.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from helpers import assay_definition

from saa_lab.assay import AssayDefinition
from saa_lab.calibrate import SampleResult
from saa_lab.config import AppConfig
from saa_lab.errors import ConfigError
from saa_lab.interpret import Flag, InterpretationRules, interpret
from saa_lab.orders import OrderContext
from saa_lab.protocols import (
    LoadedProtocol,
    PriorResult,
    ProtocolCatalog,
    load_protocol,
    load_protocols,
)

ZONE = ZoneInfo("Europe/Berlin")
DOSE = datetime(2026, 3, 2, 9, 0, tzinfo=ZONE)
DIRS = AppConfig().search_dirs("protocols")
CATALOG = load_protocols(DIRS)
RULES = InterpretationRules()
PACKAGED = DIRS[-1]
SEVEN = (
    "consensus-2016",
    "aieop-bfm-2009",
    "dcog-all11",
    "cog-erwinia",
    "nopho-all2008",
    "ukall",
    "dfci-11-001",
)

PEG, CAL, ERW, REC, NAT = (
    "peg-asparaginase",
    "calaspargase-pegol",
    "erwinia",
    "recombinant-erwinia",
    "native-e-coli",
)


def result(value: float | None, comparator: str = "=", *, dilution: float = 1.0,
           status: str | None = None) -> SampleResult:  # fmt: skip
    if status is None:
        status = {"=": "quantified", "<": "below-lloq", ">": "above-uloq"}[comparator]
    return SampleResult("S1", ("A4", "B4"), dilution, (), value, None, value, comparator, status)


@dataclass(frozen=True)
class Prior:
    """An earlier sample: collected ``days_before`` the current one, ``hours`` after its dose."""

    days_before: float
    hours: float
    value: float
    comparator: str = "="
    formulation: str = PEG


@dataclass(frozen=True)
class Reaction:
    grade: int | None = None
    hours_after_dose: float | None = 1.0  # None: reaction time not given


@dataclass(frozen=True)
class Case:
    id: str
    formulation: str | None
    hours: float | None  # collection after the dose; None: no dose time on the order
    value: float
    comparator: str
    flag: str
    hl7: str
    phrases: tuple[str, ...] = ()  # in the comment; "rec:" prefix = in the recommendation
    protocol: str | None = None  # as the order writes it
    history: tuple[Prior, ...] = ()
    reaction: Reaction | None = None
    absent: tuple[str, ...] = ()  # must not appear in the comment
    used: str = "consensus-2016"  # the protocol that must be recorded


REPEAT = "rec:repeat sample recommended"
NO_SI = "without an inactivation assessment"

# fmt: off
CASES = [
    # --- 2016 consensus (default): PEG day 7 <0.1 IU/mL, day 14 < LLQ ----------------------
    Case("peg-d7-therapeutic", PEG, 168, 250, "=", Flag.THERAPEUTIC, "N",
         ("at or above the threshold of 100 U/L", "day 7")),
    Case("peg-d7-low-first", PEG, 168, 60, "=", Flag.POSSIBLE_SILENT_INACTIVATION, "L",
         ("below the threshold of 100 U/L", "possible silent inactivation",
          "repeat sample recommended", "no earlier sample", "rec:day 14"),
         absent=("confirmed",)),
    Case("peg-d7-undetectable", PEG, 170, 5, "<", Flag.POSSIBLE_SILENT_INACTIVATION, "L",
         ("below the lower limit of quantification", "<5 U/L", REPEAT)),
    Case("peg-d7-boundary-100", PEG, 168, 100, "=", Flag.THERAPEUTIC, "N"),
    Case("peg-d7-low-after-low-d7", PEG, 168, 60, "=", Flag.SILENT_INACTIVATION_CONFIRMED, "L",
         ("was also low", "confirmed by two consecutive low samples", "rec:switch"),
         history=(Prior(14, 168, 40),)),
    Case("peg-d7-low-after-therapeutic", PEG, 168, 60, "=", Flag.POSSIBLE_SILENT_INACTIVATION,
         "L", ("was not low", REPEAT), history=(Prior(14, 168, 300),), absent=("confirmed",)),
    Case("peg-d14-undetectable-after-low-d7", PEG, 336, 5, "<",
         Flag.SILENT_INACTIVATION_CONFIRMED, "L", ("day 14", "was also low"),
         history=(Prior(7, 168, 60),)),
    Case("peg-d14-undetectable-first", PEG, 336, 5, "<", Flag.POSSIBLE_SILENT_INACTIVATION, "L",
         ("day 14", REPEAT)),
    Case("peg-d14-detectable-low", PEG, 336, 60, "=", Flag.BELOW_THRESHOLD, "L",
         ("not silent inactivation",), absent=("possible silent inactivation",)),
    Case("peg-d14-low-after-low-d7-still-detectable", PEG, 336, 60, "=", Flag.BELOW_THRESHOLD,
         "L", (), history=(Prior(7, 168, 40),), absent=("confirmed",)),
    Case("peg-d10-outside", PEG, 240, 60, "=", Flag.OUTSIDE_SAMPLING_WINDOW, "",
         ("outside the sampling times", NO_SI, "rec:day 7"),
         absent=("silent inactivation", "below the threshold")),
    Case("peg-d3-outside", PEG, 72, 30, "=", Flag.OUTSIDE_SAMPLING_WINDOW, "", (NO_SI,)),
    Case("peg-low-prior-other-drug", PEG, 168, 60, "=", Flag.POSSIBLE_SILENT_INACTIVATION, "L",
         ("no earlier sample",), history=(Prior(5, 48, 5, "<", ERW),)),
    Case("peg-low-prior-17-weeks-apart", PEG, 168, 60, "=", Flag.POSSIBLE_SILENT_INACTIVATION,
         "L", ("not counted as confirmation", REPEAT), history=(Prior(140, 168, 40),)),
    Case("peg-low-prior-same-specimen-time", PEG, 168, 60, "=", Flag.POSSIBLE_SILENT_INACTIVATION,
         "L", ("no earlier sample",), history=(Prior(0, 168, 55),)),
    Case("calaspargase-d7-low", CAL, 168, 60, "=", Flag.POSSIBLE_SILENT_INACTIVATION, "L"),
    # Erwinia: 48 h < LLQ = concern for SI; low 72-h trough = dosing interval, not SI
    Case("erwinia-48h-undetectable", ERW, 48, 5, "<", Flag.POSSIBLE_SILENT_INACTIVATION, "L",
         ("48 h", REPEAT)),
    Case("erwinia-48h-detectable-low", ERW, 48, 60, "=", Flag.BELOW_THRESHOLD, "L",
         ("not silent inactivation",)),
    Case("erwinia-72h-low", ERW, 72, 60, "=", Flag.BELOW_THRESHOLD, "L",
         ("more frequent dosing",), absent=("possible silent inactivation",)),
    Case("erwinia-72h-undetectable", ERW, 72, 5, "<", Flag.BELOW_THRESHOLD, "L",
         ("more frequent dosing",)),
    Case("erwinia-48h-therapeutic", ERW, 46, 150, "=", Flag.THERAPEUTIC, "N"),
    Case("rylaze-48h-undetectable", REC, 50, 5, "<", Flag.POSSIBLE_SILENT_INACTIVATION, "L"),
    Case("erwinia-24h-outside", ERW, 24, 60, "=", Flag.OUTSIDE_SAMPLING_WINDOW, ""),
    Case("native-72h-low", NAT, 72, 50, "=", Flag.POSSIBLE_SILENT_INACTIVATION, "L", (REPEAT,)),
    Case("native-72h-therapeutic", NAT, 72, 200, "=", Flag.THERAPEUTIC, "N"),
    Case("native-24h-outside", NAT, 24, 50, "=", Flag.OUTSIDE_SAMPLING_WINDOW, ""),
    # What is not known is not claimed
    Case("no-dose-time", PEG, None, 60, "=", Flag.BELOW_THRESHOLD, "L",
         ("no dose time", "threshold only", NO_SI), absent=("silent inactivation",)),
    Case("no-formulation", None, 168, 60, "=", Flag.BELOW_THRESHOLD, "L",
         ("no formulation", "threshold only"), absent=("silent inactivation",)),
    Case("collected-before-dose", PEG, -2, 60, "=", Flag.OUTSIDE_SAMPLING_WINDOW, "",
         ("before the dose time",)),
    Case("unknown-protocol-uses-default", PEG, 168, 60, "=", Flag.POSSIBLE_SILENT_INACTIVATION,
         "L", ("'XYZ-2030' named on the order is not configured", "consensus-2016"),
         protocol="XYZ-2030"),
    # Infusion reactions (§2.4)
    Case("reaction-activity-present", PEG, 168, 300, "=", Flag.REACTION_ACTIVITY_PRESENT, "N",
         ("not consistent with neutralising hypersensitivity",), reaction=Reaction(1)),
    Case("reaction-activity-low", PEG, 168, 5, "<", Flag.BELOW_LLOQ, "L",
         ("consistent with inactivation", "confirm with a repeat sample"), reaction=Reaction(1),
         absent=("silent",)),
    Case("reaction-grade3-present", PEG, 168, 300, "=", Flag.REACTION_ACTIVITY_PRESENT, "N",
         ("grade 3", "grade ≥2"), reaction=Reaction(3)),
    Case("reaction-after-sample", PEG, 168, 60, "=", Flag.POSSIBLE_SILENT_INACTIVATION, "L",
         ("occurred after this sample was collected",), reaction=Reaction(1, 200)),
    Case("reaction-no-dose-time-present", PEG, None, 400, "=", Flag.REACTION_ACTIVITY_PRESENT,
         "N", ("not consistent with neutralising",), reaction=Reaction(None, None)),
    Case("reaction-low-outside-window", PEG, 240, 40, "=", Flag.OUTSIDE_SAMPLING_WINDOW, "",
         (NO_SI,), reaction=Reaction(1)),
    # --- AIEOP-BFM ALL 2009: <100 U/L within 8 days, < LLOQ within 15 days ------------------
    Case("aieop-d3-low", PEG, 72, 60, "=", Flag.POSSIBLE_SILENT_INACTIVATION, "L",
         ("within 8 days", REPEAT), protocol="AIEOP-BFM ALL 2009", used="aieop-bfm-2009"),
    Case("aieop-d7-confirmed", PEG, 168, 5, "<", Flag.SILENT_INACTIVATION_CONFIRMED, "L",
         ("was also low",), protocol="aieop-bfm-2009", history=(Prior(14, 170, 50),),
         used="aieop-bfm-2009"),
    Case("aieop-d12-undetectable", PEG, 288, 5, "<", Flag.POSSIBLE_SILENT_INACTIVATION, "L",
         ("within 15 days",), protocol="AIEOP BFM ALL 2009", used="aieop-bfm-2009"),
    Case("aieop-d12-detectable-low", PEG, 288, 60, "=", Flag.BELOW_THRESHOLD, "L",
         protocol="AIEOP-BFM ALL 2009", used="aieop-bfm-2009"),
    Case("aieop-d20-outside", PEG, 480, 60, "=", Flag.OUTSIDE_SAMPLING_WINDOW, "",
         protocol="AIEOP-BFM ALL 2009", used="aieop-bfm-2009"),
    Case("aieop-erwinia-no-rule", ERW, 48, 60, "=", Flag.OUTSIDE_SAMPLING_WINDOW, "",
         ("has no sampling time", NO_SI), protocol="AIEOP-BFM ALL 2009", used="aieop-bfm-2009"),
    Case("aieop-d7-therapeutic", PEG, 168, 300, "=", Flag.THERAPEUTIC, "N",
         protocol="aieop-bfm-2009", used="aieop-bfm-2009"),
    # --- DCOG ALL-11: PEG trough band 100-250 IU/L; Erwinia 72-h trough >= 100 -------------
    Case("dcog-trough-in-band", PEG, 336, 180, "=", Flag.THERAPEUTIC, "N",
         ("within the target band of 100–250 U/L",), protocol="DCOG ALL-11", used="dcog-all11"),
    Case("dcog-trough-band-low-edge", PEG, 336, 100, "=", Flag.THERAPEUTIC, "N",
         protocol="dcog all-11", used="dcog-all11"),
    Case("dcog-trough-band-high-edge", PEG, 336, 250, "=", Flag.THERAPEUTIC, "N",
         protocol="DCOG-ALL11", used="dcog-all11"),
    Case("dcog-trough-below-band", PEG, 336, 80, "=", Flag.TARGET_BAND_BELOW, "L",
         ("100–250", "rec:increase"), protocol="DCOG ALL-11", used="dcog-all11"),
    Case("dcog-trough-above-band", PEG, 336, 400, "=", Flag.TARGET_BAND_ABOVE, "H",
         ("100–250", "rec:decrease"), protocol="DCOG ALL-11", used="dcog-all11"),
    Case("dcog-trough-undetectable", PEG, 336, 10, "<", Flag.POSSIBLE_SILENT_INACTIVATION, "L",
         (REPEAT,), protocol="DCOG ALL-11", used="dcog-all11"),
    Case("dcog-erwinia-72h-low", ERW, 72, 80, "=", Flag.BELOW_THRESHOLD, "L",
         protocol="DCOG ALL-11", used="dcog-all11"),
    Case("dcog-erwinia-72h-ok", ERW, 72, 150, "=", Flag.THERAPEUTIC, "N", protocol="DCOG ALL-11",
         used="dcog-all11"),
    Case("dcog-peg-day7-outside", PEG, 168, 60, "=", Flag.OUTSIDE_SAMPLING_WINDOW, "",
         protocol="DCOG ALL-11", used="dcog-all11"),
    # --- COG Erwinia: 48 h and 72 h >= 0.1 IU/mL ---------------------------------------------
    Case("cog-48h-ok", ERW, 48, 120, "=", Flag.THERAPEUTIC, "N", protocol="COG AALL07P2",
         used="cog-erwinia"),
    Case("cog-72h-low", ERW, 72, 90, "=", Flag.BELOW_THRESHOLD, "L", ("0.1 IU/mL",),
         protocol="cog-erwinia", used="cog-erwinia"),
    Case("cog-rylaze-72h-at-threshold", REC, 72, 100, "=", Flag.THERAPEUTIC, "N",
         protocol="COG Erwinia", used="cog-erwinia"),
    Case("cog-48h-undetectable", ERW, 48, 5, "<", Flag.POSSIBLE_SILENT_INACTIVATION, "L",
         protocol="COG AALL07P2", used="cog-erwinia"),
    Case("cog-peg-no-rule", PEG, 168, 60, "=", Flag.OUTSIDE_SAMPLING_WINDOW, "",
         ("has no sampling time",), protocol="COG AALL07P2", used="cog-erwinia"),
    # --- NOPHO ALL2008 and UKALL: day 14 ± 2 -------------------------------------------------
    Case("nopho-d12-low", PEG, 288, 50, "=", Flag.BELOW_THRESHOLD, "L", protocol="NOPHO ALL2008",
         used="nopho-all2008"),
    Case("nopho-d16-undetectable", PEG, 384, 5, "<", Flag.POSSIBLE_SILENT_INACTIVATION, "L",
         protocol="NOPHO ALL2008", used="nopho-all2008"),
    Case("nopho-d17-outside", PEG, 408, 50, "=", Flag.OUTSIDE_SAMPLING_WINDOW, "",
         protocol="NOPHO ALL2008", used="nopho-all2008"),
    Case("nopho-d14-ok", PEG, 336, 150, "=", Flag.THERAPEUTIC, "N", protocol="nopho-all2008",
         used="nopho-all2008"),
    Case("ukall-d14-subthreshold", PEG, 336, 80, "=", Flag.BELOW_THRESHOLD, "L",
         ("subthreshold",), protocol="UKALL 2011", used="ukall"),
    Case("ukall-d11-outside", PEG, 264, 80, "=", Flag.OUTSIDE_SAMPLING_WINDOW, "",
         protocol="UKALL 2003", used="ukall"),
    # --- DFCI 11-001: SI = two consecutive non-detectable pre-dose levels -------------------
    Case("dfci-predose-undetectable-first", PEG, 336, 5, "<", Flag.POSSIBLE_SILENT_INACTIVATION,
         "L", (REPEAT,), protocol="DFCI 11-001", used="dfci-11-001"),
    Case("dfci-predose-two-undetectable", PEG, 336, 5, "<", Flag.SILENT_INACTIVATION_CONFIRMED,
         "L", ("two consecutive non-detectable",), protocol="DFCI 11-001",
         history=(Prior(14, 336, 5, "<"),), used="dfci-11-001"),
    Case("dfci-predose-after-detectable-low", PEG, 336, 5, "<", Flag.POSSIBLE_SILENT_INACTIVATION,
         "L", ("was not low",), protocol="DFCI 11-001", history=(Prior(14, 336, 60),),
         used="dfci-11-001"),
    Case("dfci-not-consecutive", PEG, 336, 5, "<", Flag.POSSIBLE_SILENT_INACTIVATION, "L",
         ("was not low",), protocol="DFCI 11-001",
         history=(Prior(28, 336, 5, "<"), Prior(14, 336, 150)), used="dfci-11-001"),
    Case("dfci-induction-sample-does-not-qualify", PEG, 336, 5, "<",
         Flag.POSSIBLE_SILENT_INACTIVATION, "L", ("no earlier sample",), protocol="DFCI 11-001",
         history=(Prior(3, 264, 5, "<"),), used="dfci-11-001"),
    Case("dfci-predose-detectable-low", PEG, 336, 60, "=", Flag.BELOW_THRESHOLD, "L",
         protocol="DFCI 11-001", used="dfci-11-001"),
    Case("dfci-day4-undetectable-no-si", PEG, 96, 5, "<", Flag.BELOW_THRESHOLD, "L",
         ("pre-dose",), protocol="DFCI 11-001", used="dfci-11-001",
         absent=("possible silent inactivation",)),
    Case("dfci-calaspargase-two-undetectable", CAL, 504, 5, "<",
         Flag.SILENT_INACTIVATION_CONFIRMED, "L", (), protocol="DFCI 11-001",
         history=(Prior(21, 504, 5, "<", CAL),), used="dfci-11-001"),
]
# fmt: on


def _order(case: Case) -> OrderContext:
    dose = DOSE if case.hours is not None else None
    collection = DOSE + timedelta(hours=case.hours if case.hours is not None else 168)
    reaction_time = None
    if case.reaction and case.reaction.hours_after_dose is not None:
        reaction_time = DOSE + timedelta(hours=case.reaction.hours_after_dose)
    return OrderContext(
        "S1",
        patient_id="P1",
        formulation=case.formulation,
        dose_time=dose,
        collection_time=collection,
        protocol=case.protocol,
        reaction=True if case.reaction else None,
        reaction_time=reaction_time,
        reaction_grade=case.reaction.grade if case.reaction else None,
    )


def _history(case: Case, order: OrderContext) -> list[PriorResult]:
    assert order.collection_time is not None
    out = []
    for prior in case.history:
        collected = order.collection_time - timedelta(days=prior.days_before)
        out.append(
            PriorResult(
                activity_u_per_l=prior.value,
                comparator=prior.comparator,
                flag="",
                collection_time=collected,
                dose_time=collected - timedelta(hours=prior.hours),
                formulation=prior.formulation,
                protocol=case.used,
            )
        )
    return out


def test_the_table_is_broad_enough() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    assert {c.used for c in CASES} == set(SEVEN)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_scenario(case: Case) -> None:
    order = _order(case)
    protocol = CATALOG.select(case.protocol)
    got = interpret(result(case.value, case.comparator), order, RULES, protocol=protocol,
                    history=_history(case, order))  # fmt: skip
    assert (got.flag, got.abnormal_flag) == (case.flag, case.hl7), got.comment
    assert got.protocol == case.used
    assert got.protocol_version == protocol.version
    assert got.rule_id
    comment, recommendation = got.comment.lower(), got.recommendation.lower()
    for phrase in case.phrases:
        where, text = (
            (recommendation, phrase[4:]) if phrase.startswith("rec:") else (comment, phrase)
        )
        assert text.lower() in where, f"{phrase!r} not in {got.comment!r} / {got.recommendation!r}"
    for phrase in case.absent:
        assert phrase.lower() not in comment, got.comment


def test_fired_rule_id_is_recorded() -> None:
    order = _order(CASES[1])
    got = interpret(result(60), order, RULES, protocol=CATALOG.default)
    assert got.rule_id == "peg-day7-below-threshold"
    assert got.hours_since_dose == 168


def test_terminal_statuses_keep_their_flags_under_a_protocol() -> None:
    order = _order(CASES[0])
    default = CATALOG.default
    above = interpret(result(1000, ">"), order, RULES, protocol=default)
    assert (above.flag, above.abnormal_flag) == (Flag.ABOVE_ULOQ_RERUN, ">")
    reportable = interpret(result(20000, ">", status="above-reportable"), order, RULES,
                           protocol=default)  # fmt: skip
    assert (reportable.flag, reportable.abnormal_flag) == (Flag.ABOVE_REPORTABLE, ">")
    invalid = interpret(result(None, status="invalid"), order, RULES, protocol=default)
    assert (invalid.flag, invalid.abnormal_flag) == (Flag.INVALID, "")
    assert invalid.protocol == "consensus-2016"
    # < LLOQ only at 1:20 (bound above the threshold): no inactivation claim, re-assay
    diluted = interpret(result(200, "<", dilution=20), order, RULES, protocol=default)
    assert (diluted.flag, diluted.abnormal_flag) == (Flag.BELOW_LLOQ, "<")
    assert "re-assay at a lower dilution" in diluted.comment
    assert "silent" not in diluted.comment.lower()


# --- method awareness: an E. coli-calibrated kit over-reads PEG ------------------------------


def _maat(enabled: bool) -> AssayDefinition:
    maat = assay_definition("maat")
    return maat.model_copy(
        update={"peg_bias": maat.peg_bias.model_copy(update={"enabled": enabled})}
    )


def test_maat_peg_result_states_that_the_bias_factor_was_applied() -> None:
    got = interpret(result(60), _order(CASES[1]), RULES, protocol=CATALOG.default,
                    assay=_maat(True), bias_factor=1.23)  # fmt: skip
    assert "native E. coli asparaginase" in got.comment
    assert "bias factor 1.23 was applied" in got.comment


def test_maat_peg_result_without_correction_mentions_the_method_bias() -> None:
    got = interpret(result(60), _order(CASES[1]), RULES, protocol=CATALOG.default,
                    assay=_maat(False))  # fmt: skip
    assert "over-reads PEG-asparaginase" in got.comment
    assert "+23 %" in got.comment and "+42 %" in got.comment
    assert "no bias correction was applied" in got.comment


def test_method_note_only_for_an_e_coli_calibrator_and_a_peg_product() -> None:
    aha = assay_definition("aha-indooxine")
    peg = interpret(result(60), _order(CASES[1]), RULES, protocol=CATALOG.default, assay=aha)
    assert "bias" not in peg.comment
    erwinia = _order(CASES[16])
    got = interpret(result(60), erwinia, RULES, protocol=CATALOG.default, assay=_maat(False))
    assert "bias" not in got.comment
    # the threshold-only first cut says it too
    legacy = interpret(result(60), _order(CASES[1]), RULES, assay=_maat(False))
    assert "no bias correction was applied" in legacy.comment


# --- loading, selection, versioning ----------------------------------------------------------


def test_all_seven_protocols_load_with_a_version() -> None:
    names = {p.name for p in CATALOG.protocols}
    assert set(SEVEN) <= names
    for protocol in CATALOG.protocols:
        assert re.fullmatch(r"[0-9a-f]{12}", protocol.version)
    assert CATALOG.default.name == "consensus-2016"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("AIEOP-BFM ALL 2009", "aieop-bfm-2009"),
        ("aieop-bfm-2009", "aieop-bfm-2009"),
        ("DCOG ALL-11", "dcog-all11"),
        ("UKALL2011", "ukall"),
        ("dfci 11-001", "dfci-11-001"),
        (None, "consensus-2016"),
        ("", "consensus-2016"),
        ("Interfant-99", "consensus-2016"),
    ],
)
def test_selection_by_name_or_alias_else_the_default(text: str | None, name: str) -> None:
    assert CATALOG.select(text).name == name


def test_version_is_the_hash_of_the_file(tmp_path: Path) -> None:
    own = tmp_path / "protocols"
    own.mkdir()
    shutil.copyfile(PACKAGED / "ukall.toml", own / "ukall.toml")
    same = load_protocol("ukall", [own])
    assert same.version == load_protocol("ukall", [PACKAGED]).version
    (own / "ukall.toml").write_text((own / "ukall.toml").read_text() + "\n# edited\n")
    edited = load_protocol("ukall", [own, PACKAGED])
    assert edited.version != same.version
    assert edited.path == own / "ukall.toml"  # the lab's own file wins
    catalog = load_protocols([own, PACKAGED])
    assert catalog.select("UKALL 2011").version == edited.version


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


RULE = """
[[rules]]
id = "r1"
timepoint = "day 7"
formulations = ["peg"]
hours_from = 144
hours_to = 192
comparison = "below-threshold"
flag = "possible-silent-inactivation"
comment = "low"
"""


def test_a_minimal_file_loads_and_aliases_formulations(tmp_path: Path) -> None:
    loaded = load_protocol("p", [_write_dir(tmp_path, RULE)])
    assert loaded.definition.rules[0].formulations == ("peg-asparaginase",)
    assert loaded.definition.threshold_u_per_l == 100


def _write_dir(tmp_path: Path, body: str, name: str = "p") -> Path:
    folder = tmp_path / "protocols"
    _write(folder, name, f'name = "{name}"\ntitle = "P"\n' + body)
    return folder


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            RULE.replace("comparison =", "comparsion ="),
            "unknown setting 'rules[0] (id 'r1').comparsion' (did you mean 'comparison'?)",
        ),
        (
            RULE.replace('"below-threshold"', '"below-trheshold"'),
            "rules[0] (id 'r1').comparison: Input should be",
        ),
        (
            RULE.replace("hours_to = 192", "hours_to = 100"),
            "rules[0] (id 'r1'): hours_from (144) must be below hours_to (100)",
        ),
        (
            RULE.replace('"below-threshold"', '"below-band"'),
            "comparison 'below-band' needs band_u_per_l",
        ),
        (
            RULE.replace('["peg"]', '["pegg-asparaginase"]'),
            "unknown formulation 'pegg-asparaginase' (did you mean 'peg-asparaginase'?)",
        ),
        (
            RULE.replace('"possible-silent-inactivation"', '"target-band-below"'),
            "does not fit comparison",
        ),
        (
            RULE.replace('"possible-silent-inactivation"', '"silent-inactivation-confirmed"'),
            "rules[0] (id 'r1').flag: Input should be",
        ),
        (RULE + RULE, "rule id 'r1' is used twice"),
        ("threshold_u_per_l = 0\n" + RULE, "threshold_u_per_l: Input should be greater than 0"),
        (
            "[confirmation]\nmax_day_between_doses = 3\n" + RULE,
            "unknown setting 'confirmation.max_day_between_doses' (did you mean "
            "'max_days_between_doses'?)",
        ),
        (
            "[reaction]\ngrade = 3\n" + RULE,
            "unknown setting 'reaction.grade'; known here: activity_low_comment",
        ),
        ("", "rules: Field required"),
    ],
)
def test_validation_errors_name_the_file_and_the_key(
    tmp_path: Path, body: str, message: str
) -> None:
    folder = _write_dir(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_protocol("p", [folder])
    text = str(info.value)
    assert text.startswith(str(folder / "p.toml") + ": ")
    assert message in text


def test_name_must_match_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "protocols"
    _write(folder, "mine", 'name = "other"\ntitle = "P"\n' + RULE)
    with pytest.raises(ConfigError, match=r"mine.toml: name: name 'other' must match"):
        load_protocol("mine", [folder])


def test_not_toml_and_unknown_name(tmp_path: Path) -> None:
    folder = tmp_path / "protocols"
    _write(folder, "broken", "name = \n")
    with pytest.raises(ConfigError, match=r"broken.toml: not valid TOML"):
        load_protocol("broken", [folder])
    with pytest.raises(ConfigError, match=r"no protocol named 'ukal' \(did you mean 'ukall'\?\)"):
        load_protocol("ukal", [PACKAGED])


def test_ambiguous_alias_and_missing_default_are_errors(tmp_path: Path) -> None:
    folder = _write_dir(tmp_path, 'aliases = ["UKALL 2011"]\n' + RULE)
    with pytest.raises(ConfigError, match=r"aliases: alias 'UKALL 2011' also names"):
        load_protocols([folder, PACKAGED])
    with pytest.raises(ConfigError, match=r"default protocol 'consensus-2016' not found"):
        load_protocols([_write_dir(tmp_path, RULE, name="q")])


def test_catalog_and_loaded_protocol_types() -> None:
    assert isinstance(CATALOG, ProtocolCatalog)
    assert all(isinstance(p, LoadedProtocol) for p in CATALOG.protocols)
    # every shipped rule cites its source in the file, and the consensus says UNCONFIRMED
    for name in SEVEN:
        text = (PACKAGED / f"{name}.toml").read_text(encoding="utf-8")
        assert text.startswith("#")
    assert "UNCONFIRMED" in (PACKAGED / "consensus-2016.toml").read_text(encoding="utf-8")

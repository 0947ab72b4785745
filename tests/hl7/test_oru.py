"""ORU^R01 builder: hl7apy STRICT validation, an independent ER7 reader, a golden file.

The reader below is deliberately written from the ER7 rules (HL7 v2.5.1 ch. 2.7:
segment terminator CR, field ``|``, component ``^``, repetition ``~``, escape
``\\``, subcomponent ``&``) and shares no code with ``saa_lab.hl7``.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import assert_hl7_strict_valid
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from saa_lab.hl7 import (
    SUPPORTED_VERSIONS,
    ReportedResult,
    build_oru_r01,
    build_oru_r01_message,
    format_number,
)

GOLDEN = Path(__file__).parent / "golden"
CET = timezone(timedelta(hours=1))
NEWFOUNDLAND = timezone(-timedelta(hours=3, minutes=30))


# hl7apy's 2.x tables predate values we send on purpose: ACSN (table 0203, added in
# v2.7), UCUM (table 0396, used by the US LRI 2.5.1 guide) and "UNICODE UTF-8"
# (table 0211 of 2.3.1/2.4 in hl7apy). Table misses are warnings, never errors;
# anything else hl7apy warns about fails the test.
def make_result(**changes: Any) -> ReportedResult:
    base = ReportedResult(
        message_control_id="SAA000000123",
        message_time=datetime(2026, 11, 21, 14, 30, 0, tzinfo=CET),
        sending_application="SAA-LAB",
        sending_facility="REFLAB",
        receiving_application="ONCO-LIS",
        receiving_facility="CHILDRENS",
        accession="A26-004711",
        patient_id="MRN778899",
        patient_family_name="Doe",
        patient_given_name="Jane",
        birth_date=date(2017, 3, 9),
        sex="F",
        placer_order_number="ORD-55123",
        ordering_clinic="Paediatric Oncology",
        collection_time=datetime(2026, 11, 20, 8, 15, 0, tzinfo=CET),
        analysis_time=datetime(2026, 11, 21, 11, 2, 0, tzinfo=CET),
        value=87.25,
        abnormal_flag="L",
        comments=("Activity below 100 U/L: possible silent inactivation - repeat sample.",),
    )
    return replace(base, **changes)


VARIANTS: dict[str, ReportedResult] = {
    "basic": make_result(),
    "below_lloq": make_result(value=5, comparator="<", abnormal_flag="<"),
    "above_uloq": make_result(value=4000, comparator=">", abnormal_flag=">"),
    "no_value": make_result(value=None, abnormal_flag="", comments=("Specimen haemolysed.",)),
    "unknown_patient": make_result(
        patient_id=None,
        patient_family_name=None,
        patient_given_name=None,
        birth_date=None,
        sex=None,
    ),
    "minimal": ReportedResult(
        message_control_id="M1",
        message_time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        sending_application="SAA-LAB",
        sending_facility="REFLAB",
        receiving_application="",
        receiving_facility="",
        accession="A1",
        patient_id=None,
        value=250.0,
    ),
    "escaping_and_utf8": make_result(
        patient_family_name="Müller|Lüdenscheid",
        ordering_clinic="Onko & Hämatologie",
        comments=("a|b^c~d\\e&f", "line one\nline two", r"\F\ stays literal"),
        reference_range="100-250",
    ),
    "order_context": make_result(
        formulation="PEG-asparaginase",
        formulation_code="PEG",
        dose_time=datetime(2026, 11, 13, 9, 0, 0, tzinfo=CET),
        result_status="P",
    ),
    "corrected": make_result(result_status="C", value=123.40000001, abnormal_flag="N"),
}


# --- an independent ER7 reader ---------------------------------------------------------

_ESCAPE = re.compile(r"\\(F|S|T|R|E|\.br)\\")
_UNESCAPED = {"F": "|", "S": "^", "T": "&", "R": "~", "E": "\\", ".br": "\n"}


def unescape(text: str) -> str:
    return _ESCAPE.sub(lambda match: _UNESCAPED[match.group(1)], text)


class Er7:
    """Segments of an ER7 message; ``field("OBX", 5, occurrence=0)`` is raw OBX-5."""

    def __init__(self, text: str) -> None:
        assert "\n" not in text
        self.segments: list[list[str]] = []
        for line in text.split("\r"):
            if not line:
                continue
            parts = line.split("|")
            if parts[0] == "MSH":
                parts.insert(1, "|")  # MSH-1 is the field separator itself
            self.segments.append(parts)

    @property
    def names(self) -> list[str]:
        return [segment[0] for segment in self.segments]

    def all(self, name: str) -> list[list[str]]:
        return [segment for segment in self.segments if segment[0] == name]

    def field(self, name: str, number: int, occurrence: int = 0) -> str:
        segment = self.all(name)[occurrence]
        return segment[number] if number < len(segment) else ""

    def components(self, name: str, number: int, occurrence: int = 0) -> list[str]:
        return [unescape(c) for c in self.field(name, number, occurrence).split("^")]

    def text(self, name: str, number: int, occurrence: int = 0) -> str:
        return unescape(self.field(name, number, occurrence))


def read(result: ReportedResult, version: str = "2.5.1") -> Er7:
    return Er7(build_oru_r01(result, version=version))


# --- hl7apy STRICT --------------------------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_passes_hl7apy_strict_validation(
    variant: str, version: str, tmp_path: Path
) -> None:
    er7 = build_oru_r01(VARIANTS[variant], version=version)
    assert_hl7_strict_valid(er7, tmp_path / "report.txt")
    message = parse_message(er7, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    assert message.msh.msh_12.to_er7() == version


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_message_object_has_the_oru_r01_group_structure(version: str) -> None:
    message = build_oru_r01_message(VARIANTS["order_context"], version=version)
    message.validate()
    patient_result = message.oru_r01_patient_result
    assert patient_result.oru_r01_patient.pid.pid_3.to_er7() == "MRN778899^^^^MR"
    order = patient_result.oru_r01_order_observation
    assert order.obr.obr_3.to_er7() == "A26-004711^REFLAB"
    observations = order.children.get("ORU_R01_OBSERVATION")
    assert [o.obx.obx_1.to_er7() for o in observations] == ["1", "2", "3"]
    assert [len(o.children.get("NTE")) for o in observations] == [1, 0, 0]


# --- fields, read back independently ---------------------------------------------------


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_msh_identifies_message_type_control_id_and_version(version: str) -> None:
    msg = read(make_result(), version)
    assert msg.names[0] == "MSH"
    assert msg.field("MSH", 2) == "^~\\&"
    assert msg.components("MSH", 9) == ["ORU", "R01", "ORU_R01"]
    assert msg.field("MSH", 10) == "SAA000000123"
    assert msg.field("MSH", 11) == "P"
    assert msg.field("MSH", 12) == version
    assert [msg.field("MSH", n) for n in (3, 4, 5, 6)] == [
        "SAA-LAB",
        "REFLAB",
        "ONCO-LIS",
        "CHILDRENS",
    ]


def test_timestamps_keep_their_own_utc_offset() -> None:
    msg = read(
        make_result(
            message_time=datetime(2026, 11, 21, 14, 30, 0, tzinfo=CET),
            collection_time=datetime(2026, 7, 1, 23, 5, 9, 999999, tzinfo=NEWFOUNDLAND),
        )
    )
    assert msg.field("MSH", 7) == "20261121143000+0100"
    assert msg.field("OBR", 7) == "20260701230509-0330"
    assert msg.field("OBR", 22) == "20261121143000+0100"


def test_processing_id_can_be_overridden() -> None:
    assert read(make_result(processing_id="T")).field("MSH", 11) == "T"


def test_known_patient_is_identified_by_mr_number_and_name() -> None:
    msg = read(make_result(patient_id_authority="CHILDRENS"))
    assert msg.components("PID", 3) == ["MRN778899", "", "", "CHILDRENS", "MR"]
    assert msg.components("PID", 5) == ["Doe", "Jane"]
    assert msg.field("PID", 7) == "20170309"
    assert msg.field("PID", 8) == "F"


def test_unknown_patient_is_identified_by_the_accession_as_acsn() -> None:
    msg = read(VARIANTS["unknown_patient"])
    assert msg.components("PID", 3) == ["A26-004711", "", "", "REFLAB", "ACSN"]
    # PID-5 is required: an empty name with name type U (unspecified).
    assert msg.components("PID", 5) == ["", "", "", "", "", "", "U"]
    assert msg.field("PID", 7) == ""


def test_order_numbers_go_to_orc_and_obr() -> None:
    msg = read(make_result())
    assert msg.field("ORC", 1) == "RE"
    assert msg.field("ORC", 2) == "ORD-55123"
    assert msg.components("ORC", 3) == ["A26-004711", "REFLAB"]
    assert msg.text("ORC", 21) == "Paediatric Oncology"
    assert msg.field("OBR", 2) == "ORD-55123"
    assert msg.components("OBR", 3) == ["A26-004711", "REFLAB"]
    assert msg.components("OBR", 4)[0] == "SAA"


def test_collection_time_is_obr_7_and_obx_14_and_may_be_unknown() -> None:
    known = read(make_result())
    assert known.field("OBR", 7) == "20261120081500+0100"
    assert known.field("OBX", 14) == "20261120081500+0100"
    unknown = read(make_result(collection_time=None))
    assert unknown.field("OBR", 7) == ""
    assert unknown.field("OBX", 14) == ""


def test_plain_value_is_numeric() -> None:
    msg = read(make_result(value=123.40000001, abnormal_flag="N"))
    assert msg.field("OBX", 2) == "NM"
    assert msg.field("OBX", 5) == "123.4"
    assert msg.components("OBX", 3) == [
        "SAA",
        "Asparaginase activity [Enzymatic activity/volume] in Serum or Plasma",
        "L",
    ]
    assert msg.components("OBX", 6) == ["U/L", "U/L", "UCUM"]
    assert msg.text("OBX", 7) == ">=100"
    assert msg.field("OBX", 8) == "N"
    assert msg.field("OBX", 11) == "F"
    assert msg.field("OBR", 25) == "F"


@pytest.mark.parametrize(
    ("comparator", "value", "expected"),
    [("<", 5, ["<", "5"]), (">", 4000.0, [">", "4000"]), ("<", 0.0251, ["<", "0.0251"])],
)
def test_value_outside_the_limits_is_structured_numeric(
    comparator: str, value: float, expected: list[str]
) -> None:
    msg = read(make_result(value=value, comparator=comparator, abnormal_flag=comparator))
    assert msg.field("OBX", 2) == "SN"
    assert msg.components("OBX", 5) == expected
    assert msg.field("OBX", 5) == "^".join(expected)
    assert msg.field("OBX", 8) == comparator


def test_no_value_sends_status_x_and_an_empty_value() -> None:
    msg = read(VARIANTS["no_value"])
    assert msg.field("OBX", 5) == ""
    assert msg.field("OBX", 8) == ""
    assert msg.field("OBX", 11) == "X"
    assert msg.field("OBR", 25) == "X"
    assert msg.text("NTE", 3) == "Specimen haemolysed."


@pytest.mark.parametrize("status", ["F", "P", "C"])
def test_result_status_goes_to_obx_11_and_obr_25(status: str) -> None:
    msg = read(make_result(result_status=status))
    assert (msg.field("OBX", 11), msg.field("OBR", 25)) == (status, status)


def test_comments_become_numbered_ntes_after_the_result_obx() -> None:
    msg = read(make_result(comments=("first", "second")))
    assert msg.names[-3:] == ["OBX", "NTE", "NTE"]
    assert [msg.field("NTE", 1, i) for i in (0, 1)] == ["1", "2"]
    assert [msg.field("NTE", 2, i) for i in (0, 1)] == ["L", "L"]
    assert [msg.text("NTE", 3, i) for i in (0, 1)] == ["first", "second"]


def test_delimiters_in_free_text_round_trip() -> None:
    result = VARIANTS["escaping_and_utf8"]
    er7 = build_oru_r01(result)
    msg = Er7(er7)
    assert [msg.text("NTE", 3, i) for i in range(3)] == list(result.comments)
    assert msg.field("NTE", 3) == "a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f"
    assert msg.field("NTE", 3, 1) == "line one\\.br\\line two"
    assert msg.components("PID", 5)[0] == "Müller|Lüdenscheid"
    assert msg.text("ORC", 21) == "Onko & Hämatologie"
    # Every segment keeps its field count: no delimiter leaked out of the text.
    assert msg.names == ["MSH", "PID", "ORC", "OBR", "OBX", "NTE", "NTE", "NTE"]
    assert len(msg.all("NTE")[0]) == 4


def test_non_ascii_text_declares_utf8_and_ascii_text_does_not() -> None:
    assert read(VARIANTS["escaping_and_utf8"]).field("MSH", 18) == "UNICODE UTF-8"
    assert read(make_result()).field("MSH", 18) == ""


def test_order_context_is_sent_as_extra_observations_only_when_known() -> None:
    assert len(read(make_result()).all("OBX")) == 1
    msg = read(VARIANTS["order_context"])
    assert [msg.field("OBX", 1, i) for i in range(3)] == ["1", "2", "3"]
    assert msg.field("OBX", 2, 1) == "CE"
    assert msg.components("OBX", 3, 1)[0] == "SAA-FORM"
    assert msg.components("OBX", 5, 1) == ["PEG", "PEG-asparaginase", "L"]
    assert msg.field("OBX", 2, 2) == "TS"
    assert msg.components("OBX", 3, 2)[0] == "SAA-DOSE-TIME"
    assert msg.field("OBX", 5, 2) == "20261113090000+0100"
    assert [msg.field("OBX", 11, i) for i in range(3)] == ["P", "P", "P"]


def test_formulation_without_a_code_is_sent_as_text() -> None:
    msg = read(make_result(formulation="Erwinia (crisantaspase)"))
    assert msg.components("OBX", 5, 1) == ["", "Erwinia (crisantaspase)"]


@pytest.mark.parametrize(("version", "expected"), [("2.3.1", ""), ("2.4", "20261121110200+0100")])
def test_analysis_time_is_obx_19_from_version_2_4(version: str, expected: str) -> None:
    assert read(make_result(), version).field("OBX", 19) == expected


# --- numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (250, "250"),
        (250.0, "250"),
        (123.40000001, "123.4"),
        (123.449999, "123.4"),
        (12.25, "12.3"),  # half-up on the decimal digits, not banker's rounding
        (99.96, "100"),
        (1234.5678, "1234.6"),
        (9.9996, "10"),
        (5.678, "5.68"),
        (2.675, "2.68"),
        (0.12345, "0.123"),
        (0.1, "0.1"),
        (0.0251, "0.0251"),
        (1e-7, "0.0000001"),
        (1e20, "100000000000000000000"),
        (0.0, "0"),
        (-0.0, "0"),
        (-3.14159, "-3.14"),
    ],
)
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_format_number_refuses_non_finite_values(value: float) -> None:
    with pytest.raises(ValueError, match="cannot format"):
        format_number(value)


# --- invalid input is a bug in the caller ------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"message_time": datetime(2026, 1, 1, 12, 0)}, "message_time must be timezone-aware"),
        ({"dose_time": datetime(2026, 1, 1, 12, 0)}, "dose_time must be timezone-aware"),
        ({"message_control_id": "x" * 21}, "message_control_id"),
        ({"message_control_id": "../etc"}, "message_control_id"),
        ({"message_control_id": ""}, "message_control_id"),
        ({"comparator": "<="}, "comparator"),
        ({"result_status": "X"}, "needs value None"),
        ({"value": None, "comparator": "<"}, "no comparator"),
        ({"value": float("nan")}, "finite"),
        ({"abnormal_flag": "LOW"}, "abnormal_flag"),
        ({"sex": "female"}, "sex"),
        ({"accession": ""}, "accession must not be empty"),
        ({"patient_id": ""}, "patient_id"),
        ({"formulation_code": "PEG"}, "formulation_code needs"),
    ],
)
def test_inconsistent_results_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        make_result(**changes)


def test_comments_must_be_a_sequence_of_strings() -> None:
    with pytest.raises(TypeError, match="tuple of strings"):
        make_result(comments="one string")


def test_unsupported_version_is_refused() -> None:
    with pytest.raises(ValueError, match=re.escape("version '2.6'")):
        build_oru_r01(make_result(), version="2.6")


def test_control_characters_in_text_are_refused() -> None:
    with pytest.raises(ValueError, match="control characters"):
        build_oru_r01(make_result(patient_family_name="Doe\rMSH|injected"))
    with pytest.raises(ValueError, match="control characters"):
        build_oru_r01(make_result(comments=("tab\there",)))


# --- golden file and speed -------------------------------------------------------------


def test_basic_message_matches_the_golden_file() -> None:
    """``golden/oru_basic.hl7`` holds one segment per line for review; the wire uses CR.

    Regenerate after a reviewed change with ``SAA_LAB_REGENERATE_GOLDEN=1 pytest``.
    """
    golden = GOLDEN / "oru_basic.hl7"
    er7 = build_oru_r01(VARIANTS["basic"], version="2.5.1")
    if os.environ.get("SAA_LAB_REGENERATE_GOLDEN") == "1":
        golden.write_text(er7.replace("\r", "\n") + "\n", encoding="utf-8", newline="\n")
    expected = golden.read_text(encoding="utf-8").rstrip("\n").replace("\n", "\r")
    assert er7 == expected


def test_a_plate_of_messages_builds_well_within_the_latency_budget() -> None:
    # ~40 messages per plate, 250 ms per plate end to end; the builder gets a
    # small slice of that. Measured ~0.1 ms/message, so this has >50x headroom.
    results = [make_result(message_control_id=f"SAA{n:06d}", value=n * 3.7) for n in range(40)]
    started = time.perf_counter()
    for result in results:
        build_oru_r01(result)
    assert time.perf_counter() - started < 0.2

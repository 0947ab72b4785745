"""Order intake: ORM^O01 / OML^O21 into OrderContext values, and the ACKs we answer with.

The messages below are invented (no real patient); they follow the segment
tables in docs/hl7-interface.md, which cite HL7 v2.3.1 ch. 4 (ORM^O01) and
v2.5.1 ch. 4 (OML^O21) for the field positions.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from saa_lab.hl7 import (
    ORDER_OBX_CODES,
    ORDER_VERSIONS,
    OrderProblem,
    OrderReading,
    build_ack,
    order_handler,
    read_order,
)
from saa_lab.hl7.orders import storage_failure_problem

BERLIN = ZoneInfo("Europe/Berlin")
CET = timezone(timedelta(hours=1))
NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)

# A complete ORM^O01 v2.3.1: every field we read, ask-at-order-entry answers by code.
ORM_231 = "\r".join(
    [
        "MSH|^~\\&|ONCO-EHR|CHILDRENS|SAA-LAB|REFLAB|20261120081500||ORM^O01|ORM0001|P|2.3.1",
        "PID|1||MRN778899^^^CHILDRENS^MR~4711^^^NAT^NI||Doe^Jane^^^^^L||20170309|F",
        "PV1|1|O|ONC^^^CHILDRENS",
        "ORC|NW|ORD-55123^ONCO-EHR|||||||20261120081000|||1234^Smith^Anna|||||ONC^Oncology"
        "||||Paediatric Oncology South",
        "OBR|1|ORD-55123^ONCO-EHR||SAA^Asparaginase activity^L|||202611200815|||||||||"
        "1234^Smith^Anna",
        "NTE|1||Sample drawn from the central line.",
        "OBX|1|CE|SAA-FORM^Asparaginase formulation administered^L||PEG^Oncaspar^L||||||F",
        "OBX|2|NM|SAA-DOSE^Asparaginase dose^L||2500|IU/m2^IU/m2^UCUM|||||F",
        "OBX|3|TS|SAA-DOSE-TIME^Date and time of last asparaginase dose^L||202611130900||||||F",
        "OBX|4|CE|SAA-ROUTE^Route^L||IV^Intravenous^HL70162||||||F",
        "OBX|5|ST|SAA-PROTOCOL^Treatment protocol^L||AIEOP-BFM ALL 2017||||||F",
        "OBX|6|CE|SAA-REACTION^Reaction^L||Y^Yes^HL70136||||||F",
        "OBX|7|TS|SAA-REACTION-TIME^Reaction time^L||202611130945+0100||||||F",
        "OBX|8|NM|SAA-REACTION-GRADE^Reaction grade^L||2||||||F",
        "NTE|1||Flush and urticaria 45 min into the infusion.",
    ]
)

# A complete OML^O21 v2.5.1 with the specimen (SPM) and text-named questions.
OML_251 = "\r".join(
    [
        "MSH|^~\\&|ONCO-EHR|CHILDRENS|SAA-LAB|REFLAB|20261120081500+0100||OML^O21^OML_O21"
        "|OML0001|P|2.5.1|||AL|NE",
        "PID|1||PAT-0042^^^CHILDRENS^MR||Roe^Max^Peter||20150704|M",
        "PV1|1|I|ONC-W2^^^CHILDRENS",
        "ORC|NW|PL-9001^ONCO-EHR|||SC||||20261120080000+0100|||5678^Brown^Ben^^^Dr"
        "|||||||||North Children\\T\\Youth Clinic^^^^^CHILDRENS",
        "TQ1|1||||||202611200800+0100",
        "OBR|1|PL-9001^ONCO-EHR||SAA^Asparaginase activity^L|||202611200815+0100",
        "NTE|1||Trough before the next dose.",
        "OBX|1|CWE|^Asparaginase product||Rylaze||||||F",
        "OBX|2|NM|^Dose||25|mg/m2|||||F",
        "OBX|3|DTM|^Date/time of last dose||202611180800+0100||||||F",
        "OBX|4|ST|^Route of administration||IM||||||F",
        "OBX|5|ST|^Study protocol||ALLTogether1||||||F",
        "OBX|6|ST|^Infusion reaction||N||||||F",
        "SPM|1|SPC-77&ONCO-EHR^A26-004711&REFLAB||SER^Serum^HL70487|||||||||||||202611200815+0100",
    ]
)


def read(er7: str) -> OrderReading:
    return read_order(er7, zone=BERLIN)


def problem_fields(reading: OrderReading) -> list[str]:
    return [p.field for p in reading.errors]


def errors_only(reading: OrderReading) -> list[OrderProblem]:
    return [p for p in reading.errors if p.severity == "E"]


def swap(message: str, old: str, new: str) -> str:
    assert old in message, old
    return message.replace(old, new, 1)


def ack_for(er7: str, reading: OrderReading) -> str:
    return build_ack(
        er7,
        reading.ack_code,
        reading.errors,
        sending_application="SAA-LAB",
        sending_facility="REFLAB",
        now=NOW,
        control_id="ACK0001",
    )


def ack_segments(ack: str) -> dict[str, list[list[str]]]:
    found: dict[str, list[list[str]]] = {}
    for segment in ack.split("\r"):
        found.setdefault(segment[:3], []).append(segment.split("|"))
    return found


DOC = (Path(__file__).resolve().parents[2] / "docs" / "hl7-interface.md").read_text()


def doc_examples() -> dict[str, str]:
    """The ```text blocks of docs/hl7-interface.md as ER7.

    Keyed by MSH-9 for orders, ``MSH-9:MSA-1:MSH-12[:207]`` for ACKs.
    """
    found: dict[str, str] = {}
    for block in re.findall(r"```text\n(.*?)```", DOC, re.DOTALL):
        er7 = block.strip().replace("\n", "\r")
        msh = er7.split("\r")[0].split("|")
        key = msh[8]
        if key.startswith("ACK"):
            code = er7.split("\rMSA|")[1][:2]
            key = f"{key}:{code}:{msh[11]}" + (":207" if "|207^" in er7 else "")
        found[key] = er7
    return found


# --- complete messages ----------------------------------------------------------------


def test_orm_o01_231_reads_every_field() -> None:
    reading = read(ORM_231)
    assert reading.ack_code == "AA", reading.errors
    assert reading.errors == ()
    assert reading.message_control_id == "ORM0001"
    (order,) = reading.orders
    assert order.source == "hl7"
    assert order.message_control_id == "ORM0001"
    assert order.accession == "ORD-55123"  # no specimen id, no filler number: the placer's
    assert order.placer_order_number == "ORD-55123"
    assert order.patient_id == "MRN778899"
    assert (order.patient_family_name, order.patient_given_name) == ("Doe", "Jane")
    assert order.birth_date == date(2017, 3, 9)
    assert order.sex == "F"
    assert order.ordering_provider == "Smith Anna (1234)"
    assert order.clinic == "Paediatric Oncology South"  # ORC-21 before ORC-17 and MSH-4
    assert order.collection_time == datetime(2026, 11, 20, 8, 15, tzinfo=BERLIN)
    assert order.formulation == "peg-asparaginase"
    assert order.dose_iu_per_m2 == 2500
    assert order.dose_time == datetime(2026, 11, 13, 9, 0, tzinfo=BERLIN)
    assert order.route == "IV"
    assert order.protocol == "AIEOP-BFM ALL 2017"
    assert order.reaction is True
    assert order.reaction_time == datetime(2026, 11, 13, 9, 45, tzinfo=CET)
    assert order.reaction_grade == 2
    assert reading.notes == (
        "Sample drawn from the central line.\nFlush and urticaria 45 min into the infusion.",
    )


def test_oml_o21_251_reads_specimen_and_text_named_questions() -> None:
    reading = read(OML_251)
    (order,) = reading.orders
    assert order.accession == "A26-004711"  # SPM-2, the filler-assigned specimen id
    assert order.placer_order_number == "PL-9001"
    assert order.patient_id == "PAT-0042"
    assert (order.patient_family_name, order.patient_given_name) == ("Roe", "Max")
    assert order.birth_date == date(2015, 7, 4)
    assert order.sex == "M"
    assert order.ordering_provider == "Brown Ben (5678)"
    assert order.clinic == "North Children&Youth Clinic"
    assert order.collection_time == datetime(2026, 11, 20, 8, 15, tzinfo=CET)
    assert order.formulation == "recombinant-erwinia"
    assert order.dose_time == datetime(2026, 11, 18, 8, 0, tzinfo=CET)
    assert order.route == "IM"
    assert order.protocol == "ALLTogether1"
    assert order.reaction is False
    assert order.dose_iu_per_m2 is None  # 25 mg/m2 is not an IU/m2 dose
    assert reading.notes == ("Trough before the next dose.",)
    # The mg/m2 dose is a warning only: the order is accepted.
    assert reading.ack_code == "AA"
    (warning,) = reading.errors
    assert (warning.field, warning.severity, warning.segment) == ("OBX-6 (SAA-DOSE)", "W", "OBX")
    assert "mg/m2" in warning.message


def test_specimen_id_falls_back_to_filler_then_placer_number() -> None:
    placer_only = read(OML_251.replace("SPC-77&ONCO-EHR^A26-004711&REFLAB", ""))
    assert placer_only.orders[0].accession == "PL-9001"
    with_filler = read(swap(ORM_231, "OBR|1|ORD-55123^ONCO-EHR||", "OBR|1|ORD-55123^ONCO-EHR|F-1|"))
    assert with_filler.orders[0].accession == "F-1"
    assert with_filler.orders[0].placer_order_number == "ORD-55123"
    placer_specimen = read(OML_251.replace("SPC-77&ONCO-EHR^A26-004711&REFLAB", "SPC-77&ONCO"))
    assert placer_specimen.orders[0].accession == "SPC-77"


def test_clinic_falls_back_to_entering_organisation_then_sending_facility() -> None:
    no_facility = swap(ORM_231, "||||Paediatric Oncology South", "")
    assert read(no_facility).orders[0].clinic == "ONC"
    nothing = swap(no_facility, "ONC^Oncology", "")
    assert read(nothing).orders[0].clinic == "CHILDRENS"


def test_provider_falls_back_to_obr_16_and_first_identifier_without_mr() -> None:
    message = swap(ORM_231, "|||1234^Smith^Anna|||||ONC", "||||||||ONC")
    message = swap(message, "MRN778899^^^CHILDRENS^MR~4711^^^NAT^NI", "4711^^^NAT^NI~X^^^A^PI")
    order = read(message).orders[0]
    assert order.ordering_provider == "Smith Anna (1234)"
    assert order.patient_id == "4711"
    mr_second = swap(ORM_231, "MRN778899^^^CHILDRENS^MR~4711^^^NAT^NI", "4711^^^NAT^NI~M1^^^C^MR")
    assert read(mr_second).orders[0].patient_id == "M1"


@pytest.mark.parametrize("version", ORDER_VERSIONS)
def test_orm_o01_is_read_in_every_supported_version(version: str) -> None:
    reading = read(swap(ORM_231, "|P|2.3.1", f"|P|{version}"))
    assert reading.ack_code == "AA"
    assert reading.orders[0].formulation == "peg-asparaginase"


@pytest.mark.parametrize("version", ["2.4", "2.5"])
def test_oml_o21_is_read_in_24_and_25(version: str) -> None:
    reading = read(swap(OML_251, "|P|2.5.1|", f"|P|{version}|"))
    assert reading.orders[0].accession == "A26-004711"


def test_the_documented_examples_read_as_documented() -> None:
    examples = doc_examples()
    orm = read(examples["ORM^O01"])
    assert (orm.ack_code, orm.errors) == ("AA", ())
    (order,) = orm.orders
    assert (order.accession, order.patient_id, order.clinic) == (
        "ORD-55123",
        "MRN778899",
        "Paediatric Oncology South",
    )
    assert (order.formulation, order.dose_iu_per_m2, order.reaction_grade) == (
        "peg-asparaginase",
        2500,
        2,
    )
    oml = read(examples["OML^O21^OML_O21"])
    assert (oml.ack_code, oml.errors) == ("AA", ())
    (order,) = oml.orders
    assert (order.accession, order.placer_order_number, order.clinic) == (
        "A26-004711",
        "PL-9001",
        "North Children's Clinic",
    )
    assert (order.formulation, order.route, order.reaction) == ("recombinant-erwinia", "IM", False)


def test_the_documented_field_positions_agree_with_hl7apy() -> None:
    """hl7apy (segments only, no groups) finds the fields where we read them."""
    for key in ("ORM^O01", "OML^O21^OML_O21"):
        er7 = doc_examples()[key]
        message = parse_message(er7, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False)
        by_name = {segment.name: segment for segment in reversed(message.children)}
        order = read(er7).orders[0]
        assert by_name["PID"].pid_3.pid_3_1.to_er7() == order.patient_id
        assert by_name["PID"].pid_7.to_er7() == f"{order.birth_date:%Y%m%d}"
        assert by_name["ORC"].orc_21.to_er7().split("^")[0] == order.clinic
        assert by_name["ORC"].orc_12.to_er7().startswith("1234^Smith" if "ORM" in key else "5678")
        assert by_name["OBR"].obr_2.to_er7().split("^")[0] == order.placer_order_number
        assert order.collection_time is not None
        assert by_name["OBR"].obr_7.to_er7() == f"{order.collection_time:%Y%m%d%H%M%S%z}"
        if "SPM" in by_name:
            assert by_name["SPM"].spm_2.to_er7().split("^")[1].split("&")[0] == order.accession


def test_the_documented_acks_are_what_we_send() -> None:
    examples = doc_examples()
    orm, oml = examples["ORM^O01"], examples["OML^O21^OML_O21"]
    no_pid = swap(orm, "MRN778899^^^CHILDRENS^MR~4711^^^NATIONAL^NI", "")
    bad_oml = swap(
        swap(oml, "PAT-0042^^^CHILDRENS^MR", ""), "RYL^Rylaze^L", "ASP^Asparaginase medac^L"
    )
    adt = (
        "MSH|^~\\&|ONCO-EHR|CHILDRENS|SAA-LAB|REFLAB|20261120081500+0100||ADT^A01^ADT_A01"
        "|ADT0001|P|2.5.1\rPID|1||PAT-0042^^^CHILDRENS^MR||Roe^Max"
    )
    now = datetime(2026, 11, 20, 8, 15, 2, tzinfo=CET)

    def ack(er7: str, reading: OrderReading) -> str:
        return build_ack(
            er7, reading.ack_code, reading.errors, sending_application="SAA-LAB",
            sending_facility="REFLAB", now=now, control_id="ACK-0001",
        )  # fmt: skip

    assert examples["ACK^O01^ACK:AA:2.3.1"] == ack(orm, read(orm))
    assert examples["ACK^O01^ACK:AE:2.3.1"] == ack(no_pid, read(no_pid))
    assert examples["ACK^O21^ACK:AE:2.5.1"] == ack(bad_oml, read(bad_oml))
    assert examples["ACK^A01^ACK:AR:2.5.1"] == ack(adt, read(adt))
    storage = OrderReading(orders=(), ack_code="AE", errors=(storage_failure_problem(),))
    assert examples["ACK^O21^ACK:AE:2.5.1:207"] == ack(oml, storage)


# --- several orders -------------------------------------------------------------------


def second_order(placer: str, formulation: str) -> list[str]:
    return [
        f"ORC|NW|{placer}|||||||||||||||||||Paediatric Oncology South",
        f"OBR|1|{placer}||SAA^Asparaginase activity^L|||202611200815",
        f"OBX|1|ST|SAA-FORM^Formulation^L||{formulation}||||||F",
        "OBX|2|TS|SAA-DOSE-TIME^Dose time^L||202611180800||||||F",
    ]


def test_several_order_groups_give_one_order_each() -> None:
    message = "\r".join(
        [ORM_231, *second_order("ORD-2", "Erwinase"), *second_order("ORD-3", "E. coli")]
    )
    reading = read(message)
    assert reading.ack_code == "AA", reading.errors
    assert [o.accession for o in reading.orders] == ["ORD-55123", "ORD-2", "ORD-3"]
    assert [o.formulation for o in reading.orders] == [
        "peg-asparaginase",
        "erwinia",
        "native-e-coli",
    ]
    assert {o.patient_id for o in reading.orders} == {"MRN778899"}
    assert reading.orders[1].dose_time == datetime(2026, 11, 18, 8, 0, tzinfo=BERLIN)
    assert reading.orders[1].reaction is None  # answers do not leak between orders
    assert reading.notes[1:] == (None, None)


def test_obr_without_its_own_orc_in_an_orm_shares_the_previous_orc() -> None:
    extra = [
        "OBR|2|ORD-56000||SAA^Asparaginase activity^L|||202611210815",
        "OBX|1|CE|SAA-FORM^Formulation^L||CAL^Asparlas^L||||||F",
        "OBX|2|TS|SAA-DOSE-TIME^Dose time^L||202611130900||||||F",
    ]
    reading = read("\r".join([ORM_231, *extra]))
    assert reading.ack_code == "AA", reading.errors
    second = reading.orders[1]
    assert (second.accession, second.formulation) == ("ORD-56000", "calaspargase-pegol")
    assert second.ordering_provider == "Smith Anna (1234)"  # from the shared ORC


def test_oml_prior_results_are_skipped() -> None:
    prior = [
        "PID|1||PAT-0042^^^CHILDRENS^MR||Roe^Max",
        "ORC|RE|OLD-1",
        "OBR|1|OLD-1||SAA^Asparaginase activity^L|||202610010815",
        "OBX|1|NM|SAA^Asparaginase activity^L||250|U/L|||||F",
        "ORC|NW|PL-9002^ONCO-EHR",
        "OBR|1|PL-9002^ONCO-EHR||SAA^Asparaginase activity^L|||202611200830+0100",
        "OBX|1|ST|SAA-FORM^Formulation^L||Oncaspar||||||F",
        "OBX|2|TS|SAA-DOSE-TIME^Dose time^L||202611130900+0100||||||F",
    ]
    reading = read("\r".join([OML_251, *prior]))
    assert [o.accession for o in reading.orders] == ["A26-004711", "PL-9002"]
    assert reading.orders[1].formulation == "peg-asparaginase"
    assert not any(o.accession == "OLD-1" for o in reading.orders)


def test_the_same_specimen_twice_is_an_error() -> None:
    message = "\r".join([ORM_231, *second_order("ORD-55123^ONCO-EHR", "PEG")])
    reading = read(message)
    assert reading.ack_code == "AE"
    (duplicate,) = errors_only(reading)
    assert duplicate.code == 205 and duplicate.order == 1
    assert len(reading.orders) == 2  # both stored, flagged


# --- formulations and answers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("ST||PEG-asparaginase", "peg-asparaginase"),
        ("ST||pegaspargase", "peg-asparaginase"),
        ("ST||Oncaspar", "peg-asparaginase"),
        ("CE||PEG^Pegaspargase^L", "peg-asparaginase"),
        ("ST||calaspargase pegol", "calaspargase-pegol"),
        ("ST||Asparlas", "calaspargase-pegol"),
        ("ST||Erwinia", "erwinia"),
        ("ST||crisantaspase", "erwinia"),
        ("CE||ERW^Erwinia asparaginase^L", "erwinia"),
        ("ST||Rylaze", "recombinant-erwinia"),
        ("ST||recombinant Erwinia", "recombinant-erwinia"),
        ("CWE||^JZP-458", "recombinant-erwinia"),
        ("ST||native E. coli", "native-e-coli"),
        ("ST||E. coli", "native-e-coli"),
        ("ST||Kidrolase", "native-e-coli"),
    ],
)
def test_each_formulation_spelling(answer: str, expected: str) -> None:
    message = swap(
        ORM_231,
        "OBX|1|CE|SAA-FORM^Asparaginase formulation administered^L||PEG^Oncaspar^L",
        f"OBX|1|{answer.split('||')[0]}|SAA-FORM^Formulation^L||{answer.split('||')[1]}",
    )
    reading = read(message)
    assert reading.ack_code == "AA", reading.errors
    assert reading.orders[0].formulation == expected


def test_unknown_formulation_is_ae_and_the_order_is_still_returned() -> None:
    message = swap(ORM_231, "PEG^Oncaspar^L", "ASP-X^Asparaginase Medac^L")
    reading = read(message)
    assert reading.ack_code == "AE"
    (problem,) = errors_only(reading)
    assert problem.field == "OBX-5 (SAA-FORM)"
    assert (problem.segment, problem.sequence, problem.position) == ("OBX", 1, 5)
    assert problem.code == 103
    assert "Asparaginase Medac" in problem.message
    assert reading.orders[0].formulation is None
    assert reading.orders[0].accession == "ORD-55123"


def test_missing_formulation_is_ae() -> None:
    message = swap(
        ORM_231,
        "OBX|1|CE|SAA-FORM^Asparaginase formulation administered^L||PEG^Oncaspar^L||||||F\r",
        "",
    )
    reading = read(message)
    assert reading.ack_code == "AE"
    (problem,) = errors_only(reading)
    assert problem.field == "OBX-5 (SAA-FORM)"
    assert (problem.segment, problem.code) == ("OBR", 101)


def test_contradictory_formulations_are_ae() -> None:
    extra = "OBX|9|ST|^Asparaginase product||Erwinase||||||F"
    reading = read(swap(ORM_231, "\rNTE|1||Flush", f"\r{extra}\rNTE|1||Flush"))
    assert reading.ack_code == "AE"
    (problem,) = errors_only(reading)
    assert problem.field == "OBX-5 (SAA-FORM)"
    assert "contradicts" in problem.message
    assert reading.orders[0].formulation == "peg-asparaginase"  # the first answer stands
    same_code_and_text = read(swap(ORM_231, "PEG^Oncaspar^L", "PEG^Erwinase^L"))
    assert same_code_and_text.ack_code == "AE"
    assert "different formulations" in errors_only(same_code_and_text)[0].message


def test_collection_before_the_dose_is_ae() -> None:
    message = swap(ORM_231, "||202611130900||", "||202611210900||")
    reading = read(message)
    assert reading.ack_code == "AE"
    (problem,) = errors_only(reading)
    assert (problem.field, problem.segment, problem.position) == ("OBR-7", "OBR", 7)
    assert "before the dose" in problem.message
    oml = read(OML_251.replace("202611180800+0100", "202611200900+0100"))
    assert [p.field for p in errors_only(oml)] == ["SPM-17"]


def test_unreadable_dose_time_names_the_obx() -> None:
    reading = read(swap(ORM_231, "||202611130900||", "||yesterday||"))
    assert reading.ack_code == "AE"
    (problem,) = errors_only(reading)
    assert problem.field == "OBX-5 (SAA-DOSE-TIME)"
    assert (problem.segment, problem.sequence, problem.position) == ("OBX", 3, 5)
    assert reading.orders[0].dose_time is None


def test_dose_time_without_a_time_of_day_is_refused() -> None:
    reading = read(swap(ORM_231, "||202611130900||", "||20261113||"))
    assert [p.field for p in errors_only(reading)] == ["OBX-5 (SAA-DOSE-TIME)"]


def test_missing_dose_and_collection_times_are_warnings() -> None:
    message = swap(
        ORM_231,
        "OBX|3|TS|SAA-DOSE-TIME^Date and time of last asparaginase dose^L||202611130900||||||F\r",
        "",
    )
    message = swap(message, "|||202611200815||", "|||||")
    reading = read(message)
    assert reading.ack_code == "AA"
    assert sorted(problem_fields(reading)) == ["OBX-5 (SAA-DOSE-TIME)", "SPM-17 / OBR-7"]
    assert {p.severity for p in reading.errors} == {"W"}


def test_iso_times_and_offsets() -> None:
    message = swap(ORM_231, "||202611130900||", "||2026-11-13T09:00:00+02:00||")
    assert read(message).orders[0].dose_time == datetime(
        2026, 11, 13, 9, 0, tzinfo=timezone(timedelta(hours=2))
    )
    seconds = read(swap(ORM_231, "||202611130900||", "||20261113090015.25-0500||"))
    assert seconds.orders[0].dose_time == datetime(
        2026, 11, 13, 9, 0, 15, 250000, tzinfo=timezone(-timedelta(hours=5))
    )


def test_reaction_answered_no_with_a_grade_is_contradictory() -> None:
    reading = read(swap(ORM_231, "||Y^Yes^HL70136||", "||N^No^HL70136||"))
    assert reading.ack_code == "AE"
    assert [p.field for p in errors_only(reading)] == ["OBX-5 (SAA-REACTION)"]


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("||2500|IU/m2", "||lots|IU/m2", "OBX-5 (SAA-DOSE)"),
        ("||IV^Intravenous^HL70162||", "||PO^Oral^HL70162||", "OBX-5 (SAA-ROUTE)"),
        ("||Y^Yes^HL70136||", "||maybe||", "OBX-5 (SAA-REACTION)"),
        (
            "SAA-REACTION-GRADE^Reaction grade^L||2||",
            "SAA-REACTION-GRADE^G^L||7||",
            "OBX-5 (SAA-REACTION-GRADE)",
        ),
        ("||20170309|F", "||2017|F", "PID-7"),
    ],
)
def test_unreadable_values_are_ae_naming_the_field(old: str, new: str, field: str) -> None:
    reading = read(swap(ORM_231, old, new))
    assert reading.ack_code == "AE"
    assert [p.field for p in errors_only(reading)] == [field]


def test_unknown_questions_and_sex_are_warnings() -> None:
    message = swap(
        ORM_231, "\rNTE|1||Flush", "\rOBX|9|NM|29463-7^Body weight^LN||21|kg\rNTE|1||Flush"
    )
    message = swap(message, "||20170309|F", "||20170309|X")
    reading = read(message)
    assert reading.ack_code == "AA"
    assert sorted(problem_fields(reading)) == ["OBX-3", "PID-8"]
    assert reading.orders[0].sex is None


def test_text_names_are_matched_without_our_codes() -> None:
    lines = [
        "OBX|1|ST|^Type of asparaginase||pegaspargase",
        "OBX|2|NM|^Asparaginase dose (IU/m2)||1000",
        "OBX|3|TS|^Last dose given||202611130900",
        "OBX|4|ST|^Route||SC",
        "OBX|5|ST|^Protocol||UKALL 2011",
        "OBX|6|ST|^Hypersensitivity reaction||yes",
        "OBX|7|TS|^Reaction date/time||202611131000",
        "OBX|8|ST|^Reaction CTCAE grade||Grade 3",
    ]
    head = ORM_231.split("\rOBX|1|")[0]
    order = read("\r".join([head, *lines])).orders[0]
    assert (order.formulation, order.dose_iu_per_m2, order.route) == (
        "peg-asparaginase",
        1000,
        "SC",
    )
    assert order.dose_time == datetime(2026, 11, 13, 9, 0, tzinfo=BERLIN)
    assert (order.protocol, order.reaction, order.reaction_grade) == ("UKALL 2011", True, 3)
    assert order.reaction_time == datetime(2026, 11, 13, 10, 0, tzinfo=BERLIN)


def test_our_obx_codes_are_documented_and_local() -> None:
    assert set(ORDER_OBX_CODES) == {
        "SAA-FORM",
        "SAA-DOSE",
        "SAA-DOSE-TIME",
        "SAA-ROUTE",
        "SAA-PROTOCOL",
        "SAA-REACTION",
        "SAA-REACTION-TIME",
        "SAA-REACTION-GRADE",
    }
    for code in ORDER_OBX_CODES:
        assert f"| `{code}` |" in DOC


# --- required fields ------------------------------------------------------------------


def test_missing_pid_3_is_ae_and_the_ack_names_pid_3() -> None:
    message = swap(ORM_231, "MRN778899^^^CHILDRENS^MR~4711^^^NAT^NI", "")
    reading = read(message)
    assert reading.ack_code == "AE"
    (problem,) = errors_only(reading)
    assert (problem.field, problem.code, problem.order) == ("PID-3", 101, None)
    assert reading.orders[0].patient_id is None
    ack = ack_segments(ack_for(message, reading))
    assert ack["MSA"][0][1:3] == ["AE", "ORM0001"]
    assert "PID-3" in ack["MSA"][0][3]
    (err,) = ack["ERR"]  # v2.3.1: ERR-1 SEG^seq^field^code&text&HL70357
    assert err[1].startswith("PID^1^3^101&PID-3: ")


def test_missing_pid_segment_is_ae() -> None:
    reading = read(
        swap(
            ORM_231,
            "PID|1||MRN778899^^^CHILDRENS^MR~4711^^^NAT^NI||Doe^Jane^^^^^L||20170309|F\r",
            "",
        )
    )
    assert reading.ack_code == "AE"
    assert [p.field for p in errors_only(reading)] == ["PID-3"]


def test_no_accession_at_all_is_ae() -> None:
    message = ORM_231.replace("ORD-55123^ONCO-EHR", "")
    reading = read(message)
    assert reading.ack_code == "AE"
    (problem,) = errors_only(reading)
    assert (problem.field, problem.code) == ("OBR-2", 101)
    assert reading.orders[0].accession == ""


def test_placer_numbers_that_disagree_are_ae() -> None:
    reading = read(swap(ORM_231, "OBR|1|ORD-55123^ONCO-EHR", "OBR|1|ORD-99999^ONCO-EHR"))
    assert [p.field for p in errors_only(reading)] == ["OBR-2"]


def test_cancel_orders_are_not_returned() -> None:
    reading = read(swap(ORM_231, "ORC|NW|", "ORC|CA|"))
    assert reading.ack_code == "AE"
    assert reading.orders == ()
    assert [p.field for p in errors_only(reading)] == ["ORC-1"]


# --- rejected messages ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "code", "field"),
    [
        (
            "MSH|^~\\&|ADT|H|SAA|L|20261120||ADT^A01^ADT_A01|A1|P|2.5.1\rPID|1||X^^^H^MR",
            200,
            "MSH-9",
        ),
        ("MSH|^~\\&|E|H|SAA|L|20261120||ORM^O02|A1|P|2.5.1\rORC|OK|1", 201, "MSH-9"),
        (ORM_231.replace("|P|2.3.1", "|P|2.2"), 203, "MSH-12"),
        (OML_251.replace("|P|2.5.1|", "|P|2.3.1|"), 203, "MSH-12"),
        (ORM_231.replace("|ORM0001|", "||"), 101, "MSH-10"),
        ("MSH|^~\\&|E|H|SAA|L|20261120||ORM^O01|A1|P|2.4\rPID|1||X^^^H^MR", 100, "MSH"),
        ("this is not HL7 at all", 100, "MSH"),
        ("", 100, "MSH"),
        ("MSH|", 100, "MSH"),
        ("MSHA^~\\&|E", 100, "MSH"),
    ],
)
def test_what_we_cannot_accept_is_ar(message: str, code: int, field: str) -> None:
    reading = read(message)
    assert reading.ack_code == "AR"
    assert reading.orders == ()
    (problem,) = reading.errors
    assert (problem.code, problem.field) == (code, field)
    ack = ack_segments(ack_for(message, reading))
    assert ack["MSA"][0][1] == "AR"


# --- escaping and encoding ------------------------------------------------------------


def test_escapes_are_undone_in_every_field() -> None:
    message = swap(ORM_231, "Doe^Jane", "O\\E\\Neil \\T\\ Sons^Ann\\S\\Marie")
    message = swap(
        message,
        "Sample drawn from the central line.",
        "a\\F\\b\\R\\c\\.br\\d \\X4142\\ \\H\\e\\N\\",
    )
    order = read(message).orders[0]
    assert order.patient_family_name == "O\\Neil & Sons"
    assert order.patient_given_name == "Ann^Marie"
    assert read(message).notes[0] == "a|b~c\nd AB e\nFlush and urticaria 45 min into the infusion."


def test_the_message_s_own_encoding_characters_are_used() -> None:
    message = ORM_231.replace("|", "#").replace("^", "$").replace("MSH#$~\\&", "MSH#$~\\&")
    message = swap(message, "Doe$Jane", "Pipe|Name$Jane")
    reading = read(message)
    assert reading.ack_code == "AA", reading.errors
    order = reading.orders[0]
    assert order.patient_family_name == "Pipe|Name"
    assert order.ordering_provider == "Smith Anna (1234)"
    ack = ack_for(message, reading)
    assert ack.startswith("MSH|^~\\&|SAA-LAB|REFLAB|ONCO-EHR|CHILDRENS|")


def test_line_feeds_as_segment_separators_are_accepted() -> None:
    for separator in ("\n", "\r\n"):
        reading = read(ORM_231.replace("\r", separator))
        assert reading.ack_code == "AA"
        assert reading.orders[0].formulation == "peg-asparaginase"


# --- ACKs -----------------------------------------------------------------------------

# hl7apy's 2.5/2.5.1 table 0396 lacks "HL70357", the coding system of HL7's own
# table 0357 (valid: table 0396 lists HL7nnnn); it only warns.
ALLOWED_WARNING = re.compile(r"Value HL70357 not in table HL70396")


def assert_valid_ack(ack: str, report: Path) -> None:
    message = parse_message(ack, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    assert message.validate(report_file=str(report)) is True
    lines = [line for line in report.read_text().splitlines() if line]
    assert [line for line in lines if not ALLOWED_WARNING.search(line)] == []


@pytest.mark.parametrize("version", ORDER_VERSIONS)
def test_acks_pass_hl7apy_strict_validation_in_every_version(version: str, tmp_path: Path) -> None:
    good = swap(ORM_231, "|P|2.3.1", f"|P|{version}")
    bad = swap(good, "MRN778899^^^CHILDRENS^MR~4711^^^NAT^NI", "")
    bad = swap(bad, "PEG^Oncaspar^L", "??^What^L")
    for number, message in enumerate((good, bad)):
        reading = read(message)
        ack = ack_for(message, reading)
        assert_valid_ack(ack, tmp_path / f"report-{number}.txt")
        parsed = parse_message(ack, validation_level=VALIDATION_LEVEL.STRICT)
        assert parsed.version == version
        assert parsed.msh.msh_9.to_er7() == "ACK^O01^ACK"
        assert parsed.msa.msa_1.to_er7() == reading.ack_code
        assert parsed.msa.msa_2.to_er7() == "ORM0001"


def test_ack_swaps_sender_and_receiver_and_lists_one_err_per_problem_in_25() -> None:
    message = swap(OML_251, "PAT-0042^^^CHILDRENS^MR", "")
    message = swap(message, "||Rylaze||", "||Aspirin||")
    reading = read(message)
    ack = ack_segments(ack_for(message, reading))
    msh = ack["MSH"][0]
    assert msh[2:6] == ["SAA-LAB", "REFLAB", "ONCO-EHR", "CHILDRENS"]
    assert (msh[6], msh[8], msh[9], msh[10], msh[11]) == (
        "20261120093000+0000",
        "ACK^O21^ACK",
        "ACK0001",
        "P",
        "2.5.1",
    )
    assert ack["MSA"][0][1:3] == ["AE", "OML0001"]
    errs = {err[2]: err for err in ack["ERR"]}
    assert set(errs) == {"PID^1^3", "OBX^1^5", "OBX^2^6"}
    assert errs["PID^1^3"][3:5] == ["101^Required field missing^HL70357", "E"]
    assert errs["OBX^1^5"][3:5] == ["103^Table value not found^HL70357", "E"]
    assert errs["OBX^2^6"][4] == "W"
    assert errs["OBX^1^5"][8].startswith("OBX-5 (SAA-FORM): formulation 'Aspirin' is unknown")


def test_ack_for_garbage_still_parses() -> None:
    for garbage in ("garbage", "", "\x00\x01"):
        reading = read(garbage)
        ack = ack_for(garbage, reading)
        parsed = parse_message(ack, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        assert parsed.msa.msa_1.to_er7() == "AR"
        assert parsed.msh.msh_12.to_er7() == "2.5.1"


def test_ack_escapes_text_and_requires_an_aware_time() -> None:
    problem = OrderProblem(segment="PID", field="PID-5", message="a|b^c&d~e\\f\x07")
    ack = build_ack(
        ORM_231, "AE", [problem], sending_application="SAA|LAB", sending_facility="R",
        now=NOW, control_id="X",
    )  # fmt: skip
    assert "SAA\\F\\LAB" in ack
    assert "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f " in ack
    with pytest.raises(ValueError, match="timezone-aware"):
        build_ack(ORM_231, "AA", [], sending_application="S", sending_facility="R",
                  now=datetime(2026, 1, 1))  # fmt: skip


def test_random_ack_control_ids_differ() -> None:
    acks = {
        build_ack(ORM_231, "AA", [], sending_application="S", sending_facility="R", now=NOW)
        for _ in range(20)
    }
    assert len({a.split("|")[9] for a in acks}) == 20


# --- the handler ----------------------------------------------------------------------


def test_order_handler_stores_accepted_and_flagged_orders_but_not_rejected_ones() -> None:
    saved: list[OrderReading] = []
    handle = order_handler(
        saved.append, zone=BERLIN, sending_application="SAA-LAB", sending_facility="REFLAB",
        clock=lambda: NOW,
    )  # fmt: skip
    assert "MSA|AA|ORM0001" in handle(ORM_231)
    flagged = swap(ORM_231, "MRN778899^^^CHILDRENS^MR~4711^^^NAT^NI", "")
    assert "MSA|AE|ORM0001" in handle(flagged)
    assert "MSA|AR|" in handle("garbage")
    assert [r.ack_code for r in saved] == ["AA", "AE"]
    assert saved[1].orders[0].patient_id is None


def test_order_handler_lets_a_storage_failure_propagate() -> None:
    def broken(reading: OrderReading) -> None:
        raise ConnectionError("database down")

    handle = order_handler(broken, zone=BERLIN, sending_application="S", sending_facility="R")
    with pytest.raises(ConnectionError):
        handle(ORM_231)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Asparaginase", "SAA-FORM"),
        ("Drug administered", "SAA-FORM"),
        ("Asparaginase formulation administered", "SAA-FORM"),
        ("Drug dose", "SAA-DOSE"),
        ("Dosage (IU/m2)", "SAA-DOSE"),
        ("Date and time of last asparaginase dose", "SAA-DOSE-TIME"),
        ("Administration date", "SAA-DOSE-TIME"),
        ("Dose route", "SAA-ROUTE"),
        ("Treatment regimen", "SAA-PROTOCOL"),
        ("Allergic reaction", "SAA-REACTION"),
        ("Time of hypersensitivity reaction", "SAA-REACTION-TIME"),
        ("Reaction severity", "SAA-REACTION-GRADE"),
        ("Body weight", None),
    ],
)
def test_question_names_are_classified(name: str, expected: str | None) -> None:
    head = ORM_231.split("\rOBX|1|")[0]
    reading = read(f"{head}\rOBX|1|ST|^{name}||x")
    unknown = [p for p in reading.errors if p.field == "OBX-3"]
    if expected is None:
        assert unknown
        return
    assert not unknown
    if expected == "SAA-PROTOCOL":
        assert reading.orders[0].protocol == "x"
    else:  # "x" is no valid answer to any other question: the OBX is named with our code
        assert any(p.segment == "OBX" and p.field == f"OBX-5 ({expected})" for p in reading.errors)

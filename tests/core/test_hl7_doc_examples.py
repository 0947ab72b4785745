"""The ORU^R01 examples in docs/hl7-interface.md are the real builder's output.

Each example is one result put through the pipeline's own steps for a fixed input:
``interpret`` with the packaged protocols (the comment and recommendation),
``release.build_message`` (destination, version, units, reference range, flags) and
``build_oru_r01``; only MSH-10 and the clock are fixed. The doc holds each message
after a marker ``<!-- oru-example: NAME -->``, one segment per line. After a reviewed
change, regenerate the blocks with ``SAA_LAB_REGENERATE_DOCS=1 pytest`` on this file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import REPO, assert_hl7_strict_valid

from saa_lab import release
from saa_lab.calibrate import SampleResult, SampleStatus
from saa_lab.config import AppConfig
from saa_lab.interpret import InterpretationRules, interpret
from saa_lab.orders import OrderContext
from saa_lab.protocols import load_protocols
from saa_lab.review import WITHDRAWN

DOC = REPO / "docs" / "hl7-interface.md"
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 21, 14, 30, tzinfo=BERLIN)
# A marker, then a text block whose lines are not fences.
MARKER = re.compile(r"(<!-- oru-example: ([a-z0-9-]+) -->\n```text\n)((?:(?!```).*\n)*?)(```)")

CONFIG = {
    "lab": {"timezone": "Europe/Berlin", "sending_application": "SAA-LAB",
            "sending_facility": "REFLAB"},
    "destinations": [
        {"name": "onco-ehr", "type": "mllp", "host": "ehr.example.org", "port": 2575,
         "receiving_application": "ONCO-EHR"},
        {"name": "north-lis", "type": "mllp", "host": "lis.north.example.org", "port": 2575,
         "version": "2.4", "units": "U/mL", "receiving_application": "NORTH-LIS"},
        {"name": "legacy", "type": "directory", "path": "out/legacy", "version": "2.3.1",
         "receiving_application": "WEST-LIS"},
    ],
    "routing": {"clinics": {"CHILDRENS": "onco-ehr", "NORTH": "north-lis",
                            "WEST": "legacy"}},
}  # fmt: skip


@dataclass(frozen=True)
class Example:
    control_id: str
    sample: SampleResult
    order: OrderContext | None
    status: str = ""  # OBX-11 when not F/X: P (preliminary), C (corrected), W (withdrawn)
    lab_comments: tuple[str, ...] = ()
    correction_note: str | None = None


def _sample(accession: str, activity: float | None, comparator: str = "=",
            status: str = SampleStatus.QUANTIFIED, *notes: str,
            dilution: float = 1.0) -> SampleResult:  # fmt: skip
    replicates = (activity, activity) if activity is not None else (None, None)
    return SampleResult(accession, ("G3", "H3"), dilution, replicates, activity, 2.1 if activity
                        else None, activity, comparator, status, notes)  # fmt: skip


def _order(accession: str, clinic: str, formulation: str, dose: str, collected: str,
           protocol: str | None = None, **extra: str) -> OrderContext:  # fmt: skip
    return OrderContext(
        accession=accession,
        patient_id=extra.get("patient_id", "MRN778899"),
        formulation=formulation,
        dose_time=datetime.fromisoformat(dose).replace(tzinfo=BERLIN),
        collection_time=datetime.fromisoformat(collected).replace(tzinfo=BERLIN),
        protocol=protocol,
        clinic=clinic,
        placer_order_number=extra.get("placer", "ORD-55123"),
        source="hl7",
    )


EXAMPLES = {
    # PEG-asparaginase day 7, AIEOP-BFM ALL 2009: at or above 100 U/L (NM, N); v2.5.1 U/L
    "therapeutic": Example(
        "SAA26-000101",
        _sample("A26-004711", 249.6),
        _order(
            "A26-004711",
            "CHILDRENS",
            "peg-asparaginase",
            "2026-11-13T09:00",
            "2026-11-20T08:30",
            "AIEOP-BFM ALL 2009",
        ),
    ),
    # the same time point below 100 U/L (NM, L), to a v2.4 destination that wants U/mL
    "below-threshold": Example(
        "SAA26-000102",
        _sample("A26-004712", 59.4),
        _order(
            "A26-004712",
            "NORTH",
            "peg-asparaginase",
            "2026-11-13T10:00",
            "2026-11-20T09:10",
            "AIEOP-BFM ALL 2009",
            patient_id="PAT-1002",
            placer="N-7781",
        ),
    ),
    # Erwinia 48 h, below the LLOQ (SN <^5) to a v2.3.1 directory destination
    "below-lloq": Example(
        "SAA26-000103",
        _sample("A26-004713", 5.0, "<", SampleStatus.BELOW_LLOQ),
        _order(
            "A26-004713",
            "WEST",
            "erwinia",
            "2026-11-18T08:00",
            "2026-11-20T08:00",
            patient_id="W-220431",
            placer="W-99120",
        ),
    ),
    # above the ULOQ at the highest validated dilution (1:20): SN >^20000
    "above-reportable": Example(
        "SAA26-000104",
        _sample("A26-004714", 20000.0, ">", SampleStatus.ABOVE_REPORTABLE, dilution=20),
        _order(
            "A26-004714",
            "CHILDRENS",
            "peg-asparaginase",
            "2026-11-19T09:00",
            "2026-11-20T09:00",
            patient_id="MRN100234",
            placer="ORD-55140",
        ),
    ),
    # no valid result (OBX-11 and OBR-25 X, OBX-5 empty)
    "invalid": Example(
        "SAA26-000105",
        _sample(
            "A26-004715",
            None,
            "=",
            SampleStatus.INVALID,
            "replicate CV 35.3 % exceeds the 15 % limit",
        ),
        _order(
            "A26-004715",
            "CHILDRENS",
            "peg-asparaginase",
            "2026-11-13T09:00",
            "2026-11-20T09:00",
            patient_id="MRN100235",
            placer="ORD-55141",
        ),
    ),
    # DCOG ALL-11 day-14 PEG trough above its 100-250 U/L band (OBX-7 100-250, OBX-8 H)
    "protocol-band": Example(
        "SAA26-000106",
        _sample("A26-004716", 819.4),
        _order(
            "A26-004716",
            "CHILDRENS",
            "peg-asparaginase",
            "2026-11-06T09:00",
            "2026-11-20T09:00",
            "DCOG ALL-11",
            patient_id="MRN100236",
            placer="ORD-55142",
        ),
    ),
    # waiting for review at a destination with preliminary = true (OBX-11 P)
    "preliminary": Example(
        "SAA26-000107",
        _sample("A26-004717", 249.6),
        _order(
            "A26-004717",
            "CHILDRENS",
            "peg-asparaginase",
            "2026-11-13T09:00",
            "2026-11-20T08:30",
            "AIEOP-BFM ALL 2009",
            patient_id="MRN100237",
        ),
        status="P",
    ),
    # version 2 of a released result (OBX-11 C): a new value, a note for the clinic
    "corrected": Example(
        "SAA26-000108",
        _sample("A26-004718", 61.2),
        _order(
            "A26-004718",
            "CHILDRENS",
            "peg-asparaginase",
            "2026-11-13T09:00",
            "2026-11-20T08:30",
            "AIEOP-BFM ALL 2009",
            patient_id="MRN100238",
        ),
        status="C",
        lab_comments=("Value re-read after a pipetting error was found on the plate.",),
        correction_note=(
            "Corrected report (version 2): replaces the result issued "
            "2026-11-21 14:30 CET, 249.6 U/L (0.25 IU/mL)."
        ),
    ),
    # a preliminary result taken back after its run was rejected at review (X, no value)
    "withdrawn": Example(
        "SAA26-000109",
        _sample("A26-004717", 249.6),
        _order(
            "A26-004717",
            "CHILDRENS",
            "peg-asparaginase",
            "2026-11-13T09:00",
            "2026-11-20T08:30",
            "AIEOP-BFM ALL 2009",
            patient_id="MRN100237",
        ),
        status="W",
    ),
}


def build_examples(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Every example message as ER7 (segments joined by CR)."""
    config = AppConfig.model_validate({**CONFIG, "base_dir": Path("/nonexistent")})
    catalog = load_protocols(config.search_dirs("protocols"),
                             config.interpretation.default_protocol)  # fmt: skip
    rules = InterpretationRules(threshold_u_per_l=config.interpretation.threshold_u_per_l)
    built: dict[str, str] = {}
    for name, example in EXAMPLES.items():
        control_id = example.control_id
        monkeypatch.setattr(release, "new_control_id", lambda: control_id)  # noqa: B023
        order = example.order
        interpretation = interpret(
            example.sample, order, rules, protocol=catalog.select(order.protocol if order else None)
        )
        status = "X" if example.sample.status == SampleStatus.INVALID else "F"
        sample = example.sample
        content = release.ReportContent.of(
            sample.accession, sample.activity_u_per_l, sample.comparator, interpretation, order, NOW
        )
        content = replace(content, lab_comments=example.lab_comments,
                          correction_note=example.correction_note)  # fmt: skip
        if example.status == "W":
            content = content.withdrawn(WITHDRAWN)
        elif example.status:
            status = example.status
        message = release.build_message(config, content, status, NOW)
        assert message.control_id == example.control_id
        built[name] = message.payload
    built["batch"] = _batch([built["therapeutic"], built["protocol-band"]])
    return built


def _batch(messages: list[str]) -> str:
    from saa_lab.hl7 import build_batch

    return build_batch(messages, control_id="3F9A0C21D4E5B6A78C9D", created=NOW,
                       name="run-17-3F9A0C21")  # fmt: skip


def test_the_doc_examples_are_the_builders_output(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    built = build_examples(monkeypatch)
    for name, er7 in built.items():
        if name != "batch":
            assert_hl7_strict_valid(er7, tmp_path / f"{name}.txt")
    text = DOC.read_text(encoding="utf-8")
    if os.environ.get("SAA_LAB_REGENERATE_DOCS") == "1":
        text = MARKER.sub(lambda m: m.group(1) + built[m.group(2)].replace("\r", "\n") + "\n"
                          + m.group(4), text)  # fmt: skip
        DOC.write_text(text, encoding="utf-8")
    documented = {m.group(2): m.group(3) for m in MARKER.finditer(text)}
    assert sorted(documented) == sorted(built), "every example is in the doc, once"
    for name, er7 in built.items():
        assert documented[name] == er7.replace("\r", "\n") + "\n", f"doc example {name!r} drifted"


def test_the_examples_cover_every_result_type(monkeypatch: pytest.MonkeyPatch) -> None:
    obx = {
        name: next(s for s in er7.split("\r") if s.startswith("OBX|1|")).split("|")
        for name, er7 in build_examples(monkeypatch).items()
        if name != "batch"
    }
    assert [obx["therapeutic"][i] for i in (2, 5, 7, 8, 11)] == ["NM", "249.6", ">=100", "N", "F"]
    assert [obx["below-threshold"][i] for i in (2, 5, 6, 8)] == [
        "NM", "0.0594", "U/mL^U/mL^UCUM", "L"
    ]  # fmt: skip
    assert [obx["below-lloq"][i] for i in (2, 5)] == ["SN", "<^5"]
    assert [obx["above-reportable"][i] for i in (2, 5, 8)] == ["SN", ">^20000", ">"]
    assert [obx["invalid"][i] for i in (5, 8, 11)] == ["", "", "X"]
    assert [obx["protocol-band"][i] for i in (7, 8)] == ["100-250", "H"]
    assert [obx["preliminary"][i] for i in (5, 11)] == ["249.6", "P"]
    assert [obx["corrected"][i] for i in (5, 8, 11)] == ["61.2", "L", "C"]
    assert [obx["withdrawn"][i] for i in (5, 8, 11)] == ["", "", "X"]
    built = build_examples(monkeypatch)
    obr = {n: next(s for s in m.split("\r") if s.startswith("OBR|")).split("|")
           for n, m in built.items() if n != "batch"}  # fmt: skip
    assert [obr[n][25] for n in ("preliminary", "corrected", "withdrawn")] == ["P", "C", "X"]
    assert "Corrected report (version 2)" in built["corrected"]
    assert "Preliminary result withdrawn" in built["withdrawn"]

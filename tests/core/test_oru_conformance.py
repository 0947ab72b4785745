"""ORU^R01 conformance of every message the pipeline produces, per destination.

The bundled Gen5 sample is processed with a worklist whose clinics route results to
four destinations (v2.3.1 U/L, v2.4 U/mL, v2.5.1 U/mL and the default file outbox,
v2.5.1 U/L) and with a LOINC-style OBX-3 code. Every message must pass hl7apy STRICT
parsing and validation at its own version AND be read back by the small ER7 reader
below, which shares no code with ``saa_lab.hl7``, field by field against what the
worklist, the configuration and the stored result say.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import RELEASE_ON_PROCESSING, SAMPLES, assert_hl7_strict_valid
from sqlalchemy import select

from saa_lab.config import AppConfig, load_config
from saa_lab.domain import SourceFile
from saa_lab.pipeline import process_export
from saa_lab.store import Store, StoredResult
from saa_lab.store.models import OutboxMessage, ResultRow
from saa_lab.worklist import parse_worklist

EXPORT = SAMPLES / "biotek_gen5" / "RUN-G5-001.txt"
BERLIN = ZoneInfo("Europe/Berlin")

# A LOINC-shaped placeholder: OBX-3 takes whatever code and coding system the lab sets.
CODE, CODE_TEXT, CODE_SYSTEM = "99999-9", "Asparaginase [Enzymatic activity/volume] in Serum", "LN"
ESCAPING_PROTOCOL = "Trial|A^B~C\\D&E"
ESCAPING_CLINIC = "Onko & Hämatologie"

CONFIG = f"""
{RELEASE_ON_PROCESSING}
[lab]
timezone = "Europe/Berlin"
sending_application = "SAA-LAB-T"
sending_facility = "REFLAB-T"

[hl7]
observation_code = "{CODE}"
observation_text = "{CODE_TEXT}"
coding_system = "{CODE_SYSTEM}"

[[destinations]]
name = "legacy"
type = "directory"
path = "out/legacy"
version = "2.3.1"
units = "U/L"
receiving_application = "LEGACY-LIS"

[[destinations]]
name = "mid"
type = "mllp"
host = "127.0.0.1"
port = 2575
version = "2.4"
units = "U/mL"

[[destinations]]
name = "modern"
type = "directory"
path = "out/modern"
version = "2.5.1"
units = "U/mL"

[routing]
clinics = {{ "CLINIC-A" = "legacy", "CLINIC-B" = "mid", "CLINIC-C" = "modern" }}
"""

# destination: (MSH-12, OBX-6 units, MSH-5)
DESTINATIONS = {
    "legacy": ("2.3.1", "U/L", "LEGACY-LIS"),
    "mid": ("2.4", "U/mL", "CLINIC-EHR"),
    "modern": ("2.5.1", "U/mL", "CLINIC-EHR"),
    "file": ("2.5.1", "U/L", "CLINIC-EHR"),
}
THRESHOLD = {"U/L": ">=100", "U/mL": ">=0.1"}
BAND = {"U/L": "100-250", "U/mL": "0.1-0.25"}

PEG, ERW = "PEG-asparaginase", "Erwinia asparaginase"
# The sample's wells with orders that exercise every message variant. SAA-0006 sits at
# the highest validated dilution (1:20): above the ULOQ there it is reported as ">";
# SAA-0011 at 1:1 waits for its re-assay and must produce no message.
WORKLIST_ROWS = [
    # wells, accession, dilution, patient, formulation, dose, collection, protocol, clinic, placer
    ("G3 H3", "SAA-0001", 1, "PAT-1001", "PEG-asparaginase", "2026-11-13T09:00",
     "2026-11-20T08:30", "AIEOP-BFM-2009", "CLINIC-A", "PL-0001"),
    ("A4 B4", "SAA-0002", 1, "PAT-1002", "pegaspargase", "2026-11-13T10:00",
     "2026-11-20T09:10", "AIEOP-BFM-2009", "CLINIC-B", "PL-0002"),
    ("C4 D4", "SAA-0003", 1, "PAT-1003", "Erwinia", "2026-11-18T08:00",
     "2026-11-20T08:00", "", "CLINIC-C", "PL-0003"),
    ("E4 F4", "SAA-0004", 1, "PAT-1004", "Erwinia", "2026-11-18T08:00",
     "2026-11-20T08:00", "", "CLINIC-A", ""),
    ("G4 H4", "SAA-0005", 1, "PAT-1005", "PEG-asparaginase", "2026-11-06T09:00",
     "2026-11-20T09:00", "DCOG-ALL11", "CLINIC-B", ""),
    ("A5 B5", "SAA-0006", 20, "", "", "", "", "", "", ""),
    ("C5 D5", "SAA-0007", 10, "", "", "", "", "", "", ""),
    ("E5 F5", "SAA-0008", 1, "PAT-1008", "PEG-asparaginase", "2026-11-06T09:00",
     "2026-11-20T09:00", "DCOG-ALL11", "CLINIC-C", ""),
    ("G5 H5", "SAA-0009", 1, "", "", "", "", "", "CLINIC-A", ""),
    ("A6 B6", "SAA-0010", 1, "PAT-1010", "PEG-asparaginase", "2026-11-06T09:00",
     "2026-11-20T09:00", "DCOG-ALL11", "CLINIC-A", ""),
    ("C6 D6", "SAA-0011", 1, "", "", "", "", "", "", ""),
    ("E6 F6", "SAA-0012", 1, "PAT-1012", "crisantaspase", "2026-11-17T09:00",
     "2026-11-20T09:00", "DCOG-ALL11", "CLINIC-NORTH", ""),
    ("G6 H6", "SAA-0013", 1, "PAT-1013", "PEG-asparaginase", "2026-11-13T09:00",
     "2026-11-20T09:00", ESCAPING_PROTOCOL, ESCAPING_CLINIC, ""),
    ("A7 B7", "SAA-0014", 5, "", "", "", "", "", "", ""),
]  # fmt: skip


@dataclass(frozen=True)
class Expect:
    destination: str
    value_type: str  # OBX-2: NM, SN; "" for no result (OBX-5 empty, status X)
    band: bool  # OBX-7 the protocol's band rather than the threshold
    flag: str  # OBX-8
    formulation: str | None = None  # AOE OBX SAA-FORM text


EXPECTED = {
    "SAA-0001": Expect("legacy", "NM", False, "N", PEG),
    "SAA-0002": Expect("mid", "NM", False, "L", PEG),
    "SAA-0003": Expect("modern", "SN", False, "L", ERW),  # <LLOQ after Erwinia
    "SAA-0004": Expect("legacy", "SN", False, "L", ERW),
    "SAA-0005": Expect("mid", "NM", True, "H", PEG),  # above the DCOG ALL-11 band
    "SAA-0006": Expect("file", "SN", False, ">"),  # above the reportable range
    "SAA-0007": Expect("file", "NM", False, "N"),
    "SAA-0008": Expect("modern", "NM", True, "N", PEG),  # within the band
    "SAA-0009": Expect("legacy", "", False, ""),  # invalid: OBX-11 X
    "SAA-0010": Expect("legacy", "NM", True, "L", PEG),  # below the band
    "SAA-0012": Expect("file", "NM", False, "L", ERW),  # clinic without a route
    "SAA-0013": Expect("file", "NM", False, "L", PEG),
    "SAA-0014": Expect("file", "NM", False, "N"),
}


# --- an independent ER7 reader -----------------------------------------------------------

_ESCAPE = re.compile(r"\\(F|S|T|R|E|\.br)\\")
_UNESCAPED = {"F": "|", "S": "^", "T": "&", "R": "~", "E": "\\", ".br": "\n"}


def unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: _UNESCAPED[m.group(1)], text)


class Er7:
    """Segments split on CR, fields on ``|`` (MSH-1 is the separator), components on ``^``."""

    def __init__(self, text: str) -> None:
        assert "\n" not in text
        assert text.startswith("MSH|^~\\&|")
        self.segments = []
        for line in text.split("\r"):
            fields = line.split("|")
            if fields[0] == "MSH":
                fields.insert(1, "|")
            self.segments.append(fields)

    @property
    def names(self) -> list[str]:
        return [s[0] for s in self.segments]

    def all(self, name: str) -> list[list[str]]:
        return [s for s in self.segments if s[0] == name]

    def raw(self, name: str, number: int, occurrence: int = 0) -> str:
        segment = self.all(name)[occurrence]
        return segment[number] if number < len(segment) else ""

    def text(self, name: str, number: int, occurrence: int = 0) -> str:
        return unescape(self.raw(name, number, occurrence))

    def parts(self, name: str, number: int, occurrence: int = 0) -> list[str]:
        return [unescape(c) for c in self.raw(name, number, occurrence).split("^")]

    def observation(self, code: str) -> list[str]:
        (found,) = [s for s in self.all("OBX") if s[3].split("^")[0] == code]
        return found


# --- processing the sample ---------------------------------------------------------------


@dataclass(frozen=True)
class Produced:
    accession: str
    destination: str
    control_id: str
    payload: str
    result: StoredResult


def _worklist_csv() -> str:
    header = "well,accession,dilution,patient_id,formulation,dose_time,collection_time,"
    lines = [header + "protocol,clinic,placer_order_number"]
    for wells, *values in WORKLIST_ROWS:
        cells = ['"' + str(v).replace('"', '""') + '"' for v in values]
        lines.extend(",".join([well, *cells]) for well in wells.split())
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def conformance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppConfig, Store]]:
    folder = tmp_path_factory.mktemp("conformance")
    (folder / "saa-lab.toml").write_text(CONFIG, encoding="utf-8")
    config = load_config(folder / "saa-lab.toml")
    store = Store(config.database_url)
    worklist_path = folder / "RUN-G5-001.worklist.csv"
    worklist_path.write_text(_worklist_csv(), encoding="utf-8")
    worklist = parse_worklist(SourceFile.from_path(worklist_path), zone=config.lab.zone)
    process_export(store, config, SourceFile.from_path(EXPORT, timezone=config.lab.zone),
                   worklist_for=lambda _read: worklist)  # fmt: skip
    yield config, store
    store.close()


@pytest.fixture(scope="module")
def produced(conformance: tuple[AppConfig, Store]) -> list[Produced]:
    _config, store = conformance
    (run,) = store.recent_runs()
    results = {r.id: r for r in run.results}
    with store.session() as s:
        rows = s.execute(
            select(OutboxMessage, ResultRow.accession)
            .join(ResultRow, OutboxMessage.result_id == ResultRow.id)
            .order_by(OutboxMessage.id)
        ).all()
        return [
            Produced(accession, m.destination, m.control_id, m.payload, results[m.result_id])
            for m, accession in rows
        ]


def orders() -> dict[str, tuple[object, ...]]:
    return {row[1]: row for row in WORKLIST_ROWS}


def hl7_time(local: str) -> str:
    """The worklist's local time as HL7 TS with the lab's UTC offset (independently)."""
    moment = datetime.fromisoformat(local).replace(tzinfo=BERLIN)
    offset = moment.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{moment:%Y%m%d%H%M%S}{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


# --- the tests ----------------------------------------------------------------------------


def test_every_reported_result_produced_exactly_one_message(produced: list[Produced]) -> None:
    assert sorted(p.accession for p in produced) == sorted(EXPECTED)
    assert "SAA-0011" not in {p.accession for p in produced}  # >ULOQ waits for re-assay
    assert {p.accession: p.destination for p in produced} == {
        a: e.destination for a, e in EXPECTED.items()
    }


def test_message_control_ids_are_unique_and_those_of_the_results(
    produced: list[Produced],
) -> None:
    ids = [Er7(p.payload).raw("MSH", 10) for p in produced]
    assert len(set(ids)) == len(ids)
    for p, control_id in zip(produced, ids, strict=True):
        assert control_id == p.control_id
        assert p.result.control_ids == (control_id,)
        assert re.fullmatch(r"[A-Za-z0-9._-]{1,20}", control_id)


def test_every_message_passes_hl7apy_strict_validation_at_its_version(
    produced: list[Produced], tmp_path: Path
) -> None:
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message

    for number, p in enumerate(produced):
        version = DESTINATIONS[p.destination][0]
        assert_hl7_strict_valid(p.payload, tmp_path / f"report-{number}.txt")
        message = parse_message(
            p.payload, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True
        )
        assert message.version == version, p.accession


@pytest.mark.parametrize("accession", sorted(EXPECTED))
def test_fields_read_back_independently(accession: str, produced: list[Produced]) -> None:
    (p,) = [x for x in produced if x.accession == accession]
    expect = EXPECTED[accession]
    version, units, receiving_application = DESTINATIONS[p.destination]
    _wells, _acc, _dil, patient, _form, dose, collected, _prot, clinic, placer = orders()[accession]
    msg = Er7(p.payload)
    result = p.result
    body = ["PID", "ORC", "OBR", "OBX", *["NTE"] * len(msg.all("NTE"))]
    body += ["OBX", "OBX"] if expect.formulation else []
    assert msg.names == ["MSH", *body]

    # MSH: sending from [lab], receiving application per destination, facility = clinic
    assert msg.text("MSH", 3) == "SAA-LAB-T"
    assert msg.text("MSH", 4) == "REFLAB-T"
    assert msg.text("MSH", 5) == receiving_application
    assert msg.text("MSH", 6) == (clinic or "CLINIC")
    assert msg.parts("MSH", 9) == ["ORU", "R01", "ORU_R01"]
    assert msg.raw("MSH", 10) == p.control_id
    assert msg.raw("MSH", 12) == version

    # PID-3: the order's patient, or the accession (ACSN) when there is no order
    if patient:
        assert msg.parts("PID", 3) == [str(patient), "", "", "", "MR"]
    else:
        assert msg.parts("PID", 3) == [accession, "", "", "REFLAB-T", "ACSN"]

    # ORC/OBR: placer and filler order numbers, collection time, result status
    assert msg.raw("ORC", 1) == "RE"
    assert msg.text("ORC", 2) == placer
    assert msg.parts("ORC", 3) == [accession, "REFLAB-T"]
    assert msg.text("OBR", 2) == placer
    assert msg.parts("OBR", 3) == [accession, "REFLAB-T"]
    assert msg.parts("OBR", 4) == [CODE, CODE_TEXT, CODE_SYSTEM]
    assert msg.raw("OBR", 7) == (hl7_time(str(collected)) if collected else "")
    status = "X" if expect.value_type == "" else "F"
    assert msg.raw("OBR", 25) == status

    # OBX 1: the activity
    obx = msg.observation(CODE)
    assert obx[1] == "1"
    assert obx[2] == (expect.value_type or "NM")
    assert [unescape(c) for c in obx[3].split("^")] == [CODE, CODE_TEXT, CODE_SYSTEM]
    factor = 1000.0 if units == "U/mL" else 1.0
    if expect.value_type == "NM":
        assert re.fullmatch(r"\d+(\.\d+)?", obx[5]), obx[5]
        assert result.activity_u_per_l is not None and result.comparator == "="
        assert float(obx[5]) == pytest.approx(result.activity_u_per_l / factor, rel=5e-3)
        shown = obx[5]
    elif expect.value_type == "SN":
        comparator, number = obx[5].split("^")
        assert comparator == result.comparator and comparator in "<>"
        assert result.activity_u_per_l is not None
        assert float(number) == pytest.approx(result.activity_u_per_l / factor, rel=5e-3)
        shown = comparator + number
    else:
        assert obx[5] == "" and result.activity_u_per_l is None
        shown = ""
    assert obx[6].split("^") == [units, units, "UCUM"]
    assert unescape(obx[7]) == (BAND if expect.band else THRESHOLD)[units]
    assert obx[8] == expect.flag
    assert obx[11] == status
    analysed = obx[19] if len(obx) > 19 else ""  # OBX-19 arrived in v2.4
    assert re.fullmatch(r"" if version == "2.3.1" else r"\d{14}[+-]\d{4}", analysed)
    # The comment states the value in U/L and IU/mL: the unit sent must agree with it.
    if shown:
        assert f"{shown} {'IU/mL' if factor > 1 else 'U/L'}" in result.comment

    # NTE: the interpretation comment, then the recommendation
    notes = [msg.text("NTE", 3, i) for i in range(len(msg.all("NTE")))]
    assert notes == [t for t in (result.comment, result.recommendation) if t]
    assert all(msg.raw("NTE", 2, i) == "L" for i in range(len(notes)))

    # Ask-at-order-entry context: formulation and dose time
    if expect.formulation:
        form = msg.observation("SAA-FORM")
        # code (our formulation code, local coding system L) and the name
        code = {"PEG-asparaginase": "peg-asparaginase",
                "Erwinia asparaginase": "erwinia"}.get(expect.formulation)  # fmt: skip
        assert form[2] == "CE"
        assert form[5].split("^")[1] == expect.formulation
        if code:
            assert form[5].split("^") == [code, expect.formulation, "L"]
        dose_obx = msg.observation("SAA-DOSE-TIME")
        assert (dose_obx[2], dose_obx[5]) == ("TS", hl7_time(str(dose)))
        assert form[11] == dose_obx[11] == "F"
        assert [form[1], dose_obx[1]] == ["2", "3"]


def test_u_per_ml_values_are_the_u_per_l_values_divided_by_1000(
    produced: list[Produced],
) -> None:
    per_ml = [p for p in produced if DESTINATIONS[p.destination][1] == "U/mL"]
    assert {p.destination for p in per_ml} == {"mid", "modern"}
    for p in per_ml:
        value = Er7(p.payload).observation(CODE)[5].split("^")[-1]
        assert p.result.activity_u_per_l is not None
        assert float(value) == pytest.approx(p.result.activity_u_per_l / 1000, rel=5e-3)
    below = next(p for p in per_ml if p.accession == "SAA-0003")
    assert Er7(below.payload).observation(CODE)[5] == "<^0.005"  # <5 U/L


def test_above_the_reportable_range_is_sn_greater_than(produced: list[Produced]) -> None:
    (p,) = [x for x in produced if x.accession == "SAA-0006"]
    obx = Er7(p.payload).observation(CODE)
    assert (obx[2], obx[5], obx[8]) == ("SN", ">^20000", ">")  # 1000 U/L ULOQ x 1:20
    assert "above the reportable range" in p.result.comment


def test_delimiters_in_order_text_round_trip_escaped(produced: list[Produced]) -> None:
    (p,) = [x for x in produced if x.accession == "SAA-0013"]
    msg = Er7(p.payload)
    comment = msg.text("NTE", 3)
    assert repr(ESCAPING_PROTOCOL) in comment  # named back in the comment as not configured
    assert comment == p.result.comment
    raw = msg.raw("NTE", 3)
    assert "Trial\\F\\A\\S\\B\\R\\C\\E\\\\E\\D\\T\\E" in raw
    assert len(msg.all("NTE")[0]) == 4  # no delimiter leaked out of NTE-3
    assert msg.text("MSH", 6) == ESCAPING_CLINIC
    assert msg.raw("MSH", 6) == "Onko \\T\\ Hämatologie"
    assert msg.text("ORC", 21) == ESCAPING_CLINIC
    assert msg.raw("MSH", 18) == "UNICODE UTF-8"


@pytest.mark.parametrize("destination", ["legacy", "mid", "modern", "file"])
def test_escaping_in_the_interpretation_comment_at_every_version(
    destination: str, conformance: tuple[AppConfig, Store], tmp_path: Path
) -> None:
    """release.build_message directly: every delimiter and a line break in the comment."""
    from saa_lab.calibrate import SampleResult, SampleStatus
    from saa_lab.interpret import Interpretation
    from saa_lab.orders import OrderContext
    from saa_lab.release import ReportContent, build_message

    config, _store = conformance
    clinic = {"legacy": "CLINIC-A", "mid": "CLINIC-B", "modern": "CLINIC-C"}.get(destination)
    comment = "pipe | caret ^ tilde ~ backslash \\ amp & \\F\\ literal\nsecond line"
    sample = SampleResult("ACC|1^&", ("A1", "A2"), 1.0, (150.0, 152.0), 151.0, 0.9, 151.0,
                          "=", SampleStatus.QUANTIFIED)  # fmt: skip
    interpretation = Interpretation(flag="therapeutic", comment=comment, rule_id="t",
                                    abnormal_flag="N", recommendation="a~b")  # fmt: skip
    order = OrderContext(accession="ACC|1^&", patient_id="P|1", clinic=clinic,
                         placer_order_number="PL^7", formulation="erwinia",
                         dose_time=datetime(2026, 11, 18, 8, 0, tzinfo=BERLIN),
                         collection_time=datetime(2026, 11, 20, 8, 0, tzinfo=BERLIN))  # fmt: skip
    now = datetime(2026, 11, 21, 14, 30, tzinfo=BERLIN)
    content = ReportContent.of(sample.accession, sample.activity_u_per_l, sample.comparator,
                               interpretation, order, now)  # fmt: skip
    message = build_message(config, content, "F", now)
    assert message.destination == destination
    assert_hl7_strict_valid(message.payload, tmp_path / "report.txt")
    msg = Er7(message.payload)
    version, units, _app = DESTINATIONS[destination]
    assert msg.raw("MSH", 12) == version
    assert [msg.text("NTE", 3, 0), msg.text("NTE", 3, 1)] == [comment, "a~b"]
    assert msg.raw("NTE", 3, 0) == (
        "pipe \\F\\ caret \\S\\ tilde \\R\\ backslash \\E\\ amp \\T\\ \\E\\F\\E\\ literal"
        "\\.br\\second line"
    )
    assert msg.parts("PID", 3)[0] == "P|1"
    assert msg.text("ORC", 2) == "PL^7"
    assert msg.parts("OBR", 3) == ["ACC|1^&", "REFLAB-T"]
    assert msg.observation(CODE)[6].split("^")[0] == units
    assert [len(s) for s in msg.all("NTE")] == [4, 4]  # nothing leaked out of NTE-3

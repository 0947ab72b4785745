"""Review and release by people (issue 7): auto-verification, `saa-lab review`, release,
reject, conflicts between two people, preliminary results, and `saa-lab status`.

Most tests process the bundled Gen5 sample (RUN-G5-001 with its worklist) with the
shipped auto-verification rule. Its 14 results: SAA-0006 and SAA-0011 are above the
ULOQ (state "reassay", never sent), SAA-0009 has no valid result (OBX-11 X), SAA-0002
and SAA-0004 are flagged possible-silent-inactivation; the run is accepted with the
Westgard warnings of a new control lot ("mean/SD not yet established"). Under the
default rule the whole run waits for a person, because some of its results are above
the ULOQ or invalid.

Other plates are invented on the designed AHA curve (saa_lab.synth, no noise), with
invented accessions and patients. Every test runs on SQLite and, when
SAA_LAB_TEST_DATABASE_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import json
import re
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import REVIEW_DEFAULTS, SAMPLES, assert_hl7_strict_valid, write_config
from sqlalchemy import event, select

from saa_lab.cli import cli
from saa_lab.config import AppConfig, AutoVerificationRule, load_config
from saa_lab.errors import ConflictError, ReviewError
from saa_lab.records import OutgoingMessage
from saa_lab.release import ReportContent, build_message
from saa_lab.review import Target, parse_target, reject, release
from saa_lab.store import Store
from saa_lab.store import review as store_review
from saa_lab.store.models import OutboxMessage, ResultRow
from saa_lab.synth import (
    NOMINAL_BLANK,
    NOMINAL_SLOPE,
    PlannedSample,
    gen5_text,
    plate_values,
    worklist_csv,
)

GEN5 = SAMPLES / "biotek_gen5" / "RUN-G5-001.txt"
ALL = {f"SAA-{n:04d}" for n in range(1, 15)}
ABOVE_ULOQ = {"SAA-0006", "SAA-0011"}  # wait for their re-assay: never sent
INVALID = "SAA-0009"  # no valid result: OBX-11 X
SILENT = {"SAA-0002", "SAA-0004"}  # possible-silent-inactivation
REPORTED = ALL - ABOVE_ULOQ  # the 12 results a person releases (11 F and 1 X)
WITH_VALUE = REPORTED - {INVALID}
NORTH = {"SAA-0001", "SAA-0002", "SAA-0004", "SAA-0012"}  # CLINIC-NORTH's orders

HELD_RUN = "the run has results that are above-uloq, invalid"
HELD_FLAG = "flag possible-silent-inactivation is held for a person"
NO_RULE = "no auto-verification rule for assay 'aha-indooxine' and destination 'file'"
WITHDRAWN = "Preliminary result withdrawn"

USERS = """
[[users]]
name = "amoss"
full_name = "Ada Moss"
roles = ["reviewer", "approver"]

[[users]]
name = "rvega"
full_name = "Rosa Vega"
roles = ["reviewer"]
"""
# Releases a run around its samples above the ULOQ and its invalid result, but keeps
# the default hold_flags: SAA-0002 and SAA-0004 wait, the other results leave.
AROUND_REASSAY = """
[[autoverification]]
name = "around-reassay"
run_statuses = ["quantified", "below-lloq", "above-uloq", "invalid"]
"""
PRELIMINARY = """
[[destinations]]
name = "ehr"
type = "directory"
path = "ehr-out"
preliminary = true

[routing]
default = "ehr"
"""
NORTH_DIRECTORY = """
[[destinations]]
name = "north"
type = "directory"
path = "north-out"

[routing]
clinics = { "CLINIC-NORTH" = "north" }
"""


def od(activity_in_well: float) -> str:
    return f"{NOMINAL_BLANK + NOMINAL_SLOPE * activity_in_well:.6f}"


HIGH_CONTROL_FAILS = {"E3": od(200), "F3": od(200)}  # HIGH is 340-460 U/L


# -- a lab: config, CLI and a look into its database ---------------------------------------


@dataclass(frozen=True)
class Sent:
    """One queued message of a result."""

    id: int
    result_id: int
    accession: str
    destination: str
    report_status: str | None
    control_id: str
    payload: str


@dataclass
class Lab:
    config_path: Path
    runner: CliRunner
    _store: Store | None = field(default=None, repr=False)

    @property
    def folder(self) -> Path:
        return self.config_path.parent

    @property
    def config(self) -> AppConfig:
        return load_config(self.config_path)

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.config.database_url)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def invoke(self, *args: str) -> Result:
        return self.runner.invoke(cli, ["--config", str(self.config_path), *args])

    def ok(self, *args: str) -> str:
        result = self.invoke(*args)
        assert result.exit_code == 0, result.output
        return result.output

    def fails(self, code: int, *args: str) -> str:
        result = self.invoke(*args)
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result.output

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def process(self, export: Path = GEN5) -> dict[str, Any]:
        (plate,) = self.json("process", str(export))["plates"]
        return plate  # type: ignore[no-any-return]

    def states(self, run_id: int) -> dict[str, store_review.ResultView]:
        return {r.accession: r for r in store_review.run_view(self.store, run_id).results}

    def sent(self) -> dict[str, list[Sent]]:
        """Every queued message by accession, oldest first."""
        found: dict[str, list[Sent]] = {}
        with self.store.session() as s:
            rows = s.execute(
                select(OutboxMessage, ResultRow.accession)
                .join(ResultRow, OutboxMessage.result_id == ResultRow.id)
                .order_by(OutboxMessage.id)
            ).all()
            for m, accession in rows:
                found.setdefault(accession, []).append(
                    Sent(
                        m.id,
                        m.result_id,
                        accession,
                        m.destination,
                        m.report_status,
                        m.control_id,
                        m.payload,
                    )
                )
        return found

    def statuses_sent(self) -> dict[str, list[str | None]]:
        return {a: [m.report_status for m in ms] for a, ms in self.sent().items()}


def delivered(out: Mapping[str, Any]) -> dict[str, int]:
    """The messages a command delivered, by destination (those it delivered any to)."""
    return {name: count for name, count in out["delivered"].items() if count}


def by_accession(plate: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["accession"]: r for r in plate["results"]}


def segments(er7: str) -> dict[str, list[list[str]]]:
    found: dict[str, list[list[str]]] = {}
    for line in er7.replace("\n", "\r").split("\r"):
        if line:
            found.setdefault(line[:3], []).append(line.split("|"))
    return found


def obx(er7: str) -> list[str]:
    """The activity's OBX (the first; an order's dose and formulation follow it)."""
    return segments(er7)["OBX"][0]


def obr(er7: str) -> list[str]:
    (segment,) = segments(er7)["OBR"]
    return segment


def msh10(er7: str) -> str:
    return segments(er7)["MSH"][0][9]


def notes(er7: str) -> list[str]:
    return [segment[3] for segment in segments(er7).get("NTE", [])]


def write_export(
    folder: Path,
    stem: str,
    samples: Sequence[PlannedSample],
    overrides: Mapping[str, str] | None = None,
) -> Path:
    """An invented Gen5 export ``<stem>.txt`` with its worklist ``<stem>.worklist.csv``.

    The plate is on the designed curve without noise; its read time comes from the
    stem, so two plates with the same readings are still two exports (not a duplicate).
    """
    folder.mkdir(parents=True, exist_ok=True)
    values, rows = plate_values(samples, seed=3, noise=0.0)
    values.update(overrides or {})
    export = folder / f"{stem}.txt"
    tick = zlib.crc32(stem.encode()) % 3600
    read_at = f"10:{tick // 60:02d}:{tick % 60:02d} AM"
    export.write_text(gen5_text(values, time=read_at), encoding="utf-8")
    (folder / f"{stem}.worklist.csv").write_text(worklist_csv(rows), encoding="utf-8")
    return export


def patient_order(patient: str, collected: str, dosed: str) -> dict[str, str]:
    return {
        "patient_id": patient,
        "formulation": "PEG-asparaginase",
        "dose_time": dosed,
        "collection_time": collected,
        "clinic": "CLINIC-EAST",
    }


MakeLab = Callable[..., Lab]


@pytest.fixture
def make_lab(tmp_path: Path, database_url: str, runner: CliRunner) -> Iterator[MakeLab]:
    """A lab on this test's database with ``extra`` config (users by default) and the
    auto-verification rules given (the shipped default rule unless told otherwise)."""
    made: list[Lab] = []

    def make(extra: str = USERS, autoverification: str = REVIEW_DEFAULTS, top: str = "") -> Lab:
        path = write_config(
            tmp_path / "lab", extra, database_url=database_url, autoverification=autoverification
        )
        if top:  # top-level keys go before the first table
            path.write_text(top + path.read_text(encoding="utf-8"), encoding="utf-8")
        lab = Lab(path, runner)
        made.append(lab)
        return lab

    yield make
    for lab in made:
        lab.close()


@pytest.fixture
def lab(make_lab: MakeLab) -> Lab:
    """Users amoss (reviewer and approver) and rvega (reviewer); the default rule."""
    return make_lab()


def builder(
    config: AppConfig, *, withdraw: bool = False
) -> Callable[[dict[str, Any], str], OutgoingMessage]:
    """A message builder for the store's decisions (``withdraw``: the X taking back a
    preliminary result)."""

    def build(report: dict[str, Any], status: str) -> OutgoingMessage:
        content = ReportContent.from_json(report)
        if withdraw:
            content = content.withdrawn("Preliminary result withdrawn (test).")
        return build_message(config, content, status, datetime.now(config.lab.zone))

    return build


# == 1. auto-verification ==================================================================


def test_the_default_rule_holds_a_run_with_results_above_the_uloq_or_invalid(lab: Lab) -> None:
    plate = lab.process()
    assert (plate["status"], plate["review_status"]) == ("accepted", "waiting")
    results = by_accession(plate)
    assert set(results) == ALL
    default = AutoVerificationRule().version
    for accession in REPORTED:
        result = results[accession]
        expected = (HELD_RUN, HELD_FLAG) if accession in SILENT else (HELD_RUN,)
        assert result["review"] == {
            "state": "waiting",
            "auto_verified": False,
            "ruleset": default,
            "hold_reasons": list(expected),
        }, accession
        assert result["message_control_ids"] == []
    assert results[INVALID]["result_status"] == "X"
    for accession in ABOVE_ULOQ:
        assert results[accession]["result_status"] == "RA"
        assert results[accession]["review"] == {
            "state": "reassay",
            "auto_verified": False,
            "ruleset": None,
            "hold_reasons": [],
        }

    # Nothing left the lab, and the store says the same.
    assert lab.sent() == {}
    assert list((lab.folder / "outbox").iterdir()) == []
    view = store_review.run_view(lab.store, plate["run_id"])
    assert (view.review_status, view.review_rev, view.reviewed_by) == ("waiting", 0, None)
    assert {r.accession for r in view.waiting} == REPORTED
    stored = lab.states(plate["run_id"])
    assert stored["SAA-0002"].hold_reasons == (HELD_RUN, HELD_FLAG)
    assert stored["SAA-0001"].hold_reasons == (HELD_RUN,)
    assert all(stored[a].decided_by is None and not stored[a].auto_verified for a in REPORTED)
    assert [r.id for r in store_review.waiting_runs(lab.store)] == [plate["run_id"]]
    # The audit trail records each result's decision and why it waits.
    audit = lab.json("review", str(plate["run_id"]))["audit"]
    (run_created,) = [e for e in audit if e["action"] == "run-created"]
    assert run_created["detail"]["review_status"] == "waiting"
    created = {
        e["detail"]["accession"]: e["detail"] for e in audit if e["action"] == "result-created"
    }
    assert set(created) == ALL
    assert created["SAA-0004"]["state"] == "waiting"
    assert created["SAA-0004"]["hold_reasons"] == [HELD_RUN, HELD_FLAG]
    assert created["SAA-0004"]["ruleset"] == default
    assert created["SAA-0004"]["auto_verified"] is False
    assert created["SAA-0004"]["messages"] == []


def test_a_rule_releasing_around_reassays_still_holds_flagged_results(make_lab: MakeLab) -> None:
    lab = make_lab(autoverification=AROUND_REASSAY)
    (rule,) = lab.config.autoverification
    assert re.fullmatch(r"around-reassay@[0-9a-f]{12}", rule.version)
    plate = lab.process()
    assert (plate["status"], plate["review_status"]) == ("accepted", "waiting")
    results = by_accession(plate)
    for accession in REPORTED - SILENT:
        assert results[accession]["review"] == {
            "state": "released",
            "auto_verified": True,
            "ruleset": rule.version,
            "hold_reasons": [],
        }, accession
        assert len(results[accession]["message_control_ids"]) == 1
    for accession in SILENT:
        assert results[accession]["review"] == {
            "state": "waiting",
            "auto_verified": False,
            "ruleset": rule.version,
            "hold_reasons": [HELD_FLAG],
        }
        assert results[accession]["message_control_ids"] == []

    stored = lab.states(plate["run_id"])
    for accession in REPORTED - SILENT:
        state = stored[accession]
        assert (state.state, state.auto_verified, state.ruleset) == ("released", True, rule.version)
        assert (state.decided_by, state.meaning) == ("auto-verification", "auto-verified")
        assert state.decided_at is not None
    assert {a: (s.state, s.ruleset) for a, s in stored.items() if a in SILENT} == dict.fromkeys(
        SILENT, ("waiting", rule.version)
    )
    # One message per auto-released result: F, and X for the one without a result.
    assert lab.statuses_sent() == {a: ["X" if a == INVALID else "F"] for a in REPORTED - SILENT}
    for accession, (message,) in lab.sent().items():
        assert obx(message.payload)[11] == ("X" if accession == INVALID else "F")
        assert message.control_id in results[accession]["message_control_ids"]
    (waiting,) = store_review.waiting_runs(lab.store)
    assert {r.accession for r in waiting.waiting} == SILENT


def test_the_rule_version_names_the_rule_and_changes_with_every_setting() -> None:
    base = AutoVerificationRule(name="night")
    assert re.fullmatch(r"night@[0-9a-f]{12}", base.version)
    assert AutoVerificationRule(name="night").version == base.version
    assert AutoVerificationRule(name="night", hold_on_qc_warnings=False).version == base.version
    variants = [
        AutoVerificationRule(name="night", enabled=False),
        AutoVerificationRule(name="night", assays=("aha-indooxine",)),
        AutoVerificationRule(name="night", destinations=("file",)),
        AutoVerificationRule(name="night", hold_flags=("possible-silent-inactivation",)),
        AutoVerificationRule(name="night", run_statuses=("quantified", "below-lloq", "above-uloq")),
        AutoVerificationRule(name="night", hold_on_qc_warnings=True),
    ]
    versions = [v.version for v in variants]
    assert all(v.startswith("night@") for v in versions)
    assert len({base.version, *versions}) == len(variants) + 1
    assert AutoVerificationRule(name="day").version.startswith("day@")


def test_results_record_the_version_of_the_rule_in_force(make_lab: MakeLab, tmp_path: Path) -> None:
    lab = make_lab(autoverification='\n[[autoverification]]\nname = "night"\n')
    first_version = lab.config.autoverification[0].version
    exports = tmp_path / "exports"
    first = lab.process(write_export(exports, "NIGHT-1", [PlannedSample("NV-0001", 300)]))
    assert first["review_status"] == "auto-released"
    (one,) = first["results"]
    assert one["review"]["ruleset"] == first_version

    text = lab.config_path.read_text(encoding="utf-8")
    lab.config_path.write_text(
        text.replace(
            'name = "night"\n', 'name = "night"\nhold_flags = ["silent-inactivation-confirmed"]\n'
        ),
        encoding="utf-8",
    )
    second_version = lab.config.autoverification[0].version
    assert second_version != first_version and second_version.startswith("night@")
    second = lab.process(write_export(exports, "NIGHT-2", [PlannedSample("NV-0002", 300)]))
    (two,) = second["results"]
    assert two["review"] == {
        "state": "released",
        "auto_verified": True,
        "ruleset": second_version,
        "hold_reasons": [],
    }
    assert lab.states(first["run_id"])["NV-0001"].ruleset == first_version  # kept as it was


def test_rules_apply_per_destination_in_order(make_lab: MakeLab) -> None:
    rules = """
[[autoverification]]
name = "everything"
enabled = false
run_statuses = ["quantified", "below-lloq", "above-uloq", "above-reportable", "invalid"]
hold_flags = []

[[autoverification]]
name = "north-around-reassay"
destinations = ["north"]
run_statuses = ["quantified", "below-lloq", "above-uloq", "invalid"]

[[autoverification]]
name = "file-strict"
destinations = ["file"]

[[autoverification]]
name = "north-permissive"
destinations = ["north"]
run_statuses = ["quantified", "below-lloq", "above-uloq", "invalid"]
hold_flags = []
"""
    lab = make_lab(extra=USERS + NORTH_DIRECTORY, autoverification=rules)
    versions = {r.name: r.version for r in lab.config.autoverification}
    plate = lab.process()
    review = {a: r["review"] for a, r in by_accession(plate).items()}
    for accession in ("SAA-0001", "SAA-0012"):  # north, not flagged: released
        assert review[accession] == {
            "state": "released",
            "auto_verified": True,
            "ruleset": versions["north-around-reassay"],
            "hold_reasons": [],
        }
    for accession in SILENT:  # north, flagged: the first north rule holds them
        assert review[accession] == {
            "state": "waiting",
            "auto_verified": False,
            "ruleset": versions["north-around-reassay"],
            "hold_reasons": [HELD_FLAG],
        }
    for accession in REPORTED - NORTH:  # file: its own rule, which holds the run
        assert review[accession] == {
            "state": "waiting",
            "auto_verified": False,
            "ruleset": versions["file-strict"],
            "hold_reasons": [HELD_RUN],
        }, accession
    sent = lab.sent()
    assert set(sent) == {"SAA-0001", "SAA-0012"}
    assert {m.destination for ms in sent.values() for m in ms} == {"north"}
    assert len(list((lab.folder / "north-out").glob("*.hl7"))) == 2


@pytest.mark.parametrize(
    ("rules", "top"),
    [
        ('\n[[autoverification]]\nname = "elsewhere"\ndestinations = ["other"]\n', ""),
        ('\n[[autoverification]]\nname = "other-assay"\nassays = ["another-assay"]\n', ""),
        ("", "autoverification = []\n"),
        ('\n[[autoverification]]\nname = "off"\nenabled = false\n', ""),
    ],
    ids=["other-destination", "other-assay", "no-rules", "disabled"],
)
def test_without_a_matching_rule_every_result_waits(
    make_lab: MakeLab, rules: str, top: str
) -> None:
    lab = make_lab(autoverification=rules, top=top)
    plate = lab.process()
    assert plate["review_status"] == "waiting"
    for accession, result in by_accession(plate).items():
        if accession in REPORTED:
            assert result["review"] == {
                "state": "waiting",
                "auto_verified": False,
                "ruleset": None,
                "hold_reasons": [NO_RULE],
            }
    assert lab.sent() == {}
    assert {r.accession for r in store_review.run_view(lab.store, plate["run_id"]).waiting} == (
        REPORTED
    )


def test_hold_on_qc_warnings_holds_an_accepted_run_with_warnings(make_lab: MakeLab) -> None:
    lab = make_lab(autoverification=AROUND_REASSAY + "hold_on_qc_warnings = true\n")
    plate = lab.process()
    assert plate["status"] == "accepted" and len(plate["warnings"]) == 2
    assert all("mean/SD not yet established" in w for w in plate["warnings"])
    warned = "QC warnings: " + "; ".join(plate["warnings"])
    for accession, result in by_accession(plate).items():
        if accession in REPORTED:
            expected = [warned, HELD_FLAG] if accession in SILENT else [warned]
            assert result["review"]["state"] == "waiting"
            assert result["review"]["hold_reasons"] == expected
    assert plate["review_status"] == "waiting"
    assert lab.sent() == {}


def test_a_run_rejected_by_qc_withholds_everything_and_has_nothing_to_release(
    lab: Lab, tmp_path: Path
) -> None:
    export = write_export(
        tmp_path / "exports",
        "QC-FAIL",
        [PlannedSample("QX-0001", 150), PlannedSample("QX-0002", 300)],
        overrides=HIGH_CONTROL_FAILS,
    )
    plate = lab.process(export)
    run_id = plate["run_id"]
    assert (plate["status"], plate["review_status"]) == ("rejected", "qc-rejected")
    for result in plate["results"]:
        assert result["result_status"] == "W"
        assert result["review"] == {
            "state": "withheld",
            "auto_verified": False,
            "ruleset": None,
            "hold_reasons": [],
        }
        assert result["message_control_ids"] == []
    assert lab.sent() == {}
    assert lab.ok("review").strip() == "nothing waits for review"

    out = lab.fails(7, "release", str(run_id), "--by", "amoss", "--meaning", "approved")
    assert f"run {run_id} failed QC (" in out and "cannot be released" in out
    out = lab.fails(7, "reject", str(run_id), "--by", "amoss", "--reason", "QC failed anyway")
    assert f"run {run_id} failed QC (" in out
    result_id = plate["results"][0]["result_id"]
    out = lab.fails(7, "release", f"result:{result_id}", "--by", "amoss", "--meaning", "approved")
    assert f"result {result_id} (QX-0001) is withheld" in out
    assert "only a result waiting for review can be released" in out
    assert lab.sent() == {}
    assert store_review.run_view(lab.store, run_id).review_status == "qc-rejected"
    assert {s.state for s in lab.states(run_id).values()} == {"withheld"}


# == 2. review listing =====================================================================


def test_review_lists_each_waiting_run_with_its_qc_and_waiting_results(lab: Lab) -> None:
    plate = lab.process()
    run_id, results = plate["run_id"], by_accession(plate)
    out = lab.ok("review")
    lines = out.splitlines()
    assert lines[0] == "1 run(s) wait for review (12 result(s))"
    assert re.search(
        rf"^run {run_id}  RUN-G5-001\.txt plate 1 \(RUN-G5-001\), aha-indooxine "
        r"\S+, processed .+: waiting$",
        out,
        re.MULTILINE,
    )
    assert re.search(
        r"^  QC: accepted; curve two-segment-linear, r² \d\.\d{4}; LLOQ 5 U/L, "
        r"ULOQ 1000 U/L$",
        out,
        re.MULTILINE,
    )
    assert "  standards: 16/16 wells within tolerance" in lines
    assert re.search(
        r"^  controls: LOW [\d.]+ \(32-48\) ok; HIGH [\d.]+ \(340-460\) ok$", out, re.MULTILINE
    )
    assert "  Westgard: no findings" in lines
    for warning in plate["warnings"]:
        assert f"  warning: {warning}" in lines
    assert f"  held: {HELD_FLAG}; {HELD_RUN}" in lines
    for accession, result in results.items():
        found = [i for i, line in enumerate(lines) if f"result:{result['result_id']} " in line]
        if accession in ABOVE_ULOQ:
            assert found == [], accession  # not waiting: not listed
            continue
        (index,) = found
        assert re.search(
            rf"{accession}\s.*\swaiting\s+{re.escape(result['flag'])}$", lines[index]
        ), lines[index]
        history = lines[index + 1].strip()
        if accession in NORTH:
            assert history == "first result of this patient"
        else:
            assert history == "no patient history (no order)"
    (invalid,) = [line for line in lines if INVALID in line]
    assert "no result" in invalid and "invalid" in invalid
    (below,) = [line for line in lines if "SAA-0003" in line]
    assert "<5 U/L" in below
    assert f"  release: saa-lab release {run_id} --by NAME --meaning reviewed|approved" in lines
    assert f"  reject:  saa-lab reject {run_id} --by NAME --reason TEXT" in lines


def test_review_shows_the_patients_earlier_results_but_not_rejected_ones(
    lab: Lab, tmp_path: Path
) -> None:
    exports = tmp_path / "exports"
    patient = "PAT-7001"
    first = lab.process(
        write_export(
            exports,
            "HIST-1",
            [
                PlannedSample(
                    "HX-0001",
                    200,
                    order=patient_order(patient, "2026-11-10T09:00", "2026-11-03T09:00"),
                ),
                PlannedSample("HX-0002", 300),
            ],
        )
    )
    assert first["review_status"] == "auto-released"
    earlier = by_accession(first)["HX-0001"]
    second = lab.process(
        write_export(
            exports,
            "HIST-2",
            [
                PlannedSample(
                    "HX-0003",
                    150,
                    order=patient_order(patient, "2026-11-17T09:00", "2026-11-10T09:00"),
                ),
                PlannedSample("HX-0004", 1800),
            ],
        )
    )
    assert second["review_status"] == "waiting"
    rejected_id = by_accession(second)["HX-0003"]["result_id"]
    lab.ok("reject", f"result:{rejected_id}", "--by", "rvega", "--reason", "haemolysed sample")
    assert store_review.run_view(lab.store, second["run_id"]).review_status == "rejected"
    third = lab.process(
        write_export(
            exports,
            "HIST-3",
            [
                PlannedSample(
                    "HX-0005",
                    120,
                    order=patient_order(patient, "2026-11-24T09:00", "2026-11-17T09:00"),
                ),
                PlannedSample("HX-0006", 1800),
            ],
        )
    )
    assert third["review_status"] == "waiting"

    expected = f"earlier: 2026-11-10 200 U/L {earlier['flag']}"
    lines = lab.ok("review").splitlines()
    assert lines[0] == "1 run(s) wait for review (1 result(s))"
    (index,) = [i for i, line in enumerate(lines) if "HX-0005" in line]
    assert lines[index + 1].strip() == expected  # not the rejected 150 U/L of HX-0003
    (run,) = lab.json("review")
    assert run["id"] == third["run_id"]
    (waiting,) = [r for r in run["results"] if r["accession"] == "HX-0005"]
    assert waiting["history"] == expected


def test_review_run_shows_the_run_in_full_with_decisions_and_audit(lab: Lab) -> None:
    plate = lab.process()
    run_id, results = plate["run_id"], by_accession(plate)
    first_id = results["SAA-0001"]["result_id"]
    lab.ok(
        "release",
        f"result:{first_id}",
        "--by",
        "amoss",
        "--meaning",
        "approved",
        "--comment",
        "checked against the order",
    )
    out = lab.ok("review", str(run_id))
    lines = out.splitlines()
    assert re.fullmatch(
        rf"run {run_id}  RUN-G5-001\.txt plate 1 \(RUN-G5-001\), "
        r"aha-indooxine \S+, processed .+: waiting",
        lines[0],
    )
    assert "results:" in lines
    for accession, result in results.items():  # every result, not only the waiting ones
        (line,) = [x for x in lines if f"result:{result['result_id']} " in x]
        assert accession in line
        state = {"SAA-0001": "released"}.get(
            accession, "reassay" if accession in ABOVE_ULOQ else "waiting"
        )
        assert f" {state} " in line, line
    assert sum(1 for x in lines if x.strip() == f"held: {HELD_RUN}") == 9
    assert sum(1 for x in lines if x.strip() == f"held: {HELD_RUN}; {HELD_FLAG}") == 2
    assert any(
        re.fullmatch(r"\s+released by amoss \(approved\) \d{4}-\d\d-\d\d \d\d:\d\d \S+", x)
        for x in lines
    )
    audit = lines[lines.index("audit:") + 1 :]
    assert any(re.search(rf"run-created run {run_id}$", x) for x in audit)
    assert sum(1 for x in audit if " result-created result " in x) == 14
    assert any(
        x.endswith(f"result-released result {first_id} - checked against the order")
        and " amoss " in x
        for x in audit
    )

    lab.ok(
        "release",
        str(run_id),
        "--by",
        "rvega",
        "--meaning",
        "reviewed",
        "--comment",
        "curve and controls fine",
    )
    out = lab.ok("review", str(run_id))
    assert out.splitlines()[0].endswith(": released")
    assert re.search(
        r"^decision: released by rvega \(reviewed\) at \d{4}-\d\d-\d\d \d\d:\d\d "
        r"\S+: curve and controls fine$",
        out,
        re.MULTILINE,
    )
    data = lab.json("review", str(run_id))
    assert (data["id"], data["review_status"], data["reviewed_by"], data["review_meaning"]) == (
        run_id,
        "released",
        "rvega",
        "reviewed",
    )
    actions = [(e["action"], e["entity"], e["entity_id"]) for e in data["audit"]]
    assert actions[0] == ("run-created", "run", str(run_id))
    assert actions.count(("result-released", "result", str(first_id))) == 1
    assert sum(1 for a in actions if a[0] == "result-released") == 12
    assert ("run-released", "run", str(run_id)) in actions
    released = [e for e in data["audit"] if e["action"] == "result-released"]
    assert {e["actor"] for e in released} == {"amoss", "rvega"}
    assert [e["seq"] for e in data["audit"]] == sorted(e["seq"] for e in data["audit"])


def test_review_json_has_results_with_state_hold_reasons_and_history(lab: Lab) -> None:
    plate = lab.process()
    (run,) = lab.json("review")
    assert (run["id"], run["status"], run["review_status"], run["review_rev"]) == (
        plate["run_id"],
        "accepted",
        "waiting",
        0,
    )
    assert run["warnings"] == plate["warnings"]
    assert {
        "model",
        "standard_wells",
        "controls",
        "westgard",
        "lloq_u_per_l",
        "uloq_u_per_l",
    } <= set(run["calibration"])
    results = {r["accession"]: r for r in run["results"]}
    assert set(results) == ALL
    for accession, result in results.items():
        assert {
            "id",
            "state",
            "hold_reasons",
            "history",
            "flag",
            "auto_verified",
            "ruleset",
            "messages",
            "activity_u_per_l",
            "decided_by",
        } <= set(result)
        if accession in REPORTED:
            assert result["state"] == "waiting"
            assert HELD_RUN in result["hold_reasons"]
        else:
            assert result["state"] == "reassay"
        assert result["messages"] == []
    assert results["SAA-0002"]["hold_reasons"] == [HELD_RUN, HELD_FLAG]
    assert results["SAA-0002"]["history"] == "first result of this patient"
    assert results["SAA-0003"]["history"] == "no patient history (no order)"
    assert results[INVALID]["activity_u_per_l"] is None


def test_review_says_when_nothing_waits(lab: Lab) -> None:
    assert lab.ok("review").strip() == "nothing waits for review"
    assert lab.json("review") == []
    out = lab.fails(7, "review", "99")
    assert "there is no run 99" in out
    plate = lab.process()
    assert "1 run(s) wait for review" in lab.ok("review")
    lab.ok("reject", str(plate["run_id"]), "--by", "amoss", "--reason", "plate dropped")
    assert lab.ok("review").strip() == "nothing waits for review"
    assert lab.json("review") == []


# == 3. release ============================================================================


def test_release_of_a_run_sends_one_final_message_per_waiting_result(
    lab: Lab, tmp_path: Path
) -> None:
    plate = lab.process()
    run_id, results = plate["run_id"], by_accession(plate)
    out = lab.json(
        "release",
        str(run_id),
        "--by",
        "amoss",
        "--meaning",
        "approved",
        "--comment",
        "controls and curve checked",
    )
    assert out["target"] == f"run {run_id}"
    assert out["released"] == sorted(results[a]["result_id"] for a in REPORTED)
    assert (out["by"], out["meaning"]) == ("amoss", "approved")
    assert delivered(out) == {"file": 12}

    sent = lab.sent()
    assert lab.statuses_sent() == {a: ["X" if a == INVALID else "F"] for a in REPORTED}
    for accession, (message,) in sent.items():
        assert message.result_id == results[accession]["result_id"]
        segment = obx(message.payload)
        assert obr(message.payload)[3].split("^")[0] == accession
        assert msh10(message.payload) == message.control_id
        if accession == INVALID:
            assert (segment[5], segment[11]) == ("", "X")
        else:
            assert segment[5] != "" and segment[11] == "F"
            assert obr(message.payload)[25] == "F"
        assert_hl7_strict_valid(message.payload, tmp_path / f"{accession}.report.txt")
    files = {p.stem for p in (lab.folder / "outbox").glob("*.hl7")}
    assert files == {m.control_id for ms in sent.values() for m in ms}

    stored = lab.states(run_id)
    for accession in REPORTED:
        state = stored[accession]
        assert (state.state, state.decided_by, state.meaning, state.note, state.auto_verified) == (
            "released",
            "amoss",
            "approved",
            "controls and curve checked",
            False,
        )
        assert state.decided_at is not None
    assert {stored[a].state for a in ABOVE_ULOQ} == {"reassay"}
    view = store_review.run_view(lab.store, run_id)
    assert (view.review_status, view.reviewed_by, view.review_meaning, view.review_note) == (
        "released",
        "amoss",
        "approved",
        "controls and curve checked",
    )
    assert view.review_rev == 1 and view.reviewed_at is not None
    assert lab.ok("review").strip() == "nothing waits for review"


def test_a_reviewer_releases_as_reviewed_but_may_not_approve(lab: Lab) -> None:
    plate = lab.process()
    run_id = plate["run_id"]
    out = lab.fails(7, "release", str(run_id), "--by", "rvega", "--meaning", "approved")
    assert (
        "rvega (Rosa Vega) may not release with meaning 'approved': it needs the role "
        "approver; rvega has reviewer"
    ) in out
    assert lab.sent() == {}
    assert store_review.run_view(lab.store, run_id).review_status == "waiting"

    out = lab.ok("release", str(run_id), "--by", "rvega", "--meaning", "reviewed")
    assert f"run {run_id}: 12 result(s) released by rvega (reviewed)" in out
    assert "12 HL7 message(s) delivered to file" in out
    assert {(s.decided_by, s.meaning) for a, s in lab.states(run_id).items() if a in REPORTED} == {
        ("rvega", "reviewed")
    }


def test_a_release_needs_a_known_meaning(lab: Lab) -> None:
    run_id = lab.process()["run_id"]
    out = lab.fails(2, "release", str(run_id), "--by", "amoss", "--meaning", "signed")
    assert "Invalid value for '--meaning'" in out
    lab.fails(2, "release", str(run_id), "--by", "amoss")
    with pytest.raises(ReviewError, match="--meaning must be one of reviewed, approved"):
        release(lab.config, lab.store, Target("run", run_id), by="amoss", meaning="signed")
    assert lab.sent() == {}
    assert store_review.run_view(lab.store, run_id).review_status == "waiting"


def test_a_user_without_roles_may_neither_release_nor_reject(make_lab: MakeLab) -> None:
    lab = make_lab(
        extra=USERS + '\n[[users]]\nname = "guest"\nfull_name = "Gil Guest"\nroles = []\n'
    )
    run_id = lab.process()["run_id"]
    out = lab.fails(7, "reject", str(run_id), "--by", "guest", "--reason", "looks wrong")
    assert "guest (Gil Guest) may not reject: it needs the role reviewer or approver" in out
    out = lab.fails(7, "release", str(run_id), "--by", "guest", "--meaning", "reviewed")
    assert "guest (Gil Guest) may not release with meaning 'reviewed'" in out
    assert store_review.run_view(lab.store, run_id).review_status == "waiting"


def test_an_unknown_user_is_refused_naming_the_user_and_the_config(lab: Lab) -> None:
    run_id = lab.process()["run_id"]
    for args in (
        ["release", str(run_id), "--meaning", "approved"],
        ["reject", str(run_id), "--reason", "looks wrong"],
    ):
        out = lab.fails(7, *args, "--by", "nobody")
        assert (f"unknown user 'nobody': known users in {lab.config_path} are amoss, rvega") in out
    assert lab.sent() == {}
    assert store_review.run_view(lab.store, run_id).review_status == "waiting"
    assert store_review.run_view(lab.store, run_id).review_rev == 0


def test_without_users_nobody_may_release(make_lab: MakeLab) -> None:
    lab = make_lab(extra="")
    run_id = lab.process()["run_id"]
    out = lab.fails(7, "release", str(run_id), "--by", "amoss", "--meaning", "approved")
    assert (
        "unknown user 'amoss': no users are configured; add [[users]] (name, full_name, "
        f"roles) to {lab.config_path}"
    ) in out
    assert lab.sent() == {}


def test_release_of_one_result_leaves_the_rest_waiting(lab: Lab) -> None:
    plate = lab.process()
    run_id, results = plate["run_id"], by_accession(plate)
    one = results["SAA-0005"]["result_id"]
    out = lab.json("release", f"result:{one}", "--by", "amoss", "--meaning", "approved")
    assert (out["target"], out["released"], delivered(out)) == (
        f"result {one}",
        [one],
        {"file": 1},
    )
    assert lab.statuses_sent() == {"SAA-0005": ["F"]}
    stored = lab.states(run_id)
    assert (stored["SAA-0005"].state, stored["SAA-0005"].decided_by) == ("released", "amoss")
    assert {a for a, s in stored.items() if s.state == "waiting"} == REPORTED - {"SAA-0005"}
    view = store_review.run_view(lab.store, run_id)
    assert (view.review_status, view.review_rev, view.reviewed_by) == ("waiting", 1, None)
    assert lab.ok("review").splitlines()[0] == "1 run(s) wait for review (11 result(s))"


def test_releasing_the_last_waiting_result_releases_the_run(make_lab: MakeLab) -> None:
    lab = make_lab(autoverification=AROUND_REASSAY)
    plate = lab.process()
    run_id, results = plate["run_id"], by_accession(plate)
    lab.ok(
        "release",
        f"result:{results['SAA-0002']['result_id']}",
        "--by",
        "amoss",
        "--meaning",
        "approved",
    )
    view = store_review.run_view(lab.store, run_id)
    assert view.review_status == "waiting" and {r.accession for r in view.waiting} == {"SAA-0004"}
    lab.ok(
        "release",
        f"result:{results['SAA-0004']['result_id']}",
        "--by",
        "rvega",
        "--meaning",
        "reviewed",
    )
    view = store_review.run_view(lab.store, run_id)
    assert (view.review_status, view.reviewed_by) == ("released", "rvega")
    assert view.waiting == ()
    # Each result left exactly once: F, or X for SAA-0009.
    assert lab.statuses_sent() == {a: ["X" if a == INVALID else "F"] for a in REPORTED}
    assert store_review.waiting_runs(lab.store) == []
    assert lab.ok("review").strip() == "nothing waits for review"
    # The run's decision is shown as the decision that completed it.
    (decision,) = [
        x for x in lab.ok("review", str(run_id)).splitlines() if x.startswith("decision: ")
    ]
    assert re.fullmatch(r"decision: released by rvega \(reviewed\) at .+", decision), decision


def test_release_of_a_run_sends_only_what_waited(make_lab: MakeLab) -> None:
    lab = make_lab(autoverification=AROUND_REASSAY)
    plate = lab.process()
    results = by_accession(plate)
    out = lab.json("release", str(plate["run_id"]), "--by", "amoss", "--meaning", "approved")
    assert out["released"] == sorted(results[a]["result_id"] for a in SILENT)
    assert lab.statuses_sent() == {a: ["X" if a == INVALID else "F"] for a in REPORTED}
    stored = lab.states(plate["run_id"])
    assert all(stored[a].auto_verified for a in REPORTED - SILENT)
    assert {stored[a].decided_by for a in SILENT} == {"amoss"}


@pytest.mark.parametrize(
    ("text", "default", "expected"),
    [
        ("12", "run", Target("run", 12)),
        ("run:12", "run", Target("run", 12)),
        ("RUN:12", "run", Target("run", 12)),
        ("run12", "run", Target("run", 12)),
        (" 12 ", "run", Target("run", 12)),
        ("result:57", "run", Target("result", 57)),
        ("Result#57", "run", Target("result", 57)),
        ("result:57", "result", Target("result", 57)),
        ("57", "result", Target("result", 57)),
        ("run:3", "result", Target("run", 3)),
    ],
)
def test_targets_are_runs_unless_they_say_result(text: str, default: str, expected: Target) -> None:
    assert parse_target(text, default=default) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text", ["", "abc", "result:", "run:-1", "0", "result:0", "12a", "sample:3", "1.5", "r:5"]
)
def test_a_target_that_is_neither_a_run_nor_a_result_is_a_review_error(text: str) -> None:
    with pytest.raises(ReviewError, match="is not a run or result: write 12 or run:12"):
        parse_target(text)


def test_release_targets_on_the_command_line(lab: Lab) -> None:
    plate = lab.process()
    run_id, results = plate["run_id"], by_accession(plate)
    five = results["SAA-0005"]["result_id"]
    assert five != run_id  # a bare number is a run: there is no run with this number
    out = lab.fails(7, "release", str(five), "--by", "amoss", "--meaning", "approved")
    assert f"there is no run {five}" in out
    out = lab.json("release", f"result:{five}", "--by", "amoss", "--meaning", "approved")
    assert out["released"] == [five]
    out = lab.fails(7, "release", "garbage", "--by", "amoss", "--meaning", "approved")
    assert (
        "'garbage' is not a run or result: write 12 or run:12 for a run, result:57 for a "
        "result" in out
    )
    out = lab.fails(7, "reject", "result:x", "--by", "amoss", "--reason", "no")
    assert "'result:x' is not a run or result" in out
    out = lab.fails(7, "release", "result:9999", "--by", "amoss", "--meaning", "approved")
    assert "there is no result 9999" in out
    above = results["SAA-0006"]["result_id"]
    out = lab.fails(7, "release", f"result:{above}", "--by", "amoss", "--meaning", "approved")
    assert f"result {above} (SAA-0006) is reassay" in out
    assert "only a result waiting for review can be released" in out
    out = lab.json("release", str(run_id), "--by", "amoss", "--meaning", "approved")
    assert out["target"] == f"run {run_id}"
    assert out["released"] == sorted(results[a]["result_id"] for a in REPORTED - {"SAA-0005"})
    assert lab.statuses_sent() == {a: ["X" if a == INVALID else "F"] for a in REPORTED}


# == 4. conflicts ==========================================================================


def test_a_second_release_of_a_run_is_a_conflict_naming_who_released_it(lab: Lab) -> None:
    run_id = lab.process()["run_id"]
    lab.ok("release", str(run_id), "--by", "amoss", "--meaning", "approved")
    out = lab.fails(8, "release", str(run_id), "--by", "rvega", "--meaning", "reviewed")
    assert re.search(
        rf"run {run_id} was already released by amoss at "
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*; nothing was changed",
        out,
    ), out
    out = lab.fails(8, "reject", str(run_id), "--by", "rvega", "--reason", "too late")
    assert f"run {run_id} was already released by amoss" in out
    # One message per result, as before the second attempt.
    assert lab.statuses_sent() == {a: ["X" if a == INVALID else "F"] for a in REPORTED}
    assert len(list((lab.folder / "outbox").glob("*.hl7"))) == 12
    stored = lab.states(run_id)
    assert {stored[a].decided_by for a in REPORTED} == {"amoss"}
    assert {stored[a].state for a in REPORTED} == {"released"}
    assert store_review.run_view(lab.store, run_id).review_rev == 1


def test_a_second_decision_on_a_result_is_a_conflict(lab: Lab) -> None:
    results = by_accession(lab.process())
    one = results["SAA-0001"]["result_id"]
    lab.ok("release", f"result:{one}", "--by", "amoss", "--meaning", "approved")
    out = lab.fails(8, "release", f"result:{one}", "--by", "rvega", "--meaning", "reviewed")
    assert f"result {one} (SAA-0001) is released by amoss at " in out
    assert "it cannot be released again" in out
    out = lab.fails(8, "reject", f"result:{one}", "--by", "rvega", "--reason", "too late")
    assert f"result {one} (SAA-0001) is released by amoss" in out
    assert lab.statuses_sent() == {"SAA-0001": ["F"]}


def test_release_after_a_rejection_is_a_conflict(lab: Lab) -> None:
    run_id = lab.process()["run_id"]
    lab.ok("reject", str(run_id), "--by", "rvega", "--reason", "wrong reagent lot")
    out = lab.fails(8, "release", str(run_id), "--by", "amoss", "--meaning", "approved")
    assert f"run {run_id} was already rejected by rvega at " in out
    assert lab.sent() == {}
    assert {s.state for a, s in lab.states(run_id).items() if a in REPORTED} == {"rejected"}


def test_an_auto_released_run_has_nothing_to_release(lab: Lab, tmp_path: Path) -> None:
    plate = lab.process(
        write_export(
            tmp_path / "exports",
            "CLEAN",
            [PlannedSample("CL-0001", 250), PlannedSample("CL-0002", 600)],
        )
    )
    assert plate["review_status"] == "auto-released"
    run_id = plate["run_id"]
    out = lab.fails(8, "release", str(run_id), "--by", "amoss", "--meaning", "approved")
    assert f"run {run_id} was released by auto-verification; nothing waits" in out
    one = plate["results"][0]["result_id"]
    out = lab.fails(8, "release", f"result:{one}", "--by", "amoss", "--meaning", "approved")
    assert f"result {one} (CL-0001) is released by auto-verification" in out
    assert lab.statuses_sent() == {"CL-0001": ["F"], "CL-0002": ["F"]}
    shown = lab.ok("review", str(run_id))
    assert shown.splitlines()[0].endswith(": auto-released")
    version = AutoVerificationRule().version
    assert shown.count(f"auto-verified by rule set {version}") == 2
    assert lab.ok("review").strip() == "nothing waits for review"


def race(url: str, *calls: Callable[[Store], Any]) -> list[Any]:
    """Run ``calls`` at the same moment, each with its own store (as two people at two
    workstations); each outcome is its return value or the exception it raised."""
    stores = [Store(url, migrate=False) for _ in calls]
    barrier = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def work(index: int, call: Callable[[Store], Any]) -> None:
        try:
            barrier.wait(timeout=20)
            outcomes[index] = call(stores[index])
        except Exception as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(calls)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for store in stores:
            store.close()
    return outcomes


def held_plates(lab: Lab, folder: Path, count: int) -> list[dict[str, Any]]:
    """``count`` invented runs, each waiting for a person (a sample above the ULOQ)."""
    plates = []
    for n in range(count):
        samples = [
            PlannedSample(f"RC{n}-0001", 150),
            PlannedSample(f"RC{n}-0002", 400),
            PlannedSample(f"RC{n}-0003", 1800),
        ]
        plate = lab.process(write_export(folder, f"RACE-{n}", samples))
        assert plate["review_status"] == "waiting"
        plates.append(plate)
    return plates


def test_two_people_releasing_one_run_at_once_one_wins(lab: Lab, tmp_path: Path) -> None:
    config = lab.config
    for plate in held_plates(lab, tmp_path / "exports", 3):
        run_id = plate["run_id"]
        outcomes = race(
            config.database_url,
            lambda s, r=run_id: release(
                config, s, Target("run", r), by="amoss", meaning="approved"
            ),
            lambda s, r=run_id: release(
                config, s, Target("run", r), by="rvega", meaning="reviewed"
            ),
        )
        won = [o for o in outcomes if isinstance(o, list)]
        lost = [o for o in outcomes if not isinstance(o, list)]
        assert len(won) == 1 and len(lost) == 1, outcomes
        assert isinstance(lost[0], ConflictError), repr(lost[0])
        winner = "amoss" if outcomes[0] is won[0] else "rvega"
        assert f"was already released by {winner}" in str(lost[0])
        waiting = {r["result_id"] for r in plate["results"] if r["review"]["state"] == "waiting"}
        assert set(won[0]) == waiting
        view = store_review.run_view(lab.store, run_id)
        assert (view.review_status, view.reviewed_by, view.review_rev) == ("released", winner, 1)
    sent = lab.statuses_sent()
    assert sent == {f"RC{n}-000{i}": ["F"] for n in range(3) for i in (1, 2)}


def test_a_release_racing_a_rejection_leaves_one_decision(lab: Lab, tmp_path: Path) -> None:
    config = lab.config
    for plate in held_plates(lab, tmp_path / "exports", 3):
        run_id = plate["run_id"]
        outcomes = race(
            config.database_url,
            lambda s, r=run_id: release(
                config, s, Target("run", r), by="amoss", meaning="approved"
            ),
            lambda s, r=run_id: reject(
                config, s, Target("run", r), by="rvega", reason="pipetting error"
            ),
        )
        assert sum(isinstance(o, list) for o in outcomes) == 1, outcomes
        (lost,) = [o for o in outcomes if not isinstance(o, list)]
        # The loser is refused (which error exactly, when a rejection reads the run just
        # before the release commits, is pinned down by the next test).
        assert isinstance(lost, ReviewError), repr(lost)
        accessions = {r["accession"] for r in plate["results"] if r["review"]["state"] == "waiting"}
        states = lab.states(run_id)
        sent = lab.sent()
        reassays = {r["accession"] for r in lab.store.open_reassays()}
        if isinstance(outcomes[0], list):  # released
            assert {states[a].state for a in accessions} == {"released"}
            assert all([m.report_status for m in sent[a]] == ["F"] for a in accessions)
            assert not accessions & reassays
        else:
            assert isinstance(lost, ConflictError), repr(lost)
            assert "was already rejected by rvega" in str(lost)
            assert {states[a].state for a in accessions} == {"rejected"}
            assert not accessions & set(sent)
            assert accessions <= reassays


def test_a_rejection_overtaken_by_a_release_of_the_run_is_a_conflict(lab: Lab) -> None:
    """Someone releases the run while a rejection of it is under way.

    The release is made to commit at the moment the rejection has read the run as
    waiting and is about to decide it (hooked on the rejection's connection).
    The rejection must then fail as a conflict naming who released the run (exit 8),
    not advise correcting "already released" results one by one (exit 7).
    """
    config = lab.config
    plate = lab.process()
    run_id = plate["run_id"]
    rejecting = Store(config.database_url, migrate=False)
    releasing = Store(config.database_url, migrate=False)
    released: list[int] = []

    def release_first(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not released and statement.lstrip().startswith("UPDATE runs"):
            released.extend(
                release(config, releasing, Target("run", run_id), by="amoss", meaning="approved")
            )

    event.listen(rejecting.engine, "before_cursor_execute", release_first)
    try:
        with pytest.raises(ReviewError) as refused:
            reject(config, rejecting, Target("run", run_id), by="rvega", reason="pipetting error")
    finally:
        rejecting.close()
        releasing.close()
    assert len(released) == 12  # the release went through in between
    assert lab.statuses_sent() == {a: ["X" if a == INVALID else "F"] for a in REPORTED}
    assert {r["accession"] for r in lab.store.open_reassays()} == ABOVE_ULOQ
    assert isinstance(refused.value, ConflictError), repr(refused.value)
    assert f"run {run_id} was already released by amoss" in str(refused.value)


def test_two_people_releasing_one_result_at_once_one_wins(lab: Lab) -> None:
    config = lab.config
    plate = lab.process()
    one = by_accession(plate)["SAA-0001"]["result_id"]
    outcomes = race(
        config.database_url,
        lambda s: release(config, s, Target("result", one), by="amoss", meaning="approved"),
        lambda s: release(config, s, Target("result", one), by="rvega", meaning="reviewed"),
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["ConflictError", "list"], outcomes
    assert lab.statuses_sent() == {"SAA-0001": ["F"]}
    assert store_review.run_view(lab.store, plate["run_id"]).review_rev == 1


@pytest.mark.parametrize("decision", ["release", "reject"])
def test_releasing_a_result_while_its_run_is_decided_is_a_conflict(
    make_lab: MakeLab, decision: str
) -> None:
    """One person releases a result while another releases (or rejects) its whole run.

    The interleaving is forced through the message builders, which run inside each
    decision's transaction (a preliminary destination, so a rejection withdraws and
    builds too): the result is marked released first; then the run's decision takes
    the run and reaches that result. Whoever loses must get a ConflictError (exit 8,
    "look again"), not a database error; no result may leave twice.
    """
    lab = make_lab(extra=USERS + PRELIMINARY)
    config = lab.config
    plate = lab.process()
    run_id = plate["run_id"]
    waiting = sorted(r["result_id"] for r in plate["results"] if r["review"]["state"] == "waiting")
    last = waiting[-1]  # the run's decision reaches it after it has taken the run
    assert by_accession(plate)["SAA-0014"]["result_id"] == last  # sent as preliminary
    build = builder(config)
    build_run = builder(config, withdraw=decision == "reject")
    result_marked, run_taken = threading.Event(), threading.Event()

    def build_for_result(report: dict[str, Any], status: str) -> OutgoingMessage:
        result_marked.set()
        run_taken.wait(1.5)  # SQLite: the run's decision waits for the write lock instead
        return build(report, status)

    def build_for_run(report: dict[str, Any], status: str) -> OutgoingMessage:
        run_taken.set()
        return build_run(report, status)

    def decide_run(s: Store) -> list[int]:
        if decision == "release":
            return store_review.release_run(
                s, run_id, user="rvega", meaning="reviewed", note=None, build=build_for_run
            )
        return store_review.reject_run(
            s, run_id, user="rvega", reason="plate suspect", withdraw=build_for_run
        )

    outcomes: dict[str, Any] = {}
    stores = {name: Store(config.database_url, migrate=False) for name in ("result", "run")}

    def attempt(name: str, call: Callable[[Store], Any]) -> None:
        try:
            outcomes[name] = call(stores[name])
        except Exception as exc:
            outcomes[name] = exc

    def one_result() -> None:
        attempt(
            "result",
            lambda s: store_review.release_result(
                s, last, user="amoss", meaning="approved", note=None, build=build_for_result
            ),
        )

    def whole_run() -> None:
        result_marked.wait(10)
        attempt("run", decide_run)

    threads = [threading.Thread(target=one_result), threading.Thread(target=whole_run)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for store in stores.values():
            store.close()

    won = [k for k, o in outcomes.items() if isinstance(o, list)]
    lost = {k: o for k, o in outcomes.items() if not isinstance(o, list)}
    assert len(won) == 1, outcomes
    ((loser, error),) = lost.items()
    assert isinstance(error, ConflictError), f"{loser} lost with {error!r}"
    # Whoever won: a released result left once with F, a rejected one never did.
    states = lab.states(run_id)
    finals = {a: [m for m in ms if m.report_status in ("F", "X")] for a, ms in lab.sent().items()}
    for accession, state in states.items():
        sent = [m.report_status for m in finals.get(accession, [])]
        if state.state == "released":
            assert sent == ["X" if accession == INVALID else "F"], accession
        else:
            assert "F" not in sent, accession


def test_a_decision_on_a_stale_revision_is_a_conflict(lab: Lab) -> None:
    config = lab.config
    plate = lab.process()
    run_id, results = plate["run_id"], by_accession(plate)
    seen = store_review.run_view(lab.store, run_id).review_rev
    assert seen == 0
    # Someone decides one result of the run after we looked at it.
    rejected = results["SAA-0003"]["result_id"]
    lab.ok("reject", f"result:{rejected}", "--by", "rvega", "--reason", "short sample")
    stale = rf"run {run_id} changed since you looked at it \(decision 1, you saw 0\)"
    with pytest.raises(ConflictError, match=stale):
        store_review.release_run(
            lab.store,
            run_id,
            user="amoss",
            meaning="approved",
            note=None,
            build=builder(config),
            expected_rev=seen,
        )
    with pytest.raises(ConflictError, match=stale):
        release(
            config,
            lab.store,
            Target("run", run_id),
            by="amoss",
            meaning="approved",
            expected_rev=seen,
        )
    with pytest.raises(ConflictError, match=stale):
        reject(
            config, lab.store, Target("run", run_id), by="amoss", reason="stale", expected_rev=seen
        )
    # The stale attempts changed nothing.
    assert lab.sent() == {}
    view = store_review.run_view(lab.store, run_id)
    assert (view.review_status, view.review_rev, view.reviewed_by) == ("waiting", 1, None)
    assert {r.accession for r in view.waiting} == REPORTED - {"SAA-0003"}
    assert {r["accession"] for r in lab.store.open_reassays()} == ABOVE_ULOQ | {"SAA-0003"}
    # With the revision as it is now, the release goes through.
    released = release(
        config, lab.store, Target("run", run_id), by="amoss", meaning="approved", expected_rev=1
    )
    assert len(released) == 11
    assert store_review.run_view(lab.store, run_id).review_rev == 2
    assert set(lab.sent()) == REPORTED - {"SAA-0003"}


# == 5. reject =============================================================================


def test_rejecting_a_run_sends_nothing_and_puts_its_samples_on_the_reassay_list(
    lab: Lab,
) -> None:
    plate = lab.process()
    run_id, results = plate["run_id"], by_accession(plate)
    reason = "standards pipetted from the wrong rack"
    out = lab.ok("reject", str(run_id), "--by", "rvega", "--reason", reason)
    assert f"run {run_id}: 12 result(s) rejected by rvega; samples on the re-assay list" in out
    assert lab.sent() == {}
    assert list((lab.folder / "outbox").glob("*.hl7")) == []
    stored = lab.states(run_id)
    for accession in REPORTED:
        state = stored[accession]
        assert (state.state, state.decided_by, state.meaning, state.note) == (
            "rejected",
            "rvega",
            "rejected",
            reason,
        )
    assert {stored[a].state for a in ABOVE_ULOQ} == {"reassay"}
    view = store_review.run_view(lab.store, run_id)
    assert (view.review_status, view.reviewed_by, view.review_meaning, view.review_note) == (
        "rejected",
        "rvega",
        "rejected",
        reason,
    )

    reassays = {r["accession"]: r for r in lab.store.open_reassays()}
    assert set(reassays) == ALL
    for accession in REPORTED:
        assert reassays[accession]["result_id"] == results[accession]["result_id"]
        assert reassays[accession]["suggested_dilution"] == results[accession]["dilution"]
    status = lab.ok("status")
    assert re.search(r"^re-assay: SAA-0001 \(aha-indooxine\) at 1:1, since ", status, re.M)
    assert re.search(r"^re-assay: SAA-0007 \(aha-indooxine\) at 1:10, since ", status, re.M)
    assert {r["accession"] for r in lab.json("status")["reassay"]} == ALL
    assert lab.ok("review").strip() == "nothing waits for review"
    assert re.search(
        rf"^decision: rejected by rvega \(rejected\) at .+: {reason}$",
        lab.ok("review", str(run_id)),
        re.MULTILINE,
    )


def test_a_rejection_needs_a_reason(lab: Lab) -> None:
    run_id = lab.process()["run_id"]
    out = lab.fails(2, "reject", str(run_id), "--by", "rvega")
    assert "Missing option '--reason'" in out
    out = lab.fails(7, "reject", str(run_id), "--by", "rvega", "--reason", "   ")
    assert "a rejection needs a --reason" in out
    assert store_review.run_view(lab.store, run_id).review_status == "waiting"
    assert {r["accession"] for r in lab.store.open_reassays()} == ABOVE_ULOQ


def test_a_run_with_released_results_cannot_be_rejected_whole(lab: Lab) -> None:
    plate = lab.process()
    run_id, results = plate["run_id"], by_accession(plate)
    first = results["SAA-0001"]["result_id"]
    lab.ok("release", f"result:{first}", "--by", "amoss", "--meaning", "approved")
    out = lab.fails(7, "reject", str(run_id), "--by", "amoss", "--reason", "control drift")
    assert (
        f"run {run_id} has results that were already released (result:{first}): they "
        "have left the lab; correct them with 'saa-lab correct'"
    ) in out
    assert "reject the waiting ones one by one with 'saa-lab reject result:ID'" in out
    stored = lab.states(run_id)
    assert {a for a, s in stored.items() if s.state == "waiting"} == REPORTED - {"SAA-0001"}
    assert {r["accession"] for r in lab.store.open_reassays()} == ABOVE_ULOQ

    second = results["SAA-0002"]["result_id"]
    out = lab.json("reject", f"result:{second}", "--by", "amoss", "--reason", "clotted")
    assert (out["target"], out["rejected"], out["by"], out["reason"], delivered(out)) == (
        f"result {second}",
        [second],
        "amoss",
        "clotted",
        {},
    )
    stored = lab.states(run_id)
    assert (stored["SAA-0002"].state, stored["SAA-0002"].note) == ("rejected", "clotted")
    assert store_review.run_view(lab.store, run_id).review_status == "waiting"
    assert {r["accession"] for r in lab.store.open_reassays()} == ABOVE_ULOQ | {"SAA-0002"}
    assert lab.statuses_sent() == {"SAA-0001": ["F"]}


def test_a_rejected_result_is_reassayed_and_its_request_closed(lab: Lab, tmp_path: Path) -> None:
    plate = lab.process()
    rejected = by_accession(plate)["SAA-0003"]["result_id"]
    lab.ok("reject", f"result:{rejected}", "--by", "rvega", "--reason", "bubble in well")
    (request,) = [r for r in lab.store.open_reassays() if r["accession"] == "SAA-0003"]
    assert request["result_id"] == rejected
    again = lab.process(
        write_export(tmp_path / "exports", "REASSAY", [PlannedSample("SAA-0003", 40)])
    )
    (result,) = again["results"]
    assert result["supersedes_result_id"] == rejected
    assert "SAA-0003" not in {r["accession"] for r in lab.store.open_reassays()}


# == 6. preliminary and final ==============================================================


def test_a_preliminary_destination_gets_p_at_once_and_f_on_release(
    make_lab: MakeLab, tmp_path: Path
) -> None:
    lab = make_lab(extra=USERS + PRELIMINARY)
    plate = lab.process()
    run_id, results = plate["run_id"], by_accession(plate)
    assert plate["review_status"] == "waiting"
    assert lab.statuses_sent() == {a: ["P"] for a in WITH_VALUE}  # none for SAA-0009
    for accession, (message,) in lab.sent().items():
        assert message.destination == "ehr"
        assert obx(message.payload)[11] == "P" and obr(message.payload)[25] == "P"
        assert obx(message.payload)[5] != ""
        assert results[accession]["message_control_ids"] == [message.control_id]
    preliminary = lab.sent()["SAA-0001"][0]
    assert_hl7_strict_valid(preliminary.payload, tmp_path / "p.report.txt")
    stored = lab.states(run_id)
    assert {a for a, s in stored.items() if s.preliminary_sent} == WITH_VALUE
    assert {a for a, s in stored.items() if s.state == "waiting"} == REPORTED
    assert len(list((lab.folder / "ehr-out").glob("*.hl7"))) == 11

    out = lab.json("release", str(run_id), "--by", "amoss", "--meaning", "approved")
    assert delivered(out) == {"ehr": 12}
    sent = lab.sent()
    assert lab.statuses_sent() == {**{a: ["P", "F"] for a in WITH_VALUE}, INVALID: ["X"]}
    for accession in WITH_VALUE:
        early, final = sent[accession]
        assert final.result_id == early.result_id
        assert msh10(final.payload) == final.control_id != early.control_id
        assert obr(final.payload)[3] == obr(early.payload)[3]  # same accession (filler order)
        assert obr(final.payload)[3].split("^")[0] == accession
        assert segments(final.payload)["PID"][0][3] == segments(early.payload)["PID"][0][3]
        assert obx(final.payload)[11] == "F" and obr(final.payload)[25] == "F"
        assert obx(final.payload)[5] == obx(early.payload)[5]
    assert_hl7_strict_valid(sent["SAA-0001"][1].payload, tmp_path / "f.report.txt")
    assert len(list((lab.folder / "ehr-out").glob("*.hl7"))) == 23


def test_rejecting_after_a_preliminary_withdraws_it(make_lab: MakeLab, tmp_path: Path) -> None:
    lab = make_lab(extra=USERS + PRELIMINARY)
    plate = lab.process()
    run_id, results = plate["run_id"], by_accession(plate)
    one = results["SAA-0001"]["result_id"]
    out = lab.json("reject", f"result:{one}", "--by", "rvega", "--reason", "wrong tube")
    assert delivered(out) == {"ehr": 1}
    early, withdrawal = lab.sent()["SAA-0001"]
    assert (early.report_status, withdrawal.report_status) == ("P", "X")
    assert withdrawal.control_id != early.control_id
    segment = obx(withdrawal.payload)
    assert (segment[5], segment[11], obr(withdrawal.payload)[25]) == ("", "X", "X")
    assert obr(withdrawal.payload)[3] == obr(early.payload)[3]
    text = " ".join(notes(withdrawal.payload))
    assert WITHDRAWN in text and "do not act on the preliminary value" in text
    assert_hl7_strict_valid(withdrawal.payload, tmp_path / "x.report.txt")

    lab.ok("reject", str(run_id), "--by", "rvega", "--reason", "whole plate suspect")
    assert lab.statuses_sent() == {a: ["P", "X"] for a in WITH_VALUE}  # SAA-0009 never left
    for accession, (_, taken_back) in lab.sent().items():
        assert obx(taken_back.payload)[5] == "" and obx(taken_back.payload)[11] == "X"
        assert any(WITHDRAWN in n for n in notes(taken_back.payload)), accession
    assert store_review.run_view(lab.store, run_id).review_status == "rejected"
    assert len(list((lab.folder / "ehr-out").glob("*.hl7"))) == 22


def test_one_preliminary_result_released_or_rejected_alone(make_lab: MakeLab) -> None:
    lab = make_lab(extra=USERS + PRELIMINARY)
    plate = lab.process()
    run_id, results = plate["run_id"], by_accession(plate)
    lab.ok(
        "release",
        f"result:{results['SAA-0001']['result_id']}",
        "--by",
        "amoss",
        "--meaning",
        "approved",
    )
    lab.ok(
        "reject",
        f"result:{results['SAA-0005']['result_id']}",
        "--by",
        "rvega",
        "--reason",
        "insufficient volume",
    )
    sent = lab.statuses_sent()
    assert (sent["SAA-0001"], sent["SAA-0005"]) == (["P", "F"], ["P", "X"])
    assert all(sent[a] == ["P"] for a in WITH_VALUE - {"SAA-0001", "SAA-0005"})
    assert INVALID not in sent
    view = store_review.run_view(lab.store, run_id)
    assert view.review_status == "waiting" and len(view.waiting) == 10
    assert len(list((lab.folder / "ehr-out").glob("*.hl7"))) == 13


def test_auto_released_results_on_a_preliminary_destination_get_only_the_final(
    make_lab: MakeLab,
) -> None:
    lab = make_lab(extra=USERS + PRELIMINARY, autoverification=AROUND_REASSAY)
    plate = lab.process()
    expected: dict[str, list[str | None]] = {
        a: ["X" if a == INVALID else "F"] for a in REPORTED - SILENT
    }
    assert lab.statuses_sent() == {**expected, **{a: ["P"] for a in SILENT}}
    stored = lab.states(plate["run_id"])
    assert not any(stored[a].preliminary_sent for a in REPORTED - SILENT)
    lab.ok("release", str(plate["run_id"]), "--by", "amoss", "--meaning", "approved")
    assert lab.statuses_sent() == {**expected, **{a: ["P", "F"] for a in SILENT}}


# == 7. status =============================================================================


def test_status_shows_how_many_results_wait_for_a_person(lab: Lab) -> None:
    assert "review:" not in lab.ok("status")
    assert lab.json("status")["review"] == {"waiting_runs": 0, "waiting_results": 0}
    out = lab.ok("process", str(GEN5))
    assert re.search(
        rf"^  waiting for review \({HELD_FLAG}; {HELD_RUN}\): saa-lab review \d+$",
        out,
        re.MULTILINE,
    )
    (run,) = lab.json("review")
    line = "review:   12 result(s) in 1 run(s) wait for a person: saa-lab review"
    assert line in lab.ok("status").splitlines()
    assert lab.json("status")["review"] == {"waiting_runs": 1, "waiting_results": 12}
    first = next(r["id"] for r in run["results"] if r["accession"] == "SAA-0001")
    lab.ok("release", f"result:{first}", "--by", "amoss", "--meaning", "approved")
    assert lab.json("status")["review"] == {"waiting_runs": 1, "waiting_results": 11}
    assert "review:   11 result(s) in 1 run(s) wait for a person" in lab.ok("status")
    lab.ok("release", str(run["id"]), "--by", "amoss", "--meaning", "approved")
    assert "review:" not in lab.ok("status")
    assert lab.json("status")["review"] == {"waiting_runs": 0, "waiting_results": 0}

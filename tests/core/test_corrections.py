"""saa-lab correct / history: corrected versions of released results (OBX-11 C).

A correction never changes what was stored: it adds version N+1 of the result (same
result uid), marks the old version ``replaced``, and sends a corrected report with
OBX-11 C that says what it replaces. Only the newest version of a released result may
be corrected, by an approver, with a reason.

The bundled Gen5 sample (RUN-G5-001) is processed with the permissive test rule of
conftest (RELEASE_ON_PROCESSING), so its results are released on processing and can
be corrected. Users and reasons are invented.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import (
    SAMPLES,
    ProcessedLab,
    assert_hl7_strict_valid,
    process_sample_lab,
)
from sqlalchemy import event, func, select

from saa_lab.cli import cli
from saa_lab.config import load_config
from saa_lab.errors import ConflictError
from saa_lab.review import correct
from saa_lab.store import Store
from saa_lab.store.models import AuditEntry, OutboxMessage, ResultRow, ResultState

GEN5 = SAMPLES / "biotek_gen5" / "RUN-G5-001.txt"

USERS = """
[[users]]
name = "akoval"
full_name = "Anna Koval"
roles = ["reviewer", "approver"]

[[users]]
name = "tdrost"
full_name = "Tomas Drost"
roles = ["approver"]

[[users]]
name = "bmeyer"
full_name = "Ben Meyer"
roles = ["reviewer"]
"""


Lab = ProcessedLab


def _make_lab(folder: Path, url: str, runner: CliRunner, autoverification: str | None) -> Lab:
    kwargs = {} if autoverification is None else {"autoverification": autoverification}
    made = process_sample_lab(folder, url, runner, USERS, **kwargs)
    assert len(made.ids) == 14
    return made


@pytest.fixture
def lab(tmp_path: Path, database_url: str, runner: CliRunner) -> Lab:
    """RUN-G5-001 processed and released on processing (SQLite, and PostgreSQL if set)."""
    return _make_lab(tmp_path / "lab", database_url, runner, None)


def invoke(runner: CliRunner, lab: Lab, *args: str) -> Result:
    return runner.invoke(cli, ["--config", str(lab.config_path), *args])


def ok(runner: CliRunner, lab: Lab, *args: str) -> str:
    result = invoke(runner, lab, *args)
    assert result.exit_code == 0, result.output
    return result.output


def correct_json(runner: CliRunner, lab: Lab, result_id: int, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ok(runner, lab, "correct", str(result_id), "--json", *args))
    return data


def segments(er7: str) -> list[list[str]]:
    return [s.split("|") for s in er7.split("\r") if s]


def segment(er7: str, name: str, index: int = 0) -> list[str]:
    return [s for s in segments(er7) if s[0] == name][index]


def notes(er7: str) -> list[str]:
    return [s[3] for s in segments(er7) if s[0] == "NTE"]


def row_dict(row: Any) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


def result_row(store: Store, result_id: int) -> dict[str, Any]:
    with store.session() as s:
        return row_dict(s.get_one(ResultRow, result_id))


def messages_of(store: Store, result_id: int) -> list[dict[str, Any]]:
    with store.session() as s:
        rows = s.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.result_id == result_id)
            .order_by(OutboxMessage.id)
        ).all()
        return [row_dict(r) for r in rows]


def versions_of(store: Store, result_id: int) -> list[dict[str, Any]]:
    with store.session() as s:
        uid = s.get_one(ResultRow, result_id).result_uid
        rows = s.scalars(
            select(ResultRow).where(ResultRow.result_uid == uid).order_by(ResultRow.version)
        ).all()
        return [row_dict(r) for r in rows]


def state_of(store: Store, result_id: int) -> str:
    with store.session() as s:
        return s.scalars(select(ResultState.state).where(ResultState.result_id == result_id)).one()


def counts(store: Store) -> tuple[int, int, int]:
    """(results, outbox messages, audit entries)."""
    with store.session() as s:
        return (
            s.scalar(select(func.count()).select_from(ResultRow)) or 0,
            s.scalar(select(func.count()).select_from(OutboxMessage)) or 0,
            s.scalar(select(func.count()).select_from(AuditEntry)) or 0,
        )


# --- a corrected value -----------------------------------------------------------------


def test_a_corrected_value_is_a_new_version_sent_with_obx11_c(
    lab: Lab, runner: CliRunner, tmp_path: Path
) -> None:
    first = lab.ids["SAA-0001"]  # 249.6 U/L, therapeutic, PAT-1001 of CLINIC-NORTH
    with lab.store() as store:
        before_row = result_row(store, first)
        (before_message,) = messages_of(store, first)
    assert before_row["activity_u_per_l"] == 249.6 and before_row["flag"] == "therapeutic"
    assert before_message["report_status"] == "F" and before_message["status"] == "sent"

    view = correct_json(runner, lab, first, "--by", "akoval", "--reason",
                        "dilution entered as 1 instead of 1:4 (invented)", "--value", "60",
                        "--comment", "Please draw a repeat sample on day 14.")  # fmt: skip

    assert view["id"] != first
    assert view["version"] == 2 and view["result_status"] == "C"
    assert view["accession"] == "SAA-0001" and view["result_uid"] == before_row["result_uid"]
    assert (view["activity_u_per_l"], view["comparator"]) == (60.0, "=")
    assert view["state"] == "released" and view["auto_verified"] is False
    assert view["created_by"] == "akoval" and view["decided_by"] == "akoval"
    assert view["meaning"] == "corrected"
    assert view["change_reason"] == "dilution entered as 1 instead of 1:4 (invented)"
    # the flag is judged again on the new value: 60 U/L on day 7 of PEG is low
    assert view["flag"] != "therapeutic"
    assert view["flag"] in ("possible-silent-inactivation", "below-threshold")
    assert "60 U/L" in view["comment"] and "below the threshold" in view["comment"]
    assert view["delivered"] == {"file": 1}

    with lab.store() as store:
        (message,) = messages_of(store, view["id"])
        # the original version and its F message are untouched
        assert result_row(store, first) == before_row
        assert messages_of(store, first) == [before_message]
        assert state_of(store, first) == "replaced"
        assert state_of(store, view["id"]) == "released"
    assert message["report_status"] == "C" and message["status"] == "sent"
    assert [m["control_id"] for m in view["messages"]] == [message["control_id"]]
    er7 = message["payload"]
    assert_hl7_strict_valid(er7, tmp_path / "c-report.txt")
    assert segment(er7, "MSH")[9] == message["control_id"]
    assert segment(er7, "PID")[3].startswith("PAT-1001")
    obr = segment(er7, "OBR")
    assert obr[25] == "C"
    obx = segment(er7, "OBX")
    assert (obx[2], obx[5], obx[6].split("^")[0]) == ("NM", "60", "U/L")
    assert obx[8] == "L"  # was N (therapeutic)
    assert obx[11] == "C"
    assert all(s[11] == "C" for s in segments(er7) if s[0] == "OBX")
    texts = notes(er7)
    assert "Please draw a repeat sample on day 14." in texts
    (note,) = [t for t in texts if t.startswith("Corrected report")]
    assert "version 2" in note and "249.6 U/L" in note
    assert texts[-1] == note  # the correction note closes the result's notes
    # the old message is still what it was: F, 249.6, N
    old = before_message["payload"]
    assert segment(old, "OBX")[5] == "249.6" and segment(old, "OBX")[11] == "F"
    assert segment(old, "OBX")[8] == "N"
    # both messages are in the outbox folder
    outbox = lab.folder / "outbox"
    written = (outbox / f"{message['control_id']}.hl7").read_bytes().decode("utf-8")
    assert written.rstrip("\r\n") == er7.rstrip("\r")
    assert (outbox / f"{before_message['control_id']}.hl7").is_file()


@pytest.mark.parametrize(("accession", "value", "flag", "obx8"), [
    ("SAA-0010", "150", "therapeutic", "N"),  # 79 U/L below the threshold -> above it
    ("SAA-0001", "60", None, "L"),  # therapeutic -> low (flag depends on the protocol)
    ("SAA-0009", "120", "therapeutic", "N"),  # no result (invalid) -> a value
])  # fmt: skip
def test_the_flag_and_obx8_follow_the_corrected_value(
    lab: Lab, runner: CliRunner, accession: str, value: str, flag: str | None, obx8: str
) -> None:
    view = correct_json(runner, lab, lab.ids[accession], "--by", "tdrost", "--reason",
                        "value re-read from the plate (invented)", "--value", value)  # fmt: skip
    assert view["activity_u_per_l"] == float(value)
    if flag is not None:
        assert view["flag"] == flag
    assert view["report"]["abnormal_flag"] == obx8
    with lab.store() as store:
        (message,) = messages_of(store, view["id"])
        original = result_row(store, lab.ids[accession])
    assert view["flag"] != original["flag"]
    obx = segment(message["payload"], "OBX")
    assert (obx[5], obx[8], obx[11]) == (value, obx8, "C")


@pytest.mark.parametrize(("value", "comparator", "obx5", "status"), [
    ("<25", "<", "<^25", "below-lloq"),
    (" < 25 ", "<", "<^25", "below-lloq"),
    (">4000", ">", ">^4000", "above-reportable"),
])  # fmt: skip
def test_a_value_with_a_comparator_is_sent_as_a_structured_numeric(
    lab: Lab, runner: CliRunner, tmp_path: Path, value: str, comparator: str, obx5: str,
    status: str,
) -> None:  # fmt: skip
    view = correct_json(runner, lab, lab.ids["SAA-0013"], "--by", "akoval", "--reason",
                        "wrong well read (invented)", "--value", value)  # fmt: skip
    assert (view["activity_u_per_l"], view["comparator"]) == (float(obx5[2:]), comparator)
    assert view["status"] == status
    with lab.store() as store:
        (message,) = messages_of(store, view["id"])
    er7 = message["payload"]
    assert_hl7_strict_valid(er7, tmp_path / "sn-report.txt")
    obx = segment(er7, "OBX")
    assert (obx[2], obx[5], obx[11]) == ("SN", obx5, "C")
    (note,) = [t for t in notes(er7) if t.startswith("Corrected report")]
    assert "13.8 U/L" in note


def test_a_comment_only_correction_keeps_the_value_and_the_flag(
    lab: Lab, runner: CliRunner, tmp_path: Path
) -> None:
    first = lab.ids["SAA-0005"]  # 819.4 U/L therapeutic
    view = correct_json(runner, lab, first, "--by", "akoval", "--reason",
                        "haemolysis noted after release (invented)", "--comment",
                        "The sample was slightly haemolysed.")  # fmt: skip
    with lab.store() as store:
        old = result_row(store, first)
        (message,) = messages_of(store, view["id"])
        (old_message,) = messages_of(store, first)
    assert view["version"] == 2 and view["result_status"] == "C"
    for key in ("activity_u_per_l", "comparator", "flag", "comment", "status", "rule_id"):
        assert view[key] == old[key], key
    er7 = message["payload"]
    assert_hl7_strict_valid(er7, tmp_path / "comment-report.txt")
    obx, old_obx = segment(er7, "OBX"), segment(old_message["payload"], "OBX")
    assert (obx[5], obx[8], obx[11]) == (old_obx[5], old_obx[8], "C") == ("819.4", "N", "C")
    texts = notes(er7)
    assert texts[: len(notes(old_message["payload"]))] == notes(old_message["payload"])
    assert "The sample was slightly haemolysed." in texts
    assert texts[-1].startswith("Corrected report (version 2)") and "819.4 U/L" in texts[-1]


def test_a_comment_only_correction_keeps_the_whole_interpretation_record(
    lab: Lab, runner: CliRunner
) -> None:
    """Only the note changes: protocol, its file version, rule and recommendation stay."""
    first = lab.ids["SAA-0002"]  # 59.4 U/L, AIEOP-BFM protocol, with a recommendation
    args = ["--reason", "note for the ward (invented)", "--comment", "Phoned to the ward."]
    view = correct_json(runner, lab, first, "--by", "akoval", *args)
    with lab.store() as store:
        old, new = result_row(store, first), result_row(store, view["id"])
    assert old["protocol_version"]  # the original records which protocol file judged it
    for key in ("activity_u_per_l", "comparator", "status", "flag", "comment", "rule_id",
                "recommendation", "protocol", "protocol_version", "mean_u_per_l",
                "cv_percent", "dilution", "wells", "order_id", "bias_factor"):  # fmt: skip
        assert new[key] == old[key], f"{key}: {old[key]!r} became {new[key]!r}"


def test_a_comment_only_correction_of_a_no_result_is_sent_as_no_result(
    lab: Lab, runner: CliRunner, tmp_path: Path
) -> None:
    """SAA-0009 had no valid result (sent with OBX-11 X); a note is added to it. Version 2
    is a correction (C) in the store, but with still no value it is sent as X (HL7 table
    0085: results cannot be obtained), and every record says so."""
    first = lab.ids["SAA-0009"]
    result = invoke(runner, lab, "correct", str(first), "--by", "akoval", "--reason",
                    "explain the invalid result (invented)", "--comment",
                    "Replicates disagreed; a new sample has been requested.")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "sent with OBX-11 X" in result.output
    data = json.loads(ok(runner, lab, "history", str(first), "--json"))
    new = data["versions"][-1]
    assert (new["version"], new["result_status"], new["activity_u_per_l"]) == (2, "C", None)
    (recorded,) = new["messages"]
    assert recorded["report_status"] == "X"
    with lab.store() as store:
        (message,) = messages_of(store, new["id"])
    er7 = message["payload"]
    assert_hl7_strict_valid(er7, tmp_path / "no-result-c.txt")
    assert "Replicates disagreed; a new sample has been requested." in notes(er7)
    # what was sent is what the store, the history and the command say was sent
    assert segment(er7, "OBX")[11] == recorded["report_status"] == "X"
    assert segment(er7, "OBR")[25] == "X"
    assert any(n.startswith("Corrected report (version 2)") for n in notes(er7))


# --- corrections of corrections, conflicts ----------------------------------------------


def test_a_correction_of_a_correction_is_version_3_and_history_lists_all(
    lab: Lab, runner: CliRunner, tmp_path: Path
) -> None:
    first = lab.ids["SAA-0001"]
    v2 = correct_json(runner, lab, first, "--by", "akoval", "--reason", "first reason (invented)",
                      "--value", "60")  # fmt: skip
    v3 = correct_json(runner, lab, v2["id"], "--by", "tdrost", "--reason",
                      "second reason (invented)", "--value", "75", "--comment",
                      "Second correction.")  # fmt: skip
    assert (v3["version"], v3["result_status"], v3["activity_u_per_l"]) == (3, "C", 75.0)
    assert v3["result_uid"] == v2["result_uid"]
    with lab.store() as store:
        rows = versions_of(store, first)
        states = [state_of(store, r["id"]) for r in rows]
        (message,) = messages_of(store, v3["id"])
    assert [r["version"] for r in rows] == [1, 2, 3]
    assert [r["id"] for r in rows] == [first, v2["id"], v3["id"]]
    assert [r["result_status"] for r in rows] == ["F", "C", "C"]
    assert [r["activity_u_per_l"] for r in rows] == [249.6, 60.0, 75.0]
    assert states == ["replaced", "replaced", "released"]
    assert [r["created_by"] for r in rows] == ["cli", "akoval", "tdrost"]
    assert [r["change_reason"] for r in rows] == [
        None, "first reason (invented)", "second reason (invented)"
    ]  # fmt: skip
    er7 = message["payload"]
    assert_hl7_strict_valid(er7, tmp_path / "v3-report.txt")
    (note,) = [t for t in notes(er7) if t.startswith("Corrected report")]
    assert "version 3" in note and "60 U/L" in note and "249.6" not in note
    assert "Second correction." in notes(er7)

    # history, from any of the versions, lists the three in order with who and why
    for rid in (first, v2["id"], v3["id"]):
        data = json.loads(ok(runner, lab, "history", str(rid), "--json"))
        assert [v["version"] for v in data["versions"]] == [1, 2, 3]
        assert [v["created_by"] for v in data["versions"]] == ["cli", "akoval", "tdrost"]
        assert [v["change_reason"] for v in data["versions"]][1:] == [
            "first reason (invented)", "second reason (invented)"
        ]  # fmt: skip
        assert [v["state"] for v in data["versions"]] == ["replaced", "replaced", "released"]
    text = ok(runner, lab, "history", str(v3["id"]))
    lines = text.splitlines()
    assert lines[0].startswith("SAA-0001: 3 version(s)")
    marks = [f"v1 result:{first} ", f"v2 result:{v2['id']} ", f"v3 result:{v3['id']} "]
    positions = [next(i for i, line in enumerate(lines) if mark in line) for mark in marks]
    assert positions == sorted(positions)
    assert "by akoval" in lines[positions[1]] and "by tdrost" in lines[positions[2]]
    assert "reason: first reason (invented)" in text
    assert "reason: second reason (invented)" in text


def test_correcting_a_replaced_version_is_a_conflict_naming_the_newest(
    lab: Lab, runner: CliRunner
) -> None:
    first = lab.ids["SAA-0008"]
    v2 = correct_json(runner, lab, first, "--by", "akoval", "--reason", "r1 (invented)",
                      "--value", "140")  # fmt: skip
    with lab.store() as store:
        before = counts(store)
    late = invoke(runner, lab, "correct", str(first), "--by", "tdrost", "--reason",
                  "r2 (invented)", "--value", "150")  # fmt: skip
    assert late.exit_code == 8, late.output
    assert f"result {v2['id']}" in late.output
    assert f"saa-lab history {v2['id']}" in late.output
    assert "Traceback" not in late.output and len(late.output.strip().splitlines()) == 1
    v3 = correct_json(runner, lab, v2["id"], "--by", "tdrost", "--reason", "r3 (invented)",
                      "--value", "150")  # fmt: skip
    # the conflict left nothing behind: v3 is the only thing added since
    with lab.store() as store:
        results, messages, _ = counts(store)
        assert (results, messages) == (before[0] + 1, before[1] + 1)
        assert [r["version"] for r in versions_of(store, first)] == [1, 2, 3]
    for older in (first, v2["id"]):  # each older version now points at v3
        again = invoke(runner, lab, "correct", str(older), "--by", "akoval", "--reason",
                       "r4 (invented)", "--comment", "late note")  # fmt: skip
        assert again.exit_code == 8, again.output
        assert f"saa-lab history {v3['id']}" in again.output


def test_two_concurrent_corrections_of_one_version_make_one_new_version(lab: Lab) -> None:
    config = load_config(lab.config_path)
    first = lab.ids["SAA-0014"]
    people = ["akoval", "tdrost", "akoval"]
    stores = [Store(config.database_url, zone=config.lab.zone) for _ in people]
    barrier = threading.Barrier(len(people))
    outcomes: list[object] = [None] * len(people)

    def work(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = correct(config, stores[i], first, by=people[i],
                                  reason=f"concurrent correction {i} (invented)",
                                  value=str(600 + i))  # fmt: skip
        except Exception as exc:  # the outcome is checked below
            outcomes[i] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(people))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for opened in stores:
            opened.close()
    winners = [o for o in outcomes if isinstance(o, int)]
    losers = [o for o in outcomes if not isinstance(o, int)]
    assert len(winners) == 1, outcomes
    assert len(losers) == len(people) - 1
    assert all(isinstance(o, ConflictError) for o in losers), losers
    with lab.store() as store:
        rows = versions_of(store, first)
        assert [r["version"] for r in rows] == [1, 2]
        assert rows[1]["id"] == winners[0]
        c_messages = [m for r in rows for m in messages_of(store, r["id"])
                      if m["report_status"] == "C"]  # fmt: skip
        assert len(c_messages) == 1
        with store.session() as s:
            corrected = s.scalars(
                select(AuditEntry).where(AuditEntry.action == "result-corrected")
            ).all()
        assert [e.entity_id for e in corrected] == [str(winners[0])]
        assert store.verify_audit().intact


def test_a_correction_that_loses_the_race_is_a_conflict(lab: Lab) -> None:
    """Deterministic interleaving: the slower person has read the result and found it the
    newest version when the faster one's correction commits; the slower one then gets a
    conflict (exit 8, look again), not 'not released' (exit 7)."""
    config = load_config(lab.config_path)
    first = lab.ids["SAA-0008"]
    slow = Store(config.database_url, zone=config.lab.zone)
    fast = Store(config.database_url, zone=config.lab.zone)
    reached, go = threading.Event(), threading.Event()

    def pause(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # the slow correction stops just before it reads the result's review state
        if statement.lstrip().startswith("SELECT result_states.") and not reached.is_set():
            reached.set()
            go.wait(30)

    event.listen(slow.engine, "before_cursor_execute", pause)
    outcome: list[object] = []

    def slow_correction() -> None:
        try:
            outcome.append(correct(config, slow, first, by="tdrost",
                                   reason="slow (invented)", comment="slow note"))  # fmt: skip
        except Exception as exc:  # the outcome is checked below
            outcome.append(exc)

    thread = threading.Thread(target=slow_correction)
    try:
        thread.start()
        assert reached.wait(30)
        won = correct(config, fast, first, by="akoval", reason="fast (invented)",
                      comment="fast note")  # fmt: skip
        go.set()
        thread.join(timeout=30)
    finally:
        go.set()
        slow.close()
        fast.close()
    (lost,) = outcome
    assert isinstance(lost, ConflictError), repr(lost)
    assert str(won) in str(lost) or "someone else" in str(lost)
    with lab.store() as store:
        assert [r["version"] for r in versions_of(store, first)] == [1, 2]


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "code", "says"), [
    (["--by", "akoval", "--reason", "r (invented)"], 7, "nothing to correct"),
    (["--by", "akoval", "--reason", "r (invented)", "--comment", "  "], 7, "nothing to correct"),
    (["--by", "akoval", "--value", "60"], 2, "Missing option '--reason'"),
    (["--by", "akoval", "--reason", "   ", "--value", "60"], 7, "needs a --reason"),
    (["--reason", "r (invented)", "--value", "60"], 2, "Missing option '--by'"),
    (["--by", "bmeyer", "--reason", "r (invented)", "--value", "60"], 7, "approver"),
    (["--by", "nobody", "--reason", "r (invented)", "--value", "60"], 7, "unknown user 'nobody'"),
    (["--by", "akoval", "--reason", "r (invented)", "--value", "sixty"], 7, "'sixty'"),
    (["--by", "akoval", "--reason", "r (invented)", "--value", "60 U/L"], 7, "'60 U/L'"),
    (["--by", "akoval", "--reason", "r (invented)", "--value", "-5"], 7, "'-5'"),
    (["--by", "akoval", "--reason", "r (invented)", "--value", "<=25"], 7, "'<=25'"),
    (["--by", "akoval", "--reason", "r (invented)", "--value", ""], 7, "--value"),
])  # fmt: skip
def test_a_correction_that_cannot_be_made_changes_nothing(
    lab: Lab, runner: CliRunner, args: list[str], code: int, says: str
) -> None:
    with lab.store() as store:
        before = counts(store)
    result = invoke(runner, lab, "correct", str(lab.ids["SAA-0001"]), *args)
    assert result.exit_code == code, result.output
    assert says in result.output
    assert "Traceback" not in result.output
    with lab.store() as store:
        assert counts(store) == before
        assert state_of(store, lab.ids["SAA-0001"]) == "released"


@pytest.mark.parametrize("command", ["correct", "history"])
def test_a_run_is_not_taken_for_a_result(lab: Lab, runner: CliRunner, command: str) -> None:
    """'run:1' names run 1, not result 1: correct and history take a result."""
    with lab.store() as store:
        before = counts(store)
    args = ["--by", "akoval", "--reason", "r (invented)", "--comment", "c"]
    result = invoke(runner, lab, command, "run:1", *(args if command == "correct" else []))
    assert result.exit_code in (2, 7), result.output
    assert "result" in result.output and "Traceback" not in result.output
    with lab.store() as store:
        assert counts(store) == before
        assert state_of(store, lab.ids["SAA-0001"]) == "released"


@pytest.mark.parametrize("accession", ["SAA-0006", "SAA-0011"])
def test_a_result_waiting_for_its_reassay_cannot_be_corrected(
    lab: Lab, runner: CliRunner, accession: str
) -> None:
    with lab.store() as store:
        before = counts(store)
        assert state_of(store, lab.ids[accession]) == "reassay"
    result = invoke(runner, lab, "correct", str(lab.ids[accession]), "--by", "akoval",
                    "--reason", "r (invented)", "--value", "1500")  # fmt: skip
    assert result.exit_code == 7, result.output
    assert "not released" in result.output and "reassay" in result.output
    with lab.store() as store:
        assert counts(store) == before


def test_a_result_that_is_not_there_cannot_be_corrected(lab: Lab, runner: CliRunner) -> None:
    result = invoke(runner, lab, "correct", "9999", "--by", "akoval", "--reason",
                    "r (invented)", "--value", "60")  # fmt: skip
    assert result.exit_code == 7, result.output
    assert "no result 9999" in result.output
    assert invoke(runner, lab, "history", "9999").exit_code == 7


def test_waiting_and_rejected_results_cannot_be_corrected(
    tmp_path: Path, runner: CliRunner
) -> None:
    """Under the default review rule the run waits for a person: nothing is released yet."""
    lab = _make_lab(tmp_path / "review-lab", f"sqlite:///{tmp_path / 'review.db'}", runner, "")
    with lab.store() as store:
        assert state_of(store, lab.ids["SAA-0001"]) == "waiting"
        before = counts(store)
    result = invoke(runner, lab, "correct", str(lab.ids["SAA-0001"]), "--by", "akoval",
                    "--reason", "r (invented)", "--value", "60")  # fmt: skip
    assert result.exit_code == 7, result.output
    assert "waiting, not released" in result.output
    with lab.store() as store:
        assert counts(store) == before
    ok(runner, lab, "reject", f"result:{lab.ids['SAA-0008']}", "--by", "bmeyer", "--reason",
       "bubble in the well (invented)")  # fmt: skip
    rejected = invoke(runner, lab, "correct", str(lab.ids["SAA-0008"]), "--by", "akoval",
                      "--reason", "r (invented)", "--value", "60")  # fmt: skip
    assert rejected.exit_code == 7, rejected.output
    assert "rejected, not released" in rejected.output
    # released by a person, it can be corrected
    ok(runner, lab, "release", f"result:{lab.ids['SAA-0001']}", "--by", "akoval", "--meaning",
       "approved")  # fmt: skip
    view = correct_json(runner, lab, lab.ids["SAA-0001"], "--by", "akoval", "--reason",
                        "r (invented)", "--value", "60")  # fmt: skip
    assert view["version"] == 2
    (note,) = [t for t in view["report"]["lab_comments"] + [view["report"]["correction_note"]]
               if t and t.startswith("Corrected report")]  # fmt: skip
    assert "249.6 U/L" in note


# --- history -----------------------------------------------------------------------------


def test_history_shows_versions_messages_and_audit_entries(lab: Lab, runner: CliRunner) -> None:
    first = lab.ids["SAA-0012"]  # 44.5 U/L of PAT-1012
    with lab.store() as store:
        (original,) = messages_of(store, first)
    v2 = correct_json(runner, lab, first, "--by", "tdrost", "--reason",
                      "calibrator lot mix-up (invented)", "--value", "130")  # fmt: skip
    (c_message,) = v2["messages"]

    data = json.loads(ok(runner, lab, "history", str(first), "--json"))
    old, new = data["versions"]
    assert (old["id"], old["version"], old["result_status"], old["state"]) == (
        first, 1, "F", "replaced",
    )  # fmt: skip
    assert (new["id"], new["version"], new["result_status"], new["state"]) == (
        v2["id"], 2, "C", "released",
    )  # fmt: skip
    assert [(m["control_id"], m["report_status"], m["status"]) for m in old["messages"]] == [
        (original["control_id"], "F", "sent")
    ]  # fmt: skip
    assert [(m["control_id"], m["report_status"], m["status"]) for m in new["messages"]] == [
        (c_message["control_id"], "C", "sent")
    ]  # fmt: skip
    audit = data["audit"]
    assert [e["seq"] for e in audit] == sorted(e["seq"] for e in audit)
    actions = [(e["action"], e["entity_id"]) for e in audit]
    assert ("result-created", str(first)) in actions
    assert ("result-corrected", str(v2["id"])) in actions
    assert ("result-replaced", str(first)) in actions
    assert ("message-queued", c_message["control_id"]) in actions
    assert ("message-sent", c_message["control_id"]) in actions
    assert ("message-sent", original["control_id"]) in actions
    (corrected,) = [e for e in audit if e["action"] == "result-corrected"]
    assert corrected["actor"] == "tdrost"
    assert corrected["reason"] == "calibrator lot mix-up (invented)"
    assert corrected["previous"]["activity_u_per_l"] == 44.5
    assert corrected["previous"]["result_id"] == first
    assert corrected["previous"]["version"] == 1
    assert corrected["previous"]["flag"] == old["flag"]
    assert corrected["detail"]["activity_u_per_l"] == 130.0
    assert corrected["detail"]["version"] == 2
    (replaced,) = [e for e in audit if e["action"] == "result-replaced"]
    assert replaced["previous"] == {"state": "released"}
    assert replaced["reason"] == "calibrator lot mix-up (invented)"
    assert json.loads(ok(runner, lab, "history", f"result:{v2['id']}", "--json")) == data

    text = ok(runner, lab, "history", str(v2["id"]))
    assert text.startswith("SAA-0012: 2 version(s)")
    assert f"message {original['control_id']} OBX-11 F to file: sent" in text
    assert f"message {c_message['control_id']} OBX-11 C to file: sent" in text
    version_lines = [line for line in text.splitlines() if " result:" in line and "OBX-11" in line]
    assert len(version_lines) == 2
    assert "44.5 U/L" in version_lines[0] and "OBX-11 F" in version_lines[0]
    assert "130 U/L" in version_lines[1] and "OBX-11 C" in version_lines[1]
    assert "reason: calibrator lot mix-up (invented)" in text
    assert "corrected by tdrost" in text
    audit_lines = text.split("audit:", 1)[1].splitlines()
    (line,) = [a for a in audit_lines if "result-corrected" in a]
    assert "tdrost" in line and "calibrator lot mix-up (invented)" in line
    assert any("result-replaced" in a and f"result {first}" in a for a in audit_lines)


def test_resend_refuses_a_replaced_version_and_resends_the_correction(
    lab: Lab, runner: CliRunner
) -> None:
    first = lab.ids["SAA-0001"]
    v2 = correct_json(runner, lab, first, "--by", "akoval", "--reason",
                      "re-read (invented)", "--value", "60")  # fmt: skip
    refused = invoke(runner, lab, "resend", str(first))
    assert refused.exit_code == 1
    assert f"result {first} is replaced" in refused.output
    resent = invoke(runner, lab, "resend", str(v2["id"]), "--json")
    assert resent.exit_code == 0, resent.output
    (message,) = json.loads(resent.output)["messages"]
    with lab.store() as store:
        payloads = [m["payload"] for m in messages_of(store, v2["id"])]
    assert len(payloads) == 2 and segment(payloads[-1], "OBX")[11] == "C"
    assert message["control_id"] in payloads[-1]

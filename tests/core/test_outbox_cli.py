"""saa-lab outbox / outbox retry / resend / status: the delivery queue for an operator.

The bundled Gen5 sample fills the queue (the pipeline, as ``saa-lab process`` and the
daemon run it): results of CLINIC-NORTH go to an MLLP destination (``north``), the
rest to the file outbox. ``record_delivery`` plays the delivery's part: the file
messages are recorded as sent, and tests make north's messages dead or retried.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import RELEASE_ON_PROCESSING, SAMPLES
from sqlalchemy import select

from saa_lab.cli import cli
from saa_lab.config import load_config
from saa_lab.domain import SourceFile
from saa_lab.pipeline import process_export
from saa_lab.store import Store
from saa_lab.store.models import OutboxMessage, ResultRow, utcnow
from saa_lab.store.queue import outbox_listing, record_delivery
from saa_lab.worklist import parse_worklist

GEN5 = SAMPLES / "biotek_gen5" / "RUN-G5-001.txt"
NORTH = """
[[destinations]]
name = "north"
type = "mllp"
host = "127.0.0.1"
port = 2575
version = "2.4"

[routing]
clinics = { "CLINIC-NORTH" = "north" }
"""
# RUN-G5-001.worklist.csv: these four are CLINIC-NORTH's; eight more results go to the
# file outbox; SAA-0006 and SAA-0011 wait for their re-assay (no message).
NORTH_ACCESSIONS = ["SAA-0001", "SAA-0002", "SAA-0004", "SAA-0012"]


@pytest.fixture
def lab(tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A lab with the sample processed: north's four messages pending, the file's sent."""
    folder = tmp_path / "lab"
    assert runner.invoke(cli, ["init", str(folder)]).exit_code == 0
    with (folder / "saa-lab.toml").open("a", encoding="utf-8") as config_file:
        config_file.write(NORTH + RELEASE_ON_PROCESSING)
    monkeypatch.chdir(folder)
    config = load_config(folder / "saa-lab.toml")
    store = Store(config.database_url)
    try:
        worklist_path = GEN5.with_name("RUN-G5-001.worklist.csv")
        worklist = parse_worklist(SourceFile.from_path(worklist_path), zone=config.lab.zone)
        process_export(store, config, SourceFile.from_path(GEN5, timezone=config.lab.zone),
                       worklist_for=lambda _read: worklist, actor="test")  # fmt: skip
        for message in outbox_listing(store, destination="file"):
            record_delivery(store, int(message["id"]), "sent", where="outbox")
    finally:
        store.close()
    return folder


@pytest.fixture
def store(lab: Path) -> Iterator[Store]:
    opened = Store(load_config(lab / "saa-lab.toml").database_url)
    yield opened
    opened.close()


def run(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def listing(runner: CliRunner, *args: str) -> list[dict[str, object]]:
    messages: list[dict[str, object]] = json.loads(run(runner, "outbox", "--json", *args))[
        "messages"
    ]
    return messages


def message_of(store: Store, accession: str) -> dict[str, object]:
    (found,) = [m for m in outbox_listing(store) if m["accession"] == accession]
    return found


def payload(store: Store, control_id: object) -> str:
    with store.session() as s:
        return s.scalars(
            select(OutboxMessage.payload).where(OutboxMessage.control_id == control_id)
        ).one()


# --- listing -------------------------------------------------------------------------------


def test_outbox_lists_every_message_most_recent_first(lab: Path, runner: CliRunner) -> None:
    messages = listing(runner)
    assert len(messages) == 12
    assert [m["id"] for m in messages] == sorted((m["id"] for m in messages), reverse=True)
    first = messages[-1]
    assert set(first) >= {"id", "destination", "status", "accession", "control_id",
                          "result_id", "attempts", "last_ack", "last_error",
                          "next_attempt_at"}  # fmt: skip
    text = run(runner, "outbox")
    header, *rows = text.splitlines()
    assert header.split() == ["id", "destination", "state", "accession", "result", "MSH-10",
                              "attempts", "last", "ACK/error", "next", "attempt"]  # fmt: skip
    assert len(rows) == 12
    north = next(r for r in rows if "SAA-0001" in r)
    assert re.search(r"north\s+pending\s+SAA-0001\s+\d+\s+[0-9A-F]{20}\s+0\s+-\s+now$", north)
    sent = next(r for r in rows if "SAA-0003" in r)
    assert re.search(r"file\s+sent\s+SAA-0003\s+\d+\s+[0-9A-F]{20}\s+1\s+-\s+-$", sent)


def test_outbox_filters_by_state_and_destination(lab: Path, runner: CliRunner) -> None:
    pending = listing(runner, "--state", "pending")
    assert sorted(str(m["accession"]) for m in pending) == NORTH_ACCESSIONS
    assert {m["destination"] for m in pending} == {"north"}
    assert len(listing(runner, "--destination", "file")) == 8
    assert listing(runner, "--destination", "file", "--state", "pending") == []
    assert len(listing(runner, "--limit", "3")) == 3
    assert listing(runner, "--limit", "3") == listing(runner)[:3]
    assert run(runner, "outbox", "--state", "dead").strip() == "no messages dead"
    unknown = runner.invoke(cli, ["outbox", "--destination", "nort"])
    assert unknown.exit_code == 2
    assert "no destination named 'nort' (did you mean 'north'?)" in unknown.output


def test_outbox_shows_the_last_ack_and_the_next_attempt(
    lab: Path, runner: CliRunner, store: Store
) -> None:
    waiting = message_of(store, "SAA-0002")
    later = utcnow() + timedelta(minutes=5)
    record_delivery(store, int(str(waiting["id"])), "retry", ack_code="AE",
                    error="database busy", next_attempt_at=later)  # fmt: skip
    (row,) = [r for r in run(runner, "outbox").splitlines() if "SAA-0002" in r]
    local = later.astimezone(load_config(lab / "saa-lab.toml").lab.zone)
    assert "AE: database busy" in row
    assert row.endswith(local.strftime("%Y-%m-%d %H:%M:%S"))
    assert re.search(r"pending\s+SAA-0002\s+\d+\s+[0-9A-F]{20}\s+1\s+AE", row)


# --- dead letters and retry ---------------------------------------------------------------


def test_dead_letters_show_in_the_listing_and_in_status(
    lab: Path, runner: CliRunner, store: Store
) -> None:
    dead = message_of(store, "SAA-0004")
    record_delivery(store, int(str(dead["id"])), "dead", ack_code="AR",
                    error="unknown patient PAT-1004")  # fmt: skip
    (listed,) = listing(runner, "--state", "dead")
    assert (listed["id"], listed["last_ack"]) == (dead["id"], "AR")
    assert "AR: unknown patient PAT-1004" in run(runner, "outbox", "--state", "dead")

    status = run(runner, "status")
    assert re.search(r"^queue:    north: 3 pending, 0 sent, 1 dead; oldest unsent (\d+m )?\d+s$",
                     status, re.MULTILINE)  # fmt: skip
    assert (f"dead:     message {dead['id']} to north (SAA-0004, MSH-10 {dead['control_id']}) "
            "after 1 attempt(s): AR: unknown patient PAT-1004") in status  # fmt: skip
    assert "dead:     1 dead-lettered message(s); see 'saa-lab outbox --state dead'" in status
    data = json.loads(run(runner, "status", "--json"))
    assert data["queues"]["north"]["dead"] == 1
    (alert,) = data["dead_letters"]
    assert alert["control_id"] == dead["control_id"] and alert["last_error"].startswith("unknown")


def test_retry_by_id_requeues_with_the_same_control_id(
    lab: Path, runner: CliRunner, store: Store
) -> None:
    dead = message_of(store, "SAA-0001")
    record_delivery(store, int(str(dead["id"])), "dead", ack_code="AR", error="rejected")
    output = run(runner, "outbox", "retry", str(dead["id"]))
    assert output.strip() == (
        f"requeued 1 message(s): {dead['id']} (same MSH-10; the daemon sends them next)"
    )
    again = message_of(store, "SAA-0001")
    assert (again["status"], again["attempts"], again["control_id"]) == (
        "pending", 0, dead["control_id"],
    )  # fmt: skip
    assert listing(runner, "--state", "dead") == []


def test_retry_dead_requeues_every_dead_message(lab: Path, runner: CliRunner, store: Store) -> None:
    ids = [int(str(message_of(store, a)["id"])) for a in ("SAA-0002", "SAA-0012")]
    for message_id in ids:
        record_delivery(store, message_id, "dead", ack_code="CR", error="no")
    output = run(runner, "outbox", "retry", "--dead")
    assert output.startswith(f"requeued 2 message(s): {ids[0]}, {ids[1]} ")
    assert {m["status"] for m in listing(runner, "--destination", "north")} == {"pending"}
    nothing = runner.invoke(cli, ["outbox", "retry", "--dead"])
    assert nothing.exit_code == 1
    assert "nothing to requeue: no dead messages" in nothing.output


def test_retry_refuses_what_it_cannot_requeue(lab: Path, runner: CliRunner, store: Store) -> None:
    usage = runner.invoke(cli, ["outbox", "retry"])
    assert usage.exit_code == 2 and "or --dead" in usage.output
    missing = runner.invoke(cli, ["outbox", "retry", "999"])
    assert missing.exit_code == 1 and "no outbox message with id 999" in missing.output
    sent = message_of(store, "SAA-0003")
    refused = runner.invoke(cli, ["outbox", "retry", str(sent["id"])])
    assert refused.exit_code == 1
    assert "already sent, not requeued" in refused.output
    assert "saa-lab resend RESULT" in refused.output
    assert message_of(store, "SAA-0003")["status"] == "sent"
    pending = message_of(store, "SAA-0001")
    none_dead = runner.invoke(cli, ["outbox", "retry", str(pending["id"]), "--dead"])
    assert none_dead.exit_code == 1
    assert "none of the given messages is dead" in none_dead.output


def test_retry_of_a_pending_message_makes_it_due_now(
    lab: Path, runner: CliRunner, store: Store
) -> None:
    waiting = message_of(store, "SAA-0012")
    record_delivery(store, int(str(waiting["id"])), "retry", ack_code="AE", error="busy",
                    next_attempt_at=utcnow() + timedelta(hours=1))  # fmt: skip
    run(runner, "outbox", "retry", str(waiting["id"]))
    again = message_of(store, "SAA-0012")
    assert (again["status"], again["next_attempt_at"], again["attempts"]) == ("pending", None, 0)


# --- resend --------------------------------------------------------------------------------


@pytest.mark.parametrize("accession", ["SAA-0001", "SAA-0003"])  # north (pending), file (sent)
def test_resend_keeps_the_content_under_a_new_control_id(
    accession: str, lab: Path, runner: CliRunner, store: Store
) -> None:
    original = message_of(store, accession)
    record_delivery(store, original["id"], "sent", where="north")
    data = json.loads(run(runner, "resend", str(original["result_id"]), "--json"))
    (new,) = data["messages"]
    assert (data["result_id"], data["accession"]) == (original["result_id"], accession)
    assert new["destination"] == original["destination"]
    assert new["status"] == "pending"
    assert new["control_id"] != original["control_id"]
    assert re.fullmatch(r"[0-9A-F]{20}", new["control_id"])

    before = [s.split("|") for s in payload(store, original["control_id"]).split("\r")]
    after = [s.split("|") for s in payload(store, new["control_id"]).split("\r")]
    assert [s[0] for s in after] == [s[0] for s in before]
    for old_segment, new_segment in zip(before, after, strict=True):
        assert len(new_segment) == len(old_segment)
        for number, (old_field, new_field) in enumerate(zip(old_segment, new_segment,
                                                            strict=True)):  # fmt: skip
            if old_segment[0] == "MSH" and number == 9:  # MSH-10 (MSH-1 is the separator)
                assert (old_field, new_field) == (original["control_id"], new["control_id"])
            else:
                assert new_field == old_field, f"{old_segment[0]}-{number} changed"


def test_resend_prints_the_new_control_ids(lab: Path, runner: CliRunner, store: Store) -> None:
    original = message_of(store, "SAA-0002")
    record_delivery(store, original["id"], "sent", where="north")
    output = run(runner, "resend", str(original["result_id"]))
    (line,) = output.splitlines()
    match = re.fullmatch(
        rf"result {original['result_id']} \(SAA-0002\) re-issued to north: "
        r"message (\d+), MSH-10 ([0-9A-F]{20})",
        line,
    )
    assert match is not None
    assert match.group(2) != original["control_id"]
    assert len(listing(runner, "--destination", "north")) == 5
    record_delivery(store, int(match.group(1)), "sent", where="north")
    again = run(runner, "resend", str(original["result_id"]))  # from the latest message
    assert match.group(2) not in again
    # 4 queued for north, minus the original and the first re-issue (both sent), plus this one
    assert len(listing(runner, "--state", "pending")) == 4


def test_resend_refuses_unknown_and_unsent_results(
    lab: Path, runner: CliRunner, store: Store
) -> None:
    unknown = runner.invoke(cli, ["resend", "999"])
    assert unknown.exit_code == 1 and "no result with id 999" in unknown.output
    with store.session() as s:
        result_id, status = s.execute(
            select(ResultRow.id, ResultRow.result_status).where(ResultRow.accession == "SAA-0006")
        ).one()
    assert status == "RA"  # above the ULOQ: waits for its re-assay, never sent
    refused = runner.invoke(cli, ["resend", str(result_id)])
    assert refused.exit_code == 1
    assert f"result {result_id} (SAA-0006) has no message to resend (waiting for its re-assay)" in (
        refused.output
    )


# --- status ------------------------------------------------------------------------------


def test_status_shows_queue_depth_and_the_oldest_unsent_age(
    lab: Path, runner: CliRunner, store: Store
) -> None:
    with store.session() as s:
        oldest = s.scalars(
            select(OutboxMessage).where(OutboxMessage.destination == "north")
            .order_by(OutboxMessage.id).limit(1)
        ).one()  # fmt: skip
        oldest.created_at = utcnow() - timedelta(hours=2, minutes=5, seconds=10)
    text = run(runner, "status")
    lines = text.splitlines()
    # every line that was there before stays
    assert "files:    1 done" in lines and "runs:     1 accepted" in lines
    outbox_line = next(x for x in lines if x.startswith("outbox:   "))
    assert outbox_line.startswith("outbox:   4 pending, 8 sent (oldest pending since ")
    assert "queue:    north: 4 pending, 0 sent, 0 dead; oldest unsent 2h 05m" in lines
    assert "queue:    file: 0 pending, 8 sent, 0 dead" in lines
    assert not any(x.startswith("dead:") for x in lines)

    data = json.loads(run(runner, "status", "--json"))
    for key in ("files", "runs", "results", "outbox", "oldest_pending_message", "waiting",
                "failed", "service", "lookback", "reassay", "config", "inbox"):  # fmt: skip
        assert key in data
    assert data["outbox"] == {"pending": 4, "sent": 8}
    north = data["queues"]["north"]
    assert (north["pending"], north["sent"], north["dead"]) == (4, 0, 0)
    assert 2 * 3600 + 5 * 60 <= north["oldest_pending_seconds"] < 2 * 3600 + 7 * 60
    assert data["queues"]["file"] == {"pending": 0, "sent": 8, "dead": 0,
                                      "oldest_pending_seconds": None}  # fmt: skip
    assert data["dead_letters"] == []


def test_status_lists_only_the_most_recent_dead_letters(
    lab: Path, runner: CliRunner, store: Store
) -> None:
    from saa_lab.cli import DEAD_LETTERS_SHOWN

    ids = sorted(int(str(m["id"])) for m in outbox_listing(store))
    for message_id in ids[: DEAD_LETTERS_SHOWN + 2]:
        record_delivery(store, message_id, "dead", ack_code="AR", error=f"refused {message_id}")
    text = run(runner, "status")
    shown = [x for x in text.splitlines() if x.startswith("dead:     message ")]
    assert len(shown) == DEAD_LETTERS_SHOWN
    assert f"refused {ids[DEAD_LETTERS_SHOWN + 1]}" in shown[0]  # most recent first
    assert (f"dead:     {DEAD_LETTERS_SHOWN + 2} dead-lettered message(s) (2 more not shown)"
            in text)  # fmt: skip


def test_the_receivers_answer_is_shown_once() -> None:
    from saa_lab.cli import _ack_text

    assert _ack_text({"last_ack": "AR", "last_error": "unknown patient"}) == "AR: unknown patient"
    rejected = "rejected by the receiver (AR): unknown patient"
    assert _ack_text({"last_ack": "AR", "last_error": rejected}) == rejected
    assert _ack_text({"last_ack": "AA", "last_error": None}) == "AA"
    assert _ack_text({"last_ack": None, "last_error": "connection refused"}) == (
        "connection refused"
    )
    assert _ack_text({"last_ack": None, "last_error": None}) == ""


def test_resend_refuses_while_a_message_of_the_result_is_still_queued(
    lab: Path, runner: CliRunner, store: Store
) -> None:
    original = message_of(store, "SAA-0002")  # pending: never delivered
    refused = runner.invoke(cli, ["resend", str(original["result_id"])])
    assert refused.exit_code == 1
    assert "still has a message waiting to be delivered" in refused.output
    assert len(listing(runner, "--state", "pending")) == 4  # nothing added

"""No patient identifier, name or birth date in a log record above DEBUG (DESIGN.md).

The whole lab runs in this process with invented, distinctive patient data, and every
log record of every logger (saa_lab, watchdog, sqlalchemy, alembic, hl7apy, …) is
captured: orders over MLLP (a good one, its resend, one with problems, one refused), the
daemon processing an export whose worklist carries patient ids, two worklists
quarantined for a bad cell holding a patient's name or id, an MLLP receiver that
answers AE and then AR and echoes the patient's name, MRN and birth date in its error
text, and the CLI: process, review, release, reject, correct, history, patient,
status, outbox. A record leaks if its formatted message, its arguments, its
exception text or an ``extra`` field holds one of the identifiers, in any case.

Accession numbers (the lab's specimen numbers) may be logged; operators need them.
Quarantine sidecars (``.error.txt``), the database and the CLI's own output are not
logs and may name the cell: the tests check that the detail is kept there (and at
DEBUG), so the assertions on the logs could fail.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import REVIEW_DEFAULTS, SAMPLES, wait_for, write_config
from sqlalchemy import text

from saa_lab.cli import cli
from saa_lab.config import AppConfig, load_config
from saa_lab.demo import drop_file
from saa_lab.hl7.mllp import MllpClient, MllpServer
from saa_lab.intake import order_listener
from saa_lab.logs import JsonFormatter, patient_identifiers, redact, without_patient_data
from saa_lab.store import Store
from saa_lab.synth import PlannedSample, gen5_text, plate_values, worklist_csv
from saa_lab.watcher import Daemon

# -- the invented patient --------------------------------------------------------------

MRN = "ZZMRNQX4471"  # PID-3 medical record number (first repetition)
OTHER_ID = "ZZNHSQX9902"  # PID-3 second repetition (a national id)
FAMILY = "Zzquixotl"
GIVEN = "Qwendolyn"
BIRTH = "20110213"  # PID-7
BIRTH_ISO = "2011-02-13"
WORKLIST_PATIENT = "ZZWLPATQX"  # prefix of the worklist's patient_id column
NEEDLES = (MRN, OTHER_ID, FAMILY, GIVEN, BIRTH, BIRTH_ISO, WORKLIST_PATIENT)

GEN5 = SAMPLES / "biotek_gen5" / "RUN-G5-001.txt"
GEN5_WORKLIST = SAMPLES / "biotek_gen5" / "RUN-G5-001.worklist.csv"
WAIT = 30.0  # upper bound for any wait (the flows take a few seconds)

# An ORM^O01 for SAA-0005 of the bundled Gen5 run, with the invented patient.
ORDER = "\r".join([
    "MSH|^~\\&|ONCO-EHR|CHILDRENS|SAA-LAB|REFLAB|20261120081500+0100||ORM^O01|ORMPRIV1|P|2.3.1",
    f"PID|1||{MRN}^^^CHILDRENS^MR~{OTHER_ID}^^^NHS^NH||{FAMILY}^{GIVEN}||{BIRTH}|F",
    "ORC|NW|SAA-0005^ONCO-EHR|||||||20261120081000+0100|||1234^Smith^Anna^^^Dr",
    "OBR|1|SAA-0005^ONCO-EHR||SAA^Asparaginase activity^L|||20261120090000+0100",
    "OBX|1|CE|SAA-FORM^Asparaginase formulation administered^L||PEG^Oncaspar^L||||||F",
    "OBX|2|TS|SAA-DOSE-TIME^Date and time of last asparaginase dose^L||20261113090000+0100"
    "||||||F",
]) + "\r"  # fmt: skip
# The same patient, but no usable identifier and a birth date that is no date: AE.
BROKEN_ORDER = (
    ORDER.replace("ORMPRIV1", "ORMPRIV2")
    .replace(f"{MRN}^^^CHILDRENS^MR~{OTHER_ID}^^^NHS^NH", "")
    .replace(f"|{BIRTH}|", f"|{FAMILY}{BIRTH}|")
    .replace("SAA-0005", "SAA-0777")
)
# Not an order message at all, but full of the patient's data: AR.
REFUSED = f"MSH|^~\\&|X|Y|SAA-LAB|REFLAB|2026||ADT^A01|ORMPRIV3|P|2.5.1\rPID|1||{MRN}||{FAMILY}\r"

USERS = """
[[users]]
name = "amoss"
full_name = "Ada Moss"
roles = ["reviewer", "approver"]
"""


def leaks(records: Iterable[logging.LogRecord], needles: Iterable[str] = NEEDLES) -> list[str]:
    """Records at INFO or above whose rendering (message, exception, extra fields) or
    arguments hold a needle, in any case."""
    formatter = JsonFormatter()
    wanted = [n.lower() for n in needles]
    found = []
    for record in records:
        if record.levelno < logging.INFO:
            continue
        rendered = "\n".join(
            (formatter.format(record), repr(record.args), record.stack_info or "")
        ).lower()
        hits = [n for n in wanted if n in rendered]
        if hits:
            found.append(f"{record.levelname} {record.name}: {record.getMessage()!r} holds {hits}")
    return found


# -- a receiver that answers AE, then AR, echoing the patient ----------------------------


def _fields(er7: str, segment: str) -> list[str]:
    line = next((s for s in er7.split("\r") if s.startswith(segment + "|")), "")
    return line.split("|")


class EchoingReceiver:
    """AE the first time it sees a message, AR after; the error text repeats the
    patient's name, id and birth date from the message's PID (as some EHRs do)."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, er7: str) -> str:
        msh, pid = _fields(er7, "MSH"), _fields(er7, "PID")
        control_id = msh[9]
        count = self.seen.get(control_id, 0)
        self.seen[control_id] = count + 1
        ident = pid[3].split("^")[0] if len(pid) > 3 else ""
        name = " ".join(pid[5].split("^")[:2]).strip() if len(pid) > 5 else ""
        born = pid[7] if len(pid) > 7 else ""
        code = "AE" if count == 0 else "AR"
        why = f"patient {name} MRN {ident} DOB {born} is locked by another user"
        return (
            "MSH|^~\\&|EHR|CLINIC|SAA-LAB|REFLAB|20261121220000||ACK^R01^ACK|"
            f"A{control_id[:18]}|P|2.5.1\rMSA|{code}|{control_id}|{why}"
        )


# -- the lab -----------------------------------------------------------------------------


def synthetic_export(
    folder: Path,
    stem: str,
    accession: str,
    *,
    minute: int,
    patient: str,
    formulation: str = "PEG-asparaginase",
) -> tuple[Path, Path]:
    """An invented Gen5 export ``<stem>.txt`` (one sample) and its worklist with orders."""
    folder.mkdir(parents=True, exist_ok=True)
    order = {"patient_id": patient, "formulation": formulation,
             "dose_time": "2026-11-13T09:00", "collection_time": "2026-11-20T08:30"}  # fmt: skip
    values, rows = plate_values([PlannedSample(accession, 250.0, order=order)], seed=5, noise=0.0)
    export = folder / f"{stem}.txt"
    export.write_text(gen5_text(values, time=f"11:{minute:02d}:00 AM"), encoding="utf-8")
    worklist = folder / f"{stem}.worklist.csv"
    worklist.write_text(worklist_csv(rows), encoding="utf-8")
    return export, worklist


def lab_config(folder: Path, receiver_port: int) -> Path:
    extra = (
        USERS
        + f"""
[hl7]
listen_port = 0

[[destinations]]
name = "ehr"
type = "mllp"
host = "127.0.0.1"
port = {receiver_port}
connect_timeout_seconds = 2.0
ack_timeout_seconds = 2.0

[destinations.retry]
base_seconds = 0.05
max_interval_seconds = 0.1
jitter = 0.0

[routing]
default = "ehr"
"""
    )
    # The shipped rule: the Gen5 run waits for a person (results above the ULOQ).
    return write_config(folder, extra, autoverification=REVIEW_DEFAULTS)


def ack_code(ack: str) -> str:
    return _fields(ack, "MSA")[1]


class Cli:
    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        result = self.runner.invoke(cli, ["--config", str(self.config_path), *args])
        assert result.exit_code == 0, result.output
        return result

    def json(self, *args: str) -> object:
        return json.loads(self(*args, "--json").output)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SAA_LAB_CONFIG", "SAA_LAB_DATABASE_URL", "SAA_LAB_DATABASE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def _outbox_settled(store: Store) -> bool:
    outbox = store.status_summary()["outbox"]
    return bool(outbox) and set(outbox) == {"dead"}


def test_no_patient_data_in_any_log_record_above_debug_through_the_whole_lab(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # capture everything; the assertion is on INFO and above
    receiver = EchoingReceiver()
    with ExitStack() as running:
        peer = MllpServer(receiver, port=0, read_timeout=WAIT)
        peer.start()
        running.callback(peer.stop, 5.0)
        config_path = lab_config(tmp_path / "lab", peer.port)
        config: AppConfig = load_config(config_path)
        store = Store(config.database_url, zone=config.lab.zone)
        running.callback(store.close)
        listener = order_listener(config, store)
        assert listener is not None
        running.enter_context(listener)
        running.enter_context(Daemon(config, store))

        # 1. Orders over MLLP: accepted, resent, stored with problems, refused.
        with MllpClient("127.0.0.1", listener.port, timeout=10) as client:
            codes = [ack_code(client.send(m)) for m in (ORDER, ORDER, BROKEN_ORDER, REFUSED)]
        assert codes == ["AA", "AA", "AE", "AR"]

        # 2. The daemon processes the Gen5 export; its worklist carries patient ids.
        inbox = config.inbox
        worklist = GEN5_WORKLIST.read_text(encoding="utf-8").replace("PAT-", WORKLIST_PATIENT)
        staged = tmp_path / "staged"
        staged.mkdir()
        (staged / GEN5_WORKLIST.name).write_text(worklist, encoding="utf-8")
        drop_file(staged / GEN5_WORKLIST.name, inbox)
        drop_file(GEN5, inbox)
        assert wait_for(lambda: store.status_summary()["runs"] != {})

        # 3. Two worklists quarantined for a cell holding patient data: a patient's
        #    name in the formulation column, and a worklist without its header row
        #    (the first row, with the patient id, is read as the header).
        bad_export, bad_worklist = synthetic_export(
            tmp_path / "bad", "RUN-PRIV-NAME", "SAA-7101", minute=1,
            patient=f"{WORKLIST_PATIENT}-7101", formulation=f"{FAMILY} {GIVEN}",
        )  # fmt: skip
        headless_export, headless_worklist = synthetic_export(
            tmp_path / "bad", "RUN-PRIV-NOHEADER", "SAA-7201", minute=2,
            patient=f"{WORKLIST_PATIENT}-7201",
        )  # fmt: skip
        rows = headless_worklist.read_text(encoding="utf-8").splitlines(keepends=True)
        headless_worklist.write_text("".join(rows[1:]), encoding="utf-8")
        for file in (bad_worklist, bad_export, headless_worklist, headless_export):
            drop_file(file, inbox)
        sidecars = [config.quarantine / f"{w.name}.error.txt"
                    for w in (bad_worklist, headless_worklist)]  # fmt: skip
        assert wait_for(lambda: all(s.exists() for s in sidecars))

        # 4. The CLI: process an export (results leave at once), review, decide, correct.
        run = Cli(config_path)
        good_export, good_worklist = synthetic_export(
            tmp_path / "good", "RUN-PRIV-OK", "SAA-7301", minute=3,
            patient=f"{WORKLIST_PATIENT}-7301",
        )  # fmt: skip
        run("process", str(good_export), "--worklist", str(good_worklist))
        waiting = run.json("review")
        assert isinstance(waiting, list)
        (gen5,) = [v for v in waiting if any(r["accession"] == "SAA-0005" for r in v["results"])]
        run_id = gen5["id"]
        results = {r["accession"]: r for r in gen5["results"]}
        run("review", str(run_id))
        run("release", f"result:{results['SAA-0005']['id']}", "--by", "amoss",
            "--meaning", "approved")  # fmt: skip
        run("release", f"result:{results['SAA-0001']['id']}", "--by", "amoss",
            "--meaning", "approved")  # fmt: skip
        run("reject", f"result:{results['SAA-0003']['id']}", "--by", "amoss",
            "--reason", "haemolysed sample")  # fmt: skip
        run("correct", str(results["SAA-0001"]["id"]), "--by", "amoss",
            "--reason", "transcription error", "--value", "250")  # fmt: skip
        run("release", str(run_id), "--by", "amoss", "--meaning", "approved")
        run("history", str(results["SAA-0005"]["id"]))
        run("patient", MRN)
        run("patient", f"{WORKLIST_PATIENT}1001")

        # 5. Every message met AE, then AR: dead-lettered.
        assert wait_for(lambda: _outbox_settled(store)), store.status_summary()["outbox"]
        run("status")
        run("status", "--json")
        run("outbox", "--state", "dead")
        run("audit", "verify")

    records = list(caplog.records)
    assert leaks(records) == []

    # The identifiers were really in play, so the check above could have failed:
    with store.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT patient_id, patient_family_name FROM orders WHERE accession = 'SAA-0005'")
        ).one()
    assert tuple(stored) == (MRN, FAMILY)
    assert FAMILY in sidecars[0].read_text(encoding="utf-8")  # the sidecar names the cell
    assert f"{WORKLIST_PATIENT}-7201".lower() in sidecars[1].read_text(encoding="utf-8").lower()
    dead = [r for r in records if r.levelno >= logging.ERROR and "dead-lettered" in r.getMessage()]
    assert dead and all("is locked by another user" in r.getMessage() for r in dead)
    assert any("***" in r.getMessage() for r in dead)  # the echo was masked, not dropped
    retried = [r for r in records if r.levelno == logging.WARNING and "(AE)" in r.getMessage()]
    assert retried
    quarantined = [r for r in records if r.levelno >= logging.ERROR
                   and "quarantined" in r.getMessage()]  # fmt: skip
    said = {r.getMessage().split()[1]: r.getMessage() for r in quarantined}
    # Where the problem is, and where to read it: the operator can act on the line.
    assert (
        f"{bad_worklist.name} (line 2): the reason is in {sidecars[0]}" in said[bad_worklist.name]
    )
    assert "(line 1)" in said[headless_worklist.name]
    # The detail an operator needs is kept at DEBUG (and in the sidecar).
    assert any(FAMILY in r.getMessage() for r in records if r.levelno == logging.DEBUG)
    assert all(n >= 2 for n in receiver.seen.values())  # each got AE, then AR
    # Sanity: the leak check finds a planted record.
    planted = logging.LogRecord("x", logging.INFO, "", 0, "order for %s", (FAMILY.upper(),), None)
    assert leaks([planted])


def test_sql_errors_do_not_quote_patient_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed statement's error text, as a bug's traceback logs it at ERROR, names the
    SQL but not its parameters: the store's engine is made with hide_parameters."""
    from sqlalchemy.exc import StatementError

    caplog.set_level(logging.DEBUG)
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        with pytest.raises(StatementError) as caught, store.session() as s:
            s.execute(text("INSERT INTO orders (id, patient_id) VALUES (:id, :pid)"),
                      {"id": "not-a-number", "pid": MRN})  # fmt: skip
    finally:
        store.close()
    logging.getLogger("saa_lab.watcher").error(
        "unexpected error on x.txt", exc_info=(type(caught.value), caught.value, None)
    )
    assert "INSERT INTO orders" in str(caught.value)
    assert "parameters hidden" in str(caught.value) and MRN not in str(caught.value)
    (record,) = [r for r in caplog.records if r.name == "saa_lab.watcher"]
    assert leaks([record]) == []
    assert "INSERT INTO orders" in JsonFormatter().format(record)  # the exception is logged


def test_patient_identifiers_are_read_from_the_patient_segments() -> None:
    found = patient_identifiers(ORDER)
    assert {MRN, OTHER_ID, FAMILY, GIVEN, BIRTH, BIRTH_ISO, "CHILDRENS"} <= found
    assert "SAA-0005" not in found  # the accession is not the patient's
    assert "F" not in found and "1" not in found  # too short to mask safely


def test_a_receivers_echo_is_masked_in_any_case() -> None:
    echo = f"unknown patient {FAMILY.upper()}, {GIVEN} ({MRN}) born {BIRTH_ISO}: SAA-0005"
    masked = without_patient_data(echo, ORDER)
    assert masked == "unknown patient ***, *** (***) born ***: SAA-0005"
    assert redact("nothing here", []) == "nothing here"


def test_the_leak_check_sees_exception_text_and_extra_fields() -> None:
    try:
        raise ValueError(f"bad cell {GIVEN!r}")
    except ValueError:
        import sys

        with_exception = logging.LogRecord("x", logging.ERROR, "", 0, "failed", None,
                                           sys.exc_info())  # fmt: skip
    with_extra = logging.LogRecord("x", logging.WARNING, "", 0, "stored", None, None)
    with_extra.patient = MRN
    quiet = logging.LogRecord("x", logging.DEBUG, "", 0, "order for %s", (MRN,), None)
    assert len(leaks([with_exception, with_extra, quiet])) == 2

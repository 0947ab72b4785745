"""Crash consistency: ``saa-lab watch`` killed with SIGKILL at every step, restarted each time.

A few hundred invented exports (each with its worklist, written to a temporary name and
renamed in, the worklist first) are dropped into the inbox in batches, one batch per
round. Each round starts the real daemon as a subprocess and ends it with SIGKILL:

* **point** rounds arm one named crash point (``SAA_LAB_CRASH_AT=NAME:N``, see
  ``saa_lab/faults.py``); every point gets one such round, so every phase (read,
  calibrated, committed, archived, file-written, mllp-sent, acked) is provably hit;
* **chance** rounds arm one point with a probability (``NAME:pP``);
* **external** rounds send SIGKILL from outside after a random delay from the start
  (during start-up, reading, fitting, committing, delivering or idling).

The database is created before the first round; a kill during the very first migration
has its own test at the end of this module.

A point that is not reached before the daemon has nothing left to do is counted as an
external kill instead. After the last round a clean daemon runs until every export is
done and nothing is pending, and is stopped with SIGTERM. Results are routed by clinic:
half of each plate's samples to an MLLP receiver run by this test on 127.0.0.1 (which
records every message, duplicates included, and answers AA), the rest to the file outbox.

The checks, on the database, the folders and what the receiver saw:

* every export processed exactly once: one ``done`` source row per content hash, one run
  per export with all its samples, one ``export-processed`` audit entry; each export is
  in ``archive/`` (where its recorded archive path says), none in the inbox or
  quarantine, nothing lost;
* every released result has one outbox row for the destination its clinic routes to,
  sent (none pending or dead), delivered at least once, always under the same MSH-10
  (the receiver's duplicates are counted and printed); nothing delivered that is not in
  the outbox;
* no result without its run and source file; no source ``done`` without its results;
* ``saa-lab audit verify`` passes.

Parameters (environment): ``SAA_LAB_CRASH_EXPORTS`` (default 120),
``SAA_LAB_CRASH_KILLS`` (default 14; at least one round per crash point),
``SAA_LAB_CRASH_SEED`` (default 8; the schedule, not the timing, is reproducible) and
``SAA_LAB_CRASH_SAMPLES`` (samples per plate, default 6). The CI run (default
parameters) takes 30 s on two idle cores, about a minute on a busy machine::

    pytest tests/reliability/test_crash_consistency.py -s

The soak (about 2,000 exports and 200 kills, about 7 minutes; prints the same summary)::

    python tools/soak.py --exports 2000 --kills 200 --seed 1

which is ``SAA_LAB_CRASH_EXPORTS=2000 SAA_LAB_CRASH_KILLS=200 SAA_LAB_CRASH_SEED=1
pytest tests/reliability/test_crash_consistency.py -s -p no:cacheprovider``.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import write_config
from lab_support import (
    FILE_DESTINATION,
    MLLP_CLINIC,
    MLLP_DESTINATION,
    MLLP_ROUTING,
    Export,
    Received,
    Receiver,
    drop_export,
    make_exports,
)

from saa_lab.config import load_config
from saa_lab.faults import CRASH_ENV, POINTS
from saa_lab.hl7 import MllpServer
from saa_lab.store import Store

pytestmark = pytest.mark.slow

EXPORTS = int(os.environ.get("SAA_LAB_CRASH_EXPORTS", "120"))
KILLS = max(int(os.environ.get("SAA_LAB_CRASH_KILLS", "14")), len(POINTS))
SEED = int(os.environ.get("SAA_LAB_CRASH_SEED", "8"))
SAMPLES_PER_PLATE = int(os.environ.get("SAA_LAB_CRASH_SAMPLES", "6"))

HOST = "127.0.0.1"
PIPELINE_POINTS = ("read", "calibrated", "committed", "archived")
START_LIMIT = 60.0  # seconds for the daemon to print that it is watching
ROUND_LIMIT = 15.0  # seconds a point round may wait for its point once watching
EXTERNAL_DELAY = (0.3, 4.0)  # seconds from the start to an external SIGKILL
CHANCE = {"read": 0.25, "calibrated": 0.25, "committed": 0.25, "archived": 0.25,
          "file-written": 0.05, "mllp-sent": 0.05, "acked": 0.05}  # fmt: skip
STEP = 0.05  # the control loop's tick; its waits are proc.wait(), ended by the death


# --- the daemon -----------------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    kind: str  # point | chance | external
    spec: str = ""  # SAA_LAB_CRASH_AT
    delay: float = 0.0  # external: seconds from the start to SIGKILL


@dataclass
class Lab:
    folder: Path
    config_path: Path
    database: Path
    inbox: Path
    archive: Path
    quarantine: Path
    outbox: Path
    logs: list[Path] = field(default_factory=list)

    def query(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        if not self.database.exists():
            return []
        conn = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def count(self, sql: str) -> int:
        """``SELECT count(*) ...``; 0 before the database exists."""
        found = self.query(sql)
        return int(str(found[0][0])) if found else 0

    def exports_in_inbox(self) -> list[str]:
        return sorted(p.name for p in self.inbox.glob("*.txt"))

    def quiescent(self) -> bool:
        """Nothing left to do: no export in the inbox, no message pending."""
        if self.exports_in_inbox():
            return False
        if not self.database.exists():
            return False
        try:
            return self.count("SELECT count(*) FROM outbox WHERE status = 'pending'") == 0
        except sqlite3.OperationalError:
            return False  # not migrated yet

    def start(self, number: int, crash_at: str = "") -> tuple[subprocess.Popen[bytes], Path]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAA_LAB_")}
        if crash_at:
            env[CRASH_ENV] = crash_at
        log = self.folder / "logs" / f"round-{number:04d}.log"
        log.parent.mkdir(exist_ok=True)
        self.logs.append(log)
        with log.open("wb") as stderr:  # a file, not a pipe: a full pipe would block it
            proc = subprocess.Popen(
                [sys.executable, "-m", "saa_lab", "--config", str(self.config_path), "watch"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=env,
            )  # fmt: skip
        return proc, log


def make_lab(folder: Path, extra: str = "") -> Lab:
    config_path = write_config(folder, extra)
    config = load_config(config_path)
    lab = Lab(folder, config_path, Path(config.database_url.removeprefix("sqlite:///")),
              config.inbox, config.archive, config.quarantine, config.outbox)  # fmt: skip
    lab.inbox.mkdir(parents=True, exist_ok=True)
    return lab


def watching(log: Path) -> bool:
    return b"saa-lab watching" in log.read_bytes()


def run_round(lab: Lab, number: int, plan: Round, batch: list[Export]) -> str:
    """Drop ``batch`` (half before the start, half while watching), end the daemon with
    SIGKILL; return what killed it: the crash point's name or ``external``."""
    half = len(batch) // 2
    for export in batch[:half]:
        drop_export(lab.inbox, export)
    started = time.monotonic()
    proc, log = lab.start(number, plan.spec)
    pending = list(batch[half:])
    watched_at: float | None = None
    point = plan.spec.partition(":")[0]
    try:
        while True:
            try:
                proc.wait(timeout=STEP)
            except subprocess.TimeoutExpired:
                pass
            else:
                break  # it died: by its crash point, or of something else (checked below)
            now = time.monotonic()
            if watched_at is None and watching(log):
                watched_at = now
            if watched_at is not None and pending:
                drop_export(lab.inbox, pending.pop(0))
            if plan.kind == "external":
                due = now - started >= plan.delay
            elif watched_at is None:
                assert now - started < START_LIMIT, f"the daemon did not start: {log}"
                due = False
            else:
                # The point cannot come any more (nothing left to do) or is too late.
                due = (not pending and lab.quiescent()) or now - watched_at > ROUND_LIMIT
            if due and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                point = "external"
                break
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    for export in pending:  # those not dropped while it ran wait for the next round
        drop_export(lab.inbox, export)
    assert proc.returncode == -signal.SIGKILL, (
        f"round {number} ({plan}): the daemon exited with {proc.returncode}, "
        f"not by SIGKILL; see {log}:\n{log.read_text(errors='replace')[-3000:]}"
    )
    return point


def run_clean(lab: Lab, number: int, expected: int, limit: float) -> None:
    """A daemon without crash points until everything is done; stopped with SIGTERM."""
    proc, log = lab.start(number)
    deadline = time.monotonic() + limit
    try:
        while True:
            try:
                proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
            else:
                pytest.fail(f"the clean daemon exited with {proc.returncode}; see {log}")
            done = lab.count("SELECT count(*) FROM source_files WHERE status = 'done'")
            if done >= expected and lab.quiescent():
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"not finished after {limit:.0f} s: {done} done of {expected}, inbox "
                    f"{lab.exports_in_inbox()[:5]}, outbox "
                    f"{lab.query('SELECT status, count(*) FROM outbox GROUP BY status')}; "
                    f"see {log}"
                )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, f"SIGTERM: exit {proc.returncode}; see {log}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


# --- the scenario ---------------------------------------------------------------------


@dataclass
class Outcome:
    lab: Lab
    exports: list[Export]
    rounds: list[tuple[Round, str]]
    received: list[Received]
    elapsed: float
    audit_verify: subprocess.CompletedProcess[str]

    @property
    def kills(self) -> Counter[str]:
        return Counter(killed for _, killed in self.rounds)


def schedule(kills: int, rng: random.Random) -> list[Round]:
    """One point round per crash point, then chance and external rounds, shuffled."""
    rounds = []
    for point in POINTS:
        nth = rng.randint(1, 2) if point in PIPELINE_POINTS else rng.randint(1, 4)
        rounds.append(Round("point", f"{point}:{nth}"))
    for number in range(kills - len(POINTS)):
        if number % 2:
            point = rng.choice(POINTS)
            rounds.append(Round("chance", f"{point}:p{CHANCE[point]}"))
        else:
            rounds.append(Round("external", delay=rng.uniform(*EXTERNAL_DELAY)))
    rng.shuffle(rounds)
    return rounds


def summary(outcome: Outcome) -> str:
    received = outcome.received
    duplicates = len(received) - len({m.control_id for m in received})
    lab = outcome.lab
    to_duplicates = len(list((lab.archive / "duplicates").glob("*.txt")))
    orphans = sorted(p.name for p in lab.inbox.iterdir())
    unrecorded = lab.query("SELECT name FROM source_files WHERE archive_path IS NULL")
    temporary = len(list(lab.outbox.glob(".*.tmp")))
    twice = sum(1 for paths in _hashes(lab.archive).values() if len(paths) > 1)
    self_kills = {p: n for p, n in outcome.kills.items() if p != "external"}
    lines = [
        "",
        f"crash consistency: {len(outcome.exports)} exports, {len(outcome.rounds)} kills, "
        f"seed {SEED}, {SAMPLES_PER_PLATE} samples per plate",
        "| measure | value |",
        "|---|---|",
        *(f"| killed at `{p}` | {self_kills.get(p, 0)} |" for p in POINTS),
        f"| killed from outside (random time) | {outcome.kills.get('external', 0)} |",
        f"| MLLP messages received (distinct MSH-10) | {len(received)} "
        f"({len(received) - duplicates}) |",
        f"| duplicates seen by the receiver | {duplicates} |",
        f"| exports moved to archive/duplicates | {to_duplicates} |",
        f"| exports with two copies in the archive | {twice} |",
        f"| files left in the inbox | {len(orphans)} {orphans[:3]} |",
        f"| temporary files left in the outbox | {temporary} |",
        f"| sources without an archive path | {len(unrecorded)} |",
        f"| audit verify | exit {outcome.audit_verify.returncode} |",
        f"| elapsed | {outcome.elapsed:.1f} s |",
        "rounds: "
        + "; ".join(
            f"{plan.spec or f'{plan.delay:.1f} s'} -> {killed}" for plan, killed in outcome.rounds
        ),
    ]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    started = time.monotonic()
    rng = random.Random(SEED)
    exports = make_exports(EXPORTS, SAMPLES_PER_PLATE, SEED)
    rounds = schedule(KILLS, rng)
    # Batches: one per kill round and one for the clean run; all drops are spread out.
    batches = [exports[i :: len(rounds) + 1] for i in range(len(rounds) + 1)]
    receiver = Receiver()
    server = MllpServer(receiver, host=HOST, port=0, read_timeout=60)
    server.start()
    try:
        extra = MLLP_ROUTING.format(name=MLLP_DESTINATION, host=HOST, port=server.port,
                              clinic=MLLP_CLINIC)  # fmt: skip
        lab = make_lab(tmp_path_factory.mktemp("crash") / "lab", extra)
        # The lab is set up (its database created) before the first drop: a kill during
        # the very first migration has its own test below.
        Store(f"sqlite:///{lab.database}").close()
        done: list[tuple[Round, str]] = []
        for number, (plan, batch) in enumerate(zip(rounds, batches, strict=False)):
            done.append((plan, run_round(lab, number, plan, batch)))
        for export in batches[-1]:
            drop_export(lab.inbox, export)
        run_clean(lab, len(rounds), len(exports), limit=120 + 0.5 * len(exports))
    finally:
        server.stop()
    verify = subprocess.run(
        [sys.executable, "-m", "saa_lab", "--config", str(lab.config_path), "audit", "verify"],
        capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("SAA_LAB_")},
    )  # fmt: skip
    result = Outcome(lab, exports, done, receiver.snapshot(), time.monotonic() - started, verify)
    print(summary(result))
    yield result


# --- the checks -----------------------------------------------------------------------


def test_every_crash_point_was_hit(outcome: Outcome) -> None:
    kills = outcome.kills
    missing = [p for p in POINTS if kills[p] == 0]
    assert not missing, f"crash points never reached: {missing}; kills: {dict(kills)}"
    assert sum(kills.values()) == len(outcome.rounds) >= KILLS


def test_every_export_is_processed_exactly_once(outcome: Outcome) -> None:
    lab, exports = outcome.lab, outcome.exports
    expected = {e.sha256: e for e in exports}
    sources = lab.query("SELECT sha256, status, error FROM source_files")
    assert len(sources) == len(exports), "one source row per export, no more"
    assert {s[0] for s in sources} == set(expected)
    assert [s for s in sources if s[1] != "done"] == []
    runs = Counter(
        str(sha)
        for (sha,) in lab.query(
            "SELECT f.sha256 FROM runs r JOIN source_files f ON f.id = r.source_file_id"
        )
    )
    assert {sha: n for sha, n in runs.items() if n != 1} == {}, "one run per export"
    assert set(runs) == set(expected)
    results = lab.query(
        "SELECT f.sha256, s.accession, s.version FROM results s"
        " JOIN runs r ON r.id = s.run_id JOIN source_files f ON f.id = r.source_file_id"
    )
    found: dict[str, list[str]] = {}
    for sha, accession, version in results:
        assert version == 1, f"{accession}: version {version} (nothing was corrected)"
        found.setdefault(str(sha), []).append(str(accession))
    for sha, export in expected.items():
        assert sorted(found.get(sha, [])) == sorted(export.routes), export.stem
    processed = Counter(
        str(entity)
        for (entity,) in lab.query(
            "SELECT entity_id FROM audit_log WHERE action = 'export-processed'"
        )
    )
    assert {e: n for e, n in processed.items() if n != 1} == {}
    assert set(processed) == {sha[:16] for sha in expected}


def _hashes(folder: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    if folder.exists():
        for path in folder.rglob("*.txt"):
            found.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), []).append(path)
    return found


def test_no_export_is_lost_or_left_in_the_inbox_or_quarantined(outcome: Outcome) -> None:
    lab = outcome.lab
    archived = _hashes(lab.archive)
    missing = [e.stem for e in outcome.exports if e.sha256 not in archived]
    assert missing == [], f"exports not in the archive: {missing[:5]}"
    assert lab.exports_in_inbox() == []
    assert not lab.quarantine.exists() or list(lab.quarantine.iterdir()) == []


def test_no_export_is_taken_for_a_duplicate_after_a_crash(outcome: Outcome) -> None:
    """A kill between the commit and the archive move (``committed``) leaves a processed
    export in the inbox: the restart finishes its move, it is no duplicate drop."""
    lab = outcome.lab
    assert sorted(p.name for p in (lab.archive / "duplicates").glob("*")) == []
    assert lab.query("SELECT entity_id FROM audit_log WHERE action = 'duplicate-dropped'") == []


def test_every_export_has_its_archive_path_recorded(outcome: Outcome) -> None:
    lab = outcome.lab
    problems = []
    for sha, name, path in lab.query("SELECT sha256, name, archive_path FROM source_files"):
        if path is None:
            problems.append(f"{name}: no archive path recorded")
        elif not Path(str(path)).is_file():
            problems.append(f"{name}: the recorded {path} does not exist")
        elif hashlib.sha256(Path(str(path)).read_bytes()).hexdigest() != sha:
            problems.append(f"{name}: {path} holds another file")
    assert problems == []


def test_no_worklist_is_left_in_the_inbox(outcome: Outcome) -> None:
    assert sorted(p.name for p in outcome.lab.inbox.iterdir()) == []


def test_every_released_result_is_delivered_with_one_msh10(outcome: Outcome) -> None:
    lab = outcome.lab
    routes = {a: d for e in outcome.exports for a, d in e.routes.items()}
    rows = lab.query(
        "SELECT o.control_id, o.destination, o.status, o.payload, s.accession, st.state"
        " FROM outbox o JOIN results s ON s.id = o.result_id"
        " JOIN result_states st ON st.result_id = s.id"
    )
    assert Counter(str(r[2]) for r in rows) == Counter({"sent": len(rows)}), "all sent"
    released = {
        str(a)
        for (a,) in lab.query(
            "SELECT s.accession FROM results s JOIN result_states st ON st.result_id = s.id"
            " WHERE st.state = 'released'"
        )
    }
    assert released, "some results were released"
    per_accession = Counter(str(r[4]) for r in rows)
    assert {a: n for a, n in per_accession.items() if n != 1} == {}, "one message per result"
    assert set(per_accession) == released, "a message for every released result, no other"
    assert all(r[1] == routes[str(r[4])] for r in rows), "each to its clinic's destination"
    by_id = {str(r[0]): r for r in rows}

    # The file outbox: one file per message, named by its MSH-10, with its payload.
    files = {p.stem: p for p in lab.outbox.glob("*.hl7")}
    to_file = {cid for cid, r in by_id.items() if r[1] == FILE_DESTINATION}
    assert set(files) == to_file
    for cid in to_file:
        assert files[cid].read_bytes().rstrip(b"\r") == str(by_id[cid][3]).encode().rstrip(b"\r")

    # The MLLP receiver: every message at least once, only ever under its one MSH-10.
    received = outcome.received
    to_mllp = {cid for cid, r in by_id.items() if r[1] == MLLP_DESTINATION}
    assert {m.control_id for m in received} == to_mllp
    msh10s: dict[str, set[str]] = {}
    for message in received:
        msh10s.setdefault(message.accession, set()).add(message.control_id)
        assert message.er7.rstrip("\r") == str(by_id[message.control_id][3]).rstrip("\r")
    assert {a: ids for a, ids in msh10s.items() if len(ids) != 1} == {}
    for accession, ids in msh10s.items():
        assert routes[accession] == MLLP_DESTINATION and ids <= to_mllp


def test_no_result_without_its_source_and_no_source_done_without_results(
    outcome: Outcome,
) -> None:
    lab = outcome.lab
    orphans = lab.query(
        "SELECT s.id FROM results s LEFT JOIN runs r ON r.id = s.run_id"
        " LEFT JOIN source_files f ON f.id = r.source_file_id"
        " WHERE r.id IS NULL OR f.id IS NULL OR f.status != 'done'"
    )
    assert orphans == []
    assert (
        lab.query(
            "SELECT o.id FROM outbox o LEFT JOIN results s ON s.id = o.result_id WHERE s.id IS NULL"
        )
        == []
    )
    assert (
        lab.query(
            "SELECT s.id FROM results s LEFT JOIN result_states st ON st.result_id = s.id"
            " WHERE st.id IS NULL"
        )
        == []
    )
    empty_sources = lab.query(
        "SELECT f.name FROM source_files f WHERE f.status = 'done' AND NOT EXISTS"
        " (SELECT 1 FROM runs r JOIN results s ON s.run_id = r.id"
        "  WHERE r.source_file_id = f.id)"
    )
    assert empty_sources == []
    empty_runs = lab.query(
        "SELECT r.id FROM runs r WHERE NOT EXISTS (SELECT 1 FROM results s WHERE s.run_id = r.id)"
    )
    assert empty_runs == []


def test_the_audit_chain_verifies(outcome: Outcome) -> None:
    verify = outcome.audit_verify
    assert verify.returncode == 0, verify.stdout + verify.stderr


def schema_state(database: Path) -> tuple[set[str], bool]:
    """The tables a reader sees now, and whether Alembic has stamped a revision."""
    if not database.exists():
        return set(), False
    try:
        conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=0.05)
        try:
            tables = {str(r[0]) for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}  # fmt: skip
            stamped = "alembic_version" in tables and bool(
                conn.execute("SELECT version_num FROM alembic_version").fetchall()
            )
        finally:
            conn.close()
    except sqlite3.Error:
        return set(), False  # locked by the migration, or being created
    return tables, stamped


def test_a_kill_during_the_first_migration_leaves_a_database_that_starts(
    tmp_path: Path,
) -> None:
    lab = make_lab(tmp_path / "lab")
    proc, log = lab.start(0)
    seen: set[str] = set()
    deadline = time.monotonic() + START_LIMIT
    try:
        while True:
            try:
                proc.wait(timeout=0.002)
            except subprocess.TimeoutExpired:
                pass
            else:
                pytest.fail(f"the first start exited with {proc.returncode}; see {log}")
            tables, stamped = schema_state(lab.database)
            if (tables - {"alembic_version"} and not stamped) or watching(log):
                seen = tables  # a migration under way (as a reader sees it), or done
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                break
            assert time.monotonic() < deadline, f"the daemon did not start: {log}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    print(f"killed with these tables visible: {sorted(seen)}")
    export = make_exports(1, SAMPLES_PER_PLATE, SEED + 1)[0]
    drop_export(lab.inbox, export)
    run_clean(lab, 1, 1, limit=START_LIMIT)
    assert lab.query("SELECT sha256, status FROM source_files") == [(export.sha256, "done")]

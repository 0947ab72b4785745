"""Leases: one holder at a time, taken over when run out, safe under a race; the store
refuses an export stored twice; delivery leaves a destination to the process sending."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for, write_config

from saa_lab.config import load_config
from saa_lab.delivery import DeliveryStep, DeliveryWorker, deliver_pending
from saa_lab.domain import SourceFile
from saa_lab.pipeline import process_export
from saa_lab.store import Store
from saa_lab.store.leases import Leases, lease_holders
from saa_lab.synth import PlannedSample, gen5_text, plate_values, worklist_csv
from saa_lab.worklist import parse_worklist


@pytest.fixture
def store(database_url: str) -> Store:
    opened = Store(database_url)
    yield opened
    opened.close()


def test_one_holder_at_a_time_until_released(store: Store) -> None:
    a, b = Leases(store, 30, holder="a"), Leases(store, 30, holder="b")
    assert a.hold("file:x.txt") == "new"
    assert b.hold("file:x.txt") is None
    assert a.hold("file:x.txt") == "held"
    assert b.hold("file:y.txt") == "new"  # another name is another lease
    [info] = lease_holders(store, "file:x")
    assert info.holder == "a" and 25 < info.seconds_left <= 30
    a.release("file:x.txt")
    assert b.hold("file:x.txt") == "new"
    assert a.hold("file:x.txt") is None


def test_a_lease_not_renewed_runs_out_and_is_taken_over(store: Store) -> None:
    dead = Leases(store, 0.6, holder="dead")  # takes it, then never renews
    alive = Leases(store, 0.6, holder="alive")
    assert dead.hold("sender:ehr") == "new"
    assert alive.hold("sender:ehr") is None
    assert wait_for(lambda: alive.hold("sender:ehr") == "new", timeout=10)
    # The first holder, back, finds it taken (it must not send any more).
    assert dead.hold("sender:ehr") is None
    assert lease_holders(store, "sender:")[0].holder == "alive"


def test_renewal_keeps_a_lease_past_its_length(store: Store) -> None:
    holder, other = Leases(store, 0.9, holder="h"), Leases(store, 0.9, holder="o")
    assert holder.hold("sender:file") == "new"
    deadline = time.monotonic() + 2.5  # almost three lease lengths
    while time.monotonic() < deadline:
        assert holder.hold("sender:file") == "held"
        assert other.hold("sender:file") is None
        time.sleep(0.1)


def test_release_all_frees_every_lease_of_a_holder(store: Store) -> None:
    a, b = Leases(store, 30, holder="a"), Leases(store, 30, holder="b")
    for name in ("file:1", "file:2", "sender:ehr"):
        assert a.hold(name) == "new"
    assert b.hold("file:3") == "new"
    a.release_all()
    assert [i.name for i in lease_holders(store)] == ["file:3"]


def test_racing_holders_get_a_lease_once(store: Store) -> None:
    """Eight threads, each its own holder and connection, ask for the same leases at
    the same moment, run out or fresh: exactly one gets each."""
    names = [f"file:race-{n}.txt" for n in range(12)]
    for name in names[6:]:  # half of them held by a holder that died
        assert Leases(store, 0.05, holder=f"gone-{name}").hold(name) == "new"
    time.sleep(0.1)
    winners: dict[str, list[str]] = {name: [] for name in names}
    barrier = threading.Barrier(8)
    lock = threading.Lock()

    def contender(number: int) -> None:
        leases = Leases(store, 30, holder=f"t{number}")
        for name in names:
            barrier.wait()
            if leases.hold(name) is not None:
                with lock:
                    winners[name].append(leases.holder)

    threads = [threading.Thread(target=contender, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert {name: len(w) for name, w in winners.items()} == dict.fromkeys(names, 1)


# --- an export stored by two processes at once -------------------------------------------


def _export(folder: Path) -> tuple[SourceFile, object]:
    plan = [PlannedSample(accession=f"RACE-S{i}", activity_u_per_l=150.0 + i) for i in range(4)]
    values, rows = plate_values(plan, seed=11)
    folder.mkdir(parents=True, exist_ok=True)
    export = folder / "race.txt"
    export.write_text(gen5_text(values, barcode="RACE"))
    worklist_path = folder / "race.worklist.csv"
    worklist_path.write_text(worklist_csv(rows))
    worklist = parse_worklist(SourceFile.from_path(worklist_path), zone=UTC)
    return SourceFile.from_path(export), worklist


def test_an_export_stored_meanwhile_by_another_process_is_not_stored_twice(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(write_config(tmp_path / "lab", database_url=database_url))
    source, worklist = _export(tmp_path / "in")
    first, second = Store(config.database_url), Store(config.database_url)
    try:
        stored = process_export(first, config, source, worklist_for=lambda r: worklist)
        assert not stored.duplicate
        # The second process looked before the first one committed: it saw nothing.
        monkeypatch.setattr(second, "source", lambda sha256: None)
        again = process_export(second, config, source, worklist_for=lambda r: worklist)
        assert again.duplicate
        assert [r.id for r in again.runs] == [r.id for r in stored.runs]
        summary = first.status_summary()
        assert summary["files"] == {"done": 1}
        assert sum(summary["runs"].values()) == 1
        assert summary["results"] == 4
    finally:
        first.close()
        second.close()


# --- delivery ---------------------------------------------------------------------------


def _queue(tmp_path: Path, database_url: str, count: int) -> tuple[Any, Store]:
    """A lab whose file outbox has ``count`` released results queued."""
    config = load_config(write_config(tmp_path / "lab", database_url=database_url))
    config.outbox.mkdir(parents=True)
    store = Store(config.database_url)
    _add_messages(tmp_path / "drop", config, store, count, "Q")
    return config, store


def _add_messages(folder: Path, config: Any, store: Store, count: int, name: str) -> None:
    """Process a plate of ``count`` samples (released at once: one message each)."""
    plan = [PlannedSample(accession=f"{name}-S{i:03d}", activity_u_per_l=120.0 + i)
            for i in range(count)]  # fmt: skip
    values, rows = plate_values(plan, seed=len(name) + count)
    folder.mkdir()
    (folder / f"{name}.txt").write_text(gen5_text(values, barcode=name))
    (folder / f"{name}.worklist.csv").write_text(worklist_csv(rows))
    worklist = parse_worklist(SourceFile.from_path(folder / f"{name}.worklist.csv"), zone=UTC)
    process_export(store, config, SourceFile.from_path(folder / f"{name}.txt"),
                   worklist_for=lambda r: worklist)  # fmt: skip


def test_one_shot_delivery_leaves_a_destination_to_the_daemon_sending_to_it(
    tmp_path: Path, database_url: str
) -> None:
    config, store = _queue(tmp_path, database_url, 3)
    try:
        daemon = Leases(store, 30, holder="lab-pc:4242:abc123")
        assert daemon.hold("sender:file") == "new"
        delivered = deliver_pending(store, config)
        assert delivered.get("file", 0) == 0
        assert delivered.left_to == {"file": "lab-pc:4242:abc123"}
        assert store.status_summary()["outbox"] == {"pending": 3}
        daemon.release("sender:file")
        delivered = deliver_pending(store, config)
        assert delivered["file"] == 3 and not delivered.left_to
        assert lease_holders(store) == []  # it gave the lease back
    finally:
        store.close()


def test_two_delivery_workers_send_each_message_once_in_order_and_hand_over(
    tmp_path: Path, database_url: str
) -> None:
    """Two daemons' workers for one destination: the lease holder sends everything in
    queue order, the other stands by; when the holder dies (stops without giving the
    lease back) the other takes over once the lease runs out, and goes on in order."""
    config, store = _queue(tmp_path, database_url, 30)
    destination = config.all_destinations()["file"]
    steps: list[tuple[str, DeliveryStep]] = []
    lock = threading.Lock()

    def recorder(name: str):
        def on_step(step: DeliveryStep) -> None:
            with lock:
                steps.append((name, step))

        return on_step

    workers = {
        name: DeliveryWorker(store, config, destination, idle_seconds=0.1,
                             leases=Leases(store, 1.5, holder=name), on_step=recorder(name))
        for name in ("first", "second")
    }  # fmt: skip
    try:
        workers["first"].start()
        assert wait_for(lambda: store.status_summary()["outbox"] == {"sent": 30})
        workers["second"].start()
        time.sleep(0.5)  # the second looks for work and finds the first holding the lease
        workers["first"].stop(timeout=10)  # dies: its lease is not given back
        assert lease_holders(store, "sender:")[0].holder == "first"
        _add_messages(tmp_path / "drop2", config, store, 10, "Q2")
        assert wait_for(lambda: store.status_summary()["outbox"] == {"sent": 40}, timeout=20)
    finally:
        for worker in workers.values():
            worker.stop(timeout=10)
        store.close()
    sent = [(name, cid) for name, step in steps if step.outcome == "sent"
            for cid in step.control_ids]  # fmt: skip
    assert [name for name, _ in sent] == ["first"] * 30 + ["second"] * 10
    files = sorted((tmp_path / "lab").rglob("*.hl7"))
    assert len(files) == 40 == len({cid for _, cid in sent})
    order = _queue_order(config)
    assert [cid for _, cid in sent] == order


def _queue_order(config: object) -> list[str]:
    from sqlalchemy import create_engine, text

    engine = create_engine(config.database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT control_id FROM outbox ORDER BY id")).all()
    engine.dispose()
    return [str(r[0]) for r in rows]


def test_a_holder_alive_keeps_its_leases_through_a_long_step(store: Store) -> None:
    """The renewer keeps a lease while its holder works longer than the lease (a slow
    file); stopped (its process gone), the lease runs out and another takes it."""
    holder, other = Leases(store, 0.6, holder="slow"), Leases(store, 0.6, holder="other")
    assert holder.hold("file:big.xlsx") == "new"
    holder.start_renewing()
    try:
        time.sleep(2.0)  # more than three lease lengths without a call to hold()
        assert other.hold("file:big.xlsx") is None
        assert holder.hold("file:big.xlsx") == "held"
    finally:
        holder.stop_renewing()
    assert wait_for(lambda: other.hold("file:big.xlsx") == "new", timeout=10)
    holder.renew_all()  # it forgets what it lost
    assert holder.hold("file:big.xlsx") is None


def test_a_holder_gone_from_this_machine_is_taken_over_at_once(
    store: Store, tmp_path: Path
) -> None:
    """A daemon restarted after a crash: its predecessor (same machine, process gone)
    held leases for 30 s; they are taken at once. One on another machine (another
    node) waits for its lease to run out."""
    script = (
        "import sys; from saa_lab.store import Store; from saa_lab.store.leases import Leases\n"
        "leases = Leases(Store(sys.argv[1]), 30)\n"
        "assert leases.hold('sender:ehr') == 'new'\n"
        "print(leases.holder)\n"
    )
    url = str(store.engine.url.render_as_string(hide_password=False))
    here = subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True,
                          check=True, timeout=60)  # fmt: skip
    leases = Leases(store, 30, holder="restarted")
    assert lease_holders(store)[0].holder == here.stdout.strip()
    assert leases.hold("sender:ehr") == "new"  # its process is gone: no 30 s wait

    elsewhere = subprocess.run([sys.executable, "-c", script.replace("sender:ehr", "file:x"),
                                url], capture_output=True, text=True, check=True, timeout=60,
                               env={**os.environ, "SAA_LAB_NODE": "another-host"})  # fmt: skip
    assert elsewhere.returncode == 0
    assert leases.hold("file:x") is None  # maybe alive over there: wait for the lease

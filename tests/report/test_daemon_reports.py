"""The daemon writes each run's report beside its archived export, in the background,
and makes the ones it missed (stopped, crashed) at its next start."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import wait_for, write_config

from saa_lab.config import load_config
from saa_lab.demo import drop_file
from saa_lab.store import Store
from saa_lab.watcher import Daemon

SAMPLES = Path(__file__).resolve().parents[2] / "sample_files"
GEN5 = SAMPLES / "biotek_gen5" / "RUN-G5-001.txt"
GEN5_WL = SAMPLES / "biotek_gen5" / "RUN-G5-001.worklist.csv"
REPORTS_HTML = '\n[reports]\nformats = ["html"]\n'


def _reports(config_archive: Path) -> list[Path]:
    return sorted(config_archive.rglob("*.report.*"))


def test_each_processed_run_gets_its_report_beside_the_archived_export(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path / "lab", REPORTS_HTML))
    store = Store(config.database_url)
    try:
        with Daemon(config, store) as daemon:
            drop_file(GEN5_WL, config.inbox)
            drop_file(GEN5, config.inbox)
            assert wait_for(lambda: len(_reports(config.archive)) == 1, timeout=120)
            assert daemon.reports.failed == 0
        [report] = _reports(config.archive)
        archived = next(config.archive.rglob("RUN-G5-001.txt"))
        assert report.parent == archived.parent
        [run] = store.recent_runs(1)
        assert report.name == f"RUN-G5-001.run{run.id}.report.html"
        html = report.read_text()
        assert f"saa-lab-run-report:run={run.id}:" in html
        assert "RUN-G5-001.txt" in html and "<svg" in html  # the plots are inline SVG
        assert report.stat().st_mode & 0o777 == 0o640

        # Lost (a crash before it was written, someone deleted it): made at the next start.
        report.unlink()
        with Daemon(config, store):
            assert wait_for(lambda: len(_reports(config.archive)) == 1, timeout=120)
    finally:
        store.close()


def test_no_reports_when_none_are_configured(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path / "lab"))  # the tests' default: []
    assert config.reports.formats == ()
    store = Store(config.database_url)
    try:
        with Daemon(config, store):
            drop_file(GEN5_WL, config.inbox)
            drop_file(GEN5, config.inbox)
            assert wait_for(lambda: store.status_summary()["files"] == {"done": 1})
            assert wait_for(lambda: not any(config.inbox.iterdir()))
        assert _reports(config.archive) == []
    finally:
        store.close()


USERS = """
[[users]]
name = "akim"
full_name = "Anna Kim"
roles = ["reviewer", "approver"]
"""


def test_a_report_is_drawn_again_after_the_run_is_released(tmp_path: Path) -> None:
    from saa_lab.review import Target, release

    every_run_waits = '[[autoverification]]\nname = "off"\nenabled = false\n'
    config = load_config(
        write_config(tmp_path / "lab", REPORTS_HTML + USERS, autoverification=every_run_waits)
    )
    store = Store(config.database_url)
    try:
        with Daemon(config, store) as daemon:
            drop_file(GEN5_WL, config.inbox)
            drop_file(GEN5, config.inbox)
            assert wait_for(lambda: len(_reports(config.archive)) == 1, timeout=120)
            assert wait_for(lambda: daemon.reports.idle, timeout=120)
            [report] = _reports(config.archive)
            assert "released by" not in report.read_text()  # waiting for review
            [run] = store.recent_runs(1)
            release(config, store, Target("run", run.id), by="akim", meaning="approved")
            assert daemon.reports.refresh() == 1  # the daemon does this every 30 s
            assert daemon.reports.refresh() == 0  # queued once
            released_by = "released by Anna Kim (akim) (approved)"
            assert wait_for(lambda: released_by in report.read_text(), timeout=120)
    finally:
        store.close()


def test_the_daemon_run_as_a_module_writes_reports(tmp_path: Path) -> None:
    """``python -m saa_lab watch`` (as well as the ``saa-lab`` script): the report process
    is spawned, and a spawned child must not run the CLI again."""
    import signal
    import subprocess
    import sys

    config_path = write_config(tmp_path / "lab", REPORTS_HTML)
    config = load_config(config_path)
    config.inbox.mkdir(parents=True)
    log = tmp_path / "watch.log"
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "saa_lab", "--config", str(config_path), "watch"],
            stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    try:
        assert wait_for(lambda: b"saa-lab watching" in log.read_bytes(), timeout=60)
        drop_file(GEN5_WL, config.inbox)
        drop_file(GEN5, config.inbox)
        assert wait_for(lambda: len(_reports(config.archive)) == 1, timeout=120), log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
    assert b"could not be made" not in log.read_bytes()


def test_a_backlog_queues_a_bounded_number_of_reports_and_catches_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reports are drawn far slower than plates are processed: in a backlog only
    MAX_QUEUED wait in memory; the others are found missing and drawn later."""
    from saa_lab.report import worker

    monkeypatch.setattr(worker, "MAX_QUEUED", 1)
    config = load_config(write_config(tmp_path / "lab", REPORTS_HTML))
    config.inbox.mkdir(parents=True)
    for name in ("B1", "B2", "B3"):
        (config.inbox / f"{name}.txt").write_bytes(
            GEN5.read_bytes().replace(b"RUN-G5-001", name.encode())
        )
        (config.inbox / f"{name}.worklist.csv").write_bytes(GEN5_WL.read_bytes())
    store = Store(config.database_url)
    try:
        with Daemon(config, store) as daemon:
            assert wait_for(lambda: store.status_summary()["files"] == {"done": 3}, timeout=120)
            assert daemon.reports._pending <= 1
            # The daemon's refresh every 30 s, called here: one more each time.
            assert wait_for(
                lambda: daemon.reports.refresh() >= 0 and len(_reports(config.archive)) == 3,
                timeout=180,
            )
    finally:
        store.close()

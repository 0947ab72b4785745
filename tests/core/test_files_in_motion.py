"""Files in motion: slow writers, empty files, renames, new versions, a big backlog, and
archive or quarantine folders that refuse files. The daemon runs on real folders; the
tests wait for outcomes (database state, files), not for time."""

from __future__ import annotations

import errno
import itertools
import logging
import os
import shutil
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import wait_for, write_config

from saa_lab.config import AppConfig, load_config
from saa_lab.demo import drop_file
from saa_lab.store import Store
from saa_lab.watcher import Daemon

SAMPLES = Path(__file__).resolve().parents[2] / "sample_files"
GEN5 = SAMPLES / "biotek_gen5" / "RUN-G5-001.txt"
GEN5_WL = SAMPLES / "biotek_gen5" / "RUN-G5-001.worklist.csv"
MESSAGES = 12  # RUN-G5-001: 14 samples, 2 above the ULOQ wait for re-assay
TIMEOUT = 20.0
BACKLOG = int(os.environ.get("SAA_LAB_BACKLOG_FILES", "10000"))


class Lab:
    def __init__(self, config: AppConfig, store: Store) -> None:
        self.config, self.store = config, store
        self.daemon: Daemon | None = None

    def start(self) -> Daemon:
        self.daemon = Daemon(self.config, self.store)
        self.daemon.start()
        return self.daemon

    def outbox(self) -> list[Path]:
        return sorted(self.config.outbox.glob("*.hl7"))

    def inbox(self) -> list[str]:
        return sorted(p.name for p in self.config.inbox.iterdir())

    def archived(self) -> list[Path]:
        return sorted(p for p in self.config.archive.rglob("*") if p.is_file())

    def quarantined(self) -> list[str]:
        return sorted(p.name for p in self.config.quarantine.iterdir())

    def files(self) -> dict[str, int]:
        return self.store.status_summary()["files"]  # type: ignore[no-any-return]


def _lab(tmp_path: Path, watch: str = "", *, observer: str = "native") -> Iterator[Lab]:
    path = write_config(tmp_path / "lab")
    text = path.read_text().replace("[watch]\n", f'[watch]\nobserver = "{observer}"\n{watch}')
    path.write_text(text)
    config = load_config(path)
    store = Store(config.database_url)
    lab = Lab(config, store)
    try:
        yield lab
    finally:
        if lab.daemon is not None:
            lab.daemon.stop()
        store.close()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from _lab(tmp_path, "empty_file_seconds = 0.6\n")


@pytest.fixture
def share_lab(tmp_path: Path) -> Iterator[Lab]:
    """A lab on the polling observer, as on a network share (no close events)."""
    yield from _lab(tmp_path, observer="polling")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_slow_writer_is_read_only_once_the_file_is_complete(share_lab: Lab) -> None:
    """An export growing for 2 s in small pieces, the file kept open (no close event),
    on the polling observer as on a network share: read once, complete."""
    lab = share_lab
    lab.start()
    drop_file(GEN5_WL, lab.config.inbox)
    data = GEN5.read_bytes()
    pieces = 20
    step = len(data) // pieces + 1
    with (lab.config.inbox / GEN5.name).open("wb") as handle:
        for start in range(0, len(data), step):
            handle.write(data[start : start + step])
            handle.flush()
            time.sleep(0.1)  # the writer's pace: slower than nothing, faster than 0.3 s
    assert wait_for(lambda: len(lab.outbox()) == MESSAGES)
    assert lab.files() == {"done": 1}  # never read half-written, never quarantined
    assert lab.quarantined() == []


def test_a_file_that_stays_empty_is_quarantined_with_a_reason(lab: Lab) -> None:
    lab.start()
    (lab.config.inbox / "RUN-EMPTY.txt").touch()
    assert wait_for(lambda: "RUN-EMPTY.txt" in lab.quarantined())
    sidecar = lab.config.quarantine / "RUN-EMPTY.txt.error.txt"
    assert wait_for(sidecar.exists)
    text = sidecar.read_text()
    assert "empty (0 bytes)" in text
    assert "export the plate again" in text
    assert text.count("\n") == 1


def test_an_empty_file_that_fills_up_in_time_is_processed(lab: Lab) -> None:
    lab.start()
    drop_file(GEN5_WL, lab.config.inbox)
    target = lab.config.inbox / GEN5.name
    target.touch()  # some instruments create the file first and write it later
    time.sleep(0.2)
    target.write_bytes(GEN5.read_bytes())
    assert wait_for(lambda: len(lab.outbox()) == MESSAGES)
    assert lab.quarantined() == []


def test_write_to_a_temporary_name_then_rename(lab: Lab) -> None:
    lab.start()
    drop_file(GEN5_WL, lab.config.inbox)
    temporary = lab.config.inbox / f"{GEN5.name}.tmp"
    with temporary.open("wb") as handle:
        handle.write(GEN5.read_bytes()[:100])
        handle.flush()
        time.sleep(0.5)  # longer than the stability window: ignored all the same
        handle.write(GEN5.read_bytes()[100:])
    temporary.rename(lab.config.inbox / GEN5.name)
    assert wait_for(lambda: len(lab.outbox()) == MESSAGES)
    assert lab.files() == {"done": 1}
    assert lab.quarantined() == []


@pytest.fixture
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)  # the usual umask, which would give 0644
    yield
    os.umask(previous)


@pytest.mark.usefixtures("usual_umask")
def test_archived_quarantined_and_outbox_files_are_mode_0640(lab: Lab) -> None:
    lab.start()
    drop_file(GEN5_WL, lab.config.inbox)
    drop_file(GEN5, lab.config.inbox)
    (lab.config.inbox / "junk.txt").write_text("not a plate\n")
    assert wait_for(lambda: len(lab.outbox()) == MESSAGES and len(lab.quarantined()) == 2)
    assert wait_for(lambda: len(lab.archived()) == 2)
    for path in [*lab.archived(), *lab.outbox(), *lab.config.quarantine.iterdir()]:
        assert _mode(path) == 0o640, path


def _refuse_moves_into(
    monkeypatch: pytest.MonkeyPatch, folder: Path, code: int = errno.ENOSPC
) -> threading.Event:
    """Make every move into ``folder`` fail as a full (or read-only) disk would, until the
    returned event is set. Tests run as root, where a read-only mode does not stop writes."""
    fixed = threading.Event()
    real_link, real_replace = os.link, Path.replace

    def refused(target: object) -> bool:
        return not fixed.is_set() and str(target).startswith(str(folder))

    def link(src: object, dst: object, *args: object, **kwargs: object) -> None:
        if refused(dst):
            raise OSError(code, os.strerror(code), str(dst))
        real_link(src, dst, *args, **kwargs)  # type: ignore[arg-type]

    def replace(self: Path, target: object) -> Path:
        if refused(target):
            raise OSError(code, os.strerror(code), str(target))
        return real_replace(self, target)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(Path, "replace", replace)
    return fixed


def test_a_full_archive_keeps_the_file_in_the_inbox_until_it_has_room(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import saa_lab.watcher as watcher

    monkeypatch.setattr(watcher, "RETRY_AFTER_ERROR_SECONDS", 0.3)
    fixed = _refuse_moves_into(monkeypatch, lab.config.archive)
    daemon = lab.start()
    with caplog.at_level(logging.ERROR, logger="saa_lab"):
        drop_file(GEN5_WL, lab.config.inbox)
        drop_file(GEN5, lab.config.inbox)
        # Processed and delivered (the results are safe in the database) ...
        assert wait_for(lambda: len(lab.outbox()) == MESSAGES)
        assert wait_for(lambda: "move_error" in daemon.counters.extra)
    # ... the export stays in the inbox, the error names the file and the folder.
    assert GEN5.name in lab.inbox()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(
        GEN5.name in m and "No space left on device" in m and "stays in the inbox" in m
        for m in errors
    ), errors
    time.sleep(1.0)  # several retries while the archive is full: still one run
    assert len(lab.store.recent_runs()) == 1
    fixed.set()
    assert wait_for(lambda: GEN5.name not in lab.inbox())
    assert [p.name for p in lab.archived()] == [GEN5.name, GEN5_WL.name]
    assert not (lab.config.archive / "duplicates").exists()  # archived, not a duplicate
    assert len(lab.store.recent_runs()) == 1  # processed exactly once
    (record,) = [lab.store.source(s) for s in _shas(lab)]
    assert record is not None and record.archive_path is not None
    assert Path(record.archive_path).is_file()
    assert wait_for(lambda: "move_error" not in daemon.counters.extra)
    assert len(lab.outbox()) == MESSAGES  # no message doubled


def _shas(lab: Lab) -> list[str]:
    from sqlalchemy import select

    from saa_lab.store.models import SourceFileRow

    with lab.store.session() as s:
        return list(s.scalars(select(SourceFileRow.sha256)))


def test_a_read_only_quarantine_keeps_the_bad_file_in_the_inbox(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import saa_lab.watcher as watcher

    monkeypatch.setattr(watcher, "RETRY_AFTER_ERROR_SECONDS", 0.3)
    fixed = _refuse_moves_into(monkeypatch, lab.config.quarantine, errno.EROFS)
    daemon = lab.start()
    with caplog.at_level(logging.ERROR, logger="saa_lab"):
        (lab.config.inbox / "junk.txt").write_text("not a plate\n")
        assert wait_for(lambda: "move_error" in daemon.counters.extra)
    assert lab.inbox() == ["junk.txt"]
    assert lab.files() == {"failed": 1}  # the reason is recorded all the same
    assert any("junk.txt" in r.getMessage() and "Read-only file system" in r.getMessage()
               for r in caplog.records)  # fmt: skip
    fixed.set()
    assert wait_for(lambda: lab.quarantined() == ["junk.txt", "junk.txt.error.txt"])
    assert lab.inbox() == []


def test_a_crash_between_commit_and_archive_is_finished_not_reprocessed(lab: Lab) -> None:
    """The state a SIGKILL after the commit leaves: results stored, export in the inbox."""
    from saa_lab.domain import SourceFile
    from saa_lab.pipeline import process_export
    from saa_lab.worklist import parse_worklist

    worklist = parse_worklist(SourceFile.from_path(GEN5_WL), zone=lab.config.lab.zone)
    source = SourceFile.from_path(GEN5, timezone=lab.config.lab.zone)
    process_export(lab.store, lab.config, source, worklist_for=lambda _read: worklist)
    lab.config.inbox.mkdir(parents=True)
    shutil.copyfile(GEN5_WL, lab.config.inbox / GEN5_WL.name)
    shutil.copyfile(GEN5, lab.config.inbox / GEN5.name)
    lab.start()
    assert wait_for(lambda: lab.inbox() == [])
    assert sorted(p.name for p in lab.archived()) == [GEN5.name, GEN5_WL.name]
    assert not (lab.config.archive / "duplicates").exists()
    assert len(lab.store.recent_runs()) == 1
    record = lab.store.source(source.sha256)
    assert record is not None and record.archive_path is not None


def test_a_replaced_inbox_folder_is_watched_again(lab: Lab) -> None:
    """A share unmounted and mounted again: the folder is a new one under the same path."""
    daemon = lab.start()
    shutil.rmtree(lab.config.inbox)
    assert wait_for(lambda: "inbox_error" in daemon.counters.extra)
    lab.config.inbox.mkdir()
    assert wait_for(lambda: "inbox_error" not in daemon.counters.extra)
    drop_file(GEN5_WL, lab.config.inbox)
    drop_file(GEN5, lab.config.inbox)
    assert wait_for(lambda: len(lab.outbox()) == MESSAGES)
    assert daemon.counters.extra.get("observer_restarts", 0) >= 1


@pytest.fixture
def backlog_lab(tmp_path: Path) -> Iterator[Lab]:
    yield from _lab(tmp_path)


@pytest.mark.slow
def test_a_backlog_of_ten_thousand_files_at_start(backlog_lab: Lab) -> None:
    """10,000 files waiting when the daemon starts (after a weekend's outage): every one
    is accounted for, and the daemon keeps its heartbeat while it works through them."""
    lab = backlog_lab
    lab.config.inbox.mkdir(parents=True)
    drop_file(GEN5_WL, lab.config.inbox)
    drop_file(GEN5, lab.config.inbox)
    data = GEN5.read_bytes()
    old = time.time() - 3600
    for number in range(BACKLOG - 1):
        # The same plate exported again and again: one run, the rest duplicates.
        path = lab.config.inbox / f"COPY-{number:05d}.txt"
        path.write_bytes(data)
        os.utime(path, (old, old))
    started = time.monotonic()
    daemon = lab.start()
    beats: list[str] = []

    def done() -> bool:
        state = lab.store.status_summary()["service"].get("daemon")
        if state and state.get("heartbeat") not in beats:
            beats.append(state["heartbeat"])
        return daemon.counters.duplicates + daemon.counters.processed >= BACKLOG

    assert wait_for(done, timeout=max(120.0, BACKLOG * 0.03))
    elapsed = time.monotonic() - started
    assert lab.inbox() == []
    assert len(lab.store.recent_runs()) == 1
    duplicates = list((lab.config.archive / "duplicates").iterdir())
    assert len(duplicates) == BACKLOG - 1
    assert wait_for(lambda: len(lab.outbox()) == MESSAGES)
    if elapsed > 25:  # heartbeats every 10 s while the backlog is worked through
        assert len(beats) >= int(elapsed // 10) - 1, (elapsed, beats)
    print(f"\n{BACKLOG} files in {elapsed:.1f} s ({BACKLOG / elapsed:.0f} files/s)")


@pytest.fixture
def small_limit_lab(tmp_path: Path) -> Iterator[Lab]:
    yield from _lab(tmp_path, "max_file_bytes = 4096\n")


def test_a_file_over_the_size_limit_is_quarantined_unread(small_limit_lab: Lab) -> None:
    lab = small_limit_lab
    lab.start()
    (lab.config.inbox / "huge.csv").write_bytes(b"A1,0.1\n" * 1000)  # 7,000 bytes
    assert wait_for(lambda: "huge.csv.error.txt" in lab.quarantined())
    reason = (lab.config.quarantine / "huge.csv.error.txt").read_text()
    assert "7,000 bytes, over the 4,096-byte limit ([watch] max_file_bytes)" in reason
    assert lab.files() == {}  # never read, so never parsed: no source record


def test_an_archived_export_that_cannot_leave_the_inbox_is_retried_calmly(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only inbox (a share mounted read-only): the export is archived but cannot
    be removed; it is tried again after a pause, not in a busy loop, and never twice."""
    import saa_lab.watcher as watcher

    monkeypatch.setattr(watcher, "RETRY_AFTER_ERROR_SECONDS", 0.5)
    fixed = threading.Event()
    attempts: list[float] = []
    real_unlink = Path.unlink
    export = lab.config.inbox / GEN5.name

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self == export and not fixed.is_set():
            attempts.append(time.monotonic())
            raise PermissionError(errno.EROFS, "Read-only file system", str(self))
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    lab.start()
    drop_file(GEN5_WL, lab.config.inbox)
    drop_file(GEN5, lab.config.inbox)
    assert wait_for(lambda: len(attempts) >= 3)
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert min(gaps) >= 0.4, gaps  # paced by the retry pause
    fixed.set()
    assert wait_for(lambda: GEN5.name not in lab.inbox())
    assert [p.name for p in lab.archived()] == [GEN5.name, GEN5_WL.name]
    assert len(lab.store.recent_runs()) == 1

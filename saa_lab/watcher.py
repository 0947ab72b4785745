"""The daemon: watch the inbox, wait until files are complete, run the pipeline.

OS events (inotify, or polling for network shares) are only hints; a periodic
scan of the inbox is the ground truth, so a missed event delays a file by at
most one poll interval and files present at start are processed too. A file is
read only when it is *stable*: closed by its writer (or renamed into the inbox)
and unchanged for ``settle_seconds``, or unchanged for ``stability_seconds``
when no close event arrives (network shares). No input file is ever deleted:
processed exports go to ``archive/``, duplicates to ``archive/duplicates/``,
bad inputs to ``quarantine/`` with a one-line ``.error.txt`` sidecar.

Results leave through one :class:`~saa_lab.delivery.DeliveryWorker` thread per
destination (``[[destinations]]`` plus the outbox folder), woken after every
processed export; the routes are checked at start-up.
"""

from __future__ import annotations

import errno
import fnmatch
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from watchdog.events import (
    DirMovedEvent,
    FileClosedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

from .config import AppConfig, Destination
from .delivery import DeliveryWorker
from .domain import PlateRead, SourceFile
from .errors import ConfigError, InputFileError, StoreError
from .pipeline import configured_instrument, process_export
from .store import Store
from .worklist import WORKLIST_SUFFIX, Worklist, parse_worklist

__all__ = ["Daemon", "ExportHandler", "move_aside"]

log = logging.getLogger(__name__)
RETRY_AFTER_ERROR_SECONDS = 30.0
MTIME_TOLERANCE_SECONDS = 1.0


class _StopRaceFilter(logging.Filter):
    """watchdog's inotify emitter logs an ERROR when it is stopped mid-read, a
    harmless race at shutdown that would alarm administrators; drop just that."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "called when the thread is inactive" not in record.getMessage()


logging.getLogger("watchdog.observers.inotify").addFilter(_StopRaceFilter())


class ExportHandler(FileSystemEventHandler):
    """Turns file-system events into hints for the worker; does nothing else."""

    def __init__(self, notify: Callable[[Path, bool], None]) -> None:
        super().__init__()
        self._notify = notify

    def dispatch(self, event: FileSystemEvent) -> None:
        if event.is_directory and not isinstance(event, DirMovedEvent):
            return
        if isinstance(event, FileMovedEvent):
            # Renamed into the inbox: the writer finished (write-temp-then-rename).
            self._notify(Path(os.fsdecode(event.dest_path)), True)
        elif isinstance(event, FileClosedEvent):
            self._notify(Path(os.fsdecode(event.src_path)), True)
        elif event.event_type in ("created", "modified"):
            self._notify(Path(os.fsdecode(event.src_path)), False)


@dataclass
class _Tracked:
    size: int
    mtime_ns: int
    changed_at: float
    complete_hint: bool = False
    retry_at: float = 0.0
    waiting_since: float | None = None


@dataclass
class _Counters:
    processed: int = 0
    duplicates: int = 0
    quarantined: int = 0
    errors: int = 0
    last_scan: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _unique_target(folder: Path, name: str) -> Path:
    target = folder / name
    counter = 1
    while target.exists():
        stem, dot, suffix = name.partition(".")
        target = folder / f"{stem}.{counter}{dot}{suffix}"
        counter += 1
    return target


def move_aside(path: Path, folder: Path) -> Path:
    """Move a file into ``folder`` without overwriting anything there.

    A hard link then an unlink, not a rename: the link refuses an existing target
    atomically, and a rename out of the watched inbox is an unpaired inotify
    IN_MOVED_FROM that watchdog holds back for 0.5 s, delaying every later event
    (the next export's). Across file systems (or where links are not supported)
    it falls back to a rename. A crash between link and unlink leaves the file in
    both places; the inbox copy is then recognised as a duplicate, never lost.
    """
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        target = _unique_target(folder, path.name)
        try:
            os.link(path, target)
        except FileExistsError:
            continue  # taken since we looked: try the next name
        except OSError:
            try:
                path.replace(target)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                _copy_then_unlink(path, target)  # another file system (e.g. a mounted share)
            return target
        path.unlink()
        return target


def _copy_then_unlink(path: Path, target: Path) -> None:
    """Move across file systems without a window where the file exists nowhere."""
    temp = target.with_name(f".{target.name}.part")
    shutil.copy2(path, temp)
    with temp.open("rb") as handle:
        os.fsync(handle.fileno())
    temp.replace(target)
    path.unlink()


class Daemon:
    """Watches ``config.inbox`` and processes what arrives. Use as a context manager."""

    def __init__(self, config: AppConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.inbox = config.inbox
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._hints: dict[Path, bool] = {}
        self._tracked: dict[Path, _Tracked] = {}
        self._unreadable: set[Path] = set()
        self._observer: Any = None
        self._worker: threading.Thread | None = None
        self._delivery: dict[str, DeliveryWorker] = {}
        self._next_scan = 0.0
        self._last_heartbeat = 0.0
        self.counters = _Counters()
        self.idle = threading.Event()

    # -- lifecycle ------------------------------------------------------------

    def __enter__(self) -> Daemon:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        # An undeliverable route (unknown destination, unwritable folder, missing TLS
        # file) is a start-up error, not a surprise when the first result needs it.
        self.config.check_routes()
        for folder in (self.inbox, self.config.archive, self.config.quarantine, self.config.outbox):
            folder.mkdir(parents=True, exist_ok=True)
        try:
            for destination in self.config.all_destinations().values():
                self._start_delivery(destination)
            self._start_observer()
        except BaseException:
            self._stop_delivery(5.0)
            raise
        self._worker = threading.Thread(target=self._run, name="saa-lab-worker", daemon=True)
        self._worker.start()
        log.info("watching %s (%s observer)", self.inbox, self.config.watch.observer)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
        if self._worker is not None:
            self._worker.join(timeout)
        self._stop_delivery(timeout)
        log.info("stopped")

    def _stop_delivery(self, timeout: float) -> None:
        for worker in self._delivery.values():
            worker.stop()
        for worker in self._delivery.values():
            if worker.is_alive():
                worker.join(timeout)

    def should_keep_running(self) -> bool:
        return not self._stop.is_set()

    def wait(self) -> None:
        """Block until stopped (by ``stop()`` from a signal handler or another thread)."""
        while not self._stop.wait(0.5):
            pass

    def _start_observer(self) -> None:
        if self.config.watch.observer == "polling":
            from watchdog.observers.polling import PollingObserver

            observer: Any = PollingObserver(timeout=self.config.watch.poll_interval_seconds)
        else:
            from watchdog.observers import Observer

            observer = Observer()
        observer.schedule(ExportHandler(self.notify), str(self.inbox), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer
        self._observer_started = datetime.now(UTC)

    def _start_delivery(self, destination: Destination) -> None:
        worker = DeliveryWorker(self.store, self.config, destination)
        self._delivery[destination.name] = worker
        worker.start()

    def _supervise_delivery(self) -> None:
        """A delivery thread that died (it catches every Exception) is replaced."""
        for name, worker in list(self._delivery.items()):
            if not worker.is_alive() and not self._stop.is_set():
                log.error("the delivery thread for %s stopped unexpectedly; restarting it", name)
                self.counters.extra["delivery_restarts"] = (
                    int(self.counters.extra.get("delivery_restarts", 0)) + 1
                )
                self._start_delivery(worker.destination)

    def notify_delivery(self) -> None:
        """New messages are queued: wake every delivery worker."""
        for worker in self._delivery.values():
            worker.notify()

    def _supervise_observer(self) -> None:
        """A dead observer thread (watchdog #427/#663) is replaced, and said so."""
        if self._observer is not None and not self._observer.is_alive() and not self._stop.is_set():
            log.error("the file-system observer stopped unexpectedly; restarting it")
            self.counters.extra["observer_restarts"] = (
                int(self.counters.extra.get("observer_restarts", 0)) + 1
            )
            self._start_observer()
            self._next_scan = 0.0

    # -- events ---------------------------------------------------------------

    def notify(self, path: Path, complete: bool) -> None:
        """Called from the observer thread: remember the hint and wake the worker."""
        with self._lock:
            self._hints[path] = self._hints.get(path, False) or complete
        self._wake.set()

    def _ignored(self, path: Path) -> bool:
        if path.parent.resolve() != self.inbox.resolve():
            return True
        return any(fnmatch.fnmatch(path.name, p) for p in self.config.watch.ignore_patterns)

    # -- the worker -----------------------------------------------------------

    def _warm_up(self) -> None:
        """Import the pipeline's heavy modules now, so the first file is not slower."""
        from . import calibrate, pipeline  # noqa: F401
        from .assay import load_assay
        from .layout import load_layout
        from .parsers import PARSERS  # noqa: F401

        try:
            load_assay(self.config.run.assay, self.config.search_dirs("assays"))
            load_layout(self.config.run.layout, self.config.search_dirs("layouts"))
        except ConfigError as exc:
            log.error("configuration problem (files will wait in the inbox): %s", exc)

    def _run(self) -> None:
        self._warm_up()
        while not self._stop.is_set():
            try:
                delay = self._cycle()
            except StoreError as exc:
                log.error("database unavailable, retrying in %.0f s: %s", 5.0, exc)
                delay = 5.0
            except Exception:
                # A bug or an unexpected OS error must not stop the daemon silently:
                # log it with its traceback, count it, and carry on after a pause.
                log.exception("unexpected error in the inbox worker; continuing in 5 s")
                self.counters.errors += 1
                delay = 5.0
            if delay > 0:
                self.idle.set() if not self._tracked else self.idle.clear()
                self._wake.wait(delay)
            self._wake.clear()

    def _cycle(self) -> float:
        now = time.monotonic()
        self._supervise_observer()
        self._supervise_delivery()
        if now >= self._next_scan:
            self._scan()
            self._next_scan = now + self.config.watch.poll_interval_seconds
        self._heartbeat(now)
        with self._lock:
            hints, self._hints = self._hints, {}
        for path, complete in hints.items():
            if not self._ignored(path):
                self._observe(path, complete, now)
        ready = self._ready(now)
        for path in ready:
            if self._stop.is_set():
                break
            self._handle(path)
        if ready:
            return 0.0
        return self._next_due(time.monotonic())

    def _scan(self) -> None:
        now = time.monotonic()
        try:
            entries = list(os.scandir(self.inbox))
        except OSError as exc:
            log.error("cannot list the inbox %s: %s", self.inbox, exc)
            return
        self.counters.last_scan = datetime.now(UTC).isoformat()
        present = set()
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                path = Path(entry.path)
                present.add(path)
                if path not in self._tracked and not self._ignored(path):
                    self._observe(path, False, now)
        for gone in set(self._tracked) - present:
            del self._tracked[gone]

    def _observe(self, path: Path, complete: bool, now: float) -> None:
        try:
            stat = path.stat()
        except FileNotFoundError:
            self._tracked.pop(path, None)
            return
        except OSError as exc:
            # A symlink loop, a stale NFS handle, an I/O error: not a file we can read
            # now. Forget it (the next scan looks again) rather than stop the worker.
            if self._tracked.pop(path, None) is not None or path not in self._unreadable:
                log.warning("cannot stat %s (%s); it is skipped until readable", path.name, exc)
                self._unreadable.add(path)
            return
        self._unreadable.discard(path)
        tracked = self._tracked.get(path)
        if tracked is None:
            # A file last written long ago (e.g. while the daemon was down) need not
            # wait out the stability window again; 1 s of tolerance for mtime skew.
            age = time.time() - stat.st_mtime_ns / 1e9 - MTIME_TOLERANCE_SECONDS
            changed_at = now - age if age >= self.config.watch.stability_seconds else now
            self._tracked[path] = _Tracked(stat.st_size, stat.st_mtime_ns, changed_at, complete)
            return
        if (stat.st_size, stat.st_mtime_ns) != (tracked.size, tracked.mtime_ns):
            tracked.size, tracked.mtime_ns, tracked.changed_at = stat.st_size, stat.st_mtime_ns, now
            tracked.complete_hint = complete
        elif complete:
            tracked.complete_hint = True

    def _stable_after(self, tracked: _Tracked) -> float:
        watch = self.config.watch
        quiet = watch.settle_seconds if tracked.complete_hint else watch.stability_seconds
        return tracked.changed_at + quiet

    def _ready(self, now: float) -> list[Path]:
        ready = []
        for path in list(self._tracked):
            self._observe(path, False, now)
            tracked_now = self._tracked.get(path)
            if tracked_now is None or path.name.endswith(WORKLIST_SUFFIX):
                continue
            if tracked_now.size == 0:
                continue  # an empty file is still being created; it is judged when it grows
            if now >= max(self._stable_after(tracked_now), tracked_now.retry_at):
                ready.append(path)
        return sorted(ready, key=lambda p: (self._tracked[p].changed_at, p.name))

    def _next_due(self, now: float) -> float:
        due = [self._next_scan]
        for path, tracked in self._tracked.items():
            if path.name.endswith(WORKLIST_SUFFIX) or tracked.size == 0:
                continue
            due.append(max(self._stable_after(tracked), tracked.retry_at))
        return max(0.0, min(due) - now)

    def _heartbeat(self, now: float) -> None:
        if now - self._last_heartbeat < 10.0:
            return
        self._last_heartbeat = now
        self.store.set_state(
            "daemon",
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "inbox": str(self.inbox),
                "observer": self.config.watch.observer,
                "observer_alive": bool(self._observer and self._observer.is_alive()),
                "last_scan": self.counters.last_scan,
                "heartbeat": datetime.now(UTC).isoformat(),
                "processed": self.counters.processed,
                "quarantined": self.counters.quarantined,
                "duplicates": self.counters.duplicates,
                **self.counters.extra,
            },
        )

    # -- one file -------------------------------------------------------------

    def _unchanged(self, path: Path, source_size: int) -> bool:
        try:
            return path.stat().st_size == source_size
        except FileNotFoundError:
            return False

    def _handle(self, path: Path) -> None:
        tracked = self._tracked[path]
        try:
            source = SourceFile.from_path(path, timezone=self.config.lab.zone)
        except FileNotFoundError:
            del self._tracked[path]
            return
        except OSError as exc:
            log.warning("cannot read %s yet (%s); will retry", path.name, exc)
            tracked.retry_at = time.monotonic() + self.config.watch.stability_seconds
            return
        if len(source.contents) != tracked.size:
            self._observe(path, False, time.monotonic())  # still growing
            return
        try:
            self._process(path, source, tracked)
        except (StoreError, ConfigError) as exc:
            # Not the file's fault: keep it in the inbox and try again later.
            log.error("%s: %s; the file stays in the inbox and is retried", path.name, exc)
            self.counters.errors += 1
            tracked.retry_at = time.monotonic() + RETRY_AFTER_ERROR_SECONDS
        except Exception:
            # A bug must not stop the daemon nor lose the file: it stays in the inbox.
            log.exception("unexpected error on %s; the file stays in the inbox", path.name)
            self.counters.errors += 1
            tracked.retry_at = time.monotonic() + RETRY_AFTER_ERROR_SECONDS

    def _process(self, path: Path, source: SourceFile, tracked: _Tracked) -> None:
        known = self.store.source(source.sha256)
        if known is not None and known.status == "done":
            target = self._move(path, self.config.archive / "duplicates")
            log.warning(
                "%s is a duplicate of %s (processed %s); not reprocessed, moved to %s",
                path.name,
                known.name,
                known.processed_at.isoformat() if known.processed_at else "?",
                target,
            )
            self.store.audit("daemon", "duplicate-dropped", "source_file", source.sha256[:16],
                             name=path.name, moved_to=str(target))  # fmt: skip
            self.counters.duplicates += 1
            return
        from .parsers import parse

        try:
            reads = parse(source, instrument=configured_instrument(self.config))
        except InputFileError as exc:
            if self._unchanged(path, len(source.contents)):
                self._quarantine(path, source, exc)
            return
        worklists = self._worklists_for(path, reads)
        missing = [r for r, w in worklists.items() if w is None]
        if missing:
            self._wait_for_worklist(path, source, tracked, reads[0].format)
            return
        loaded: dict[Path, Worklist] = {}
        try:
            for wl_path in {p for p in worklists.values() if p is not None}:
                loaded[wl_path] = parse_worklist(
                    SourceFile.from_path(wl_path), zone=self.config.lab.zone
                )
        except InputFileError as exc:
            bad = Path(exc.path) if exc.path else None
            if bad is not None and bad.exists():
                self._quarantine(bad, SourceFile.from_path(bad), exc)
            self._wait_for_worklist(path, source, tracked, reads[0].format)
            return

        def worklist_for(read: PlateRead) -> Worklist | None:
            wl_path = worklists.get(read.plate_index)
            return loaded.get(wl_path) if wl_path else None

        try:
            outcome = process_export(self.store, self.config, source, reads=reads,
                                     worklist_for=worklist_for)  # fmt: skip
        except InputFileError as exc:
            culprit = Path(exc.path) if exc.path else path
            if culprit != path and culprit.exists():
                # The worklist is wrong (e.g. an accession in a standard well): the
                # export waits for a corrected worklist.
                self._quarantine(culprit, SourceFile.from_path(culprit), exc)
                self._wait_for_worklist(path, source, tracked, reads[0].format)
            elif self._unchanged(path, len(source.contents)):
                self._quarantine(path, source, exc)
            return
        archive = self.config.archive / datetime.now(self.config.lab.zone).strftime("%Y-%m-%d")
        target = self._move(path, archive)
        self.store.set_archive_path(source.sha256, str(target))
        for wl_path in loaded:
            if wl_path.exists():
                self._move(wl_path, archive)
        self.counters.processed += 1
        accepted = sum(1 for r in outcome.runs if r.status == "accepted")
        log.info("%s processed: %d run(s), %d accepted; archived as %s",
                 path.name, len(outcome.runs), accepted, target)  # fmt: skip
        self.notify_delivery()

    def _move(self, path: Path, folder: Path) -> Path:
        target = move_aside(path, folder)
        self._tracked.pop(path, None)
        return target

    def _worklists_for(self, path: Path, reads: list[PlateRead]) -> dict[int, Path | None]:
        """Pair each plate with ``<plate id>.worklist.csv``, or a single-plate export with
        ``<file stem>.worklist.csv``. A worklist still being written counts as absent.

        A stem worklist is never given to several plates: each plate's samples would
        otherwise be reported under the first plate's accessions.
        """
        plates = {r.plate_index for r in reads}
        result: dict[int, Path | None] = {}
        now = time.monotonic()
        for read in reads:
            names = []
            if read.plate_id:
                names.append(f"{read.plate_id}{WORKLIST_SUFFIX}")
            if len(plates) == 1:
                names.append(f"{path.stem}{WORKLIST_SUFFIX}")
            found = next((self.inbox / n for n in names if (self.inbox / n).is_file()), None)
            if found is not None and not self._worklist_stable(found, now):
                found = None  # still being written: wait for it like a missing one
            result[read.plate_index] = found
        return result

    def _worklist_stable(self, path: Path, now: float) -> bool:
        """A worklist is read only once complete, like an export (close/rename or quiet)."""
        if path not in self._tracked:
            self._observe(path, False, now)
        tracked = self._tracked.get(path)
        return tracked is not None and tracked.size > 0 and now >= self._stable_after(tracked)

    def _wait_for_worklist(
        self, path: Path, source: SourceFile, tracked: _Tracked, fmt: str
    ) -> None:
        now = time.monotonic()
        if tracked.waiting_since is None:
            tracked.waiting_since = now
        waited = now - tracked.waiting_since
        limit = self.config.watch.worklist_wait_seconds
        expected = f"{path.stem}{WORKLIST_SUFFIX}"
        if waited >= limit:
            error = InputFileError(
                f"no worklist arrived within {limit:g} s (expected {expected} or "
                f"<plate id>{WORKLIST_SUFFIX} in the inbox); drop the worklist, then this "
                f"file again",
                path=path.name,
            )
            self._quarantine(path, source, error)
            return
        reason = f"waiting for worklist {expected} (up to {limit:g} s)"
        self.store.mark_source(source, "waiting", error=reason, fmt=fmt)
        log.info("%s: %s", path.name, reason)
        tracked.retry_at = now + min(self.config.watch.poll_interval_seconds, limit - waited)

    def _quarantine(self, path: Path, source: SourceFile, error: InputFileError) -> None:
        line = " ".join(str(error).split())
        # Record first: a crash after the move still leaves the reason in the database.
        if not path.name.endswith(WORKLIST_SUFFIX):
            self.store.mark_source(source, "failed", error=line)
        else:
            self.store.audit("daemon", "worklist-quarantined", "worklist", source.sha256[:16],
                             name=path.name, error=line)  # fmt: skip
        try:
            target = self._move(path, self.config.quarantine)
            sidecar = target.with_name(target.name + ".error.txt")
            temp = sidecar.with_name(f".{sidecar.name}.tmp")
            temp.write_text(line + "\n", encoding="utf-8")
            temp.replace(sidecar)
        except OSError as exc:
            # A full or read-only quarantine: the file stays in the inbox and is retried.
            log.error("cannot quarantine %s (%s); it stays in the inbox: %s", path.name, exc, line)
            tracked = self._tracked.get(path)
            if tracked is not None:
                tracked.retry_at = time.monotonic() + RETRY_AFTER_ERROR_SECONDS
            return
        self.counters.quarantined += 1
        log.error("quarantined %s: %s", path.name, line)

    # -- for the demo, tests and benchmarks -----------------------------------

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

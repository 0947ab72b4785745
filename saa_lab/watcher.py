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

import contextlib
import errno
import fnmatch
import hashlib
import logging
import os
import shutil
import socket
import stat
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
from .faults import crash_point
from .logs import error_location
from .pipeline import configured_instrument, process_export
from .report.worker import ReportWorker
from .store import Store
from .store.leases import Leases
from .worklist import WORKLIST_SUFFIX, Worklist, parse_worklist, worklist_names

__all__ = ["Daemon", "ExportHandler", "move_aside"]

log = logging.getLogger(__name__)
RETRY_AFTER_ERROR_SECONDS = 30.0
MTIME_TOLERANCE_SECONDS = 1.0
# rw-r-----: archived and quarantined exports carry patient data (worklists).
FILE_MODE = 0o640
# Work on ready files for at most this long before the next scan, heartbeat and
# supervision: a backlog of thousands of files must not silence the daemon.
CYCLE_BUDGET_SECONDS = 2.0
# A file another daemon has claimed (a shared inbox) is looked at again after this.
CLAIMED_RETRY_SECONDS = 1.0
DATABASE_RETRY_SECONDS = 5.0
INSTANCE_ENV = "SAA_LAB_INSTANCE"
REPORT_CHECK_SECONDS = 30.0


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


def _unique_target(folder: Path, name: str, source: Path | None = None) -> Path:
    """The first free name for ``name`` in ``folder`` (``RUN.1.txt``, ``RUN.2.txt``, ...),
    or the name already holding ``source`` itself (a link made before a crash)."""
    target = folder / name
    counter = 1
    while target.exists():
        if source is not None and _same_file(source, target):
            return target
        stem, dot, suffix = name.partition(".")
        target = folder / f"{stem}.{counter}{dot}{suffix}"
        counter += 1
    return target


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


# A hard link is impossible here (another file system, a share without links): copy.
_NO_LINKS = {errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK}


def place_copy(path: Path, folder: Path) -> Path:
    """Put ``path`` into ``folder`` too (a hard link, or a copy across file systems),
    leaving it where it is; a link made before a crash is found and reused."""
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        target = _unique_target(folder, path.name, path)
        if target.exists():
            return target  # linked before a crash
        try:
            os.link(path, target, follow_symlinks=False)
        except FileExistsError:
            continue  # taken since we looked: try the next name
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise  # full, read-only, gone: the caller says so and retries
            temp = target.with_name(f".{target.name}.part")
            try:
                shutil.copy2(path, temp)
                _restrict(temp)
                with temp.open("rb") as handle:
                    os.fsync(handle.fileno())
                temp.replace(target)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
        _restrict(target)
        return target


def move_aside(path: Path, folder: Path) -> Path:
    """Move a file into ``folder`` without overwriting anything there.

    A hard link then an unlink, not a rename: the link refuses an existing target
    atomically, and a rename out of the watched inbox is an unpaired inotify
    IN_MOVED_FROM that watchdog holds back for 0.5 s, delaying every later event
    (the next export's). Across file systems (or where links are not supported)
    it falls back to a rename. A crash between link and unlink leaves the file in
    both places; the next move of it finds the link and only unlinks.
    """
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        target = _unique_target(folder, path.name, path)
        if target.exists():  # linked before a crash: finish the move
            path.unlink()
            return target
        try:
            os.link(path, target, follow_symlinks=False)
        except FileExistsError:
            continue  # taken since we looked: try the next name
        except OSError:
            try:
                path.replace(target)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                _copy_then_unlink(path, target)  # another file system (e.g. a mounted share)
            _restrict(target)
            return target
        _restrict(target)
        path.unlink()
        return target


def _restrict(path: Path) -> None:
    """Give a file we keep FILE_MODE; a share that refuses modes keeps its own."""
    try:
        path.chmod(FILE_MODE)
    except OSError as exc:
        log.debug("cannot set the mode of %s: %s", path, exc)


def _sidecar_for(target: Path) -> Path:
    """``<name>.error.txt`` beside a quarantined file, shortened (with a hash, so it stays
    unique) where the name would pass the 255-byte limit of most file systems."""
    import hashlib

    name = f"{target.name}.error.txt"
    if len(name.encode()) <= 240:  # room for the temporary ".<name>.tmp"
        return target.with_name(name)
    digest = hashlib.sha256(target.name.encode()).hexdigest()[:12]
    stem = target.name.encode()[:200].decode("utf-8", "ignore")
    return target.with_name(f"{stem}~{digest}.error.txt")


def _read_regular(path: Path) -> bytes:
    """The bytes of ``path``, refusing a symbolic link (OSError ELOOP): a link in the inbox
    must never make the daemon read, and report, a file outside it."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _regular(path: Path) -> bool:
    """A regular file itself, not a link to one."""
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _holds(path: Path, sha256: str) -> bool:
    """Whether ``path`` is a file whose content has this SHA-256."""
    import hashlib

    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == sha256
    except OSError:
        return False


def _identity(folder: Path) -> tuple[int, int]:
    """The folder's device and inode: they change when it is removed and created again."""
    info = folder.stat()
    return info.st_dev, info.st_ino


def _copy_then_unlink(path: Path, target: Path) -> None:
    """Move across file systems without a window where the file exists nowhere."""
    temp = target.with_name(f".{target.name}.part")
    shutil.copy2(path, temp)
    _restrict(temp)
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
        self._observer_inbox: tuple[int, int] | None = None
        self._held_up: set[str] = set()  # what a database outage held up (logged once each)
        self._worker: threading.Thread | None = None
        self._delivery: dict[str, DeliveryWorker] = {}
        self._next_scan = 0.0
        self._last_heartbeat = 0.0
        self._last_report_check = time.monotonic()  # start() looks once already
        self.counters = _Counters()
        self.idle = threading.Event()
        # Files and destinations are claimed through the database, so several daemons
        # on one database (a shared inbox) never do the same work at once.
        self.leases = Leases(store, config.cluster.lease_seconds)
        self.reports = ReportWorker(config, store)
        # This daemon's heartbeat row: one per host, inbox and instance (several
        # daemons on one host and inbox set SAA_LAB_INSTANCE, e.g. systemd's %i).
        self.instance = os.environ.get(INSTANCE_ENV, "")
        where = f"{socket.gethostname()}\0{self.inbox.resolve()}\0{self.instance}".encode()
        self.state_key = "daemon:" + hashlib.sha256(where).hexdigest()[:16]

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
        self.leases.start_renewing()
        try:
            for destination in self.config.all_destinations().values():
                self._start_delivery(destination)
            self._start_observer()
            self.reports.start()
        except BaseException:
            self._stop_delivery(5.0)
            self.leases.stop_renewing()
            self.reports.stop()
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
        self.reports.stop()
        self.leases.stop_renewing()
        if self._worker is not None:
            try:  # say so, so monitoring does not wait a minute to learn it
                self.store.set_state(self.state_key, {**self._state(), "stopped": _now()})
                self.leases.release_all()  # no other daemon need wait for them to run out
            except StoreError as exc:
                log.warning("could not record the stop in the database: %s", exc)
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
        identity = _identity(self.inbox)
        observer.schedule(ExportHandler(self.notify), str(self.inbox), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer
        self._observer_inbox = identity
        self._observer_started = datetime.now(UTC)

    def _start_delivery(self, destination: Destination) -> None:
        worker = DeliveryWorker(self.store, self.config, destination, leases=self.leases)
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
        if self._stop.is_set():
            return
        if self._observer is None or not self._observer.is_alive():
            if self._observer is not None:
                log.error("the file-system observer stopped unexpectedly; restarting it")
            self._restart_observer()

    def _restart_observer(self) -> None:
        """Replace the observer; while the inbox cannot be watched, scans carry on alone."""
        if self._observer is not None:
            self._observer.stop()
            self._observer = None
        try:
            self._start_observer()
        except OSError as exc:
            reason = f"cannot watch the inbox {self.inbox}: {exc.strerror or exc}"
            if self.counters.extra.get("observer_error") != reason:
                log.error("%s; scanning it every %g s until it can be watched", reason,
                          self.config.watch.poll_interval_seconds)  # fmt: skip
            self.counters.extra["observer_error"] = reason
            return
        if self.counters.extra.pop("observer_error", None) is not None:
            log.warning("watching the inbox %s again", self.inbox)
        self.counters.extra["observer_restarts"] = (
            int(self.counters.extra.get("observer_restarts", 0)) + 1
        )
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
                self._database_down(exc, f"retrying every {DATABASE_RETRY_SECONDS:g} s")
                delay = DATABASE_RETRY_SECONDS
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
        if now - self._last_report_check >= REPORT_CHECK_SECONDS:
            # Reports a review decision made out of date (released, rejected since).
            self._last_report_check = now
            self.reports.refresh()
        if self._last_heartbeat == now:
            self._database_up()  # the heartbeat was written: the database answers
        with self._lock:
            hints, self._hints = self._hints, {}
        for path, complete in hints.items():
            if not self._ignored(path):
                self._observe(path, complete, now)
        ready = self._ready(now)
        budget_end = time.monotonic() + CYCLE_BUDGET_SECONDS
        for path in ready:
            if self._stop.is_set() or time.monotonic() > budget_end:
                break  # the rest of a backlog after a scan, heartbeat and supervision
            self._handle(path)
        if ready:
            return 0.0
        return self._next_due(time.monotonic())

    def _scan(self) -> None:
        now = time.monotonic()
        try:
            identity = _identity(self.inbox)
            entries = list(os.scandir(self.inbox))
        except OSError as exc:
            # A share that went away, a folder removed: say so once, keep trying.
            reason = f"cannot list the inbox {self.inbox}: {exc.strerror or exc}"
            if self.counters.extra.get("inbox_error") != reason:
                log.error(
                    "%s; retrying every %g s", reason, self.config.watch.poll_interval_seconds
                )
            self.counters.extra["inbox_error"] = reason
            return
        if self.counters.extra.pop("inbox_error", None) is not None:
            # Gone and back (its inode may even be reused): watch it afresh.
            log.warning("the inbox %s can be listed again; restarting the observer", self.inbox)
            self._observer_inbox = identity
            self._restart_observer()
        elif self._observer_inbox is not None and identity != self._observer_inbox:
            # Removed and created again (a remounted share): the observer watches the
            # old folder and would stay silent; watch the new one.
            log.warning("the inbox %s was replaced; restarting the observer", self.inbox)
            self._observer_inbox = identity
            self._restart_observer()
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
            info = path.lstat()
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
        if not stat.S_ISREG(info.st_mode):
            # A symbolic link (or a device, a pipe): never read through it, whatever it
            # points at. It stays where it is; the technician copies the file itself in.
            if self._tracked.pop(path, None) is not None or path not in self._unreadable:
                log.warning("%s is not a regular file (a link?): not read; copy the export "
                            "itself into the inbox", path.name)  # fmt: skip
                self._unreadable.add(path)
            return
        self._unreadable.discard(path)
        tracked = self._tracked.get(path)
        if tracked is None:
            # A file last written long ago (e.g. while the daemon was down) need not
            # wait out the stability window again; 1 s of tolerance for mtime skew.
            age = time.time() - info.st_mtime_ns / 1e9 - MTIME_TOLERANCE_SECONDS
            changed_at = now - age if age >= self.config.watch.stability_seconds else now
            self._tracked[path] = _Tracked(info.st_size, info.st_mtime_ns, changed_at, complete)
            return
        if (info.st_size, info.st_mtime_ns) != (tracked.size, tracked.mtime_ns):
            tracked.size, tracked.mtime_ns, tracked.changed_at = info.st_size, info.st_mtime_ns, now
            tracked.complete_hint = complete
        elif complete:
            tracked.complete_hint = True

    def _stable_after(self, tracked: _Tracked) -> float:
        watch = self.config.watch
        quiet = watch.settle_seconds if tracked.complete_hint else watch.stability_seconds
        return tracked.changed_at + quiet

    def _empty_after(self, tracked: _Tracked) -> float:
        return tracked.changed_at + self.config.watch.empty_file_seconds

    def _ready(self, now: float) -> list[Path]:
        ready = []
        for path in list(self._tracked):
            self._observe(path, False, now)
            tracked_now = self._tracked.get(path)
            if tracked_now is None or path.name.endswith(WORKLIST_SUFFIX):
                continue
            if tracked_now.size == 0:
                # Still being created, or an export that failed: judged when it grows,
                # or quarantined once it has stayed empty for empty_file_seconds.
                if now >= max(self._empty_after(tracked_now), tracked_now.retry_at):
                    ready.append(path)
                continue
            if now >= max(self._stable_after(tracked_now), tracked_now.retry_at):
                ready.append(path)
        return sorted(ready, key=lambda p: (self._tracked[p].changed_at, p.name))

    def _next_due(self, now: float) -> float:
        due = [self._next_scan]
        for path, tracked in self._tracked.items():
            if path.name.endswith(WORKLIST_SUFFIX):
                continue
            quiet = self._empty_after(tracked) if tracked.size == 0 else self._stable_after(tracked)
            due.append(max(quiet, tracked.retry_at))
        return max(0.0, min(due) - now)

    def _heartbeat(self, now: float) -> None:
        if now - self._last_heartbeat < 10.0:
            return
        self._last_heartbeat = now
        self.store.set_state(self.state_key, self._state())

    def _state(self) -> dict[str, Any]:
        """What ``saa-lab status`` shows of this daemon (and judges its health by)."""
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "instance": self.instance or None,
            "inbox": str(self.inbox),
            "observer": self.config.watch.observer,
            "observer_alive": bool(self._observer and self._observer.is_alive()),
            "last_scan": self.counters.last_scan,
            "heartbeat": _now(),
            "processed": self.counters.processed,
            "quarantined": self.counters.quarantined,
            "duplicates": self.counters.duplicates,
            "errors": self.counters.errors,
            **self.counters.extra,
        }

    def _database_down(self, exc: StoreError, consequence: str) -> None:
        """Log an outage once (ERROR) and what it holds up once each (WARNING); repeats
        at DEBUG, until it ends."""
        self.counters.errors += 1
        if "database_error" not in self.counters.extra:
            log.error("database unavailable (%s): %s", consequence, exc)
        elif consequence not in self._held_up:
            log.warning("database unavailable (%s): %s", consequence, exc)
        else:
            log.debug("database still unavailable (%s): %s", consequence, exc)
        self._held_up.add(consequence)
        self.counters.extra["database_error"] = " ".join(str(exc).split())

    def _database_up(self) -> None:
        self._held_up.clear()
        if self.counters.extra.pop("database_error", None) is not None:
            log.warning("the database is reachable again; files waiting in the inbox go on")

    # -- one file -------------------------------------------------------------

    def _unchanged(self, path: Path, source_size: int) -> bool:
        try:
            return path.stat().st_size == source_size
        except FileNotFoundError:
            return False

    def _handle(self, path: Path) -> None:
        claim = f"file:{path.name}"
        try:
            held = self.leases.hold(claim)
        except StoreError as exc:
            # Not the file's fault: it stays in the inbox and is tried again later.
            self._database_down(exc, f"{path.name} stays in the inbox and is retried")
            self._tracked[path].retry_at = time.monotonic() + RETRY_AFTER_ERROR_SECONDS
            return
        if held is None:
            # Another daemon on this database has it (a shared inbox): look again
            # soon; by then it is usually archived and gone.
            self._tracked[path].retry_at = time.monotonic() + CLAIMED_RETRY_SECONDS
            self.counters.extra["claimed_elsewhere"] = (
                int(self.counters.extra.get("claimed_elsewhere", 0)) + 1
            )
            return
        try:
            self._handle_claimed(path)
        finally:
            with contextlib.suppress(StoreError):  # it runs out by itself otherwise
                self.leases.release(claim)

    def _handle_claimed(self, path: Path) -> None:
        tracked = self._tracked.get(path)
        if tracked is None:
            return
        limit = self.config.watch.max_file_bytes
        if tracked.size > limit:
            line = (f"{path.name}: {tracked.size:,} bytes, over the {limit:,}-byte limit "
                    "([watch] max_file_bytes): not read; is this a plate export?")  # fmt: skip
            self.store.audit("daemon", "file-quarantined", "file", path.name[:64],
                             size=tracked.size, error=line)  # fmt: skip
            self._put_in_quarantine(path, line, "the file as a whole")
            return
        try:
            source = SourceFile(_read_regular(path), str(path), timezone=self.config.lab.zone)
        except FileNotFoundError:
            self._tracked.pop(path, None)
            return
        except OSError as exc:
            log.warning("cannot read %s yet (%s); will retry", path.name, exc)
            tracked.retry_at = time.monotonic() + self.config.watch.stability_seconds
            return
        if len(source.contents) != tracked.size:
            self._observe(path, False, time.monotonic())  # still growing
            return
        if not source.contents:
            waited = self.config.watch.empty_file_seconds
            error = InputFileError(
                f"the file is empty (0 bytes) and stayed empty for {waited:g} s: the export "
                "did not complete; export the plate again",
                path=path.name,
            )
            self._quarantine(path, source, error)
            return
        crash_point("read")
        try:
            self._process(path, source, tracked)
        except StoreError as exc:
            # Not the file's fault: it stays in the inbox and is tried again later.
            self._database_down(exc, f"{path.name} stays in the inbox and is retried")
            tracked.retry_at = time.monotonic() + RETRY_AFTER_ERROR_SECONDS
        except ConfigError as exc:
            log.error("%s: %s; the file stays in the inbox and is retried", path.name, exc)
            self.counters.errors += 1
            tracked.retry_at = time.monotonic() + RETRY_AFTER_ERROR_SECONDS
        except Exception:
            # A bug must not stop the daemon nor lose the file: it stays in the inbox.
            log.exception("unexpected error on %s; the file stays in the inbox", path.name)
            self.counters.errors += 1
            tracked.retry_at = time.monotonic() + RETRY_AFTER_ERROR_SECONDS
        else:
            self._database_up()

    def _process(self, path: Path, source: SourceFile, tracked: _Tracked) -> None:
        known = self.store.source(source.sha256)
        archived = Path(known.archive_path) if known and known.archive_path else None
        if (
            known is not None
            and known.status == "done"
            and (archived is None or _same_file(path, archived))
        ):
            # Processed, but its archiving was cut short (a crash, a full archive after
            # the commit): finish it, do not process it again.
            used = [
                self.inbox / name
                for name, sha in self.store.source_worklists(source.sha256)
                if _holds(self.inbox / name, sha)
            ]
            if archived is None:
                done = self._archive(path, source, tracked, used) is not None
            else:
                self._finish_archiving(path, archived.parent, used)
                done = True
            if done:
                log.warning("%s had been processed already (file %d); now archived",
                            path.name, known.id)  # fmt: skip
            return
        if known is not None and known.status == "done":
            try:
                target = self._move(path, self.config.archive / "duplicates")
            except OSError as exc:
                self._cannot_move(path, tracked, self.config.archive / "duplicates", exc,
                                  "a duplicate of a processed file")  # fmt: skip
                return
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
                    SourceFile(_read_regular(wl_path), str(wl_path)), zone=self.config.lab.zone
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
        if outcome.duplicate:
            # Another daemon stored it meanwhile: look again soon and find it done
            # (archived by that daemon, or archived now).
            tracked.retry_at = time.monotonic() + CLAIMED_RETRY_SECONDS
            return
        crash_point("committed")
        self.counters.processed += 1
        self.notify_delivery()
        archived = self._archive(path, source, tracked, list(loaded))
        if archived is not None:
            for run in outcome.runs:
                self.reports.submit(run.id, archived)
        accepted = sum(1 for r in outcome.runs if r.status == "accepted")
        log.info("%s processed: %d run(s), %d accepted; %s",
                 path.name, len(outcome.runs), accepted,
                 f"archived as {archived}" if archived else "not archived yet")  # fmt: skip

    def _archive(
        self, path: Path, source: SourceFile, tracked: _Tracked, worklists: list[Path]
    ) -> Path | None:
        """Move a processed export and its worklists to today's archive folder.

        In an order a crash at any point can finish: the export is linked into the
        archive, the link recorded, the worklists moved, and only then is the inbox
        copy removed. Found in the inbox after a crash, a processed export whose
        recorded archive file is the same file is only removed (``_finish_archiving``).
        A full or read-only archive leaves everything in the inbox (None is returned);
        the export is retried, found processed, and archived once the folder takes it.
        """
        archive = self.config.archive / datetime.now(self.config.lab.zone).strftime("%Y-%m-%d")
        try:
            target = place_copy(path, archive)
        except OSError as exc:
            self._cannot_move(path, tracked, archive, exc, "processed (its results are stored)")
            return None
        crash_point("archived")
        self.counters.extra.pop("move_error", None)
        try:
            self.store.set_archive_path(source.sha256, str(target))
        except StoreError as exc:
            # The file is archived; only the record of where is missing (shown as such).
            log.warning("%s archived as %s, but the archive path was not recorded: %s",
                        path.name, target, exc)  # fmt: skip
        self._finish_archiving(path, archive, worklists)
        return target

    def _finish_archiving(self, path: Path, archive: Path, worklists: list[Path]) -> None:
        """Move the worklists, then remove the export's inbox copy (it is archived)."""
        for wl_path in worklists:
            if wl_path.exists():
                try:
                    self._move(wl_path, archive)
                except OSError as exc:
                    log.error("cannot archive the worklist %s (%s); it stays in the inbox",
                              wl_path.name, exc.strerror or exc)  # fmt: skip
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.error("%s is archived but cannot be removed from the inbox (%s); retried",
                      path.name, exc.strerror or exc)  # fmt: skip
            tracked = self._tracked.get(path)
            if tracked is not None:
                tracked.retry_at = time.monotonic() + RETRY_AFTER_ERROR_SECONDS
            return
        self._tracked.pop(path, None)

    def _cannot_move(
        self, path: Path, tracked: _Tracked, folder: Path, exc: OSError, what: str
    ) -> None:
        log.error(
            "%s is %s but cannot be moved to %s (%s); it stays in the inbox and is moved "
            "once the folder can take it",
            path.name, what, folder, exc.strerror or exc,
        )  # fmt: skip
        self.counters.errors += 1
        self.counters.extra["move_error"] = f"{folder}: {exc.strerror or exc}"
        tracked.retry_at = time.monotonic() + RETRY_AFTER_ERROR_SECONDS

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
            names = worklist_names(read.plate_id, path.stem, single=len(plates) == 1)
            found = next((self.inbox / n for n in names if _regular(self.inbox / n)), None)
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
        self._put_in_quarantine(path, line, error_location(error))

    def _put_in_quarantine(self, path: Path, line: str, where: str) -> None:
        """Move ``path`` to the quarantine with ``<name>.error.txt`` holding ``line``."""
        try:
            target = self._move(path, self.config.quarantine)
        except OSError as exc:
            # A full or read-only quarantine: the file stays in the inbox and is retried.
            log.error("cannot quarantine %s (%s); it stays in the inbox", path.name, exc)
            self.counters.extra["move_error"] = f"{self.config.quarantine}: {exc.strerror or exc}"
            tracked = self._tracked.get(path)
            if tracked is not None:
                tracked.retry_at = time.monotonic() + RETRY_AFTER_ERROR_SECONDS
            return
        self.counters.quarantined += 1
        sidecar = _sidecar_for(target)
        try:
            temp = sidecar.with_name(f".{sidecar.name}.tmp")
            temp.write_text(line + "\n", encoding="utf-8")
            _restrict(temp)
            temp.replace(sidecar)
        except OSError as exc:
            log.error("quarantined %s as %s, but its reason file could not be written (%s); "
                      "the reason is recorded in the database (saa-lab status)",
                      path.name, target.name, exc.strerror or exc)  # fmt: skip
            return
        # The reason may quote a cell (a patient's name or id): in the sidecar and at DEBUG.
        log.error("quarantined %s (%s): the reason is in %s", path.name, where, sidecar)
        log.debug("quarantined %s: %s", path.name, line)

    # -- for the demo, tests and benchmarks -----------------------------------

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

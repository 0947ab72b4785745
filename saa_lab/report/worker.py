"""The daemon's report writer: run reports rendered beside the archived exports by a
separate, low-priority process, so drawing charts never holds up results.

A report is made after its export is archived (its results are already stored and
their messages queued). The rendering happens in one child process (``spawn``: no
inherited threads or connections) at a lower CPU priority, with its own database
connection; the daemon only hands it run ids. A report the daemon could not make
before it stopped (or crashed) is made at its next start: recent archived runs
without their report files are queued again. A failure is logged with the run and
the file, never raised into the daemon.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import report_name

if TYPE_CHECKING:
    from ..config import AppConfig
    from ..store import Store

__all__ = ["ReportWorker", "missing_reports"]

log = logging.getLogger(__name__)
# How many of the latest archived runs are checked for missing or outdated reports:
# every 30 s the latest RECENT_RUNS (a stat() per report file, on a share too); at
# start, and while a backlog left reports unqueued, the latest RECOVER_RUNS.
RECENT_RUNS = 100
RECOVER_RUNS = 1000
# At most this many reports wait in the daemon's memory: in a backlog of thousands of
# plates (processed 20-40 times faster than their reports are drawn) the rest are found
# missing by the next refresh (every 30 s) instead of piling up.
MAX_QUEUED = 50

_child: dict[str, Any] = {}


def _start_child(config: AppConfig) -> None:
    """In the child: lower priority, open the store once."""
    from ..store import Store

    with contextlib.suppress(OSError):  # not allowed here: same priority, still works
        os.nice(10)
    _child["config"] = config
    _child["store"] = Store(config.database_url, migrate=False, zone=config.lab.zone)


def _render(run_id: int, folder: str, stem: str, formats: Sequence[str]) -> list[str]:
    from . import write_run_reports

    paths = write_run_reports(_child["store"], _child["config"], run_id, Path(folder),
                              stem=stem, formats=formats)  # fmt: skip
    return [str(p) for p in paths]


def missing_reports(
    store: Store, formats: Sequence[str], limit: int = RECOVER_RUNS
) -> list[tuple[int, Path]]:
    """``(run id, archived export)`` of the latest archived runs whose report is missing,
    or older than the run's latest review decision (a release, a rejection)."""
    from ..store.report_queries import archived_runs

    missing = []
    for run_id, archive_path, decided in archived_runs(store, limit):
        export = Path(archive_path)
        if not export.exists():
            continue  # the archive was moved away: nothing to put a report beside
        for fmt in formats:
            try:
                written = (export.parent / report_name(export.stem, run_id, fmt)).stat().st_mtime
            except OSError:
                missing.append((run_id, export))
                break
            if decided is not None and written < decided.timestamp():
                missing.append((run_id, export))
                break
    return missing


class ReportWorker:
    """``start()``, ``submit(run_id, archived_export)``, ``stop()``."""

    def __init__(self, config: AppConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.formats = tuple(config.reports.formats)
        self._pool: ProcessPoolExecutor | None = None
        self.written = 0
        self.failed = 0
        self._pending = 0
        self._queued: set[int] = set()
        self._behind = True  # look far back: at start, or after reports were left out
        self._lock = threading.Lock()

    @property
    def idle(self) -> bool:
        """No report queued or being drawn."""
        with self._lock:
            return self._pending == 0

    @property
    def enabled(self) -> bool:
        return bool(self.formats)

    def start(self) -> None:
        if not self.enabled:
            return
        self._pool = self._new_pool()
        self.refresh()

    def refresh(self) -> int:
        """Queue the reports missing from the archive (a stop or crash before they were
        drawn) or older than their run's review decision; returns how many."""
        if self._pool is None:
            return 0
        try:
            limit = RECOVER_RUNS if self._behind else RECENT_RUNS
            missing = missing_reports(self.store, self.formats, limit)
        except Exception as exc:  # the database may be down: not fatal, tried again later
            log.warning("cannot look for runs whose report is missing or out of date: %s", exc)
            return 0
        with self._lock:
            room = max(0, MAX_QUEUED - self._pending)
            missing = [(r, e) for r, e in missing if r not in self._queued]
            self._behind = len(missing) > room
            missing = missing[-room:] if room else []
        if missing:
            log.info("making %d run report(s) missing or older than a review decision",
                     len(missing))  # fmt: skip
        for run_id, export in reversed(missing):
            self.submit(run_id, export)
        return len(missing)

    def submit(self, run_id: int, export: Path) -> None:
        """Queue the reports of ``run_id`` beside the archived ``export``."""
        if self._pool is None:
            return
        with self._lock:
            if self._pending >= MAX_QUEUED or run_id in self._queued:
                self._behind = self._behind or run_id not in self._queued
                log.debug("run %d: report left for a later refresh (%d queued)", run_id,
                          self._pending)  # fmt: skip
                return
        try:
            future = self._pool.submit(
                _render, run_id, str(export.parent), export.stem, self.formats
            )
        except (BrokenProcessPool, RuntimeError) as exc:
            log.error("run %d: report not made (%s); 'saa-lab report %d' makes it",
                      run_id, exc, run_id)  # fmt: skip
            self._restart()
            return
        with self._lock:
            self._pending += 1
            self._queued.add(run_id)
        future.add_done_callback(lambda done: self._done(run_id, export, done))

    def _done(self, run_id: int, export: Path, future: Future[list[str]]) -> None:
        with self._lock:
            self._pending -= 1
            self._queued.discard(run_id)
        if future.cancelled():
            return
        error = future.exception()
        if error is None:
            self.written += 1
            log.debug("run %d: report written beside %s", run_id, export.name)
            return
        self.failed += 1
        log.error("run %d (%s): the run report could not be made: %s; 'saa-lab report "
                  "%d' tries again", run_id, export.name, error, run_id)  # fmt: skip
        if isinstance(error, BrokenProcessPool):
            self._restart()

    def _restart(self) -> None:
        """The child died (killed, out of memory): a new one for the next reports."""
        old, self._pool = self._pool, None
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_child,
            initargs=(self.config,),
        )

    def stop(self) -> None:
        """Stop: reports not started yet are dropped (made at the next start)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

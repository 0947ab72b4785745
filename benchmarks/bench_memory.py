"""Peak and current RSS of the real daemon (``saa-lab watch``) over 10,000 export files.

    python benchmarks/bench_memory.py [--files 10000] [--sample-every 500]
                                      [--batch 250] [--samples-per-plate 4]
                                      [--mode trickle|backlog|both]
                                      [--database-url postgresql+psycopg://...]

The daemon runs as its own process, configured as ``bench_pipeline.py`` configures it
(every result released on processing). Every export is a different invented plate
(96-well Gen5 text, a few samples each, its own worklist), written beforehand to a
staging folder beside the inbox, so this script only renames files while it measures.

- ``trickle``: exports (each with its worklist) are renamed into the inbox in batches of
  ``--batch`` as the daemon catches up (a new batch when fewer than a fifth of the last
  one are left), so the inbox never holds more than about one batch.
- ``backlog``: all of them (a minute old) are in the inbox before the daemon starts.

Every ``--sample-every`` processed exports (an export counts once it has left the inbox)
the daemon's ``VmRSS`` and ``VmHWM`` are read from ``/proc/PID/status``. Prints a table
per mode and a verdict: RSS after the first 1,000 files against after the last.
Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_pipeline
from bench_pipeline import Watch, reset_postgres, workspace

from saa_lab.config import AppConfig, load_config
from saa_lab.synth import gen5_text, plate_values, standard_plate_plan, worklist_csv

WORKLIST = ".worklist.csv"


@dataclass
class Sample:
    files: int
    seconds: float
    rss_kib: int
    hwm_kib: int


def memory(pid: int) -> tuple[int, int]:
    """``VmRSS`` and ``VmHWM`` (peak RSS) of ``pid`` in KiB."""
    fields = {}
    with Path(f"/proc/{pid}/status").open() as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def stage(folder: Path, files: int, samples: int, prefix: str) -> list[str]:
    """Write ``files`` different plates (export + worklist) into ``folder``; their names."""
    folder.mkdir(parents=True)
    names = []
    for i in range(files):
        name = f"{prefix}{i:05d}"
        plan = standard_plate_plan(samples, prefix=f"{name}-S")
        values, rows = plate_values(plan, seed=20_000 + i)
        (folder / f"{name}{WORKLIST}").write_text(worklist_csv(rows))
        (folder / f"{name}.txt").write_text(gen5_text(values, barcode=name))
        names.append(name)
    return names


def drop(staging: Path, inbox: Path, names: list[str]) -> None:
    """Worklists first, then the exports: each a rename (atomic, as instruments should)."""
    for name in names:
        (staging / f"{name}{WORKLIST}").replace(inbox / f"{name}{WORKLIST}")
    for name in names:
        (staging / f"{name}.txt").replace(inbox / f"{name}.txt")


def exports_in(inbox: Path) -> int:
    return sum(1 for e in os.scandir(inbox) if e.name.endswith(".txt"))


def run(root: Path, mode: str, args: argparse.Namespace) -> list[Sample]:
    config_path = workspace(root, args.database_url)
    config = load_config(config_path)
    config.inbox.mkdir(parents=True)
    staging = root / "staging"  # same file system as the inbox: renames, not copies
    t0 = time.perf_counter()
    names = stage(staging, args.files, args.samples_per_plate, "MEM")
    print(f"[{mode}] staged {len(names)} plates in {time.perf_counter() - t0:.0f} s",
          file=sys.stderr)  # fmt: skip
    if mode == "backlog":
        drop(staging, config.inbox, names)
        old = time.time() - 60  # arrived while the daemon was down
        for entry in os.scandir(config.inbox):
            os.utime(entry.path, (old, old))
        pending: list[str] = []
        dropped = len(names)
    else:
        pending, dropped = list(names), 0
    samples: list[Sample] = []
    next_sample = args.sample_every
    with Watch(config_path) as watch:
        pid = watch.process.pid
        start = time.perf_counter()
        rss, hwm = memory(pid)
        samples.append(Sample(0, 0.0, rss, hwm))
        last_batch = 0
        deadline = start + args.timeout
        while True:
            left = exports_in(config.inbox)
            done = dropped - left
            if pending and left <= max(1, last_batch // 5):
                batch, pending = pending[: args.batch], pending[args.batch :]
                drop(staging, config.inbox, batch)
                dropped += len(batch)
                last_batch = len(batch)
                continue
            if done >= next_sample or (not pending and left == 0):
                rss, hwm = memory(pid)
                samples.append(Sample(done, time.perf_counter() - start, rss, hwm))
                print(f"[{mode}] {done:6d} files  RSS {rss / 1024:7.1f} MiB  "
                      f"peak {hwm / 1024:7.1f} MiB  {samples[-1].seconds:6.0f} s",
                      file=sys.stderr)  # fmt: skip
                while next_sample <= done:
                    next_sample += args.sample_every
                if not pending and left == 0:
                    break
            if watch.process.poll() is not None:
                raise SystemExit(f"the daemon exited: {watch.log.read_text()[-2000:]}")
            if time.perf_counter() > deadline:
                raise SystemExit(f"timed out after {done} files")
            time.sleep(0.05)
        summary = status(config)
    print(f"[{mode}] store: files {summary['files']}, outbox {summary['outbox']}",
          file=sys.stderr)  # fmt: skip
    return samples


def status(config: AppConfig) -> dict[str, Any]:
    """The store's summary: files done/failed, messages by state (a check of the run)."""
    from saa_lab.store import Store

    store = Store(config.database_url, migrate=False)
    try:
        return store.status_summary()
    finally:
        store.close()


def table(mode: str, samples: list[Sample]) -> None:
    print()
    print(f"{mode}:")
    print()
    print("| files processed | elapsed | RSS MiB | peak RSS (VmHWM) MiB |")
    print("|---|---|---|---|")
    for s in samples:
        print(f"| {s.files:,} | {s.seconds:.0f} s | {s.rss_kib / 1024:.1f} "
              f"| {s.hwm_kib / 1024:.1f} |")  # fmt: skip
    first = next((s for s in samples if s.files >= 1000), None)
    last = samples[-1]
    if first is not None and first is not last:
        growth = (last.rss_kib - first.rss_kib) / 1024
        pct = 100 * (last.rss_kib - first.rss_kib) / first.rss_kib
        per_1000 = growth / max(1, (last.files - first.files) / 1000)
        print()
        print(f"verdict ({mode}): RSS {first.rss_kib / 1024:.1f} MiB after {first.files:,} files, "
              f"{last.rss_kib / 1024:.1f} MiB after {last.files:,}: {growth:+.1f} MiB "
              f"({pct:+.1f} %, {per_1000:+.2f} MiB per 1,000 files); "
              f"peak {last.hwm_kib / 1024:.1f} MiB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10_000, help="exports to process")
    parser.add_argument("--sample-every", type=int, default=500, help="files between samples")
    parser.add_argument("--batch", type=int, default=250, help="exports per drop (trickle)")
    parser.add_argument("--samples-per-plate", type=int, default=4, help="samples per plate")
    parser.add_argument("--mode", choices=["trickle", "backlog", "both"], default="trickle")
    parser.add_argument("--timeout", type=float, default=7200, help="seconds per mode")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: SQLite in a temp dir)")
    parser.add_argument("--reports", default="",
                        help="the daemon's [reports] formats (default none: the reports "
                        "are drawn by a separate process, not counted here)")  # fmt: skip
    args = parser.parse_args()
    bench_pipeline.REPORTS = args.reports
    backend = "postgresql" if args.database_url else "sqlite"
    modes = ["trickle", "backlog"] if args.mode == "both" else [args.mode]
    results = {}
    with tempfile.TemporaryDirectory(prefix="saa-bench-mem-") as tmp:
        for mode in modes:
            if args.database_url:
                reset_postgres(args.database_url)
            results[mode] = run(Path(tmp) / mode, mode, args)
    python = sys.version.split()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {python}, "
          f"backend {backend}, native (inotify) observer, {args.files:,} files of "
          f"{args.samples_per_plate} samples")  # fmt: skip
    for mode, samples in results.items():
        table(mode, samples)


if __name__ == "__main__":
    main()

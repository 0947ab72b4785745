"""Drop-to-outbox latency and backlog throughput of the real daemon (``saa-lab watch``).

    python benchmarks/bench_pipeline.py [--plates 30] [--backlog 200] [--daemons 1,3]
                                        [--reports html,pdf|'']
                                        [--database-url postgresql+psycopg://...]

Latency: one 96-well plate with 40 samples (74 sample wells) is dropped at a
time (worklist first, then the export by write-temp-then-rename, as instruments
should); the clock runs from the rename until the plate's last ORU^R01 file is
in the outbox. Throughput: a backlog of plates (a minute old) is in the inbox before
the daemon starts; the clock runs from the daemon's start (including its own
start-up) until every message is in the outbox. The daemon runs as
its own process (as in production), so this script's polling of the outbox does
not compete with it for the GIL. One warm-up plate is not timed. The backlog runs
once per daemon count in ``--daemons``: N daemons (``SAA_LAB_INSTANCE`` 1..N) share
the inbox and the database, claiming each file through it. The daemons write run
reports (HTML and PDF, in the background) as by default; ``--reports ''`` turns them
off. Prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from saa_lab.config import AppConfig, load_config
from saa_lab.synth import gen5_text, plate_values, standard_plate_plan, worklist_csv

SAMPLES_PER_PLATE = 40
# The benchmark times the machine's path from drop to outbox: every result is released
# as it is processed (a person's review is not part of it). Invented plates may hold
# samples above the ULOQ, which the default rule would hold for a person.
RELEASE_ON_PROCESSING = """
[[autoverification]]
name = "benchmark-release-on-processing"
run_statuses = ["quantified", "below-lloq", "above-uloq", "above-reportable", "invalid"]
hold_flags = []
"""


def write_plate(folder: Path, name: str, seed: int, *, atomic: bool) -> int:
    """Write a worklist and a Gen5 export; returns the number of messages expected."""
    plan = standard_plate_plan(SAMPLES_PER_PLATE, prefix=f"{name}-S")
    values, rows = plate_values(plan, seed=seed)
    (folder / f"{name}.worklist.csv").write_text(worklist_csv(rows))
    data = gen5_text(values, barcode=name).encode()
    if atomic:
        temp = folder / f".{name}.txt.part"
        temp.write_bytes(data)
        temp.replace(folder / f"{name}.txt")
    else:
        (folder / f"{name}.txt").write_bytes(data)
    return len(plan)


def count(folder: Path) -> int:
    return sum(1 for e in os.scandir(folder) if e.name.endswith(".hl7"))


def wait_for_count(folder: Path, target: int, timeout: float = 120.0) -> float:
    deadline = time.perf_counter() + timeout
    while count(folder) < target:
        if time.perf_counter() > deadline:
            msg = f"timed out waiting for {target} messages in {folder}"
            raise SystemExit(msg)
        time.sleep(0.002)
    return time.perf_counter()


def wait_for_backlog(config: AppConfig, plates: int, timeout: float) -> float:
    """When every export is processed and every message delivered.

    Not a count of files: once a control lot has 20 runs of history its Westgard rules
    apply and reject some invented runs, whose results (rightly) never leave.
    """
    from saa_lab.store import Store

    store = Store(config.database_url, migrate=False)
    deadline = time.perf_counter() + timeout
    try:
        while True:
            summary = store.status_summary()
            if summary["files"].get("done", 0) + summary["files"].get("failed", 0) >= plates and (
                not summary["outbox"].get("pending")
            ):
                return time.perf_counter()
            if time.perf_counter() > deadline:
                raise SystemExit(f"timed out waiting for the backlog: {summary['files']}")
            time.sleep(0.02)
    finally:
        store.close()


REPORTS = "html,pdf"  # [reports] formats; --reports changes it


def workspace(root: Path, database_url: str | None) -> Path:
    root.mkdir(parents=True)
    text = '[lab]\ntimezone = "Europe/Berlin"\n' + RELEASE_ON_PROCESSING
    formats = ", ".join(f'"{f}"' for f in REPORTS.split(",") if f)
    text += f"\n[reports]\nformats = [{formats}]\n"
    if database_url:
        text += f'[database]\nurl = "{database_url}"\n'
    (root / "saa-lab.toml").write_text(text)
    return root / "saa-lab.toml"


def reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


class Watch:
    """``saa-lab watch`` in a subprocess, started and stopped with SIGTERM."""

    def __init__(self, config_path: Path, instance: str = "") -> None:
        self.config_path = config_path
        self.instance = instance

    def __enter__(self) -> Watch:
        exe = Path(sys.executable).with_name("saa-lab")
        self.log = self.config_path.with_name(f"watch{self.instance}.log")
        env = {**os.environ, "SAA_LAB_INSTANCE": self.instance}
        with self.log.open("w") as log:  # a file, not a pipe: a full pipe would block it
            self.process = subprocess.Popen(
                [str(exe), "--config", str(self.config_path), "watch"], stderr=log, env=env
            )
        deadline = time.monotonic() + 60
        while "saa-lab watching" not in self.log.read_text():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(f"saa-lab watch did not start: {self.log.read_text()}")
            time.sleep(0.01)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def latency(root: Path, plates: int, database_url: str | None) -> list[float]:
    config_path = workspace(root, database_url)
    config = load_config(config_path)
    samples = []
    with Watch(config_path):
        expected = 0
        for i in range(plates + 1):  # plate 0 warms up and is not timed
            name = f"LAT{i:04d}"
            plan = standard_plate_plan(SAMPLES_PER_PLATE, prefix=f"{name}-S")
            values, rows = plate_values(plan, seed=1000 + i)
            (config.inbox / f"{name}.worklist.csv").write_text(worklist_csv(rows))
            time.sleep(0.05)  # the worklist is in place before the export, as in the lab
            data = gen5_text(values, barcode=name).encode()
            temp = config.inbox / f".{name}.txt.part"
            temp.write_bytes(data)
            expected += len(plan)
            start = time.perf_counter()
            temp.replace(config.inbox / f"{name}.txt")
            took = wait_for_count(config.outbox, expected) - start
            if i:
                samples.append(took)
    return samples


def throughput(
    root: Path, plates: int, database_url: str | None, daemons: int = 1
) -> tuple[float, float]:
    config_path = workspace(root, database_url)
    config = load_config(config_path)
    config.inbox.mkdir(parents=True)
    for i in range(plates):
        write_plate(config.inbox, f"BL{i:05d}", 5000 + i, atomic=False)
    # The backlog arrived while the daemon was down: a minute old.
    old = time.time() - 60
    for entry in os.scandir(config.inbox):
        os.utime(entry.path, (old, old))
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        for number in range(daemons):
            stack.enter_context(Watch(config_path, str(number + 1) if daemons > 1 else ""))
        end = wait_for_backlog(config, plates, timeout=1800)
    seconds = end - start
    return seconds, plates / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plates", type=int, default=30, help="plates for the latency run")
    parser.add_argument("--backlog", type=int, default=200, help="plates in the backlog run")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: SQLite in a temp dir)")
    parser.add_argument("--daemons", default="1", help="daemon counts for the backlog, e.g. 1,3")
    parser.add_argument("--reports", default=REPORTS,
                        help="the daemon's [reports] formats: html,pdf or ''")  # fmt: skip
    args = parser.parse_args()
    globals()["REPORTS"] = args.reports
    counts = [int(n) for n in args.daemons.split(",")]
    backend = "postgresql" if args.database_url else "sqlite"
    with tempfile.TemporaryDirectory(prefix="saa-bench-") as tmp:
        if args.database_url:
            reset_postgres(args.database_url)
        lat = latency(Path(tmp) / "latency", args.plates, args.database_url)
        backlogs = {}
        for daemons in counts:
            if args.database_url:
                reset_postgres(args.database_url)
            backlogs[daemons] = throughput(Path(tmp) / f"backlog{daemons}", args.backlog,
                                           args.database_url, daemons)  # fmt: skip
    lat_ms = sorted(x * 1000 for x in lat)
    p95 = lat_ms[max(0, round(0.95 * len(lat_ms)) - 1)]
    python = sys.version.split()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {python}, "
          f"backend {backend}, native (inotify) observer")  # fmt: skip
    print()
    print("| measurement | value |")
    print("|---|---|")
    print(f"| drop-to-outbox latency p50 ({len(lat_ms)} plates, 40 samples each) "
          f"| {statistics.median(lat_ms):.0f} ms |")  # fmt: skip
    print(f"| drop-to-outbox latency p95 | {p95:.0f} ms |")
    print(f"| drop-to-outbox latency max | {lat_ms[-1]:.0f} ms |")
    for daemons, (seconds, rate) in backlogs.items():
        print(f"| backlog of {args.backlog} plates, {daemons} daemon(s): total | {seconds:.1f} s |")
        print(f"| backlog throughput, {daemons} daemon(s) | {rate:.1f} plates/s "
              f"({rate * 40:.0f} results/s) |")  # fmt: skip


if __name__ == "__main__":
    main()

"""A patient's history query with many stored results (target: under 10 ms at 1,000,000).

    python benchmarks/bench_history.py [--scale 1e6] [--calls 200] [--cache-dir DIR]
                                       [--database-url postgresql+psycopg://...]

Fills a database with ``--scale`` results (20 per patient: 1,000,000 results are
50,000 patients), each with its worklist order, its run (40 results per run, one source
file per run) and its review state, by bulk ``INSERT … SELECT`` from a recursive CTE (not
through the ORM). The filled SQLite file is cached (``--cache-dir``) so reruns start at
once; PostgreSQL is filled again unless the database already holds exactly that many
results. Then times the real query functions, ``reported_history`` and
``pipeline.prior_results``, for random patients (p50/p95/max), and prints the query plan
(SQLite ``EXPLAIN QUERY PLAN``, PostgreSQL ``EXPLAIN``) of the SQL they run, captured
from the engine.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from saa_lab.store import Store

RESULTS_PER_PATIENT = 20
RESULTS_PER_RUN = 40
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "saa-bench-history"


def patient(i: int) -> str:
    """The id of the filled database's patient ``i`` (1-based)."""
    return f"BP{i:07d}"


def _sql(dialect: str) -> dict[str, str]:
    """The dialect's spelling of the few expressions that differ."""
    if dialect == "postgresql":
        return {
            "now": "TIMESTAMPTZ '2026-01-01 00:00:00+00'",
            "minutes": "(TIMESTAMPTZ '2026-01-01 00:00:00+00' + {n} * INTERVAL '1 minute')",
            "json_list": "CAST('[]' AS JSON)",
            "pad": "LPAD(CAST({n} AS TEXT), 7, '0')",
            "real": "CAST({n} AS DOUBLE PRECISION)",
        }
    return {
        "now": "'2026-01-01 00:00:00.000000'",
        "minutes": "datetime('2026-01-01', '+' || ({n}) || ' minutes')",
        "json_list": "'[]'",
        "pad": "printf('%07d', {n})",
        "real": "CAST({n} AS REAL)",
    }


def _series(n: int) -> str:
    return f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) "


def fill(store: Store, results: int) -> float:
    """Add ``results`` results (ids 1..n, on an empty database) in bulk; returns seconds."""
    d = _sql(store.dialect)
    runs = -(-results // RESULTS_PER_RUN)
    patients = max(1, results // RESULTS_PER_PATIENT)
    run_of = f"((i - 1) / {RESULTS_PER_RUN} + 1)"
    patient_of = f"'BP' || {d['pad'].format(n=f'((i - 1) % {patients} + 1)')}"
    # Sample i is the (i // patients)-th visit of its patient: visits a day apart.
    collected = d["minutes"].format(n=f"(((i - 1) / {patients}) * 1440 + (i - 1) % 1440)")
    dosed = d["minutes"].format(n=f"(((i - 1) / {patients}) * 1440 - 2880)")
    activity = d["real"].format(n="(i % 1500) * 7 % 1500")
    statements = [
        _series(runs) + "INSERT INTO source_files (id, sha256, name, original_path, size, "
        "format, status, received_at, processed_at) SELECT i, 'fill' || i, 'FILL' || i || "
        "'.txt', '/inbox/FILL' || i || '.txt', 4000, 'biotek-gen5-text', 'done', "
        f"{d['now']}, {d['now']} FROM s",
        _series(runs) + "INSERT INTO runs (id, source_file_id, plate_index, plate_id, format, "
        "wavelength_nm, assay_name, assay_version, layout_name, layout_version, status, "
        "reasons, created_at, review_status, review_rev) SELECT i, i, 0, 'FILL' || i, "
        f"'biotek-gen5-text', 710, 'saa-aha', '1', 'aha-96', '1', 'accepted', {d['json_list']}, "
        f"{d['minutes'].format(n='i')}, 'auto-released', 1 FROM s",
        _series(results) + "INSERT INTO orders (id, accession, patient_id, formulation, "
        "dose_time, collection_time, protocol, clinic, source, created_at) SELECT i, "
        f"'BA' || i, {patient_of}, 'peg-asparaginase', {dosed}, {collected}, 'default', 'fill', "
        f"'worklist', {d['now']} FROM s",
        _series(results) + "INSERT INTO results (id, result_uid, version, run_id, order_id, "
        "accession, wells, dilution, activity_u_per_l, comparator, mean_u_per_l, cv_percent, "
        "status, flag, comment, rule_id, result_status, created_at, created_by) SELECT i, "
        f"'fill-' || i, 1, {run_of}, i, 'BA' || i, 'G3,H3', 1, {activity}, '', {activity}, "
        "2.5, 'quantified', 'adequate', '', 'default', 'F', "
        f"{d['minutes'].format(n=run_of)}, 'daemon' FROM s",
        _series(results) + "INSERT INTO result_states (id, result_id, run_id, state, "
        "auto_verified, ruleset, decided_by, decided_at, preliminary_sent) SELECT i, i, "
        f"{run_of}, 'released', TRUE, 'fill@1', 'daemon', {d['now']}, FALSE FROM s",
    ]
    start = time.perf_counter()
    with store.engine.begin() as conn:
        if store.dialect == "sqlite":
            conn.exec_driver_sql("PRAGMA synchronous=OFF")
        for statement in statements:
            if store.dialect == "postgresql":  # psycopg's placeholders: a literal % is %%
                statement = statement.replace("%", "%%")
            conn.exec_driver_sql(statement)
        if store.dialect == "postgresql":
            for table in ("source_files", "runs", "orders", "results", "result_states"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT MAX(id) FROM {table}))"
                )
    if store.dialect == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - start


def count_results(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM results")).scalar_one())


def reset_postgres(url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def filled_database(results: int, database_url: str | None, cache_dir: Path) -> tuple[str, str]:
    """A database URL holding ``results`` filled results; and how it was obtained."""
    if database_url:
        store = Store(database_url)
        try:
            if count_results(store) == results:
                return database_url, "reused"
        finally:
            store.close()
        reset_postgres(database_url)
        store = Store(database_url)
        seconds = fill(store, results)
        store.close()
        return database_url, f"filled in {seconds:.1f} s"
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"history-{results}.db"
    done = path.with_suffix(".done")
    url = f"sqlite:///{path}"
    if path.exists() and done.exists():
        Store(url).close()  # migrates a cache made before a new revision
        return url, f"cached ({path})"
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    store = Store(url)
    seconds = fill(store, results)
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    done.write_text(f"{results}\n")
    return url, f"filled in {seconds:.1f} s ({path})"


class Captured:
    """The SQL statements (with parameters) an engine runs while recording."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.statements: list[tuple[str, Any]] = []
        self.recording = False
        event.listen(store.engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_a: Any) -> None:
        if self.recording:
            self.statements.append((statement, parameters))

    def plans(self) -> list[tuple[str, list[str]]]:
        prefix = "EXPLAIN QUERY PLAN " if self.store.dialect == "sqlite" else "EXPLAIN "
        out = []
        with self.store.engine.connect() as conn:
            for statement, parameters in self.statements:
                if not statement.lstrip().upper().startswith("SELECT"):
                    continue
                rows = conn.exec_driver_sql(prefix + statement, parameters).all()
                lines = [
                    f"{'  ' * _depth(r)}{r[-1]}" if self.store.dialect == "sqlite" else str(r[0])
                    for r in rows
                ]
                out.append((statement, lines))
        return out


def _depth(row: Any) -> int:
    """Indentation of an EXPLAIN QUERY PLAN row (its parent chain is not kept: flat)."""
    return 1 if row[1] else 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(q * len(ordered)) - 1)]


def time_calls(store: Store, patients: int, calls: int, seed: int = 1) -> dict[str, list[float]]:
    from saa_lab.pipeline import prior_results
    from saa_lab.store.order_queries import reported_history

    rng = random.Random(seed)
    chosen = [patient(rng.randint(1, patients)) for _ in range(calls)]
    timings: dict[str, list[float]] = {"reported_history": [], "prior_results": []}
    reported_history(store, chosen[0])  # warm-up: connection pool, statement compilation
    for pid in chosen:
        start = time.perf_counter()
        history = reported_history(store, pid)
        timings["reported_history"].append((time.perf_counter() - start) * 1000)
        if len(history) != RESULTS_PER_PATIENT:
            raise SystemExit(f"{pid}: {len(history)} results, expected {RESULTS_PER_PATIENT}")
        start = time.perf_counter()
        prior_results(store, pid)
        timings["prior_results"].append((time.perf_counter() - start) * 1000)
    return timings


def machine_line(backend: str) -> str:
    python = sys.version.split()[0]
    return f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {python}, {backend}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1e6, help="stored results (1e5, 1e6)")
    parser.add_argument("--calls", type=int, default=200, help="timed calls per function")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: a cached SQLite file)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    results = int(args.scale)
    url, how = filled_database(results, args.database_url, args.cache_dir)
    store = Store(url)
    backend = store.dialect
    print(machine_line(backend))
    print(f"database: {results:,} results, {results // RESULTS_PER_PATIENT:,} patients; {how}")
    print()
    timings = time_calls(store, results // RESULTS_PER_PATIENT, args.calls)
    print(f"| query ({args.calls} random patients, {RESULTS_PER_PATIENT} results each) "
          "| p50 | p95 | max |")  # fmt: skip
    print("|---|---|---|---|")
    for name, values in timings.items():
        print(f"| `{name}` | {statistics.median(values):.2f} ms "
              f"| {percentile(values, 0.95):.2f} ms | {max(values):.2f} ms |")  # fmt: skip
    from saa_lab.store.order_queries import reported_history

    captured = Captured(store)
    captured.recording = True
    reported_history(store, patient(1))
    captured.recording = False
    for statement, lines in captured.plans():
        print()
        print("```")
        print(" ".join(statement.split()))
        print("--")
        print("\n".join(lines))
        print("```")
    store.close()


if __name__ == "__main__":
    main()

"""Parse time per export format (after imports), median and p95 over repeated runs.

    python benchmarks/bench_parsers.py [--repeat 50]

Times ``saa_lab.parsers.parse`` (detection included) on every bundled sample
export (sample_files/) and, when present, on the real exports in
../shared/samples/real. Targets: a 96-well endpoint export under 20 ms (text)
and under 100 ms (xlsx). Prints a table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from saa_lab.domain import SourceFile
from saa_lab.errors import SaaLabError
from saa_lab.parsers import detect, parse
from saa_lab.parsers.table import is_workbook

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "samples" / "real"
SKIP = (".json", ".md", ".py", ".worklist.csv")


def files() -> list[tuple[str, Path]]:
    found = [("sample", p) for p in sorted((ROOT / "sample_files").rglob("*"))
             if p.is_file() and not p.name.endswith(SKIP)]  # fmt: skip
    if REAL.is_dir():
        found += [("real", p) for p in sorted(REAL.rglob("*")) if p.is_file() and p.suffix != ".md"]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print()
    print("| source | file | format | kind | wells | size | median ms | p95 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for origin, path in files():
        source = SourceFile(path.read_bytes(), path.name)
        try:
            fmt = detect(source)
            reads = parse(source)  # warm-up (imports, caches)
        except SaaLabError as exc:
            print(f"| {origin} | {path.name} | not read: {exc.message[:40]} | | | | | |")
            continue
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            parse(SourceFile(source.contents, path.name))
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        p95 = times[max(0, round(0.95 * len(times)) - 1)]
        kind = "xlsx" if is_workbook(source.contents) else "text"
        kind += ", kinetic" if any(r.kinetic for r in reads) else ""
        wells = max(len(r.wells) for r in reads)
        size = f"{len(source.contents) / 1024:.0f} KiB"
        print(f"| {origin} | {path.name} | {fmt} | {kind} | {wells} | {size} "
              f"| {statistics.median(times):.1f} | {p95:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
